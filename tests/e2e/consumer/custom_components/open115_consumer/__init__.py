"""A minimal 115 integration built on open115, as any other integration would be.

It holds no token of its own: before each request it asks open115 for the access token
(`async_get_access_token`), and when 115 refuses that token it says so (`rejected_token`) and
retries once with the one it gets back. open115 refreshes at most once for everyone who
reports the same token. The end-to-end test loads it next to open115 in a real Home Assistant.

`open115_consumer:` in configuration.yaml registers the action `open115_consumer.read_account`,
which returns the account's id, name and storage as /open/user/info gives them.
"""

import os
from typing import Any

from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType

from custom_components.open115 import async_get_access_token

DOMAIN = "open115_consumer"
CONFIG_SCHEMA = cv.empty_config_schema(DOMAIN)
# 115 refused the access token (and any other 401xxxxx): the contract's list.
REFUSED_CODES = frozenset({99, 40140123, 40140124, 40140125, 40140126})


def _proapi() -> str:
    # OPEN115_BASE_URL is open115's development switch (the emulator); honour it too.
    return os.environ.get("OPEN115_BASE_URL") or "https://proapi.115.com"


def _refused(body: dict[str, Any]) -> bool:
    try:
        code = int(body.get("code") or body.get("errno") or 0)
    except TypeError, ValueError:
        code = 0
    return not body.get("state") and (code in REFUSED_CODES or 40100000 <= code < 40200000)


async def _user_info(hass: HomeAssistant, token: str) -> dict[str, Any]:
    session = async_get_clientsession(hass)
    async with session.get(
        f"{_proapi()}/open/user/info", headers={"Authorization": f"Bearer {token}"}
    ) as resp:
        body: dict[str, Any] = await resp.json(content_type=None)
    return body


async def _read_account(call: ServiceCall) -> ServiceResponse:
    hass = call.hass
    entry_id = call.data.get("config_entry_id")
    token = await async_get_access_token(hass, entry_id)
    body = await _user_info(hass, token)
    recovered = False
    if _refused(body):
        # Report the refused token: open115 refreshes once (for every caller reporting it)
        # and hands out the new one. Retry once; never loop.
        token = await async_get_access_token(hass, entry_id, rejected_token=token)
        body = await _user_info(hass, token)
        recovered = True
    if not body.get("state"):
        raise HomeAssistantError(f"115 answered {body.get('code') or body.get('errno')}")
    data = body["data"]
    space = data.get("rt_space_info") or {}
    return {
        "user_id": str(data["user_id"]),
        "user_name": data.get("user_name"),
        "storage_total": (space.get("all_total") or {}).get("size"),
        "recovered": recovered,
    }


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the action; open115 (a dependency) is set up first."""
    hass.services.async_register(
        DOMAIN, "read_account", _read_account, supports_response=SupportsResponse.ONLY
    )
    return True
