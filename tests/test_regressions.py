"""Regression tests: each bug the randomized fault injection (test_property.py) found.

Each test names the step sequence that found it.
"""

import asyncio
from dataclasses import dataclass
from datetime import timedelta
import itertools
from typing import Any

from aiohttp import web
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.util import dt as dt_util
import pytest

from custom_components.open115 import async_get_access_token
from custom_components.open115.exceptions import KeeperError
from custom_components.open115.keeper import TokenKeeper
from custom_components.open115.token_record import DATA_RECORDS
from custom_components.open115.token_state import TokenStatus

from .conftest import USER_ID, USER_NAME, advance, make_entry, stored_data
from .emulator import FAULT_CODELESS, FAULT_HANG, FAULT_HTTP_500, REFRESH_PATH, Emulator115, Grant
from .helpers import until

pytestmark = pytest.mark.usefixtures("emulator_url")

RATE_LIMITED = "code:40140117"


@dataclass
class GatedEmulator(Emulator115):
    """The emulator; a refresh request waits at `gate` (when set) and then is answered."""

    gate: asyncio.Event | None = None
    waiting: int = 0

    async def _refresh(self, request: web.Request) -> web.StreamResponse:
        if self.gate is not None:
            self.waiting += 1
            await self.gate.wait()
            self.waiting -= 1
        return await super()._refresh(request)


@pytest.fixture
def emulator() -> Emulator115:
    """The emulator, able to hold a refresh request in flight until the test lets it go."""
    emu = GatedEmulator(clock=lambda: dt_util.utcnow().timestamp())
    emu.add_account(USER_ID, USER_NAME)
    return emu


def refresh_codes(emulator: Emulator115) -> list[int | None]:
    return [r.code for r in emulator.requests if r.path == REFRESH_PATH]


async def test_reload_during_a_failing_refresh_leaves_no_keeper_behind(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    grant: Grant,
    hass_storage: dict[str, Any],
) -> None:
    """Found as [Fault('hang', 1), Force(), Reload(), Wait(60), Wait(7200)], left=700.

    The unloaded keeper's refresh failed after the unload, scheduled a retry on a timer nobody
    cancelled, and later refreshed with its own copy of the token behind the new keeper's back.
    """
    entry = make_entry(emulator, grant, expires_in=700)
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    old: TokenKeeper = entry.runtime_data.keeper
    emulator.inject(REFRESH_PATH, FAULT_HANG)
    forced = hass.loop.create_task(old.async_force_refresh())  # the `refresh_token` action
    await until(lambda: emulator.in_flight_by_path[REFRESH_PATH] == 1)
    await hass.config_entries.async_reload(entry.entry_id)  # e.g. the options changed
    await hass.async_block_till_done()
    new: TokenKeeper = entry.runtime_data.keeper
    assert new is not old
    await advance(hass, freezer, 25)  # the hanging refresh times out in the old keeper
    with pytest.raises(HomeAssistantError):
        await forced
    assert old._unsub_timer is None
    assert old._unsub_expiry is None
    # Whoever still holds the unloaded keeper cannot make it refresh.
    with pytest.raises(KeeperError) as err:
        await old.async_force_refresh()
    assert err.value.translation_key == "token_unavailable"
    assert emulator.count(REFRESH_PATH) == 1
    for _ in range(3 * 60):  # three hours, a minute at a time
        await advance(hass, freezer, 60)
    assert new.data.status is TokenStatus.OK
    assert not list(entry.async_get_active_flows(hass, {SOURCE_REAUTH}))
    assert stored_data(hass_storage, entry)["refresh_token"] == emulator.live_refresh_token(grant)
    # The hang, then the new keeper's refresh within the margin, and one a lifetime later.
    assert refresh_codes(emulator) == [None, 0, 0]


