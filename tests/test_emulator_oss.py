"""The emulator's OSS stand-in (tests/emulator/oss.py), with requests signed by Alibaba's SDK.

Its V4 verifier must accept what alibabacloud-oss-v2's SignerV4 signs and refuse any change
to a signed header, the query, the secret or the token; PutObject and multipart must store the
bytes and run 115's callback exactly as the sources describe.
"""

from collections.abc import AsyncIterator
import hashlib
import json
import os
import tracemalloc
from urllib.parse import quote

import aiohttp
import pytest
from yarl import URL

from .api_fixtures import FakeClock
from .conftest import USER_ID
from .emulator import (
    DOWNURL_PATH,
    FAULT_CALLBACK_FAILED,
    FAULT_DROP_PART,
    FAULT_TOKEN_EXPIRED,
    UPLOAD_INIT_PATH,
    UPLOAD_TOKEN_PATH,
    Emulator115,
    sha1_hex,
)
from .emulator_requests import (
    OCTET,
    Proapi,
    Upload,
    callback_headers,
    complete,
    multipart,
    put_object,
    send,
    sign,
    start,
)

SMALL = os.urandom(300 * 1024)


@pytest.fixture
async def api(session: aiohttp.ClientSession, base_url: str, emu: Emulator115) -> Proapi:
    return Proapi(session, base_url, emu, emu.authorize(USER_ID))


async def test_put_object_with_callback_creates_the_file(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, emu: Emulator115, api: Proapi
) -> None:
    up = await start(api, SMALL)
    status, headers, body = await put_object(session, base_url, clock, up)
    assert status == 200
    answer = json.loads(body)
    data = answer["data"]
    assert (answer["state"], answer["code"]) == (True, 0)
    assert data["file_name"] == "backup.tar"
    assert data["file_size"] == len(SMALL)
    assert data["sha1"] == sha1_hex(SMALL)
    assert data["pick_code"] == up.init["pick_code"]
    assert data["cid"] == "0"
    node = emu.nodes[data["file_id"]]
    assert emu.read_bytes(node) == SMALL
    assert headers["ETag"] == f'"{hashlib.md5(SMALL, usedforsecurity=False).hexdigest().upper()}"'
    assert up.init["pick_code"] not in emu.uploads  # the upload is done


async def test_multipart_upload_lists_parts_and_completes_with_the_callback(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, emu: Emulator115, api: Proapi
) -> None:
    data = os.urandom(250 * 1024 + 17)
    up = await start(api, data)
    upload_id, parts = await multipart(session, base_url, clock, up, 100 * 1024)
    assert len(parts) == 3
    query = f"uploadId={upload_id}"
    headers = sign(up.token, "GET", up.bucket, up.key, when=clock.utc(), query=query)
    status, _, body = await send(session, base_url, "GET", up.key, headers, query=query)
    assert status == 200
    assert body.decode().count("<Part>") == 3
    assert f"<ETag>{parts[1][1]}</ETag><Size>{100 * 1024}</Size>" in body.decode()
    status, _, body = await complete(session, base_url, clock, up, upload_id, parts)
    assert status == 200
    file_id = json.loads(body)["data"]["file_id"]
    assert emu.read_bytes(emu.nodes[file_id]) == data
    assert emu.multipart == {}


async def test_abort_drops_the_upload(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, emu: Emulator115, api: Proapi
) -> None:
    up = await start(api, SMALL)
    upload_id, _ = await multipart(session, base_url, clock, up, 200 * 1024)
    query = f"uploadId={upload_id}"
    headers = sign(up.token, "DELETE", up.bucket, up.key, when=clock.utc(), query=query)
    assert (await send(session, base_url, "DELETE", up.key, headers, query=query))[0] == 204
    headers = sign(up.token, "GET", up.bucket, up.key, when=clock.utc(), query=query)
    status, answer, body = await send(session, base_url, "GET", up.key, headers, query=query)
    assert status == 404
    assert "<Code>NoSuchUpload</Code>" in body.decode()
    assert "<RequestId>" in body.decode()
    assert answer["x-oss-request-id"]


