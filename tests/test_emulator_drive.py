"""The emulator's drive (tests/emulator/drive.py): list, info, add, delete, rate limits."""

import hashlib
import os

import aiohttp
import pytest

from .api_fixtures import FakeClock
from .conftest import USER_ID
from .emulator import (
    CODE_FOLDER_EXISTS,
    CODE_FOLDER_MISSING,
    CODE_LIMIT_REACHED,
    CODE_TOO_FREQUENT,
    DELETE_PATH,
    DOWNURL_PATH,
    FILES_PATH,
    FOLDER_ADD_PATH,
    FOLDER_INFO_PATH,
    MAX_LIST_LIMIT,
    Emulator115,
)
from .emulator_requests import Proapi

DATA = os.urandom(3 * 256 * 1024 + 5)
UA = "open115-test/1.0"


@pytest.fixture
async def api(session: aiohttp.ClientSession, base_url: str, emu: Emulator115) -> Proapi:
    return Proapi(session, base_url, emu, emu.authorize(USER_ID))


async def test_folders_are_made_once_and_found_by_id_and_path(
    emu: Emulator115, api: Proapi
) -> None:
    made = await api.post(FOLDER_ADD_PATH, {"pid": 0, "file_name": "Home Assistant"})
    assert made["state"] is True
    folder_id = made["data"]["file_id"]
    assert made["data"]["file_name"] == "Home Assistant"
    again = await api.post(FOLDER_ADD_PATH, {"pid": 0, "file_name": "Home Assistant"})
    assert (again["state"], again["code"]) == (False, CODE_FOLDER_EXISTS)
    inner = await api.post(FOLDER_ADD_PATH, {"pid": folder_id, "file_name": "backups"})
    emu.add_file(USER_ID, inner["data"]["file_id"], "a.tar", DATA)
    by_id = await api.get(FOLDER_INFO_PATH, file_id=inner["data"]["file_id"])
    by_path = await api.post(FOLDER_INFO_PATH, {"path": "/Home Assistant/backups"})
    by_arrows = await api.post(FOLDER_INFO_PATH, {"path": ">Home Assistant>backups"})
    assert by_id["data"] == by_path["data"] == by_arrows["data"]
    info = by_id["data"]
    assert (info["file_name"], info["file_category"], info["count"]) == ("backups", "0", 1)
    assert info["size_byte"] == len(DATA)
    assert [p["file_name"] for p in info["paths"]] == ["根目录", "Home Assistant"]
    missing = await api.post(FOLDER_INFO_PATH, {"path": "/nowhere"})
    assert (missing["state"], missing["data"]) == (True, [])
    emu.missing_folder_error = True
    missing = await api.get(FOLDER_INFO_PATH, file_id="123")
    assert (missing["state"], missing["code"]) == (False, CODE_FOLDER_MISSING)
    orphan = await api.post(FOLDER_ADD_PATH, {"pid": "123", "file_name": "x"})
    assert orphan["code"] == CODE_FOLDER_MISSING


async def test_listing_pages_count_and_fields(emu: Emulator115, api: Proapi) -> None:
    folder = emu.add_folder(USER_ID, "0", "f")
    emu.add_folder(USER_ID, folder.file_id, "sub")
    files = [emu.add_file(USER_ID, folder.file_id, f"{i}.tar", bytes([i])) for i in range(5)]
    page = await api.get(FILES_PATH, cid=folder.file_id, limit=2, offset=0, show_dir=0)
    assert page["count"] == 5
    assert [i["fn"] for i in page["data"]] == ["0.tar", "1.tar"]
    item = page["data"][0]
    assert item["fid"] == files[0].file_id
    assert (item["pid"], item["fc"], item["fs"]) == (folder.file_id, "1", 1)
    assert item["sha1"] == hashlib.sha1(bytes([0]), usedforsecurity=False).hexdigest().upper()
    assert item["pc"] == files[0].pick_code
    assert item["upt"] == item["uet"] == int(files[0].created)
    rest = await api.get(FILES_PATH, cid=folder.file_id, limit=2, offset=4, show_dir=0)
    assert [i["fn"] for i in rest["data"]] == ["4.tar"]
    with_dirs = await api.get(FILES_PATH, cid=folder.file_id, limit=10, offset=0, show_dir=1)
    assert with_dirs["count"] == 6
    assert (with_dirs["data"][0]["fn"], with_dirs["data"][0]["fc"]) == ("sub", "0")
    big = await api.get(FILES_PATH, cid=folder.file_id, limit=5000, offset=0)
    assert big["limit"] == MAX_LIST_LIMIT
    assert big["cid"] == int(folder.file_id)
    assert [(p["name"], p["cid"], p["pid"]) for p in big["path"]] == [
        ("根目录", 0, 0),
        ("f", int(folder.file_id), 0),
    ]


async def test_new_files_show_up_late_when_asked(
    emu: Emulator115, api: Proapi, clock: FakeClock
) -> None:
    emu.listing_delay = 30
    emu.add_file(USER_ID, "0", "late.tar", b"x")
    assert (await api.get(FILES_PATH, cid=0))["count"] == 0
    clock.advance(30)
    assert (await api.get(FILES_PATH, cid=0))["count"] == 1


async def test_delete_takes_several_ids_into_the_recycle_bin(emu: Emulator115, api: Proapi) -> None:
    used = emu.accounts[USER_ID].space_used
    a = emu.add_file(USER_ID, "0", "a.tar", DATA)
    b = emu.add_file(USER_ID, "0", "a.json", b"{}")
    keep = emu.add_file(USER_ID, "0", "keep", b"k")
    assert emu.accounts[USER_ID].space_used == used + len(DATA) + 3
    answer = await api.post(DELETE_PATH, {"file_ids": f"{a.file_id},{b.file_id}", "parent_id": 0})
    assert answer["state"] is True
    assert list(emu.nodes) == [keep.file_id]
    assert emu.recycle_bin == [a, b]
    assert emu.accounts[USER_ID].space_used == used + 1


@pytest.mark.parametrize("code", [CODE_TOO_FREQUENT, CODE_LIMIT_REACHED])
async def test_rate_limits_on_drive_calls(emu: Emulator115, api: Proapi, code: int) -> None:
    emu.inject(FILES_PATH, f"code:{code}")
    answer = await api.get(FILES_PATH, cid=0)
    assert (answer["state"], answer["code"]) == (False, code)
    assert (await api.get(FILES_PATH, cid=0))["state"] is True
    emu.proapi_limit = code
    answer = await api.post(DOWNURL_PATH, {"pick_code": "x"}, {"User-Agent": UA})
    assert (answer["state"], answer["code"]) == (False, code)
