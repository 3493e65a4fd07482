"""api/errors.py: 115's error codes, injected, mapped to typed errors."""

import pytest

from custom_components.open115.api import (
    Open115AccessTokenError,
    Open115ApiError,
    Open115AuthError,
    Open115Client,
    Open115Error,
    Open115RateLimitError,
    Open115TransientError,
)

from .api_fixtures import FakeClock, bearer, emu_grant, fails
from .emulator import (
    REFRESH_PATH,
    USER_INFO_PATH,
    Emulator115,
    Grant,
)

grant = emu_grant


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
