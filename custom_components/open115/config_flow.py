"""Config flow for open115: add an account by QR code or refresh token; reauth; reconfigure.

Setup, re-authentication and reconfiguration start with a menu: scan a QR code with the 115 app
(the device-code flow with PKCE, which needs the user's own Open Platform AppID and tells when
the authorization happened), or paste a refresh token.
"""

from typing import Any, override

from homeassistant.config_entries import (
    SOURCE_REAUTH,
    ConfigFlowResult,
)
from homeassistant.core import callback
from homeassistant.util import dt as dt_util

from .api import (
    Account,
    Open115AuthError,
    Open115Error,
    Open115RateLimitError,
    Open115TransientError,
    StaticAccessToken,
    TokenPair,
)
from .const import CONF_REFRESH_TOKEN, DOMAIN, LOGGER
from .data import Open115ConfigEntry
from .flow_base import MIN_ACCESS_VALIDITY
from .flow_input import (
    TOKEN_RE,
    TOKEN_SCHEMA,
    clean_refresh_token,
    qr_markdown,
)
from .flow_qr import QR_ERRORS, QrSignInConfigFlow
from .helpers import create_client
from .options_flow import Open115OptionsFlow
from .token_state import token_data

__all__ = ["QR_ERRORS", "Open115ConfigFlow", "clean_refresh_token", "qr_markdown"]


class Open115ConfigFlow(QrSignInConfigFlow, domain=DOMAIN):
    """Add a 115 account by QR code or refresh token."""

    VERSION = 1
    MINOR_VERSION = 1

    @staticmethod
    @callback
    @override
    def async_get_options_flow(config_entry: Open115ConfigEntry) -> Open115OptionsFlow:
        """The options flow."""
        return Open115OptionsFlow()

    # ----- the menus ----------------------------------------------------------------------

    @override
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
            elif self._validated[1].expires_at <= dt_util.utcnow() + MIN_ACCESS_VALIDITY:
                # The kept pair's access token ran out while the form waited: its refresh
                # token is the live one now.
                self._validated = (token, await client.refresh(self._validated[1].refresh_token))
            pair = self._validated[1]
            account = await create_client(
                self.hass, StaticAccessToken(pair.access_token)
            ).user_info()
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
