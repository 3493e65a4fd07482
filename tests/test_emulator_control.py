"""tests/emulator/control.py, the standalone emulator's control API: the routes that make 115
refuse a token (so re-authentication can be tried by hand), the drive's, uploads' and OSS's
switches and faults, and the drive surviving a restart with a state file (scripts/develop)."""

from collections.abc import AsyncIterator
import pathlib

import aiohttp
import pytest

from custom_components.open115.api import Open115AuthError, Open115Client

from .api_fixtures import FakeClock
from .conftest import USER_ID
from .emulator import (
    FILES_PATH,
    UPLOAD_INIT_PATH,
    UPLOAD_TOKEN_PATH,
    RunningEmulator,
    sha1_hex,
)
from .emulator.control import CONTROL_PREFIX, DEMO_USER_ID, ControlledEmulator115
from .emulator_requests import Proapi, callback_headers, send, sign

OTHER_USER = 320000002


@pytest.fixture
async def control(
    clock: FakeClock, socket_enabled: None
) -> AsyncIterator[tuple[ControlledEmulator115, str]]:
    emulator = ControlledEmulator115(clock=clock)
    emulator.add_account(DEMO_USER_ID, "115 demo")
    emulator.add_account(OTHER_USER, "second demo")
    running = await RunningEmulator(emulator).start()
    yield emulator, running.base_url
    await running.stop()


@pytest.mark.parametrize(
    ("action", "code", "reason"),
    [
        ("revoke", 40140116, "revoked"),
        ("dead", 40140137, "dead"),
        ("app_lost", 40140110, "app_expired"),
    ],
)
async def test_refuse_routes_make_115_refuse_the_demo_accounts_tokens(
    control: tuple[ControlledEmulator115, str],
    session: aiohttp.ClientSession,
    clock: FakeClock,
    action: str,
    code: int,
    reason: str,
) -> None:
    emulator, base_url = control
    first, second = emulator.authorize(DEMO_USER_ID), emulator.authorize(DEMO_USER_ID)
    other = emulator.authorize(OTHER_USER)
    reply = await session.post(f"{base_url}/_emulator/token/{action}")
    assert reply.status == 200
    assert await reply.json() == {"grants": [first.grant_id, second.grant_id], "code": code}
    client = Open115Client(session, base_url=base_url, clock=clock.utc)
    for grant in (first, second):
        with pytest.raises(Open115AuthError) as info:
            await client.refresh(grant.refresh_token)
        assert (info.value.code, info.value.reason) == (code, reason)
    # Another account's authorization lives on.
    assert (await client.refresh(other.refresh_token)).refresh_token


async def test_refuse_one_grant(
    control: tuple[ControlledEmulator115, str], session: aiohttp.ClientSession
) -> None:
    emulator, base_url = control
    first, second = emulator.authorize(DEMO_USER_ID), emulator.authorize(DEMO_USER_ID)
    reply = await session.post(
        f"{base_url}/_emulator/token/dead", json={"grant_id": second.grant_id}
    )
    assert await reply.json() == {"grants": [second.grant_id], "code": 40140137}
    assert (first.alive, second.alive, second.dead_code) == (True, False, 40140137)
    reply = await session.post(f"{base_url}/_emulator/token/revoke", json={"grant_id": 999})
    assert reply.status == 404


@pytest.fixture
def controlled(clock: FakeClock, tmp_path: pathlib.Path) -> ControlledEmulator115:
    emu = ControlledEmulator115(clock=clock)
    emu.state_file = str(tmp_path / "state.json")
    emu.blob_dir = tmp_path / "state.blobs"
    emu.blob_dir.mkdir()
    emu.add_account(USER_ID, "emu_user")
    return emu


@pytest.fixture
async def url(controlled: ControlledEmulator115, socket_enabled: None) -> AsyncIterator[str]:
    running = await RunningEmulator(controlled).start()
    yield running.base_url
    await running.stop()


async def post_control(session: aiohttp.ClientSession, url: str, what: str, body: object) -> dict:
    async with session.post(f"{url}{CONTROL_PREFIX}/{what}", json=body) as response:
        return {"status": response.status, **(await response.json())}


async def test_control_switches_and_faults(
    session: aiohttp.ClientSession, url: str, controlled: ControlledEmulator115
) -> None:
    api = Proapi(session, url, controlled, controlled.authorize(USER_ID))
    answer = await post_control(session, url, "drive", {"token_shape": "list", "listing_delay": 5})
    assert (answer["token_shape"], answer["listing_delay"]) == ("list", 5.0)
    assert (await post_control(session, url, "drive", {"nope": 1}))["status"] == 400
    assert isinstance((await api.get(UPLOAD_TOKEN_PATH))["data"], list)
    await post_control(session, url, "inject", {"path": FILES_PATH, "faults": ["code:406"]})
    assert (await api.get(FILES_PATH, cid=0))["code"] == 406
    bad = await post_control(session, url, "inject", {"path": FILES_PATH, "faults": ["nope"]})
    assert bad["status"] == 400
    answer = await post_control(session, url, "oss", {"faults": ["callback_failed", "drop_part"]})
    assert answer["queued"] == ["callback_failed", "drop_part"]
    assert (await post_control(session, url, "oss", {"faults": ["nope"]}))["status"] == 400
    assert (await post_control(session, url, "download", {"cut_after": 10}))["cuts"] == [10]
    async with session.get(f"{url}{CONTROL_PREFIX}/state") as response:
        state = await response.json()
    assert state["oss_faults"] == ["callback_failed", "drop_part"]
    assert state["drive_settings"]["token_shape"] == "list"
    assert state["counts"][FILES_PATH] == 1


async def test_the_drive_survives_a_restart(
    session: aiohttp.ClientSession,
    url: str,
    controlled: ControlledEmulator115,
    clock: FakeClock,
) -> None:
    api = Proapi(session, url, controlled, controlled.authorize(USER_ID))
    data = b"backup bytes" * 1000
    init = await api.post(
        UPLOAD_INIT_PATH,
        {
            "file_name": "a.tar",
            "file_size": len(data),
            "target": "U_1_0",
            "fileid": sha1_hex(data),
        },
    )
    token = (await api.get(UPLOAD_TOKEN_PATH))["data"]
    up = init["data"]
    headers = sign(
        token,
        "PUT",
        up["bucket"],
        up["object"],
        when=clock.utc(),
        headers={"Content-Type": "application/octet-stream", **callback_headers(up["callback"])},
    )
    status, _, _ = await send(session, url, "PUT", up["object"], headers, body=data)
    assert status == 200
    controlled.save()
    again = ControlledEmulator115(clock=clock)
    again.state_file = controlled.state_file
    assert again.load()
    (node,) = again.nodes.values()
    assert (node.name, node.sha1) == ("a.tar", sha1_hex(data))
    assert again.read_bytes(node) == data
    assert again.add_folder(USER_ID, "0", "x").file_id > node.file_id
