"""The 115 backup location through Home Assistant's real backup integration (websocket and
HTTP, as the Backups page uses them) against the loopback emulator."""

import json

from homeassistant.core import HomeAssistant
from homeassistant.helpers import instance_id
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from custom_components.open115.backup import async_register_backup_agents_listener
from custom_components.open115.const import DATA_BACKUP_AGENT_LISTENERS

from . import backups
from .backups import (
    AGENT_ID,
    SMALL,
    download,
    folder,
    folder_files,
    make_backup,
    metadata_name,
    random_bytes,
    setup_backup,
    tar_name,
    upload,
    ws,
)
from .conftest import USER_ID, USER_NAME
from .emulator import (
    DELETE_PATH,
    DOWNURL_PATH,
    FILES_PATH,
    UPLOAD_INIT_PATH,
    UPLOAD_TOKEN_PATH,
    Emulator115,
)

pytestmark = pytest.mark.usefixtures("emulator_url")


small_parts = backups.small_parts  # autouse here: parts of 256 KiB


async def test_location_appears_and_goes(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator, config_entry: MockConfigEntry
) -> None:
    """A loaded entry is a location named after it; unloading removes it."""
    await setup_backup(hass, config_entry)
    result = await ws(hass, hass_ws_client, type="backup/agents/info")
    assert result["agents"] == [
        {"agent_id": "backup.local", "name": "local"},
        {"agent_id": AGENT_ID, "name": USER_NAME},
    ]
    await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
    result = await ws(hass, hass_ws_client, type="backup/agents/info")
    assert result["agents"] == [{"agent_id": "backup.local", "name": "local"}]


async def test_upload_list_download_delete(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_ws_client: WebSocketGenerator,
    config_entry: MockConfigEntry,
    emulator: Emulator115,
) -> None:
    """A multipart backup (with the sign check) lands in the instance's folder as the tar and
    its metadata; it is listed, downloaded byte for byte, and deleted in one request."""
    await setup_backup(hass, config_entry)
    data = random_bytes(4 * SMALL + 12345)  # 5 parts; over 1 MiB: 115 asks the sign check
    backup = make_backup(size=len(data))
    await upload(hass, hass_client, backup, data)

    node = await folder(hass, emulator)
    assert node is not None
    assert node.name == f"Home Assistant backups ({await instance_id.async_get(hass)})"
    files = await folder_files(hass, emulator)
    assert set(files) == {tar_name(backup), metadata_name(backup)}
    assert files[tar_name(backup)] == data
    assert json.loads(files[metadata_name(backup)]) == {
        "open115_backup": 1,
        "tar": tar_name(backup),
        "backup": backup.as_dict(),
    }
    assert emulator.count(UPLOAD_INIT_PATH) == 3  # the tar twice (sign check), the metadata
    assert emulator.count(UPLOAD_TOKEN_PATH) == 2
    assert emulator.oss_count("UploadPart") == 5
    assert emulator.oss_count("CompleteMultipartUpload") == 1
    assert emulator.oss_count("PutObject") == 1  # the metadata file
    assert emulator.multipart == {}

    info = await ws(hass, hass_ws_client, type="backup/info")
    assert info["agent_errors"] == {}
    [listed] = info["backups"]
    assert listed["backup_id"] == backup.backup_id
    assert listed["agents"] == {AGENT_ID: {"protected": False, "size": len(data)}}
    assert listed["failed_agent_ids"] == []
    details = await ws(hass, hass_ws_client, type="backup/details", backup_id=backup.backup_id)
    assert details["backup"]["backup_id"] == backup.backup_id

    assert await download(hass_client, backup.backup_id) == (200, data)

    result = await ws(hass, hass_ws_client, type="backup/delete", backup_id=backup.backup_id)
    assert result == {"agent_errors": {}}
    assert emulator.count(DELETE_PATH) == 1
    assert await folder_files(hass, emulator) == {}
    assert {n.name for n in emulator.recycle_bin} == {tar_name(backup), metadata_name(backup)}
    details = await ws(hass, hass_ws_client, type="backup/details", backup_id=backup.backup_id)
    assert details["backup"] is None


