"""The 115 API client against the loopback emulator: every error class, parse variant and fault."""

import asyncio
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
import socket
from typing import Any

import aiohttp
from freezegun.api import FrozenDateTimeFactory
import pytest

from custom_components.open115.api import (
    PASSPORT_URL,
    PROAPI_URL,
    QRCODE_URL,
    Account,
    Open115AccessTokenError,
    Open115ApiError,
    Open115AuthError,
    Open115Client,
    Open115Error,
    Open115RateLimitError,
    Open115TransientError,
    Open115UnexplainedError,
    TokenPair,
)

from .api_fixtures import START, FakeClock, bearer, fails
from .conftest import USER_ID, USER_NAME
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
    YEAR,
    Emulator115,
    Grant,
    LoggedRequest,
)

TIB = 1024**4
GIB = 1024**3
REFRESH = "Token refresh"
USER_INFO = "Reading the account"


@pytest.fixture
def grant(emu: Emulator115) -> Grant:
    return emu.authorize(USER_ID)


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


async def test_refresh_rotates_and_user_info(
    client: Open115Client, emu: Emulator115, grant: Grant, clock: FakeClock
) -> None:
    old = grant.refresh_token
    pair = await client.refresh(old)
    assert pair.refresh_token == emu.live_refresh_token(grant)
    assert pair.refresh_token != old
    assert pair.access_token in emu.access_tokens
    assert pair.expires_in == 7200
    assert pair.received_at == clock.utc()
    assert pair.expires_at == clock.utc() + timedelta(seconds=7200)
    assert emu.requests == [LoggedRequest(REFRESH_PATH, START, 0)]

    account = await bearer(client, pair.access_token).user_info()
    assert account == Account(
        user_id=str(USER_ID),
        user_name=USER_NAME,
        space_total=2 * TIB,
        space_used=512 * GIB,
        space_remain=2 * TIB - 512 * GIB,
        vip_level="VIP",
        vip_expire=datetime.fromtimestamp(int(START) + YEAR, UTC),
    )
    assert emu.count(USER_INFO_PATH) == 1
    assert emu.requests[-1] == LoggedRequest(USER_INFO_PATH, START, 0)


async def test_emulator_requests_pass_through_override(
    session: aiohttp.ClientSession, base_url: str, emu: Emulator115, grant: Grant
) -> None:
    """A trailing slash on the override still reaches the emulator's paths."""
    client = Open115Client(session, base_url=base_url + "/")
    pair = await client.refresh(grant.refresh_token)
    assert (await bearer(client, pair.access_token).user_info()).user_id == str(USER_ID)
    assert (emu.count(REFRESH_PATH), emu.count(USER_INFO_PATH)) == (1, 1)


def test_token_pair_repr_hides_tokens() -> None:
    pair = TokenPair(
        access_token="at_secret_value",
        refresh_token="rt_secret_value",
        expires_in=7200,
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    for text in (repr(pair), str(pair)):
        assert "secret_value" not in text
        assert "expires_in=7200" in text
    assert pair.expires_at == datetime(2026, 1, 1, 2, tzinfo=UTC)


# ----- the emulator's refresh-token rules -----------------------------------------------------


async def test_used_refresh_token_answers_40140120(
    client: Open115Client, emu: Emulator115, grant: Grant, clock: FakeClock
) -> None:
    old = grant.refresh_token
    pair = await client.refresh(old)
    clock.advance(emu.min_refresh_interval)
    err = await fails(Open115AuthError, client.refresh(old), emu)
    assert (err.code, err.reason) == (40140120, "used")
    assert str(err) == "Token refresh failed with code 40140120 (refresh token error)"
    # The rotated token still works: a failed use of the old one does not kill the grant.
    clock.advance(emu.min_refresh_interval)
    second = await client.refresh(pair.refresh_token)
    assert second.refresh_token == emu.live_refresh_token(grant)


async def test_rotated_elsewhere(
    client: Open115Client, emu: Emulator115, grant: Grant, clock: FakeClock
) -> None:
    ours = grant.refresh_token
    theirs = emu.rotate_elsewhere(grant)
    err = await fails(Open115AuthError, client.refresh(ours), emu)
    assert (err.code, err.reason) == (40140120, "used")
    clock.advance(emu.min_refresh_interval)  # our refused request counted for the window
    assert (await client.refresh(theirs)).refresh_token == emu.live_refresh_token(grant)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("", "refresh_token invalid (empty)"),
        ("rt_never_issued", "refresh token format error"),
    ],
)
async def test_unknown_or_empty_refresh_token(
    client: Open115Client, emu: Emulator115, grant: Grant, token: str, message: str
) -> None:
    err = await fails(Open115AuthError, client.refresh(token), emu)
    assert (err.code, err.reason) == (40140114, "malformed")
    assert str(err) == f"Token refresh failed with code 40140114 ({message})"


