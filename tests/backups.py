"""Helpers for the backup location's tests: Home Assistant's backup integration, driven as
the frontend drives it (websocket and HTTP), against the loopback emulator."""

from http import HTTPStatus
import io
import os
from typing import Any
from unittest.mock import patch

from homeassistant.components.backup import (
    DOMAIN as BACKUP_DOMAIN,
    AddonInfo,
    AgentBackup,
    suggested_filename,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import instance_id
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.open115.api import upload as upload_module
from custom_components.open115.const import DOMAIN

from .conftest import USER_ID, setup_entry
from .emulator import DriveNode, Emulator115

AGENT_ID = f"{DOMAIN}.{USER_ID}"
SMALL = 256 * 1024  # the part size the tests use (the emulator's minimum part is 100 KiB)


@pytest.fixture(autouse=True)
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts of SMALL, so that a test file of a few hundred KiB goes in several parts.

    Autouse in each test module that assigns it (`small_parts = backups.small_parts`).
    """
    monkeypatch.setattr(upload_module, "PART_SIZE", SMALL)


def make_backup(backup_id: str = "abc123", size: int = 0, name: str = "Test") -> AgentBackup:
    """Home Assistant's metadata of a backup."""
    return AgentBackup(
        addons=[AddonInfo(name="Test", slug="test", version="1.0.0")],
        backup_id=backup_id,
        database_included=True,
        date="2026-12-01T01:23:45.678Z",
        extra_metadata={"with_automatic_settings": False},
        folders=[],
        homeassistant_included=True,
        homeassistant_version="2026.10.4",
        name=name,
        protected=False,
        size=size,
    )


def tar_name(backup: AgentBackup) -> str:
    """The tar's name on the drive (Home Assistant's suggested file name)."""
    return suggested_filename(backup)


def metadata_name(backup: AgentBackup) -> str:
    """The metadata file's name beside the tar."""
    return suggested_filename(backup).removesuffix(".tar") + ".metadata.json"


async def setup_backup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Home Assistant's backup integration, then the entry."""
    assert await async_setup_component(hass, BACKUP_DOMAIN, {BACKUP_DOMAIN: {}})
    await setup_entry(hass, entry)


async def upload(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    backup: AgentBackup,
    data: bytes,
) -> None:
    """Upload a backup file to the 115 location as the Backups page does (HTTP POST)."""
    client = await hass_client()
    with patch("homeassistant.components.backup.manager.read_backup", return_value=backup):
        resp = await client.post(
            f"/api/backup/upload?agent_id={AGENT_ID}",
            data={"file": io.BytesIO(data)},
        )
    assert resp.status == HTTPStatus.CREATED
    await hass.async_block_till_done()


async def ws(hass: HomeAssistant, hass_ws_client: WebSocketGenerator, **msg: Any) -> Any:
    """One websocket command's result."""
    client = await hass_ws_client(hass)
    await client.send_json_auto_id(msg)
    response = await client.receive_json()
    assert response["success"], response
    return response["result"]


async def download(hass_client: ClientSessionGenerator, backup_id: str) -> tuple[int, bytes]:
    """The download view's answer for the 115 location."""
    client = await hass_client()
    resp = await client.get(f"/api/backup/download/{backup_id}?agent_id={AGENT_ID}")
    return resp.status, await resp.read()


async def folder(hass: HomeAssistant, emulator: Emulator115) -> DriveNode | None:
    """The instance's backup folder on the emulated drive."""
    name = f"Home Assistant backups ({await instance_id.async_get(hass)})"
    return emulator.find(USER_ID, "0", name)


async def folder_files(hass: HomeAssistant, emulator: Emulator115) -> dict[str, bytes]:
    """The files in the backup folder, by name, with their bytes."""
    node = await folder(hass, emulator)
    if node is None:
        return {}
    return {f.name: emulator.read_bytes(f) for f in emulator.children(USER_ID, node.file_id)}


def random_bytes(size: int) -> bytes:
    """Incompressible test data."""
    return os.urandom(size)
