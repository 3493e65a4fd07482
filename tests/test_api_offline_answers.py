"""The cloud-download client (api/offline.py) on 115's answers: every shape of tasks, pages, the quota and adds, the errors, and the account as 115 sends it."""

from typing import Any

import aiohttp
import pytest

from custom_components.open115.api import (
    CODE_TASK_EXISTS,
    Account,
    AddResult,
    OfflineQuota,
    OfflineTask,
    Open115AccessTokenError,
    Open115Client,
    Open115RateLimitError,
    Open115TransientError,
    TaskPage,
    TaskStatus,
)

from .api_fixtures import START, FakeClock, bearer, emu_access, emu_grant, fails, utc_at
from .conftest import USER_ID, USER_NAME
from .emulator import (
    ADD_URLS_PATH,
    CODE_LIMIT_REACHED,
    CODE_TOO_FREQUENT,
    FAULT_HTML,
    FAULT_HTTP_502,
    PROAPI_LIMIT_HTTP_429,
    QUOTA_PATH,
    TASK_LIST_PATH,
    USER_INFO_PATH,
    Emulator115,
    Grant,
    LoggedRequest,
)

HASH_A = "a" * 40
PASSKEY_LINK = "https://user:pw@t.example/dl/0123456789abcdef/f.torrent?passkey=0123456789abcdef"
NAMED_MAGNET = (
    f"magnet:?xt=urn:btih:{HASH_A}&dn=My%20File&tr=https%3A%2F%2Ft.example%2Fa%2F0123456789abcdef"
)
HASH_B = "b" * 40
MAGNET_A = f"magnet:?xt=urn:btih:{HASH_A}&dn=Big.Buck.Bunny.mkv&xl=734003200"
MAGNET_B = f"magnet:?xt=urn:btih:{HASH_B.upper()}&dn=Sintel"
TASKS = "Reading the cloud downloads"
QUOTA = "Reading the cloud-download quota"
ADD = "Adding cloud downloads"


grant = emu_grant


access = emu_access


def _body(data: Any) -> dict[str, Any]:
    return {"state": True, "code": 0, "message": "", "data": data}


RAW_TASK: dict[str, Any] = {
    "info_hash": HASH_A,
    "add_time": 1767225600,
    "percentDone": 100,
    "size": 734003200,
    "name": "Big.Buck.Bunny.mkv",
    "last_update": 1767229200,
    "file_id": "3000000001",
    "delete_file_id": "3000000001",
    "status": 2,
    "url": MAGNET_A,
    "wp_path_id": "2857",
}
PARSED = OfflineTask(
    info_hash=HASH_A,
    name="Big.Buck.Bunny.mkv",
    size=734003200,
    status=TaskStatus.DONE,
    status_code=2,
    percent_done=100.0,
    file_id="3000000001",
    folder_id="2857",
    url=MAGNET_A,
    add_time=utc_at(1767225600),
    last_update=utc_at(1767229200),
)


def _with(**changes: Any) -> dict[str, Any]:
    task = dict(RAW_TASK)
    for key, value in changes.items():
        if value is ...:
            task.pop(key)
        else:
            task[key] = value
    return task


