"""The keeper's policy on its own: margin, jitter, the 60 s window, backoff, rejections."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from custom_components.open115 import policy
from custom_components.open115.const import (
    MAX_SCHEDULE_JITTER,
    REJECTION_ROTATION_INTERVAL,
    RETRY_BACKOFF_MAX,
    SLOW_BACKOFF_MAX,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def low(a: float, b: float) -> float:
    return a


def high(a: float, b: float) -> float:
    return b


def mid(a: float, b: float) -> float:
    return (a + b) / 2


@pytest.mark.parametrize(
    ("option", "lifetime", "expected"), [(600, 7200, 600), (600, 1200, 300), (60, 0, 0)]
)
def test_margin_is_the_option_capped_at_a_quarter_lifetime(
    option: float, lifetime: float, expected: float
) -> None:
    assert policy.margin(option, lifetime) == timedelta(seconds=expected)


def test_needed_validity_is_capped_at_half_a_lifetime() -> None:
    assert policy.needed_validity(60, 7200) == 60.0
    assert policy.needed_validity(86400, 7200) == 3600.0
    assert policy.needed_validity(60, 0) == 0.0


def test_jitter_starts_early_by_at_most_a_twentieth_of_the_margin_or_30_s() -> None:
    assert policy.jittered(NOW, timedelta(seconds=600), low) == NOW
    assert policy.jittered(NOW, timedelta(seconds=600), high) == NOW - 30 * S
    assert policy.jittered(NOW, timedelta(seconds=200), high) == NOW - 10 * S
    floor = policy.jittered_floor(NOW)
    assert floor == NOW - timedelta(seconds=MAX_SCHEDULE_JITTER + 1)
    assert floor < policy.jittered(NOW, timedelta(hours=10), high)


def test_the_60_s_window_and_the_backoff_both_hold() -> None:
    assert policy.window_end(None) is None
    assert policy.window_end(NOW) == NOW + 60 * S
    assert policy.earliest_request(None, None) is None
    assert policy.earliest_request(NOW + 10 * S, None) == NOW + 10 * S
    assert policy.earliest_request(None, NOW) == NOW + 60 * S
    assert policy.earliest_request(NOW + 90 * S, NOW) == NOW + 90 * S
    assert policy.earliest_request(NOW + 10 * S, NOW) == NOW + 60 * S
    assert policy.may_request(NOW, None, None)
    assert not policy.may_request(NOW + 59 * S, None, NOW)
    assert policy.may_request(NOW + 60 * S, None, NOW)
    assert not policy.may_request(NOW + 60 * S, NOW + 61 * S, NOW)


def test_backoff_doubles_from_60_s_to_15_min_with_jitter() -> None:
    delays = [
        (policy.retry_at(NOW, n, slow=False, last_request_at=None, uniform=mid) - NOW)
        for n in (1, 2, 3, 4, 5, 40, 10**6)
    ]
    assert [d.total_seconds() for d in delays] == [60, 120, 240, 480, 900, 900, 900]
    assert policy.retry_at(NOW, 1, slow=False, last_request_at=None, uniform=high) == NOW + 66 * S
    assert policy.retry_at(NOW, 0, slow=False, last_request_at=None, uniform=mid) == NOW + 60 * S
    top = policy.retry_at(NOW, 50, slow=False, last_request_at=None, uniform=high)
    assert top == NOW + RETRY_BACKOFF_MAX * 1.1


def test_slow_backoff_doubles_from_5_min_to_1_h() -> None:
    delays = [
        (policy.retry_at(NOW, n, slow=True, last_request_at=None, uniform=mid) - NOW)
        for n in (1, 2, 3, 4, 5)
    ]
    assert [d.total_seconds() for d in delays] == [300, 600, 1200, 2400, 3600]
    top = policy.retry_at(NOW, 9, slow=True, last_request_at=None, uniform=low)
    assert top == NOW + SLOW_BACKOFF_MAX * 0.9


def test_a_retry_never_falls_inside_the_window_of_the_last_request() -> None:
    # -10 % jitter of 60 s is 54 s: the window of the request just sent still holds.
    assert policy.retry_at(NOW, 1, slow=False, last_request_at=NOW, uniform=low) == NOW + 60 * S


def test_a_rejection_rotates_at_most_every_10_minutes_unless_due() -> None:
    due = NOW + timedelta(hours=1)
    assert policy.may_rotate_for_rejection(NOW, None, due)
    assert not policy.may_rotate_for_rejection(NOW, NOW - 599 * S, due)
    assert policy.may_rotate_for_rejection(NOW, NOW - REJECTION_ROTATION_INTERVAL, due)
    assert policy.may_rotate_for_rejection(NOW, NOW - S, NOW)  # near expiry: due anyway


def test_the_policy_imports_nothing_of_home_assistant() -> None:
    source = Path(policy.__file__).read_text(encoding="utf-8")
    assert "homeassistant" not in source
