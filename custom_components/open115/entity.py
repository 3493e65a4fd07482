"""Base entity: one service device per 115 account; entities only read the keeper."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import Open115Coordinator


class Open115Entity(CoordinatorEntity[Open115Coordinator]):
    """An entity of a 115 account's token keeper."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: Open115Coordinator, description: EntityDescription) -> None:
        """Name the entity after its key; attach it to the account's device."""
        super().__init__(coordinator)
        self.entity_description = description
        self._attr_unique_id = f"{coordinator.user_id}_{description.key}"
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, coordinator.user_id)},
            name=coordinator.config_entry.title,
            manufacturer="115",
            model="Open Platform token",
            entry_type=DeviceEntryType.SERVICE,
        )

    @property
    def available(self) -> bool:
        """Always available: a failing refresh is shown by the status, not hidden."""
        return True
