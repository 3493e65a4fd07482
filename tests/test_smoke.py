"""Smoke: set up an entry against the emulator and get a token."""

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.open115 import async_get_access_token

from .conftest import setup_entry
from .emulator import REFRESH_PATH, Emulator115


async def test_setup_with_valid_token_sends_nothing(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str, config_entry: MockConfigEntry
) -> None:
    await setup_entry(hass, config_entry)
    assert config_entry.state is ConfigEntryState.LOADED
    assert emulator.count(REFRESH_PATH) == 0
    token = await async_get_access_token(hass)
    assert token == config_entry.data["access_token"]
    state = hass.states.get("sensor.emu_user_token_status")
    assert state is not None
    assert state.state == "ok"
