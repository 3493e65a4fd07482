"""The client against what independent clients and the 2026 document show of the real 115.

Each test names the behaviour of the real service it models (shared/spec/115-open-api.md).
"""

import json
from typing import Any

import aiohttp
import pytest

from custom_components.open115.api import (
    Open115AccessTokenError,
    Open115ApiError,
    Open115AuthError,
    Open115Client,
    Open115UnexplainedError,
)

from .api_fixtures import USER_ID, FakeClock, bearer, emu_grant, fails
from .emulator import (
    FAULT_CODELESS,
    FAULT_NO_REFRESH_TOKEN,
    REFRESH_PATH,
    USER_INFO_PATH,
    Emulator115,
    Grant,
)

grant = emu_grant


async def test_dead_after_repeated_failures_answers_40140137(
    client: Open115Client, emu: Emulator115, grant: Grant, clock: FakeClock
) -> None:
    """The 2026-08 document: a token that kept failing is marked dead ("stop retrying")."""
    emu.dead_after_failures = 2
    emu.revoke(grant)
    for _ in range(2):
        err = await fails(Open115AuthError, client.refresh(grant.refresh_token), emu)
        assert (err.code, err.reason) == (40140116, "revoked")
        clock.advance(emu.min_refresh_interval)
    err = await fails(Open115AuthError, client.refresh(grant.refresh_token), emu)
    assert (err.code, err.reason) == (40140137, "dead")
    assert str(err) == "Token refresh failed with code 40140137 (请停止重试并重新授权)"


async def test_app_access_expired_is_a_reauth(
    client: Open115Client, emu: Emulator115, grant: Grant
) -> None:
    """40140110: the app behind the token lost its access; only a new authorization helps."""
    emu.inject(REFRESH_PATH, "code:40140110")
    err = await fails(Open115AuthError, client.refresh(grant.refresh_token), emu)
    assert (err.code, err.reason) == (40140110, "app_expired")


async def test_codeless_error_answer_is_unexplained_not_transient(
    client: Open115Client, emu: Emulator115, grant: Grant
) -> None:
    """A real early answer: {"state":0,"errno":0,"error":"refresh token error"}."""
    emu.inject(REFRESH_PATH, FAULT_CODELESS)
    err = await fails(Open115UnexplainedError, client.refresh(grant.refresh_token), emu)
    assert err.code is None
    assert str(err) == "Token refresh failed without an error code (refresh token error)"
    assert isinstance(err, Open115ApiError)


async def test_success_without_refresh_token_keeps_the_sent_one(
    client: Open115Client, emu: Emulator115, grant: Grant, clock: FakeClock
) -> None:
    """Two independent clients keep the refresh token they sent when none comes back."""
    sent = grant.refresh_token
    emu.inject(REFRESH_PATH, FAULT_NO_REFRESH_TOKEN)
    pair = await client.refresh(sent)
    assert pair.refresh_token == sent
    assert (await bearer(client, pair.access_token).user_info()).user_id == str(USER_ID)
    # The sent token was not voided: it refreshes again once the window has passed.
    clock.advance(emu.min_refresh_interval)
    again = await client.refresh(sent)
    assert again.refresh_token == emu.live_refresh_token(grant) != sent


@pytest.mark.parametrize("code", [99, 40100000, 40140123, 40140125, 40199999])
async def test_proapi_access_token_refusals(
    client: Open115Client, emu: Emulator115, grant: Grant, code: int
) -> None:
    """115-sdk-go refreshes on code 99 or any 401xxxxx; 40100000 answers an unusable token."""
    access = emu.issue_access_token(grant)
    emu.inject(USER_INFO_PATH, f"code:{code}")
    err = await fails(Open115AccessTokenError, bearer(client, access).user_info(), emu)
    assert err.code == code


async def test_passport_401401xx_parameter_codes_are_not_access_token_errors(
    client: Open115Client, emu: Emulator115, grant: Grant
) -> None:
    """On the passport hosts, 40140100-40140113 are client-id/parameter codes."""
    emu.inject(REFRESH_PATH, "code:40140100")
    err = await fails(Open115ApiError, client.refresh(grant.refresh_token), emu)
    assert err.code == 40140100


async def test_strict_mode_voids_the_old_access_token_at_refresh(
    client: Open115Client, emu: Emulator115, grant: Grant
) -> None:
    """The 2026 document: stop using pre-refresh credentials (they may stop working at once)."""
    emu.strict_access_tokens = True
    old = emu.issue_access_token(grant)
    pair = await client.refresh(grant.refresh_token)
    err = await fails(Open115AccessTokenError, bearer(client, old).user_info(), emu)
    assert err.code == 40140123
    assert (await bearer(client, pair.access_token).user_info()).user_id == str(USER_ID)


async def _raw(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> Any:
    async with session.request(method, url, **kw) as resp:
        return json.loads(await resp.read())


async def test_error_answers_carry_both_pairs(
    session: aiohttp.ClientSession, base_url: str, emu: Emulator115, grant: Grant
) -> None:
    """Captured: {"state":0,"code":40140120,"errno":40140120,"message":..,"error":..}."""
    used = grant.refresh_token
    emu.rotate_elsewhere(grant)
    body = await _raw(session, "POST", f"{base_url}{REFRESH_PATH}", data={"refresh_token": used})
    assert body == {
        "state": 0,
        "code": 40140120,
        "errno": 40140120,
        "message": "refresh token error",
        "error": "refresh token error",
        "data": {},
    }
    body = await _raw(
        session, "GET", f"{base_url}{USER_INFO_PATH}", headers={"Authorization": "Bearer nope"}
    )
    assert body["state"] is False
    assert body["code"] == body["errno"] == 40140123
    assert body["message"] == body["error"]


async def test_storage_sizes_may_be_floats(
    client: Open115Client, emu: Emulator115, grant: Grant
) -> None:
    """115-sdk-go had to accept float64 sizes in rt_space_info."""
    access = emu.issue_access_token(grant)
    emu.inject_body(
        USER_INFO_PATH,
        {
            "state": True,
            "code": 0,
            "data": {
                "user_id": USER_ID,
                "user_name": "emu_user",
                "rt_space_info": {
                    "all_total": {"size": 2199023255552.0},
                    "all_use": {"size": 549755813888.5},
                    "all_remain": {"size": "1649267441663.5"},
                },
            },
        },
    )
    account = await bearer(client, access).user_info()
    assert account.user_id == str(USER_ID)
    assert (account.space_total, account.space_used, account.space_remain) == (
        2199023255552,
        549755813888,
        1649267441664,
    )
    assert account.vip_expire is None
