"""The drive: list a folder (every page), find or make a folder, delete, download.

Endpoints and fields as 115's Open API documents them (mirrored in gaoyifan/restic-115
`docs/115/API列表/文件管理/`) and as OpenListTeam/115-sdk-go `fs.go` reads them. A download
link works only with the User-Agent that asked for it, and answers `Range` with 206.
"""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
import hashlib
import socket
from typing import Any, Final

import aiohttp

from .errors import (
    CODE_FOLDER_EXISTS,
    CODE_FOLDER_MISSING,
    Open115ApiError,
    Open115ChecksumError,
    Open115NotFoundError,
    Open115TransientError,
)
from .transport import Transport
from .values import as_int, as_size

PAGE_LIMIT: Final = 1150  # the most /open/ufile/files gives per page
DOWNLOAD_CHUNK: Final = 1024 * 1024
DOWNLOAD_RESUMES: Final = 3  # a cut-short download goes on with Range this many times
DOWNLOAD_READ_TIMEOUT: Final = 60.0
HASH_BATCH: Final = 4 * 1024 * 1024  # bytes hashed per trip to a worker thread


@dataclass(frozen=True, slots=True)
class DriveFile:
    """One file or folder of a listing."""

    file_id: str
    name: str
    size: int
    sha1: str  # upper case; "" for a folder
    pick_code: str
    is_folder: bool


@dataclass(frozen=True, slots=True)
class DownloadLink:
    """A file's download link, bound to the User-Agent that asked for it."""

    url: str = field(repr=False)
    user_agent: str
    file_name: str
    size: int
    sha1: str


def _file(item: dict[str, Any]) -> DriveFile | None:
    file_id = item.get("fid")
    if file_id is None or not str(file_id).strip():
        return None
    name = item.get("fn")
    sha1 = item.get("sha1")
    pick_code = item.get("pc")
    return DriveFile(
        file_id=str(file_id).strip(),
        name=name if isinstance(name, str) else "",
        size=as_size(item.get("fs")) or 0,
        sha1=sha1.upper() if isinstance(sha1, str) else "",
        pick_code=pick_code if isinstance(pick_code, str) else "",
        is_folder=str(item.get("fc")) == "0",
    )


def _update(sha1: hashlib._Hash, chunks: list[bytes]) -> None:
    for chunk in chunks:
        sha1.update(chunk)


