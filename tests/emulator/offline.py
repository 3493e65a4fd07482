"""Cloud download (/open/offline/*, proapi): tasks, the quota, and controls to finish them.

Fields as shared/spec/115-open-api.md "Cloud download" gives them. Tasks do not progress by
themselves unless `download_seconds` is set (then a task finishes that long after it was added,
read lazily from the clock, so nothing sleeps); tests finish or fail them with the controls.
"""

from dataclasses import dataclass, field
import hashlib
import itertools
import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from aiohttp import web

from .proapi import ProapiEndpoints

TASK_LIST_PATH = "/open/offline/get_task_list"
QUOTA_PATH = "/open/offline/get_quota_info"
ADD_URLS_PATH = "/open/offline/add_task_urls"
DEL_TASK_PATH = "/open/offline/del_task"
CLEAR_TASK_PATH = "/open/offline/clear_task"
OFFLINE_PATHS = (TASK_LIST_PATH, QUOTA_PATH, ADD_URLS_PATH, DEL_TASK_PATH, CLEAR_TASK_PATH)

CODE_TASK_EXISTS = 10008  # the link's task exists already (115's duplicate answer)
CODE_BAD_LINK = 10004  # 错误的链接 (p115client's check_response)
CODE_NO_QUOTA = 10010  # the emulator's choice: no tasks left in the quota
SCHEMES = ("http://", "https://", "ftp://", "magnet:", "ed2k://")
DEFAULT_TASK_SIZE = 1024**3

STATUS_FAILED, STATUS_ALLOCATING, STATUS_DOWNLOADING, STATUS_DONE = -1, 0, 1, 2


@dataclass
class EmulatedTask:
    """One cloud-download task of an account."""

    user_id: int
    info_hash: str
    url: str
    name: str
    size: int
    add_time: float
    folder_id: str = "0"
    status: int = STATUS_ALLOCATING
    percent: float = 0.0
    last_update: float = 0.0
    file_id: str = ""
    # Set: the task makes progress as if done in this many seconds (it ends by the controls).
    expected_seconds: float | None = None


def info_hash_of(url: str) -> str:
    """A magnet's btih (lower case), else the sha1 of the link, as 40 hex digits."""
    match = re.search(r"xt=urn:btih:([0-9a-fA-F]{40})", url)
    if match:
        return match.group(1).lower()
    return hashlib.sha1(url.strip().encode(), usedforsecurity=False).hexdigest()


def _name_and_size(url: str) -> tuple[str, int]:
    if url.startswith("magnet:"):
        query = parse_qs(url.partition("?")[2])
        name = query.get("dn", [""])[0]
        size = query.get("xl", [""])[0]
        return name, int(size) if size.isdigit() else DEFAULT_TASK_SIZE
    path = urlsplit(url).path if "://" in url else url
    return unquote(path.rstrip("/").rsplit("/", 1)[-1]), DEFAULT_TASK_SIZE


