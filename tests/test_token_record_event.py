"""The event `open115_token_refreshed`: after every rotation, once the pair is on disk."""

from datetime import datetime, timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.open115 import async_get_access_token
from custom_components.open115.const import (
    DOMAIN,
    EVENT_TOKEN_REFRESHED,
    MIN_REFRESH_INTERVAL,
    SERVICE_GET_ACCESS_TOKEN,
    SERVICE_REFRESH_TOKEN,
)

from .conftest import USER_ID, setup_entry, stored_entry
from .emulator import FAULT_HTTP_500, REFRESH_PATH, Emulator115, Grant
from .helpers import START, successful_refreshes


@pytest.fixture(autouse=True)
def frozen(freezer: FrozenDateTimeFactory) -> FrozenDateTimeFactory:
    """Freeze time at a round instant before any token is issued."""
    freezer.move_to(START)
    return freezer


async def move(hass: HomeAssistant, freezer: FrozenDateTimeFactory, to: datetime) -> None:
    """Move frozen time and let timers that are due run."""
    freezer.move_to(to)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


def stored_entry_data(hass_storage: dict[str, Any], entry_id: str) -> dict[str, Any]:
    """The entry's data as written to disk (the test storage; its token from the token file)."""
    return dict(stored_entry(hass_storage, entry_id)["data"])


def next_refresh(hass: HomeAssistant) -> datetime:
    """Just past the time the next-refresh sensor shows (it shows whole seconds)."""
    state = hass.states.get("sensor.emu_user_next_refresh")
    assert state is not None
    return datetime.fromisoformat(state.state) + timedelta(seconds=1)


@pytest.mark.usefixtures("timestamps_enabled")
async def test_event_after_every_rotation_with_the_pair_on_disk(
    hass: HomeAssistant,
    frozen: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    config_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
) -> None:
    await setup_entry(hass, config_entry)
    seen: list[tuple[dict[str, Any], dict[str, Any], str]] = []

    @callback
    def _refreshed(event: Event) -> None:
        # What is on disk and what 115 holds, at the moment the event is delivered.
        on_disk = stored_entry_data(hass_storage, config_entry.entry_id)
        seen.append((dict(event.data), on_disk, emulator.live_refresh_token(grant)))

    hass.bus.async_listen(EVENT_TOKEN_REFRESHED, _refreshed)

    def check_last(count: int) -> None:
        assert len(seen) == count == successful_refreshes(emulator)
        data, on_disk, live = seen[-1]
        assert on_disk["refresh_token"] == live
        assert on_disk["access_token"] == config_entry.data["access_token"]
        assert on_disk["access_token"] in emulator.access_tokens
        expires_at = dt_util.utcnow() + timedelta(seconds=emulator.expires_in)
        assert data == {
            "config_entry_id": config_entry.entry_id,
            "user_id": str(USER_ID),
            "expires_at": expires_at.isoformat(),
        }
        assert on_disk["expires_at"] == data["expires_at"]

    # No event at setup (nothing rotated).
    await hass.async_block_till_done()
    assert seen == []

    # 1: the proactive refresh.
    await move(hass, frozen, START + timedelta(seconds=emulator.expires_in - 600))
    await hass.async_block_till_done()
    check_last(1)

    # 2: the refresh_token action.
    await move(hass, frozen, dt_util.utcnow() + MIN_REFRESH_INTERVAL)
    await hass.services.async_call(DOMAIN, SERVICE_REFRESH_TOKEN, {}, blocking=True)
    check_last(2)

    # 3: the get_access_token action with a min_validity the token cannot meet.
    await move(hass, frozen, dt_util.utcnow() + timedelta(seconds=emulator.expires_in - 100))
    await hass.services.async_call(
        DOMAIN,
        SERVICE_GET_ACCESS_TOKEN,
        {"min_validity": 200},
        blocking=True,
        return_response=True,
    )
    check_last(3)

    # 4: another integration asking through the Python API.
    await move(hass, frozen, dt_util.utcnow() + timedelta(seconds=emulator.expires_in - 30))
    await async_get_access_token(hass, min_validity=60)
    check_last(4)

    # A failed refresh rotates nothing and announces nothing; the retry that works does.
    emulator.inject(REFRESH_PATH, FAULT_HTTP_500)
    await move(hass, frozen, next_refresh(hass))
    assert emulator.count(REFRESH_PATH) == 5
    assert len(seen) == 4
    await move(hass, frozen, next_refresh(hass))
    check_last(5)

    # Nothing secret in any of them.
    secrets = emulator.secrets_issued()
    for data, _, _ in seen:
        assert not {str(value) for value in data.values()} & secrets
        assert not any(secret in repr(data) for secret in secrets)


async def test_no_event_when_the_refresh_token_is_dead(
    hass: HomeAssistant,
    frozen: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    events: list[Event] = []
    hass.bus.async_listen(EVENT_TOKEN_REFRESHED, events.append)
    emulator.revoke(grant)
    await move(hass, frozen, START + timedelta(seconds=emulator.expires_in - 600))
    assert emulator.count(REFRESH_PATH) == 1
    assert hass.states.get("sensor.emu_user_token_status").state == "reauth_required"  # type: ignore[union-attr]
    assert events == []
