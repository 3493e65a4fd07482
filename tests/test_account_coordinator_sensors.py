"""The account's sensors: storage, VIP, the cloud-download quota and active downloads.

They read 115 through the entry's client, which asks the keeper for its token (never a
refresh of their own), poll rarely while idle, and go unavailable when their reads fail while the token's own
entities keep telling the token's story.
"""

import asyncio
from datetime import timedelta
import itertools
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.sensor import ATTR_STATE_CLASS
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    ATTR_DEVICE_CLASS,
    ATTR_UNIT_OF_MEASUREMENT,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
)
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.open115 import async_get_access_token
from custom_components.open115.const import (
    ACTIVE_TASKS_INTERVAL,
    IDLE_TASKS_INTERVAL,
    SLOW_BACKOFF_START,
)
from custom_components.open115.diagnostics import async_get_config_entry_diagnostics

from . import helpers
from .cloud_downloads import magnet
from .conftest import USER_ID, advance, setup_entry
from .emulator import (
    CODE_TOO_FREQUENT,
    PROAPI_LIMIT_HTTP_429,
    QUOTA_PATH,
    REFRESH_PATH,
    TASK_LIST_PATH,
    USER_INFO_PATH,
    Emulator115,
)
from .helpers import (
    START,
    account_of,
    state_of,
)

frozen = helpers.frozen  # autouse: a round instant, predictable jitter

TOTAL = "sensor.emu_user_total_storage"
USED = "sensor.emu_user_used_storage"
FREE = "sensor.emu_user_free_storage"
VIP = "sensor.emu_user_vip_expires"
QUOTA = "sensor.emu_user_cloud_download_quota_left"
ACTIVE = "sensor.emu_user_active_cloud_downloads"
EVENT = "event.emu_user_cloud_download"
STATUS = "sensor.emu_user_token_status"
ACCOUNT_ENTITIES = (TOTAL, USED, FREE, VIP, QUOTA, ACTIVE, EVENT)
PROAPI_PATHS = (USER_INFO_PATH, TASK_LIST_PATH, QUOTA_PATH)
GIB = 1024**3
IDLE_DAY_BUDGET = 150  # the contract's limit for an idle account
IDLE_DAY_BUDGET_MEASURED = 99
MAGNET = "magnet:?xt=urn:btih:{:040x}&dn=file{}&xl=1073741824"


def attributes_of(hass: HomeAssistant, entity_id: str) -> dict[str, Any]:
    """The attributes of an entity."""
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return dict(state.attributes)


def proapi_requests(emulator: Emulator115) -> dict[str, int]:
    """Requests per proapi path (only the ones that got any)."""
    return {path: emulator.count(path) for path in PROAPI_PATHS if emulator.count(path)}