async def test_revoked_authorization(client: Open115Client, emu: Emulator115, grant: Grant) -> None:
    access = emu.issue_access_token(grant)
    assert (await bearer(client, access).user_info()).user_id == str(USER_ID)
    emu.revoke(grant)
    err = await fails(Open115AuthError, client.refresh(grant.refresh_token), emu)
    assert (err.code, err.reason) == (40140116, "revoked")
    assert str(err) == "Token refresh failed with code 40140116 (refresh token invalid)"
    # The revoked grant's access tokens are gone too.
    gone = await fails(Open115AccessTokenError, bearer(client, access).user_info(), emu)
    assert gone.code == 40140123


async def test_one_year_limit_is_not_extended_by_refreshing(
    client: Open115Client, emu: Emulator115, grant: Grant, clock: FakeClock
) -> None:
    clock.advance(YEAR - 60)
    pair = await client.refresh(grant.refresh_token)
    assert pair.received_at == datetime.fromtimestamp(START + YEAR - 60, UTC)
    clock.advance(60)
    err = await fails(Open115AuthError, client.refresh(pair.refresh_token), emu)
    assert (err.code, err.reason) == (40140119, "expired")
    assert str(err) == "Token refresh failed with code 40140119 (refresh token expired)"
    # A fresh authorization starts a new year.
    renewed = emu.authorize(USER_ID)
    assert renewed.refresh_expires_at == clock.now + YEAR
    await client.refresh(renewed.refresh_token)


async def test_third_authorization_kills_the_oldest(
    client: Open115Client, emu: Emulator115, grant: Grant, clock: FakeClock
) -> None:
    clock.advance(1)
    second = emu.authorize(USER_ID)
    clock.advance(1)
    third = emu.authorize(USER_ID)
    assert [g.alive for g in (grant, second, third)] == [False, True, True]
    err = await fails(Open115AuthError, client.refresh(grant.refresh_token), emu)
    assert (err.code, err.reason) == (40140116, "revoked")
    await client.refresh(second.refresh_token)
    clock.advance(emu.min_refresh_interval)
    await client.refresh(third.refresh_token)
    # Another app of the same account does not count against this app's limit.
    other_app = emu.authorize(USER_ID, app_id="100195999")
    assert (second.alive, third.alive, other_app.alive) == (True, True, True)


async def test_authorization_limit_is_configurable(client: Open115Client, emu: Emulator115) -> None:
    emu.max_grants_per_app = 3
    grants = [emu.authorize(USER_ID, at=START + i) for i in range(4)]
    assert [g.alive for g in grants] == [False, True, True, True]
    err = await fails(Open115AuthError, client.refresh(grants[0].refresh_token), emu)
    assert err.code == 40140116