def _parsed(**changes: Any) -> OfflineTask:
    fields = {f: getattr(PARSED, f) for f in OfflineTask.__slots__}
    return OfflineTask(**(fields | changes))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (RAW_TASK, PARSED),
        # Numbers as floats and numeric strings, ids as numbers.
        (
            _with(size=7.34003200e8, percentDone="57.5", status="1", add_time=1767225600.0),
            _parsed(status=TaskStatus.DOWNLOADING, status_code=1, percent_done=57.5),
        ),
        (_with(file_id=3000000001, wp_path_id=0), _parsed(file_id="3000000001", folder_id="0")),
        # No file yet: "" and 0 both mean none; no folder is None (the root is "0").
        (_with(file_id="", wp_path_id=""), _parsed(file_id=None, folder_id=None)),
        (_with(file_id=0, wp_path_id=...), _parsed(file_id=None, folder_id=None)),
        (_with(file_id="0"), _parsed(file_id=None)),
        # Missing or odd fields.
        (
            _with(size=..., add_time=..., last_update=0),
            _parsed(size=None, add_time=None, last_update=None),
        ),
        (_with(size=-1, add_time="soon"), _parsed(size=None, add_time=None)),
        (_with(last_update=10**20), _parsed(last_update=None)),
        (_with(percentDone=...), _parsed()),  # done: 100
        (
            _with(percentDone=None, status=0),
            _parsed(status=TaskStatus.ALLOCATING, status_code=0, percent_done=0.0),
        ),
        (_with(percentDone=250), _parsed()),
        (
            _with(percentDone=-3, status=-1),
            _parsed(status=TaskStatus.FAILED, status_code=-1, percent_done=0.0),
        ),
        # No name: a magnet's dn, else the info hash; never the link (issue 17, point 12).
        (_with(name="", url="ftp://x/y.bin"), _parsed(name=HASH_A, url="ftp://x/y.bin")),
        (_with(name=" ", url=PASSKEY_LINK), _parsed(name=HASH_A, url=PASSKEY_LINK)),
        (_with(name="", url=NAMED_MAGNET), _parsed(name="My File", url=NAMED_MAGNET)),
        (_with(name=None, url=None), _parsed(name=HASH_A, url="")),
        # An undocumented status: kept as sent, treated as neither done nor failed.
        (_with(status=7), _parsed(status=TaskStatus.ALLOCATING, status_code=7)),
        (_with(status=...), _parsed(status=TaskStatus.ALLOCATING, status_code=0)),
        (_with(status=True), _parsed(status=TaskStatus.ALLOCATING, status_code=0)),
    ],
)
async def test_task_variants(
    client: Open115Client, emu: Emulator115, raw: dict[str, Any], expected: OfflineTask
) -> None:
    emu.inject_body(TASK_LIST_PATH, _body({"page": 1, "page_count": 1, "count": 1, "tasks": [raw]}))
    assert (await bearer(client, "at_sent").offline_tasks()).tasks == (expected,)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([], TaskPage(1, 0, 0, ())),  # an empty PHP array
        ({}, TaskPage(1, 0, 0, ())),
        ({"tasks": None}, TaskPage(1, 0, 0, ())),
        ({"tasks": [RAW_TASK]}, TaskPage(1, 1, 1, (PARSED,))),
        (
            {"page": "2", "page_count": 3.0, "count": "61", "tasks": [RAW_TASK]},
            TaskPage(2, 3, 61, (PARSED,)),
        ),
        # Items that are not tasks, or have no info hash to follow them by, are left out.
        (
            {
                "page": 1,
                "page_count": 1,
                "count": 4,
                "tasks": [5, None, _with(info_hash=""), RAW_TASK],
            },
            TaskPage(1, 1, 4, (PARSED,)),
        ),
        ({"tasks": [_with(info_hash=...)]}, TaskPage(1, 0, 0, ())),
    ],
)
async def test_task_page_variants(
    client: Open115Client, emu: Emulator115, data: Any, expected: TaskPage
) -> None:
    emu.inject_body(TASK_LIST_PATH, _body(data))
    assert await bearer(client, "at_sent").offline_tasks() == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"count": 3000, "used": 12, "surplus": 2988}, OfflineQuota(3000, 12, 2988)),
        ({"count": "3000", "used": 12.0, "surplus": "2988"}, OfflineQuota(3000, 12, 2988)),
        ({"count": 3000, "used": 12}, OfflineQuota(3000, 12, 2988)),
        ({"count": 10, "used": 12}, OfflineQuota(10, 12, 0)),
        (
            {
                "package": [
                    {"name": "VIP", "count": 1500, "used": 10, "surplus": 1490},
                    {"name": "bought", "count": 100, "used": 0, "surplus": 100},
                    "junk",
                ]
            },
            OfflineQuota(1600, 10, 1590),
        ),
        ({"count": None, "used": -1, "surplus": "lots"}, OfflineQuota(None, None, None)),
        ({}, OfflineQuota(None, None, None)),
        ([], OfflineQuota(None, None, None)),
    ],
)
async def test_quota_variants(
    client: Open115Client, emu: Emulator115, data: Any, expected: OfflineQuota
) -> None:
    emu.inject_body(QUOTA_PATH, _body(data))
    assert await bearer(client, "at_sent").offline_quota() == expected


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        # Success may say code 0 or 200, state true or 1.
        (
            [
                {"state": 1, "code": 200, "message": "ok", "info_hash": HASH_A, "url": MAGNET_A},
                {"state": False, "errno": "10008", "error": "任务已存在", "url": MAGNET_B},
            ],
            [
                AddResult(MAGNET_A, "added", HASH_A, None, 200),
                AddResult(MAGNET_B, "duplicate", None, "任务已存在", CODE_TASK_EXISTS),
            ],
        ),
        # Out of order: matched by URL; a link the answer leaves out failed.
        (
            [{"state": True, "code": 0, "message": "", "info_hash": HASH_B, "url": MAGNET_B}],
            [
                AddResult(MAGNET_A, "failed", None, None, None),
                AddResult(MAGNET_B, "added", HASH_B, None, None),
            ],
        ),
        # No state: the code decides; a refusal without a code or text is still a failure.
        (
            [{"code": 0, "info_hash": HASH_A, "url": MAGNET_A}, {"state": False, "url": MAGNET_B}],
            [
                AddResult(MAGNET_A, "added", HASH_A, None, None),
                AddResult(MAGNET_B, "failed", None, None, None),
            ],
        ),
        # A duplicate that names its task keeps the hash.
        (
            [
                {"state": True, "code": 0, "url": MAGNET_A},
                {"state": False, "code": 10008, "info_hash": HASH_B, "url": MAGNET_B},
            ],
            [
                AddResult(MAGNET_A, "added", None, None, None),
                AddResult(MAGNET_B, "duplicate", HASH_B, None, CODE_TASK_EXISTS),
            ],
        ),
        (None, [AddResult(u, "failed", None, None, None) for u in (MAGNET_A, MAGNET_B)]),
        ({}, [AddResult(u, "failed", None, None, None) for u in (MAGNET_A, MAGNET_B)]),
    ],
)
async def test_add_answer_variants(
    client: Open115Client, emu: Emulator115, items: Any, expected: list[AddResult]
) -> None:
    emu.inject_body(ADD_URLS_PATH, _body(items))
    assert await bearer(client, "at_sent").offline_add_urls([MAGNET_A, MAGNET_B]) == expected


