"""Signing in by QR code: the device-code flow with PKCE, long-polled while the dialog shows."""

import asyncio
from typing import Any, Final

from homeassistant.config_entries import (
    ConfigFlowResult,
)
from homeassistant.util import dt as dt_util

from .api import (
    CODE_TOO_MANY_APPS,
    DEVICE_CODE_POLL_TIMEOUT,
    DeviceCode,
    DeviceCodeStatus,
    Open115ApiError,
    Open115Error,
    Open115RateLimitError,
    Open115TransientError,
    StaticAccessToken,
    make_pkce,
)
from .const import CONF_APP_ID, DOMAIN, LOGGER
from .flow_base import MIN_ACCESS_VALIDITY, Open115BaseConfigFlow
from .flow_input import (
    APP_ID_RE,
    APP_ID_SCHEMA,
    clean_app_id,
    qr_markdown,
    refusal,
)
from .helpers import create_client
from .token_state import token_data

# How long one long poll may take (115 answers by itself before that).
POLL_WAIT = DEVICE_CODE_POLL_TIMEOUT
# Failed long polls in a row (not counting our own timeouts) before the QR sign-in gives up.
MAX_POLL_FAILURES = 3
MIN_POLL_SPACING = 1.0  # seconds from one status poll's start to the next one's


async def _pause(seconds: float) -> None:
    """Wait `seconds` (none when not positive)."""
    if seconds > 0:
        await asyncio.sleep(seconds)


# Why a QR sign-in went back to the AppID form (keys of config.error).
QR_ERRORS: Final = frozenset(
    {
        "app_refused",
        "too_many_apps",
        "rate_limited",
        "cannot_connect",
        "unknown",
        "qr_expired",
        "qr_cancelled",
        "qr_failed",
        "wrong_account_qr",
        "wrong_account_qr_moved",
    }
)


