"""api/files.py and api/upload.py against the emulator, without Home Assistant: listing,
folders, delete, download links bound to their User-Agent, Range after a cut, the SHA1 check,
and upload/resume."""

import asyncio
from collections.abc import AsyncIterator
import dataclasses
import hashlib
import os

import pytest

from custom_components.open115.api import (
    Open115ApiError,
    Open115ChecksumError,
    Open115Client,
    Open115NotFoundError,
    Open115TransientError,
    Open115UploadError,
)
from custom_components.open115.api.files import HASH_BATCH, DriveFile
from custom_components.open115.api.upload import Digest

from .api_fixtures import FakeClock, drive_api, fails, opener
from .conftest import USER_ID
from .emulator import (
    CDN_PREFIX,
    DELETE_PATH,
    DOWNURL_PATH,
    FAULT_DROP_PART,
    FILES_PATH,
    FOLDER_ADD_PATH,
    FOLDER_INFO_PATH,
    UPLOAD_INIT_PATH,
    UPLOAD_RESUME_PATH,
    UPLOAD_TOKEN_PATH,
    Emulator115,
)

UA = "open115-test/1"


api = drive_api


async def test_listing_reads_every_page(api: Open115Client, emu: Emulator115) -> None:
    """2,400 files take three pages of 1,150; folders are told apart."""
    folder = emu.add_folder(USER_ID, "0", "f")
    emu.add_folder(USER_ID, folder.file_id, "sub")
    for i in range(2400):
        emu.add_file(USER_ID, folder.file_id, f"{i}.bin", b"")
    files = await api.list_folder(folder.file_id)
    assert len(files) == 2401
    assert emu.count(FILES_PATH) == 3
    assert [f.name for f in files if f.is_folder] == ["sub"]


async def test_folders(api: Open115Client, emu: Emulator115) -> None:
    """A missing folder is None (data [] or 430004); add makes it or finds it."""
    assert await api.folder_id("/Home Assistant backups (x)") is None
    emu.missing_folder_error = True
    assert await api.folder_id("/Home Assistant backups (x)") is None
    made = await api.add_folder("0", "Home Assistant backups (x)")
    assert await api.folder_id("/Home Assistant backups (x)") == made
    assert await api.add_folder("0", "Home Assistant backups (x)") == made  # 20004: found


async def test_download_link_range_and_sha1(api: Open115Client, emu: Emulator115) -> None:
    """The link works with its User-Agent; a cut download goes on with Range; bytes that do
    not have 115's SHA1 fail; delete takes several files in one request."""
    data = os.urandom(700_000)
    node = emu.add_file(USER_ID, "0", "a.tar", data)
    link = await api.download_link(node.pick_code, UA)
    assert CDN_PREFIX in link.url
    assert (link.size, link.sha1, link.user_agent) == (len(data), node.sha1, UA)
    assert "url" not in repr(link)
    emu.download_cuts.append(300_001)
    assert b"".join([c async for c in api.download(link, chunk_size=65536)]) == data
    emu.blobs[node.sha1].write_bytes(bytes(len(data)))
    await fails(Open115ChecksumError, _drain(api.download(link)), emu)
    emu.inject_body("/open/ufile/downurl", {"state": True, "code": 0, "message": "", "data": []})
    with pytest.raises(Open115NotFoundError):
        await api.download_link(node.pick_code, UA)  # an answer without a link
    other = emu.add_file(USER_ID, "0", "b.tar", b"b")
    await api.delete_files([node.file_id, other.file_id], "0")
    assert emu.count(DELETE_PATH) == 1
    assert emu.children(USER_ID, "0") == []


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    async for _ in chunks:
        pass


def _ok(data: object, **extra: object) -> dict[str, object]:
    return {"state": True, "code": 0, "message": "", "data": data, **extra}