async def test_frequency_control(
    client: Open115Client, emu: Emulator115, grant: Grant, clock: FakeClock
) -> None:
    pair = await client.refresh(grant.refresh_token)
    clock.advance(emu.min_refresh_interval - 1)
    err = await fails(Open115RateLimitError, client.refresh(pair.refresh_token), emu)
    assert err.code == 40140117
    assert str(err) == "Token refresh failed with code 40140117 (refresh frequently)"
    # Frequency control is per authorization (the 2026 document): another authorization of
    # the same account is not limited.
    sibling = emu.authorize(USER_ID)
    await client.refresh(sibling.refresh_token)
    # A refused refresh rotates nothing and does not extend the window: the same token works
    # once the interval since the last answered request has passed.
    assert emu.live_refresh_token(grant) == pair.refresh_token
    clock.advance(1)
    await client.refresh(pair.refresh_token)
    assert [r.code for r in emu.requests] == [0, 40140117, 0, 0]
    # Every request 115 answers counts, refused ones included: a retry right after a refused
    # (used) token is limited too.
    clock.advance(emu.min_refresh_interval)
    await fails(Open115AuthError, client.refresh(pair.refresh_token), emu)
    await fails(Open115RateLimitError, client.refresh(emu.live_refresh_token(grant)), emu)


async def test_concurrent_refreshes_of_one_token_knock_each_other_out(
    client: Open115Client, emu: Emulator115, grant: Grant
) -> None:
    results = await asyncio.gather(
        client.refresh(grant.refresh_token),
        client.refresh(grant.refresh_token),
        return_exceptions=True,
    )
    pairs = [r for r in results if isinstance(r, TokenPair)]
    errors = [r for r in results if isinstance(r, Open115AuthError)]
    assert len(pairs) == 1
    assert [(e.code, e.reason) for e in errors] == [(40140120, "used")]
    assert pairs[0].refresh_token == emu.live_refresh_token(grant)
    assert (emu.in_flight, emu.count(REFRESH_PATH)) == (0, 2)


# ----- access tokens on /open/user/info -------------------------------------------------------


async def test_access_token_expiry(
    client: Open115Client, emu: Emulator115, grant: Grant, clock: FakeClock
) -> None:
    pair = await client.refresh(grant.refresh_token)
    clock.advance(pair.expires_in - 1)
    assert (await bearer(client, pair.access_token).user_info()).user_name == USER_NAME
    clock.advance(1)
    err = await fails(Open115AccessTokenError, bearer(client, pair.access_token).user_info(), emu)
    assert err.code == 40140125
    assert str(err) == "Reading the account failed with code 40140125 (access_token invalid)"
    assert emu.requests[-1] == LoggedRequest(USER_INFO_PATH, clock.now, 40140125)


async def test_issued_access_token_lifetime(
    client: Open115Client, emu: Emulator115, grant: Grant, clock: FakeClock
) -> None:
    access = emu.issue_access_token(grant, 100)
    clock.advance(99)
    await bearer(client, access).user_info()
    clock.advance(1)
    err = await fails(Open115AccessTokenError, bearer(client, access).user_info(), emu)
    assert err.code == 40140125


@pytest.mark.parametrize("header_token", ["", "at_never_issued"])
async def test_unknown_access_token(
    client: Open115Client, emu: Emulator115, grant: Grant, header_token: str
) -> None:
    err = await fails(Open115AccessTokenError, bearer(client, header_token).user_info(), emu)
    assert err.code == 40140123
    assert str(err) == "Reading the account failed with code 40140123 (access_token format error)"


async def test_expiry_follows_home_assistant_frozen_clock(
    emulator: Emulator115,
    emulator_url: str,
    freezer: FrozenDateTimeFactory,
    session: aiohttp.ClientSession,
) -> None:
    """The shared `emulator` fixture runs on Home Assistant's clock, as the coordinator's tests need."""
    client = Open115Client(session, base_url=emulator_url)
    access = emulator.issue_access_token(emulator.authorize(USER_ID))
    freezer.tick(timedelta(seconds=emulator.expires_in - 1))
    await bearer(client, access).user_info()
    freezer.tick(timedelta(seconds=1))
    err = await fails(Open115AccessTokenError, bearer(client, access).user_info(), emulator)
    assert err.code == 40140125


