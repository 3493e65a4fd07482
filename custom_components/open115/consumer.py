"""The public consumer API: how Home Assistant, automations and other integrations get a token.

Everything that needs an access token asks here; only the keeper ever refreshes.
"""

from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError

from .const import DEFAULT_MIN_VALIDITY, DOMAIN
from .keeper import TokenKeeper


@callback
def async_get_keeper(hass: HomeAssistant, config_entry_id: str | None = None) -> TokenKeeper:
    """The keeper of the named entry, or of the only loaded one; translated errors."""
    if config_entry_id is not None:
        entry: ConfigEntry[Any] | None = hass.config_entries.async_get_entry(config_entry_id)
        if entry is None or entry.domain != DOMAIN:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="entry_not_found",
                translation_placeholders={"entry_id": config_entry_id},
            )
        if entry.state is not ConfigEntryState.LOADED:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="entry_not_loaded",
                translation_placeholders={"entry_title": entry.title},
            )
        return _keeper_of(entry)
    loaded: list[ConfigEntry[Any]] = hass.config_entries.async_loaded_entries(DOMAIN)
    if not loaded:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="no_entry")
    if len(loaded) > 1:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="several_entries")
    return _keeper_of(loaded[0])


def _keeper_of(entry: ConfigEntry[Any]) -> TokenKeeper:
    keeper: TokenKeeper = entry.runtime_data.keeper
    return keeper


async def async_get_access_token(
    hass: HomeAssistant,
    config_entry_id: str | None = None,
    min_validity: float = DEFAULT_MIN_VALIDITY,
    rejected_token: str | None = None,
) -> str:
    """Return an access token valid for at least `min_validity` seconds.

    Refreshes first when the token would not last that long (one refresh, shared by all
    concurrent callers; cancelling this call never cancels it). `min_validity` is capped at
    half a token's lifetime. A token that lasts less is never returned: when no refresh may be
    sent yet (115's 60 s window, a backoff after failures, Home Assistant stopping) or it
    fails, this raises (`token_too_short` while the current token still lives).

    `rejected_token`: 115 refused this access token although it had not expired. If it is still
    the current one, open115 refreshes once (every caller reporting the same token shares that
    refresh), at most once per 10 minutes unless the token is due anyway (else it raises
    `token_rejected`); a token already replaced just returns the current one.

    Raises a `HomeAssistantError` subclass with a translated message when there is no such
    entry, several and none named, or no valid token can be had.
    """
    keeper = async_get_keeper(hass, config_entry_id)
    state = await keeper.async_ensure_valid(min_validity, rejected_token=rejected_token)
    return state.access_token
