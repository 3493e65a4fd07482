"""When the account reads run, and what a read of the task list means (no Home Assistant).

Pure functions for the account coordinator: the poll interval (idle, active, a stalled task),
the backoff after a failed or rate-limited read (bounded, from the nominal intervals), which
task-list pages to read, and which tasks finished or failed since the last read.
"""

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Final

from .api.offline import OfflineTask, TaskStatus
from .const import (
    ACTIVE_TASKS_INTERVAL,
    CLOUD_DOWNLOAD_FAILED,
    CLOUD_DOWNLOAD_FINISHED,
    IDLE_TASKS_INTERVAL,
    MAX_REPORTED_TASKS,
    READ_RETRY_START,
    SLOW_BACKOFF_MAX,
    SLOW_BACKOFF_START,
)

ACTIVE: Final = frozenset({TaskStatus.ALLOCATING, TaskStatus.DOWNLOADING})
ENDED: Final = {TaskStatus.DONE: CLOUD_DOWNLOAD_FINISHED, TaskStatus.FAILED: CLOUD_DOWNLOAD_FAILED}
RUNNING: Final = "running"  # a task seen allocating or downloading
# A failed read is retried after 60 s, doubling up to the idle interval, also while a task runs.
READ_RETRY_MAX: Final = IDLE_TASKS_INTERVAL
# Doublings at most: 60 s * 2**16 is far past every cap, and never overflows a timedelta.
MAX_BACKOFF_EXPONENT: Final = 16
# Reads in a row that find no running task moved before the active polling slows down
# (doubling from 60 s up to the idle interval): a stalled task (0 %, no peers) costs little.
STALL_GRACE: Final = 5
# A task not seen before and already ended is news when added at most this long before the
# last read (115's clock may differ; an older one was on a page not read, not new).
NEW_TASK_SLACK: Final = timedelta(hours=1)

type Seen = dict[str, str]  # task key -> "running", "finished" or "failed"; oldest first


def backoff(start: timedelta, count: int, cap: timedelta) -> timedelta:
    """`start` doubled for each of `count` - 1 failures in a row, at most `cap`."""
    exponent = min(max(count - 1, 0), MAX_BACKOFF_EXPONENT)
    return min(start * (1 << exponent), cap)


def read_retry_delay(failures: int) -> timedelta:
    """When a read that failed `failures` times in a row is tried again."""
    return backoff(READ_RETRY_START, failures, READ_RETRY_MAX)


def rate_limited_delay(times: int) -> timedelta:
    """When to read again after being rate limited `times` times in a row."""
    return backoff(SLOW_BACKOFF_START, times, SLOW_BACKOFF_MAX)


def poll_interval(active: int, stalled_reads: int) -> timedelta:
    """The nominal time to the next read: idle, active, or slowed by a stall."""
    if not active:
        return IDLE_TASKS_INTERVAL
    return backoff(ACTIVE_TASKS_INTERVAL, stalled_reads - STALL_GRACE + 1, IDLE_TASKS_INTERVAL)


def task_key(task: OfflineTask) -> str:
    """A task's identity: its info hash and when it was added (a re-added task is new)."""
    if task.add_time is None:
        return task.info_hash
    return f"{task.info_hash}@{int(task.add_time.timestamp())}"


def state_of(task: OfflineTask) -> str:
    """`running`, `finished` or `failed`."""
    return ENDED.get(task.status, RUNNING)


def progress(tasks: Iterable[OfflineTask]) -> frozenset[tuple[str, int, float, datetime | None]]:
    """What moves while the running tasks download: compared read to read to tell a stall."""
    return frozenset(
        (task_key(t), int(t.status), t.percent_done, t.last_update)
        for t in tasks
        if t.status in ACTIVE
    )


def wants_next_page(
    page: Sequence[OfflineTask], seen: Mapping[str, str] | None, missing: set[str]
) -> bool:
    """Whether the page after `page` can hold a task not yet ended or not yet seen.

    The list is newest first: past a page whose tasks are all ended and known, only older
    ended tasks follow, unless a task that was running (`missing`) is still to be found.
    """
    if missing:
        return True
    return any(t.status in ACTIVE or seen is None or task_key(t) not in seen for t in page)


def ended_since(
    tasks: Sequence[OfflineTask],
    seen: Seen | None,
    last_read: datetime | None,
    *,
    complete: bool,
) -> tuple[list[tuple[str, OfflineTask]], Seen]:
    """The tasks that finished or failed since the last read, and what is seen after this one.

    Without `seen` (the very first read) the tasks are taken as they are, reporting none. A
    task not seen before that has already ended is reported when it was added after (or
    shortly before) `last_read`. With the whole list read (`complete`), tasks that left it are
    forgotten; otherwise those not read are kept (they may be on a page not read).
    """
    events: list[tuple[str, OfflineTask]] = []
    current: Seen = {}
    for task in reversed(tasks):  # oldest first
        key, state = task_key(task), state_of(task)
        before = seen.get(key) if seen is not None else state
        if state not in (RUNNING, before) and _news(task, before, last_read):
            events.append((state, task))
        current[key] = state
    kept: Seen = (
        {} if complete or seen is None else {k: v for k, v in seen.items() if k not in current}
    )
    after = kept | current
    for key in list(after)[: max(len(after) - MAX_REPORTED_TASKS, 0)]:
        del after[key]
    events.reverse()  # newest first, as the list
    return events, after


def _news(task: OfflineTask, before: str | None, last_read: datetime | None) -> bool:
    if before is not None or last_read is None or task.add_time is None:
        return True
    return task.add_time >= last_read - NEW_TASK_SLACK
