"""Helpers of the cloud-download tests: links, the action, and what the event entity fires."""

from typing import Any

from homeassistant.const import EVENT_STATE_CHANGED, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import Context, Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.util import dt as dt_util

from custom_components.open115.const import DOMAIN, SERVICE_ADD_CLOUD_DOWNLOAD

EVENT = "event.emu_user_cloud_download"
ACTIVE = "sensor.emu_user_active_cloud_downloads"
QUOTA = "sensor.emu_user_cloud_download_quota_left"
MAGNET = "magnet:?xt=urn:btih:{:040x}&dn=file{}&xl=1073741824"

type Fired = list[tuple[str, dict[str, Any], float]]


def magnet(n: int) -> str:
    """A distinct magnet link (1 GiB, named fileN)."""
    return MAGNET.format(n, n)


def hash_of(n: int) -> str:
    """The info hash of `magnet(n)`."""
    return f"{n:040x}"


def track_fired(hass: HomeAssistant) -> Fired:
    """Every event the cloud_download entity fires from now on: (type, attributes, when)."""
    seen: Fired = []

    @callback
    def _changed(event: Event[EventStateChangedData]) -> None:
        new = event.data["new_state"]
        if event.data["entity_id"] != EVENT or new is None or new.state in (STATE_UNKNOWN, ""):
            return
        old = event.data["old_state"]
        if old is None or old.state in (STATE_UNAVAILABLE, new.state):
            # Added or restored after a restart (the last event, not a new one; automations
            # on event entities skip these too), or only written again.
            return
        attributes = dict(new.attributes)
        kind = attributes.pop("event_type", None)
        if kind is None:
            return
        for key in ("event_types", "friendly_name", "icon"):
            attributes.pop(key, None)
        seen.append((kind, attributes, dt_util.utcnow().timestamp()))

    hass.bus.async_listen(EVENT_STATE_CHANGED, _changed)
    return seen


async def add(
    hass: HomeAssistant, urls: Any, context: Context | None = None, **fields: Any
) -> list[dict[str, Any]]:
    """Call open115.add_cloud_download and return its `results`."""
    response = await hass.services.async_call(
        DOMAIN,
        SERVICE_ADD_CLOUD_DOWNLOAD,
        {"urls": urls, **fields},
        blocking=True,
        return_response=True,
        context=context,
    )
    assert response is not None
    results: list[dict[str, Any]] = response["results"]  # type: ignore[assignment]
    return results
