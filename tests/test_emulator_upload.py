"""The emulator's upload scheduling (tests/emulator/upload.py): init, the sign check, get_token,
resume, and how a sign check it could not verify at init is checked when OSS calls back."""

from datetime import UTC, datetime
import json
import os
from typing import Any

import aiohttp
import pytest

from .api_fixtures import FakeClock
from .conftest import USER_ID
from .emulator import (
    CODE_FOLDER_MISSING,
    CODE_NO_UPLOAD,
    CODE_TOO_FREQUENT,
    OSS_BUCKET,
    OSS_ENDPOINT,
    STATUS_INSTANT,
    STATUS_SIGN_FAILED_AFTER,
    STATUS_SIGN_NEEDED,
    STATUS_SIGN_WRONG,
    STATUS_UPLOAD,
    UPLOAD_INIT_PATH,
    UPLOAD_RESUME_PATH,
    UPLOAD_TOKEN_PATH,
    Emulator115,
    sha1_hex,
)
from .emulator_requests import Proapi, callback_headers, send, sign

MIB = 1024 * 1024
BIG = os.urandom(MIB + 4321)
SMALL = os.urandom(1000)


@pytest.fixture
async def api(session: aiohttp.ClientSession, base_url: str, emu: Emulator115) -> Proapi:
    return Proapi(session, base_url, emu, emu.authorize(USER_ID))


def form(data: bytes, name: str = "b.tar", cid: str = "0", **extra: Any) -> dict[str, Any]:
    return {
        "file_name": name,
        "file_size": len(data),
        "target": f"U_1_{cid}",
        "fileid": sha1_hex(data),
        "preid": sha1_hex(data[: 128 * 1024]),
        "topupload": 0,
        **extra,
    }


def range_sha1(data: bytes, sign_check: str) -> str:
    start, end = (int(x) for x in sign_check.split("-"))
    return sha1_hex(data[start : end + 1])


async def test_a_new_small_file_is_scheduled_with_115s_callback(
    emu: Emulator115, api: Proapi
) -> None:
    answer = await api.post(UPLOAD_INIT_PATH, form(SMALL))
    assert (answer["state"], answer["code"]) == (True, 0)
    data = answer["data"]
    assert data["status"] == STATUS_UPLOAD
    assert data["bucket"] == OSS_BUCKET
    assert data["object"]
    assert data["target"] == "U_1_0"
    callback = json.loads(data["callback"]["callback"])
    assert set(callback) == {"callbackUrl", "callbackBody", "callbackBodyType"}
    callback_var = json.loads(data["callback"]["callback_var"])
    assert callback_var == {
        "x:pick_code": data["pick_code"],
        "x:target": "U_1_0",
        "x:user_id": str(USER_ID),
    }
    assert emu.init_forms[-1]["preid"] == sha1_hex(SMALL)
    emu.callback_shape = "list"
    listed = (await api.post(UPLOAD_INIT_PATH, form(SMALL)))["data"]["callback"]
    assert isinstance(listed, list)
    assert set(listed[0]) == {"callback", "callback_var"}


async def test_a_held_small_file_is_stored_instantly(emu: Emulator115, api: Proapi) -> None:
    emu.add_file(USER_ID, "0", "old.tar", SMALL)
    folder = emu.add_folder(USER_ID, "0", "backups")
    other_size = {**form(SMALL), "file_size": len(SMALL) + 1}
    assert (await api.post(UPLOAD_INIT_PATH, other_size))["data"]["status"] == STATUS_UPLOAD
    data = (await api.post(UPLOAD_INIT_PATH, form(SMALL, "new.tar", folder.file_id)))["data"]
    assert data["status"] == STATUS_INSTANT
    assert (data["callback"], data["bucket"], data["object"]) == ([], "", "")
    node = emu.nodes[data["file_id"]]
    assert (node.name, node.parent_id, node.pick_code) == (
        "new.tar",
        folder.file_id,
        data["pick_code"],
    )
    assert emu.read_bytes(node) == SMALL


async def test_a_held_big_file_asks_the_sign_check_first(emu: Emulator115, api: Proapi) -> None:
    emu.add_file(USER_ID, "0", "old.tar", BIG)
    first = (await api.post(UPLOAD_INIT_PATH, form(BIG)))["data"]
    assert first["status"] == STATUS_SIGN_NEEDED
    start, end = (int(x) for x in first["sign_check"].split("-"))
    assert 0 <= start <= end < len(BIG)
    wrong = await api.post(
        UPLOAD_INIT_PATH, form(BIG, sign_key=first["sign_key"], sign_val="0" * 40)
    )
    assert (wrong["state"], wrong["code"], wrong["data"]["status"]) == (True, 0, STATUS_SIGN_WRONG)
    assert len(emu.nodes) == 1
    again = (await api.post(UPLOAD_INIT_PATH, form(BIG)))["data"]
    right = form(BIG, sign_key=again["sign_key"], sign_val=range_sha1(BIG, again["sign_check"]))
    done = (await api.post(UPLOAD_INIT_PATH, right))["data"]
    assert done["status"] == STATUS_INSTANT
    assert emu.read_bytes(emu.nodes[done["file_id"]]) == BIG
    reused = (await api.post(UPLOAD_INIT_PATH, right))["data"]
    assert reused["status"] == STATUS_SIGN_FAILED_AFTER