async def test_complete_refuses_small_parts_and_unknown_etags(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, emu: Emulator115, api: Proapi
) -> None:
    up = await start(api, SMALL)
    upload_id, parts = await multipart(session, base_url, clock, up, 50 * 1024)
    status, _, body = await complete(session, base_url, clock, up, upload_id, parts)
    assert (status, b"<Code>EntityTooSmall</Code>" in body) == (400, True)
    wrong = [(1, '"' + "0" * 32 + '"')]
    status, _, body = await complete(session, base_url, clock, up, upload_id, wrong)
    assert (status, b"<Code>InvalidPart</Code>" in body) == (400, True)
    status, _, body = await complete(session, base_url, clock, up, upload_id, parts[::-1])
    assert (status, b"<Code>InvalidPartOrder</Code>" in body) == (400, True)
    assert emu.nodes == {}


async def test_a_sha1_other_than_fileid_fails_the_callback(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, emu: Emulator115, api: Proapi
) -> None:
    up = await start(api, SMALL, fileid=sha1_hex(b"other bytes"))
    status, _, body = await put_object(session, base_url, clock, up)
    assert status == 203
    assert "<Code>CallbackFailed</Code>" in body.decode()
    assert emu.nodes == {}
    assert up.init["pick_code"] in emu.uploads  # 115 never finished it


async def test_a_changed_callback_fails_and_no_callback_stores_silently(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, emu: Emulator115, api: Proapi
) -> None:
    up = await start(api, SMALL)
    callback = json.loads(up.init["callback"]["callback"])
    changed = {
        "callback": json.dumps(callback),
        "callback_var": up.init["callback"]["callback_var"],
    }
    assert changed["callback"] != up.init["callback"]["callback"]  # spaces after separators
    up.callback = callback_headers(changed)
    status, _, body = await put_object(session, base_url, clock, up)
    assert (status, b"<Code>CallbackFailed</Code>" in body) == (203, True)
    up.callback = {}
    status, _, body = await put_object(session, base_url, clock, up)
    assert (status, body) == (200, b"")
    assert emu.nodes == {}
    assert (up.bucket, up.key) in emu.objects
    up.callback = {"x-oss-callback": "not base64!", "x-oss-callback-var": ""}
    status, _, body = await put_object(session, base_url, clock, up)
    assert (status, b"<Code>InvalidArgument</Code>" in body) == (400, True)


async def test_fault_callback_failed(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, emu: Emulator115, api: Proapi
) -> None:
    up = await start(api, SMALL)
    emu.inject_oss(FAULT_CALLBACK_FAILED)
    status, _, body = await put_object(session, base_url, clock, up)
    assert (status, b"<Code>CallbackFailed</Code>" in body) == (203, True)
    assert emu.nodes == {}
    status, _, _ = await put_object(session, base_url, clock, up)
    assert status == 200
    assert len(emu.nodes) == 1


async def test_fault_token_expired_then_fresh_credentials_go_on(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, emu: Emulator115, api: Proapi
) -> None:
    data = os.urandom(300 * 1024)
    up = await start(api, data)
    upload_id, parts = await multipart(session, base_url, clock, up, 150 * 1024)
    emu.inject_oss(FAULT_TOKEN_EXPIRED)
    status, _, body = await complete(session, base_url, clock, up, upload_id, parts)
    assert (status, b"<Code>SecurityTokenExpired</Code>" in body) == (403, True)
    status, _, body = await complete(session, base_url, clock, up, upload_id, parts)
    assert status == 403  # the old credentials stay expired
    up.token = (await api.get(UPLOAD_TOKEN_PATH))["data"]
    status, _, body = await complete(session, base_url, clock, up, upload_id, parts)
    assert status == 200
    assert emu.read_bytes(emu.nodes[json.loads(body)["data"]["file_id"]]) == data


