"""api/auth.py's token refresh against the loopback emulator: 115's refresh-token rules and every answer shape."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from custom_components.open115.api import (
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

from .api_fixtures import START, FakeClock, bearer, emu_grant, fails
from .conftest import USER_ID, USER_NAME
from .emulator import (
    REFRESH_PATH,
    USER_INFO_PATH,
    YEAR,
    Emulator115,
    Grant,
    LoggedRequest,
)

TIB = 1024**4
GIB = 1024**3


grant = emu_grant


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
