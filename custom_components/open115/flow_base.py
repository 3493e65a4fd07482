"""What every open115 sign-in shares: the flow's state, and where a new pair is stored.

The steps live in config_flow.py (the menus, pasting a token) and flow_qr.py (scanning a QR
code); both end here, where a pair goes into the entry it belongs to and is flushed to disk.
"""

import asyncio
from datetime import timedelta
from typing import Any

from homeassistant.config_entries import (
    SOURCE_IGNORE,
    SOURCE_REAUTH,
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
)
from homeassistant.util import dt as dt_util

from .api import (
    Account,
    DeviceCode,
    DeviceCodeStatus,
    Pkce,
    TokenPair,
)
from .const import CONF_APP_ID, DOMAIN, LOGGER
from .token_record import async_store_pair

# A kept access token closer to its expiry than this is refreshed before reading the account.
MIN_ACCESS_VALIDITY = timedelta(seconds=60)


class Open115BaseConfigFlow(ConfigFlow):
    """The state of an open115 sign-in and the storing of its pair."""

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

    def _entry_to_replace(self) -> ConfigEntry | None:
        """The entry whose token this flow replaces (reauth, reconfigure), if any."""
        if self.source == SOURCE_REAUTH:
            return self._get_reauth_entry()
        if self.source == SOURCE_RECONFIGURE:
            return self._get_reconfigure_entry()
        return None

    def _entry_of(self, account: Account) -> ConfigEntry | None:
        """The entry (not an ignored one) of `account`, if it is set up."""
        entry = self.hass.config_entries.async_entry_for_domain_unique_id(DOMAIN, account.user_id)
        return None if entry is None or entry.source == SOURCE_IGNORE else entry

    async def _async_store_pair(self, entry: ConfigEntry, data: dict[str, Any]) -> None:
        """Put a new pair into `entry` and on disk (the old token is void once it exists)."""
        if CONF_APP_ID not in data and CONF_APP_ID in entry.data:
            data[CONF_APP_ID] = entry.data[CONF_APP_ID]  # for the next QR sign-in
        # On disk now, and it wins over a refresh of the old token still in flight.
        await async_store_pair(self.hass, entry, data)

    async def _async_replace_pair(
        self, entry: ConfigEntry, data: dict[str, Any]
    ) -> ConfigFlowResult:
        """Store a new pair of the same account in `entry`, flush, reload, done."""
        await self._async_store_pair(entry, data)
        # Our own reasons: Home Assistant's defaults are not translated into every language.
        reason = "reauth_successful" if self.source == SOURCE_REAUTH else "reconfigure_successful"
        return self.async_update_reload_and_abort(entry, reason=reason)

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
