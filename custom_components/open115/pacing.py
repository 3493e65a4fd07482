"""When the keeper may and must refresh: the margin, 115's 60 s window, backoff, timers.

The keeper (keeper.py) decides what a refresh does; this base class decides when one is due,
when a request may be sent at all, and keeps the timers and the state shared across reloads.
"""

from abc import abstractmethod
import asyncio
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
import random
import time
from typing import TYPE_CHECKING, override

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .api import Open115Error, Open115RateLimitError, Open115TransientError
from .const import (
    BACKOFF_JITTER,
    CONF_REFRESH_MARGIN,
    DEFAULT_REFRESH_MARGIN,
    DOMAIN,
    LOGGER,
    MAX_SCHEDULE_JITTER,
    MIN_REFRESH_INTERVAL,
    RETRY_BACKOFF_MAX,
    RETRY_BACKOFF_START,
    SLOW_BACKOFF_MAX,
    SLOW_BACKOFF_START,
)
from .token_state import TokenState, TokenStatus, state_from_entry

if TYPE_CHECKING:
    from .data import Open115ConfigEntry


@dataclass(frozen=True, slots=True)
class Backoff:
    """A slow backoff: when the refresh token may be sent again, and what the keeper said.

    Slow: 115 rate limited, or refused without a usable code (or with an unknown one).
    """

    refresh_token: str = field(repr=False)
    retry_at: datetime
    failures: int
    failing_since: datetime | None
    status: TokenStatus
    last_error: str
    last_error_code: int | None


@dataclass(slots=True)
class EntryShared:
    """What the keepers of one entry share within a run of Home Assistant.

    A reload or a setup retry replaces the keeper; the new one must not refresh while the old
    one's refresh is in flight, nor forget that 115 asked us to slow down.
    """

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    backoff: Backoff | None = None
    # When the last refresh request was sent (whatever its answer): 115's frequency control
    # counts per authorization, so the next one waits MIN_REFRESH_INTERVAL.
    last_request_at: datetime | None = None


DATA_SHARED: HassKey[dict[str, EntryShared]] = HassKey(f"{DOMAIN}_shared")


