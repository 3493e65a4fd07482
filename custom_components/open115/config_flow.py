"""Config flow for open115: add an account by QR code or refresh token; reauth; reconfigure.

Setup, re-authentication and reconfiguration start with a menu: scan a QR code with the 115 app
(the device-code flow with PKCE, which needs the user's own Open Platform AppID and tells when
the authorization happened), or paste a refresh token.
"""

import asyncio
from datetime import timedelta
from typing import Any, Final

from homeassistant.config_entries import (
    SOURCE_IGNORE,
    SOURCE_REAUTH,
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
)
from homeassistant.core import callback
from homeassistant.util import dt as dt_util

from .api import (
    CODE_TOO_MANY_APPS,
    DEVICE_CODE_POLL_TIMEOUT,
    Account,
    DeviceCode,
    DeviceCodeStatus,
    Open115ApiError,
    Open115AuthError,
    Open115Error,
    Open115RateLimitError,
    Open115TransientError,
    Pkce,
    TokenPair,
    make_pkce,
)
from .const import CONF_APP_ID, CONF_REFRESH_TOKEN, DOMAIN, LOGGER
from .data import Open115ConfigEntry
from .flow_input import (
    APP_ID_RE,
    APP_ID_SCHEMA,
    TOKEN_RE,
    TOKEN_SCHEMA,
    clean_app_id,
    clean_refresh_token,
    qr_markdown,
    refusal,
)
from .helpers import async_flush_config_entries, create_client
from .options_flow import Open115OptionsFlow
from .token_state import token_data

__all__ = ["QR_ERRORS", "Open115ConfigFlow", "clean_refresh_token", "qr_markdown"]

# A kept access token closer to its expiry than this is refreshed before reading the account.
_MIN_ACCESS_VALIDITY = timedelta(seconds=60)
# How long one long poll may take (115 answers by itself before that).
POLL_WAIT = DEVICE_CODE_POLL_TIMEOUT
# Failed long polls in a row (not counting our own timeouts) before the QR sign-in gives up.
MAX_POLL_FAILURES = 3
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


