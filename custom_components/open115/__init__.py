"""open115: the one keeper of a 115 Open Platform token for Home Assistant.

Other integrations get a fresh access token from here instead of refreshing it themselves:

    from custom_components.open115 import async_get_access_token
    token = await async_get_access_token(hass, config_entry_id=None, min_validity=60)
"""

from typing import Any

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.storage import Store
from homeassistant.helpers.typing import ConfigType

from .account_coordinator import AccountCoordinator, async_remove_store
from .auth import KeeperAuth
from .const import BACKUP_STORE_KEY, DATA_BACKUP_AGENT_LISTENERS, DOMAIN, ENV_BASE_URL, LOGGER
from .consumer import async_get_access_token
from .data import Open115ConfigEntry, Open115Data
from .helpers import base_url_override, create_client
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
    client = create_client(hass, KeeperAuth(keeper))
    account = AccountCoordinator(hass, entry, client)
    await account.async_restore()
    entry.runtime_data = Open115Data(keeper=keeper, account=account, client=client)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    # The account is read like any consumer would, once the entry is loaded; without a stored
    # read its entities are unavailable until the first read succeeds (a failure never fails
    # the setup).
    entry.async_create_task(
        hass, account.async_start(), f"{DOMAIN} first account read", eager_start=False
    )
    entry.async_on_unload(entry.async_on_state_change(lambda: _notify_backup_listeners(hass)))
    return True


def _notify_backup_listeners(hass: HomeAssistant) -> None:
    """The entry loaded or unloaded: its backup location comes or goes (backup.py)."""
    for listener in hass.data.get(DATA_BACKUP_AGENT_LISTENERS, []):
        listener()


async def async_unload_entry(hass: HomeAssistant, entry: Open115ConfigEntry) -> bool:
    """Stop keeping the token (the stored pair stays for the next start)."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: Open115ConfigEntry) -> None:
    """Remove what open115 keeps of the entry (the backups stay on the drive).

    Its repair issues, its token file, its reported downloads and its backups' metadata cache.
    """
    async_delete_issues(hass, entry.entry_id)
    await Store[Any](hass, 1, BACKUP_STORE_KEY.format(entry_id=entry.entry_id)).async_remove()
    await async_remove_store(hass, entry.entry_id)
    await async_remove_record(hass, entry.entry_id)
