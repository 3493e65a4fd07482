"""An Aliyun OSS stand-in: V4 signatures, PutObject, multipart, and 115's upload callback.

Requests reach it on the emulator's own server, told apart by their `Host` header
`{bucket}.{endpoint host}` (shared/spec/contract.md "Development endpoint"; virtual-hosted
style, as restic-115@a4175a2 src/open115/client.rs oss_put_object and p115client@608a443
modules/p115oss/p115oss/oss.py oss_url address it). What is modelled, from which source:
- Signature V4 only, checked as Alibaba's SDK signs (oss_signature.py). The key id and
  `x-oss-security-token` must be ones get_token issued, not expired: else 403
  InvalidAccessKeyId / InvalidSecurityToken / SecurityTokenExpired (OpenList@0675494
  drivers/115_open/upload_test.go: 403 `<Code>SecurityTokenExpired`, then fresh credentials
  and the same upload id).
- PutObject; multipart: `POST ?uploads` (XML UploadId), `PUT ?partNumber=&uploadId=` (ETag =
  quoted upper-case MD5 hex), `POST ?uploadId=` with the XML part list (parts but the last at
  least 100 KiB, at most 10,000), `DELETE ?uploadId=` (abort, 204), `GET ?uploadId=`
  (ListParts): OpenList@0b1e9d0 drivers/115_open/upload.go, p115oss oss.py. Errors are XML
  `<Error><Code/><Message/><RequestId/><HostId/></Error>` with `x-oss-request-id`.
- The callback: on the completing request (PutObject or CompleteMultipartUpload) the headers
  `x-oss-callback`/`x-oss-callback-var` are base64 of the strings upload/init gave (OpenList
  upload.go, p115oss oss.py); the emulator "calls 115": the upload must be one it scheduled,
  the strings exactly as issued, the bytes of the declared size and SHA1 (`fileid`) and, for a
  sign check it could not verify at init, the claimed range SHA1. Then the file is created and
  the answer is 115's JSON `{state, code, message, data: {file_id, pick_code, file_name,
  file_size, sha1, cid, ...}}` (OpenList upload.go CallbackResult; restic-115
  docs/debugging-notes.md). Otherwise HTTP 203 with `<Code>CallbackFailed</Code>`: the bytes
  stay in OSS, no file appears. Without the callback headers the object is stored and 115
  never hears of it.
Faults (`inject_oss`, the constants below): the callback's 203, SecurityTokenExpired, a part
whose connection drops, and three that no source reports from OSS itself but a proxy or a
stalled connection can produce: a send never answered, an InitiateMultipartUpload without an
UploadId, an UploadPart without an ETag.
Bytes are streamed to files in a temporary directory: a request holds one read buffer.
"""

import base64
import binascii
from dataclasses import dataclass, field
from datetime import UTC, datetime
import hashlib
import json
import pathlib
import secrets
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

from aiohttp import web

from .blob import CHUNK, Blob
from .oss_signature import OssError, check_signature, parse_authorization, region_of
from .upload import OssCredentials, PendingUpload, UploadEndpoints

OSS_LOG_PATH = "oss:"  # request-log and counter prefix: "oss:PutObject", ...
MIN_PART_SIZE = 100 * 1024
MAX_PARTS = 10000
_EMPTY_SHA1 = hashlib.sha1(b"", usedforsecurity=False).hexdigest().upper()
# OSS faults a test can queue (one per OSS request), see `inject_oss`.
FAULT_CALLBACK_FAILED = "callback_failed"  # the completing request answers 203
FAULT_TOKEN_EXPIRED = "token_expired"  # the credentials expire now: 403 SecurityTokenExpired
FAULT_DROP_PART = "drop_part"  # an UploadPart reads half its body, then the connection drops
# Malformed successes and a silent server, which no source reports from OSS itself but a proxy
# or a broken connection can produce: the client must fail cleanly, abort and store nothing.
FAULT_OSS_HANG = "oss_hang"  # the next PutObject or UploadPart is never answered (a stalled send)
FAULT_NO_UPLOAD_ID = "no_upload_id"  # InitiateMultipartUpload answers 200 without an UploadId
FAULT_NO_ETAG = "no_etag"  # an UploadPart answers 200 without an ETag header
OSS_FAULTS = frozenset(
    {
        FAULT_CALLBACK_FAILED,
        FAULT_TOKEN_EXPIRED,
        FAULT_DROP_PART,
        FAULT_OSS_HANG,
        FAULT_NO_UPLOAD_ID,
        FAULT_NO_ETAG,
    }
)


