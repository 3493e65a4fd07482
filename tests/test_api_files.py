"""api/files.py and api/upload.py against the emulator, without Home Assistant: listing,
folders, delete, download links bound to their User-Agent, Range after a cut, the SHA1 check,
and upload/resume."""

from collections.abc import AsyncIterator
import hashlib
import os

import pytest

from custom_components.open115.api import (
    Open115ChecksumError,
    Open115Client,
    Open115NotFoundError,
)
from custom_components.open115.api.upload import Digest

from .api_fixtures import FakeClock, bearer, fails
from .conftest import USER_ID
from .emulator import (
    CDN_PREFIX,
    DELETE_PATH,
    FILES_PATH,
    UPLOAD_RESUME_PATH,
    UPLOAD_TOKEN_PATH,
    Emulator115,
)

UA = "open115-test/1"


@pytest.fixture
def api(client: Open115Client, emu: Emulator115) -> Open115Client:
    """The client with a live access token of the test account."""
    return bearer(client, emu.issue_access_token(emu.authorize(USER_ID), 7200))


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
