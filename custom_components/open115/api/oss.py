"""Aliyun OSS for 115's uploads: V4 signatures, PutObject and multipart, the 115 callback.

115 hands out temporary OSS credentials (`upload/get_token`) and a bucket, an object and a
callback (`upload/init`). The bytes go to `https://{bucket}.{endpoint host}/{object}`, signed
with OSS V4 (`OSS4-HMAC-SHA256`, Aliyun's document "签名版本4"; the same algorithm as
alibabacloud-oss-v2's `signer/v4.py`, which the tests compare against). The request that
completes the object carries `x-oss-callback` / `x-oss-callback-var`: base64 of the strings 115
gave, as OpenList's `drivers/115_open/upload.go` sends them. OSS then calls 115, and 115's JSON
answer is the body; HTTP 203 means OSS stored the bytes but the callback failed.

Nothing here logs or quotes a key, a security token or a signature.
"""

import asyncio
import base64
from collections.abc import Awaitable, Callable, Mapping
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import hashlib
import hmac
import json
import socket
from typing import Any, Final
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape

import aiohttp
from yarl import URL

from .errors import (
    OSS_CALLBACK_FAILED_STATUS,
    Open115OssError,
    Open115OssTokenExpiredError,
    Open115TransientError,
    Open115UploadError,
    oss_error_for,
)

ALGORITHM: Final = "OSS4-HMAC-SHA256"
PRODUCT: Final = "oss"
UNSIGNED_PAYLOAD: Final = "UNSIGNED-PAYLOAD"
# A request may take this long plus the time to send its body at 64 KiB/s: never a hang.
BASE_TIMEOUT: Final = 60.0
MIN_RATE: Final = 64 * 1024
RENEW_BEFORE: Final = timedelta(seconds=60)  # credentials this close to expiry are renewed


@dataclass(frozen=True, slots=True)
class OssCredentials:
    """Temporary OSS credentials from `upload/get_token` (never shown in a repr)."""

    endpoint: str  # the endpoint host, e.g. oss-cn-shenzhen.aliyuncs.com
    access_key_id: str = field(repr=False)
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)
    expiration: datetime | None = None

    @property
    def region(self) -> str:
        """The signing region: the endpoint's first label without `oss-` (and `-internal`)."""
        label = self.endpoint.split(".", 1)[0]
        return label.removeprefix("oss-").removesuffix("-internal")


@dataclass(frozen=True, slots=True)
class OssTarget:
    """Where 115 wants the bytes, and the callback that makes them a 115 file."""

    bucket: str
    object: str
    callback: str = field(repr=False)
    callback_var: str = field(repr=False)


def endpoint_host(endpoint: str) -> str:
    """The host of an endpoint given as a host or a URL."""
    text = endpoint.strip()
    host = urlsplit(text).hostname if "://" in text else text.split("/", 1)[0]
    return (host or "").lower()


def _encode(value: str, safe: str = "/") -> str:
    """Percent-encode as the OSS SDK does (`/` kept in the path, not in the query)."""
    return quote(value, safe=safe)


def _is_signed_header(name: str) -> bool:
    return name.startswith("x-oss-") or name in ("content-type", "content-md5")


def canonical_query(query: Mapping[str, str]) -> str:
    """The query as it is signed and sent: encoded, sorted, a bare key for an empty value."""
    pairs = sorted((_encode(key, ""), _encode(value, "")) for key, value in query.items())
    return "&".join(f"{key}={value}" if value else key for key, value in pairs)


