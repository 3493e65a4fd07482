"""The emulator's OSS stand-in (tests/emulator/oss.py), with requests signed by Alibaba's SDK.

Its V4 verifier must accept what alibabacloud-oss-v2's SignerV4 signs and refuse any change
to a signed header, the query, the secret or the token; PutObject and multipart must store the
bytes and run 115's callback exactly as the sources describe.
"""

import hashlib
import json
import os
from typing import Any

import aiohttp
from multidict import CIMultiDict
import pytest

from .api_fixtures import FakeClock
from .conftest import USER_ID
from .emulator import (
    FAULT_CALLBACK_FAILED,
    FAULT_DROP_PART,
    FAULT_TOKEN_EXPIRED,
    UPLOAD_INIT_PATH,
    UPLOAD_TOKEN_PATH,
    Emulator115,
    sha1_hex,
)
from .emulator_requests import Proapi, callback_headers, send, sign

SMALL = os.urandom(300 * 1024)
OCTET = {"Content-Type": "application/octet-stream"}


class Upload:
    """One scheduled upload (status 1) and fresh OSS credentials, as a client holds them."""

    def __init__(self, init: dict[str, Any], token: dict[str, str], data: bytes) -> None:
        self.init, self.token, self.data = init, token, data
        self.bucket, self.key = init["bucket"], init["object"]
        self.callback = callback_headers(init["callback"])


@pytest.fixture
async def api(session: aiohttp.ClientSession, base_url: str, emu: Emulator115) -> Proapi:
    return Proapi(session, base_url, emu, emu.authorize(USER_ID))


async def start(api: Proapi, data: bytes, *, fileid: str | None = None) -> Upload:
    init = await api.post(
        UPLOAD_INIT_PATH,
        {
            "file_name": "backup.tar",
            "file_size": len(data),
            "target": "U_1_0",
            "fileid": fileid or sha1_hex(data),
            "preid": sha1_hex(data[: 128 * 1024]),
            "topupload": 0,
        },
    )
    assert init["data"]["status"] == 1
    token = (await api.get(UPLOAD_TOKEN_PATH))["data"]
    return Upload(init["data"], token, data)


async def put_object(
    session: aiohttp.ClientSession,
    base_url: str,
    clock: FakeClock,
    up: Upload,
    *,
    extra: dict[str, str] | None = None,
) -> tuple[int, CIMultiDict[str], bytes]:
    headers = sign(
        up.token,
        "PUT",
        up.bucket,
        up.key,
        when=clock.utc(),
        headers={**OCTET, **up.callback, **(extra or {})},
    )
    return await send(session, base_url, "PUT", up.key, headers, body=up.data)


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


async def multipart(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, up: Upload, size: int
) -> tuple[str, list[tuple[int, str]]]:
    """Initiate and send the parts; the upload id and (number, ETag) list."""
    headers = sign(up.token, "POST", up.bucket, up.key, when=clock.utc(), query="uploads")
    status, _, body = await send(session, base_url, "POST", up.key, headers, query="uploads")
    assert status == 200
    upload_id = body.decode().split("<UploadId>")[1].split("</UploadId>")[0]
    parts = []
    for number, offset in enumerate(range(0, len(up.data), size), start=1):
        query = f"partNumber={number}&uploadId={upload_id}"
        headers = sign(
            up.token, "PUT", up.bucket, up.key, when=clock.utc(), query=query, headers=OCTET
        )
        chunk = up.data[offset : offset + size]
        status, answer, _ = await send(
            session, base_url, "PUT", up.key, headers, query=query, body=chunk
        )
        assert status == 200
        assert (
            answer["ETag"] == f'"{hashlib.md5(chunk, usedforsecurity=False).hexdigest().upper()}"'
        )
        parts.append((number, answer["ETag"]))
    return upload_id, parts


def part_list(parts: list[tuple[int, str]]) -> bytes:
    inner = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>" for n, e in parts)
    return f"<CompleteMultipartUpload>{inner}</CompleteMultipartUpload>".encode()


async def complete(
    session: aiohttp.ClientSession,
    base_url: str,
    clock: FakeClock,
    up: Upload,
    upload_id: str,
    parts: list[tuple[int, str]],
) -> tuple[int, CIMultiDict[str], bytes]:
    query = f"uploadId={upload_id}"
    headers = sign(
        up.token,
        "POST",
        up.bucket,
        up.key,
        when=clock.utc(),
        query=query,
        headers={"Content-Type": "application/xml", **up.callback},
    )
    return await send(
        session, base_url, "POST", up.key, headers, query=query, body=part_list(parts)
    )


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


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        ("header", "SignatureDoesNotMatch"),
        ("query", "SignatureDoesNotMatch"),
        ("secret", "SignatureDoesNotMatch"),
        ("region", "SignatureDoesNotMatch"),
        ("host", "SignatureDoesNotMatch"),
        ("token", "InvalidSecurityToken"),
        ("key_id", "InvalidAccessKeyId"),
        ("expired", "SecurityTokenExpired"),
        ("skewed", "RequestTimeTooSkewed"),
        ("v1", "AccessDenied"),
    ],
)
async def test_the_verifier_refuses_what_the_signer_did_not_sign(
    session: aiohttp.ClientSession,
    base_url: str,
    clock: FakeClock,
    emu: Emulator115,
    api: Proapi,
    tamper: str,
    code: str,
) -> None:
    up = await start(api, SMALL)
    upload_id, _ = await multipart(session, base_url, clock, up, 200 * 1024)
    query = f"partNumber=1&uploadId={upload_id}"
    token = dict(up.token)
    if tamper == "secret":
        token["AccessKeySecret"] += "x"
    region = "cn-hangzhou" if tamper == "region" else "cn-shenzhen"
    when = clock.utc()
    if tamper == "skewed":
        clock.advance(16 * 60)
    headers = sign(
        token,
        "PUT",
        up.bucket,
        up.key,
        when=when,
        query=query,
        headers={**OCTET, "x-oss-meta-a": "1"},
        additional={"host"},
        region=region,
    )
    assert "AdditionalHeaders=host," in headers["Authorization"]
    if tamper == "header":
        headers["x-oss-meta-a"] = "2"
    if tamper == "query":
        query = f"partNumber=2&uploadId={upload_id}"
    if tamper == "host":
        headers["Host"] = headers["Host"].replace("fhnfile.", "fhnfile.x.", 1)
    if tamper == "token":
        headers["x-oss-security-token"] += "x"
    if tamper == "key_id":
        headers["Authorization"] = headers["Authorization"].replace("STS.", "STS.X", 1)
    if tamper == "expired":
        clock.advance(emu.oss_token_lifetime)
    if tamper == "v1":
        headers["Authorization"] = f"OSS {token['AccessKeyId']}:c2lnbmF0dXJl"
    status, _, body = await send(
        session, base_url, "PUT", up.key, headers, query=query, body=b"x" * 1024
    )
    if tamper == "host":
        assert status == 404  # another bucket
        return
    assert status == 403
    assert f"<Code>{code}</Code>" in body.decode()
    sizes = {n: part[2] for n, part in emu.multipart[upload_id].parts.items()}
    assert sizes == {1: 200 * 1024, 2: 100 * 1024}  # nothing replaced


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