async def test_listing_skips_entries_without_an_id(api: Open115Client, emu: Emulator115) -> None:
    """An entry without a file id (absent or blank) is left out; the others are read as 115
    sends them (SHA1 upper-cased, size from a string, `fc` "1" a file)."""
    emu.inject_body(
        FILES_PATH,
        _ok(
            [
                {"fn": "no id", "fc": "1"},
                {"fid": "  ", "fn": "blank id", "fc": "1"},
                {"fid": " 42 ", "fn": "a.tar", "fs": "3", "sha1": "ab12", "pc": "pc1", "fc": "1"},
            ],
            count=3,
        ),
    )
    assert await api.list_folder("0") == [DriveFile("42", "a.tar", 3, "AB12", "pc1", False)]
    assert emu.count(FILES_PATH) == 1


async def test_folder_lookup_raises_other_refusals(api: Open115Client, emu: Emulator115) -> None:
    """Only "no such folder" (430004) reads as a missing folder: any other refusal is raised,
    so that a caller does not make a second folder beside one it could not see."""
    emu.add_folder(USER_ID, "0", "kept")
    emu.inject(FOLDER_INFO_PATH, "code:990001")
    err = await fails(Open115ApiError, api.folder_id("/kept"), emu)
    assert err.code == 990001
    assert emu.count(FOLDER_ADD_PATH) == 0


async def test_add_folder_exists_is_found_only_at_the_root(
    api: Open115Client, emu: Emulator115
) -> None:
    """20004 (exists) is answered by the root folder's id, found by its path; in a sub-folder
    (no path to look it up by) or when the lookup finds nothing, 20004 is raised."""
    parent = emu.add_folder(USER_ID, "0", "p")
    emu.add_folder(USER_ID, parent.file_id, "x")
    err = await fails(Open115ApiError, api.add_folder(parent.file_id, "x"), emu)
    assert err.code == 20004
    assert emu.count(FOLDER_INFO_PATH) == 0
    emu.inject(FOLDER_ADD_PATH, "code:20004")  # "exists", yet no folder of the name is there
    err = await fails(Open115ApiError, api.add_folder("0", "gone"), emu)
    assert err.code == 20004
    assert emu.count(FOLDER_INFO_PATH) == 1


async def test_add_folder_without_an_id_fails(api: Open115Client, emu: Emulator115) -> None:
    """A success answer without the new folder's id is an error, not an empty id."""
    emu.inject_body(FOLDER_ADD_PATH, _ok({"file_name": "x"}))
    err = await fails(Open115ApiError, api.add_folder("0", "x"), emu)
    assert str(err) == "Making the folder failed: no folder id in the answer"


async def test_download_link_takes_the_first_entry_with_a_link(
    api: Open115Client, emu: Emulator115
) -> None:
    """downurl's entries without a link are passed over; none at all (`data: {}`) is
    Open115NotFoundError."""
    emu.inject_body(
        DOWNURL_PATH,
        _ok(
            {
                "1": {"file_name": "none.tar", "url": {"url": ""}},
                "2": "not an entry",
                "3": {"file_name": "b.tar", "file_size": 7, "sha1": "cd", "url": "http://h/b"},
            }
        ),
    )
    link = await api.download_link("pc", UA)
    assert (link.url, link.file_name, link.size, link.sha1) == ("http://h/b", "b.tar", 7, "CD")
    emu.inject_body(DOWNURL_PATH, _ok({}))
    await fails(Open115NotFoundError, api.download_link("pc", UA), emu)


async def test_download_refused_by_the_cdn(
    api: Open115Client, emu: Emulator115, clock: FakeClock
) -> None:
    """An expired link, or another User-Agent, gets 403: a transient error (ask again)."""
    node = emu.add_file(USER_ID, "0", "a.tar", b"abc")
    link = await api.download_link(node.pick_code, UA)
    other = dataclasses.replace(link, user_agent="someone-else/1")
    err = await fails(Open115TransientError, _drain(api.download(other)), emu)
    assert str(err) == "Downloading the file failed with HTTP 403"
    clock.advance(emu.download_link_lifetime)
    err = await fails(Open115TransientError, _drain(api.download(link)), emu)
    assert str(err) == "Downloading the file failed with HTTP 403"