async def test_small_backup_is_one_put(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    config_entry: MockConfigEntry,
    emulator: Emulator115,
) -> None:
    """A backup within one part goes in one PutObject that completes it."""
    await setup_backup(hass, config_entry)
    data = random_bytes(SMALL - 1)
    backup = make_backup(size=len(data))
    await upload(hass, hass_client, backup, data)
    assert (await folder_files(hass, emulator))[tar_name(backup)] == data
    assert emulator.oss_count("PutObject") == 2
    assert emulator.oss_count("InitiateMultipartUpload") == 0


async def test_instant_upload_sends_no_bytes(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_ws_client: WebSocketGenerator,
    config_entry: MockConfigEntry,
    emulator: Emulator115,
) -> None:
    """115 already holds the bytes (秒传): the tar is stored without an OSS request."""
    data = random_bytes(3 * SMALL)
    emulator.add_file(USER_ID, "0", "elsewhere.tar", data)
    await setup_backup(hass, config_entry)
    backup = make_backup(size=len(data))
    await upload(hass, hass_client, backup, data)
    assert (await folder_files(hass, emulator))[tar_name(backup)] == data
    assert emulator.oss_count() == 1  # the metadata file's PutObject only
    info = await ws(hass, hass_ws_client, type="backup/info")
    assert [b["backup_id"] for b in info["backups"]] == [backup.backup_id]


async def test_listed_after_reload_without_downloads(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_ws_client: WebSocketGenerator,
    hass_storage: dict[str, object],
    config_entry: MockConfigEntry,
    emulator: Emulator115,
) -> None:
    """After a reload the backup is listed from 115 with the cached metadata (one listing,
    no download); with the cache gone (a new machine) the metadata is downloaded once."""
    await setup_backup(hass, config_entry)
    data = random_bytes(SMALL)
    backup = make_backup(size=len(data))
    await upload(hass, hass_client, backup, data)
    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    listings, links = emulator.count(FILES_PATH), emulator.count(DOWNURL_PATH)
    info = await ws(hass, hass_ws_client, type="backup/info")
    assert [b["backup_id"] for b in info["backups"]] == [backup.backup_id]
    assert (emulator.count(FILES_PATH), emulator.count(DOWNURL_PATH)) == (listings + 1, links)

    await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
    hass_storage.pop(f"open115.{config_entry.entry_id}.backups", None)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    info = await ws(hass, hass_ws_client, type="backup/info")
    assert [b["backup_id"] for b in info["backups"]] == [backup.backup_id]
    assert emulator.count(DOWNURL_PATH) == links + 1
    assert await download(hass_client, backup.backup_id) == (200, data)


async def test_unknown_backup(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_ws_client: WebSocketGenerator,
    config_entry: MockConfigEntry,
    emulator: Emulator115,
) -> None:
    """An unknown id: no details, a 404 download, a delete that is no error; no folder made."""
    await setup_backup(hass, config_entry)
    details = await ws(hass, hass_ws_client, type="backup/details", backup_id="nope")
    assert details == {"agent_errors": {}, "backup": None}
    assert (await download(hass_client, "nope"))[0] == 404
    result = await ws(hass, hass_ws_client, type="backup/delete", backup_id="nope")
    assert result == {"agent_errors": {}}
    assert await folder(hass, emulator) is None
    assert emulator.count(DELETE_PATH) == 0


