"""The cloud-download client (api/offline.py) against the loopback emulator's /open/offline/*: adding links, the task list."""

import aiohttp
import pytest

from custom_components.open115.api import (
    CODE_TASK_EXISTS,
    AddResult,
    OfflineQuota,
    OfflineTask,
    Open115Client,
    TaskPage,
    TaskStatus,
)

from .api_fixtures import START, FakeClock, bearer, emu_access, emu_grant, utc_at
from .conftest import USER_ID
from .emulator import (
    ADD_URLS_PATH,
    CLEAR_TASK_PATH,
    CODE_BAD_LINK,
    CODE_NO_QUOTA,
    DEFAULT_TASK_SIZE,
    DEL_TASK_PATH,
    TASK_LIST_PATH,
    Emulator115,
    info_hash_of,
)

HASH_A = "a" * 40
HASH_B = "b" * 40
MAGNET_A = f"magnet:?xt=urn:btih:{HASH_A}&dn=Big.Buck.Bunny.mkv&xl=734003200"
MAGNET_B = f"magnet:?xt=urn:btih:{HASH_B.upper()}&dn=Sintel"
HTTP_LINK = "https://example.com/files/ubuntu.iso"
OTHER_USER = 310000002


grant = emu_grant


access = emu_access


# ----- adding links -----------------------------------------------------------------------


async def test_add_list_finish(
    client: Open115Client, emu: Emulator115, access: str, clock: FakeClock
) -> None:
    """A magnet added through the client shows in the list, progresses, and finishes."""
    results = await bearer(client, access).offline_add_urls([MAGNET_A], folder_id="2857")
    assert results == [AddResult(MAGNET_A, "added", HASH_A, None, None)]
    page = await bearer(client, access).offline_tasks()
    queued = OfflineTask(
        info_hash=HASH_A,
        name="Big.Buck.Bunny.mkv",
        size=734003200,
        status=TaskStatus.ALLOCATING,
        status_code=0,
        percent_done=0.0,
        file_id=None,
        folder_id="2857",
        url=MAGNET_A,
        add_time=utc_at(START),
        last_update=utc_at(START),
    )
    assert page == TaskPage(page=1, page_count=1, count=1, tasks=(queued,))

    clock.advance(60)
    emu.set_progress(HASH_A, 42.5)
    (running,) = (await bearer(client, access).offline_tasks()).tasks
    assert (running.status, running.status_code, running.percent_done) == (
        TaskStatus.DOWNLOADING,
        1,
        42.5,
    )
    assert running.last_update == utc_at(START + 60)

    clock.advance(60)
    file_id = emu.finish_task(HASH_A).file_id
    (done,) = (await bearer(client, access).offline_tasks()).tasks
    assert done.status is TaskStatus.DONE
    assert (done.percent_done, done.file_id, done.last_update) == (
        100.0,
        file_id,
        utc_at(START + 120),
    )
    # The downloaded file takes up storage.
    account = await bearer(client, access).user_info()
    assert account.space_used == 512 * 1024**3 + 734003200


async def test_add_several_in_order_with_duplicate_and_bad_link(
    client: Open115Client, emu: Emulator115, access: str
) -> None:
    emu.add_task(USER_ID, MAGNET_B)  # added before, e.g. in 115's app
    links = [HTTP_LINK, MAGNET_B, "thunder://QUFodHRw", MAGNET_A]
    results = await bearer(client, access).offline_add_urls(links)
    assert results == [
        AddResult(HTTP_LINK, "added", info_hash_of(HTTP_LINK), None, None),
        AddResult(MAGNET_B, "duplicate", None, "任务已存在", CODE_TASK_EXISTS),
        AddResult("thunder://QUFodHRw", "failed", None, "错误的链接", CODE_BAD_LINK),
        AddResult(MAGNET_A, "added", HASH_A, None, None),
    ]
    page = await bearer(client, access).offline_tasks()
    assert [t.info_hash for t in page.tasks] == [HASH_A, info_hash_of(HTTP_LINK), HASH_B]
    assert [t.name for t in page.tasks] == ["Big.Buck.Bunny.mkv", "ubuntu.iso", "Sintel"]
    assert emu.count(ADD_URLS_PATH) == 1


async def test_add_sends_links_and_folder(
    client: Open115Client, emu: Emulator115, access: str
) -> None:
    await bearer(client, access).offline_add_urls([HTTP_LINK, MAGNET_A])
    assert {t.folder_id for t in emu.offline_tasks} == {"0"}  # no folder: 115's default
    await bearer(client, access).offline_add_urls([MAGNET_B], folder_id="123")
    assert emu.task(HASH_B).folder_id == "123"