def sign_v4(
    *,
    method: str,
    bucket: str,
    key: str,
    query: Mapping[str, str],
    headers: dict[str, str],
    credentials: OssCredentials,
    now: datetime,
) -> None:
    """Sign a request in place (OSS V4, header form, unsigned payload).

    Adds `x-oss-date`, `x-oss-content-sha256`, `x-oss-security-token` and `Authorization`.
    """
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    day = stamp[:8]
    headers["x-oss-date"] = stamp
    headers["x-oss-content-sha256"] = UNSIGNED_PAYLOAD
    if credentials.security_token:
        headers["x-oss-security-token"] = credentials.security_token
    scope = f"{day}/{credentials.region}/{PRODUCT}/aliyun_v4_request"
    signed = sorted(
        (name.lower(), value) for name, value in headers.items() if _is_signed_header(name.lower())
    )
    canonical = "\n".join(
        (
            method,
            _encode(f"/{bucket}/{key}"),
            canonical_query(query),
            "".join(f"{name}:{value}\n" for name, value in signed),
            "",
            UNSIGNED_PAYLOAD,
        )
    )
    string_to_sign = "\n".join(
        (ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode()).hexdigest())
    )
    signing_key = ("aliyun_v4" + credentials.access_key_secret).encode()
    for part in (day, credentials.region, PRODUCT, "aliyun_v4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope},Signature={signature}"
    )


def complete_body(etags: list[str]) -> bytes:
    """The CompleteMultipartUpload XML for parts 1..n with these ETags."""
    parts = "".join(
        f"<Part><PartNumber>{number}</PartNumber><ETag>{escape(etag)}</ETag></Part>"
        for number, etag in enumerate(etags, start=1)
    )
    return f"<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>".encode()


