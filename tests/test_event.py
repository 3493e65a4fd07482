"""The `cloud_download` event: fired once per task that finishes or fails, across restarts,
with nothing in it (or anywhere new) that holds a token."""

import logging
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import MATCH_ALL, STATE_UNKNOWN
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.json import json_dumps
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.open115.const import DOMAIN
from custom_components.open115.diagnostics import async_get_config_entry_diagnostics

from . import helpers
from .cloud_downloads import (
    ACTIVE,
    EVENT,
    Fired,
    add,
    hash_of,
    magnet,
    track_fired,
)
from .conftest import USER_ID, advance, setup_entry
from .emulator import (
    CODE_TOO_FREQUENT,
    DEFAULT_TASK_SIZE,
    TASK_LIST_PATH,
    Emulator115,
)
from .helpers import (
    START,
    state_of,
)
from .secret_scan import Capture, leaks

frozen = helpers.frozen  # autouse: a round instant, predictable jitter


@pytest.fixture
def fired(hass: HomeAssistant) -> Fired:
    """Every event the cloud_download entity fires."""
    return track_fired(hass)


# ----- the event -----------------------------------------------------------------------------


async def test_first_start_takes_the_tasks_as_they_are(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    fired: Fired,
) -> None:
    """Old finished and failed tasks are not news; a running one that finishes later is."""
    emulator.add_task(USER_ID, magnet(1))
    emulator.finish_task(hash_of(1))
    emulator.add_task(USER_ID, magnet(2))
    emulator.fail_task(hash_of(2))
    emulator.add_task(USER_ID, magnet(3), folder_id="777")
    emulator.set_progress(hash_of(3), 50.0)

    await setup_entry(hass, config_entry)
    assert fired == []
    assert state_of(hass, EVENT) == STATE_UNKNOWN
    assert state_of(hass, ACTIVE) == "1"

    await advance(hass, freezer, 20)
    finished_at = dt_util.utcnow().timestamp()
    task = emulator.finish_task(hash_of(3))
    for _ in range(4):
        await advance(hass, freezer, 60)
    assert fired == [
        (
            "finished",
            {
                "name": "file3",
                "size": DEFAULT_TASK_SIZE,
                "info_hash": hash_of(3),
                "file_id": task.file_id,
                "folder_id": "777",
            },
            fired[0][2],
        )
    ]
    assert fired[0][2] - finished_at <= 120  # within 2 minutes of the task finishing
    assert state_of(hass, ACTIVE) == "0"


async def test_a_failing_task_fires_failed_once(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    fired: Fired,
) -> None:
    await setup_entry(hass, config_entry)
    await add(hass, [magnet(5)])
    emulator.fail_task(hash_of(5))
    for _ in range(30):
        await advance(hass, freezer, 60)
    assert [(kind, attrs) for kind, attrs, _ in fired] == [
        (
            "failed",
            {
                "name": "file5",
                "size": DEFAULT_TASK_SIZE,
                "info_hash": hash_of(5),
                "file_id": None,
                "folder_id": "0",
            },
        )
    ]
    # Idle again: the next read is 30 min away, and fires nothing new.
    await advance(hass, freezer, 1800)
    assert len(fired) == 1


