"""Config flow for open115: add an account by its refresh token; reauth; reconfigure; options."""

from __future__ import annotations

from datetime import timedelta
import re
from typing import Any

from homeassistant.config_entries import (
    SOURCE_REAUTH,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlowWithReload,
)
from homeassistant.core import callback
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from homeassistant.util import dt as dt_util
import voluptuous as vol

from .api import (
    Account,
    Open115AuthError,
    Open115Error,
    Open115RateLimitError,
    Open115TransientError,
    TokenPair,
)
from .const import (
    CONF_REFRESH_MARGIN,
    CONF_REFRESH_TOKEN,
    DEFAULT_REFRESH_MARGIN,
    DOMAIN,
    LOGGER,
    MAX_REFRESH_MARGIN,
    MIN_REFRESH_MARGIN,
)
from .coordinator import Open115ConfigEntry, token_data
from .helpers import async_flush_config_entries, create_client

# What a refresh token can look like: printable, no inner white space, a sane length.
_TOKEN_RE = re.compile(r"^[\x21-\x7e]{16,4096}$")
_QUOTES = "\"'`\u201c\u201d\u2018\u2019"
# A kept access token closer to its expiry than this is refreshed before reading the account.
_MIN_ACCESS_VALIDITY = timedelta(seconds=60)

TOKEN_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_REFRESH_TOKEN): TextSelector(
            TextSelectorConfig(type=TextSelectorType.PASSWORD)
        )
    }
)


def clean_refresh_token(value: str) -> str:
    """Strip what users paste around a token: white space, quotes, a `Bearer ` prefix."""
    token = value.strip().strip(_QUOTES).strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip().strip(_QUOTES).strip()
    return token


class Open115ConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add a 115 account by refresh token."""

    VERSION = 1
    MINOR_VERSION = 1

    def __init__(self) -> None:
        """Start without a validated pair."""
        # A pair already rotated from the pasted token, kept if reading the account failed:
        # the pasted token is void now, so asking for it again would be useless.
        self._validated: tuple[str, TokenPair] | None = None

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: Open115ConfigEntry) -> Open115OptionsFlow:
        """The options flow."""
        return Open115OptionsFlow()

    async def _async_validate(
        self, user_input: dict[str, Any], errors: dict[str, str]
    ) -> tuple[TokenPair, Account] | None:
        """Refresh the pasted token (it rotates) and read the account; fill `errors`."""
        token = clean_refresh_token(str(user_input.get(CONF_REFRESH_TOKEN, "")))
        if not token:
            errors[CONF_REFRESH_TOKEN] = "empty_token"
            return None
        if not _TOKEN_RE.match(token):
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
            errors["base"] = "revoked_token" if err.reason == "revoked" else "invalid_token"
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

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for a refresh token and create the entry for its account."""
        errors: dict[str, str] = {}
        if user_input is not None and (result := await self._async_validate(user_input, errors)):
            pair, account = result
            await self.async_set_unique_id(account.user_id)
            self._abort_if_unique_id_configured()
            return self.async_create_entry(
                title=account.user_name, data=token_data(pair, authorized_at=None)
            )
        return self.async_show_form(step_id="user", data_schema=TOKEN_SCHEMA, errors=errors)

    async def async_step_reauth(self, entry_data: dict[str, Any]) -> ConfigFlowResult:
        """The stored refresh token is dead: ask for a new one."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Replace the refresh token of the entry being re-authenticated."""
        return await self._async_replace_token("reauth_confirm", user_input)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Replace the refresh token by choice (for example after a new authorization)."""
        return await self._async_replace_token("reconfigure", user_input)

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
            await self.async_set_unique_id(account.user_id)
            self._abort_if_unique_id_mismatch(reason="wrong_account")
            # On disk before the reload: the old token is void once the new pair exists.
            self.hass.config_entries.async_update_entry(
                entry, data=token_data(pair, authorized_at=None)
            )
            await async_flush_config_entries(self.hass)
            return self.async_update_reload_and_abort(entry)
        return self.async_show_form(
            step_id=step_id,
            data_schema=TOKEN_SCHEMA,
            errors=errors,
            description_placeholders={"account": entry.title},
        )


class Open115OptionsFlow(OptionsFlowWithReload):
    """The refresh margin."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask how long before expiry a refresh starts."""
        if user_input is not None:
            return self.async_create_entry(
                data={CONF_REFRESH_MARGIN: int(user_input[CONF_REFRESH_MARGIN])}
            )
        current = self.config_entry.options.get(CONF_REFRESH_MARGIN, DEFAULT_REFRESH_MARGIN)
        schema = vol.Schema(
            {
                vol.Required(CONF_REFRESH_MARGIN, default=current): NumberSelector(
                    NumberSelectorConfig(
                        min=MIN_REFRESH_MARGIN,
                        max=MAX_REFRESH_MARGIN,
                        step=1,
                        unit_of_measurement="s",
                        mode=NumberSelectorMode.BOX,
                    )
                )
            }
        )
        return self.async_show_form(step_id="init", data_schema=schema)
