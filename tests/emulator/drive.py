"""The drive (proapi): folders and files, listing, info, add, delete.

What is modelled, from which source (commits as in shared/spec/115-open-api.md):
- `GET /open/ufile/files` (cid, limit ≤ 1150 (default 20), offset, show_dir 0/1; items `fid`,
  `pid`, `fc` "0" folder / "1" file, `fn`, `fs`, `sha1`, `pc`, `upt`/`uet`; top-level `count`):
  gaoyifan/restic-115@a4175a2 docs/115-api/.../获取文件列表.md; OpenListTeam/115-sdk-go@788107e
  fs.go (GetFilesResp: top-level `count`, `offset`, `cid` numbers; items' `fs`, `upt`, `isp`
  numbers, the ids strings; `path` items name/aid/cid/pid). Uploads may show up late (`listing_delay`; restic-115 docs/debugging-notes.md, 问题 A).
- `GET/POST /open/folder/get_info` by `file_id` (query) or `path` (form, "/a/b" or ">a>b"):
  restic-115 docs 获取文件(夹)详情.md; `count`, `folder_count`, `size_byte` are numbers, as
  115-sdk-go's typed GetFolderInfoResp decodes them (int64; OpenList's driver calls it on every
  start, drivers/115_open/driver.go Init); a missing folder answers `data: []` (115-sdk-go's
  UnmarshalJSON: an empty list is ErrObjectNotFound), or 430004 with `missing_folder_error`.
- `POST /open/folder/add` (pid, file_name → {file_name, file_id}; 20004 exists: p115client's
  table, unverified), `POST /open/ufile/delete` (file_ids comma-separated, parent_id; into the
  recycle bin): 115-sdk-go fs.go, restic-115 src/open115/client.rs delete_file.
The bytes are `Blob`s on disk (blob.py), one per SHA1, in a temporary directory unless
`blob_dir` is set (the standalone emulator keeps them beside its state file).
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
import itertools
import pathlib
import secrets
import shutil
import tempfile
from typing import Any
import weakref

from aiohttp import web

from .blob import Blob, sha1_hex
from .proapi import ProapiEndpoints

FILES_PATH = "/open/ufile/files"
FOLDER_INFO_PATH = "/open/folder/get_info"
FOLDER_ADD_PATH = "/open/folder/add"
DELETE_PATH = "/open/ufile/delete"
DRIVE_PATHS = (FILES_PATH, FOLDER_INFO_PATH, FOLDER_ADD_PATH, DELETE_PATH)

MAX_LIST_LIMIT = 1150
CODE_FOLDER_MISSING = 430004
CODE_FOLDER_EXISTS = 20004
CODE_BAD_PARAMS = 1001  # the emulator's choice: a required form field is missing
PICK_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


@dataclass
class DriveNode:
    """A folder or file of an account's drive."""

    user_id: int
    file_id: str
    parent_id: str
    name: str
    is_dir: bool
    pick_code: str
    created: float
    size: int = 0
    sha1: str = ""  # upper-case hex, files only


