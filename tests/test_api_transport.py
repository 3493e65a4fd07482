"""api/transport.py against the loopback emulator: hosts, HTTP statuses, faults, timeouts and retries."""

from collections.abc import Awaitable
import socket

import aiohttp
import pytest

from custom_components.open115.api import (
    PASSPORT_URL,
    PROAPI_URL,
    QRCODE_URL,
    Open115AccessTokenError,
    Open115ApiError,
    Open115AuthError,
    Open115Client,
    Open115RateLimitError,
    Open115TransientError,
)

from .api_fixtures import START, FakeClock, bearer, emu_grant, fails
from .conftest import USER_ID
from .emulator import (
    FAULT_DROP_AFTER_ROTATE,
    FAULT_HANG,
    FAULT_HTML,
    FAULT_HTTP_429,
    FAULT_HTTP_500,
    FAULT_HTTP_502,
    FAULT_RESET,
    REFRESH_PATH,
    USER_INFO_PATH,
    Emulator115,
    Grant,
    LoggedRequest,
)

REFRESH = "Token refresh"
USER_INFO = "Reading the account"


grant = emu_grant


# ----- success and the base URL --------------------------------------------------------------


def test_default_hosts_and_override(session: aiohttp.ClientSession) -> None:
    default = Open115Client(session)
    assert (default.passport_url, default.qrcode_url, default.proapi_url) == (
        PASSPORT_URL,
        QRCODE_URL,
        PROAPI_URL,
    )
    assert PASSPORT_URL == "https://passportapi.115.com"
    assert QRCODE_URL == "https://qrcodeapi.115.com"
    assert PROAPI_URL == "https://proapi.115.com"
    override = Open115Client(session, base_url="http://127.0.0.1:8115/")
    assert (override.passport_url, override.qrcode_url, override.proapi_url) == (
        "http://127.0.0.1:8115",
    ) * 3


async def test_emulator_requests_pass_through_override(
    session: aiohttp.ClientSession, base_url: str, emu: Emulator115, grant: Grant
) -> None:
    """A trailing slash on the override still reaches the emulator's paths."""
    client = Open115Client(session, base_url=base_url + "/")
    pair = await client.refresh(grant.refresh_token)
    assert (await bearer(client, pair.access_token).user_info()).user_id == str(USER_ID)
    assert (emu.count(REFRESH_PATH), emu.count(USER_INFO_PATH)) == (1, 1)


# ----- faults ---------------------------------------------------------------------------------