async def test_refresh_in_flight_across_a_reload_is_shared_with_the_new_keeper(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: GatedEmulator,
    grant: Grant,
    hass_storage: dict[str, Any],
) -> None:
    """Found by reasoning over [Force(), Reload(), Ask(900)] with a slow answer, left=700.

    The new keeper did not wait for the old one's refresh (two requests with one refresh
    token: one of them is refused with 40140120 and the entry goes to re-authentication),
    and it kept using the pair it had read at setup, which that refresh had made void.
    """
    entry = make_entry(emulator, grant, expires_in=700)
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    old: TokenKeeper = entry.runtime_data.keeper
    emulator.gate = gate = asyncio.Event()
    forced = hass.loop.create_task(old.async_force_refresh())
    await until(lambda: emulator.waiting == 1)
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    new: TokenKeeper = entry.runtime_data.keeper
    assert new is not old
    # A consumer of the new keeper needs more than the 700 s left: it waits for the refresh
    # in flight instead of sending the same refresh token again.
    asked = hass.loop.create_task(async_get_access_token(hass, min_validity=900))
    await until(lambda: emulator.waiting == 1 and not asked.done())
    emulator.gate = None
    gate.set()
    await forced
    token = await asked
    assert refresh_codes(emulator) == [0]
    assert emulator.max_in_flight_by_path[REFRESH_PATH] == 1
    on_disk = stored_data(hass_storage, entry)
    assert on_disk["refresh_token"] == emulator.live_refresh_token(grant)
    assert token == on_disk["access_token"] == new.data.access_token
    assert new.data.refresh_token == on_disk["refresh_token"]
    assert new.data.status is TokenStatus.OK
    # The new keeper goes on with that pair: its next refresh comes a lifetime later.
    for _ in range(2 * 60):
        await advance(hass, freezer, 60)
    assert refresh_codes(emulator) == [0, 0]
    assert new.data.status is TokenStatus.OK
    assert not list(entry.async_get_active_flows(hass, {SOURCE_REAUTH}))
    assert stored_data(hass_storage, entry)["refresh_token"] == emulator.live_refresh_token(grant)


async def test_setup_retries_with_an_expired_token_keep_the_rate_limit_backoff(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    grant: Grant,
) -> None:
    """Found as [Fault('code:40140117', 60), Wait(3600), Restart(), Wait(600), ...].

    A setup that fails (the stored token expired, 115 rate limits) is retried by Home
    Assistant after 5, 10, 20 ... 600 s, each time by a new keeper that forgot the backoff:
    12 requests in the first hour, each prolonging the rate limit.
    """
    entry = make_entry(emulator, grant, expires_in=1)
    freezer.tick(timedelta(seconds=10))  # Home Assistant was down while the token expired
    emulator.inject(REFRESH_PATH, *[RATE_LIMITED] * 100)
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY
    for _ in range(60):  # one hour, a minute at a time
        await advance(hass, freezer, 60)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    # The keeper's rate-limit backoff (5 min, doubling, +-10 %) allows at most 4 requests in
    # the first hour: at 0, ~300, ~900 and ~2100 s (each at Home Assistant's next retry).
    times = [r.at for r in emulator.requests if r.path == REFRESH_PATH]
    assert 3 <= len(times) <= 4
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 270
    assert gaps[1] >= 540
    # Once 115 lets us refresh again, the next retry sets the entry up.
    emulator.faults.clear()
    for _ in range(60):
        await advance(hass, freezer, 60)
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.keeper.data.status is TokenStatus.OK
    assert entry.data["refresh_token"] == emulator.live_refresh_token(grant)


async def test_reload_while_rate_limited_keeps_the_backoff(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    grant: Grant,
) -> None:
    """Found as [Fault('code:40140117', 4), Wait(6600), Reload(), ...], left=7200.

    The reloaded keeper refreshed at once (its token was due), during the rate limit.
    """
    entry = make_entry(emulator, grant, expires_in=7200)
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    emulator.inject(REFRESH_PATH, RATE_LIMITED, RATE_LIMITED)
    await advance(hass, freezer, 6600)  # the proactive refresh: rate limited
    old: TokenKeeper = entry.runtime_data.keeper
    assert old.data.status is TokenStatus.RATE_LIMITED
    retry_at = old.data.next_refresh
    assert retry_at is not None
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    new: TokenKeeper = entry.runtime_data.keeper
    assert new is not old
    assert emulator.count(REFRESH_PATH) == 1
    assert new.data.status is TokenStatus.RATE_LIMITED
    assert new.data.next_refresh == retry_at
    assert new.data.failures == 1
    # A forced refresh is refused during the backoff, as before the reload.
    with pytest.raises(HomeAssistantError):
        await new.async_force_refresh()
    assert emulator.count(REFRESH_PATH) == 1
    # The retry comes at the old keeper's time; rate limited again, the backoff doubles.
    await advance(hass, freezer, (retry_at - dt_util.utcnow()).total_seconds() - 1)
    assert emulator.count(REFRESH_PATH) == 1
    await advance(hass, freezer, 2)
    assert emulator.count(REFRESH_PATH) == 2
    assert new.data.failures == 2
    second = new.data.next_refresh
    assert second is not None
    assert (second - dt_util.utcnow()).total_seconds() >= 540
    await advance(hass, freezer, (second - dt_util.utcnow()).total_seconds() + 1)
    answers = [(r.code, r.fault) for r in emulator.requests if r.path == REFRESH_PATH]
    assert answers == [(None, RATE_LIMITED), (None, RATE_LIMITED), (0, None)]
    assert new.data.status is TokenStatus.OK


