"""Small helpers shared by the config flow and the keeper."""

import os

from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.util.hass_dict import HassKey

from .api import AccessTokenSource, Open115Client
from .const import DOMAIN, ENV_BASE_URL, LOGGER

# Set once the flush found no store to write to (so that the error is logged once).
DATA_NO_FLUSH: HassKey[bool] = HassKey(f"{DOMAIN}_no_flush")


def base_url_override() -> str | None:
    """The development base URL that replaces the 115 hosts, if set."""
    return os.environ.get(ENV_BASE_URL) or None


def create_client(hass: HomeAssistant, auth: AccessTokenSource | None = None) -> Open115Client:
    """A 115 client on Home Assistant's shared HTTP session; `auth` gives its access tokens."""
    return Open115Client(async_get_clientsession(hass), base_url=base_url_override(), auth=auth)


async def async_flush_config_entries(hass: HomeAssistant) -> None:
    """Write the config entries to disk now, not after the store's delayed save.

    A rotated refresh token voids the old one: it must be on disk before anyone uses it.
    This also covers a new entry, whose first save Home Assistant schedules only after the
    entry is set up. Home Assistant has no public call for this, so reach the store directly.
    If a Home Assistant release renames these private parts, this logs an error (once) and
    leaves the saving to Home Assistant's delayed save; tests/e2e/test_e2e.py then fails.
    """
    manager = hass.config_entries
    save = getattr(getattr(manager, "_store", None), "async_save", None)
    data_to_save = getattr(manager, "_data_to_save", None)
    if callable(save) and callable(data_to_save):
        await save(data_to_save())
        return
    if not hass.data.get(DATA_NO_FLUSH):
        hass.data[DATA_NO_FLUSH] = True
        LOGGER.error(
            "Cannot write the config entries to disk now: this Home Assistant version has no "
            "config entry store where open115 expects it. A rotated 115 refresh token is saved "
            "only by Home Assistant's delayed save, about a second later, so a crash or power "
            "cut in that second loses it; please report this to open115"
        )