class QrSignInConfigFlow(Open115BaseConfigFlow):
    """The QR-code steps: the AppID, the code shown while 115 reports the scan, the exchange."""

    async def async_step_qr(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the AppID, then show a new QR code of it."""
        errors: dict[str, str] = {}
        if self._qr_error is not None:
            # Back from a code that died or failed: say why; submitting starts over.
            errors["base"] = self._qr_error if self._qr_error in QR_ERRORS else "unknown"
            self._qr_error = None
        entry = self._entry_to_replace()
        app_id = self._app_id or (entry.data.get(CONF_APP_ID) if entry else None) or ""
        if user_input is not None:
            app_id = str(user_input.get(CONF_APP_ID, ""))  # kept in the field on errors
            if not APP_ID_RE.match(clean_app_id(app_id)):
                errors[CONF_APP_ID] = "invalid_app_id"
            elif (error := await self._async_new_code(clean_app_id(app_id))) is None:
                return await self.async_step_qr_scan()
            else:
                errors["base"] = error if error in QR_ERRORS else "unknown"
        return self.async_show_form(
            step_id="qr",
            data_schema=self.add_suggested_values_to_schema(APP_ID_SCHEMA, {CONF_APP_ID: app_id}),
            errors=errors,
            description_placeholders={
                "account": entry.title if entry else "",
                "other": self._other,
                **self._refusal,
            },
        )

    async def _async_new_code(self, app_id: str) -> str | None:
        """Ask 115 for a device code of `app_id`; an error key when that fails."""
        pkce = make_pkce()
        try:
            code = await create_client(self.hass).auth_device_code(app_id, pkce)
        except Open115TransientError:
            return "cannot_connect"
        except Open115RateLimitError:
            return "rate_limited"
        except Open115ApiError as err:
            LOGGER.warning("115 refused a QR code for AppID %s: %s", app_id, err)
            self._refusal = refusal(err)
            return "too_many_apps" if err.code == CODE_TOO_MANY_APPS else "app_refused"
        except Open115Error as err:
            LOGGER.warning("115 refused a QR code for AppID %s: %s", app_id, err)
            return "unknown"
        self._app_id, self._qr = app_id, (code, pkce)
        self._qr_status = DeviceCodeStatus.WAITING
        self._qr_pair = None
        self._qr_image = qr_markdown(code.qrcode)
        return None

    async def _async_wait_for_change(
        self, code: DeviceCode, known: DeviceCodeStatus
    ) -> DeviceCodeStatus:
        """Long-poll until the code's status is no longer `known`.

        Polls start at least MIN_POLL_SPACING apart, also when 115 answers at once.
        """
        client = create_client(self.hass)
        failures = 0
        started: float | None = None
        while True:
            if started is not None:
                await _pause(started + MIN_POLL_SPACING - self.hass.loop.time())
            started = self.hass.loop.time()
            try:
                status = await client.device_code_status(code, wait=POLL_WAIT)
            except Open115TransientError as err:
                # Our own wait running out says nothing; other failures count.
                if not isinstance(err.__cause__, TimeoutError):
                    failures += 1
                    if failures >= MAX_POLL_FAILURES:
                        raise
                continue
            failures = 0
            if status is not known:
                return status

    async def async_step_qr_scan(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show the QR code while 115 reports the scan, then the confirmation."""
        if self._qr is None:  # reached without going through the AppID form: get a code
            return await self.async_step_qr()
        if self._poll_task is None:
            self._poll_task = self.hass.async_create_background_task(
                self._async_wait_for_change(self._qr[0], self._qr_status),
                f"{DOMAIN} QR code status",
            )
        if not self._poll_task.done():
            scanned = self._qr_status is DeviceCodeStatus.SCANNED
            return self.async_show_progress(
                step_id="qr_scan",
                progress_action="qr_confirm" if scanned else "qr_scan",
                progress_task=self._poll_task,
                description_placeholders={"qr_code": self._qr_image, "app_id": self._app_id or ""},
            )
        task, self._poll_task = self._poll_task, None
        try:
            status = task.result()
        except Open115Error as err:
            LOGGER.warning("Polling the QR code failed: %s", err)
            self._qr_error = (
                "cannot_connect" if isinstance(err, Open115TransientError) else "unknown"
            )
            return self.async_show_progress_done(next_step_id="qr")
        self._qr_status = status
        if status is DeviceCodeStatus.CONFIRMED:
            return self.async_show_progress_done(next_step_id="qr_finish")
        if status is DeviceCodeStatus.EXPIRED:
            self._qr_error = "qr_expired"
            return self.async_show_progress_done(next_step_id="qr")
        if status is DeviceCodeStatus.CANCELLED:
            self._qr_error = "qr_cancelled"
            return self.async_show_progress_done(next_step_id="qr")
        return await self.async_step_qr_scan()  # scanned (or back to waiting): poll on

    async def async_step_qr_finish(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Exchange the confirmed code for tokens, read the account, store the entry."""
        if self._qr is None:  # reached without going through the AppID form: get a code
            return await self.async_step_qr()
        code, pkce = self._qr
        client = create_client(self.hass)
        errors: dict[str, str] = {}
        try:
            if self._qr_pair is None:
                self._qr_pair = await client.device_code_to_token(code.uid, pkce.verifier)
                self._qr_authorized_at = self._qr_pair.received_at
            elif self._qr_pair.expires_at <= dt_util.utcnow() + MIN_ACCESS_VALIDITY:
                self._qr_pair = await client.refresh(self._qr_pair.refresh_token)
            pair = self._qr_pair
            account = await create_client(
                self.hass, StaticAccessToken(pair.access_token)
            ).user_info()
        except Open115TransientError:
            errors["base"] = "cannot_connect"
        except Open115RateLimitError:
            errors["base"] = "rate_limited"
        except Open115Error as err:
            # Refused outright: this code (or its pair) is of no use; start over.
            LOGGER.warning("115 refused the QR sign-in: %s", err)
            self._refusal = refusal(err)
            self._qr_pair = None
            self._qr_error = "too_many_apps" if err.code == CODE_TOO_MANY_APPS else "qr_failed"
            return await self.async_step_qr()
        if errors:
            # Submitting again retries; a pair already received is kept.
            return self.async_show_form(step_id="qr_finish", errors=errors)
        data = {
            **token_data(pair, authorized_at=self._qr_authorized_at),
            CONF_APP_ID: self._app_id,
        }
        if (entry := self._entry_to_replace()) is not None:
            if account.user_id == entry.unique_id:
                return await self._async_replace_pair(entry, data)
            # Scanned with another account: its entry takes the new authorization, if any;
            # back to the AppID form, which says so.
            moved = await self._async_keep_other_pair(account, data)
            self._qr, self._qr_pair = None, None
            self._qr_error = "wrong_account_qr_moved" if moved else "wrong_account_qr"
            return await self.async_step_qr()
        await self.async_set_unique_id(account.user_id)
        if (entry := self._entry_of(account)) is not None:
            return await self._async_update_set_up_entry(entry, data)
        self._abort_if_unique_id_configured()
        return self.async_create_entry(title=account.user_name, data=data)
