"""The entry's token record: a refresh no caller can cut short, flows and reloads that cannot
undo it, the 60 s window across restarts, the token file and its migration (issue 17, 1-5)."""

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, SOURCE_USER
from homeassistant.core import CoreState, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.open115 import async_get_access_token
from custom_components.open115.const import (
    CONF_REFRESH_TOKEN,
    CONF_REFRESHED_AT,
    CONF_REFUSED,
    DOMAIN,
)
from custom_components.open115.exceptions import KeeperError
from custom_components.open115.token_state import TokenStatus

from .conftest import (
    USER_ID,
    USER_NAME,
    advance,
    keeper_of,
    make_entry,
    make_entry_data,
    setup_entry,
    stored_data,
    token_file,
)
from .emulator import FAULT_HTTP_502, REFRESH_PATH, Emulator115, Grant
from .helpers import until

pytestmark = pytest.mark.usefixtures("emulator_url", "no_account_reads")


@dataclass
class HeldEmulator(Emulator115):
    """The emulator; a refresh of a token in `held` waits until the test lets it go."""

    held: set[str] = field(default_factory=set)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: int = 0

    async def _refresh(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        if str(form.get("refresh_token", "")) in self.held:
            self.waiting += 1
            await self.gate.wait()
            self.waiting -= 1
        return await super()._refresh(request)


@pytest.fixture
def emulator() -> Emulator115:
    """The emulator, able to hold a refresh answer while the test acts."""
    emu = HeldEmulator(clock=lambda: dt_util.utcnow().timestamp(), strict_access_tokens=True)
    emu.add_account(USER_ID, USER_NAME)
    return emu


def codes(emulator: Emulator115) -> list[int | None]:
    return [r.code for r in emulator.requests if r.path == REFRESH_PATH]


async def hold_a_refresh(
    hass: HomeAssistant, emulator: HeldEmulator, entry: MockConfigEntry, *, background: bool
) -> asyncio.Task[str]:
    """A consumer that needs more than the token has makes the keeper refresh; 115 holds it."""
    emulator.held.add(entry.data[CONF_REFRESH_TOKEN])
    ask = async_get_access_token(hass, min_validity=3600)
    task: asyncio.Task[str] = (
        entry.async_create_background_task(hass, ask, "consumer")
        if background
        else hass.loop.create_task(ask)
    )
    await until(lambda: emulator.waiting == 1)
    return task


async def release(hass: HomeAssistant, emulator: HeldEmulator, entry: MockConfigEntry) -> None:
    """115 answers the held refresh; wait until the record has stored what it said."""
    emulator.gate.set()
    await until(lambda: emulator.waiting == 0)
    record = getattr(keeper_of(entry), "record", None)  # (also run against the old keeper)
    record_task = record.task if record else None
    if record_task is not None:
        await asyncio.wait([record_task])
    await hass.async_block_till_done()


def assert_live_pair_everywhere(
    emulator: Emulator115, grant: Grant, entry: MockConfigEntry, hass_storage: dict[str, Any]
) -> None:
    live = emulator.live_refresh_token(grant)
    assert stored_data(hass_storage, entry)[CONF_REFRESH_TOKEN] == live
    keeper = keeper_of(entry)
    assert keeper.data.refresh_token == live
    assert keeper.data.access_token in emulator.access_tokens
    assert keeper.data.status is TokenStatus.OK


@pytest.mark.parametrize("how", ["timeout", "cancel"])
async def test_a_caller_cut_short_does_not_cut_the_refresh_short(
    hass: HomeAssistant,
    emulator: HeldEmulator,
    grant: Grant,
    hass_storage: dict[str, Any],
    how: str,
) -> None:
    """Point 1: a consumer's own timeout (or a cancelled task) while 115 holds the answer."""
    entry = make_entry(emulator, grant, expires_in=3000)
    await setup_entry(hass, entry)
    emulator.held.add(entry.data[CONF_REFRESH_TOKEN])

    async def impatient() -> str:
        async with asyncio.timeout(0 if how == "timeout" else None):
            return await async_get_access_token(hass, min_validity=3600)

    consumer = hass.loop.create_task(impatient())
    if how == "cancel":
        await until(lambda: emulator.waiting == 1)
        consumer.cancel()
    with pytest.raises((TimeoutError, asyncio.CancelledError)):
        await consumer
    await until(lambda: emulator.waiting == 1)
    await release(hass, emulator, entry)
    assert codes(emulator) == [0]
    assert_live_pair_everywhere(emulator, grant, entry, hass_storage)
    token = await async_get_access_token(hass, min_validity=3600)
    assert token == keeper_of(entry).data.access_token
    assert codes(emulator) == [0]  # no void token sent afterwards


async def test_a_reload_mid_refresh_hands_the_pair_to_the_new_keeper(
    hass: HomeAssistant, emulator: HeldEmulator, grant: Grant, hass_storage: dict[str, Any]
) -> None:
    """Points 1 and 4: the reload cancels the consumer (a background task of the entry) and
    replaces the keeper; the pair 115 sends afterwards reaches the new keeper, whose hot path
    never hands out the access token that refresh voided (strict: 115 drops it)."""
    entry = make_entry(emulator, grant, expires_in=3000)
    await setup_entry(hass, entry)
    old = keeper_of(entry)
    consumer = await hold_a_refresh(hass, emulator, entry, background=True)
    await hass.config_entries.async_reload(entry.entry_id)
    assert consumer.cancelled()
    new = keeper_of(entry)
    assert new is not old
    await release(hass, emulator, entry)
    assert codes(emulator) == [0]
    assert_live_pair_everywhere(emulator, grant, entry, hass_storage)
    token = await async_get_access_token(hass, min_validity=60)  # the hot path
    assert token in emulator.access_tokens
    assert new.data.next_refresh is not None
    assert old._unsub_timer is None


async def test_stopping_cancels_background_tasks_and_the_pair_is_still_stored(
    hass: HomeAssistant, emulator: HeldEmulator, grant: Grant, hass_storage: dict[str, Any]
) -> None:
    """Point 1: Home Assistant's stop cancels background tasks; the refresh is not one."""
    entry = make_entry(emulator, grant, expires_in=3000)
    await setup_entry(hass, entry)
    consumer = await hold_a_refresh(hass, emulator, entry, background=True)
    for task in list(hass._background_tasks):
        task.cancel("Home Assistant is stopping")
    await asyncio.sleep(0)
    assert consumer.cancelled()
    await release(hass, emulator, entry)
    assert_live_pair_everywhere(emulator, grant, entry, hass_storage)


async def test_no_refresh_starts_while_home_assistant_stops(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, emulator: HeldEmulator, grant: Grant
) -> None:
    """Point 5: while stopping, writes wait for the final one: nothing may rotate."""
    entry = make_entry(emulator, grant, expires_in=30)
    await setup_entry(hass, entry)  # refreshed at setup: now a fresh token
    keeper = keeper_of(entry)
    freezer.tick(7300)  # expired (no timer has run)
    hass.set_state(CoreState.stopping)
    try:
        with pytest.raises(KeeperError) as err:
            await async_get_access_token(hass)
        assert err.value.translation_key == "token_unavailable"
        with pytest.raises(KeeperError):
            await keeper.async_force_refresh()
    finally:
        hass.set_state(CoreState.running)
    assert codes(emulator) == [0]


async def test_the_60_s_window_holds_across_a_restart(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, emulator: HeldEmulator, grant: Grant
) -> None:
    """Point 5: a refresh fails; Home Assistant restarts 10 s later with the token due."""
    entry = make_entry(emulator, grant, expires_in=30)
    emulator.inject(REFRESH_PATH, FAULT_HTTP_502)
    await setup_entry(hass, entry)
    assert codes(emulator) == [None]
    freezer.tick(10)
    assert await hass.config_entries.async_unload(entry.entry_id)
    for key in ("open115_token_records", "open115_shared"):  # the memory of the run is gone
        hass.data.pop(key, None)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert codes(emulator) == [None]
    await advance(hass, freezer, 45)
    assert codes(emulator) == [None]
    await advance(hass, freezer, 10)
    assert codes(emulator) == [None, 0]
    assert keeper_of(entry).data.status is TokenStatus.OK


async def test_an_entry_stored_before_the_token_file_migrates_without_a_request(
    hass: HomeAssistant, emulator: HeldEmulator, grant: Grant, hass_storage: dict[str, Any]
) -> None:
    entry = make_entry(emulator, grant)
    await setup_entry(hass, entry)
    stored = token_file(hass_storage, entry.entry_id)
    assert stored is not None
    assert stored["token"][CONF_REFRESH_TOKEN] == entry.data[CONF_REFRESH_TOKEN]
    assert stored["last_request_at"] is None
    assert codes(emulator) == []
    await hass.config_entries.async_remove(entry.entry_id)
    assert token_file(hass_storage, entry.entry_id) is None


@pytest.mark.parametrize("newer", ["entry", "file"])
async def test_the_later_of_the_token_file_and_the_entry_wins_at_setup(
    hass: HomeAssistant,
    emulator: HeldEmulator,
    grant: Grant,
    hass_storage: dict[str, Any],
    newer: str,
) -> None:
    """An open115 from before the token file, run in between, rotated into the entry only: its
    later pair is the live one. The usual case is the reverse (the entry's data is saved by Home
    Assistant later than the file), and then the file's pair wins."""
    live_data = make_entry_data(emulator, grant)
    live = live_data[CONF_REFRESH_TOKEN]
    refreshed_at = dt_util.parse_datetime(live_data[CONF_REFRESHED_AT])
    assert refreshed_at is not None
    void_data = {
        **live_data,
        CONF_REFRESH_TOKEN: "rt_voided_long_ago",
        CONF_REFRESHED_AT: (refreshed_at - timedelta(hours=2)).isoformat(),
    }
    in_entry, in_file = (live_data, void_data) if newer == "entry" else (void_data, live_data)
    entry = MockConfigEntry(domain=DOMAIN, title=USER_NAME, unique_id=str(USER_ID), data=in_entry)
    hass_storage[f"{DOMAIN}.{entry.entry_id}.token"] = {
        "version": 1,
        "minor_version": 1,
        "key": f"{DOMAIN}.{entry.entry_id}.token",
        "data": {"token": in_file, "last_request_at": None},
    }
    await setup_entry(hass, entry)
    assert codes(emulator) == []  # nothing sent: the live pair's access token is fresh
    assert keeper_of(entry).data.refresh_token == live
    stored = token_file(hass_storage, entry.entry_id)
    assert stored is not None
    assert stored["token"][CONF_REFRESH_TOKEN] == live


# ----- flows racing the keeper (point 3) ---------------------------------------------------


async def paste(hass: HomeAssistant, flow_id: str, token: str) -> dict[str, Any]:
    return dict(
        await hass.config_entries.flow.async_configure(flow_id, {CONF_REFRESH_TOKEN: token})
    )


async def reconfigure(hass: HomeAssistant, entry: MockConfigEntry, token: str) -> str:
    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "reconfigure_token"}
    )
    return str((await paste(hass, result["flow_id"], token))["reason"])


