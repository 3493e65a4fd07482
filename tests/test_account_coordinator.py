"""The account coordinator's reads against the emulator: backoff, pages, keys, stalls, names.

Issue 17, points 6-12: each test here failed on the code before it.
"""

import itertools
import json
import logging
import socket
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.update_coordinator import UpdateFailed
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.open115.const import DOMAIN, IDLE_TASKS_INTERVAL, MAX_TASK_PAGES

from . import helpers
from .cloud_downloads import ACTIVE, Fired, add, hash_of, magnet, track_fired
from .conftest import USER_ID, advance, keeper_of, setup_entry
from .emulator import (
    FAULT_HTTP_500,
    QUOTA_PATH,
    REFRESH_PATH,
    TASK_LIST_PATH,
    USER_INFO_PATH,
    Emulator115,
)
from .helpers import (
    account_of,
    state_of,
)

frozen = helpers.frozen  # autouse: a round instant, predictable jitter

PASSKEY = "0123456789abcdef0123"
TRACKER_LINK = f"https://me:pw@t.example/dl/{PASSKEY}/file.torrent?passkey={PASSKEY}"


@pytest.fixture
def fired(hass: HomeAssistant) -> Fired:
    return track_fired(hass)


def read_times(emulator: Emulator115, path: str = TASK_LIST_PATH) -> list[float]:
    """When `path` was requested (a retry with a new token counts once)."""
    return sorted({r.at for r in emulator.requests if r.path == path})


def gaps(times: list[float]) -> list[int]:
    return [round(b - a) for a, b in itertools.pairwise(times)]


# ----- point 6: a refusal a new token does not cure ------------------------------------------


@pytest.mark.parametrize("code", [40140118, 40100000])
async def test_an_uncured_refusal_is_reported_once_and_reads_back_off(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    code: int,
) -> None:
    """While a download runs: one report, not a rotation per poll; the reads back off."""
    await setup_entry(hass, config_entry)
    await add(hass, magnet(1))
    emulator.set_progress(hash_of(1), 10.0)
    await advance(hass, freezer, 60)
    assert state_of(hass, ACTIVE) == "1"
    refreshes, start = emulator.count(REFRESH_PATH), emulator.clock()
    reads = emulator.count(TASK_LIST_PATH)
    emulator.proapi_refusal = code
    for _ in range(180):  # three hours
        await advance(hass, freezer, 60)
    refused = [t for t in read_times(emulator) if t > start]
    assert gaps(refused)[:6] == [60, 120, 240, 480, 960, 1800]
    assert set(gaps(refused)[5:]) == {1800}
    # One report for the first refusal. The keeper's own rotation (its 2 h token is due once
    # in three hours) hands out a token not got by reporting: refused, it is reported once
    # too. Three refreshes in three hours, not one per poll; each report costs one retry.
    assert emulator.count(REFRESH_PATH) - refreshes == 3
    assert emulator.count(TASK_LIST_PATH) - reads == len(refused) + 2
    assert state_of(hass, "sensor.emu_user_token_status") == "ok"


# ----- point 7: a restart just before a read is due -------------------------------------------


