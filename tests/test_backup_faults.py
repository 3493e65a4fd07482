"""The 115 backup location when things go wrong: every failure is a translated
BackupAgentError, aborts what it started and leaves no half backup; recoverable faults are
recovered (one renewal of the OSS credentials, one retry of a dropped part, Range after a
cut-short download)."""

from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import timedelta
import json
import os
from typing import Any

from homeassistant.components.backup import DATA_MANAGER, BackupAgentError
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from pytest_homeassistant_custom_component.typing import (
    ClientSessionGenerator,
    WebSocketGenerator,
)

from . import backups
from .backups import (
    AGENT_ID,
    SMALL,
    download,
    folder_files,
    make_backup,
    metadata_name,
    random_bytes,
    setup_backup,
    tar_name,
    upload,
    ws,
)
from .conftest import USER_ID
from .emulator import (
    DELETE_PATH,
    FAULT_CALLBACK_FAILED,
    FAULT_DROP_PART,
    FAULT_HTTP_500,
    FAULT_TOKEN_EXPIRED,
    UPLOAD_INIT_PATH,
    UPLOAD_TOKEN_PATH,
    Emulator115,
)

pytestmark = pytest.mark.usefixtures("emulator_url")


small_parts = backups.small_parts  # autouse here: parts of 256 KiB


async def failed_upload(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_ws_client: WebSocketGenerator,
    caplog: pytest.LogCaptureFixture,
    data: bytes,
) -> str:
    """Upload and expect a failure of the 115 location: its logged (translated) message."""
    backup = make_backup(size=len(data))
    caplog.clear()
    await upload(hass, hass_client, backup, data)
    # Home Assistant's progress debouncer outlives an upload that fails after some progress.
    for seconds in (10, 20):  # its call, then its cooldown
        async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=seconds))
        await hass.async_block_till_done()
    info = await ws(hass, hass_ws_client, type="backup/info")
    assert info["backups"] == []  # the manager keeps no backup that reached no location
    [record] = [r for r in caplog.records if r.getMessage().startswith("Upload failed for")]
    return record.getMessage().removeprefix(f"Upload failed for {AGENT_ID}: ")


MULTIPART = 2 * SMALL + 1000  # under 1 MiB: no sign check
# upload/get_token answering credentials OSS does not know (they were never issued).
UNKNOWN_KEY = "body:200:" + json.dumps(
    {
        "state": True,
        "code": 0,
        "message": "",
        "data": {
            "endpoint": "http://oss-cn-shenzhen.aliyuncs.com",
            "AccessKeyId": "STS.unknown",
            "AccessKeySecret": "not-a-secret",
            "SecurityToken": "not-a-token",
            "Expiration": "2099-01-01T00:00:00Z",
        },
    }
)


@pytest.mark.parametrize(
    ("inject", "message"),
    [
        (
            {"oss": [FAULT_CALLBACK_FAILED]},
            "115 did not register the uploaded backup of emu_user (OSS callback failed)",
        ),
        (
            {"oss": [FAULT_TOKEN_EXPIRED, FAULT_TOKEN_EXPIRED]},
            "115's temporary upload credentials for emu_user expired even after a renewal",
        ),
        (
            {UPLOAD_INIT_PATH: ["code:770004"]},
            "115 is rate limiting emu_user's requests, so the backup operation failed",
        ),
        (
            {UPLOAD_INIT_PATH: ["code:406"]},
            "115 is rate limiting emu_user's requests, so the backup operation failed",
        ),
        (
            {UPLOAD_TOKEN_PATH: [FAULT_HTTP_500]},
            "115 could not be reached for emu_user's backup (network or server error)",
        ),
        (
            {UPLOAD_INIT_PATH: ["code:40140125", "code:40140125"]},
            "115 refused the access token of emu_user, so the backup operation failed",
        ),
        (
            {UPLOAD_TOKEN_PATH: [UNKNOWN_KEY]},
            (
                "Aliyun OSS refused the upload of emu_user's backup; the upload was aborted. "
                "(Starting the OSS upload failed with HTTP 403 (InvalidAccessKeyId))"
            ),
        ),
        (
            {UPLOAD_INIT_PATH: ["code:990001"]},
            "The backup operation on emu_user failed: Starting the upload failed with code 990001",
        ),
    ],
    ids=[
        "callback_failed",
        "oss_expired_twice",
        "770004",
        "406",
        "network",
        "token_refused",
        "oss_refused",
        "other_refusal",
    ],
)
async def test_failures_leave_nothing(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_ws_client: WebSocketGenerator,
    caplog: pytest.LogCaptureFixture,
    config_entry: MockConfigEntry,
    emulator: Emulator115,
    inject: dict[str, list[str]],
    message: str,
) -> None:
    """Each failure is reported in words, aborts the multipart upload, stores nothing."""
    await setup_backup(hass, config_entry)
    for path, faults in inject.items():
        if path == "oss":
            emulator.inject_oss(*faults)
        else:
            emulator.inject(path, *faults)
    text = await failed_upload(hass, hass_client, hass_ws_client, caplog, random_bytes(MULTIPART))
    assert text.startswith(message)
    assert await folder_files(hass, emulator) == {}
    assert emulator.multipart == {}  # aborted (or never started)
    assert emulator.oss_count("CompleteMultipartUpload") == (
        1 if FAULT_CALLBACK_FAILED in inject.get("oss", []) else 0
    )