async def reauthenticate(hass: HomeAssistant, entry: MockConfigEntry, token: str) -> str:
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "reauth_confirm"}
    )
    return str((await paste(hass, result["flow_id"], token))["reason"])


async def add_again(hass: HomeAssistant, entry: MockConfigEntry, token: str) -> str:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "token"}
    )
    result = await paste(hass, result["flow_id"], token)
    assert result["type"] is FlowResultType.ABORT
    return str(result["reason"])


FLOWS = {
    "reconfigure": (reconfigure, "reconfigure_successful"),
    "reauth": (reauthenticate, "reauth_successful"),
    "add_again": (add_again, "already_configured_updated"),
}


async def test_the_60_s_window_counts_from_the_flows_own_refresh(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: HeldEmulator,
    grant: Grant,
    hass_storage: dict[str, Any],
) -> None:
    """A pasted token is checked by refreshing it: the window counts from that request, not
    from the last refresh of the chain it replaced."""
    entry = make_entry(emulator, grant, expires_in=3000)
    await setup_entry(hass, entry)
    await async_get_access_token(hass, min_validity=3600)  # the old chain's last refresh
    await advance(hass, freezer, 120)
    new_grant = emulator.authorize(USER_ID)
    flow_time = dt_util.utcnow()
    assert (
        await reconfigure(hass, entry, emulator.live_refresh_token(new_grant))
        == "reconfigure_successful"
    )
    stored = token_file(hass_storage, entry.entry_id)
    assert stored is not None
    assert stored["last_request_at"] == flow_time.isoformat()