# ----- error codes, injected ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (40140114, "malformed"),
        (40140115, "bad_signature"),
        (40140116, "revoked"),
        (40140119, "expired"),
        (40140120, "used"),
    ],
)
async def test_reauth_codes(
    client: Open115Client, emu: Emulator115, grant: Grant, code: int, reason: str
) -> None:
    emu.inject(REFRESH_PATH, f"code:{code}")
    err = await fails(Open115AuthError, client.refresh(grant.refresh_token), emu)
    assert (err.code, err.reason) == (code, reason)
    assert str(err) == f"Token refresh failed with code {code} (injected)"


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (40140117, Open115RateLimitError),
        (40140121, Open115TransientError),
        (40110000, Open115TransientError),
        (40140118, Open115ApiError),
        (40140122, Open115ApiError),
        (40140100, Open115ApiError),
        (40140136, Open115ApiError),
        (12345, Open115ApiError),
    ],
)
async def test_other_refresh_codes(
    client: Open115Client,
    emu: Emulator115,
    grant: Grant,
    clock: FakeClock,
    code: int,
    kind: type[Open115Error],
) -> None:
    token = grant.refresh_token
    emu.inject(REFRESH_PATH, f"code:{code}")
    err = await fails(kind, client.refresh(token), emu)
    assert err.code == code
    assert str(err) == f"Token refresh failed with code {code} (injected)"
    # The injected answer did nothing to the grant: the same token still refreshes.
    assert emu.live_refresh_token(grant) == token
    clock.advance(emu.min_refresh_interval)  # 115 answered: the request counted
    await client.refresh(token)


@pytest.mark.parametrize("code", [40140123, 40140124, 40140125, 40140126])
async def test_access_token_codes(
    client: Open115Client, emu: Emulator115, grant: Grant, code: int
) -> None:
    access = emu.issue_access_token(grant)
    emu.inject(USER_INFO_PATH, f"code:{code}")
    err = await fails(Open115AccessTokenError, bearer(client, access).user_info(), emu)
    assert err.code == code
    assert str(err) == f"Reading the account failed with code {code} (injected)"


async def test_access_token_code_on_refresh_is_not_reauth(
    client: Open115Client, emu: Emulator115, grant: Grant
) -> None:
    emu.inject(REFRESH_PATH, "code:40140125")
    err = await fails(Open115AccessTokenError, client.refresh(grant.refresh_token), emu)
    assert err.code == 40140125


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


# ----- parse variants -------------------------------------------------------------------------

_PAIR = {"access_token": "at_injected", "refresh_token": "rt_injected"}


@pytest.mark.parametrize(
    "body",
    [
        {"state": 1, "code": 0, "message": "", "data": {**_PAIR, "expires_in": 7200}},
        {"state": True, "data": {**_PAIR, "expires_in": 7200}},
        {"state": "1", "data": {**_PAIR, "expires_in": "7200"}},
        {"code": 0, "data": {**_PAIR, "expires_in": " 7200 "}},
        {"errno": 0, "error": "", "data": {**_PAIR, "expires_in": 7200.0}},
        {"data": {**_PAIR, "expires_in": 7200}},
    ],
)
async def test_refresh_success_variants(
    client: Open115Client, emu: Emulator115, body: dict[str, Any], clock: FakeClock
) -> None:
    emu.inject_body(REFRESH_PATH, body)
    pair = await client.refresh("rt_sent")
    assert pair == TokenPair("at_injected", "rt_injected", 7200, clock.utc())


@pytest.mark.parametrize(
    ("body", "kind", "code", "message"),
    [
        ({"state": 0, "code": 40140120, "message": "used"}, Open115AuthError, 40140120, "used"),
        ({"state": False, "errno": 40140120, "error": "x"}, Open115AuthError, 40140120, "x"),
        (
            {"state": 0, "code": 0, "errno": 40140116, "message": "", "error": "gone"},
            Open115AuthError,
            40140116,
            "gone",
        ),
        ({"state": "0", "code": "40140119", "message": " old "}, Open115AuthError, 40140119, "old"),
        ({"code": 40140117, "message": "slow down"}, Open115RateLimitError, 40140117, "slow down"),
        ({"errno": 40110000}, Open115TransientError, 40110000, None),
        ({"state": 0, "code": 40140118, "message": 7}, Open115ApiError, 40140118, None),
        ({"state": False, "code": 40140118, "message": "   "}, Open115ApiError, 40140118, None),
    ],
)
async def test_refresh_error_variants(
    client: Open115Client,
    emu: Emulator115,
    body: dict[str, Any],
    kind: type[Open115Error],
    code: int,
    message: str | None,
) -> None:
    emu.inject_body(REFRESH_PATH, body)
    err = await fails(kind, client.refresh("rt_sent"), emu, "rt_sent")
    assert err.code == code
    suffix = f" ({message})" if message else ""
    assert str(err) == f"Token refresh failed with code {code}{suffix}"