async def test_add_message_never_echoes_the_token(client: Open115Client, emu: Emulator115) -> None:
    item = {"state": False, "code": 10004, "message": "bad link at_sent_value", "url": MAGNET_A}
    emu.inject_body(ADD_URLS_PATH, _body([item]))
    (result,) = await bearer(client, "at_sent_value").offline_add_urls([MAGNET_A])
    assert result == AddResult(MAGNET_A, "failed", None, "bad link ***", 10004)


# ----- errors: the access token, rate limits, transient failures ----------------------------

CALLS = {
    TASK_LIST_PATH: (TASKS, lambda c, t: bearer(c, t).offline_tasks()),
    QUOTA_PATH: (QUOTA, lambda c, t: bearer(c, t).offline_quota()),
    ADD_URLS_PATH: (ADD, lambda c, t: bearer(c, t).offline_add_urls([MAGNET_A])),
}


@pytest.mark.parametrize("path", list(CALLS))
async def test_refused_access_token(
    client: Open115Client, emu: Emulator115, grant: Grant, clock: FakeClock, path: str
) -> None:
    what, call = CALLS[path]
    err = await fails(Open115AccessTokenError, call(client, "at_unknown"), emu, "at_unknown")
    assert (err.code, str(err)) == (
        40140123,
        f"{what} failed with code 40140123 (access_token format error)",
    )
    expired = emu.issue_access_token(grant, expires_in=60)
    clock.advance(60)
    err = await fails(Open115AccessTokenError, call(client, expired), emu)
    assert err.code == 40140125
    assert [r.code for r in emu.requests] == [40140123, 40140125]
    assert emu.offline_tasks == []  # nothing was added with a refused token


