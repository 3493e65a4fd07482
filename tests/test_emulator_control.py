"""tests/emulator/control.py: the routes that make 115 refuse a token (scripts/develop prints
them), so that re-authentication can be tried by hand."""

from collections.abc import AsyncIterator

import aiohttp
import pytest

from custom_components.open115.api import Open115AuthError, Open115Client

from .api_fixtures import FakeClock
from .emulator import RunningEmulator
from .emulator.control import DEMO_USER_ID, ControlledEmulator115

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
