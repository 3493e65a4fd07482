"""The emulator's bookkeeping, which the coordinator's tests rely on: counters, the request log, requests in flight, secrets issued."""

import asyncio

import aiohttp

from custom_components.open115.api import (
    Open115AuthError,
    Open115Client,
    Open115TransientError,
)

from .api_fixtures import START, FakeClock, bearer, emu_grant, fails
from .emulator import (
    FAULT_HANG,
    REFRESH_PATH,
    USER_INFO_PATH,
    Emulator115,
    Grant,
    LoggedRequest,
)

grant = emu_grant


# ----- the emulator's bookkeeping, which the coordinator's tests rely on ----------------------


async def test_counters_and_request_log(
    client: Open115Client, emu: Emulator115, grant: Grant, clock: FakeClock
) -> None:
    assert (emu.count(REFRESH_PATH), emu.count(USER_INFO_PATH), emu.requests) == (0, 0, [])
    old = grant.refresh_token
    pair = await client.refresh(old)
    clock.advance(10)
    await bearer(client, pair.access_token).user_info()
    await fails(Open115AuthError, client.refresh(old), emu)
    assert (emu.count(REFRESH_PATH), emu.count(USER_INFO_PATH)) == (2, 1)
    assert emu.requests == [
        LoggedRequest(REFRESH_PATH, START, 0),
        LoggedRequest(USER_INFO_PATH, START + 10, 0),
        LoggedRequest(REFRESH_PATH, START + 10, 40140120),
    ]
    assert (emu.in_flight, emu.max_in_flight) == (0, 1)


async def test_in_flight_and_max_in_flight(
    session: aiohttp.ClientSession, base_url: str, emu: Emulator115, grant: Grant
) -> None:
    client = Open115Client(session, base_url=base_url, timeout=30)
    emu.inject(REFRESH_PATH, FAULT_HANG, FAULT_HANG)
    tasks = [asyncio.create_task(client.refresh(grant.refresh_token)) for _ in range(2)]
    async with asyncio.timeout(10):
        while emu.in_flight < 2:  # noqa: ASYNC110 - the emulator has no arrival event
            await asyncio.sleep(0.01)
    assert emu.max_in_flight == 2
    emu.release()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [str(r) for r in results] == ["Token refresh failed with HTTP 503"] * 2
    assert all(type(r) is Open115TransientError for r in results)
    assert (emu.in_flight, emu.max_in_flight, emu.count(REFRESH_PATH)) == (0, 2, 2)


async def test_secrets_issued(
    client: Open115Client, emu: Emulator115, grant: Grant, clock: FakeClock
) -> None:
    first = grant.refresh_token
    assert emu.secrets_issued() == {first}
    seeded = emu.issue_access_token(grant)
    pair = await client.refresh(first)
    clock.advance(emu.min_refresh_interval)
    elsewhere = emu.rotate_elsewhere(grant)
    assert emu.secrets_issued() == {
        first,
        seeded,
        pair.access_token,
        pair.refresh_token,
        elsewhere,
    }
    # Killing a grant drops its access tokens from the live table but not from the secrets.
    emu.revoke(grant)
    assert emu.access_tokens == {}
    assert emu.secrets_issued() == {first, seeded, pair.access_token, pair.refresh_token, elsewhere}
