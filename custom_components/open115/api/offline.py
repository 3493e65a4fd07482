"""Cloud download (离线下载, "offline download"): the task list, the quota, adding links.

The fields follow 115's Open API document as independent clients read it (OpenListTeam
115-sdk-go `offline.go`, p115client `clouddownload_*`, cyrahs/open115 `magnet.py`). Every field
is read defensively: numbers may come as floats or numeric strings, and any may be missing.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any, Final, Literal
from urllib.parse import parse_qs

from .errors import Open115TransientError
from .transport import Transport
from .values import as_int, as_number, as_size

TASK_LIST_PATH: Final = "/open/offline/get_task_list"
QUOTA_PATH: Final = "/open/offline/get_quota_info"
ADD_URLS_PATH: Final = "/open/offline/add_task_urls"
# add_task_urls: this link's task exists already (a duplicate, not a failure of the others).
CODE_TASK_EXISTS: Final = 10008

type AddStatus = Literal["added", "duplicate", "failed"]


class TaskStatus(IntEnum):
    """A cloud-download task's state, as get_task_list's `status` gives it."""

    FAILED = -1
    ALLOCATING = 0  # queued, resources being allocated
    DOWNLOADING = 1
    DONE = 2


@dataclass(frozen=True, slots=True)
class OfflineTask:
    """One cloud-download task.

    `status` is ALLOCATING for a status value 115 has not documented (neither done nor
    failed, as far as anyone can tell); `status_code` keeps the value as sent. `name` is 115's,
    else a magnet's `dn`, else the info hash: never the link (`url`, which may hold a tracker's
    passkey, and is left out of the repr).
    """

    info_hash: str
    name: str
    size: int | None  # bytes
    status: TaskStatus
    status_code: int
    percent_done: float  # 0-100
    file_id: str | None  # the downloaded file or folder; None until there is one
    folder_id: str | None  # the folder it downloads into (wp_path_id; "0" is the root)
    url: str = field(repr=False)
    add_time: datetime | None
    last_update: datetime | None


@dataclass(frozen=True, slots=True)
class TaskPage:
    """One page of the task list, newest tasks first as 115 sends them."""

    page: int
    page_count: int
    count: int  # tasks on all pages
    tasks: tuple[OfflineTask, ...]


@dataclass(frozen=True, slots=True)
class OfflineQuota:
    """The account's cloud-download quota (tasks): all, used and left; None when not given."""

    count: int | None
    used: int | None
    surplus: int | None


@dataclass(frozen=True, slots=True)
class AddResult:
    """What became of one link sent to add_task_urls."""

    url: str
    status: AddStatus
    info_hash: str | None
    message: str | None  # 115's text for a duplicate or a failure
    code: int | None