def _reset_message(what: str) -> str:
    return f"{what} failed: cannot connect (ServerDisconnectedError)"


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (FAULT_HTTP_500, "{what} failed with HTTP 500"),
        (FAULT_HTTP_502, "{what} failed with HTTP 502"),
        (FAULT_HTTP_429, "{what} failed with HTTP 429"),
        (FAULT_HTML, "{what} failed: the answer is not JSON (HTTP 200)"),
        ("body:200:", "{what} failed: the answer is not JSON (HTTP 200)"),
        ("body:503:{}", "{what} failed with HTTP 503"),
        ("body:405:", "{what} failed with HTTP 405"),
        ("body:404:not found", "{what} failed: the answer is not JSON (HTTP 404)"),
        ("body:200:[]", "{what} failed: unexpected answer (HTTP 200)"),
        ('body:200:"ok"', "{what} failed: unexpected answer (HTTP 200)"),
        ("code:40140121", "{what} failed with code 40140121 (injected)"),
        ("code:40110000", "{what} failed with code 40110000 (injected)"),
        (FAULT_RESET, None),
    ],
)
@pytest.mark.parametrize("path", [REFRESH_PATH, USER_INFO_PATH])
async def test_transient_faults_keep_tokens(
    client: Open115Client,
    emu: Emulator115,
    grant: Grant,
    clock: FakeClock,
    fault: str,
    message: str | None,
    path: str,
) -> None:
    access = emu.issue_access_token(grant)
    token = grant.refresh_token
    # aiohttp retries an idempotent GET once after a disconnect, so a reset must happen twice.
    sent = 2 if (fault, path) == (FAULT_RESET, USER_INFO_PATH) else 1
    emu.inject(path, *[fault] * sent)
    call: Awaitable[object]
    if path == REFRESH_PATH:
        what, call = REFRESH, client.refresh(token)
    else:
        what, call = USER_INFO, bearer(client, access).user_info()
    # On proapi, HTTP 429 is its rate limit: back off (the tokens are kept all the same).
    limited = (fault, path) == (FAULT_HTTP_429, USER_INFO_PATH)
    err = await fails(Open115RateLimitError if limited else Open115TransientError, call, emu)
    if message is None:
        assert str(err) == _reset_message(what)
        assert isinstance(err.__cause__, aiohttp.ServerDisconnectedError)
    else:
        assert str(err) == message.format(what=what) + (" (rate limited)" if limited else "")
    assert err.code == (int(fault.removeprefix("code:")) if fault.startswith("code:") else None)
    assert emu.requests == [LoggedRequest(path, START, None, fault)] * sent
    # Nothing happened on the server side: both tokens still work.
    assert emu.live_refresh_token(grant) == token
    await bearer(client, access).user_info()
    if fault.startswith(("code:", "body:")):
        clock.advance(emu.min_refresh_interval)  # 115's own answer: the request counted
    await client.refresh(token)
    assert emu.count(path) == sent + 1
    assert emu.in_flight == 0


async def test_one_reset_is_retried_for_user_info_only(
    client: Open115Client, emu: Emulator115, grant: Grant
) -> None:
    """aiohttp resends a GET once after a reset; it never resends the refresh POST."""
    access = emu.issue_access_token(grant)
    emu.inject(USER_INFO_PATH, FAULT_RESET)
    assert (await bearer(client, access).user_info()).user_id == str(USER_ID)
    assert [r.fault for r in emu.requests] == [FAULT_RESET, None]
    emu.inject(REFRESH_PATH, FAULT_RESET)
    err = await fails(Open115TransientError, client.refresh(grant.refresh_token), emu)
    assert str(err) == _reset_message(REFRESH)
    assert emu.count(REFRESH_PATH) == 1


@pytest.mark.parametrize("path", [REFRESH_PATH, USER_INFO_PATH])
async def test_hanging_request_times_out(
    session: aiohttp.ClientSession,
    base_url: str,
    emu: Emulator115,
    grant: Grant,
    path: str,
) -> None:
    client = Open115Client(session, base_url=base_url, timeout=0.05)
    access = emu.issue_access_token(grant)
    token = grant.refresh_token
    emu.inject(path, FAULT_HANG)
    call: Awaitable[object]
    if path == REFRESH_PATH:
        what, call = REFRESH, client.refresh(token)
    else:
        what, call = USER_INFO, bearer(client, access).user_info()
    err = await fails(Open115TransientError, call, emu)
    assert str(err) == f"{what} timed out"
    assert isinstance(err.__cause__, TimeoutError)
    assert err.code is None
    assert emu.requests == [LoggedRequest(path, START, None, FAULT_HANG)]
    # The hung request never reached the refresh logic: the grant is untouched.
    assert emu.live_refresh_token(grant) == token


