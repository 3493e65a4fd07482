"""The entities: five sensors and a problem binary sensor that follow the token keeper."""

from datetime import UTC, datetime, timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.sensor import ATTR_OPTIONS
from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.const import (
    ATTR_DEVICE_CLASS,
    EVENT_STATE_CHANGED,
    STATE_OFF,
    STATE_ON,
    STATE_UNKNOWN,
    EntityCategory,
)
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.open115.const import (
    CONF_AUTHORIZED_AT,
    DEFAULT_REFRESH_MARGIN,
    DOMAIN,
    MAX_SCHEDULE_JITTER,
    REFRESH_TOKEN_LIFETIME,
    RETRY_BACKOFF_START,
    SLOW_BACKOFF_START,
)
from custom_components.open115.token_record import async_store_pair

from . import helpers
from .conftest import USER_ID, USER_NAME, make_entry_data, setup_entry
from .emulator import FAULT_HTTP_500, REFRESH_PATH, Emulator115, Grant
from .helpers import (
    START,
    state_of,
)

frozen = helpers.frozen  # autouse: a round instant, predictable jitter

STATUS = "sensor.emu_user_token_status"
PROBLEM = "binary_sensor.emu_user_token_needs_attention"
EXPIRES = "sensor.emu_user_access_token_expires"
NEXT = "sensor.emu_user_next_refresh"
LAST = "sensor.emu_user_last_refresh"
RT_EXPIRES = "sensor.emu_user_refresh_token_expires"
STATUSES = ["ok", "refreshing", "retrying", "rate_limited", "expired", "reauth_required"]
MARGIN = timedelta(seconds=DEFAULT_REFRESH_MARGIN)
# With random.uniform pinned to the middle of its range: the proactive refresh starts half
# the schedule jitter early, and backoff delays have no jitter.
SCHEDULE_EARLY = timedelta(seconds=min(MAX_SCHEDULE_JITTER, DEFAULT_REFRESH_MARGIN / 20) / 2)


async def move(hass: HomeAssistant, freezer: FrozenDateTimeFactory, to: datetime) -> None:
    """Move frozen time and let timers that are due run (the account's reads included)."""
    freezer.move_to(to)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


def iso(when: datetime) -> str:
    """How a timestamp sensor shows a time."""
    return when.astimezone(UTC).isoformat()


def expected_problem_changes(initial: str, statuses: list[str]) -> list[str]:
    """The changes of the problem sensor that a sequence of statuses implies."""
    changes: list[str] = []
    current = initial
    for status in statuses:
        value = STATE_OFF if status in ("ok", "refreshing") else STATE_ON
        if value != current:
            changes.append(value)
            current = value
    return changes


def track(hass: HomeAssistant, entity_id: str) -> list[str]:
    """Record every state an entity takes from now on."""
    seen: list[str] = []

    @callback
    def _changed(event: Event[EventStateChangedData]) -> None:
        new = event.data["new_state"]
        if event.data["entity_id"] == entity_id and new is not None:
            seen.append(new.state)

    hass.bus.async_listen(EVENT_STATE_CHANGED, _changed)
    return seen


