"""Cloud downloads: the `cloud_download` event (once per task, across restarts) and the
`open115.add_cloud_download` action (validated before any request, one result per link)."""

from __future__ import annotations

from datetime import UTC, datetime
import logging
import random
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import (
    EVENT_STATE_CHANGED,
    MATCH_ALL,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
)
from homeassistant.core import Context, Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers.json import json_dumps
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser

from custom_components.open115.const import DOMAIN, SERVICE_ADD_CLOUD_DOWNLOAD
from custom_components.open115.diagnostics import async_get_config_entry_diagnostics

from .conftest import USER_ID, advance, setup_entry
from .emulator import (
    ADD_URLS_PATH,
    CODE_TOO_FREQUENT,
    DEFAULT_TASK_SIZE,
    REFRESH_PATH,
    TASK_LIST_PATH,
    Emulator115,
)
from .test_secrets import Capture, leaks

START = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)
EVENT = "event.emu_user_cloud_download"
ACTIVE = "sensor.emu_user_active_cloud_downloads"
QUOTA = "sensor.emu_user_cloud_download_quota"
MAGNET = "magnet:?xt=urn:btih:{:040x}&dn=file{}&xl=1073741824"


def magnet(n: int) -> str:
    """A distinct magnet link (1 GiB, named fileN)."""
    return MAGNET.format(n, n)


def hash_of(n: int) -> str:
    """The info hash of `magnet(n)`."""
    return f"{n:040x}"


@pytest.fixture(autouse=True)
def frozen(
    freezer: FrozenDateTimeFactory, monkeypatch: pytest.MonkeyPatch
) -> FrozenDateTimeFactory:
    """Freeze time at a round instant; make jitter predictable (the middle of its range)."""
    freezer.move_to(START)
    monkeypatch.setattr(random, "uniform", lambda a, b: (a + b) / 2)
    return freezer


@pytest.fixture
def fired(hass: HomeAssistant) -> list[tuple[str, dict[str, Any], float]]:
    """Every event the cloud_download entity fires: (type, task attributes, when)."""
    seen: list[tuple[str, dict[str, Any], float]] = []

    @callback
    def _changed(event: Event[EventStateChangedData]) -> None:
        new = event.data["new_state"]
        if event.data["entity_id"] != EVENT or new is None or new.state in (STATE_UNKNOWN, ""):
            return
        old = event.data["old_state"]
        if old is None or old.state in (STATE_UNAVAILABLE, new.state):
            # Added or restored after a restart (the last event, not a new one; automations
            # on event entities skip these too), or only written again.
            return
        attributes = dict(new.attributes)
        kind = attributes.pop("event_type", None)
        if kind is None:
            return
        for key in ("event_types", "friendly_name", "icon"):
            attributes.pop(key, None)
        seen.append((kind, attributes, dt_util.utcnow().timestamp()))

    hass.bus.async_listen(EVENT_STATE_CHANGED, _changed)
    return seen


def state_of(hass: HomeAssistant, entity_id: str) -> str:
    """The state string of an entity."""
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state.state


async def add(
    hass: HomeAssistant, urls: Any, context: Context | None = None, **fields: Any
) -> list[dict[str, Any]]:
    """Call the action and return its `results`."""
    response = await hass.services.async_call(
        DOMAIN,
        SERVICE_ADD_CLOUD_DOWNLOAD,
        {"urls": urls, **fields},
        blocking=True,
        return_response=True,
        context=context,
    )
    assert response is not None
    results: list[dict[str, Any]] = response["results"]  # type: ignore[assignment]
    return results


# ----- the event -----------------------------------------------------------------------------