async def test_fault_drop_part_loses_only_that_part(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, emu: Emulator115, api: Proapi
) -> None:
    up = await start(api, SMALL)
    upload_id, _ = await multipart(session, base_url, clock, up, 300 * 1024)
    query = f"partNumber=2&uploadId={upload_id}"
    # aiohttp sends an idempotent request (PUT) once more when the connection drops: two
    # drops reach the caller.
    emu.inject_oss(FAULT_DROP_PART, FAULT_DROP_PART)
    headers = sign(up.token, "PUT", up.bucket, up.key, when=clock.utc(), query=query, headers=OCTET)
    with pytest.raises(aiohttp.ClientError):
        await send(session, base_url, "PUT", up.key, headers, query=query, body=bytes(2**20))
    assert emu.oss_faults == []
    assert sorted(emu.multipart[upload_id].parts) == [1]


async def test_parts_out_of_order_or_sent_again_still_make_the_right_sha1(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, emu: Emulator115, api: Proapi
) -> None:
    data = os.urandom(400 * 1024)
    up = await start(api, data)
    headers = sign(up.token, "POST", up.bucket, up.key, when=clock.utc(), query="uploads")
    _, _, body = await send(session, base_url, "POST", up.key, headers, query="uploads")
    upload_id = body.decode().split("<UploadId>")[1].split("</UploadId>")[0]
    etags = {}
    for number in (2, 1, 1):  # the second half first, then the first half twice
        query = f"partNumber={number}&uploadId={upload_id}"
        headers = sign(
            up.token, "PUT", up.bucket, up.key, when=clock.utc(), query=query, headers=OCTET
        )
        chunk = data[(number - 1) * 200 * 1024 : number * 200 * 1024]
        status, answer, _ = await send(
            session, base_url, "PUT", up.key, headers, query=query, body=chunk
        )
        assert status == 200
        etags[number] = answer["ETag"]
    status, _, body = await complete(session, base_url, clock, up, upload_id, sorted(etags.items()))
    assert status == 200
    assert json.loads(body)["data"]["sha1"] == sha1_hex(data)


async def test_a_large_object_streams_through_without_being_held(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, emu: Emulator115, api: Proapi
) -> None:
    """48 MiB up (PutObject) and down (the download link) while Python's allocations stay
    under 8 MiB above the start: neither side holds the object."""
    chunk_size, count = 1024 * 1024, 48

    def chunk(i: int) -> bytes:
        return bytes([i % 251]) * chunk_size

    digest = hashlib.sha1(usedforsecurity=False)
    for i in range(count):
        digest.update(chunk(i))
    sha1 = digest.hexdigest().upper()
    emu.sign_check_unknown = False  # the sign check is not what this tests
    form = {"file_name": "big.tar", "file_size": chunk_size * count, "target": "U_1_0"}
    init = await api.post(UPLOAD_INIT_PATH, {**form, "fileid": sha1})
    up = Upload(init["data"], (await api.get(UPLOAD_TOKEN_PATH))["data"], b"")

    async def body() -> AsyncIterator[bytes]:
        for i in range(count):
            yield chunk(i)

    headers = sign(
        up.token, "PUT", up.bucket, up.key, when=clock.utc(), headers={**OCTET, **up.callback}
    )
    headers["Content-Length"] = str(chunk_size * count)
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        url = URL(f"{base_url}/{quote(up.key)}", encoded=True)
        async with session.put(url, headers=headers, data=body()) as response:
            assert response.status == 200
            file_id = (await response.json(content_type=None))["data"]["file_id"]
        link = await api.post(
            DOWNURL_PATH, {"pick_code": emu.nodes[file_id].pick_code}, {"User-Agent": "ua"}
        )
        down = hashlib.sha1(usedforsecurity=False)
        async with session.get(
            link["data"][file_id]["url"]["url"], headers={"User-Agent": "ua"}
        ) as response:
            async for part in response.content.iter_chunked(chunk_size):
                down.update(part)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert down.hexdigest().upper() == sha1
    assert peak - base < 8 * chunk_size