async def test_expired_credentials_renewed_once(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    emulator: Emulator115,
) -> None:
    """SecurityTokenExpired after the first part: new credentials, the same upload id."""
    await setup_backup(hass, config_entry)
    data = random_bytes(MULTIPART)
    backup = make_backup(size=len(data))

    def expire_after_first_part(*, bytes_uploaded: int, **kwargs: object) -> None:
        if bytes_uploaded == SMALL:
            emulator.inject_oss(FAULT_TOKEN_EXPIRED)

    await _agent(hass).async_upload_backup(
        open_stream=_opener(data), backup=backup, on_progress=expire_after_first_part
    )
    assert (await folder_files(hass, emulator))[tar_name(backup)] == data
    assert emulator.oss_count("InitiateMultipartUpload") == 1
    assert [(op, status, code) for op, status, code in emulator.oss_requests if status != 200] == [
        ("UploadPart", 403, "SecurityTokenExpired")
    ]
    assert emulator.count(UPLOAD_TOKEN_PATH) == 3  # tar, its renewal, metadata


async def test_dropped_part_is_sent_again(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    config_entry: MockConfigEntry,
    emulator: Emulator115,
) -> None:
    """A connection dropped mid-part: the part (in memory) goes once more."""
    await setup_backup(hass, config_entry)
    data = random_bytes(MULTIPART)
    backup = make_backup(size=len(data))
    emulator.inject_oss(FAULT_DROP_PART)
    await upload(hass, hass_client, backup, data)
    assert (await folder_files(hass, emulator))[tar_name(backup)] == data
    assert emulator.oss_count("UploadPart") == 4  # 3 parts, one twice


async def test_metadata_failure_removes_the_tar(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_ws_client: WebSocketGenerator,
    caplog: pytest.LogCaptureFixture,
    config_entry: MockConfigEntry,
    emulator: Emulator115,
) -> None:
    """The tar is stored (instantly) but its metadata file fails: the tar goes too."""
    await setup_backup(hass, config_entry)
    data = random_bytes(SMALL)
    emulator.add_file(USER_ID, "0", "elsewhere.tar", data)
    emulator.inject_oss(FAULT_CALLBACK_FAILED)  # the metadata's PutObject (the tar sends none)
    text = await failed_upload(hass, hass_client, hass_ws_client, caplog, data)
    assert text.startswith("115 did not register the uploaded backup")
    assert await folder_files(hass, emulator) == {}
    assert [n.name for n in emulator.recycle_bin] == [tar_name(make_backup())]


async def test_tar_that_cannot_be_removed_is_reported(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_ws_client: WebSocketGenerator,
    caplog: pytest.LogCaptureFixture,
    config_entry: MockConfigEntry,
    emulator: Emulator115,
) -> None:
    """The metadata file fails and so does removing the tar: a warning says so, and the
    metadata's failure is the one reported."""
    await setup_backup(hass, config_entry)
    data = random_bytes(SMALL)
    emulator.add_file(USER_ID, "0", "elsewhere.tar", data)
    emulator.inject_oss(FAULT_CALLBACK_FAILED)
    emulator.inject(DELETE_PATH, "code:990001")
    text = await failed_upload(hass, hass_client, hass_ws_client, caplog, data)
    assert text.startswith("115 did not register the uploaded backup")
    ours = [r for r in caplog.records if r.name.startswith("custom_components.open115")]
    assert [r.getMessage() for r in ours if r.levelname == "WARNING"] == [
        (
            f"Removing the tar of a failed backup failed, so {tar_name(make_backup())} stays in"
            " the backup folder of emu_user (not listed as a backup; delete it in 115): Deleting"
            " files failed with code 990001 (injected)"
        ),
        (
            "Backup upload of emu_user failed: Sending the file to OSS failed with HTTP 203"
            " (CallbackFailed)"
        ),
    ]
    assert await folder_files(hass, emulator) == {tar_name(make_backup()): data}
    assert emulator.recycle_bin == []


