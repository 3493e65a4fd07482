"""The flush of the config entries when Home Assistant's private store is not where it was."""

from datetime import timedelta
import logging
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntries
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.open115.keeper import TokenKeeper

from .conftest import advance, setup_entry, stored_data
from .emulator import Emulator115, Grant

pytestmark = pytest.mark.usefixtures("emulator_url")

HIDDEN = ("_store", "_data_to_save")
MESSAGE = (
    "Cannot write the config entries to disk now: this Home Assistant version has no "
    "config entry store where open115 expects it. A rotated 115 refresh token is saved "
    "only by Home Assistant's delayed save, about a second later, so a crash or power "
    "cut in that second loses it; please report this to open115"
)


class RenamedPrivates:
    """Home Assistant's config entry manager as a release that renamed its private parts."""

    def __init__(self, manager: ConfigEntries) -> None:
        """Wrap the real manager, which keeps working (and saving with its delay) inside."""
        self._manager = manager

    def __getattr__(self, name: str) -> Any:
        """Everything but the two private names open115 reaches for."""
        if name in HIDDEN:
            raise AttributeError(name)
        return getattr(self._manager, name)


async def test_vanished_store_logs_an_error_once_and_the_delayed_save_still_writes(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    grant: Grant,
    config_entry: MockConfigEntry,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await setup_entry(hass, config_entry)
    coordinator: TokenKeeper = config_entry.runtime_data.keeper
    monkeypatch.setattr(hass, "config_entries", RenamedPrivates(hass.config_entries))
    caplog.set_level(logging.DEBUG, logger="custom_components.open115")

    for _ in range(2):
        freezer.tick(timedelta(seconds=61))  # past the minimum interval of a forced refresh
        state = await coordinator.async_force_refresh()
        assert state.refresh_token == emulator.live_refresh_token(grant)
        # Not on disk yet: only Home Assistant's delayed save (1 s) writes it now…
        assert stored_data(hass_storage, config_entry)["refresh_token"] != state.refresh_token
        await advance(hass, freezer, 1)
        # …and it does.
        assert stored_data(hass_storage, config_entry)["refresh_token"] == state.refresh_token

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [(r.name, r.getMessage()) for r in errors] == [("custom_components.open115", MESSAGE)]
    assert emulator.live_refresh_token(grant) not in caplog.text