async def test_sensors_show_storage_vip_quota_and_downloads(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    emulator.accounts[USER_ID].space_total = 2 * 1024**4
    emulator.accounts[USER_ID].space_used = 511 * GIB + GIB // 2
    vip_until = START + timedelta(days=100)
    emulator.set_vip(USER_ID, "年费VIP", vip_until.timestamp())
    emulator.add_task(USER_ID, magnet(1))
    emulator.set_progress(None, 40.0)
    emulator.add_task(USER_ID, magnet(2))
    emulator.finish_task(None)  # its 1 GiB is in use now

    await setup_entry(hass, config_entry)

    assert state_of(hass, TOTAL) == "2048.0"
    assert state_of(hass, USED) == "512.5"
    assert state_of(hass, FREE) == "1535.5"
    for entity_id in (TOTAL, USED, FREE):
        attributes = attributes_of(hass, entity_id)
        assert attributes[ATTR_DEVICE_CLASS] == "data_size"
        assert attributes[ATTR_UNIT_OF_MEASUREMENT] == "GiB"
        assert attributes[ATTR_STATE_CLASS] == "measurement"
    assert state_of(hass, VIP) == vip_until.isoformat()
    assert attributes_of(hass, VIP)[ATTR_DEVICE_CLASS] == "timestamp"
    assert state_of(hass, QUOTA) == str(emulator.offline_quota - 2)
    assert state_of(hass, ACTIVE) == "1"
    assert state_of(hass, EVENT) == STATE_UNKNOWN  # nothing reported at the first read
    # One read of each, with the keeper's token: no refresh.
    assert proapi_requests(emulator) == {USER_INFO_PATH: 1, TASK_LIST_PATH: 1, QUOTA_PATH: 1}
    assert emulator.count(REFRESH_PATH) == 0


async def test_float_sizes_and_no_vip(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    """115 has sent sizes as JSON floats; an account without VIP has an unknown expiry."""
    emulator.float_sizes = True
    emulator.accounts[USER_ID].space_total = 15 * 1024**4
    emulator.accounts[USER_ID].space_used = 3 * GIB
    emulator.set_vip(USER_ID, None)

    await setup_entry(hass, config_entry)

    assert state_of(hass, TOTAL) == "15360.0"
    assert state_of(hass, USED) == "3.0"
    assert state_of(hass, FREE) == "15357.0"
    assert state_of(hass, VIP) == STATE_UNKNOWN
    assert account_of(config_entry).data.account.space_total == 15 * 1024**4


async def test_first_read_failing_leaves_setup_loaded_and_entities_unavailable(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    emulator.proapi_limit = PROAPI_LIMIT_HTTP_429

    await setup_entry(hass, config_entry)

    assert config_entry.state is ConfigEntryState.LOADED
    for entity_id in ACCOUNT_ENTITIES:
        assert state_of(hass, entity_id) == STATE_UNAVAILABLE
    assert state_of(hass, STATUS) == "ok"  # the token's story is untouched
    emulator.proapi_limit = None
    await advance(hass, freezer, SLOW_BACKOFF_START.total_seconds())
    assert state_of(hass, TOTAL) == "2048.0"
    assert state_of(hass, ACTIVE) == "0"


async def test_rejected_token_mid_poll_one_refresh_for_all(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    """115 refuses the live access token: the poll and another consumer share one refresh."""
    await setup_entry(hass, config_entry)
    old = config_entry.data["access_token"]
    emulator.access_tokens.pop(old)  # 115 voided it early (40140123 from now on)
    freezer.tick(IDLE_TASKS_INTERVAL)

    account = account_of(config_entry)
    _, token = await asyncio.gather(
        account.async_refresh(),
        async_get_access_token(hass, rejected_token=old),
    )
    await hass.async_block_till_done()

    assert emulator.count(REFRESH_PATH) == 1
    assert token == config_entry.data["access_token"] != old
    assert account.last_update_success
    assert state_of(hass, ACTIVE) == "0"
    assert state_of(hass, STATUS) == "ok"
    # The refused read, then the same read with the new token.
    codes = [r.code for r in emulator.requests if r.path == TASK_LIST_PATH]
    assert codes == [0, 40140123, 0]


async def test_token_refused_twice_fails_the_read_not_the_token(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    """Even the refreshed token is refused: one refresh, no loop; the read fails alone."""
    await setup_entry(hass, config_entry)
    emulator.inject(TASK_LIST_PATH, "code:40140125", "code:40140125")
    await advance(hass, freezer, IDLE_TASKS_INTERVAL.total_seconds())

    assert emulator.count(REFRESH_PATH) == 1
    assert state_of(hass, ACTIVE) == STATE_UNAVAILABLE
    assert state_of(hass, STATUS) == "ok"
    # The failed read is retried a minute later, with the new token, and works.
    await advance(hass, freezer, 60)
    assert state_of(hass, ACTIVE) == "0"
    assert emulator.count(REFRESH_PATH) == 1


@pytest.mark.parametrize("limit", [CODE_TOO_FREQUENT, PROAPI_LIMIT_HTTP_429])
async def test_rate_limited_reads_back_off(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    limit: int,
) -> None:
    """proapi's rate limit: unavailable, then 5, 10, 20, 40 minutes between attempts."""
    await setup_entry(hass, config_entry)
    emulator.proapi_limit = limit
    await advance(hass, freezer, IDLE_TASKS_INTERVAL.total_seconds())
    assert state_of(hass, TOTAL) == STATE_UNAVAILABLE
    assert state_of(hass, STATUS) == "ok"

    for _ in range(80):  # 80 minutes
        await advance(hass, freezer, 60)
    attempts = [r.at for r in emulator.requests if r.code == limit]
    gaps = [round(b - a) for a, b in itertools.pairwise(attempts)]
    # Minute ticks: each gap is the backoff, rounded up to the next tick.
    assert [gap // 60 for gap in gaps] == [5, 10, 20, 40]
    # Rate limited reads never touch the token: it was refreshed on its own schedule only
    # (due 15 s before 6600 s, run at the minute tick).
    assert [r.at - START.timestamp() for r in emulator.requests if r.path == REFRESH_PATH] == [6600]
    assert state_of(hass, STATUS) == "ok"

    emulator.proapi_limit = None
    for _ in range(80):
        await advance(hass, freezer, 60)
    assert state_of(hass, TOTAL) == "2048.0"


async def test_idle_day_request_budget(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    """An idle account for 24 h: the task list every 30 min, the rest hourly; 99 <= 150."""
    await setup_entry(hass, config_entry)
    for _ in range(24 * 12):  # five simulated minutes at a time
        await advance(hass, freezer, 300)
    counts = proapi_requests(emulator)
    assert counts == {USER_INFO_PATH: 1 + 24, TASK_LIST_PATH: 1 + 48, QUOTA_PATH: 1 + 24}
    assert sum(counts.values()) == IDLE_DAY_BUDGET_MEASURED <= IDLE_DAY_BUDGET
    assert emulator.count(REFRESH_PATH) == 13  # the keeper's own, on passport, not proapi


async def test_download_day_request_budget(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    """Three one-hour downloads in a day: a read a minute while one runs; 189 requests."""
    await setup_entry(hass, config_entry)
    emulator.download_seconds = 3600
    for hour in range(24):
        if hour in (2, 9, 17):
            emulator.add_task(USER_ID, magnet(hour))
        for _ in range(60):
            await advance(hass, freezer, 60)
    # Each download (added on the hour, right after an idle read) is found by the next idle
    # read 30 min later, then read each minute until it finishes 30 min after that: 30 reads
    # instead of one idle read. The account is read again after each finished download.
    assert proapi_requests(emulator) == {
        USER_INFO_PATH: 1 + 24 + 3,
        TASK_LIST_PATH: 1 + 48 + 3 * 29,
        QUOTA_PATH: 1 + 24,
    }


async def test_active_download_polls_each_minute_then_idles(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    account = account_of(config_entry)
    assert account.update_interval == IDLE_TASKS_INTERVAL
    emulator.add_task(USER_ID, magnet(1))
    await advance(hass, freezer, IDLE_TASKS_INTERVAL.total_seconds())
    assert state_of(hass, ACTIVE) == "1"
    assert account.update_interval == ACTIVE_TASKS_INTERVAL
    before = emulator.count(TASK_LIST_PATH)
    for minute in range(10):
        emulator.set_progress(None, 5.0 * (minute + 1))  # it moves: read every minute
        await advance(hass, freezer, 60)
    assert emulator.count(TASK_LIST_PATH) - before == 10
    emulator.finish_task(None)
    await advance(hass, freezer, 60)
    assert state_of(hass, ACTIVE) == "0"
    assert account.update_interval == IDLE_TASKS_INTERVAL
    # The finished download takes up storage: the account is read again at once.
    assert state_of(hass, USED) == "513.0"


async def test_restart_shows_the_stored_read_without_a_request(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    await advance(hass, freezer, 600)
    before = proapi_requests(emulator)
    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert proapi_requests(emulator) == before
    assert state_of(hass, TOTAL) == "2048.0"
    # The next read is when it would have been without the restart.
    await advance(hass, freezer, IDLE_TASKS_INTERVAL.total_seconds() - 600 - 60)
    assert proapi_requests(emulator) == before
    await advance(hass, freezer, 60)
    assert emulator.count(TASK_LIST_PATH) == before[TASK_LIST_PATH] + 1


async def test_unload_and_remove_clean_up(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    await setup_entry(hass, config_entry)
    key = f"open115.{config_entry.entry_id}.account"
    assert key in hass_storage
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    before = proapi_requests(emulator)
    await advance(hass, freezer, 3 * IDLE_TASKS_INTERVAL.total_seconds())
    assert proapi_requests(emulator) == before  # nothing polls after the unload
    assert await hass.config_entries.async_remove(config_entry.entry_id)
    await hass.async_block_till_done()
    assert key not in hass_storage


async def test_diagnostics_show_how_the_reads_go(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    emulator.add_task(USER_ID, magnet(1))
    await setup_entry(hass, config_entry)
    diagnostics = await async_get_config_entry_diagnostics(hass, config_entry)
    assert diagnostics["account"] == {
        "last_update_success": True,
        "last_error": None,
        "update_interval": ACTIVE_TASKS_INTERVAL.total_seconds(),
        "requests": 3,
        "has_vip": True,
        "quota": {"count": 3000, "used": 1, "left": 2999},
        "tasks": 1,
        "active": 1,
    }
    emulator.proapi_limit = CODE_TOO_FREQUENT
    await advance(hass, freezer, 60)
    diagnostics = await async_get_config_entry_diagnostics(hass, config_entry)
    assert diagnostics["account"]["last_update_success"] is False
    assert diagnostics["account"]["last_error"] == "Open115RateLimitError"
    assert "emu_user" not in str(diagnostics["account"])
