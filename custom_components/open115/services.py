"""Service actions: hand a fresh token to automations, or refresh now (admins only)."""

from __future__ import annotations

from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.service import async_register_admin_service
from homeassistant.util import dt as dt_util
import voluptuous as vol

from .const import (
    ATTR_CONFIG_ENTRY_ID,
    ATTR_MIN_VALIDITY,
    DEFAULT_MIN_VALIDITY,
    DOMAIN,
    MAX_MIN_VALIDITY,
    SERVICE_GET_ACCESS_TOKEN,
    SERVICE_REFRESH_TOKEN,
)
from .coordinator import async_get_coordinator

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
    coordinator = async_get_coordinator(call.hass, call.data.get(ATTR_CONFIG_ENTRY_ID))
    state = await coordinator.async_ensure_valid(call.data[ATTR_MIN_VALIDITY])
    return {
        "access_token": state.access_token,
        "expires_at": state.expires_at.isoformat(),
        "expires_in": max(int(state.seconds_left(dt_util.utcnow())), 0),
        "user_id": coordinator.user_id,
    }


async def _async_refresh_token(call: ServiceCall) -> ServiceResponse:
    """Refresh now; refused while the last refresh is too recent."""
    coordinator = async_get_coordinator(call.hass, call.data.get(ATTR_CONFIG_ENTRY_ID))
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