class KeeperPacing(DataUpdateCoordinator[TokenState]):
    """The timing half of the token keeper."""

    config_entry: Open115ConfigEntry
    data: TokenState

    def __init__(self, hass: HomeAssistant, entry: Open115ConfigEntry) -> None:
        """Set up from the entry's stored token state, with no timer yet; sends nothing."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {entry.title}",
            update_interval=None,  # the keeper runs its own timer, see _schedule
            always_update=False,
        )
        self.data = state_from_entry(entry)
        self._shared = hass.data.setdefault(DATA_SHARED, {}).setdefault(
            entry.entry_id, EntryShared()
        )
        self._lock = self._shared.lock  # one refresh at a time, across reloads too
        self._unsub_timer: CALLBACK_TYPE | None = None
        self._unsub_expiry: CALLBACK_TYPE | None = None
        self._shut_down = False
        self._retry_at: datetime | None = None
        self._failing_logged = False
        backoff = self._shared.backoff
        if backoff is not None and backoff.refresh_token == self.data.refresh_token:
            # The keeper this one replaces was backing off slowly: keep its backoff.
            self._retry_at = backoff.retry_at
            self.data = replace(
                self.data,
                status=backoff.status,
                next_refresh=backoff.retry_at,
                last_error=backoff.last_error,
                last_error_code=backoff.last_error_code,
                failures=backoff.failures,
                failing_since=backoff.failing_since,
            )

    @abstractmethod
    async def _async_timer_refresh(self) -> None:
        """What the timer does when it fires (the keeper refreshes)."""

    # ----- when a refresh is due, and when a request may be sent ------------------------

    @property
    def margin(self) -> timedelta:
        """Refresh this long before expiry: min(option, a quarter of the lifetime)."""
        option = int(self.config_entry.options.get(CONF_REFRESH_MARGIN, DEFAULT_REFRESH_MARGIN))
        return timedelta(seconds=min(option, self.data.expires_in / 4))

    def refresh_due_at(self) -> datetime:
        """When the proactive refresh of the current token is due (without jitter)."""
        return self.data.expires_at - self.margin

    def _earliest_request(self) -> datetime | None:
        """When the next refresh request may be sent: after the backoff and the 60 s window."""
        last = self._shared.last_request_at
        window = last + MIN_REFRESH_INTERVAL if last is not None else None
        if self._retry_at is None or window is None:
            return self._retry_at or window
        return max(self._retry_at, window)

    def _may_refresh(self, now: datetime) -> bool:
        """Whether a refresh request may be sent now."""
        earliest = self._earliest_request()
        return earliest is None or now >= earliest

    def _valid_for(self, seconds: float) -> bool:
        # time.time() is dt_util.utcnow()'s clock (frozen alike in tests), and far cheaper.
        return self.data.expires_ts - time.time() > seconds

    # ----- after a failure ----------------------------------------------------------------

    def _retry_later(self, err: Open115Error) -> None:
        """Keep the tokens and try again after a capped, jittered exponential backoff."""
        now = dt_util.utcnow()
        failures = self.data.failures + 1
        rate_limited = isinstance(err, Open115RateLimitError)
        # The network, 5xx and 115's "retry" codes retry soon; an answer that refuses for
        # another reason (rate limited, no error code, an unknown code) retries slowly.
        slow = not isinstance(err, Open115TransientError)
        start, cap = (
            (SLOW_BACKOFF_START, SLOW_BACKOFF_MAX)
            if slow
            else (RETRY_BACKOFF_START, RETRY_BACKOFF_MAX)
        )
        delay = min(start * 2 ** min(failures - 1, 16), cap)
        delay *= 1 + random.uniform(-BACKOFF_JITTER, BACKOFF_JITTER)
        # Never inside the 60 s window of the request that just failed, jitter included.
        self._retry_at = max(now + delay, self._earliest_request() or now)
        delay = self._retry_at - now
        status = TokenStatus.RATE_LIMITED if rate_limited else TokenStatus.RETRYING
        # A reload or a setup retry must not cut a slow backoff short.
        self._shared.backoff = (
            Backoff(
                self.data.refresh_token,
                self._retry_at,
                failures,
                self.data.failing_since or now,
                status,
                type(err).__name__,
                err.code,
            )
            if slow
            else None
        )
        if not self._failing_logged:
            LOGGER.warning(
                "Refreshing the 115 token of %s failed (%s); retrying in %d s, the token is kept",
                self.config_entry.title,
                err,
                delay.total_seconds(),
            )
            self._failing_logged = True
        self._publish(
            replace(
                self.data,
                status=status,
                next_refresh=self._retry_at,
                last_error=type(err).__name__,
                last_error_code=err.code,
                failures=failures,
                failing_since=self.data.failing_since or now,
            )
        )
        self._schedule(self._retry_at)
        if self._unsub_expiry is None and self._valid_for(0) and not self._shut_down:
            self._unsub_expiry = async_track_point_in_utc_time(
                self.hass, self._on_expiry, self.data.expires_at
            )

    @callback
    def _on_expiry(self, _now: datetime) -> None:
        """The token ran out while refreshing fails: say so."""
        self._unsub_expiry = None
        if self.data.status in (TokenStatus.RETRYING, TokenStatus.RATE_LIMITED):
            self._publish(self.data)

    # ----- the timer and the published state ---------------------------------------------

    def _jittered(self, due: datetime) -> datetime:
        """Start a little early, at random, so that many keepers do not refresh in step."""
        spread = min(MAX_SCHEDULE_JITTER, self.margin.total_seconds() / 20)
        return due - timedelta(seconds=random.uniform(0, spread))

    def _jittered_floor(self) -> datetime:
        return self.refresh_due_at() - timedelta(seconds=MAX_SCHEDULE_JITTER + 1)

    def _schedule(self, when: datetime) -> None:
        self._cancel_timer()
        if self._shut_down:
            return  # unloaded: a refresh that ends after the unload schedules nothing
        self._unsub_timer = async_track_point_in_utc_time(self.hass, self._on_timer, when)
        if self.data.next_refresh != when and self.data.status is not TokenStatus.REFRESHING:
            self._publish(replace(self.data, next_refresh=when))

    def _cancel_timer(self) -> None:
        if self._unsub_timer is not None:
            self._unsub_timer()
            self._unsub_timer = None

    def _cancel_expiry(self) -> None:
        if self._unsub_expiry is not None:
            self._unsub_expiry()
            self._unsub_expiry = None

    @callback
    def _on_timer(self, _now: datetime) -> None:
        self._unsub_timer = None
        # A tracked task: Home Assistant waits for it (a refresh is short: one request).
        self.config_entry.async_create_task(
            self.hass, self._async_timer_refresh(), f"{DOMAIN} scheduled refresh"
        )

    def _publish(self, state: TokenState) -> None:
        """Make `state` current and tell the entities."""
        if (
            state.status in (TokenStatus.RETRYING, TokenStatus.RATE_LIMITED)
            and state.seconds_left(dt_util.utcnow()) <= 0
        ):
            state = replace(state, status=TokenStatus.EXPIRED)
        self.data = state
        self.async_update_listeners()

    @override
    async def async_shutdown(self) -> None:
        """Stop the timer with the entry; a refresh in flight still stores its pair."""
        self._shut_down = True
        self._cancel_timer()
        self._cancel_expiry()
        await super().async_shutdown()
