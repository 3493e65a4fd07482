"""The client's token source (api/token_source.py) and the one rejected-token retry (transport)."""

import aiohttp
import pytest

from custom_components.open115.api import (
    AccessTokenSource,
    Open115AccessTokenError,
    Open115Client,
    StaticAccessToken,
)

from .api_fixtures import FakeClock, bearer, emu_grant, fails
from .conftest import USER_ID
from .emulator import USER_INFO_PATH, Emulator115, Grant


class Source(AccessTokenSource):
    """Hands out `tokens` in turn; records what it was asked."""

    def __init__(self, *tokens: str) -> None:
        self.tokens = list(tokens)
        self.asked: list[str | None] = []

    async def async_get_access_token(self, rejected_token: str | None = None) -> str:
        self.asked.append(rejected_token)
        if rejected_token is not None and len(self.tokens) > 1:
            self.tokens.pop(0)
        return self.tokens[0]


grant = emu_grant


def sourced(client: Open115Client, source: AccessTokenSource) -> Open115Client:
    return Open115Client(client._session, base_url=client.proapi_url, auth=source)


async def test_the_token_is_asked_for_before_each_request(
    client: Open115Client, emu: Emulator115, grant: Grant
) -> None:
    source = Source(emu.issue_access_token(grant))
    api = sourced(client, source)
    await api.user_info()
    await api.offline_quota()
    assert source.asked == [None, None]
    assert api.proapi_requests == 2


async def test_a_refused_token_is_reported_once_and_the_request_retried_once(
    client: Open115Client, emu: Emulator115, grant: Grant
) -> None:
    good = emu.issue_access_token(grant)
    source = Source("at_not_issued", good)
    api = sourced(client, source)
    assert (await api.user_info()).user_id == str(USER_ID)
    assert source.asked == [None, "at_not_issued"]
    assert api.proapi_requests == 2
    assert emu.count(USER_INFO_PATH) == 2


async def test_a_second_refusal_raises_reported_and_is_never_reported_again(
    client: Open115Client, emu: Emulator115, grant: Grant
) -> None:
    """A refusal a new token does not cure (40140118, 40100000): one report, not one per read."""
    first, fresh = emu.issue_access_token(grant), emu.issue_access_token(grant)
    source = Source(first, fresh)
    api = sourced(client, source)
    emu.inject(USER_INFO_PATH, "code:40140118", "code:40140118")
    err = await fails(Open115AccessTokenError, api.user_info(), emu)
    assert (err.code, err.reported) == (40140118, True)
    assert source.asked == [None, first]
    # The next reads get the fresh token, refused again: not reported again, not resent.
    emu.inject(USER_INFO_PATH, "code:40100000", "code:40100000")
    for _ in range(2):
        err = await fails(Open115AccessTokenError, api.user_info(), emu)
        assert (err.code, err.reported) == (40100000, True)
    assert source.asked == [None, first, None, None]
    assert emu.count(USER_INFO_PATH) == 4
    # A token the source hands out on its own (its refresh) is reported again when refused.
    source.tokens = ["at_other", fresh]
    assert (await api.user_info()).user_id == str(USER_ID)
    assert source.asked == [None, first, None, None, None, "at_other"]


async def test_a_source_that_keeps_the_token_gets_no_second_request(
    client: Open115Client, emu: Emulator115, grant: Grant
) -> None:
    source = Source("at_kept")
    api = sourced(client, source)
    err = await fails(Open115AccessTokenError, api.user_info(), emu, "at_kept")
    assert (err.code, err.reported) == (40140123, True)
    assert source.asked == [None, "at_kept"]
    assert emu.count(USER_INFO_PATH) == 1


async def test_static_token_a_refusal_re_raises(
    client: Open115Client, emu: Emulator115, grant: Grant
) -> None:
    access = emu.issue_access_token(grant)
    assert await StaticAccessToken(access).async_get_access_token() == access
    emu.inject(USER_INFO_PATH, "code:40140125")
    err = await fails(Open115AccessTokenError, bearer(client, access).user_info(), emu)
    assert (err.code, err.reported) == (40140125, True)
    assert emu.count(USER_INFO_PATH) == 1


async def test_an_answer_quoting_the_token_is_blanked(
    client: Open115Client, emu: Emulator115, grant: Grant
) -> None:
    access = emu.issue_access_token(grant)
    emu.inject_body(
        USER_INFO_PATH,
        {
            "state": 1,
            "code": 0,
            "data": {"user_id": USER_ID, "user_name": f"x{access}", "a": [access]},
        },
    )
    account = await bearer(client, access).user_info()
    assert account.user_name == "x***"


async def test_without_a_source_the_open_api_is_not_called(
    session: aiohttp.ClientSession, base_url: str, emu: Emulator115, clock: FakeClock
) -> None:
    with pytest.raises(RuntimeError, match="no access token source"):
        await Open115Client(session, base_url=base_url).user_info()
    assert emu.count(USER_INFO_PATH) == 0