class Open115ConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add a 115 account by QR code or refresh token."""

    VERSION = 1
    MINOR_VERSION = 1

    def __init__(self) -> None:
        """Start without a validated pair and without a QR code."""
        # A pair already rotated from the pasted token, kept if reading the account failed:
        # the pasted token is void now, so asking for it again would be useless.
        self._validated: tuple[str, TokenPair] | None = None
        # The QR sign-in: the AppID, the PKCE pair, the device code and what 115 said of it.
        self._app_id: str | None = None
        self._qr: tuple[DeviceCode, Pkce] | None = None
        self._qr_image = ""
        self._qr_status = DeviceCodeStatus.WAITING
        self._qr_error: str | None = None
        self._poll_task: asyncio.Task[DeviceCodeStatus] | None = None
        # The pair the confirmed code was exchanged for (it is a new authorization: keep it),
        # and when that happened (the start of the refresh token's one-year limit).
        self._qr_pair: TokenPair | None = None
        self._qr_authorized_at = dt_util.utcnow()
        # What the dialog names in its errors: 115's refusal, the account a token belonged to.
        self._refusal = {"code": "", "message": ""}
        self._other = ""

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: Open115ConfigEntry) -> Open115OptionsFlow:
        """The options flow."""
        return Open115OptionsFlow()

    def _entry_to_replace(self) -> ConfigEntry | None:
        """The entry whose token this flow replaces (reauth, reconfigure), if any."""
        if self.source == SOURCE_REAUTH:
            return self._get_reauth_entry()
        if self.source == SOURCE_RECONFIGURE:
            return self._get_reconfigure_entry()
        return None

    # ----- the menus ----------------------------------------------------------------------

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Choose how to sign in."""
        return self.async_show_menu(step_id="user", menu_options=["qr", "token"])

    async def async_step_reauth(self, entry_data: dict[str, Any]) -> ConfigFlowResult:
        """The stored refresh token is dead: choose how to sign in again."""
        return self.async_show_menu(
            step_id="reauth",
            menu_options=["qr", "reauth_confirm"],
            description_placeholders={"account": self._get_reauth_entry().title},
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Replace the token by choice (for example before the one-year limit): choose how."""
        return self.async_show_menu(
            step_id="reconfigure",
            menu_options=["qr", "reconfigure_token"],
            description_placeholders={"account": self._get_reconfigure_entry().title},
        )

    # ----- pasting a refresh token --------------------------------------------------------

    async def _async_validate(
        self, user_input: dict[str, Any], errors: dict[str, str]
    ) -> tuple[TokenPair, Account] | None:
        """Refresh the pasted token (it rotates) and read the account; fill `errors`."""
        token = clean_refresh_token(str(user_input.get(CONF_REFRESH_TOKEN, "")))
        if not token:
            errors[CONF_REFRESH_TOKEN] = "empty_token"
            return None
        if not TOKEN_RE.match(token):
            errors[CONF_REFRESH_TOKEN] = "invalid_format"
            return None
        for entry in self._async_current_entries(include_ignore=False):
            if entry.data.get(CONF_REFRESH_TOKEN) == token:
                # Refreshing it here would void the token that entry is using.
                errors["base"] = "token_in_use"
                return None
        client = create_client(self.hass)
        try:
            if self._validated is None or self._validated[0] != token:
                self._validated = (token, await client.refresh(token))
            elif self._validated[1].expires_at <= dt_util.utcnow() + _MIN_ACCESS_VALIDITY:
                # The kept pair's access token ran out while the form waited: its refresh
                # token is the live one now.
                self._validated = (token, await client.refresh(self._validated[1].refresh_token))
            pair = self._validated[1]
            account = await client.user_info(pair.access_token)
        except Open115AuthError as err:
            if err.reason == "revoked":
                errors["base"] = "revoked_token"
            elif err.reason == "app_expired":
                errors["base"] = "app_expired"
            else:
                errors["base"] = "invalid_token"
            return None
        except Open115RateLimitError:
            errors["base"] = "rate_limited"
            return None
        except Open115TransientError:
            errors["base"] = "cannot_connect"
            return None
        except Open115Error as err:
            LOGGER.warning("115 refused the token: %s", err)
            errors["base"] = "unknown"
            return None
        return pair, account

    async def async_step_token(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for a refresh token and create the entry for its account."""
        errors: dict[str, str] = {}
        if user_input is not None and (result := await self._async_validate(user_input, errors)):
            pair, account = result
            await self.async_set_unique_id(account.user_id)
            data = token_data(pair, authorized_at=None)
            if (entry := self._entry_of(account)) is not None:
                return await self._async_update_set_up_entry(entry, data)
            self._abort_if_unique_id_configured()
            return self.async_create_entry(title=account.user_name, data=data)
        return self.async_show_form(
            step_id="token",
            # After an error the field keeps what was pasted, so that a typo can be seen.
            data_schema=self.add_suggested_values_to_schema(TOKEN_SCHEMA, user_input),
            errors=errors,
        )

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Replace the refresh token of the entry being re-authenticated."""
        return await self._async_replace_token("reauth_confirm", user_input)

    async def async_step_reconfigure_token(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Replace the refresh token by a pasted one."""
        return await self._async_replace_token("reconfigure_token", user_input)

    async def _async_replace_token(
        self, step_id: str, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        entry = (
            self._get_reauth_entry()
            if self.source == SOURCE_REAUTH
            else self._get_reconfigure_entry()
        )
        errors: dict[str, str] = {}
        if user_input is not None and (result := await self._async_validate(user_input, errors)):
            pair, account = result
            # A pasted token's authorization time is unknown: no authorized_at.
            data = token_data(pair, None)
            if account.user_id == entry.unique_id:
                return await self._async_replace_pair(entry, data)
            # The check used the pasted token up: its pair goes where it belongs, or is gone;
            # the form stays open (and empty: the pasted token is void now).
            self._validated = None
            moved = await self._async_keep_other_pair(account, data)
            errors["base"] = "wrong_account_moved" if moved else "wrong_account"
            user_input = None
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(TOKEN_SCHEMA, user_input),
            errors=errors,
            description_placeholders={"account": entry.title, "other": self._other},
        )

    def _entry_of(self, account: Account) -> ConfigEntry | None:
        """The entry (not an ignored one) of `account`, if it is set up."""
        entry = self.hass.config_entries.async_entry_for_domain_unique_id(DOMAIN, account.user_id)
        return None if entry is None or entry.source == SOURCE_IGNORE else entry

    async def _async_store_pair(self, entry: ConfigEntry, data: dict[str, Any]) -> None:
        """Put a new pair into `entry` and on disk (the old token is void once it exists)."""
        if CONF_APP_ID not in data and CONF_APP_ID in entry.data:
            data[CONF_APP_ID] = entry.data[CONF_APP_ID]  # for the next QR sign-in
        self.hass.config_entries.async_update_entry(entry, data=data)
        await async_flush_config_entries(self.hass)

    async def _async_replace_pair(
        self, entry: ConfigEntry, data: dict[str, Any]
    ) -> ConfigFlowResult:
        """Store a new pair of the same account in `entry`, flush, reload, done."""
        await self._async_store_pair(entry, data)
        return self.async_update_reload_and_abort(entry)

    async def _async_update_set_up_entry(
        self, entry: ConfigEntry, data: dict[str, Any]
    ) -> ConfigFlowResult:
        """Adding an account that is set up: that entry takes the new pair, and the user is told.

        Checking a pasted token used it up, and a scan made a new authorization that may push
        out the one the entry holds (two per app): keeping the new pair loses nothing.
        """
        await self._async_store_pair(entry, data)
        self.hass.config_entries.async_schedule_reload(entry.entry_id)
        return self.async_abort(
            reason="already_configured_updated", description_placeholders={"account": entry.title}
        )

    async def _async_keep_other_pair(self, account: Account, data: dict[str, Any]) -> bool:
        """A pair of another account in a re-authentication or reconfigure: keep it if set up.

        True when that account's entry took the pair; False when it is not set up here (a
        re-authentication or reconfigure cannot add an entry: Home Assistant refuses it).
        """
        self._other = account.user_name
        if (other := self._entry_of(account)) is None:
            LOGGER.warning(
                "A new token of the 115 account %s was given to replace another account's; "
                "that account is not set up here, so its token is not kept",
                account.user_name,
            )
            return False
        await self._async_store_pair(other, data)
        self.hass.config_entries.async_schedule_reload(other.entry_id)
        return True

    # ----- scanning a QR code (device code with PKCE) -------------------------------------

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
        """Long-poll until the code's status is no longer `known`."""
        client = create_client(self.hass)
        failures = 0
        while True:
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
            elif self._qr_pair.expires_at <= dt_util.utcnow() + _MIN_ACCESS_VALIDITY:
                self._qr_pair = await client.refresh(self._qr_pair.refresh_token)
            pair = self._qr_pair
            account = await client.user_info(pair.access_token)
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