@pytest.mark.parametrize("flow", FLOWS)
@pytest.mark.parametrize("old_chain", ["rotated", "pushed_out"])
async def test_a_flows_pair_wins_over_a_refresh_of_the_old_token(
    hass: HomeAssistant,
    emulator: HeldEmulator,
    grant: Grant,
    hass_storage: dict[str, Any],
    flow: str,
    old_chain: str,
) -> None:
    """Point 3: the old chain's refresh is answered after a flow stored a new pair: with the
    old chain's pair (it must not overwrite the new one), or 40140116 because the new
    authorization pushed the old one out (it must not mark the new pair refused)."""
    entry = make_entry(emulator, grant, expires_in=3000)
    await setup_entry(hass, entry)
    consumer = await hold_a_refresh(hass, emulator, entry, background=False)
    new_grant = emulator.authorize(USER_ID)
    if old_chain == "pushed_out":
        emulator.revoke(grant)
    run, reason = FLOWS[flow]
    assert await run(hass, entry, emulator.live_refresh_token(new_grant)) == reason
    await release(hass, emulator, entry)
    await asyncio.gather(consumer, return_exceptions=True)
    await hass.async_block_till_done()
    assert codes(emulator)[-1] == (0 if old_chain == "rotated" else 40140116)
    live = emulator.live_refresh_token(new_grant)
    assert stored_data(hass_storage, entry)[CONF_REFRESH_TOKEN] == live
    assert CONF_REFUSED not in stored_data(hass_storage, entry)
    assert CONF_REFUSED not in entry.data
    keeper = keeper_of(entry)
    assert keeper.data.refresh_token == live
    assert keeper.data.status is TokenStatus.OK
    assert not any(True for _ in entry.async_get_active_flows(hass, {SOURCE_REAUTH}))
    sent = len(codes(emulator))
    assert await async_get_access_token(hass) == keeper.data.access_token
    assert len(codes(emulator)) == sent


