"""Uploading a file to 115: upload/init (SHA1, pre-hash, sign check), instant upload, OSS.

The flow of 115's documents 文件上传 / 获取上传凭证 / 上传流程 (mirrored by gaoyifan/restic-115)
and of OpenList `drivers/115_open` and 115-sdk-go `upload.go`: 115 needs the whole file's SHA1
before the first byte goes out, so the stream is read twice (a third, partial read answers the
sign check). The bytes sent are hashed again and must match the SHA1 given to `upload/init`:
a changed stream aborts the OSS upload before it completes, so 115 never holds a mismatch.
Memory: one part in flight while the next is read, never the file.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
import hashlib
import json
from typing import Any, Final

from .errors import Open115ChecksumError, Open115UploadError
from .oss import OssCredentials, OssTarget, OssUpload, endpoint_host
from .transport import PROAPI_URL, Transport
from .values import as_int

PREHASH_SIZE: Final = 128 * 1024  # `preid`: SHA1 of the first 128 KiB
PART_SIZE: Final = 16 * 1024 * 1024
MAX_PARTS: Final = 10_000  # OSS's limit
SIGN_ROUNDS: Final = 2
STATUS_UPLOAD: Final = 1
STATUS_INSTANT: Final = 2
STATUS_SIGN: Final = 7

type OpenStream = Callable[[], Awaitable[AsyncIterator[bytes]]]
type Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class UploadTicket:
    """upload/init's (or upload/resume's) answer."""

    status: int
    file_id: str
    pick_code: str
    sign_key: str
    sign_check: str
    target: OssTarget | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file stored on 115 by `upload`, and how."""

    file_id: str
    pick_code: str
    sha1: str
    size: int
    instant: bool  # 115 had the bytes already (秒传): nothing was sent
    proapi_requests: int
    oss_requests: int


@dataclass(slots=True)
class Digest:
    """A stream's size, SHA1 and pre-hash (upper-case hex)."""

    size: int = 0
    sha1: str = ""
    preid: str = ""


