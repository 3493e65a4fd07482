"""The problem sensor: on while the token is not being kept well."""

from typing import override

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .data import Open115ConfigEntry
from .entity import Open115Entity
from .token_state import PROBLEM_STATUSES

PARALLEL_UPDATES = 0

TOKEN_PROBLEM = BinarySensorEntityDescription(
    key="token_problem",
    translation_key="token_problem",
    device_class=BinarySensorDeviceClass.PROBLEM,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: Open115ConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the account's problem sensor."""
    async_add_entities([Open115ProblemSensor(entry.runtime_data.keeper, TOKEN_PROBLEM)])


class Open115ProblemSensor(Open115Entity, BinarySensorEntity):
    """On while the status is retrying, rate limited, expired or reauth required."""

    @property
    @override
    def is_on(self) -> bool:
        """Whether the token has a problem."""
        return self.coordinator.data.status in PROBLEM_STATUSES
