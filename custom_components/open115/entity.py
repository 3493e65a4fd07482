"""Base entity: one service device per 115 account; entities only read the keeper."""

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .keeper import TokenKeeper


class Open115Entity(CoordinatorEntity[TokenKeeper]):
    """An entity of a 115 account's token keeper."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: TokenKeeper, description: EntityDescription) -> None:
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