@pytest.mark.usefixtures("timestamps_enabled")
async def test_entities_device_and_initial_states(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    await setup_entry(hass, config_entry)

    devices = dr.async_entries_for_config_entry(device_registry, config_entry.entry_id)
    assert len(devices) == 1
    device = devices[0]
    assert device.identifiers == {(DOMAIN, str(USER_ID))}
    assert device.entry_type is dr.DeviceEntryType.SERVICE
    assert device.name == USER_NAME

    expected = {
        EXPIRES: ("access_token_expires", EntityCategory.DIAGNOSTIC),
        NEXT: ("next_refresh", EntityCategory.DIAGNOSTIC),
        LAST: ("last_refresh", EntityCategory.DIAGNOSTIC),
        STATUS: ("token_status", None),
        PROBLEM: ("token_problem", None),
        # The account's (tests/test_account_coordinator_sensors.py tells their story).
        "sensor.emu_user_total_storage": ("storage_total", None),
        "sensor.emu_user_used_storage": ("storage_used", None),
        "sensor.emu_user_free_storage": ("storage_free", None),
        "sensor.emu_user_vip_expires": ("vip_expires", None),
        "sensor.emu_user_cloud_download_quota_left": ("cloud_download_quota", None),
        "sensor.emu_user_active_cloud_downloads": ("cloud_downloads_active", None),
        "event.emu_user_cloud_download": ("cloud_download", None),
    }
    entries = er.async_entries_for_config_entry(entity_registry, config_entry.entry_id)
    assert {entry.entity_id for entry in entries} == set(expected)
    for entity_id, (key, category) in expected.items():
        entry = entity_registry.async_get(entity_id)
        assert entry is not None
        assert entry.unique_id == f"{USER_ID}_{key}"
        assert entry.translation_key == key
        assert entry.has_entity_name
        assert entry.device_id == device.id
        assert entry.entity_category == category

    expires_at = START + timedelta(seconds=emulator.expires_in)
    assert state_of(hass, EXPIRES) == iso(expires_at)
    assert state_of(hass, NEXT) == iso(expires_at - MARGIN - SCHEDULE_EARLY)
    assert state_of(hass, LAST) == iso(START)
    # A pasted token's one-year limit is unknown: no sensor that would stay unknown forever.
    assert hass.states.get(RT_EXPIRES) is None
    assert state_of(hass, STATUS) == "ok"
    assert state_of(hass, PROBLEM) == STATE_OFF
    for entity_id in (EXPIRES, NEXT, LAST):
        state = hass.states.get(entity_id)
        assert state is not None
        assert state.attributes[ATTR_DEVICE_CLASS] == "timestamp"
    status = hass.states.get(STATUS)
    assert status is not None
    assert status.attributes[ATTR_DEVICE_CLASS] == "enum"
    assert status.attributes[ATTR_OPTIONS] == STATUSES
    problem = hass.states.get(PROBLEM)
    assert problem is not None
    assert problem.attributes[ATTR_DEVICE_CLASS] == "problem"
    assert emulator.count(REFRESH_PATH) == 0


async def test_refresh_token_expires_when_authorization_known(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str, grant: Grant
) -> None:
    authorized_at = START - timedelta(days=100)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=USER_NAME,
        unique_id=str(USER_ID),
        data={**make_entry_data(emulator, grant), CONF_AUTHORIZED_AT: authorized_at.isoformat()},
    )
    await setup_entry(hass, entry)
    assert state_of(hass, RT_EXPIRES) == iso(authorized_at + REFRESH_TOKEN_LIFETIME)

    # The token is replaced by a pasted one (Reconfigure): its year is unknown, the sensor goes
    # from the entity registry too (not left behind as "unavailable").
    await async_store_pair(
        hass, entry, {k: v for k, v in entry.data.items() if k != CONF_AUTHORIZED_AT}
    )
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(RT_EXPIRES) is None
    assert er.async_get(hass).async_get(RT_EXPIRES) is None
    assert state_of(hass, STATUS) == "ok"