@dataclass
class MultipartUpload:
    """An initiated multipart upload and its parts on disk."""

    bucket: str
    key: str
    upload_id: str
    initiated: float
    parts: dict[int, tuple[pathlib.Path, str, int, float]] = field(default_factory=dict)
    # The SHA1 of parts 1..hashed, when they came in order (saves a second read at the end).
    running: Any = field(default_factory=lambda: hashlib.sha1(usedforsecurity=False))
    hashed: int = 0


@dataclass
class StoredObject:
    """An object OSS holds."""

    bucket: str
    key: str
    blob: Blob
    size: int
    sha1: str
    etag: str


@dataclass
class OssEndpoints(UploadEndpoints):
    """The OSS stand-in, served for requests whose Host is `{bucket}.{endpoint host}`."""

    multipart: dict[str, MultipartUpload] = field(default_factory=dict)
    objects: dict[tuple[str, str], StoredObject] = field(default_factory=dict)
    oss_faults: list[str] = field(default_factory=list)
    oss_requests: list[tuple[str, int, str]] = field(default_factory=list)  # op, status, code

    def inject_oss(self, *faults: str) -> None:
        """Queue OSS faults; each applies to the next OSS request it fits."""
        for fault in faults:
            if fault not in OSS_FAULTS:
                raise ValueError(f"unknown OSS fault {fault}")
        self.oss_faults.extend(faults)

    def oss_count(self, op: str | None = None) -> int:
        """How many OSS requests (of operation `op`) arrived."""
        return sum(1 for o, _, _ in self.oss_requests if op is None or o == op)

    def _endpoint_host(self) -> str:
        return urlsplit(self.oss_endpoint).hostname or ""

    def _take_fault(self, fault: str) -> bool:
        if fault in self.oss_faults:
            self.oss_faults.remove(fault)
            return True
        return False

    def _add_routes(self, app: web.Application) -> None:
        super()._add_routes(app)
        app.middlewares.append(self._oss_middleware)

    @web.middleware
    async def _oss_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        host = request.headers.get("Host", "").rsplit(":", 1)[0].lower()
        suffix = "." + self._endpoint_host()
        if not host.endswith(suffix):
            return await handler(request)  # type: ignore[no-any-return]
        bucket = host.removesuffix(suffix)
        op = _operation(request)
        self.counters[OSS_LOG_PATH + op] += 1
        if op in ("PutObject", "UploadPart") and self._take_fault(FAULT_OSS_HANG):
            self.oss_requests.append((op, 0, FAULT_OSS_HANG))
            self._log(OSS_LOG_PATH + op, None, FAULT_OSS_HANG)
            assert self._release is not None
            await self._release.wait()  # set when the emulator stops
            return web.Response(status=503)
        try:
            response = await self._oss(request, bucket, op)
        except OssError as err:
            self.oss_requests.append((op, err.status, err.code))
            self._log(OSS_LOG_PATH + op, err.status, err.code)
            return self._oss_error(request, err)
        self.oss_requests.append((op, response.status, ""))
        self._log(OSS_LOG_PATH + op, 0)
        return response

    def _oss_error(self, request: web.Request, err: OssError) -> web.Response:
        request_id = secrets.token_hex(12).upper()
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
            f"  <Code>{err.code}</Code>\n  <Message>{_xml(err.message)}</Message>\n"
            f"  <RequestId>{request_id}</RequestId>\n"
            f"  <HostId>{_xml(request.headers.get('Host', ''))}</HostId>\n</Error>\n"
        )
        return web.Response(
            status=err.status,
            body=body.encode(),
            content_type="application/xml",
            headers={"x-oss-request-id": request_id},
        )

    def verify_v4(self, request: web.Request, bucket: str) -> OssCredentials:
        """Check the V4 signature and the security token; the credentials it used."""
        auth = parse_authorization(request)
        creds = self.oss_credentials.get(auth.key_id)
        if creds is None:
            raise OssError(403, "InvalidAccessKeyId", "The OSS Access Key Id does not exist.")
        if request.headers.get("x-oss-security-token") != creds.security_token:
            raise OssError(403, "InvalidSecurityToken", "The security token is invalid.")
        if self._take_fault(FAULT_TOKEN_EXPIRED):
            creds.expires_at = min(creds.expires_at, self.clock())
        if self.clock() >= creds.expires_at:
            raise OssError(403, "SecurityTokenExpired", "The security token has expired.")
        region = region_of(self.oss_endpoint)
        check_signature(request, auth, bucket, creds.access_key_secret, region, self.clock())
        return creds

    # ----- the operations ---------------------------------------------------------------

    async def _oss(self, request: web.Request, bucket: str, op: str) -> web.StreamResponse:
        if bucket != self.oss_bucket:
            raise OssError(404, "NoSuchBucket", "The specified bucket does not exist.")
        creds = self.verify_v4(request, bucket)
        key = request.path.removeprefix("/")
        if not key:
            raise OssError(400, "InvalidObjectName", "The object name is empty.")
        if op == "PutObject":
            return await self._put_object(request, creds, bucket, key)
        if op == "InitiateMultipartUpload":
            upload_id = secrets.token_hex(16).upper()
            self.multipart[upload_id] = MultipartUpload(bucket, key, upload_id, self.clock())
            shown = (
                "" if self._take_fault(FAULT_NO_UPLOAD_ID) else f"<UploadId>{upload_id}</UploadId>"
            )
            return _xml_response(
                "InitiateMultipartUploadResult",
                f"<Bucket>{bucket}</Bucket><Key>{_xml(key)}</Key>{shown}",
            )
        upload = self.multipart.get(request.query.get("uploadId", ""))
        if upload is None or (upload.bucket, upload.key) != (bucket, key):
            raise OssError(404, "NoSuchUpload", "The specified upload does not exist.")
        if op == "UploadPart":
            return await self._upload_part(request, upload)
        if op == "CompleteMultipartUpload":
            return await self._complete(request, creds, upload)
        if op == "AbortMultipartUpload":
            self._drop(upload)
            return web.Response(status=204)
        return self._list_parts(upload)

    async def _receive(
        self, request: web.Request, path: pathlib.Path, sha1: Any, *, drop_midway: bool = False
    ) -> tuple[int, str]:
        """Stream the body to `path`, updating `sha1`: its size and upper MD5 hex."""
        md5 = hashlib.md5(usedforsecurity=False)
        size = 0
        half = (request.content_length or 0) // 2
        with path.open("wb") as out:
            while chunk := await request.content.read(CHUNK):
                out.write(chunk)
                md5.update(chunk)
                sha1.update(chunk)
                size += len(chunk)
                if drop_midway and size >= half:
                    _discard(path)
                    assert request.transport is not None
                    request.transport.abort()
                    raise OssError(400, "RequestTimeout", "The connection dropped.")
        if request.content_length is not None and size != request.content_length:
            _discard(path)
            raise OssError(400, "IncompleteBody", "The body is shorter than Content-Length.")
        given = request.headers.get("Content-MD5")
        if given is not None and given != base64.b64encode(md5.digest()).decode():
            _discard(path)
            raise OssError(400, "InvalidDigest", "The Content-MD5 does not match.")
        return size, md5.hexdigest().upper()

    async def _put_object(
        self, request: web.Request, creds: OssCredentials, bucket: str, key: str
    ) -> web.StreamResponse:
        path = self.storage_dir() / f"obj-{secrets.token_hex(8)}"
        sha1 = hashlib.sha1(usedforsecurity=False)
        size, md5 = await self._receive(request, path, sha1)
        blob = Blob([(path, size)])
        stored = StoredObject(bucket, key, blob, size, sha1.hexdigest().upper(), f'"{md5}"')
        return self._store(request, creds, stored)

    async def _upload_part(
        self, request: web.Request, upload: MultipartUpload
    ) -> web.StreamResponse:
        try:
            number = int(request.query.get("partNumber", ""))
        except ValueError:
            number = 0
        if not 1 <= number <= MAX_PARTS:
            raise OssError(400, "InvalidArgument", "partNumber must be 1 to 10000.")
        path = self.storage_dir() / f"part-{upload.upload_id}-{number}-{secrets.token_hex(4)}"
        in_order = number == upload.hashed + 1 and number not in upload.parts
        sha1 = upload.running.copy() if in_order else hashlib.sha1(usedforsecurity=False)
        size, md5 = await self._receive(
            request, path, sha1, drop_midway=self._take_fault(FAULT_DROP_PART)
        )
        if in_order:
            upload.running, upload.hashed = sha1, number
        elif number <= upload.hashed:
            upload.hashed = -1  # a part the running SHA1 covers changed: read them at the end
        old = upload.parts.get(number)
        if old is not None:
            _discard(old[0])
        upload.parts[number] = (path, f'"{md5}"', size, self.clock())
        if self._take_fault(FAULT_NO_ETAG):
            return web.Response(status=200)
        return web.Response(status=200, headers={"ETag": f'"{md5}"'})

    async def _complete(
        self, request: web.Request, creds: OssCredentials, upload: MultipartUpload
    ) -> web.StreamResponse:
        try:
            root = ET.fromstring(await request.read())  # noqa: S314 - a test server's input
            listed = [
                (int(p.findtext("PartNumber", "")), p.findtext("ETag", "").strip())
                for p in root.iter("Part")
            ]
        except ET.ParseError, ValueError:
            raise OssError(
                400, "MalformedXML", "The XML you provided was not well-formed."
            ) from None
        numbers = [n for n, _ in listed]
        if not listed or numbers != sorted(set(numbers)):
            raise OssError(400, "InvalidPartOrder", "The list of parts was not in ascending order.")
        for index, (number, etag) in enumerate(listed):
            part = upload.parts.get(number)
            if part is None or part[1].strip('"') != etag.strip('"').upper():
                raise OssError(
                    400, "InvalidPart", "One or more of the specified parts was not found."
                )
            if index < len(listed) - 1 and part[2] < MIN_PART_SIZE:
                raise OssError(400, "EntityTooSmall", "A part is smaller than 100 KiB.")
        # The object is its listed parts as they are on disk (no copy); the others go.
        blob = Blob([(upload.parts[n][0], upload.parts[n][2]) for n in numbers])
        for number, (path, _, _, _) in upload.parts.items():
            if number not in numbers:
                _discard(path)
        self.multipart.pop(upload.upload_id, None)
        if numbers == list(range(1, upload.hashed + 1)):
            sha1 = upload.running.hexdigest().upper()
        else:
            sha1 = blob.range_sha1(0, blob.size - 1) if blob.size else _EMPTY_SHA1
        md5s = hashlib.md5(usedforsecurity=False)
        for number in numbers:
            md5s.update(bytes.fromhex(upload.parts[number][1].strip('"')))
        etag = f'"{md5s.hexdigest().upper()}-{len(listed)}"'
        stored = StoredObject(upload.bucket, upload.key, blob, blob.size, sha1, etag)
        return self._store(request, creds, stored, multipart=True)

    def _drop(self, upload: MultipartUpload) -> None:
        for path, _, _, _ in upload.parts.values():
            _discard(path)
        self.multipart.pop(upload.upload_id, None)

    def _list_parts(self, upload: MultipartUpload) -> web.Response:
        parts = "".join(
            f"<Part><PartNumber>{n}</PartNumber>"
            f"<LastModified>{datetime.fromtimestamp(at, UTC).isoformat()}</LastModified>"
            f"<ETag>{_xml(etag)}</ETag><Size>{size}</Size></Part>"
            for n, (_, etag, size, at) in sorted(upload.parts.items())
        )
        return _xml_response(
            "ListPartsResult",
            f"<Bucket>{upload.bucket}</Bucket><Key>{_xml(upload.key)}</Key>"
            f"<UploadId>{upload.upload_id}</UploadId><MaxParts>1000</MaxParts>"
            f"<IsTruncated>false</IsTruncated>{parts}",
        )

    # ----- the object and 115's callback ------------------------------------------------

    def _store(
        self,
        request: web.Request,
        creds: OssCredentials,
        stored: StoredObject,
        *,
        multipart: bool = False,
    ) -> web.StreamResponse:
        """Keep the object, then run 115's callback if the request carries one."""
        old = self.objects.pop((stored.bucket, stored.key), None)
        if old is not None and self.blobs.get(old.sha1) is not old.blob:
            old.blob.discard()
        self.objects[(stored.bucket, stored.key)] = stored
        headers = {"ETag": stored.etag, "x-oss-request-id": secrets.token_hex(12).upper()}
        encoded = request.headers.get("x-oss-callback")
        if encoded is None:
            if multipart:
                return _xml_response(
                    "CompleteMultipartUploadResult",
                    f"<Bucket>{stored.bucket}</Bucket><Key>{_xml(stored.key)}</Key>"
                    f"<ETag>{_xml(stored.etag)}</ETag>",
                    headers,
                )
            return web.Response(status=200, headers=headers)
        try:
            callback = base64.b64decode(encoded, validate=True).decode()
            callback_var = base64.b64decode(
                request.headers.get("x-oss-callback-var", ""), validate=True
            ).decode()
            json.loads(callback)
        except binascii.Error, UnicodeDecodeError, ValueError:
            raise OssError(
                400, "InvalidArgument", "The callback configuration is not json format."
            ) from None
        failure = self._callback_failure(creds, stored, callback, callback_var)
        if failure is not None:
            raise OssError(203, "CallbackFailed", failure)
        upload = self.uploads.pop(json.loads(callback_var)["x:pick_code"])
        stored.blob = self.keep_blob(stored.blob, stored.sha1)
        node = self.create_file(
            upload.user_id, upload.cid, upload.file_name, stored.size, stored.sha1, upload.pick_code
        )
        body = {
            "state": True,
            "code": 0,
            "message": "",
            "data": {
                "pick_code": node.pick_code,
                "file_name": node.name,
                "file_size": self._size(node.size),
                "file_id": node.file_id,
                "thumb_url": "",
                "sha1": node.sha1,
                "aid": 1,
                "cid": node.parent_id,
            },
        }
        return web.json_response(body, headers=headers)

    def _callback_failure(
        self, creds: OssCredentials, stored: StoredObject, callback: str, callback_var: str
    ) -> str | None:
        """Why 115's callback server refuses this object (None: it takes it)."""
        if self._take_fault(FAULT_CALLBACK_FAILED):
            return "Error status : 502."
        try:
            pick_code = json.loads(callback_var).get("x:pick_code", "")
        except ValueError, AttributeError:
            return "Error status : 400. callback_var is not 115's"
        upload: PendingUpload | None = self.uploads.get(pick_code)
        if upload is None or upload.user_id != creds.user_id:
            return "Error status : 400. unknown upload"
        if (callback, callback_var) != (upload.callback, upload.callback_var):
            return "Error status : 400. callback changed"
        if (stored.bucket, stored.key) != (upload.bucket, upload.object):
            return "Error status : 400. wrong object"
        if stored.size != upload.file_size or stored.sha1 != upload.sha1:
            return "Error status : 400. the bytes differ from fileid"
        if upload.sign_range is not None:
            start, end = upload.sign_range
            if stored.blob.range_sha1(start, end) != upload.sign_val.upper():
                return "Error status : 400. sign_val differs"
        return None


def _operation(request: web.Request) -> str:
    query = request.query
    if request.method == "PUT":
        return "UploadPart" if "uploadId" in query else "PutObject"
    if request.method == "POST":
        if "uploads" in query:
            return "InitiateMultipartUpload"
        return "CompleteMultipartUpload" if "uploadId" in query else "PostObject"
    if request.method == "DELETE" and "uploadId" in query:
        return "AbortMultipartUpload"
    if request.method == "GET" and "uploadId" in query:
        return "ListParts"
    return f"{request.method}Object"


def _discard(path: pathlib.Path) -> None:
    path.unlink(missing_ok=True)


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _xml_response(root: str, inner: str, headers: dict[str, str] | None = None) -> web.Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}>{inner}</{root}>\n'
    return web.Response(body=body.encode(), content_type="application/xml", headers=headers or {})
