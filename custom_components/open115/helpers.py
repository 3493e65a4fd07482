"""Small helpers shared by the config flow and the keeper."""

import os

from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .api import Open115Client
from .const import ENV_BASE_URL


def base_url_override() -> str | None:
    """The development base URL that replaces the 115 hosts, if set."""
    return os.environ.get(ENV_BASE_URL) or None


def create_client(hass: HomeAssistant) -> Open115Client:
    """A 115 client on Home Assistant's shared HTTP session."""
    return Open115Client(async_get_clientsession(hass), base_url=base_url_override())


async def async_flush_config_entries(hass: HomeAssistant) -> None:
    """Write the config entries to disk now, not after the store's delayed save.

    A rotated refresh token voids the old one: it must be on disk before anyone uses it.
    This also covers a new entry, whose first save Home Assistant schedules only after the
    entry is set up. Home Assistant has no public call for this, so reach the store directly.
    """
    manager = hass.config_entries
    store = getattr(manager, "_store", None)
    data_to_save = getattr(manager, "_data_to_save", None)
    if store is not None and data_to_save is not None:
        await store.async_save(data_to_save())
