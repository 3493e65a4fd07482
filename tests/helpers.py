"""Helpers shared by the entity, account and cloud-download tests: a round instant on the frozen
clock, an entity's state, the entry's account coordinator, the emulator's successful refreshes,
the loop spun until a condition holds."""

import asyncio
from datetime import UTC, datetime
import random
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.open115.account_coordinator import AccountCoordinator

from .emulator import REFRESH_PATH, Emulator115

START = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen(
    freezer: FrozenDateTimeFactory, monkeypatch: pytest.MonkeyPatch
) -> FrozenDateTimeFactory:
    """Freeze time at a round instant; make jitter predictable (the middle of its range).

    Autouse in each test module that imports it.
    """
    freezer.move_to(START)
    monkeypatch.setattr(random, "uniform", lambda a, b: (a + b) / 2)
    return freezer


def state_of(hass: HomeAssistant, entity_id: str) -> str:
    """The state string of an entity."""
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state.state


def account_of(entry: MockConfigEntry) -> AccountCoordinator:
    """The entry's account coordinator."""
    coordinator: AccountCoordinator = entry.runtime_data.account
    return coordinator


def successful_refreshes(emulator: Emulator115) -> int:
    """Refreshes the emulator answered with a new pair."""
    return sum(1 for r in emulator.requests if r.path == REFRESH_PATH and r.code == 0)


async def until(condition: Any) -> None:
    """Spin the loop until `condition()` (real loopback I/O takes a few rounds)."""
    for _ in range(100_000):
        if condition():
            return
        await asyncio.sleep(0)
    pytest.fail("the condition never came true")