async def test_first_start_takes_the_tasks_as_they_are(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    fired: list[tuple[str, dict[str, Any], float]],
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
    fired: list[tuple[str, dict[str, Any], float]],
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
    fired: list[tuple[str, dict[str, Any], float]],
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
    assert stored["reported"] == {
        hash_of(1): "finished",
        hash_of(2): "finished",
        hash_of(3): "failed",
    }


async def test_a_running_task_beyond_the_first_page_is_followed(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    fired: list[tuple[str, dict[str, Any], float]],
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


# ----- the action ----------------------------------------------------------------------------


async def test_add_reports_each_link_in_order_and_counts_the_new_tasks_at_once(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    hass_read_only_user: MockUser,
) -> None:
    """Added, duplicate and failed links, one result each; any user may add (no secret)."""
    emulator.add_task(USER_ID, magnet(1))
    bad = "http://example.invalid/gone.iso"
    emulator.refuse_link(bad)
    await setup_entry(hass, config_entry)
    assert state_of(hass, ACTIVE) == "1"
    quota = int(state_of(hass, QUOTA))

    results = await add(
        hass,
        f"{magnet(2)}\n\n  {magnet(1)}  \n{bad}\nftp://example.com/a.iso\n",
        context=Context(user_id=hass_read_only_user.id),
        folder_id="123",
    )

    assert results == [
        {"url": magnet(2), "status": "added", "info_hash": hash_of(2), "message": None},
        {"url": magnet(1), "status": "duplicate", "info_hash": None, "message": "任务已存在"},
        {"url": bad, "status": "failed", "info_hash": None, "message": "错误的链接"},
        {
            "url": "ftp://example.com/a.iso",
            "status": "added",
            "info_hash": emulator.task().info_hash,
            "message": None,
        },
    ]
    assert emulator.count(ADD_URLS_PATH) == 1
    assert emulator.task(hash_of(2)).folder_id == "123"
    # Read at once, without waiting for the next poll: two more tasks, two fewer in the quota.
    assert state_of(hass, ACTIVE) == "3"
    assert state_of(hass, QUOTA) == str(quota - 2)


async def test_add_a_list(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    link = "ed2k://|file|a.iso|1024|0123456789ABCDEF0123456789ABCDEF|/"
    results = await add(hass, [magnet(7), f"  {link} "], config_entry_id=config_entry.entry_id)
    assert [(r["url"], r["status"]) for r in results] == [(magnet(7), "added"), (link, "added")]
    assert state_of(hass, ACTIVE) == "2"


@pytest.mark.parametrize(
    ("urls", "key", "placeholders"),
    [
        ("", "no_links", {}),
        (" \n\t\n", "no_links", {}),
        ([], "no_links", {}),
        ("hello world", "not_a_link", {"line": "1", "link": "hello world"}),
        (
            f"{MAGNET.format(1, 1)}\nsmb://nas/share/x.iso",
            "unsupported_link",
            {"line": "2", "link": "smb://nas/share/x.iso"},
        ),
        (["https://"], "not_a_link", {"line": "1", "link": "https://"}),
        (
            ["https://example.com/a b.iso"],
            "not_a_link",
            {"line": "1", "link": "https://example.com/a b.iso"},
        ),
        (["file:///etc/passwd"], "unsupported_link", {"line": "1", "link": "file:///etc/passwd"}),
    ],
)
async def test_invalid_links_are_refused_before_any_request(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    urls: Any,
    key: str,
    placeholders: dict[str, str],
) -> None:
    await setup_entry(hass, config_entry)
    with pytest.raises(ServiceValidationError) as err:
        await add(hass, urls)
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == key
    assert (err.value.translation_placeholders or {}) == placeholders
    assert emulator.count(ADD_URLS_PATH) == 0


async def test_bad_folder_id_is_refused(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    with pytest.raises(ServiceValidationError) as err:
        await add(hass, magnet(1), folder_id="Downloads")
    assert err.value.translation_key == "bad_folder_id"
    assert emulator.count(ADD_URLS_PATH) == 0


async def test_add_while_rate_limited_says_so(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    emulator.proapi_limit = CODE_TOO_FREQUENT
    with pytest.raises(HomeAssistantError) as err:
        await add(hass, magnet(1))
    assert err.value.translation_key == "cloud_download_rate_limited"
    assert emulator.count(REFRESH_PATH) == 0
    assert state_of(hass, "sensor.emu_user_token_status") == "ok"


async def test_add_with_a_refused_token_reports_it_and_retries_once(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    emulator.access_tokens.pop(config_entry.data["access_token"])
    results = await add(hass, magnet(1))
    assert [r["status"] for r in results] == ["added"]
    assert emulator.count(REFRESH_PATH) == 1
    assert [r.code for r in emulator.requests if r.path == ADD_URLS_PATH] == [40140123, 0]


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
        cap.add(f"log {record.name}", record.getMessage())
        if record.exc_info:
            cap.add(f"log {record.name}", logging.Formatter().formatException(record.exc_info))
    secrets = emulator.secrets_issued()
    assert len(secrets) >= 3  # at least two access tokens and a refresh token were handed out
    assert leaks(cap.texts, secrets) == []
    assert len(cap.errors) == 2
    assert any(e.event_type == "state_changed" and EVENT in str(e.data) for e in cap.events)