@dataclass
class OfflineEndpoints(ProapiEndpoints):
    """POST add_task_urls, GET get_task_list and get_quota_info, POST del_task and clear_task."""

    offline_tasks: list[EmulatedTask] = field(default_factory=list)
    offline_quota: int = 3000  # tasks per account and month
    offline_used: dict[int, int] = field(default_factory=dict)
    tasks_per_page: int = 30
    download_seconds: float | None = None
    refused_links: dict[str, tuple[int, str]] = field(default_factory=dict)
    _file_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(9000000001))

    # ----- test controls ----------------------------------------------------------------

    def add_task(
        self,
        user_id: int,
        url: str,
        *,
        name: str | None = None,
        size: int | None = None,
        folder_id: str = "0",
    ) -> str:
        """Add a task as if the account had added it elsewhere (counts against the quota).

        `name` "" lists the task without a name (reported in issue 17 for a tracker link;
        OpenListTeam/115-sdk-go@ac45bd5 `offline.go` reads `name` as a plain string, so an
        absent one is ""). Tasks are listed newest first, 30 a page, with `page_count`, and
        keyed by `info_hash` plus `add_time` (the same file: del_task takes the info hash, a
        task added again gets a new add time).
        """
        guessed_name, guessed_size = _name_and_size(url)
        now = self.clock()
        task = EmulatedTask(
            user_id=user_id,
            info_hash=info_hash_of(url),
            url=url,
            name=(guessed_name or info_hash_of(url)) if name is None else name,
            size=guessed_size if size is None else size,
            add_time=now,
            folder_id=folder_id,
            last_update=now,
        )
        self.offline_tasks.append(task)
        self.offline_used[user_id] = self.offline_used.get(user_id, 0) + 1
        return task.info_hash

    def task(self, info_hash: str | None = None) -> EmulatedTask:
        """The task with this info hash (the newest task when None)."""
        if info_hash is None:
            if not self.offline_tasks:
                raise KeyError("no tasks")
            return self.offline_tasks[-1]
        for task in self.offline_tasks:
            if task.info_hash == info_hash:
                return task
        raise KeyError(info_hash)

    def remove_task(self, info_hash: str) -> None:
        """The account removed the task (in 115's app); adding its link again adds a new one."""
        self.offline_tasks = [t for t in self.offline_tasks if t.info_hash != info_hash]

    def set_progress(self, info_hash: str | None, percent: float) -> EmulatedTask:
        """The task is downloading, `percent` done."""
        task = self.task(info_hash)
        task.status, task.percent, task.last_update = STATUS_DOWNLOADING, percent, self.clock()
        return task

    def finish_task(self, info_hash: str | None = None) -> EmulatedTask:
        """The task completes: its file appears in its folder and takes up storage."""
        task = self.task(info_hash)
        if task.status != STATUS_DONE:
            task.status, task.percent, task.last_update = STATUS_DONE, 100.0, self.clock()
            task.file_id = str(next(self._file_ids))
            account = self.accounts.get(task.user_id)
            if account is not None:
                account.space_used += task.size
        return task

    def fail_task(self, info_hash: str | None = None) -> EmulatedTask:
        """The task fails (no file)."""
        task = self.task(info_hash)
        task.status, task.last_update = STATUS_FAILED, self.clock()
        return task

    def refuse_link(self, url: str, code: int = CODE_BAD_LINK, message: str = "错误的链接") -> None:
        """add_task_urls refuses this link with `code` from now on."""
        self.refused_links[url] = (code, message)

    # ----- the endpoints ----------------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        super()._add_routes(app)
        app.router.add_post(ADD_URLS_PATH, self._add_urls)
        app.router.add_get(TASK_LIST_PATH, self._task_list)
        app.router.add_get(QUOTA_PATH, self._quota)
        app.router.add_post(DEL_TASK_PATH, self._del_task)
        app.router.add_post(CLEAR_TASK_PATH, self._clear_task)

    async def _add_urls(self, request: web.Request) -> web.StreamResponse:
        return await self._serve_proapi(request, ADD_URLS_PATH, self._answer_add_urls)

    async def _task_list(self, request: web.Request) -> web.StreamResponse:
        return await self._serve_proapi(request, TASK_LIST_PATH, self._answer_task_list)

    async def _quota(self, request: web.Request) -> web.StreamResponse:
        return await self._serve_proapi(request, QUOTA_PATH, self._answer_quota)

    async def _del_task(self, request: web.Request) -> web.StreamResponse:
        return await self._serve_proapi(request, DEL_TASK_PATH, self._answer_del_task)

    async def _clear_task(self, request: web.Request) -> web.StreamResponse:
        return await self._serve_proapi(request, CLEAR_TASK_PATH, self._answer_clear_task)

    async def _answer_add_urls(self, request: web.Request, user_id: int) -> web.StreamResponse:
        form = await request.post()
        urls = [u.strip() for u in str(form.get("urls", "")).split("\n") if u.strip()]
        if not urls:
            self._log(ADD_URLS_PATH, 10001)
            return self._error(10001, "链接不能为空", proapi=True)
        folder_id = str(form.get("wp_path_id", "") or "0")
        return self._proapi_ok(
            ADD_URLS_PATH, [self._add_one(user_id, url, folder_id) for url in urls]
        )

    def _add_one(self, user_id: int, url: str, folder_id: str) -> dict[str, Any]:
        def refused(code: int, message: str) -> dict[str, Any]:
            return {"state": False, "code": code, "message": message, "info_hash": "", "url": url}

        if url in self.refused_links:
            return refused(*self.refused_links[url])
        if not url.lower().startswith(SCHEMES):
            return refused(CODE_BAD_LINK, "错误的链接")
        info_hash = info_hash_of(url)
        if any(t.user_id == user_id and t.info_hash == info_hash for t in self.offline_tasks):
            return refused(CODE_TASK_EXISTS, "任务已存在")
        if self.offline_used.get(user_id, 0) >= self.offline_quota:
            return refused(CODE_NO_QUOTA, "云下载配额已用完")
        self.add_task(user_id, url, folder_id=folder_id)
        return {"state": True, "code": 0, "message": "", "info_hash": info_hash, "url": url}

    def _advance(self, task: EmulatedTask) -> None:
        """With `download_seconds`, a running task progresses with the clock.

        Without it, a task with `expected_seconds` moves (percentDone, last_update) until the
        controls end it; any other running task stands still (a stalled one).
        """
        if task.status not in (STATUS_ALLOCATING, STATUS_DOWNLOADING):
            return
        elapsed = self.clock() - task.add_time
        if self.download_seconds is None:
            if task.expected_seconds and elapsed > 0:
                task.status, task.last_update = STATUS_DOWNLOADING, self.clock()
                task.percent = min(round(100 * elapsed / task.expected_seconds, 2), 99.9)
            return
        if elapsed >= self.download_seconds:
            self.finish_task(task.info_hash)
        elif elapsed > 0:
            task.status = STATUS_DOWNLOADING
            task.percent = round(100 * elapsed / self.download_seconds, 2)

    def _task_json(self, task: EmulatedTask) -> dict[str, Any]:
        return {
            "info_hash": task.info_hash,
            "add_time": int(task.add_time),
            "percentDone": task.percent,
            "size": self._size(task.size),
            "name": task.name,
            "last_update": int(task.last_update),
            "file_id": task.file_id,
            "delete_file_id": task.file_id,
            "status": task.status,
            "url": task.url,
            "wp_path_id": task.folder_id,
            "def2": 0,
            "play_long": 0,
            "can_appeal": 0,
        }

    async def _answer_task_list(self, request: web.Request, user_id: int) -> web.StreamResponse:
        mine = [t for t in reversed(self.offline_tasks) if t.user_id == user_id]  # newest first
        for task in mine:
            self._advance(task)
        try:
            page = max(int(request.query.get("page", "1")), 1)
        except ValueError:
            page = 1
        size = self.tasks_per_page
        page_count = -(-len(mine) // size)
        chunk = mine[(page - 1) * size : page * size]
        return self._proapi_ok(
            TASK_LIST_PATH,
            {
                "page": page,
                "page_count": page_count,
                "count": len(mine),
                "tasks": [self._task_json(t) for t in chunk],
            },
        )

    async def _answer_quota(self, request: web.Request, user_id: int) -> web.StreamResponse:
        used = min(self.offline_used.get(user_id, 0), self.offline_quota)
        left = self.offline_quota - used
        return self._proapi_ok(
            QUOTA_PATH,
            {
                "count": self.offline_quota,
                "used": used,
                "surplus": left,
                "package": [
                    {
                        "name": "会员配额",
                        "count": self.offline_quota,
                        "used": used,
                        "surplus": left,
                        "expire_info": [
                            {"surplus": left, "expire_time": int(self.clock()) + 30 * 86400}
                        ],
                    }
                ],
            },
        )

    async def _answer_del_task(self, request: web.Request, user_id: int) -> web.StreamResponse:
        form = await request.post()
        info_hash = str(form.get("info_hash", ""))
        self.offline_tasks = [
            t for t in self.offline_tasks if not (t.user_id == user_id and t.info_hash == info_hash)
        ]
        return self._proapi_ok(DEL_TASK_PATH, [])

    async def _answer_clear_task(self, request: web.Request, user_id: int) -> web.StreamResponse:
        form = await request.post()
        flag = int(str(form.get("flag", "0")) or "0")
        statuses = {
            0: {STATUS_DONE},
            1: {STATUS_DONE, STATUS_FAILED, STATUS_ALLOCATING, STATUS_DOWNLOADING},
            2: {STATUS_FAILED},
            3: {STATUS_ALLOCATING, STATUS_DOWNLOADING},
            4: {STATUS_DONE},
            5: {STATUS_DONE, STATUS_FAILED, STATUS_ALLOCATING, STATUS_DOWNLOADING},
        }.get(flag, set())
        self.offline_tasks = [
            t for t in self.offline_tasks if not (t.user_id == user_id and t.status in statuses)
        ]
        return self._proapi_ok(CLEAR_TASK_PATH, [])
