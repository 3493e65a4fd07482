"""The cloud-download event: fired once for each task that finishes or fails."""

from typing import override

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .account_coordinator import AccountData
from .const import CLOUD_DOWNLOAD_FAILED, CLOUD_DOWNLOAD_FINISHED
from .data import Open115ConfigEntry
from .entity import Open115AccountEntity

PARALLEL_UPDATES = 0

CLOUD_DOWNLOAD = EventEntityDescription(
    key="cloud_download",
    translation_key="cloud_download",
    event_types=[CLOUD_DOWNLOAD_FINISHED, CLOUD_DOWNLOAD_FAILED],
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: Open115ConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the account's cloud-download event."""
    async_add_entities([Open115CloudDownloadEvent(entry.runtime_data.account, CLOUD_DOWNLOAD)])


class Open115CloudDownloadEvent(Open115AccountEntity, EventEntity):
    """Fires `finished` or `failed` with the task's name, size, info hash and file ids."""

    _handled: AccountData | None = None

    @override
    async def async_added_to_hass(self) -> None:
        """Fire only what reads from now on find (not a read made before this entity)."""
        await super().async_added_to_hass()
        self._handled = self.coordinator.data

    @callback
    @override
    def _handle_coordinator_update(self) -> None:
        """Fire the events of a new read (each read's events once)."""
        data = self.coordinator.data
        if data is not None and data is not self._handled:
            self._handled = data
            for event in data.events:
                task = event.task
                self._trigger_event(
                    event.event_type,
                    {
                        "name": task.name,
                        "size": task.size,
                        "info_hash": task.info_hash,
                        "file_id": task.file_id,
                        "folder_id": task.folder_id,
                    },
                )
                self.async_write_ha_state()
        super()._handle_coordinator_update()
