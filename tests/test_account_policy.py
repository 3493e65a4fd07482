"""The account reads' pure policy (account_policy.py): delays, stalls, pages, news."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from custom_components.open115.account_policy import (
    MAX_BACKOFF_EXPONENT,
    NEW_TASK_SLACK,
    STALL_GRACE,
    backoff,
    ended_since,
    poll_interval,
    progress,
    rate_limited_delay,
    read_retry_delay,
    task_key,
    wants_next_page,
)
from custom_components.open115.api.offline import OfflineTask, TaskStatus
from custom_components.open115.const import (
    ACTIVE_TASKS_INTERVAL,
    IDLE_TASKS_INTERVAL,
    MAX_REPORTED_TASKS,
    SLOW_BACKOFF_MAX,
)

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def task(n: int, status: TaskStatus = TaskStatus.DOWNLOADING, **changes: object) -> OfflineTask:
    base = OfflineTask(
        info_hash=f"{n:040x}",
        name=f"file{n}",
        size=1,
        status=status,
        status_code=int(status),
        percent_done=0.0,
        file_id=None,
        folder_id="0",
        url="",
        add_time=NOW - timedelta(hours=2),
        last_update=NOW - timedelta(hours=2),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_backoff_doubles_to_its_cap_and_never_overflows() -> None:
    assert [read_retry_delay(n) for n in range(1, 8)] == [
        MINUTE * m for m in (1, 2, 4, 8, 16, 30, 30)
    ]
    assert read_retry_delay(0) == MINUTE
    # A week of failures every 30 min, and far more: no OverflowError (issue 17, point 11).
    assert read_retry_delay(10**6) == IDLE_TASKS_INTERVAL
    assert rate_limited_delay(10**6) == SLOW_BACKOFF_MAX
    huge = timedelta(days=999_999_999)
    assert backoff(timedelta(days=1), 10**9, huge) == timedelta(days=2**MAX_BACKOFF_EXPONENT)


def test_poll_interval_idle_active_and_stalled() -> None:
    assert poll_interval(0, 0) == IDLE_TASKS_INTERVAL
    assert poll_interval(0, 99) == IDLE_TASKS_INTERVAL
    assert [poll_interval(1, n) for n in range(STALL_GRACE + 1)] == [ACTIVE_TASKS_INTERVAL] * (
        STALL_GRACE + 1
    )
    assert poll_interval(2, STALL_GRACE + 1) == 2 * ACTIVE_TASKS_INTERVAL
    assert poll_interval(2, 10**6) == IDLE_TASKS_INTERVAL


def test_task_key_is_hash_and_add_time() -> None:
    assert task_key(task(1)) == f"{1:040x}@{int((NOW - timedelta(hours=2)).timestamp())}"
    assert task_key(task(1, add_time=None)) == f"{1:040x}"


def test_progress_sees_running_tasks_move() -> None:
    still = [task(1), task(2, TaskStatus.DONE)]
    assert progress(still) == progress([task(1), task(2, TaskStatus.DONE, percent_done=100.0)])
    assert progress(still) != progress([task(1, percent_done=0.5)])
    assert progress(still) != progress([task(1, last_update=NOW)])
    assert progress(still) != progress([task(1, TaskStatus.ALLOCATING)])
    assert progress(still) != progress([])


def test_wants_next_page() -> None:
    ended = [task(1, TaskStatus.DONE), task(2, TaskStatus.FAILED)]
    seen = {task_key(t): "finished" for t in ended}
    assert not wants_next_page(ended, seen, set())
    assert wants_next_page(ended, seen, {"a running task not found yet"})
    assert wants_next_page(ended, None, set())  # nothing seen yet
    assert wants_next_page([*ended, task(3, TaskStatus.DONE)], seen, set())  # not seen
    assert wants_next_page([*ended, task(3)], {**seen, task_key(task(3)): "running"}, set())


def test_first_read_reports_nothing() -> None:
    tasks = [task(1, TaskStatus.DONE), task(2)]
    events, seen = ended_since(tasks, None, None, complete=False)
    assert events == []
    assert seen == {task_key(tasks[1]): "running", task_key(tasks[0]): "finished"}


def test_ended_since_reports_what_ended_once() -> None:
    running, done, failed = task(1), task(2), task(3)
    seen = {task_key(t): "running" for t in (running, done, failed)}
    now = [
        running,
        replace(done, status=TaskStatus.DONE),
        replace(failed, status=TaskStatus.FAILED),
    ]
    events, after = ended_since(now, seen, NOW, complete=True)
    assert [(kind, t.info_hash) for kind, t in events] == [
        ("finished", done.info_hash),
        ("failed", failed.info_hash),
    ]
    again, _ = ended_since(now, after, NOW, complete=True)
    assert again == []


def test_a_new_task_that_ended_between_reads_is_news_an_old_unseen_one_is_not() -> None:
    fresh = task(1, TaskStatus.DONE, add_time=NOW - NEW_TASK_SLACK)
    old = task(2, TaskStatus.DONE, add_time=NOW - NEW_TASK_SLACK - timedelta(seconds=1))
    timeless = task(3, TaskStatus.FAILED, add_time=None)
    events, _ = ended_since([fresh, old, timeless], {}, NOW, complete=False)
    assert [t.info_hash for _, t in events] == [fresh.info_hash, timeless.info_hash]


def test_re_added_task_is_a_new_key() -> None:
    first = task(1, TaskStatus.DONE)
    again = task(1, TaskStatus.DONE, add_time=NOW - MINUTE)
    _, seen = ended_since([first], None, None, complete=True)
    events, after = ended_since([again], seen, NOW - 2 * MINUTE, complete=True)
    assert [t.add_time for _, t in events] == [again.add_time]
    assert after == {task_key(again): "finished"}  # the removed one is forgotten


@pytest.mark.parametrize("complete", [True, False])
def test_tasks_not_read_are_kept_unless_the_list_was_read_whole(complete: bool) -> None:
    shown, hidden = task(1), task(2)
    seen = {task_key(hidden): "finished", task_key(shown): "running"}
    _, after = ended_since([shown], seen, NOW, complete=complete)
    expected = {task_key(shown): "running"}
    assert after == (expected if complete else {task_key(hidden): "finished", **expected})


def test_seen_is_bounded_oldest_dropped_first() -> None:
    seen = {f"old{n}": "finished" for n in range(MAX_REPORTED_TASKS)}
    _, after = ended_since([task(1)], seen, NOW, complete=False)
    assert len(after) == MAX_REPORTED_TASKS
    assert "old0" not in after
    assert task_key(task(1)) in after
