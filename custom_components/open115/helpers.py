"""Small helpers shared by the config flow and the keeper."""

import os

from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession

from .api import AccessTokenSource, Open115Client
from .const import ENV_BASE_URL


def base_url_override() -> str | None:
    """The development base URL that replaces the 115 hosts, if set."""
    return os.environ.get(ENV_BASE_URL) or None


def create_client(hass: HomeAssistant, auth: AccessTokenSource | None = None) -> Open115Client:
    """A 115 client on Home Assistant's shared HTTP session; `auth` gives its access tokens."""
    return Open115Client(async_get_clientsession(hass), base_url=base_url_override(), auth=auth)