async def test_a_refresh_that_dies_with_the_process_is_retried(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: HeldEmulator,
    grant: Grant,
    hass_storage: dict[str, Any],
) -> None:
    """The refresh task itself is cancelled (the stop gave up waiting): a failure, retried
    after the window like a lost answer (115 dropped the request here: the token still works)."""
    entry = make_entry(emulator, grant, expires_in=3000)
    await setup_entry(hass, entry)
    consumer = await hold_a_refresh(hass, emulator, entry, background=False)
    record = keeper_of(entry).record
    assert record.task is not None
    record.task.cancel()
    await asyncio.gather(consumer, return_exceptions=True)
    assert keeper_of(entry).data.status is TokenStatus.RETRYING
    failure = record.failure_now()
    assert failure is not None
    assert failure.maybe_rotated
    emulator.held.clear()
    emulator.gate.set()
    await advance(hass, freezer, 70)
    assert codes(emulator) == [0]
    assert_live_pair_everywhere(emulator, grant, entry, hass_storage)


async def test_removing_the_entry_mid_refresh_leaves_nothing_behind(
    hass: HomeAssistant, emulator: HeldEmulator, grant: Grant, hass_storage: dict[str, Any]
) -> None:
    entry = make_entry(emulator, grant, expires_in=3000)
    await setup_entry(hass, entry)
    consumer = await hold_a_refresh(hass, emulator, entry, background=False)
    task = keeper_of(entry).record.task
    assert task is not None
    await hass.config_entries.async_remove(entry.entry_id)
    await asyncio.gather(consumer, task, return_exceptions=True)
    assert task.cancelled()
    emulator.gate.set()
    await hass.async_block_till_done()
    assert token_file(hass_storage, entry.entry_id) is None
