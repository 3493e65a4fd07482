"""The token's state: what the entry stores of it, and the keeper's view of it."""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_ACCESS_TOKEN
from homeassistant.util import dt as dt_util

from .api import TokenPair
from .const import (
    CONF_AUTHORIZED_AT,
    CONF_EXPIRES_AT,
    CONF_EXPIRES_IN,
    CONF_REFRESH_TOKEN,
    CONF_REFRESHED_AT,
    CONF_REFUSED,
    REFRESH_TOKEN_LIFETIME,
)


class TokenStatus(StrEnum):
    """What the keeper is doing with the token (the `token_status` sensor)."""

    OK = "ok"
    REFRESHING = "refreshing"
    RETRYING = "retrying"
    RATE_LIMITED = "rate_limited"
    EXPIRED = "expired"
    REAUTH_REQUIRED = "reauth_required"


PROBLEM_STATUSES = frozenset(
    {
        TokenStatus.RETRYING,
        TokenStatus.RATE_LIMITED,
        TokenStatus.EXPIRED,
        TokenStatus.REAUTH_REQUIRED,
    }
)


@dataclass(frozen=True, slots=True)
class TokenState:
    """A snapshot of the entry's token and of the keeper's view of it."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: datetime
    expires_in: int
    refreshed_at: datetime | None = None
    authorized_at: datetime | None = None
    status: TokenStatus = TokenStatus.OK
    next_refresh: datetime | None = None
    last_error: str | None = None
    last_error_code: int | None = None
    failures: int = 0
    failing_since: datetime | None = None
    reauth_reason: str | None = None
    # `expires_at` as a POSIX timestamp: the consumers' hot path compares floats.
    expires_ts: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Derive `expires_ts`."""
        object.__setattr__(self, "expires_ts", self.expires_at.timestamp())

    @property
    def refresh_token_expires(self) -> datetime | None:
        """The refresh token's one-year limit, when the authorization time is known."""
        if self.authorized_at is None:
            return None
        return self.authorized_at + REFRESH_TOKEN_LIFETIME

    def seconds_left(self, now: datetime) -> float:
        """How long the access token still lives."""
        return (self.expires_at - now).total_seconds()


TOKEN_KEYS = (
    CONF_REFRESH_TOKEN,
    CONF_ACCESS_TOKEN,
    CONF_EXPIRES_AT,
    CONF_EXPIRES_IN,
    CONF_REFRESHED_AT,
    CONF_AUTHORIZED_AT,
    CONF_REFUSED,
)


def token_data(pair: TokenPair, authorized_at: datetime | None) -> dict[str, Any]:
    """The entry data that stores a pair (what survives a restart)."""
    data: dict[str, Any] = {
        CONF_REFRESH_TOKEN: pair.refresh_token,
        CONF_ACCESS_TOKEN: pair.access_token,
        CONF_EXPIRES_AT: pair.expires_at.isoformat(),
        CONF_EXPIRES_IN: pair.expires_in,
        CONF_REFRESHED_AT: pair.received_at.isoformat(),
    }
    if authorized_at is not None:
        data[CONF_AUTHORIZED_AT] = authorized_at.isoformat()
    return data


def _parse_time(value: Any) -> datetime | None:
    return dt_util.parse_datetime(value) if isinstance(value, str) else None


def state_from_entry(entry: ConfigEntry) -> TokenState:
    """Read the stored token state of an entry."""
    return state_from_data(entry.data)


def state_from_data(data: Mapping[str, Any]) -> TokenState:
    """Read a stored token state (the entry data's token keys)."""
    expires_at = _parse_time(data.get(CONF_EXPIRES_AT)) or dt_util.utc_from_timestamp(0)
    state = TokenState(
        access_token=str(data.get(CONF_ACCESS_TOKEN, "")),
        refresh_token=str(data[CONF_REFRESH_TOKEN]),
        expires_at=expires_at,
        # 0: 115's answer gave no usable lifetime; the token counts as due (and expired) now.
        expires_in=int(data.get(CONF_EXPIRES_IN, 7200) or 0),
        refreshed_at=_parse_time(data.get(CONF_REFRESHED_AT)),
        authorized_at=_parse_time(data.get(CONF_AUTHORIZED_AT)),
    )
    refused = data.get(CONF_REFUSED)
    if isinstance(refused, dict):  # 115 refused this refresh token for good (a past run)
        code = refused.get("code")
        return replace(
            state,
            status=TokenStatus.REAUTH_REQUIRED,
            reauth_reason=str(refused.get("reason") or "invalid"),
            last_error="Open115AuthError",
            last_error_code=code if isinstance(code, int) else None,
        )
    return state
