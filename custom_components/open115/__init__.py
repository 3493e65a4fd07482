"""open115: the one keeper of a 115 Open Platform token for Home Assistant.

Other integrations get a fresh access token from here instead of refreshing it themselves:

    from custom_components.open115 import async_get_access_token
    token = await async_get_access_token(hass, config_entry_id=None, min_validity=60)
"""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.typing import ConfigType

from .const import DEFAULT_MIN_VALIDITY, DOMAIN, ENV_BASE_URL, LOGGER
from .coordinator import (
    DATA_SHARED,
    Open115ConfigEntry,
    Open115Coordinator,
    async_get_coordinator,
)
from .helpers import async_flush_config_entries, base_url_override
from .issues import async_delete_issues, async_track_issues
from .services import async_setup_services

__all__ = ["async_get_access_token"]

PLATFORMS: list[Platform] = [Platform.BINARY_SENSOR, Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the service actions (once, for all entries)."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: Open115ConfigEntry) -> bool:
    """Start keeping the entry's token; sends nothing while the stored token is fresh."""
    if base_url_override():
        LOGGER.warning(
            "%s is set: open115 talks to %s instead of 115 (development only)",
            ENV_BASE_URL,
            base_url_override(),
        )
    # A new or re-authenticated entry's pair is on disk before anything can rotate it.
    await async_flush_config_entries(hass)
    coordinator = Open115Coordinator(hass, entry)
    entry.async_on_unload(async_track_issues(hass, coordinator))
    await coordinator.async_config_entry_first_refresh()
    entry.runtime_data = coordinator
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: Open115ConfigEntry) -> bool:
    """Stop keeping the token (the stored pair stays for the next start)."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: Open115ConfigEntry) -> None:
    """Remove the entry's repair issues and its keepers' shared state with it."""
    async_delete_issues(hass, entry.entry_id)
    hass.data.get(DATA_SHARED, {}).pop(entry.entry_id, None)


async def async_get_access_token(
    hass: HomeAssistant,
    config_entry_id: str | None = None,
    min_validity: float = DEFAULT_MIN_VALIDITY,
) -> str:
    """Return an access token valid for at least `min_validity` seconds.

    Refreshes first when the token would not last that long (one refresh, shared by all
    concurrent callers). `min_validity` is capped at half a token's lifetime. Raises a
    `HomeAssistantError` subclass with a translated message when there is no such entry,
    several and none named, or no valid token can be had.
    """
    coordinator = async_get_coordinator(hass, config_entry_id)
    state = await coordinator.async_ensure_valid(min_validity)
    return state.access_token