async def test_download_larger_than_a_hash_batch(api: Open115Client, emu: Emulator115) -> None:
    """A file of several hash batches arrives whole and is checked; one wrong byte in its
    last batch still fails the SHA1 check."""
    data = os.urandom(3 * HASH_BATCH + 1000)
    node = emu.add_file(USER_ID, "0", "big.tar", data)
    link = await api.download_link(node.pick_code, UA)
    got = b"".join([c async for c in api.download(link, chunk_size=HASH_BATCH // 2)])
    assert got == data
    emu.blobs[node.sha1].write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    await fails(Open115ChecksumError, _drain(api.download(link)), emu)


async def test_download_gives_up_after_three_resumes(api: Open115Client, emu: Emulator115) -> None:
    """Cut four times: the first request and three resumes with Range, then a transient error."""
    node = emu.add_file(USER_ID, "0", "a.tar", os.urandom(100_000))
    link = await api.download_link(node.pick_code, UA)
    emu.download_cuts.extend([10_000, 10_000, 10_000, 10_000])
    err = await fails(Open115TransientError, _drain(api.download(link, chunk_size=4096)), emu)
    assert str(err) == "Downloading the file failed (ClientPayloadError)"
    assert emu.count(CDN_PREFIX) == 4


async def test_download_longer_than_the_link_says(api: Open115Client, emu: Emulator115) -> None:
    """More bytes than the link's size is a failed download, whatever their SHA1."""
    data = os.urandom(5000)
    node = emu.add_file(USER_ID, "0", "a.tar", data)
    link = dataclasses.replace(await api.download_link(node.pick_code, UA), size=4999)
    err = await fails(Open115TransientError, _drain(api.download(link)), emu)
    assert str(err) == "Downloading the file failed: 5000 of 4999 bytes arrived"


async def test_upload_resume(api: Open115Client, emu: Emulator115) -> None:
    """upload/resume gives a pending upload's bucket, object and callback again."""
    emu.sign_check_unknown = False
    data = os.urandom(5000)
    sha1 = hashlib.sha1(data, usedforsecurity=False).hexdigest().upper()
    file = Digest(len(data), sha1, sha1)
    ticket = await api.upload_init(file_name="r.tar", folder_id="0", file=file)
    assert ticket.status == 1
    assert ticket.target is not None
    again = await api.upload_resume(folder_id="0", file=file, pick_code=ticket.pick_code)
    assert again.target == ticket.target
    assert emu.count(UPLOAD_RESUME_PATH) == 1


async def test_credentials_near_expiry_are_renewed_first(
    api: Open115Client, emu: Emulator115, clock: FakeClock
) -> None:
    """OSS credentials within a minute of their expiry are renewed before the next request,
    not after a refusal."""
    emu.oss_token_lifetime = 100.0
    emu.sign_check_unknown = False
    data = os.urandom(300_000)
    parts: list[int] = []

    def on_progress(sent: int) -> None:
        parts.append(sent)
        clock.advance(50)  # the next part's credentials have 50 s, then 0 s left

    async def open_stream() -> AsyncIterator[bytes]:
        async def chunks() -> AsyncIterator[bytes]:
            yield data

        return chunks()

    stored = await api.upload(
        folder_id="0",
        file_name="n.tar",
        open_stream=open_stream,
        on_progress=on_progress,
        part_size=100 * 1024,
    )
    assert emu.read_bytes(emu.nodes[stored.file_id]) == data
    assert [code for _, _, code in emu.oss_requests if code] == []  # nothing refused
    assert emu.count(UPLOAD_TOKEN_PATH) >= 2


async def test_upload_sign_check_refused(api: Open115Client, emu: Emulator115) -> None:
    """A sign check that is no "start-end" range fails; one asked again after two answers
    fails with the status 115 gave; no OSS request is made either way."""
    data = os.urandom(2000)
    emu.inject_body(UPLOAD_INIT_PATH, _ok({"status": 7, "sign_key": "k", "sign_check": "0-x"}))
    err = await fails(
        Open115UploadError,
        api.upload(folder_id="0", file_name="a.tar", open_stream=opener(data)),
        emu,
    )
    assert str(err) == "Starting the upload failed: unusable sign check"
    for _ in range(3):
        emu.inject_body(UPLOAD_INIT_PATH, _ok({"status": 7, "sign_key": "k", "sign_check": "0-9"}))
    err = await fails(
        Open115UploadError,
        api.upload(folder_id="0", file_name="a.tar", open_stream=opener(data)),
        emu,
    )
    assert str(err) == "Starting the upload failed: 115 answered status 7"
    assert emu.count(UPLOAD_INIT_PATH) == 1 + 3
    assert emu.oss_requests == []


async def test_upload_of_a_stream_that_grew(api: Open115Client, emu: Emulator115) -> None:
    """Bytes beyond those hashed for upload/init stop the upload (the SHA1 sent would lie)."""
    emu.sign_check_unknown = False
    data = os.urandom(3000)
    err = await fails(
        Open115ChecksumError,
        api.upload(folder_id="0", file_name="g.tar", open_stream=opener(data, data + b"more")),
        emu,
    )
    assert "changed between the reading that was hashed" in str(err)
    assert emu.children(USER_ID, "0") == []


async def test_upload_part_dropped_twice_then_given_up(
    api: Open115Client, emu: Emulator115
) -> None:
    """A part whose connection drops is sent again (aiohttp resends once, the uploader once
    more); when every try drops, the upload fails as a network error and is aborted."""
    emu.sign_check_unknown = False
    data = os.urandom(300_000)
    emu.inject_oss(FAULT_DROP_PART, FAULT_DROP_PART)
    stored = await api.upload(
        folder_id="0", file_name="d.tar", open_stream=opener(data), part_size=100 * 1024
    )
    assert emu.read_bytes(emu.nodes[stored.file_id]) == data
    assert emu.oss_count("UploadPart") == 3 + 2
    emu.inject_oss(*[FAULT_DROP_PART] * 4)
    err = await fails(
        Open115TransientError,
        api.upload(
            folder_id="0",
            file_name="e.tar",
            open_stream=opener(os.urandom(300_000)),  # other bytes: no instant upload
            part_size=100 * 1024,
        ),
        emu,
    )
    assert str(err).startswith("Sending part 1 to OSS failed: cannot connect (")
    assert emu.multipart == {}
    assert emu.find(USER_ID, "0", "e.tar") is None


async def test_upload_cancelled_mid_way_aborts_and_stores_nothing(
    api: Open115Client, emu: Emulator115
) -> None:
    """Home Assistant cancels the upload (a stop, the backup cancelled) while a part is on its
    way: the multipart upload is aborted at OSS and no file appears."""
    emu.sign_check_unknown = False
    data = os.urandom(300_000)
    openings = 0
    stalled = asyncio.Event()

    async def open_stream() -> AsyncIterator[bytes]:
        nonlocal openings
        openings += 1
        sending = openings > 1

        async def chunks() -> AsyncIterator[bytes]:
            yield data[:150_000]
            if sending:  # the reading being sent stalls after its first part
                stalled.set()
                await asyncio.Future()
            yield data[150_000:]

        return chunks()

    upload = asyncio.create_task(
        api.upload(folder_id="0", file_name="c.tar", open_stream=open_stream, part_size=100 * 1024)
    )
    await stalled.wait()
    assert len(emu.multipart) == 1  # started at OSS
    upload.cancel()
    with pytest.raises(asyncio.CancelledError):
        await upload
    assert emu.multipart == {}
    assert emu.find(USER_ID, "0", "c.tar") is None
