"""Sensors: when the token expires, when it is refreshed, and how the keeper is doing."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .data import Open115ConfigEntry
from .entity import Open115Entity
from .token_state import TokenState, TokenStatus

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class Open115SensorEntityDescription(SensorEntityDescription):
    """A sensor that reads one value of the token state."""

    value_fn: Callable[[TokenState], datetime | str | None]


SENSORS: tuple[Open115SensorEntityDescription, ...] = (
    Open115SensorEntityDescription(
        key="access_token_expires",
        translation_key="access_token_expires",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda state: state.expires_at,
    ),
    Open115SensorEntityDescription(
        key="next_refresh",
        translation_key="next_refresh",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda state: state.next_refresh,
    ),
    Open115SensorEntityDescription(
        key="last_refresh",
        translation_key="last_refresh",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda state: state.refreshed_at,
    ),
    Open115SensorEntityDescription(
        key="refresh_token_expires",
        translation_key="refresh_token_expires",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda state: state.refresh_token_expires,
    ),
    Open115SensorEntityDescription(
        key="token_status",
        translation_key="token_status",
        device_class=SensorDeviceClass.ENUM,
        options=[status.value for status in TokenStatus],
        value_fn=lambda state: state.status.value,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: Open115ConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the account's sensors."""
    async_add_entities(
        Open115Sensor(entry.runtime_data.keeper, description) for description in SENSORS
    )


class Open115Sensor(Open115Entity, SensorEntity):
    """A token keeper sensor."""

    entity_description: Open115SensorEntityDescription

    @property
    def native_value(self) -> datetime | str | None:
        """Read the value from the keeper's current state."""
        return self.entity_description.value_fn(self.coordinator.data)
