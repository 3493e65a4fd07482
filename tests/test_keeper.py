"""The token keeper against the emulator, on Home Assistant's frozen clock."""

import asyncio
from datetime import timedelta
import itertools
import logging
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
)

from custom_components.open115 import async_get_access_token
from custom_components.open115.const import DOMAIN
from custom_components.open115.exceptions import KeeperError, ReauthRequiredError
from custom_components.open115.token_state import TokenStatus

from .conftest import (
    advance,
    keeper_of,
    make_entry,
    setup_entry,
    stored_data,
)
from .emulator import (
    FAULT_DROP_AFTER_ROTATE,
    FAULT_HTTP_502,
    FAULT_RESET,
    REFRESH_PATH,
    USER_INFO_PATH,
    Emulator115,
    Grant,
)

pytestmark = pytest.mark.usefixtures("emulator_url")


async def test_one_day_refreshes_exactly_the_ideal_number_of_times(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    grant: Grant,
    config_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    """24 h of 7200 s tokens, margin 600 s: one refresh per 6600 s, so 13, each stored."""
    await setup_entry(hass, config_entry)
    assert emulator.count(REFRESH_PATH) == 0
    seen = [emulator.live_refresh_token(grant)]
    for _ in range(24 * 60):  # one simulated minute at a time
        await advance(hass, freezer, 60)
        live = emulator.live_refresh_token(grant)
        if seen[-1] != live:
            seen.append(live)
            assert config_entry.data["refresh_token"] == live
            assert stored_data(hass_storage, config_entry)["refresh_token"] == live
    assert emulator.count(REFRESH_PATH) == 86400 // 6600 == 13
    assert len(seen) == 14
    assert all(r.code == 0 for r in emulator.requests if r.path == REFRESH_PATH)
    # The keeper reads no account: these are the account's (at setup, then hourly).
    assert emulator.count(USER_INFO_PATH) == 1 + 24
    assert keeper_of(config_entry).data.status is TokenStatus.OK


async def test_concurrent_askers_at_expiry_share_one_refresh(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    grant: Grant,
    hass_storage: dict[str, Any],
) -> None:
    """100 callers at expiry: exactly one refresh request, all get the new token."""
    entry = make_entry(emulator, grant, expires_in=7200)
    await setup_entry(hass, entry)
    freezer.tick(timedelta(seconds=7200 - 30))  # no timer fired: 30 s left, below min_validity
    tokens = await asyncio.gather(*(async_get_access_token(hass) for _ in range(100)))
    assert emulator.count(REFRESH_PATH) == 1
    assert emulator.max_in_flight == 1
    assert len(set(tokens)) == 1
    assert tokens[0] == entry.data["access_token"]
    assert stored_data(hass_storage, entry)["refresh_token"] == emulator.live_refresh_token(grant)


async def test_restart_with_valid_token_sends_nothing(
    hass: HomeAssistant, emulator: Emulator115, config_entry: MockConfigEntry
) -> None:
    await setup_entry(hass, config_entry)
    for _ in range(3):
        assert await hass.config_entries.async_unload(config_entry.entry_id)
        assert await hass.config_entries.async_setup(config_entry.entry_id)
        await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.LOADED
    assert emulator.count(REFRESH_PATH) == 0
    # The account is read once, at the first start; restarts show the stored read.
    assert emulator.count(USER_INFO_PATH) == 1


async def test_refresh_is_on_disk_before_it_returns(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    grant: Grant,
    config_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    await setup_entry(hass, config_entry)
    freezer.tick(timedelta(seconds=61))  # past the minimum interval of a forced refresh
    coordinator = keeper_of(config_entry)
    old = config_entry.data["refresh_token"]
    before = dt_util.utcnow()
    state = await coordinator.async_force_refresh()
    # No block_till_done: the write must not wait for the store's delayed save.
    on_disk = stored_data(hass_storage, config_entry)
    assert on_disk["refresh_token"] == emulator.live_refresh_token(grant) == state.refresh_token
    assert on_disk["refresh_token"] != old
    assert on_disk["access_token"] == state.access_token
    assert dt_util.parse_datetime(on_disk["expires_at"]) == before + timedelta(seconds=7200)
    # Storing token data does not reload the entry.
    assert keeper_of(config_entry) is coordinator
    assert config_entry.state is ConfigEntryState.LOADED


async def test_setup_within_margin_refreshes_during_setup(
    hass: HomeAssistant, emulator: Emulator115, grant: Grant
) -> None:
    entry = make_entry(emulator, grant, expires_in=300)
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    assert emulator.count(REFRESH_PATH) == 1
    assert entry.data["refresh_token"] == emulator.live_refresh_token(grant)
    assert keeper_of(entry).data.status is TokenStatus.OK


async def test_setup_expired_and_unreachable_is_not_ready(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, emulator: Emulator115, grant: Grant
) -> None:
    entry = make_entry(emulator, grant, expires_in=60)
    data = dict(entry.data)  # as stored before setup
    freezer.tick(timedelta(seconds=120))  # expired
    emulator.inject(REFRESH_PATH, FAULT_HTTP_502)
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.data["refresh_token"] == data["refresh_token"]  # kept
    assert emulator.count(REFRESH_PATH) == 1
    # Home Assistant retries setup (5, 10, 20, 40 s ...); no attempt sends a request within
    # 60 s of the failed one (115's frequency window), the first after it succeeds.
    for _ in range(5):
        await advance(hass, freezer, 10)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert emulator.count(REFRESH_PATH) == 1
    for _ in range(3):
        await advance(hass, freezer, 10)
    assert entry.state is ConfigEntryState.LOADED
    assert emulator.count(REFRESH_PATH) == 2
    assert entry.data["refresh_token"] == emulator.live_refresh_token(grant)


async def test_setup_within_margin_and_unreachable_loads_and_retries(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, emulator: Emulator115, grant: Grant
) -> None:
    entry = make_entry(emulator, grant, expires_in=300)
    data = dict(entry.data)  # as stored before setup
    emulator.inject(REFRESH_PATH, FAULT_RESET)
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    coordinator = keeper_of(entry)
    assert coordinator.data.status is TokenStatus.RETRYING
    assert coordinator.data.access_token == data["access_token"]
    # The first retry comes after 60 s (+10 %), never within 115's 60 s window.
    await advance(hass, freezer, 59)
    assert emulator.count(REFRESH_PATH) == 1
    await advance(hass, freezer, 8)
    assert emulator.count(REFRESH_PATH) == 2
    assert coordinator.data.status is TokenStatus.OK
    assert entry.data["refresh_token"] == emulator.live_refresh_token(grant)


async def test_transient_failures_back_off_exponentially_and_keep_tokens(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    grant: Grant,
    config_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await setup_entry(hass, config_entry)
    kept = dict(config_entry.data)
    emulator.inject(REFRESH_PATH, *([FAULT_HTTP_502] * 8))
    await advance(hass, freezer, 6600)  # the proactive refresh point
    attempts = [r.at for r in emulator.requests if r.path == REFRESH_PATH]
    assert len(attempts) == 1
    for _ in range(4 * 60):  # four simulated hours
        await advance(hass, freezer, 60)
    attempts = [r.at for r in emulator.requests if r.path == REFRESH_PATH]
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    # 60, 120, 240, 480, 900 (cap), 900 ... each +-10 % and rounded up to the minute ticks,
    # never less than 60 s (115's frequency window counts retries too).
    expected = [60, 120, 240, 480, 900, 900, 900, 900]
    for gap, want in zip(gaps, expected, strict=False):
        assert max(want * 0.9 - 1, 60) <= gap <= want * 1.1 + 60
    codes = [(r.code, r.fault) for r in emulator.requests if r.path == REFRESH_PATH]
    # 8 failures, a success, and the next proactive refresh one token lifetime later.
    assert codes == [(None, FAULT_HTTP_502)] * 8 + [(0, None)] * 2
    assert 6600 - 30 - 60 <= gaps[8] <= 6600
    coordinator = keeper_of(config_entry)
    assert coordinator.data.status is TokenStatus.OK
    assert config_entry.data["refresh_token"] == emulator.live_refresh_token(grant)
    assert kept["refresh_token"] != config_entry.data["refresh_token"]
    failing = [
        r
        for r in caplog.records
        if "failed" in r.getMessage() and r.name.startswith("custom_components.open115")
    ]
    recovered = [r for r in caplog.records if "works again" in r.getMessage()]
    assert len(failing) == 1
    assert failing[0].levelno == logging.WARNING
    assert len(recovered) == 1


async def test_expired_while_failing_shows_expired_and_consumers_get_an_error(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    emulator.inject(REFRESH_PATH, *([FAULT_HTTP_502] * 50))
    await advance(hass, freezer, 6600)
    coordinator = keeper_of(config_entry)
    assert coordinator.data.status is TokenStatus.RETRYING
    # Still valid: consumers get the current token without a new request.
    count = emulator.count(REFRESH_PATH)
    assert await async_get_access_token(hass) == config_entry.data["access_token"]
    assert emulator.count(REFRESH_PATH) == count
    await advance(hass, freezer, 601)
    assert coordinator.data.status is TokenStatus.EXPIRED
    with pytest.raises(KeeperError) as err:
        await async_get_access_token(hass)
    assert err.value.translation_key == "token_unavailable"


async def test_rate_limited_backs_off_in_minutes(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    emulator.inject(REFRESH_PATH, "code:40140117", "code:40140117")
    await advance(hass, freezer, 6600)
    coordinator = keeper_of(config_entry)
    assert coordinator.data.status is TokenStatus.RATE_LIMITED
    assert coordinator.data.access_token == config_entry.data["access_token"]
    await advance(hass, freezer, 4 * 60)
    assert emulator.count(REFRESH_PATH) == 1  # nothing for 4 minutes
    await advance(hass, freezer, 2 * 60)
    assert emulator.count(REFRESH_PATH) == 2  # about 5 minutes later
    assert coordinator.data.status is TokenStatus.RATE_LIMITED
    await advance(hass, freezer, 8 * 60)
    assert emulator.count(REFRESH_PATH) == 2  # the next one waits about 10 minutes
    await advance(hass, freezer, 4 * 60)
    assert emulator.count(REFRESH_PATH) == 3
    assert coordinator.data.status is TokenStatus.OK


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (40140114, "malformed"),
        (40140115, "bad_signature"),
        (40140116, "revoked"),
        (40140119, "expired"),
        (40140120, "used"),
    ],
)
async def test_reauth_codes_start_reauth_and_keep_quiet(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    config_entry: MockConfigEntry,
    code: int,
    reason: str,
) -> None:
    await setup_entry(hass, config_entry)
    emulator.inject(REFRESH_PATH, f"code:{code}")
    await advance(hass, freezer, 6600)
    coordinator = keeper_of(config_entry)
    assert coordinator.data.status is TokenStatus.REAUTH_REQUIRED
    assert coordinator.data.reauth_reason == reason
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["context"]["source"] for f in flows] == [SOURCE_REAUTH]
    with pytest.raises(ReauthRequiredError):
        await async_get_access_token(hass)
    for _ in range(24):  # no retries at all
        await advance(hass, freezer, 3600)
    assert emulator.count(REFRESH_PATH) == 1


async def test_lost_response_ends_in_reauth_that_says_so(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    grant: Grant,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    emulator.inject(REFRESH_PATH, FAULT_DROP_AFTER_ROTATE)
    await advance(hass, freezer, 6600)
    coordinator = keeper_of(config_entry)
    assert coordinator.data.status is TokenStatus.RETRYING
    await advance(hass, freezer, 59)
    assert emulator.count(REFRESH_PATH) == 1  # not within 60 s of the lost one
    await advance(hass, freezer, 10)
    assert emulator.count(REFRESH_PATH) == 2
    assert emulator.requests[-1].code == 40140120
    assert coordinator.data.status is TokenStatus.REAUTH_REQUIRED
    assert coordinator.data.reauth_reason == "lost_response"
    assert config_entry.data["refresh_token"] != emulator.live_refresh_token(grant)


async def test_token_rotated_by_someone_else_needs_reauth(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    grant: Grant,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    emulator.rotate_elsewhere(grant)
    await advance(hass, freezer, 6600)
    coordinator = keeper_of(config_entry)
    assert coordinator.data.status is TokenStatus.REAUTH_REQUIRED
    assert coordinator.data.reauth_reason == "used"


async def test_force_refresh_refused_right_after_a_refresh(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    coordinator = keeper_of(config_entry)
    with pytest.raises(KeeperError) as err:  # the stored pair is brand new
        await coordinator.async_force_refresh()
    freezer.tick(timedelta(seconds=61))
    await coordinator.async_force_refresh()
    freezer.tick(timedelta(seconds=59))
    with pytest.raises(KeeperError) as err:
        await coordinator.async_force_refresh()
    assert err.value.translation_key == "refresh_too_soon"
    freezer.tick(timedelta(seconds=2))
    await coordinator.async_force_refresh()
    assert emulator.count(REFRESH_PATH) == 2


async def test_min_validity_refreshes_lazily_and_never_loops(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    freezer.tick(timedelta(seconds=4000))  # 3200 s left
    await async_get_access_token(hass, min_validity=3000)
    assert emulator.count(REFRESH_PATH) == 0
    await async_get_access_token(hass, min_validity=3300)
    assert emulator.count(REFRESH_PATH) == 1
    # Asking for more than a token can give is capped at half a lifetime: no refresh storm.
    for _ in range(10):
        await async_get_access_token(hass, min_validity=86400)
        freezer.tick(timedelta(seconds=60))
    assert emulator.count(REFRESH_PATH) == 1


async def test_force_refresh_refused_while_rate_limited(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    config_entry: MockConfigEntry,
) -> None:
    """A forced refresh during 115's frequency control would only prolong it."""
    await setup_entry(hass, config_entry)
    emulator.inject(REFRESH_PATH, "code:40140117")
    await advance(hass, freezer, 6600)
    coordinator = keeper_of(config_entry)
    assert coordinator.data.status is TokenStatus.RATE_LIMITED
    with pytest.raises(KeeperError) as err:
        await coordinator.async_force_refresh()
    assert err.value.translation_key == "rate_limited"
    assert emulator.count(REFRESH_PATH) == 1
    await advance(hass, freezer, 6 * 60)  # the scheduled retry works
    assert coordinator.data.status is TokenStatus.OK
    assert emulator.count(REFRESH_PATH) == 2