class OfflineApi(Transport):
    """The cloud-download calls of the Open API."""

    async def offline_tasks(self, page: int = 1) -> TaskPage:
        """Read one page (from 1) of the account's cloud-download tasks."""
        what = "Reading the cloud downloads"
        body = await self._proapi("GET", TASK_LIST_PATH, what, params={"page": str(page)})
        data = body.get("data")
        if isinstance(data, list) and not data:
            data = {}  # an empty PHP array: no tasks
        if not isinstance(data, dict):
            raise Open115TransientError(f"{what} failed: no data in the answer")
        raw_tasks = data.get("tasks")
        items = raw_tasks if isinstance(raw_tasks, list) else []
        tasks = tuple(t for t in (_task(item) for item in items) if t is not None)
        count = _count(data.get("count"))
        page_count = _count(data.get("page_count"))
        got_page = _count(data.get("page"))
        return TaskPage(
            page=got_page if got_page else page,
            page_count=page_count if page_count is not None else (1 if tasks else 0),
            count=count if count is not None else len(tasks),
            tasks=tasks,
        )

    async def offline_quota(self) -> OfflineQuota:
        """Read the cloud-download quota: tasks in it, used, and left.

        Without the totals, the packages' numbers are summed; a missing `surplus` is
        `count - used`.
        """
        what = "Reading the cloud-download quota"
        body = await self._proapi("GET", QUOTA_PATH, what)
        data = body.get("data")
        if isinstance(data, list) and not data:
            data = {}
        if not isinstance(data, dict):
            raise Open115TransientError(f"{what} failed: no data in the answer")
        packages = [p for p in data.get("package") or [] if isinstance(p, dict)]
        count, used, surplus = (
            _count(data.get(key)) if key in data else _sum(packages, key)
            for key in ("count", "used", "surplus")
        )
        if surplus is None and count is not None and used is not None:
            surplus = max(count - used, 0)
        return OfflineQuota(count=count, used=used, surplus=surplus)

    async def offline_add_urls(
        self, urls: Sequence[str], folder_id: str | None = None
    ) -> list[AddResult]:
        """Add a cloud-download task for each link; one result per link, in their order.

        A link 115 refused (a duplicate, a bad link) is a result, not an exception; a link
        the answer does not mention counts as failed. `folder_id` None: 115's default folder.
        """
        if not urls:
            raise ValueError("no links to add")
        what = "Adding cloud downloads"
        form = {"urls": "\n".join(urls)}
        if folder_id is not None:
            form["wp_path_id"] = folder_id
        body = await self._proapi("POST", ADD_URLS_PATH, what, data=form)
        data = body.get("data")
        items = [i for i in data if isinstance(i, dict)] if isinstance(data, list) else []
        if len(items) == len(urls):
            return [_add_result(url, item) for url, item in zip(urls, items, strict=True)]
        # Not one item per link: match them by URL.
        left = list(items)
        results = []
        for url in urls:
            item = next((i for i in left if _text(i.get("url")) == url.strip()), None)
            if item is None:
                results.append(AddResult(url, "failed", None, None, None))
            else:
                left.remove(item)
                results.append(_add_result(url, item))
        return results


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def _count(value: Any) -> int | None:
    """A non-negative whole number (ints, floats, numeric strings), or None."""
    return as_size(value)


def _sum(packages: list[dict[str, Any]], key: str) -> int | None:
    values = [_count(p.get(key)) for p in packages]
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _stamp(value: Any) -> datetime | None:
    seconds = as_size(value)
    if not seconds:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except OverflowError, OSError, ValueError:
        return None


def _percent(value: Any) -> float | None:
    number = as_number(value)
    return None if number is None else min(max(number, 0.0), 100.0)


def _task(item: Any) -> OfflineTask | None:
    """One task of the list; None for an item without an info hash (nothing to track)."""
    if not isinstance(item, dict):
        return None
    info_hash = _text(item.get("info_hash"))
    if not info_hash:
        return None
    raw = item.get("status")
    code = None if isinstance(raw, bool) else as_int(raw)
    try:
        status = TaskStatus(code) if code is not None else TaskStatus.ALLOCATING
    except ValueError:
        status = TaskStatus.ALLOCATING
    percent = _percent(item.get("percentDone"))
    if percent is None:
        percent = 100.0 if status is TaskStatus.DONE else 0.0
    url = _text(item.get("url"))
    fallback_name = _magnet_name(url) or info_hash
    file_id = _text(item.get("file_id"))
    folder_id = _text(item.get("wp_path_id"))
    return OfflineTask(
        info_hash=info_hash,
        name=_text(item.get("name")) or fallback_name,
        size=as_size(item.get("size")),
        status=status,
        status_code=code if code is not None else int(status),
        percent_done=percent,
        file_id=file_id if file_id and file_id != "0" else None,
        folder_id=folder_id or None,
        url=url,
        add_time=_stamp(item.get("add_time")),
        last_update=_stamp(item.get("last_update")),
    )


def _magnet_name(url: str) -> str:
    """A magnet link's display name (`dn`), or ""."""
    if not url.lower().startswith("magnet:"):
        return ""
    names = parse_qs(url.partition("?")[2]).get("dn")
    return names[0].strip() if names else ""


def _add_result(url: str, item: dict[str, Any]) -> AddResult:
    raw_code = item.get("code")
    if raw_code is None:
        raw_code = item.get("errno")
    code = None if isinstance(raw_code, bool) else as_int(raw_code)
    state = item.get("state")
    ok = as_int(state) == 1 if state is not None else not code
    message = _text(item.get("message")) or _text(item.get("error")) or None
    info_hash = _text(item.get("info_hash")) or None
    if code == CODE_TASK_EXISTS:
        status: AddStatus = "duplicate"
    elif ok:
        status = "added"
    else:
        status = "failed"
    return AddResult(
        url=url,
        status=status,
        info_hash=info_hash,
        message=None if status == "added" else message,
        code=code if code else None,
    )