@pytest.mark.usefixtures("timestamps_enabled")
async def test_states_follow_the_keeper(
    hass: HomeAssistant,
    frozen: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    statuses = track(hass, STATUS)
    problems = track(hass, PROBLEM)
    expires_at = START + timedelta(seconds=emulator.expires_in)
    first_refresh = expires_at - MARGIN - SCHEDULE_EARLY

    # A transient failure at the refresh point: refreshing, then retrying; the token is kept.
    emulator.inject(REFRESH_PATH, FAULT_HTTP_500)
    await move(hass, frozen, first_refresh)
    assert emulator.count(REFRESH_PATH) == 1
    assert statuses == ["refreshing", "retrying"]
    assert state_of(hass, PROBLEM) == STATE_ON
    assert state_of(hass, NEXT) == iso(first_refresh + RETRY_BACKOFF_START)
    assert state_of(hass, EXPIRES) == iso(expires_at)
    assert state_of(hass, LAST) == iso(START)

    # The retry is rate limited: rate_limited, with the (second failure's) longer backoff.
    emulator.inject(REFRESH_PATH, "code:40140117")
    retry = first_refresh + RETRY_BACKOFF_START
    await move(hass, frozen, retry)
    assert emulator.count(REFRESH_PATH) == 2
    # A retry keeps its status while it runs: no flicker through "refreshing".
    assert statuses[2:] == ["rate_limited"]
    assert state_of(hass, PROBLEM) == STATE_ON
    next_retry = retry + SLOW_BACKOFF_START * 2
    assert next_retry > expires_at
    assert state_of(hass, NEXT) == iso(next_retry)

    # The token runs out while refreshing fails: expired, without any request.
    await move(hass, frozen, expires_at - timedelta(seconds=1))
    assert state_of(hass, STATUS) == "rate_limited"
    await move(hass, frozen, expires_at)
    assert statuses[3:] == ["expired"]
    assert state_of(hass, PROBLEM) == STATE_ON
    assert emulator.count(REFRESH_PATH) == 2

    # A failing retry after expiry stays expired.
    emulator.inject(REFRESH_PATH, FAULT_HTTP_500)
    await move(hass, frozen, next_retry)
    assert emulator.count(REFRESH_PATH) == 3
    assert statuses[4:] == []
    assert state_of(hass, PROBLEM) == STATE_ON

    # Recovery: the next retry works and everything is fine again.
    recovered = datetime.fromisoformat(state_of(hass, NEXT))
    assert recovered > next_retry
    await move(hass, frozen, recovered)
    assert emulator.count(REFRESH_PATH) == 4
    assert statuses[4:] == ["ok"]
    assert state_of(hass, PROBLEM) == STATE_OFF
    new_expiry = recovered + timedelta(seconds=emulator.expires_in)
    assert state_of(hass, EXPIRES) == iso(new_expiry)
    assert state_of(hass, LAST) == iso(recovered)
    assert state_of(hass, NEXT) == iso(new_expiry - MARGIN - SCHEDULE_EARLY)
    assert config_entry.data["access_token"] in emulator.access_tokens

    # The authorization is revoked: the next refresh needs re-authentication.
    emulator.revoke(grant)
    await move(hass, frozen, new_expiry - MARGIN - SCHEDULE_EARLY)
    assert emulator.count(REFRESH_PATH) == 5
    assert statuses[5:] == ["refreshing", "reauth_required"]
    assert state_of(hass, PROBLEM) == STATE_ON
    assert state_of(hass, NEXT) == STATE_UNKNOWN
    assert state_of(hass, EXPIRES) == iso(new_expiry)
    assert config_entry.async_get_active_flows(hass, {SOURCE_REAUTH})

    # Nothing more is tried, even past expiry.
    await move(hass, frozen, new_expiry + timedelta(hours=2))
    assert emulator.count(REFRESH_PATH) == 5
    assert state_of(hass, STATUS) == "reauth_required"

    assert statuses == [
        "refreshing",
        "retrying",
        "rate_limited",
        "expired",
        "ok",
        "refreshing",
        "reauth_required",
    ]
    # Through all of it, the problem sensor was on exactly while the status was neither
    # ok nor refreshing, without going off during the retries.
    assert problems == expected_problem_changes(STATE_OFF, statuses)
    assert problems == [STATE_ON, STATE_OFF, STATE_ON]


@pytest.mark.usefixtures("timestamps_enabled")
async def test_successful_refresh_passes_through_refreshing(
    hass: HomeAssistant,
    frozen: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    statuses = track(hass, STATUS)
    problems = track(hass, PROBLEM)
    due = START + timedelta(seconds=emulator.expires_in) - MARGIN - SCHEDULE_EARLY
    await move(hass, frozen, due - timedelta(seconds=1))
    assert emulator.count(REFRESH_PATH) == 0
    await move(hass, frozen, due)
    assert emulator.count(REFRESH_PATH) == 1
    assert statuses == ["refreshing", "ok"]
    assert problems == []
    assert state_of(hass, LAST) == iso(due)


async def test_diagnostic_timestamps_are_off_by_default(
    hass: HomeAssistant,
    emulator_url: str,
    config_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """The quality scale's entity-disabled-by-default: the three timestamps, nothing else."""
    await setup_entry(hass, config_entry)
    entries = er.async_entries_for_config_entry(entity_registry, config_entry.entry_id)
    disabled = {
        e.entity_id for e in entries if e.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    }
    assert disabled == {EXPIRES, NEXT, LAST}
    assert [
        e.entity_id
        for e in entries
        if e.disabled_by not in (None, er.RegistryEntryDisabler.INTEGRATION)
    ] == []
    for entity_id in (EXPIRES, NEXT, LAST):
        assert hass.states.get(entity_id) is None
    assert state_of(hass, STATUS) == "ok"
    assert state_of(hass, PROBLEM) == STATE_OFF