async def test_restart_with_downloads_running_reports_each_task_once(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    fired: Fired,
    hass_storage: dict[str, Any],
) -> None:
    await setup_entry(hass, config_entry)
    await add(hass, [magnet(1), magnet(2), magnet(3)])
    emulator.finish_task(hash_of(1))
    await advance(hass, freezer, 60)
    assert [(kind, attrs["info_hash"]) for kind, attrs, _ in fired] == [("finished", hash_of(1))]

    # Restart right away (the stored read is fresh), and later (it is stale): nothing again.
    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    await advance(hass, freezer, 120)
    assert len(fired) == 1
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    emulator.finish_task(hash_of(2))  # while Home Assistant is down
    await advance(hass, freezer, 3600)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert [(kind, attrs["info_hash"]) for kind, attrs, _ in fired] == [
        ("finished", hash_of(1)),
        ("finished", hash_of(2)),
    ]
    assert state_of(hass, ACTIVE) == "1"
    emulator.fail_task(hash_of(3))
    await advance(hass, freezer, 60)
    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    await advance(hass, freezer, 7200)
    assert [(kind, attrs["info_hash"]) for kind, attrs, _ in fired] == [
        ("finished", hash_of(1)),
        ("finished", hash_of(2)),
        ("failed", hash_of(3)),
    ]
    stored = hass_storage[f"{DOMAIN}.{config_entry.entry_id}.account"]["data"]
    added = int(START.timestamp())  # tasks are keyed by info hash and add time
    assert stored["seen"] == {
        f"{hash_of(1)}@{added}": "finished",
        f"{hash_of(2)}@{added}": "finished",
        f"{hash_of(3)}@{added}": "failed",
    }


async def test_a_running_task_beyond_the_first_page_is_followed(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    fired: Fired,
) -> None:
    """Newer tasks push a running one to page 2: it is still read, and its end reported."""
    emulator.tasks_per_page = 2
    await setup_entry(hass, config_entry)
    await add(hass, [magnet(1)])
    await add(hass, [magnet(2), magnet(3)])
    emulator.finish_task(hash_of(2))
    emulator.finish_task(hash_of(3))
    await advance(hass, freezer, 60)
    emulator.finish_task(hash_of(1))
    await advance(hass, freezer, 60)
    assert sorted(attrs["info_hash"] for _, attrs, _ in fired) == [
        hash_of(1),
        hash_of(2),
        hash_of(3),
    ]


# ----- secrets -------------------------------------------------------------------------------


async def test_no_token_in_the_new_surfaces(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """States, attributes, events, action responses and errors, diagnostics and logs."""
    caplog.set_level(logging.DEBUG)
    cap = Capture()

    @callback
    def _any_event(event: Event) -> None:
        cap.events.append(event)

    hass.bus.async_listen(MATCH_ALL, _any_event)
    await setup_entry(hass, config_entry)
    cap.add("add", await add(hass, [magnet(1), magnet(1), "http://example.com/x"]))
    emulator.access_tokens.pop(config_entry.data["access_token"])  # refused mid-poll
    emulator.finish_task(hash_of(1))
    await advance(hass, freezer, 60)
    emulator.inject(TASK_LIST_PATH, "code:40140125", "code:40140125")  # refused twice
    await advance(hass, freezer, 60)
    emulator.proapi_limit = CODE_TOO_FREQUENT
    for call in (lambda: add(hass, magnet(2)), lambda: add(hass, "not a link")):
        try:
            await call()
        except HomeAssistantError as err:
            cap.error("add", err)
    await advance(hass, freezer, 600)
    cap.diagnostics.append(await async_get_config_entry_diagnostics(hass, config_entry))
    emulator.proapi_limit = None
    await advance(hass, freezer, 3600)
    cap.diagnostics.append(await async_get_config_entry_diagnostics(hass, config_entry))

    for state in hass.states.async_all():
        cap.add(f"state {state.entity_id}", state.as_dict())
    for event in cap.events:
        cap.add(f"event {event.event_type}", json_dumps(event.data))
    for diagnostics in cap.diagnostics:
        cap.add("diagnostics", json_dumps(diagnostics))
    for record in caplog.records:
        if record.name.startswith("pytest_homeassistant"):
            continue  # the harness's mock storage logs what it writes (the token file)
        cap.add(f"log {record.name}", record.getMessage())
        if record.exc_info:
            cap.add(f"log {record.name}", logging.Formatter().formatException(record.exc_info))
    secrets = emulator.secrets_issued()
    assert len(secrets) >= 3  # at least two access tokens and a refresh token were handed out
    assert leaks(cap.texts, secrets) == []
    assert len(cap.errors) == 2
    assert any(e.event_type == "state_changed" and EVENT in str(e.data) for e in cap.events)
