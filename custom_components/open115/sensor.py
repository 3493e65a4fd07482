"""Sensors: the token (expiry, refreshes, status) and the account (storage, VIP, downloads)."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import override

from homeassistant.components.sensor import (
    DOMAIN as SENSOR_DOMAIN,
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfInformation
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .account_coordinator import AccountData
from .const import DOMAIN
from .data import Open115ConfigEntry
from .entity import Open115AccountEntity, Open115Entity
from .token_state import TokenState, TokenStatus

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class Open115SensorEntityDescription(SensorEntityDescription):
    """A sensor that reads one value of the token state."""

    value_fn: Callable[[TokenState], datetime | str | None]
    # Whether the sensor can have a value for this token at all (checked at setup).
    exists_fn: Callable[[TokenState], bool] = lambda _state: True


SENSORS: tuple[Open115SensorEntityDescription, ...] = (
    Open115SensorEntityDescription(
        key="access_token_expires",
        translation_key="access_token_expires",
        device_class=SensorDeviceClass.TIMESTAMP,
        # Diagnostic timestamps, for who looks closer: off by default (Token status tells).
        entity_registry_enabled_default=False,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda state: state.expires_at,
    ),
    Open115SensorEntityDescription(
        key="next_refresh",
        translation_key="next_refresh",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_registry_enabled_default=False,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda state: state.next_refresh,
    ),
    Open115SensorEntityDescription(
        key="last_refresh",
        translation_key="last_refresh",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_registry_enabled_default=False,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda state: state.refreshed_at,
    ),
    Open115SensorEntityDescription(
        key="refresh_token_expires",
        translation_key="refresh_token_expires",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda state: state.refresh_token_expires,
        # Known only when open115 saw the authorization (a QR sign-in); a pasted token's year
        # could have begun any time, so it gets no sensor that would stay unknown forever.
        exists_fn=lambda state: state.authorized_at is not None,
    ),
    Open115SensorEntityDescription(
        key="token_status",
        translation_key="token_status",
        device_class=SensorDeviceClass.ENUM,
        options=[status.value for status in TokenStatus],
        value_fn=lambda state: state.status.value,
    ),
)


@dataclass(frozen=True, kw_only=True)
class Open115AccountSensorEntityDescription(SensorEntityDescription):
    """A sensor that reads one value of the account's last read."""

    value_fn: Callable[[AccountData], datetime | int | None]


def _storage(
    key: str, value_fn: Callable[[AccountData], int | None]
) -> Open115AccountSensorEntityDescription:
    return Open115AccountSensorEntityDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.DATA_SIZE,
        state_class=SensorStateClass.MEASUREMENT,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.GIBIBYTES,
        suggested_display_precision=1,
        value_fn=value_fn,
    )


def _free(data: AccountData) -> int | None:
    account = data.account
    if account.space_remain is not None:
        return account.space_remain
    if account.space_total is not None and account.space_used is not None:
        return max(account.space_total - account.space_used, 0)
    return None


ACCOUNT_SENSORS: tuple[Open115AccountSensorEntityDescription, ...] = (
    _storage("storage_total", lambda data: data.account.space_total),
    _storage("storage_used", lambda data: data.account.space_used),
    _storage("storage_free", _free),
    Open115AccountSensorEntityDescription(
        key="vip_expires",
        translation_key="vip_expires",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda data: data.account.vip_expire,
    ),
    Open115AccountSensorEntityDescription(
        key="cloud_download_quota",
        translation_key="cloud_download_quota",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda data: data.quota.surplus,
    ),
    Open115AccountSensorEntityDescription(
        key="cloud_downloads_active",
        translation_key="cloud_downloads_active",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda data: data.active,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: Open115ConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the account's sensors (and drop one that can no longer have a value)."""
    keeper = entry.runtime_data.keeper
    registry = er.async_get(hass)
    for description in SENSORS:
        unique_id = f"{keeper.user_id}_{description.key}"
        if not description.exists_fn(keeper.data) and (
            entity_id := registry.async_get_entity_id(SENSOR_DOMAIN, DOMAIN, unique_id)
        ):
            registry.async_remove(entity_id)  # e.g. a QR sign-in replaced by a pasted token
    async_add_entities(
        Open115Sensor(keeper, description)
        for description in SENSORS
        if description.exists_fn(keeper.data)
    )
    async_add_entities(
        Open115AccountSensor(entry.runtime_data.account, description)
        for description in ACCOUNT_SENSORS
    )


class Open115Sensor(Open115Entity, SensorEntity):
    """A token keeper sensor."""

    entity_description: Open115SensorEntityDescription

    @property
    @override
    def native_value(self) -> datetime | str | None:
        """Read the value from the keeper's current state."""
        return self.entity_description.value_fn(self.coordinator.data)


class Open115AccountSensor(Open115AccountEntity, SensorEntity):
    """A sensor of the account's storage, VIP or cloud downloads."""

    entity_description: Open115AccountSensorEntityDescription

    @property
    @override
    def native_value(self) -> datetime | int | None:
        """Read the value from the account's last read."""
        return self.entity_description.value_fn(self.coordinator.data)