async def test_envelope_codes_when_switched_on(emu: Emulator115, api: Proapi) -> None:
    emu.sign_envelope_codes = True
    answer = await api.post(UPLOAD_INIT_PATH, form(BIG))
    assert (answer["state"], answer["code"], answer["data"]["status"]) == (True, 701, 7)


async def test_a_new_big_file_is_checked_when_the_bytes_arrive(
    session: aiohttp.ClientSession, base_url: str, clock: FakeClock, emu: Emulator115, api: Proapi
) -> None:
    token = (await api.get(UPLOAD_TOKEN_PATH))["data"]
    results = []
    for claim in ("wrong", "right"):
        first = (await api.post(UPLOAD_INIT_PATH, form(BIG)))["data"]
        assert first["status"] == STATUS_SIGN_NEEDED
        value = range_sha1(BIG, first["sign_check"]) if claim == "right" else "1" * 40
        data = (
            await api.post(UPLOAD_INIT_PATH, form(BIG, sign_key=first["sign_key"], sign_val=value))
        )["data"]
        assert data["status"] == STATUS_UPLOAD  # 115 has no bytes to check the claim against
        headers = sign(
            token,
            "PUT",
            data["bucket"],
            data["object"],
            when=clock.utc(),
            headers={
                "Content-Type": "application/octet-stream",
                **callback_headers(data["callback"]),
            },
        )
        results.append(await send(session, base_url, "PUT", data["object"], headers, body=BIG))
    assert results[0][0] == 203
    assert b"<Code>CallbackFailed</Code>" in results[0][2]
    assert results[1][0] == 200
    assert json.loads(results[1][2])["data"]["sha1"] == sha1_hex(BIG)


async def test_without_the_unknown_file_check_a_new_big_file_goes_straight_to_oss(
    emu: Emulator115, api: Proapi
) -> None:
    emu.sign_check_unknown = False
    assert (await api.post(UPLOAD_INIT_PATH, form(BIG)))["data"]["status"] == STATUS_UPLOAD


@pytest.mark.parametrize("shape", ["object", "list"])
async def test_get_token_issues_expiring_credentials(
    emu: Emulator115, api: Proapi, clock: FakeClock, shape: str
) -> None:
    emu.token_shape = shape
    data = (await api.get(UPLOAD_TOKEN_PATH))["data"]
    token = data[0] if shape == "list" else data
    assert token["endpoint"] == OSS_ENDPOINT
    expires = datetime.fromtimestamp(clock.now + emu.oss_token_lifetime, UTC)
    assert token["Expiration"] == expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    issued = emu.secrets_issued()
    for name in ("AccessKeyId", "AccessKeySecret", "SecurityToken"):
        assert token[name] in issued


async def test_resume_gives_the_upload_again(emu: Emulator115, api: Proapi) -> None:
    data = (await api.post(UPLOAD_INIT_PATH, form(SMALL)))["data"]
    resumed = await api.post(
        UPLOAD_RESUME_PATH,
        {
            "file_size": len(SMALL),
            "target": "U_1_0",
            "fileid": sha1_hex(SMALL),
            "pick_code": data["pick_code"],
        },
    )
    assert resumed["state"] is True
    for key in ("pick_code", "target", "bucket", "object", "callback"):
        assert resumed["data"][key] == data[key]
    assert resumed["data"]["version"] == ""
    unknown = await api.post(UPLOAD_RESUME_PATH, {"pick_code": "nope"})
    assert (unknown["state"], unknown["code"]) == (False, CODE_NO_UPLOAD)


async def test_init_refuses_a_missing_folder_and_obeys_the_rate_limit(
    emu: Emulator115, api: Proapi
) -> None:
    missing = await api.post(UPLOAD_INIT_PATH, form(SMALL, cid="42"))
    assert (missing["state"], missing["code"]) == (False, CODE_FOLDER_MISSING)
    emu.inject(UPLOAD_TOKEN_PATH, f"code:{CODE_TOO_FREQUENT}")
    limited = await api.get(UPLOAD_TOKEN_PATH)
    assert (limited["state"], limited["code"]) == (False, CODE_TOO_FREQUENT)
    assert emu.oss_credentials == {}