@pytest.mark.parametrize("body", [{"state": 0}, {"state": False, "message": "bad"}])
async def test_refresh_error_without_code(
    client: Open115Client, emu: Emulator115, body: dict[str, Any]
) -> None:
    emu.inject_body(REFRESH_PATH, body)
    err = await fails(Open115UnexplainedError, client.refresh("rt_sent"), emu, "rt_sent")
    assert err.code is None
    suffix = f" ({body['message']})" if "message" in body else ""
    assert str(err) == f"Token refresh failed without an error code{suffix}"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "no data in the answer"),
        ([], "no data in the answer"),
        ("x", "no data in the answer"),
        ({"expires_in": 7200}, "the answer holds no token"),
        ({"access_token": "", "refresh_token": 5, "expires_in": 7200}, "the answer holds no token"),
    ],
)
async def test_refresh_answers_without_any_token_are_transient(
    client: Open115Client, emu: Emulator115, data: Any, message: str
) -> None:
    body: dict[str, Any] = {"state": 1, "code": 0, "message": ""}
    if data is not None:
        body["data"] = data
    emu.inject_body(REFRESH_PATH, body)
    err = await fails(Open115TransientError, client.refresh("rt_sent"), emu, "rt_sent")
    assert str(err) == f"Token refresh failed: {message}"


@pytest.mark.parametrize(
    ("data", "access", "refresh", "expires_in"),
    [
        # Every field is "not required" (115's document): a new refresh token is never dropped.
        ({"refresh_token": "rt_x", "expires_in": 7200}, "", "rt_x", 0),
        ({**_PAIR, "access_token": "", "expires_in": 7200}, "", "rt_injected", 0),
        ({**_PAIR, "refresh_token": 5, "expires_in": 7200}, "at_injected", "rt_sent", 7200),
        (_PAIR, "at_injected", "rt_injected", 0),
        ({**_PAIR, "expires_in": 0}, "at_injected", "rt_injected", 0),
        ({**_PAIR, "expires_in": -5}, "at_injected", "rt_injected", 0),
        ({**_PAIR, "expires_in": "soon"}, "at_injected", "rt_injected", 0),
        ({**_PAIR, "expires_in": 7200.5}, "at_injected", "rt_injected", 7200),
        ({**_PAIR, "expires_in": "7200"}, "at_injected", "rt_injected", 7200),
        ({**_PAIR, "expires_in": 1e300}, "at_injected", "rt_injected", 365 * 86400),
        ({**_PAIR, "expires_in": True}, "at_injected", "rt_injected", 0),
        ({**_PAIR, "expires_in": None}, "at_injected", "rt_injected", 0),
    ],
)
async def test_refresh_malformed_success_keeps_what_arrived(
    client: Open115Client,
    emu: Emulator115,
    data: Any,
    access: str,
    refresh: str,
    expires_in: int,
) -> None:
    """Issue 17, point 2: the pair is incomplete (due now) instead of an error."""
    emu.inject_body(REFRESH_PATH, {"state": 1, "code": 0, "message": "", "data": data})
    pair = await client.refresh("rt_sent")
    assert (pair.access_token, pair.refresh_token, pair.expires_in) == (access, refresh, expires_in)
    assert pair.complete is (expires_in > 0)


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


