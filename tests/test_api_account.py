"""api/account.py's /open/user/info against the loopback emulator: access tokens and every answer shape."""

from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from freezegun.api import FrozenDateTimeFactory
import pytest

from custom_components.open115.api import (
    Account,
    Open115AccessTokenError,
    Open115ApiError,
    Open115Client,
    Open115Error,
    Open115TransientError,
)

from .api_fixtures import FakeClock, bearer, emu_grant, fails
from .conftest import USER_ID, USER_NAME
from .emulator import (
    USER_INFO_PATH,
    Emulator115,
    Grant,
    LoggedRequest,
)

TIB = 1024**4
GIB = 1024**3


grant = emu_grant


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