def part_size_for(size: int, minimum: int) -> int:
    """The part size: `minimum`, or larger (whole MiB) to stay within OSS's 10,000 parts."""
    needed = -(-size // MAX_PARTS)
    if needed <= minimum:
        return minimum
    mib = 1024 * 1024
    return -(-needed // mib) * mib


async def digest(open_stream: OpenStream) -> Digest:
    """Read one opening of the stream: its size, SHA1 and the SHA1 of its first 128 KiB."""
    whole = hashlib.sha1(usedforsecurity=False)
    head = hashlib.sha1(usedforsecurity=False)
    size = 0
    async for chunk in await open_stream():
        if size < PREHASH_SIZE:
            head.update(chunk[: PREHASH_SIZE - size])
        whole.update(chunk)
        size += len(chunk)
    return Digest(size, whole.hexdigest().upper(), head.hexdigest().upper())


async def range_sha1(open_stream: OpenStream, start: int, end: int) -> str:
    """The upper-case SHA1 of bytes `start`..`end` (inclusive) of a new opening."""
    sha1 = hashlib.sha1(usedforsecurity=False)
    offset = 0
    async for chunk in await open_stream():
        low, high = max(start - offset, 0), min(end + 1 - offset, len(chunk))
        if low < high:
            sha1.update(chunk[low:high])
        offset += len(chunk)
        if offset > end:
            break
    return sha1.hexdigest().upper()


def _ticket(data: Any) -> UploadTicket:
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]  # the document says a list; 115 sends an object
    if not isinstance(data, dict):
        raise Open115UploadError("Starting the upload failed: no data in the answer")
    callback = data.get("callback")
    if isinstance(callback, list):
        callback = callback[0] if callback else None
    target = None
    if isinstance(callback, dict) and data.get("bucket") and data.get("object"):
        target = OssTarget(
            bucket=str(data["bucket"]),
            object=str(data["object"]),
            callback=_as_sent(callback.get("callback")),
            callback_var=_as_sent(callback.get("callback_var")),
        )
    return UploadTicket(
        status=as_int(data.get("status")) or 0,
        file_id=str(data.get("file_id") or ""),
        pick_code=str(data.get("pick_code") or ""),
        sign_key=str(data.get("sign_key") or ""),
        sign_check=str(data.get("sign_check") or ""),
        target=target,
    )


def _as_sent(value: Any) -> str:
    """A callback string exactly as 115 sent it (an object, if ever, as compact JSON)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _credentials(data: Any) -> OssCredentials:
    if isinstance(data, list) and data:
        data = data[0]
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), str) and data[k]
        for k in ("endpoint", "AccessKeyId", "AccessKeySecret", "SecurityToken")
    ):
        raise Open115UploadError("Getting the upload credentials failed: incomplete answer")
    expiration = None
    if isinstance(data.get("Expiration"), str):
        try:
            expiration = datetime.fromisoformat(data["Expiration"].replace("Z", "+00:00"))
        except ValueError:
            expiration = None
        if expiration is not None and expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=UTC)  # STS writes UTC
    return OssCredentials(
        endpoint=endpoint_host(data["endpoint"]),
        access_key_id=data["AccessKeyId"],
        access_key_secret=data["AccessKeySecret"],
        security_token=data["SecurityToken"],
        expiration=expiration,
    )


class UploadApi(Transport):
    """The upload calls of the Open API, and the whole upload of one file."""

    async def upload_init(
        self,
        *,
        file_name: str,
        folder_id: str,
        file: Digest,
        sign_key: str = "",
        sign_val: str = "",
    ) -> UploadTicket:
        """upload/init (a second round answers the sign check with `sign_key`/`sign_val`)."""
        form = {
            "file_name": file_name,
            "file_size": str(file.size),
            "target": f"U_1_{folder_id}",
            "fileid": file.sha1,
            "preid": file.preid,
            "topupload": "0",
        }
        if sign_key:
            form |= {"sign_key": sign_key, "sign_val": sign_val}
        body = await self._proapi("POST", "/open/upload/init", "Starting the upload", data=form)
        return _ticket(body.get("data"))

    async def upload_resume(self, *, folder_id: str, file: Digest, pick_code: str) -> UploadTicket:
        """upload/resume: the bucket, object and callback of an interrupted upload again."""
        body = await self._proapi(
            "POST",
            "/open/upload/resume",
            "Resuming the upload",
            data={
                "file_size": str(file.size),
                "target": f"U_1_{folder_id}",
                "fileid": file.sha1,
                "pick_code": pick_code,
            },
        )
        return _ticket(body.get("data"))

    async def upload_token(self) -> OssCredentials:
        """upload/get_token: temporary OSS credentials."""
        body = await self._proapi("GET", "/open/upload/get_token", "Getting upload credentials")
        return _credentials(body.get("data"))

    async def upload(
        self,
        *,
        folder_id: str,
        file_name: str,
        open_stream: OpenStream,
        on_progress: Progress = lambda _: None,
        part_size: int | None = None,
    ) -> UploadedFile:
        """Upload one file into `folder_id`: hash it, init (sign check), then instant or OSS."""
        requests = 0
        file = await digest(open_stream)
        ticket = await self.upload_init(file_name=file_name, folder_id=folder_id, file=file)
        requests += 1
        for _ in range(SIGN_ROUNDS):
            if ticket.status != STATUS_SIGN:
                break
            start, _sep, end = ticket.sign_check.partition("-")
            if not (start.isdigit() and end.isdigit()):
                raise Open115UploadError("Starting the upload failed: unusable sign check")
            sign_val = await range_sha1(open_stream, int(start), int(end))
            ticket = await self.upload_init(
                file_name=file_name,
                folder_id=folder_id,
                file=file,
                sign_key=ticket.sign_key,
                sign_val=sign_val,
            )
            requests += 1
        if ticket.status == STATUS_INSTANT:
            on_progress(file.size)
            return UploadedFile(
                ticket.file_id, ticket.pick_code, file.sha1, file.size, True, requests, 0
            )
        if ticket.status != STATUS_UPLOAD or ticket.target is None:
            raise Open115UploadError(
                f"Starting the upload failed: 115 answered status {ticket.status}"
            )
        credentials = await self.upload_token()
        requests += 1

        async def renew() -> OssCredentials:
            nonlocal requests
            requests += 1
            return await self.upload_token()

        base = self.proapi_url if self.proapi_url != PROAPI_URL else None
        oss = OssUpload(
            self._session, ticket.target, credentials, renew, base_url=base, clock=self._clock
        )
        answer = await _send(
            oss, open_stream, file, part_size_for(file.size, part_size or PART_SIZE), on_progress
        )
        return UploadedFile(
            str(answer.get("file_id") or ticket.file_id),
            str(answer.get("pick_code") or ticket.pick_code),
            file.sha1,
            file.size,
            False,
            requests,
            oss.requests,
        )


def _check(file: Digest, size: int, sha1: hashlib._Hash) -> None:
    """The bytes read for sending must be those that were hashed for upload/init."""
    if size != file.size or sha1.hexdigest().upper() != file.sha1:
        raise Open115ChecksumError(
            "The backup changed between the reading that was hashed and the reading being sent"
        )


class _Parts:
    """Multipart sending, one part in flight while the next is filled (two part buffers)."""

    def __init__(self, oss: OssUpload, part_size: int, on_progress: Progress) -> None:
        self._oss = oss
        self._on_progress = on_progress
        self.buffers = (bytearray(part_size), bytearray(part_size))
        self.current = 0
        self._sending: asyncio.Task[None] | None = None
        self._in_flight = 0
        self.sent = 0

    async def send(self, length: int) -> None:
        """Send the current buffer's first `length` bytes; fill the other one meanwhile."""
        await self.wait()
        part = memoryview(self.buffers[self.current])[:length]
        self._sending = asyncio.create_task(self._oss.upload_part(part))
        self._in_flight = length
        self.current ^= 1

    async def wait(self) -> None:
        """Wait for the part in flight (its failure is raised here)."""
        if self._sending is not None:
            sending, self._sending = self._sending, None
            await sending
            self.sent += self._in_flight
            self._on_progress(self.sent)

    async def cancel(self) -> None:
        """Stop the part in flight (before the upload is aborted)."""
        if self._sending is not None:
            self._sending.cancel()
            with contextlib.suppress(BaseException):
                await self._sending
            self._sending = None


async def _send(
    oss: OssUpload, open_stream: OpenStream, file: Digest, part_size: int, on_progress: Progress
) -> dict[str, Any]:
    """Send a new opening of the stream: one PutObject, or multipart (aborted on failure).

    Multipart: one part is in flight while the next is read into a second buffer, so memory
    grows by two parts, whatever the file's size.
    """
    sha1 = hashlib.sha1(usedforsecurity=False)
    size = filled = 0
    single = file.size <= part_size
    parts = None if single else _Parts(oss, part_size, on_progress)
    buffer = bytearray(max(file.size, 1)) if parts is None else parts.buffers[0]
    stream = await open_stream()
    try:
        if parts is not None:
            await oss.initiate()
        async for chunk in stream:
            sha1.update(chunk)
            size += len(chunk)
            if size > file.size:
                _check(file, size, sha1)  # longer than the hashed reading
            view = memoryview(chunk)
            while view:
                take = min(len(buffer) - filled, len(view))
                buffer[filled : filled + take] = view[:take]
                filled += take
                view = view[take:]
                if parts is not None and filled == part_size:
                    await parts.send(filled)
                    buffer, filled = parts.buffers[parts.current], 0
        _check(file, size, sha1)
        if parts is None:
            answer = await oss.put_object(memoryview(buffer)[:filled])
        else:
            if filled:
                await parts.send(filled)
            await parts.wait()
            answer = await oss.complete()
    except BaseException:
        if parts is not None:
            await parts.cancel()
        await oss.abort()
        raise
    if parts is None:
        on_progress(size)
    return answer