async def test_cut_download_goes_on_with_range(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    config_entry: MockConfigEntry,
    emulator: Emulator115,
) -> None:
    """A download cut short resumes with Range; the restored bytes are identical."""
    await setup_backup(hass, config_entry)
    data = random_bytes(3 * SMALL)
    backup = make_backup(size=len(data))
    await upload(hass, hass_client, backup, data)
    emulator.download_cuts.append(SMALL + 7)
    assert await download(hass_client, backup.backup_id) == (200, data)


async def test_corrupt_download_fails(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
    config_entry: MockConfigEntry,
    emulator: Emulator115,
) -> None:
    """Bytes that do not have 115's SHA1 fail the download instead of restoring them."""
    await setup_backup(hass, config_entry)
    data = random_bytes(SMALL)
    backup = make_backup(size=len(data))
    await upload(hass, hass_client, backup, data)
    node = emulator.find(USER_ID, (await _folder_id(hass, emulator)), tar_name(backup))
    assert node is not None
    emulator.blobs[node.sha1].write_bytes(bytes(len(data)))  # same size, other bytes
    client = await hass_client()
    resp = await client.get(f"/api/backup/download/{backup.backup_id}?agent_id={AGENT_ID}")
    with pytest.raises(Exception):  # noqa: B017, PT011 (the stream breaks off)
        await resp.read()
    assert "did not match their SHA1" in caplog.text


def _agent(hass: HomeAssistant) -> Any:
    return hass.data[DATA_MANAGER].backup_agents[AGENT_ID]


def _opener(data: bytes) -> Callable[[], Coroutine[Any, Any, AsyncIterator[bytes]]]:
    async def open_stream() -> AsyncIterator[bytes]:
        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(data), 65536):
                yield data[start : start + 65536]

        return chunks()

    return open_stream


async def _folder_id(hass: HomeAssistant, emulator: Emulator115) -> str:
    from .backups import folder

    node = await folder(hass, emulator)
    assert node is not None
    return node.file_id


@pytest.mark.parametrize("size", [SMALL // 2, MULTIPART], ids=["one_put", "multipart"])
async def test_stream_changed_between_openings(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    emulator: Emulator115,
    size: int,
) -> None:
    """An open_stream whose second opening differs from the hashed one: the upload fails
    cleanly (nothing completed on OSS, nothing in the folder, the multipart aborted)."""
    await setup_backup(hass, config_entry)
    openings: list[bytes] = []

    async def open_stream() -> AsyncIterator[bytes]:
        data = os.urandom(size)
        openings.append(data)

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(data), 65536):
                yield data[start : start + 65536]

        return chunks()

    agent = hass.data[DATA_MANAGER].backup_agents[AGENT_ID]
    with pytest.raises(BackupAgentError) as err:
        await agent.async_upload_backup(
            open_stream=open_stream,
            backup=make_backup(size=size),
            on_progress=lambda **kwargs: None,
        )
    assert err.value.translation_key == "backup_checksum"
    assert len(openings) == 2
    assert await folder_files(hass, emulator) == {}
    assert emulator.multipart == {}
    assert emulator.oss_count("PutObject") == 0
    assert emulator.oss_count("CompleteMultipartUpload") == 0


async def test_progress_is_reported(
    hass: HomeAssistant,
    config_entry: MockConfigEntry,
    emulator: Emulator115,
) -> None:
    """on_progress gets the bytes sent after every part, ending with the whole size."""
    await setup_backup(hass, config_entry)
    data = random_bytes(MULTIPART)
    seen: list[int] = []
    await _agent(hass).async_upload_backup(
        open_stream=_opener(data),
        backup=make_backup(size=len(data)),
        on_progress=lambda *, bytes_uploaded, **kwargs: seen.append(bytes_uploaded),
    )
    assert seen == [SMALL, 2 * SMALL, len(data)]
    assert metadata_name(make_backup()) in await folder_files(hass, emulator)
