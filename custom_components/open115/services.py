"""Service actions: hand a fresh token to automations, or refresh now (admins only).

And add cloud downloads (any user).
"""

import re
from typing import Final

from homeassistant.const import ATTR_CONFIG_ENTRY_ID
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.service import async_register_admin_service
from homeassistant.util import dt as dt_util
import voluptuous as vol

from .api import Open115Error, Open115RateLimitError
from .const import (
    ATTR_FOLDER_ID,
    ATTR_MIN_VALIDITY,
    ATTR_URLS,
    DEFAULT_MIN_VALIDITY,
    DOMAIN,
    MAX_LINKS_PER_CALL,
    MAX_MIN_VALIDITY,
    SERVICE_ADD_CLOUD_DOWNLOAD,
    SERVICE_GET_ACCESS_TOKEN,
    SERVICE_REFRESH_TOKEN,
)
from .consumer import async_get_keeper
from .data import Open115ConfigEntry

GET_ACCESS_TOKEN_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        # More than a token can give is capped (at half its lifetime, by the keeper), not refused.
        vol.Optional(ATTR_MIN_VALIDITY, default=DEFAULT_MIN_VALIDITY): vol.All(
            vol.Coerce(int), vol.Range(min=0), vol.Clamp(max=MAX_MIN_VALIDITY)
        ),
    }
)
REFRESH_TOKEN_SCHEMA = vol.Schema({vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string})


async def _async_get_access_token(call: ServiceCall) -> ServiceResponse:
    """Return a token valid for `min_validity` seconds, with when it expires."""
    coordinator = async_get_keeper(call.hass, call.data.get(ATTR_CONFIG_ENTRY_ID))
    state = await coordinator.async_ensure_valid(call.data[ATTR_MIN_VALIDITY])
    return {
        "access_token": state.access_token,
        "expires_at": state.expires_at.isoformat(),
        "expires_in": max(int(state.seconds_left(dt_util.utcnow())), 0),
        "user_id": coordinator.user_id,
    }


async def _async_refresh_token(call: ServiceCall) -> ServiceResponse:
    """Refresh now; refused while the last refresh is too recent."""
    coordinator = async_get_keeper(call.hass, call.data.get(ATTR_CONFIG_ENTRY_ID))
    state = await coordinator.async_force_refresh()
    return {"expires_at": state.expires_at.isoformat()}


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register both actions as admin services that return a response."""
    async_register_admin_service(
        hass,
        DOMAIN,
        SERVICE_GET_ACCESS_TOKEN,
        _async_get_access_token,
        schema=GET_ACCESS_TOKEN_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    async_register_admin_service(
        hass,
        DOMAIN,
        SERVICE_REFRESH_TOKEN,
        _async_refresh_token,
        schema=REFRESH_TOKEN_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )


# ----- open115.add_cloud_download (any user: it reveals no secret) ------------------------------

LINK_SCHEMES: Final = ("http://", "https://", "ftp://", "magnet:?", "ed2k://")
MAX_LINK_LENGTH: Final = 8192
_SHOWN_HOST: Final = 64
_SHOWN_TEXT: Final = 40
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")

ADD_CLOUD_DOWNLOAD_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string,
        vol.Required(ATTR_URLS): vol.Any(cv.string, [cv.string]),
        vol.Optional(ATTR_FOLDER_ID): vol.All(vol.Coerce(str), str.strip),
    }
)


def _shown(text: str) -> str:
    """A line as an error message quotes it: short, and without a link's secret parts.

    A link shows its scheme and host only (no user:password@, path, query or fragment, where
    trackers keep passkeys); other text shows up to its first "/", "?", "#" or "@".
    """
    if (match := _SCHEME.match(text)) is not None:
        scheme, rest = match.group(0), text[match.end() :]
        if not rest.startswith("//"):
            return f"{scheme}…" if rest else scheme
        host = re.split(r"[/?#]", rest[2:], maxsplit=1)[0].rsplit("@", 1)[-1]
        shown = f"{scheme}//{host[:_SHOWN_HOST]}"
        return f"{shown}/…" if len(rest) > 2 + len(host) or len(host) > _SHOWN_HOST else shown
    head = re.split(r"[/?#@]", text, maxsplit=1)[0][:_SHOWN_TEXT]
    return head if head == text else f"{head}…"


def parse_links(urls: str | list[str]) -> list[str]:
    """The links of a list or of text with one link a line; a translated error names a bad one."""
    lines = (
        urls.splitlines() if isinstance(urls, str) else [p for u in urls for p in u.splitlines()]
    )
    links = [line.strip() for line in lines if line.strip()]
    if not links:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="no_links")
    if len(links) > MAX_LINKS_PER_CALL:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="too_many_links",
            translation_placeholders={"count": str(len(links)), "max": str(MAX_LINKS_PER_CALL)},
        )
    for number, link in enumerate(links, 1):
        placeholders = {"line": str(number), "link": _shown(link)}
        if not link.lower().startswith(LINK_SCHEMES):
            key = "unsupported_link" if _SCHEME.match(link) else "not_a_link"
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key=key,
                translation_placeholders=placeholders,
            )
        rest = link.split(":", 1)[1].lstrip("/?")
        if not rest or any(c.isspace() for c in link) or len(link) > MAX_LINK_LENGTH:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="not_a_link",
                translation_placeholders=placeholders,
            )
    return links


async def _async_add_cloud_download(call: ServiceCall) -> ServiceResponse:
    """Add the links as cloud-download tasks; one result per link, in order."""
    links = parse_links(call.data[ATTR_URLS])
    folder_id: str | None = call.data.get(ATTR_FOLDER_ID) or None
    # ASCII digits only: str.isdigit() also takes superscripts and Arabic-Indic digits.
    if folder_id is not None and not (folder_id.isascii() and folder_id.isdigit()):
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="bad_folder_id",
            translation_placeholders={"folder_id": _shown(folder_id)},
        )
    keeper = async_get_keeper(call.hass, call.data.get(ATTR_CONFIG_ENTRY_ID))
    entry: Open115ConfigEntry = keeper.config_entry
    account = entry.runtime_data.account
    try:
        results = await entry.runtime_data.client.offline_add_urls(links, folder_id)
    except Open115RateLimitError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="cloud_download_rate_limited",
            translation_placeholders={"entry_title": entry.title},
        ) from err
    except Open115Error as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="cloud_download_failed",
            translation_placeholders={"entry_title": entry.title, "error": str(err)},
        ) from err
    await account.async_read_soon()  # the user sees the new tasks counted
    return {
        "results": [
            {
                "url": result.url,
                "status": result.status,
                "info_hash": result.info_hash,
                "message": result.message,
            }
            for result in results
        ]
    }


@callback
def async_setup_cloud_download_service(hass: HomeAssistant) -> None:
    """Register `add_cloud_download` for every user (it hands out no secret)."""
    hass.services.async_register(
        DOMAIN,
        SERVICE_ADD_CLOUD_DOWNLOAD,
        _async_add_cloud_download,
        schema=ADD_CLOUD_DOWNLOAD_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