def _info(data: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"state": True, "code": 0, "message": ""}
    if data is not None:
        body["data"] = data
    return body


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"user_id": 42, "user_name": "alice"}, Account("42", "alice")),
        ({"user_id": " 42 ", "user_name": "alice"}, Account("42", "alice")),
        ({"user_id": "42"}, Account("42", "42")),
        ({"user_id": " 42 ", "user_name": ""}, Account("42", "42")),
        ({"user_id": 42, "user_name": 7}, Account("42", "42")),
        ({"user_id": 310000001.0, "user_name": "bob"}, Account("310000001", "bob")),
        (
            {
                "user_id": 42,
                "user_name": "bob",
                "rt_space_info": {
                    "all_total": {"size": 2.199023255552e12, "size_format": "2TB"},
                    "all_use": {"size": 5.49755813888e11},
                    "all_remain": {"size": "1649267441664.0"},
                },
            },
            Account("42", "bob", 2 * TIB, 512 * GIB, 2 * TIB - 512 * GIB),
        ),
        # No VIP: vip_info missing, empty, or with expire 0.
        ({"user_id": 42, "user_name": "bob", "vip_info": {}}, Account("42", "bob")),
        ({"user_id": 42, "user_name": "bob", "vip_info": None}, Account("42", "bob")),
        (
            {"user_id": 42, "user_name": "bob", "vip_info": {"level_name": "VIP", "expire": 0}},
            Account("42", "bob", vip_level="VIP"),
        ),
        (
            {
                "user_id": 42,
                "user_name": "bob",
                "rt_space_info": {"all_total": 100, "all_use": "40", "all_remain": {"size": 60}},
                "vip_info": {"level_name": "SVIP", "expire": "1800000000"},
            },
            Account("42", "bob", 100, 40, 60, "SVIP", datetime.fromtimestamp(1800000000, UTC)),
        ),
        (
            {
                "user_id": 42,
                "user_name": "bob",
                "rt_space_info": {"all_total": {"size": "x"}, "all_use": None},
                "vip_info": {"level_name": "", "expire": 0},
            },
            Account("42", "bob"),
        ),
        (
            {"user_id": 42, "user_name": "bob", "rt_space_info": [], "vip_info": "none"},
            Account("42", "bob"),
        ),
        (
            {"user_id": 42, "user_name": "bob", "vip_info": {"level_name": 3, "expire": -1}},
            Account("42", "bob"),
        ),
        (
            {"user_id": 42, "user_name": "bob", "vip_info": {"expire": 10**20}},
            Account("42", "bob"),
        ),
        # A fractional expire (a float, or a string of one): whole seconds (issue 17).
        (
            {"user_id": 42, "user_name": "bob", "vip_info": {"expire": 1800000000.75}},
            Account("42", "bob", vip_expire=datetime.fromtimestamp(1800000000, UTC)),
        ),
        (
            {"user_id": 42, "user_name": "bob", "vip_info": {"expire": "1800000000.5"}},
            Account("42", "bob", vip_expire=datetime.fromtimestamp(1800000000, UTC)),
        ),
    ],
)
async def test_user_info_variants(
    client: Open115Client, emu: Emulator115, data: dict[str, Any], expected: Account
) -> None:
    emu.inject_body(USER_INFO_PATH, _info(data))
    assert await bearer(client, "at_sent").user_info() == expected


@pytest.mark.parametrize(
    ("data", "kind", "message"),
    [
        (None, Open115TransientError, "no data in the answer"),
        ([], Open115TransientError, "no data in the answer"),
        ({"user_name": "alice"}, Open115ApiError, "no user id in the answer"),
        ({"user_id": ""}, Open115ApiError, "no user id in the answer"),
        ({"user_id": "  "}, Open115ApiError, "no user id in the answer"),
        ({"user_id": True}, Open115ApiError, "no user id in the answer"),
        ({"user_id": None}, Open115ApiError, "no user id in the answer"),
        ({"user_id": 4.2}, Open115ApiError, "no user id in the answer"),
    ],
)
async def test_user_info_incomplete_answers(
    client: Open115Client,
    emu: Emulator115,
    data: Any,
    kind: type[Open115Error],
    message: str,
) -> None:
    emu.inject_body(USER_INFO_PATH, _info(data))
    err = await fails(kind, bearer(client, "at_sent").user_info(), emu, "at_sent")
    assert str(err) == f"Reading the account failed: {message}"


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