async def test_connection_refused(
    session: aiohttp.ClientSession, socket_enabled: None, emu: Emulator115
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = Open115Client(session, base_url=f"http://127.0.0.1:{port}")
    err = await fails(Open115TransientError, client.refresh("rt_not_sent"), emu, "rt_not_sent")
    assert str(err) == "Token refresh failed: cannot connect (ClientConnectorError)"
    err = await fails(
        Open115TransientError, bearer(client, "at_not_sent").user_info(), emu, "at_not_sent"
    )
    assert str(err) == "Reading the account failed: cannot connect (ClientConnectorError)"


async def test_rotate_then_drop_the_response(
    client: Open115Client, emu: Emulator115, grant: Grant, clock: FakeClock
) -> None:
    old = grant.refresh_token
    emu.inject(REFRESH_PATH, FAULT_DROP_AFTER_ROTATE)
    err = await fails(Open115TransientError, client.refresh(old), emu)
    assert str(err) == _reset_message(REFRESH)
    # The server rotated before the connection dropped: the old token is void, the new one
    # was never seen by the client.
    # Sent once, never resent (a resend would have answered 40140120 instead).
    assert emu.requests == [LoggedRequest(REFRESH_PATH, START, 0, FAULT_DROP_AFTER_ROTATE)]
    assert emu.live_refresh_token(grant) != old
    clock.advance(emu.min_refresh_interval)
    lost = await fails(Open115AuthError, client.refresh(old), emu)
    assert (lost.code, lost.reason) == (40140120, "used")


async def test_faults_are_queued_per_path_in_order(
    client: Open115Client, emu: Emulator115, grant: Grant
) -> None:
    token = grant.refresh_token
    emu.inject(REFRESH_PATH, FAULT_HTTP_500, FAULT_HTTP_502)
    access = emu.issue_access_token(grant)
    await bearer(client, access).user_info()  # a refresh fault does not touch /open/user/info
    first = await fails(Open115TransientError, client.refresh(token), emu)
    second = await fails(Open115TransientError, client.refresh(token), emu)
    assert (str(first), str(second)) == (
        "Token refresh failed with HTTP 500",
        "Token refresh failed with HTTP 502",
    )
    await client.refresh(token)
    assert [(r.path, r.code, r.fault) for r in emu.requests] == [
        (USER_INFO_PATH, 0, None),
        (REFRESH_PATH, None, FAULT_HTTP_500),
        (REFRESH_PATH, None, FAULT_HTTP_502),
        (REFRESH_PATH, 0, None),
    ]
    assert emu.faults[REFRESH_PATH] == []


def test_inject_refuses_unknown_faults(emu: Emulator115) -> None:
    with pytest.raises(ValueError, match="unknown fault slow"):
        emu.inject(REFRESH_PATH, "slow")
    assert emu.faults == {}


async def test_http_error_status_with_success_body(client: Open115Client, emu: Emulator115) -> None:
    emu.inject_body(REFRESH_PATH, {"state": 1, "data": {}}, status=403)
    err = await fails(Open115ApiError, client.refresh("rt_sent"), emu, "rt_sent")
    assert str(err) == "Token refresh failed with HTTP 403"
    assert err.code is None


async def test_http_error_status_with_error_body(client: Open115Client, emu: Emulator115) -> None:
    emu.inject_body(USER_INFO_PATH, {"state": False, "errno": 40140125, "error": "x"}, status=401)
    err = await fails(
        Open115AccessTokenError, bearer(client, "at_sent").user_info(), emu, "at_sent"
    )
    assert err.code == 40140125


async def test_echoed_tokens_never_reach_messages(client: Open115Client, emu: Emulator115) -> None:
    """Even a server that quotes the sent token in its message cannot leak it through us."""
    emu.inject_body(
        REFRESH_PATH, {"state": 0, "code": 40140120, "message": "token rt_sent_value is used"}
    )
    err = await fails(Open115AuthError, client.refresh("rt_sent_value"), emu, "rt_sent_value")
    assert str(err) == "Token refresh failed with code 40140120 (token *** is used)"
    emu.inject_body(USER_INFO_PATH, {"state": False, "errno": 40140125, "error": "at_sent_value"})
    err2 = await fails(
        Open115AccessTokenError, bearer(client, "at_sent_value").user_info(), emu, "at_sent_value"
    )
    assert str(err2) == "Reading the account failed with code 40140125 (***)"