class FilesApi(Transport):
    """The drive calls of the Open API."""

    async def list_folder(self, folder_id: str) -> list[DriveFile]:
        """Every file and folder directly in `folder_id`, reading every page."""
        items: list[DriveFile] = []
        offset = 0
        while True:
            body = await self._proapi(
                "GET",
                "/open/ufile/files",
                "Listing the folder",
                params={
                    "cid": folder_id,
                    "limit": str(PAGE_LIMIT),
                    "offset": str(offset),
                    "show_dir": "1",
                    "cur": "1",
                },
            )
            data = body.get("data")
            page = [f for f in map(_file, data if isinstance(data, list) else []) if f]
            items.extend(page)
            count = as_int(body.get("count")) or 0
            offset += len(data) if isinstance(data, list) else 0
            if not data or offset >= count:
                return items

    async def folder_id(self, path: str) -> str | None:
        """The id of the folder at `path` (e.g. `/a/b`); None when there is none."""
        try:
            body = await self._proapi(
                "POST", "/open/folder/get_info", "Finding the folder", data={"path": path}
            )
        except Open115ApiError as err:
            if err.code == CODE_FOLDER_MISSING:
                return None
            raise
        data = body.get("data")
        if not isinstance(data, dict) or not str(data.get("file_id") or "").strip():
            return None
        return str(data["file_id"]).strip()

    async def add_folder(self, parent_id: str, name: str) -> str:
        """Make folder `name` in `parent_id` (or find it, when it exists): its id."""
        try:
            body = await self._proapi(
                "POST",
                "/open/folder/add",
                "Making the folder",
                data={"pid": parent_id, "file_name": name},
            )
        except Open115ApiError as err:
            if (
                err.code == CODE_FOLDER_EXISTS
                and parent_id == "0"
                and (found := await self.folder_id(f"/{name}"))
            ):
                return found
            raise
        data = body.get("data")
        file_id = data.get("file_id") if isinstance(data, dict) else None
        if file_id is None or not str(file_id).strip():
            raise Open115ApiError("Making the folder failed: no folder id in the answer")
        return str(file_id).strip()

    async def delete_files(self, file_ids: list[str], parent_id: str) -> None:
        """Move the files to 115's recycle bin, in one request."""
        await self._proapi(
            "POST",
            "/open/ufile/delete",
            "Deleting files",
            data={"file_ids": ",".join(file_ids), "parent_id": parent_id},
        )

    async def download_link(self, pick_code: str, user_agent: str) -> DownloadLink:
        """Ask for a file's download link with `user_agent` (the link is bound to it)."""
        body = await self._proapi(
            "POST",
            "/open/ufile/downurl",
            "Asking for the download link",
            data={"pick_code": pick_code},
            headers={"User-Agent": user_agent},
        )
        data = body.get("data")
        if isinstance(data, dict):
            for item in data.values():
                url = item.get("url") if isinstance(item, dict) else None
                link = url.get("url") if isinstance(url, dict) else url
                if isinstance(link, str) and link:
                    sha1 = item.get("sha1")
                    name = item.get("file_name")
                    return DownloadLink(
                        url=link,
                        user_agent=user_agent,
                        file_name=name if isinstance(name, str) else "",
                        size=as_size(item.get("file_size")) or 0,
                        sha1=sha1.upper() if isinstance(sha1, str) else "",
                    )
        raise Open115NotFoundError("Asking for the download link failed: no link for the file")

    async def download(
        self, link: DownloadLink, *, chunk_size: int = DOWNLOAD_CHUNK
    ) -> AsyncIterator[bytes]:
        """Stream the file with the link's User-Agent.

        A response cut short goes on with `Range`; the bytes are checked against the link's
        size and SHA1 at the end.
        """
        sha1 = hashlib.sha1(usedforsecurity=False)
        loop = asyncio.get_running_loop()
        hashing: asyncio.Future[None] | None = None
        batch: list[bytes] = []
        batched = 0
        received = 0
        resumes = 0
        while True:
            headers = {"User-Agent": link.user_agent}
            if received:
                headers["Range"] = f"bytes={received}-"
            try:
                async with self._session.get(
                    link.url,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(
                        total=None, sock_connect=30, sock_read=DOWNLOAD_READ_TIMEOUT
                    ),
                ) as resp:
                    if resp.status not in (200, 206) or (received and resp.status != 206):
                        raise Open115TransientError(
                            f"Downloading the file failed with HTTP {resp.status}"
                        )
                    async for chunk in resp.content.iter_chunked(chunk_size):
                        # Hashed in a thread (hashlib lets go of the GIL) while the next
                        # chunks arrive: in order, a batch of HASH_BATCH bytes at a time.
                        batch.append(chunk)
                        batched += len(chunk)
                        if batched >= HASH_BATCH:
                            if hashing is not None:
                                await hashing
                            hashing = loop.run_in_executor(None, _update, sha1, batch)
                            batch, batched = [], 0
                        received += len(chunk)
                        yield chunk
            except (aiohttp.ClientError, socket.gaierror, OSError, TimeoutError) as err:
                if resumes >= DOWNLOAD_RESUMES:
                    raise Open115TransientError(
                        f"Downloading the file failed ({type(err).__name__})"
                    ) from err
            if link.size and received < link.size and resumes < DOWNLOAD_RESUMES:
                resumes += 1
                await asyncio.sleep(0)
                continue
            break
        if hashing is not None:
            await hashing
        _update(sha1, batch)
        if link.size and received != link.size:
            raise Open115TransientError(
                f"Downloading the file failed: {received} of {link.size} bytes arrived"
            )
        if link.sha1 and sha1.hexdigest().upper() != link.sha1:
            raise Open115ChecksumError("The downloaded file does not have 115's SHA1")
