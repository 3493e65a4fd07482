"""The standalone emulator's control API for the drive, uploads and OSS (tests/emulator/control.py),
and the drive surviving a restart with a state file (scripts/develop)."""

from collections.abc import AsyncIterator
import pathlib

import aiohttp
import pytest

from .api_fixtures import FakeClock
from .conftest import USER_ID
from .emulator import (
    FILES_PATH,
    UPLOAD_INIT_PATH,
    UPLOAD_TOKEN_PATH,
    RunningEmulator,
    sha1_hex,
)
from .emulator.control import CONTROL_PREFIX, ControlledEmulator115
from .emulator_requests import Proapi, callback_headers, send, sign


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


async def control(session: aiohttp.ClientSession, url: str, what: str, body: object) -> dict:
    async with session.post(f"{url}{CONTROL_PREFIX}/{what}", json=body) as response:
        return {"status": response.status, **(await response.json())}


async def test_control_switches_and_faults(
    session: aiohttp.ClientSession, url: str, controlled: ControlledEmulator115
) -> None:
    api = Proapi(session, url, controlled, controlled.authorize(USER_ID))
    answer = await control(session, url, "drive", {"token_shape": "list", "listing_delay": 5})
    assert (answer["token_shape"], answer["listing_delay"]) == ("list", 5.0)
    assert (await control(session, url, "drive", {"nope": 1}))["status"] == 400
    assert isinstance((await api.get(UPLOAD_TOKEN_PATH))["data"], list)
    await control(session, url, "inject", {"path": FILES_PATH, "faults": ["code:406"]})
    assert (await api.get(FILES_PATH, cid=0))["code"] == 406
    bad = await control(session, url, "inject", {"path": FILES_PATH, "faults": ["nope"]})
    assert bad["status"] == 400
    answer = await control(session, url, "oss", {"faults": ["callback_failed", "drop_part"]})
    assert answer["queued"] == ["callback_failed", "drop_part"]
    assert (await control(session, url, "oss", {"faults": ["nope"]}))["status"] == 400
    assert (await control(session, url, "download", {"cut_after": 10}))["cuts"] == [10]
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