class OssUpload:
    """One object's upload to OSS: PutObject, or a multipart upload (initiate, parts, complete).

    `renew` fetches fresh credentials; on `SecurityTokenExpired` a request is sent once more with
    them (the multipart upload goes on with its upload id); a second expiry fails.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        target: OssTarget,
        credentials: OssCredentials,
        renew: Callable[[], Awaitable[OssCredentials]],
        *,
        base_url: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`base_url` (development): send every request there with the real `Host` header."""
        self._session = session
        self._target = target
        self._credentials = credentials
        self._renew = renew
        self._base_url = base_url.rstrip("/") if base_url else None
        self._clock = clock
        self.upload_id: str | None = None
        self.etags: list[str] = []
        self.requests = 0

    async def put_object(self, body: bytes | bytearray | memoryview) -> dict[str, Any]:
        """Store the whole object in one request, completing it: 115's callback answer."""
        raw = await self._send("PUT", {}, body, "Sending the file to OSS", complete=True)
        return _callback_answer(raw)

    async def initiate(self) -> str:
        """Start a multipart upload; its upload id."""
        raw = await self._send("POST", {"uploads": ""}, None, "Starting the OSS upload")
        start, end = raw.find(b"<UploadId>"), raw.find(b"</UploadId>")
        if start < 0 or end < 0:
            raise Open115UploadError("Starting the OSS upload failed: no upload id")
        self.upload_id = raw[start + len(b"<UploadId>") : end].decode().strip()
        self.etags = []
        return self.upload_id

    async def upload_part(self, body: bytes | bytearray | memoryview) -> None:
        """Send the next part (numbered from 1); a dropped connection is retried once."""
        number = len(self.etags) + 1
        query = {"partNumber": str(number), "uploadId": self._upload_id}
        what = f"Sending part {number} to OSS"
        try:
            etag = await self._send("PUT", query, body, what, etag=True)
        except Open115TransientError:
            etag = await self._send("PUT", query, body, what, etag=True)
        self.etags.append(etag.decode())

    async def complete(self) -> dict[str, Any]:
        """Complete the multipart upload with its parts: 115's callback answer."""
        raw = await self._send(
            "POST",
            {"uploadId": self._upload_id},
            complete_body(self.etags),
            "Completing the OSS upload",
            complete=True,
            content_type="application/xml",
        )
        return _callback_answer(raw)

    async def abort(self) -> None:
        """Abort the multipart upload (its parts are dropped); failures are ignored."""
        if self.upload_id is None:
            return
        with contextlib.suppress(Open115OssError, Open115TransientError):
            await self._send("DELETE", {"uploadId": self.upload_id}, None, "Aborting")
        self.upload_id = None

    @property
    def _upload_id(self) -> str:
        if self.upload_id is None:
            raise Open115UploadError("The OSS upload was not started")
        return self.upload_id

    async def _send(
        self,
        method: str,
        query: Mapping[str, str],
        body: bytes | bytearray | memoryview | None,
        what: str,
        *,
        complete: bool = False,
        etag: bool = False,
        content_type: str = "application/octet-stream",
    ) -> bytes:
        """Send one signed request; renew the credentials once if OSS says they expired.

        Credentials about to expire (115 says when) are renewed before the request instead.
        """
        expiration = self._credentials.expiration
        if expiration is not None and expiration - self._clock() < RENEW_BEFORE:
            self._credentials = await self._renew()
        try:
            return await self._send_once(
                method, query, body, what, complete=complete, etag=etag, content_type=content_type
            )
        except Open115OssTokenExpiredError:
            self._credentials = await self._renew()
            return await self._send_once(
                method, query, body, what, complete=complete, etag=etag, content_type=content_type
            )

    async def _send_once(
        self,
        method: str,
        query: Mapping[str, str],
        body: bytes | bytearray | memoryview | None,
        what: str,
        *,
        complete: bool,
        etag: bool,
        content_type: str,
    ) -> bytes:
        target, credentials = self._target, self._credentials
        host = f"{target.bucket}.{endpoint_host(credentials.endpoint)}"
        headers: dict[str, str] = {}
        if method in ("POST", "PUT"):
            # aiohttp adds one to every POST and PUT: set (and sign) it ourselves.
            headers["Content-Type"] = content_type
        if complete:
            headers["x-oss-callback"] = base64.b64encode(target.callback.encode()).decode()
            headers["x-oss-callback-var"] = base64.b64encode(target.callback_var.encode()).decode()
        sign_v4(
            method=method,
            bucket=target.bucket,
            key=target.object,
            query=query,
            headers=headers,
            credentials=credentials,
            now=self._clock(),
        )
        path = _encode(f"/{target.object}")
        qs = canonical_query(query)
        root = self._base_url or f"https://{host}"
        if self._base_url:
            headers["Host"] = host
        url = URL(f"{root}{path}" + (f"?{qs}" if qs else ""), encoded=True)
        size = len(body) if body is not None else 0
        self.requests += 1
        try:
            async with asyncio.timeout(BASE_TIMEOUT + size / MIN_RATE):
                async with self._session.request(
                    method, url, data=body, headers=headers, allow_redirects=False
                ) as resp:
                    raw = await resp.read()
                    status = resp.status
                    tag = resp.headers.get("ETag", "")
        except TimeoutError as err:
            raise Open115TransientError(f"{what} timed out") from err
        except (aiohttp.ClientError, socket.gaierror, OSError) as err:
            raise Open115TransientError(
                f"{what} failed: cannot connect ({type(err).__name__})"
            ) from err
        if status >= 300 or status == OSS_CALLBACK_FAILED_STATUS:
            raise oss_error_for(status, raw, what)
        if etag:
            if not tag:
                raise Open115UploadError(f"{what} failed: no ETag in the answer")
            return tag.encode()
        return raw


def _callback_answer(raw: bytes) -> dict[str, Any]:
    """115's answer to OSS's callback: its `data` (file_id, pick_code, ...) when it succeeded."""
    try:
        body = json.loads(raw)
    except ValueError as err:
        raise Open115UploadError("115's callback answer is not JSON") from err
    if not isinstance(body, dict):
        raise Open115UploadError("115's callback answer is not an object")
    state = body.get("state")
    data = body.get("data")
    if state in (False, 0, "0") or not isinstance(data, dict) or not data.get("file_id"):
        code = body.get("code")
        raise Open115UploadError(
            "115 did not accept the upload" + (f" (code {code})" if code is not None else "")
        )
    return data