async def test_failed_reads_after_a_restart_back_off_from_the_nominal_intervals(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await advance(hass, freezer, IDLE_TASKS_INTERVAL.total_seconds() - 5)
    emulator.inject(TASK_LIST_PATH, *[FAULT_HTTP_500] * 50)
    restart = emulator.clock()
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    for _ in range(120):  # ten minutes in 5 s steps
        await advance(hass, freezer, 5)
    # The first read when it was due (5 s), then 60 s, 120 s, 240 s: not every 5 s.
    assert [round(t - restart) for t in read_times(emulator) if t >= restart] == [5, 65, 185, 425]


# ----- point 8: every page that can hold news --------------------------------------------------


async def test_35_tasks_added_at_once_are_all_followed(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    fired: Fired,
) -> None:
    await setup_entry(hass, config_entry)
    await add(hass, [magnet(n) for n in range(35)])
    assert state_of(hass, ACTIVE) == "35"
    pages = emulator.count(TASK_LIST_PATH)
    for n in range(35):
        emulator.finish_task(hash_of(n))
    await advance(hass, freezer, 60)
    assert sorted(attrs["info_hash"] for _, attrs, _ in fired) == sorted(
        hash_of(n) for n in range(35)
    )
    assert state_of(hass, ACTIVE) == "0"
    assert emulator.count(TASK_LIST_PATH) - pages == 2  # both pages, once
    # All ended and seen: page 1 is enough from now on.
    await advance(hass, freezer, IDLE_TASKS_INTERVAL.total_seconds())
    assert emulator.count(TASK_LIST_PATH) - pages == 3


async def test_a_running_task_past_the_page_cap_is_still_counted(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    fired: Fired,
) -> None:
    emulator.tasks_per_page = 2
    await setup_entry(hass, config_entry)
    await add(hass, magnet(100))
    assert state_of(hass, ACTIVE) == "1"
    for n in range(2 * MAX_TASK_PAGES):  # newer tasks push it past the cap
        emulator.add_task(USER_ID, magnet(n))
        emulator.finish_task(hash_of(n))
    before = emulator.count(TASK_LIST_PATH)
    await advance(hass, freezer, 60)
    assert emulator.count(TASK_LIST_PATH) - before == MAX_TASK_PAGES
    assert state_of(hass, ACTIVE) == "1"
    assert len(fired) == 2 * MAX_TASK_PAGES
    for n in range(2 * MAX_TASK_PAGES):  # cleared: back within reach, and finished
        emulator.remove_task(hash_of(n))
    emulator.finish_task(hash_of(100))
    await advance(hass, freezer, 60)
    assert state_of(hass, ACTIVE) == "0"
    assert fired[-1][1]["info_hash"] == hash_of(100)


# ----- point 9: a task removed and added again -------------------------------------------------


async def test_a_task_removed_and_added_again_fires_again(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    fired: Fired,
    hass_storage: dict[str, Any],
) -> None:
    await setup_entry(hass, config_entry)
    await add(hass, magnet(1))
    emulator.finish_task(hash_of(1))
    await advance(hass, freezer, 60)
    first = emulator.task(hash_of(1)).add_time
    emulator.remove_task(hash_of(1))
    await advance(hass, freezer, IDLE_TASKS_INTERVAL.total_seconds())
    await advance(hass, freezer, 60)  # the delayed save
    seen = hass_storage[f"{DOMAIN}.{config_entry.entry_id}.account"]["data"]["seen"]
    assert seen == {}  # it left the list: forgotten
    emulator.add_task(USER_ID, magnet(1))  # again, and it finishes before the next read
    emulator.finish_task(hash_of(1))
    await advance(hass, freezer, IDLE_TASKS_INTERVAL.total_seconds())
    assert [(kind, attrs["info_hash"]) for kind, attrs, _ in fired] == [
        ("finished", hash_of(1)),
        ("finished", hash_of(1)),
    ]
    assert emulator.task(hash_of(1)).add_time > first


# ----- point 10: a stalled task ----------------------------------------------------------------


async def test_a_stalled_task_slows_the_polling_to_the_idle_budget(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    """0 % for a day, no peers: about the idle day's requests, not 1,440 task-list reads."""
    await setup_entry(hass, config_entry)
    await add(hass, magnet(1))  # never moves
    for _ in range(24 * 60):
        await advance(hass, freezer, 60)
    times = read_times(emulator)
    assert gaps(times)[:11] == [60] * 6 + [120, 240, 480, 960, 1800]
    assert set(gaps(times)[10:]) == {1800}
    day = sum(emulator.count(p) for p in (USER_INFO_PATH, TASK_LIST_PATH, QUOTA_PATH))
    assert day <= 150
    assert state_of(hass, ACTIVE) == "1"
    # It moves: read every minute again.
    emulator.set_progress(hash_of(1), 1.0)
    await advance(hass, freezer, 1800)
    before = emulator.count(TASK_LIST_PATH)
    for minute in range(3):
        emulator.set_progress(hash_of(1), 2.0 + minute)
        await advance(hass, freezer, 60)
    assert emulator.count(TASK_LIST_PATH) - before == 3


# ----- point 11: a week without network --------------------------------------------------------


async def test_a_week_without_network_retries_calmly(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await setup_entry(hass, config_entry)
    with socket.socket() as sock:  # a port nothing listens on: connections are refused
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    account, keeper = account_of(config_entry), keeper_of(config_entry)
    account.client.proapi_url = dead
    keeper.client.passport_url = dead
    caplog.set_level(logging.WARNING)
    for _ in range(7 * 24 * 12):
        await advance(hass, freezer, 300)
    assert "Unexpected error" not in caplog.text
    assert "Traceback" not in caplog.text
    assert isinstance(account.last_exception, UpdateFailed)
    assert account._failures > 300
    assert account.last_exception.retry_after == IDLE_TASKS_INTERVAL.total_seconds()


# ----- point 12: names and links ---------------------------------------------------------------


async def test_a_nameless_task_is_named_by_dn_or_hash_and_no_link_is_stored(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    fired: Fired,
    hass_storage: dict[str, Any],
) -> None:
    named = f"magnet:?xt=urn:btih:{hash_of(7)}&dn=Big%20File&tr=https%3A%2F%2Ft.example%2F{PASSKEY}"
    await setup_entry(hass, config_entry)
    tracker = emulator.add_task(USER_ID, TRACKER_LINK, name="")
    emulator.add_task(USER_ID, named, name="")
    await advance(hass, freezer, IDLE_TASKS_INTERVAL.total_seconds())
    emulator.finish_task(tracker)
    emulator.finish_task(hash_of(7))
    await advance(hass, freezer, 60)
    assert sorted(attrs["name"] for _, attrs, _ in fired) == sorted(["Big File", tracker])
    stored = json.dumps(hass_storage[f"{DOMAIN}.{config_entry.entry_id}.account"])
    assert PASSKEY not in stored
    assert "t.example" not in stored
    assert all(PASSKEY not in json.dumps(attrs) for _, attrs, _ in fired)


async def test_a_stored_read_of_an_older_version_is_taken_without_repeating_events(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    fired: Fired,
    hass_storage: dict[str, Any],
) -> None:
    """Written keyed by info hash alone, with a nameless task's link as its name."""
    tracker = emulator.add_task(USER_ID, TRACKER_LINK, name="")
    emulator.finish_task(tracker)
    await setup_entry(hass, config_entry)
    await add(hass, magnet(1))
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    key = f"{DOMAIN}.{config_entry.entry_id}.account"
    data = hass_storage[key]["data"]
    for task in data["read"]["tasks"]:
        task["url"] = emulator.task(task["info_hash"]).url
        if task["info_hash"] == tracker:
            task["name"] = TRACKER_LINK
    hass_storage[key]["data"] = {"reported": {tracker: "finished"}, "read": data["read"]}
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    emulator.finish_task(hash_of(1))
    await advance(hass, freezer, 60)
    assert [(kind, attrs["info_hash"]) for kind, attrs, _ in fired] == [("finished", hash_of(1))]
    assert PASSKEY not in json.dumps(hass_storage[key])
    assert account_of(config_entry).data.tasks[-1].name == tracker
