"""When the keeper may and must refresh: pure arithmetic, no Home Assistant.

The margin before expiry, the jitter of the proactive refresh, 115's 60 s window, the backoff
after failures, and how often a report of a refused access token may rotate the token.
"""

from collections.abc import Callable
from datetime import datetime, timedelta
import random

from .const import (
    BACKOFF_JITTER,
    MAX_SCHEDULE_JITTER,
    MIN_REFRESH_INTERVAL,
    REJECTION_ROTATION_INTERVAL,
    RETRY_BACKOFF_MAX,
    RETRY_BACKOFF_START,
    SLOW_BACKOFF_MAX,
    SLOW_BACKOFF_START,
)

type Uniform = Callable[[float, float], float]


def margin(option: float, lifetime: float) -> timedelta:
    """Refresh this long before expiry: min(the option, a quarter of the token's lifetime)."""
    return timedelta(seconds=min(option, lifetime / 4))


def needed_validity(min_validity: float, lifetime: float) -> float:
    """What a caller's `min_validity` means: capped at half a token's lifetime."""
    return min(float(min_validity), lifetime / 2)


def jittered(due: datetime, margin_: timedelta, uniform: Uniform | None = None) -> datetime:
    """Start a little early, at random, so that many keepers do not refresh in step."""
    spread = min(MAX_SCHEDULE_JITTER, margin_.total_seconds() / 20)
    return due - timedelta(seconds=(uniform or random.uniform)(0, spread))


def jittered_floor(due: datetime) -> datetime:
    """The earliest time `jittered(due, …)` can give (a timer firing before it is stale)."""
    return due - timedelta(seconds=MAX_SCHEDULE_JITTER + 1)


def window_end(last_request_at: datetime | None) -> datetime | None:
    """When 115's 60 s window after the last request (whatever its answer) ends."""
    return None if last_request_at is None else last_request_at + MIN_REFRESH_INTERVAL


def earliest_request(
    retry_at: datetime | None, last_request_at: datetime | None
) -> datetime | None:
    """When the next refresh request may be sent: after the backoff and the 60 s window."""
    times = [t for t in (retry_at, window_end(last_request_at)) if t is not None]
    return max(times) if times else None


def may_request(now: datetime, retry_at: datetime | None, last: datetime | None) -> bool:
    """Whether a refresh request may be sent now."""
    earliest = earliest_request(retry_at, last)
    return earliest is None or now >= earliest


def retry_at(
    now: datetime,
    failures: int,
    *,
    slow: bool,
    last_request_at: datetime | None,
    uniform: Uniform | None = None,
) -> datetime:
    """When to try again after `failures` failures in a row: capped, jittered, doubling.

    Slow (rate limited, or refused without a usable code): 5 min doubling to 1 h; otherwise
    60 s doubling to 15 min; never inside the 60 s window of the last request, jitter included.
    """
    start, cap = (
        (SLOW_BACKOFF_START, SLOW_BACKOFF_MAX) if slow else (RETRY_BACKOFF_START, RETRY_BACKOFF_MAX)
    )
    delay: timedelta = min(start * float(2 ** min(max(failures, 1) - 1, 16)), cap)
    delay *= 1 + (uniform or random.uniform)(-BACKOFF_JITTER, BACKOFF_JITTER)
    return max(now + delay, window_end(last_request_at) or now)


def may_rotate_for_rejection(
    now: datetime, last_rotation: datetime | None, due_at: datetime
) -> bool:
    """Whether a report that 115 refused the access token may rotate it now.

    At most once per REJECTION_ROTATION_INTERVAL, unless the token is due anyway: an answer
    that a new token does not cure must not rotate the token on every read.
    """
    return (
        last_rotation is None or now - last_rotation >= REJECTION_ROTATION_INTERVAL or now >= due_at
    )
