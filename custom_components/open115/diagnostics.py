"""Diagnostics: the keeper's view of the token, without the tokens or who the account is."""

from datetime import datetime
from typing import Any, Final

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_ACCESS_TOKEN
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util

from .account_coordinator import AccountCoordinator
from .const import CONF_REFRESH_TOKEN
from .data import Open115ConfigEntry
from .token_state import TokenState, state_from_entry

# Every token, and the account's personal fields (the title is the 115 user name, the unique
# id its user id).
TO_REDACT: Final = frozenset(
    {CONF_ACCESS_TOKEN, CONF_REFRESH_TOKEN, "title", "unique_id", "user_id", "user_name"}
)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _token(state: TokenState) -> dict[str, Any]:
    return {
        "status": state.status.value,
        "expires_at": _iso(state.expires_at),
        "expires_in": state.expires_in,
        "next_refresh": _iso(state.next_refresh),
        "refreshed_at": _iso(state.refreshed_at),
        "authorized_at": _iso(state.authorized_at),
        "refresh_token_expires": _iso(state.refresh_token_expires),
        "failures": state.failures,
        "failing_since": _iso(state.failing_since),
        "last_error": state.last_error,
        "last_error_code": state.last_error_code,
        "reauth_reason": state.reauth_reason,
    }


def _account(coordinator: AccountCoordinator) -> dict[str, Any]:
    """The account reads: how they go, and counts (no names, links or hashes of tasks)."""
    data = coordinator.data
    error = coordinator.last_exception
    return {
        "last_update_success": coordinator.last_update_success,
        "last_error": type(error.__cause__ or error).__name__ if error is not None else None,
        "update_interval": (
            coordinator.update_interval.total_seconds() if coordinator.update_interval else None
        ),
        "requests": coordinator.request_count,
        "has_vip": data.account.vip_expire is not None if data else None,
        "quota": {"count": data.quota.count, "used": data.quota.used, "left": data.quota.surplus}
        if data
        else None,
        "tasks": len(data.tasks) if data else None,
        "active": data.active if data else None,
    }


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: Open115ConfigEntry
) -> dict[str, Any]:
    """Return diagnostics for a config entry (also when it is not loaded)."""
    now = dt_util.utcnow()
    entry_data = async_redact_data(entry.as_dict(), TO_REDACT)
    if entry.state is not ConfigEntryState.LOADED:
        # Nothing keeps the token: what is on disk, without a status.
        state = state_from_entry(entry)
        return {
            "loaded": False,
            "entry_state": entry.state.value,
            "token": {**_token(state), "status": None},
            "timings": {"seconds_left": round(state.seconds_left(now), 1)},
            "options": dict(entry.options),
            "entry": entry_data,
        }
    coordinator = entry.runtime_data.keeper
    state = coordinator.data
    return {
        "loaded": True,
        "entry_state": entry.state.value,
        "token": _token(state),
        "timings": {
            "margin": coordinator.margin.total_seconds(),
            "seconds_left": round(state.seconds_left(now), 1),
            "refresh_due_at": _iso(coordinator.refresh_due_at()),
            "refresh_count": coordinator.refresh_count,
        },
        "account": _account(entry.runtime_data.account),
        "options": dict(entry.options),
        "entry": entry_data,
    }
