"""Plain requests to the emulator for its own tests: proapi calls and OSS requests signed by
Alibaba's SDK (alibabacloud-oss-v2's SignerV4), sent over loopback with aiohttp.

These are the emulator's tests, not the integration's client: the client under
custom_components is tested against the emulator elsewhere.
"""

import base64
from datetime import datetime
import hashlib
from typing import Any
from urllib.parse import quote

import aiohttp
from alibabacloud_oss_v2.signer.v4 import SignerV4
from alibabacloud_oss_v2.types import Credentials, HttpRequest, SigningContext
from multidict import CIMultiDict
from yarl import URL

from .api_fixtures import FakeClock
from .emulator import UPLOAD_INIT_PATH, UPLOAD_TOKEN_PATH, Emulator115, Grant, sha1_hex


class Proapi:
    """Authenticated proapi calls with an access token of `grant`."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, emu: Emulator115, grant: Grant
    ) -> None:
        self.session, self.base_url = session, base_url
        self.token = emu.issue_access_token(grant)

    async def get(self, path: str, **params: Any) -> dict[str, Any]:
        async with self.session.get(
            self.base_url + path,
            params={k: str(v) for k, v in params.items()},
            headers={"Authorization": f"Bearer {self.token}"},
        ) as response:
            assert response.status == 200
            body: dict[str, Any] = await response.json(content_type=None)
            return body

    async def post(
        self, path: str, form: dict[str, Any], headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        async with self.session.post(
            self.base_url + path,
            data={k: str(v) for k, v in form.items()},
            headers={"Authorization": f"Bearer {self.token}", **(headers or {})},
        ) as response:
            assert response.status == 200
            body: dict[str, Any] = await response.json(content_type=None)
            return body


def callback_headers(callback: dict[str, str]) -> dict[str, str]:
    """x-oss-callback and x-oss-callback-var: base64 of the strings as 115 gave them."""
    return {
        "x-oss-callback": base64.b64encode(callback["callback"].encode()).decode(),
        "x-oss-callback-var": base64.b64encode(callback["callback_var"].encode()).decode(),
    }


def sign(
    token: dict[str, str],
    method: str,
    bucket: str,
    key: str,
    *,
    when: datetime,
    query: str = "",
    headers: dict[str, str] | None = None,
    additional: set[str] | None = None,
    region: str = "cn-shenzhen",
) -> dict[str, str]:
    """The headers of a request signed by the SDK's V4 signer (Host included)."""
    host = f"{bucket}.{URL(token['endpoint']).host}"
    url = f"http://{host}/{quote(key)}" + (f"?{query}" if query else "")
    request = HttpRequest(method, url, headers={"Host": host, **(headers or {})})
    context = SigningContext(
        product="oss",
        region=region,
        bucket=bucket,
        key=key,
        request=request,
        credentials=Credentials(
            token["AccessKeyId"], token["AccessKeySecret"], token["SecurityToken"]
        ),
        signing_time=when,
        additional_headers=additional,
    )
    SignerV4().sign(context)
    return dict(request.headers.items())


async def send(
    session: aiohttp.ClientSession,
    base_url: str,
    method: str,
    key: str,
    headers: dict[str, str],
    *,
    query: str = "",
    body: bytes | None = None,
) -> tuple[int, CIMultiDict[str], bytes]:
    """Send to the emulator with the OSS path, query and headers; status, headers, body."""
    url = URL(f"{base_url}/{quote(key)}" + (f"?{query}" if query else ""), encoded=True)
    async with session.request(
        method, url, headers=headers, data=body, skip_auto_headers={"Content-Type"}
    ) as response:
        return response.status, CIMultiDict(response.headers), await response.read()


OCTET = {"Content-Type": "application/octet-stream"}


class Upload:
    """One scheduled upload (status 1) and fresh OSS credentials, as a client holds them."""

    def __init__(self, init: dict[str, Any], token: dict[str, str], data: bytes) -> None:
        self.init, self.token, self.data = init, token, data
        self.bucket, self.key = init["bucket"], init["object"]
        self.callback = callback_headers(init["callback"])


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