@pytest.mark.parametrize("path", [*CALLS, USER_INFO_PATH])
@pytest.mark.parametrize("limit", [CODE_TOO_FREQUENT, CODE_LIMIT_REACHED, PROAPI_LIMIT_HTTP_429])
async def test_rate_limited(
    client: Open115Client, emu: Emulator115, access: str, path: str, limit: int
) -> None:
    what, call = CALLS.get(path, ("Reading the account", lambda c, t: bearer(c, t).user_info()))
    emu.proapi_limit = limit
    err = await fails(Open115RateLimitError, call(client, access), emu)
    if limit == PROAPI_LIMIT_HTTP_429:
        assert (err.code, str(err)) == (None, f"{what} failed with HTTP 429 (rate limited)")
    else:
        assert (err.code, str(err)) == (limit, f"{what} failed with code {limit} (访问频率过高)")
    assert emu.requests == [LoggedRequest(path, START, limit)]
    assert emu.offline_tasks == []  # a refused add added nothing
    emu.proapi_limit = None  # the limit lifts: the same token works again
    await call(client, access)


@pytest.mark.parametrize("path", list(CALLS))
@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (FAULT_HTTP_502, "failed with HTTP 502"),
        (FAULT_HTML, "failed: the answer is not JSON (HTTP 200)"),
        ("code:40110000", "failed with code 40110000 (injected)"),
    ],
)
async def test_transient_failures(
    client: Open115Client, emu: Emulator115, access: str, path: str, fault: str, message: str
) -> None:
    what, call = CALLS[path]
    emu.inject(path, fault)
    err = await fails(Open115TransientError, call(client, access), emu)
    assert str(err) == f"{what} {message}"


@pytest.mark.parametrize("path", [TASK_LIST_PATH, QUOTA_PATH])
@pytest.mark.parametrize("data", [None, "tasks", 5])
async def test_answers_without_data_are_transient(
    client: Open115Client, emu: Emulator115, path: str, data: Any
) -> None:
    what, call = CALLS[path]
    body = _body(data)
    if data is None:
        del body["data"]
    emu.inject_body(path, body)
    err = await fails(Open115TransientError, call(client, "at_sent"), emu, "at_sent")
    assert str(err) == f"{what} failed: no data in the answer"


# ----- the account: user_id a JSON number, optional VIP, float sizes ------------------------


async def test_account_as_115_sends_it(
    client: Open115Client, emu: Emulator115, access: str
) -> None:
    emu.float_sizes = True
    emu.set_vip(USER_ID, None)
    assert await bearer(client, access).user_info() == Account(
        user_id=str(USER_ID),
        user_name=USER_NAME,
        space_total=2 * 1024**4,
        space_used=512 * 1024**3,
        space_remain=2 * 1024**4 - 512 * 1024**3,
    )
    emu.set_vip(USER_ID, "SVIP", 1_800_000_000)
    account = await bearer(client, access).user_info()
    assert (account.vip_level, account.vip_expire) == ("SVIP", utc_at(1_800_000_000))


async def test_float_task_sizes(client: Open115Client, emu: Emulator115, access: str) -> None:
    emu.float_sizes = True
    emu.add_task(USER_ID, MAGNET_A)
    (task,) = (await bearer(client, access).offline_tasks()).tasks
    assert task.size == 734003200


async def test_raw_account_answer(
    session: aiohttp.ClientSession, base_url: str, emu: Emulator115, access: str
) -> None:
    """The emulator sends what 115 sends: user_id a number, sizes as floats when switched."""
    emu.float_sizes = True
    emu.set_vip(USER_ID, None)
    headers = {"Authorization": f"Bearer {access}"}
    async with session.get(f"{base_url}{USER_INFO_PATH}", headers=headers) as resp:
        data = (await resp.json())["data"]
    assert data["user_id"] == USER_ID
    assert isinstance(data["user_id"], int)
    assert data["rt_space_info"]["all_total"]["size"] == 2.0 * 1024**4
    assert isinstance(data["rt_space_info"]["all_total"]["size"], float)
    assert data["vip_info"] == {}
