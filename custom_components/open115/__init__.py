"""open115: the one keeper of a 115 Open Platform token for Home Assistant.

Other integrations get a fresh access token from here instead of refreshing it themselves:

    from custom_components.open115 import async_get_access_token
    token = await async_get_access_token(hass, config_entry_id=None, min_validity=60)
"""

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.typing import ConfigType

from .account_coordinator import AccountCoordinator, async_remove_store
from .const import DOMAIN, ENV_BASE_URL, LOGGER
from .consumer import async_get_access_token
from .data import Open115ConfigEntry, Open115Data
from .helpers import base_url_override
from .issues import async_delete_issues, async_track_issues
from .keeper import TokenKeeper
from .services import async_setup_cloud_download_service, async_setup_services
from .token_record import async_record, async_remove_record

__all__ = ["async_get_access_token"]

PLATFORMS: list[Platform] = [Platform.BINARY_SENSOR, Platform.EVENT, Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the service actions (once, for all entries)."""
    async_setup_services(hass)
    async_setup_cloud_download_service(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: Open115ConfigEntry) -> bool:
    """Start keeping the entry's token; sends nothing while the stored token is fresh."""
    if base_url_override():
        LOGGER.warning(
            "%s is set: open115 talks to %s instead of 115 (development only)",
            ENV_BASE_URL,
            base_url_override(),
        )
    # The entry's token (a new entry's, or one stored before the token file existed, is
    # written to it now: on disk before anything can rotate it).
    record = await async_record(hass, entry)
    keeper = TokenKeeper(hass, entry, record)
    entry.async_on_unload(async_track_issues(hass, keeper))
    await keeper.async_config_entry_first_refresh()
    account = AccountCoordinator(hass, entry)
    await account.async_restore()
    entry.runtime_data = Open115Data(keeper=keeper, account=account)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    # The account is read like any consumer would, once the entry is loaded; without a stored
    # read its entities are unavailable until the first read succeeds (a failure never fails
    # the setup).
    entry.async_create_task(
        hass, account.async_start(), f"{DOMAIN} first account read", eager_start=False
    )
    return True


async def async_unload_entry(hass: HomeAssistant, entry: Open115ConfigEntry) -> bool:
    """Stop keeping the token (the stored pair stays for the next start)."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: Open115ConfigEntry) -> None:
    """Remove the entry's repair issues, its token file and reported downloads."""
    async_delete_issues(hass, entry.entry_id)
    await async_remove_store(hass, entry.entry_id)
    await async_remove_record(hass, entry.entry_id)