@dataclass
class DriveEndpoints(ProapiEndpoints):
    """The drive's endpoints and the CDN serving its download links."""

    nodes: dict[str, DriveNode] = field(default_factory=dict)
    recycle_bin: list[DriveNode] = field(default_factory=list)
    blob_dir: pathlib.Path | None = None
    blobs: dict[str, Blob] = field(default_factory=dict)  # SHA1 → its bytes on disk
    listing_delay: float = 0.0  # files younger than this are not listed yet
    missing_folder_error: bool = False  # get_info of a missing folder: 430004, not data []
    _node_ids: itertools.count[int] = field(
        default_factory=lambda: itertools.count(3000000000000000001)
    )

    # ----- set-up helpers ---------------------------------------------------------------

    def storage_dir(self) -> pathlib.Path:
        """The directory holding the bytes (a temporary one, removed with the emulator)."""
        if self.blob_dir is None:
            self.blob_dir = pathlib.Path(tempfile.mkdtemp(prefix="emu115-"))
            weakref.finalize(self, shutil.rmtree, self.blob_dir, ignore_errors=True)
        return self.blob_dir

    def new_pick_code(self) -> str:
        """A fresh pick code (17 lower-case letters and digits, like restic-115's sample)."""
        return "".join(secrets.choice(PICK_ALPHABET) for _ in range(17))

    def add_folder(self, user_id: int, parent_id: str, name: str) -> DriveNode:
        """Create a folder (no checks)."""
        node = DriveNode(
            user_id,
            str(next(self._node_ids)),
            parent_id,
            name,
            True,
            self.new_pick_code(),
            self.clock(),
        )
        self.nodes[node.file_id] = node
        return node

    def keep_blob(self, blob: Blob, sha1: str) -> Blob:
        """Keep `blob` as the bytes of `sha1` (dropped when already held); the kept one."""
        held = self.blobs.get(sha1)
        if held is None:
            self.blobs[sha1] = held = blob
        elif held is not blob:
            blob.discard()
        return held

    def add_file(
        self,
        user_id: int,
        parent_id: str,
        name: str,
        data: bytes,
        *,
        pick_code: str | None = None,
    ) -> DriveNode:
        """Store `data` as a file of the account (as if uploaded earlier)."""
        sha1 = sha1_hex(data)
        if sha1 not in self.blobs:
            path = self.storage_dir() / f"blob-{secrets.token_hex(8)}"
            path.write_bytes(data)
            self.keep_blob(Blob([(path, len(data))]), sha1)
        return self.create_file(user_id, parent_id, name, len(data), sha1, pick_code)

    def create_file(
        self,
        user_id: int,
        parent_id: str,
        name: str,
        size: int,
        sha1: str,
        pick_code: str | None = None,
    ) -> DriveNode:
        """A new file entry for bytes the emulator holds; it takes up the account's space."""
        node = DriveNode(
            user_id,
            str(next(self._node_ids)),
            parent_id,
            name,
            False,
            pick_code or self.new_pick_code(),
            self.clock(),
            size,
            sha1,
        )
        self.nodes[node.file_id] = node
        account = self.accounts.get(user_id)
        if account is not None:
            account.space_used += size
        return node

    def children(self, user_id: int, folder_id: str) -> list[DriveNode]:
        """The folder's entries, oldest first."""
        return [n for n in self.nodes.values() if n.user_id == user_id and n.parent_id == folder_id]

    def find(self, user_id: int, parent_id: str, name: str) -> DriveNode | None:
        """The entry named `name` in a folder, if any (the first one)."""
        return next((n for n in self.children(user_id, parent_id) if n.name == name), None)

    def read_bytes(self, node: DriveNode) -> bytes:
        """A file's bytes (for tests of small files)."""
        return self.blobs[node.sha1].read_all()

    def _folder(self, user_id: int, folder_id: str) -> DriveNode | None:
        node = self.nodes.get(folder_id)
        if node is None or node.user_id != user_id or not node.is_dir:
            return None
        return node

    def _path_of(self, node: DriveNode) -> list[dict[str, Any]]:
        parts: list[dict[str, Any]] = []
        parent = self.nodes.get(node.parent_id)
        while parent is not None:
            parts.insert(0, {"file_id": parent.file_id, "file_name": parent.name})
            parent = self.nodes.get(parent.parent_id)
        return [{"file_id": "0", "file_name": "根目录"}, *parts]

    def _list_path(self, user_id: int, cid: str) -> list[dict[str, Any]]:
        """The folder list's `path`: root to `cid`, as 115-sdk-go's GetFilesResp reads it."""
        chain = [{"file_id": "0", "file_name": "根目录"}]
        folder = self._folder(user_id, cid)
        if folder is not None:
            chain = [*self._path_of(folder), {"file_id": folder.file_id, "file_name": folder.name}]
        out: list[dict[str, Any]] = []
        for index, step in enumerate(chain):
            parent = chain[index - 1]["file_id"] if index else "0"
            out.append(
                {
                    "name": step["file_name"],
                    "aid": 1,
                    "cid": int(step["file_id"]),
                    "pid": int(parent),
                    "isp": 0,
                    "p_cid": parent,
                    "fv": "",
                }
            )
        return out

    def _subtree(self, node: DriveNode) -> Iterator[DriveNode]:
        yield node
        if node.is_dir:
            for child in self.children(node.user_id, node.file_id):
                yield from self._subtree(child)

    # ----- the endpoints ----------------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        super()._add_routes(app)
        app.router.add_get(FILES_PATH, self._files)
        app.router.add_get(FOLDER_INFO_PATH, self._folder_info)
        app.router.add_post(FOLDER_INFO_PATH, self._folder_info)
        app.router.add_post(FOLDER_ADD_PATH, self._folder_add)
        app.router.add_post(DELETE_PATH, self._delete)

    async def _files(self, request: web.Request) -> web.StreamResponse:
        return await self._serve_proapi(request, FILES_PATH, self._answer_files)

    async def _folder_info(self, request: web.Request) -> web.StreamResponse:
        return await self._serve_proapi(request, FOLDER_INFO_PATH, self._answer_folder_info)

    async def _folder_add(self, request: web.Request) -> web.StreamResponse:
        return await self._serve_proapi(request, FOLDER_ADD_PATH, self._answer_folder_add)

    async def _delete(self, request: web.Request) -> web.StreamResponse:
        return await self._serve_proapi(request, DELETE_PATH, self._answer_delete)

    def _item(self, node: DriveNode) -> dict[str, Any]:
        return {
            "fid": node.file_id,
            "aid": "1",
            "pid": node.parent_id,
            "fc": "0" if node.is_dir else "1",
            "fn": node.name,
            "fco": "",
            "ism": "0",
            "isp": 0,
            "pc": node.pick_code,
            "upt": int(node.created),
            "uet": int(node.created),
            "uppt": int(node.created),
            "cm": 0,
            "fdesc": "",
            "ispl": 0,
            "fs": self._size(node.size),
            "sha1": node.sha1,
            "ico": "" if node.is_dir else node.name.rpartition(".")[2],
            "fl": [],
        }

    async def _answer_files(self, request: web.Request, user_id: int) -> web.StreamResponse:
        query = request.query
        cid = query.get("cid", "0") or "0"
        try:
            limit = min(max(int(query.get("limit", "20")), 1), MAX_LIST_LIMIT)
            offset = max(int(query.get("offset", "0")), 0)
        except ValueError:
            self._log(FILES_PATH, CODE_BAD_PARAMS)
            return self._error(CODE_BAD_PARAMS, "参数错误", proapi=True)
        show_dir = query.get("show_dir", "0") == "1"
        now = self.clock()
        entries = [
            n
            for n in self.children(user_id, cid)
            if (show_dir or not n.is_dir) and (n.is_dir or now - n.created >= self.listing_delay)
        ]
        entries.sort(key=lambda n: (not n.is_dir, n.file_id))  # folders first
        page = entries[offset : offset + limit]
        self._log(FILES_PATH, 0)
        return web.json_response(
            {
                "state": True,
                "code": 0,
                "message": "",
                "data": [self._item(n) for n in page],
                "count": len(entries),
                "sys_count": 0,
                "offset": offset,
                "limit": limit,
                "cid": int(cid) if cid.isdigit() else 0,
                "path": self._list_path(user_id, cid),
            }
        )

    def _by_path(self, user_id: int, path: str) -> DriveNode | None:
        parts = [p for p in path.replace(">", "/").split("/") if p]
        parent = "0"
        node: DriveNode | None = None
        for part in parts:
            node = self.find(user_id, parent, part)
            if node is None:
                return None
            parent = node.file_id
        return node

    async def _answer_folder_info(self, request: web.Request, user_id: int) -> web.StreamResponse:
        form = await request.post() if request.method == "POST" else {}
        file_id = str(form.get("file_id", "") or request.query.get("file_id", ""))
        path = str(form.get("path", "") or request.query.get("path", ""))
        node: DriveNode | None = None
        if file_id:
            found = self.nodes.get(file_id)
            node = found if found is not None and found.user_id == user_id else None
        elif path:
            node = self._by_path(user_id, path)
        if node is None:
            if self.missing_folder_error:
                self._log(FOLDER_INFO_PATH, CODE_FOLDER_MISSING)
                return self._error(CODE_FOLDER_MISSING, "目录不存在", proapi=True)
            return self._proapi_ok(FOLDER_INFO_PATH, [])
        inside = list(self._subtree(node))[1:]
        size = sum(n.size for n in inside) if node.is_dir else node.size
        return self._proapi_ok(
            FOLDER_INFO_PATH,
            {
                "count": sum(1 for n in inside if not n.is_dir),
                "size": f"{size}B",
                "size_byte": size,
                "folder_count": sum(1 for n in inside if n.is_dir),
                "play_long": 0,
                "show_play_long": 0,
                "ptime": str(int(node.created)),
                "utime": str(int(node.created)),
                "file_name": node.name,
                "pick_code": node.pick_code,
                "sha1": node.sha1,
                "file_id": node.file_id,
                "is_mark": "0",
                "open_time": 0,
                "file_category": "0" if node.is_dir else "1",
                "paths": self._path_of(node),
            },
        )

    async def _answer_folder_add(self, request: web.Request, user_id: int) -> web.StreamResponse:
        form = await request.post()
        pid = str(form.get("pid", "0") or "0")
        name = str(form.get("file_name", "")).strip()
        if not name:
            self._log(FOLDER_ADD_PATH, CODE_BAD_PARAMS)
            return self._error(CODE_BAD_PARAMS, "参数错误", proapi=True)
        if pid != "0" and self._folder(user_id, pid) is None:
            self._log(FOLDER_ADD_PATH, CODE_FOLDER_MISSING)
            return self._error(CODE_FOLDER_MISSING, "目录不存在", proapi=True)
        if self.find(user_id, pid, name) is not None:
            self._log(FOLDER_ADD_PATH, CODE_FOLDER_EXISTS)
            return self._error(CODE_FOLDER_EXISTS, "该目录名称已存在。", proapi=True)
        node = self.add_folder(user_id, pid, name)
        return self._proapi_ok(FOLDER_ADD_PATH, {"file_name": node.name, "file_id": node.file_id})

    async def _answer_delete(self, request: web.Request, user_id: int) -> web.StreamResponse:
        form = await request.post()
        ids = [i.strip() for i in str(form.get("file_ids", "")).split(",") if i.strip()]
        if not ids:
            self._log(DELETE_PATH, CODE_BAD_PARAMS)
            return self._error(CODE_BAD_PARAMS, "参数错误", proapi=True)
        for file_id in ids:
            node = self.nodes.get(file_id)
            if node is None or node.user_id != user_id:
                continue
            for gone in list(self._subtree(node)):
                del self.nodes[gone.file_id]
                self.recycle_bin.append(gone)
                account = self.accounts.get(user_id)
                if account is not None:
                    account.space_used = max(account.space_used - gone.size, 0)
        return self._proapi_ok(DELETE_PATH, [])