async def test_add_nothing_is_refused_before_any_request(
    client: Open115Client, emu: Emulator115, access: str
) -> None:
    with pytest.raises(ValueError, match="no links"):
        await bearer(client, access).offline_add_urls([])
    assert emu.count(ADD_URLS_PATH) == 0


async def test_quota_accounting_and_exhaustion(
    client: Open115Client, emu: Emulator115, access: str
) -> None:
    emu.offline_quota = 2
    assert await bearer(client, access).offline_quota() == OfflineQuota(count=2, used=0, surplus=2)
    results = await bearer(client, access).offline_add_urls([MAGNET_A, MAGNET_B, HTTP_LINK])
    assert [r.status for r in results] == ["added", "added", "failed"]
    assert (results[2].code, results[2].message) == (CODE_NO_QUOTA, "云下载配额已用完")
    assert await bearer(client, access).offline_quota() == OfflineQuota(count=2, used=2, surplus=0)


# ----- the task list ----------------------------------------------------------------------


async def test_empty_task_list(client: Open115Client, access: str) -> None:
    assert await bearer(client, access).offline_tasks() == TaskPage(1, 0, 0, ())


async def test_failed_task(client: Open115Client, emu: Emulator115, access: str) -> None:
    emu.add_task(USER_ID, HTTP_LINK, size=5)
    emu.fail_task()
    (task,) = (await bearer(client, access).offline_tasks()).tasks
    assert (task.status, task.status_code, task.file_id, task.size) == (
        TaskStatus.FAILED,
        -1,
        None,
        5,
    )


async def test_paging(client: Open115Client, emu: Emulator115, access: str) -> None:
    emu.tasks_per_page = 2
    hashes = [emu.add_task(USER_ID, f"{HTTP_LINK}?n={n}") for n in range(5)]
    pages = [await bearer(client, access).offline_tasks(page) for page in (1, 2, 3, 4)]
    assert [(p.page, p.page_count, p.count) for p in pages] == [(n, 3, 5) for n in (1, 2, 3, 4)]
    seen = [t.info_hash for p in pages for t in p.tasks]
    assert seen == hashes[::-1]  # newest first, each once; page 4 is empty
    assert pages[3].tasks == ()
    assert [r.path for r in emu.requests] == [TASK_LIST_PATH] * 4


async def test_only_the_tokens_account(
    client: Open115Client, emu: Emulator115, access: str
) -> None:
    emu.add_task(OTHER_USER, MAGNET_A)
    assert (await bearer(client, access).offline_tasks()).tasks == ()
    assert await bearer(client, access).offline_add_urls([MAGNET_A]) == [
        AddResult(MAGNET_A, "added", HASH_A, None, None)
    ]


async def test_download_progresses_with_the_clock(
    client: Open115Client, emu: Emulator115, access: str, clock: FakeClock
) -> None:
    emu.download_seconds = 600
    await bearer(client, access).offline_add_urls([HTTP_LINK])
    clock.advance(150)
    (task,) = (await bearer(client, access).offline_tasks()).tasks
    assert (task.status, task.percent_done) == (TaskStatus.DOWNLOADING, 25.0)
    clock.advance(450)
    (task,) = (await bearer(client, access).offline_tasks()).tasks
    assert (task.status, task.size) == (TaskStatus.DONE, DEFAULT_TASK_SIZE)


async def test_emulator_del_and_clear(
    session: aiohttp.ClientSession,
    base_url: str,
    client: Open115Client,
    emu: Emulator115,
    access: str,
) -> None:
    """The emulator's del_task and clear_task (for scripts and other consumers)."""
    headers = {"Authorization": f"Bearer {access}"}
    for link in (MAGNET_A, MAGNET_B, HTTP_LINK):
        emu.add_task(USER_ID, link)
    emu.finish_task(HASH_A)
    emu.fail_task(HASH_B)
    async with session.post(
        f"{base_url}{CLEAR_TASK_PATH}", data={"flag": "0"}, headers=headers
    ) as resp:
        assert (await resp.json())["state"] is True
    assert [t.info_hash for t in (await bearer(client, access).offline_tasks()).tasks] == [
        info_hash_of(HTTP_LINK),
        HASH_B,
    ]
    async with session.post(
        f"{base_url}{DEL_TASK_PATH}", data={"info_hash": HASH_B}, headers=headers
    ) as resp:
        assert (await resp.json())["state"] is True
    assert [t.info_hash for t in (await bearer(client, access).offline_tasks()).tasks] == [
        info_hash_of(HTTP_LINK)
    ]