async def test_other_files_and_halves_are_left_alone(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_ws_client: WebSocketGenerator,
    config_entry: MockConfigEntry,
    emulator: Emulator115,
) -> None:
    """A metadata file without its tar, a tar without metadata and foreign files are not
    backups; listing reads every page (1,150 files per page)."""
    await setup_backup(hass, config_entry)
    data = random_bytes(SMALL)
    backup = make_backup(size=len(data))
    await upload(hass, hass_client, backup, data)
    node = await folder(hass, emulator)
    assert node is not None
    orphan = make_backup("orphan")
    emulator.add_file(
        USER_ID,
        node.file_id,
        metadata_name(orphan),
        json.dumps({"open115_backup": 1, "tar": "gone.tar", "backup": orphan.as_dict()}).encode(),
    )
    emulator.add_file(USER_ID, node.file_id, "lonely.tar", b"x")
    emulator.add_file(USER_ID, node.file_id, "notes.metadata.json", b"{not json")
    for i in range(1200):
        emulator.add_file(USER_ID, node.file_id, f"photo{i}.jpg", b"")
    listings, links = emulator.count(FILES_PATH), emulator.count(DOWNURL_PATH)
    info = await ws(hass, hass_ws_client, type="backup/info")
    assert [b["backup_id"] for b in info["backups"]] == [backup.backup_id]
    assert info["agent_errors"] == {}
    assert emulator.count(FILES_PATH) == listings + 2
    assert emulator.count(DOWNURL_PATH) == links + 2  # the two foreign metadata files, once
    info = await ws(hass, hass_ws_client, type="backup/info")
    assert [b["backup_id"] for b in info["backups"]] == [backup.backup_id]
    assert emulator.count(DOWNURL_PATH) == links + 2


async def test_listed_while_115_lists_it_late(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_ws_client: WebSocketGenerator,
    config_entry: MockConfigEntry,
    emulator: Emulator115,
) -> None:
    """115 lists new uploads late: a backup just stored is listed, downloaded and deleted
    from what the upload answered until the listing shows it."""
    emulator.listing_delay = 3600.0  # the frozen clock never gets there
    await setup_backup(hass, config_entry)
    data = random_bytes(SMALL)
    backup = make_backup(size=len(data))
    await upload(hass, hass_client, backup, data)
    info = await ws(hass, hass_ws_client, type="backup/info")
    assert [b["backup_id"] for b in info["backups"]] == [backup.backup_id]
    assert await download(hass_client, backup.backup_id) == (200, data)
    result = await ws(hass, hass_ws_client, type="backup/delete", backup_id=backup.backup_id)
    assert result == {"agent_errors": {}}
    assert await folder_files(hass, emulator) == {}
    info = await ws(hass, hass_ws_client, type="backup/info")
    assert info["backups"] == []


async def test_foreign_metadata_files_are_not_backups(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_ws_client: WebSocketGenerator,
    config_entry: MockConfigEntry,
    emulator: Emulator115,
) -> None:
    """Metadata files beside their tar that are not open115's (another version, a backup
    Home Assistant cannot read) are not listed; one over 1 MiB is not even downloaded."""
    await setup_backup(hass, config_entry)
    data = random_bytes(SMALL)
    backup = make_backup(size=len(data))
    await upload(hass, hass_client, backup, data)
    node = await folder(hass, emulator)
    assert node is not None
    other = make_backup("other")
    for name, body in (
        ("v2", {"open115_backup": 2, "tar": "v2.tar", "backup": other.as_dict()}),
        ("bad", {"open115_backup": 1, "tar": "bad.tar", "backup": {"backup_id": "bad"}}),
    ):
        emulator.add_file(USER_ID, node.file_id, f"{name}.tar", b"x")
        emulator.add_file(USER_ID, node.file_id, f"{name}.metadata.json", json.dumps(body).encode())
    emulator.add_file(USER_ID, node.file_id, "big.tar", b"x")
    emulator.add_file(USER_ID, node.file_id, "big.metadata.json", b" " * (1024 * 1024 + 1))
    links = emulator.count(DOWNURL_PATH)
    for _ in range(2):
        info = await ws(hass, hass_ws_client, type="backup/info")
        assert [b["backup_id"] for b in info["backups"]] == [backup.backup_id]
        assert info["agent_errors"] == {}
    assert emulator.count(DOWNURL_PATH) == links + 2  # v2 and bad, once each; big never


async def test_removed_listener_is_not_called(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    """A listener removed with the callable its registration gave back hears of no entry that
    loads or unloads; the others still do."""
    await setup_backup(hass, config_entry)
    calls: list[str] = []
    remove_a = async_register_backup_agents_listener(hass, listener=lambda: calls.append("a"))
    remove_b = async_register_backup_agents_listener(hass, listener=lambda: calls.append("b"))
    remove_a()
    await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert calls == ["b"]
    remove_b()
    assert len(hass.data[DATA_BACKUP_AGENT_LISTENERS]) == 1  # the backup manager's own