async def test_forced_refresh_is_refused_while_rate_limited_past_expiry(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    grant: Grant,
) -> None:
    """Found as [Fault('code:40140117', 60), Wait(7200), Force()], left=700.

    Once the token ran out, the status said `expired` instead of `rate_limited`, and the
    `refresh_token` action, refused while rate limited, went out during the backoff.
    """
    entry = make_entry(emulator, grant, expires_in=700)
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    keeper: TokenKeeper = entry.runtime_data.keeper
    emulator.inject(REFRESH_PATH, *[RATE_LIMITED] * 60)
    await advance(hass, freezer, 100)  # the proactive refresh (600 s before expiry)
    await advance(hass, freezer, 600)  # the token expires during the backoff
    assert emulator.count(REFRESH_PATH) == 2
    assert keeper.data.status is TokenStatus.EXPIRED
    with pytest.raises(ServiceValidationError) as err:  # refused for the caller's timing
        await keeper.async_force_refresh()
    assert err.value.translation_key == "rate_limited"
    assert emulator.count(REFRESH_PATH) == 2


async def test_removing_the_entry_forgets_its_shared_backoff(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    grant: Grant,
) -> None:
    """The rate-limit backoff shared across reloads goes with the entry (no leftovers)."""
    entry = make_entry(emulator, grant, expires_in=7200)
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    emulator.inject(REFRESH_PATH, RATE_LIMITED)
    await advance(hass, freezer, 6600)  # the proactive refresh: rate limited
    assert entry.runtime_data.keeper.data.status is TokenStatus.RATE_LIMITED
    assert hass.data[DATA_RECORDS][entry.entry_id].failure is not None

    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.entry_id not in hass.data[DATA_RECORDS]
    # Removed means quiet: no retry goes out for the removed entry.
    await advance(hass, freezer, 3600)
    assert emulator.count(REFRESH_PATH) == 1


async def test_refusal_learned_by_a_replaced_keeper_is_not_sent_again(
    hass: HomeAssistant, emulator: GatedEmulator, grant: Grant
) -> None:
    """Found as [..., Revoke(40140110), ..., Wait(7200), Reload(), Reload(), Force()].

    The entry was reloaded while its keeper's refresh was being refused for good: the new
    keeper, set up from the entry as it was before the refusal was stored, waited for the
    lock and then sent the dead token once more.
    """
    entry = make_entry(emulator, grant, expires_in=700)
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    old: TokenKeeper = entry.runtime_data.keeper
    emulator.revoke(grant)
    emulator.gate = gate = asyncio.Event()
    forced = hass.loop.create_task(old.async_force_refresh())
    await until(lambda: emulator.waiting == 1)
    # The new keeper is due at once (the stored token has 300 s left, the margin is 600 s).
    record = hass.data[DATA_RECORDS][entry.entry_id]
    record.token["expires_at"] = (dt_util.utcnow() + timedelta(seconds=300)).isoformat()
    reload = hass.loop.create_task(hass.config_entries.async_reload(entry.entry_id))
    await until(lambda: old._shut_down)
    emulator.gate = None
    gate.set()
    with pytest.raises(HomeAssistantError):
        await forced
    await reload
    await hass.async_block_till_done()
    assert refresh_codes(emulator) == [40140116]
    # The refusal reached the keeper that replaced the old one (the refresh is the entry's).
    assert entry.runtime_data.keeper.data.status is TokenStatus.REAUTH_REQUIRED
    assert any(True for _ in entry.async_get_active_flows(hass, {SOURCE_REAUTH}))
    assert entry.data["refused"] == {"reason": "revoked", "code": 40140116}
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert refresh_codes(emulator) == [40140116]


