"""Fixtures for the API client tests: a fake clock the client and the emulator share.

Loaded for every test through `pytest_plugins` in conftest.py; the names (`clock`, `emu`,
`base_url`, `session`, `client`) are used only by the API client tests; `bearer(client, token)`
is that client sending one fixed access token.
"""

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from custom_components.open115.api import Open115Client, Open115Error, StaticAccessToken

from .conftest import USER_ID, USER_NAME
from .emulator import Emulator115, Grant, RunningEmulator

START = 1_767_225_600.0  # 2026-01-01T00:00:00Z


class FakeClock:
    """A clock the emulator and the client share; only tests move it."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def utc(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)


def chain_text(err: BaseException) -> str:
    """The text of an error and of everything chained to it (to scan for secrets)."""
    texts: list[str] = []
    cur: BaseException | None = err
    while cur is not None:
        texts += [str(cur), repr(cur), repr(cur.args)]
        cur = cur.__cause__ or cur.__context__
    return "\n".join(texts)


async def fails[E: Open115Error](
    kind: type[E],
    call: Awaitable[Any],
    emu: Emulator115,
    *extra: str,
    some_secret: bool = True,
) -> E:
    """Await `call`, expecting exactly `kind`, with no token (nor `extra`) in its text.

    `some_secret`: the emulator has issued a token or `extra` names one, to look for.
    """
    with pytest.raises(Open115Error) as info:
        await call
    err = info.value
    assert type(err) is kind
    blob = chain_text(err)
    secrets = emu.secrets_issued() | set(extra)
    if some_secret:
        assert secrets
    for secret in secrets:
        assert secret not in blob
    return err


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emu(clock: FakeClock) -> Emulator115:
    emulator = Emulator115(clock=clock)
    emulator.add_account(USER_ID, USER_NAME)
    return emulator


@pytest.fixture
async def base_url(emu: Emulator115, socket_enabled: None) -> AsyncIterator[str]:
    running = await RunningEmulator(emu).start()
    yield running.base_url
    await running.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
def client(session: aiohttp.ClientSession, base_url: str, clock: FakeClock) -> Open115Client:
    return Open115Client(session, base_url=base_url, clock=clock.utc)


def bearer(client: Open115Client, access_token: str) -> Open115Client:
    """`client` (its session, hosts, clock and timeout) sending `access_token` to the Open API."""
    return Open115Client(
        client._session,
        base_url=client.proapi_url,
        clock=client._clock,
        timeout=client._timeout,
        auth=StaticAccessToken(access_token),
    )


@pytest.fixture
def drive_api(client: Open115Client, emu: Emulator115) -> Open115Client:
    """`client` with a live (2 h) access token of USER_ID: the drive and upload tests' `api`
    (`api = drive_api`)."""
    return bearer(client, emu.issue_access_token(emu.authorize(USER_ID), 7200))


def opener(*readings: bytes) -> Callable[[], Awaitable[AsyncIterator[bytes]]]:
    """An upload's `open_stream` giving each reading in turn (the last one from then on)."""
    left = list(readings)

    async def open_stream() -> AsyncIterator[bytes]:
        data = left.pop(0) if len(left) > 1 else left[0]

        async def chunks() -> AsyncIterator[bytes]:
            yield data

        return chunks()

    return open_stream


@pytest.fixture
def emu_grant(emu: Emulator115) -> Grant:
    """An authorization of USER_ID on `emu`: the API tests' `grant` (`grant = emu_grant`)."""
    return emu.authorize(USER_ID)


@pytest.fixture
def emu_access(emu: Emulator115, grant: Grant) -> str:
    """An access token of the module's `grant` on `emu` (`access = emu_access`)."""
    return emu.issue_access_token(grant)


def utc_at(seconds: float) -> datetime:
    """A POSIX time, whole seconds, as an aware UTC datetime (as the client parses 115's)."""
    return datetime.fromtimestamp(int(seconds), UTC)
