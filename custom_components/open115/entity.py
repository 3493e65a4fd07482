"""Base entities: one service device per 115 account; entities only read their coordinator."""

from typing import override

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .account_coordinator import AccountCoordinator
from .const import DOMAIN
from .keeper import TokenKeeper


class _Open115DeviceEntity[C: TokenKeeper | AccountCoordinator](CoordinatorEntity[C]):
    """An entity of the account's service device, named after its key."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: C, description: EntityDescription) -> None:
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


class Open115Entity(_Open115DeviceEntity[TokenKeeper]):
    """An entity of a 115 account's token keeper."""

    @property
    @override
    def available(self) -> bool:
        """Always available, on purpose (the quality scale's entity-unavailable, answered).

        The keeper's state is known even when 115 is not reachable: the expiry, the next retry
        and the status (`retrying`, `expired`, `reauth_required`) are exactly what a user needs
        to see then. Going unavailable would hide the story the token entities tell.
        """
        return True


class Open115AccountEntity(_Open115DeviceEntity[AccountCoordinator]):
    """An entity of a 115 account's storage or cloud downloads."""

    @property
    @override
    def available(self) -> bool:
        """Available while the account's last read succeeded (never before the first)."""
        return self.coordinator.last_update_success and self.coordinator.data is not None