@pytest.mark.parametrize(
    ("fault", "key", "code"),
    [
        (FAULT_CODELESS, "refresh_backing_off", None),
        ("code:40140118", "refresh_backing_off_code", "40140118"),
    ],
)
async def test_reload_keeps_the_slow_backoff_of_an_unexplained_refusal(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    grant: Grant,
    fault: str,
    key: str,
    code: str | None,
) -> None:
    """Found as [..., Fault('codeless', 4), ..., Reload(), Reload(), Force(), ...], left=7200.

    Only a rate limit's backoff was shared with the keeper a reload makes: after a code-less
    answer the new keeper retried 194 s later instead of waiting the slow backoff.
    """
    entry = make_entry(emulator, grant, expires_in=7200)
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    emulator.inject(REFRESH_PATH, fault, fault)
    await advance(hass, freezer, 6600)  # the proactive refresh: refused without an explanation
    old: TokenKeeper = entry.runtime_data.keeper
    assert old.data.status is TokenStatus.RETRYING
    retry_at = old.data.next_refresh
    assert retry_at is not None
    assert (retry_at - dt_util.utcnow()).total_seconds() >= 270  # 5 min -10 %
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    new: TokenKeeper = entry.runtime_data.keeper
    assert new is not old
    assert (new.data.status, new.data.next_refresh) == (TokenStatus.RETRYING, retry_at)
    assert new.data.last_error == old.data.last_error
    # Forcing is refused for the caller's timing, saying why and when the next try comes.
    with pytest.raises(ServiceValidationError) as err:
        await new.async_force_refresh()
    assert err.value.translation_key == key
    placeholders = err.value.translation_placeholders or {}
    assert placeholders.get("code") == code
    assert placeholders["time"] == dt_util.as_local(retry_at).strftime("%H:%M")
    await advance(hass, freezer, (retry_at - dt_util.utcnow()).total_seconds() - 1)
    assert emulator.count(REFRESH_PATH) == 1
    await advance(hass, freezer, 2)
    assert emulator.count(REFRESH_PATH) == 2


async def test_forced_refresh_during_a_network_retry_goes_now(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    grant: Grant,
) -> None:
    """A retry after a network failure is pending: the action sends now (the window allows)."""
    entry = make_entry(emulator, grant, expires_in=7200)
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    emulator.inject(REFRESH_PATH, FAULT_HTTP_500, FAULT_HTTP_500)
    await advance(hass, freezer, 6600)
    await advance(hass, freezer, 70)  # the first retry (60 s) fails too: the next in ~2 min
    keeper: TokenKeeper = entry.runtime_data.keeper
    assert emulator.count(REFRESH_PATH) == 2
    assert keeper.data.status is TokenStatus.RETRYING
    with pytest.raises(ServiceValidationError) as err:  # within 60 s of the last request
        await keeper.async_force_refresh()
    assert err.value.translation_key == "refresh_too_soon"
    await advance(hass, freezer, 61)
    await keeper.async_force_refresh()
    assert emulator.count(REFRESH_PATH) == 3
    assert keeper.data.status is TokenStatus.OK


async def test_a_run_of_incomplete_refresh_answers_backs_off(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, emulator: Emulator115, grant: Grant
) -> None:
    """Found as [Fault('code:40110000', 4), ..., Fault('expires_in_bool', 60), Wait(29), ...].

    Each answer without a usable lifetime stored a new refresh token and counted as the first
    failure of that token: a retry every 60 s, 56 requests in an hour.
    """
    entry = make_entry(emulator, grant)
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    emulator.inject(REFRESH_PATH, *["expires_in_bool"] * 60)
    await advance(hass, freezer, 6600)  # the proactive refresh: answered without a lifetime
    start = len(refresh_codes(emulator))
    assert start == 1
    for _ in range(60):
        await advance(hass, freezer, 60)
    # Backing off 60, 120, 240, 480, 900, 900, 900 s (each ±10 % jitter): 7 at the most in the
    # hour (was 56).
    assert len(refresh_codes(emulator)) - start <= 7
    assert entry.data["refresh_token"] == emulator.live_refresh_token(grant)
