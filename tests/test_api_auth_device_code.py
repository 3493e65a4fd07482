"""The device-code (QR, PKCE) part of the API client, against the loopback emulator."""

import asyncio
import base64
from collections.abc import Awaitable
from datetime import UTC, datetime
import hashlib
import string
from typing import Any

import pytest

from custom_components.open115.api import (
    CHALLENGE_METHODS,
    DeviceCode,
    DeviceCodeStatus,
    Open115ApiError,
    Open115AuthError,
    Open115Client,
    Open115Error,
    Open115RateLimitError,
    Open115TransientError,
    Pkce,
    make_pkce,
    pkce_challenge,
)

from . import api_fixtures
from .api_fixtures import START, FakeClock, bearer
from .conftest import OTHER_ID, USER_ID
from .emulator import (
    CODE_BAD_APP_ID,
    CODE_BAD_CHALLENGE_METHOD,
    CODE_BAD_CLIENT_ID,
    CODE_BAD_DEVICE_CODE,
    CODE_BAD_SIGN,
    CODE_NO_CHALLENGE,
    CODE_VERIFIER_LENGTH,
    CODE_VERIFIER_MISMATCH,
    DEFAULT_APP_ID,
    DEVICE_CODE_PATH,
    DEVICE_TOKEN_PATH,
    FAULT_HANG,
    FAULT_HTML,
    FAULT_HTTP_500,
    FAULT_RESET,
    QR_CONFIRMED,
    QR_STATUS_PATH,
    QR_WAITING,
    Emulator115,
    LoggedRequest,
)

VERIFIER_CHARS = set(string.ascii_letters + string.digits + "-_")


async def fails[E: Open115Error](
    kind: type[E], call: Awaitable[Any], emu: Emulator115, *secrets: str
) -> E:
    """Await `call`, expecting exactly `kind`, with no token or verifier in its text.

    Most of these fail before 115 issued any token, so there may be none to look for.
    """
    return await api_fixtures.fails(kind, call, emu, *secrets, some_secret=False)


async def new_code(client: Open115Client, method: str = "sha256") -> tuple[DeviceCode, Pkce]:
    pkce = make_pkce(method)
    return await client.auth_device_code(DEFAULT_APP_ID, pkce), pkce


async def poll_after(
    emu: Emulator115, client: Open115Client, code: DeviceCode, change: str
) -> DeviceCodeStatus:
    """Start a long poll, let the emulator hold it, make the phone do `change`, read the answer."""
    task = asyncio.create_task(client.device_code_status(code))
    await emu.wait_for_held_poll()
    getattr(emu, change)(code.uid)
    return await task


# ----- PKCE ---------------------------------------------------------------------------------


@pytest.mark.parametrize("method", CHALLENGE_METHODS)
def test_pkce_challenge_is_standard_base64_of_the_digest(method: str) -> None:
    pkce = make_pkce(method)
    assert pkce.method == method
    assert len(pkce.verifier) == 64
    assert set(pkce.verifier) <= VERIFIER_CHARS
    digest = hashlib.new(method, pkce.verifier.encode()).digest()
    assert pkce.challenge == base64.b64encode(digest).decode()
    assert pkce_challenge(pkce.verifier, method) == pkce.challenge
    assert pkce.verifier not in repr(pkce)


def test_pkce_fixed_example() -> None:
    # RFC 7636's example verifier, in standard (not URL-safe) base64 with padding.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM="


@pytest.mark.parametrize("length", [43, 128])
def test_pkce_verifier_length_bounds(length: int) -> None:
    assert len(make_pkce(length=length).verifier) == length


@pytest.mark.parametrize("length", [42, 129])
def test_pkce_verifier_length_out_of_bounds(length: int) -> None:
    with pytest.raises(ValueError, match="43 to 128"):
        make_pkce(length=length)


def test_pkce_unknown_method() -> None:
    with pytest.raises(ValueError, match="sha512"):
        make_pkce("sha512")


def test_pkce_verifiers_differ() -> None:
    assert len({make_pkce().verifier for _ in range(20)}) == 20


# ----- /open/authDeviceCode -----------------------------------------------------------------


async def test_auth_device_code(client: Open115Client, emu: Emulator115) -> None:
    code, pkce = await new_code(client)
    emulated = emu.device_code()
    assert code == DeviceCode(
        uid=emulated.uid, time=int(START), sign=emulated.sign, qrcode=emulated.qrcode
    )
    assert code.qrcode == f"https://115.com/scan/dg-{code.uid}"
    assert (emulated.app_id, emulated.challenge, emulated.method) == (
        DEFAULT_APP_ID,
        pkce.challenge,
        "sha256",
    )
    assert code.sign not in repr(code)
    assert code.qrcode not in repr(code)
    assert emu.requests == [LoggedRequest(DEVICE_CODE_PATH, START, 0)]


@pytest.mark.parametrize(
    ("app_id", "pkce", "code"),
    [
        ("", Pkce("v" * 43, "challenge", "sha256"), CODE_BAD_CLIENT_ID),
        ("999", Pkce("v" * 43, "challenge", "sha256"), CODE_BAD_APP_ID),
        (DEFAULT_APP_ID, Pkce("v" * 43, "", "sha256"), CODE_NO_CHALLENGE),
        (DEFAULT_APP_ID, Pkce("v" * 43, "challenge", "sha512"), CODE_BAD_CHALLENGE_METHOD),
    ],
)
async def test_auth_device_code_refused(
    client: Open115Client, emu: Emulator115, app_id: str, pkce: Pkce, code: int
) -> None:
    err = await fails(Open115ApiError, client.auth_device_code(app_id, pkce), emu)
    assert err.code == code
    assert str(err).startswith(f"Requesting a QR code failed with code {code} (")
    assert emu.device_codes == {}


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (FAULT_HTTP_500, Open115TransientError),
        (FAULT_HTML, Open115TransientError),
        (FAULT_RESET, Open115TransientError),
        ("code:40140117", Open115RateLimitError),
        ("code:40110000", Open115TransientError),
    ],
)
async def test_auth_device_code_faults(
    client: Open115Client, emu: Emulator115, fault: str, kind: type[Open115Error]
) -> None:
    emu.inject(DEVICE_CODE_PATH, fault)
    await fails(kind, client.auth_device_code(DEFAULT_APP_ID, make_pkce()), emu)
    assert emu.device_codes == {}


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"uid": "u", "time": 1, "sign": "s"},
        {"uid": "", "time": 1, "sign": "s", "qrcode": "q"},
        {"uid": True, "time": 1, "sign": "s", "qrcode": "q"},
        {"uid": "u", "time": True, "sign": "s", "qrcode": "q"},
        {"uid": "u", "time": "soon", "sign": "s", "qrcode": "q"},
        {"uid": "u", "time": 1, "sign": "", "qrcode": "q"},
        {"uid": "u", "time": 1, "sign": "s", "qrcode": 5},
    ],
)
async def test_auth_device_code_answer_without_a_code(
    client: Open115Client, emu: Emulator115, data: Any
) -> None:
    emu.inject_body(DEVICE_CODE_PATH, {"state": 1, "code": 0, "data": data})
    err = await fails(
        Open115TransientError, client.auth_device_code(DEFAULT_APP_ID, make_pkce()), emu
    )
    assert str(err) in {
        "Requesting a QR code failed: no data in the answer",
        "Requesting a QR code failed: the answer holds no device code",
    }


async def test_auth_device_code_reads_numbers_as_text(
    client: Open115Client, emu: Emulator115
) -> None:
    data = {"uid": 12345, "time": "1767225600", "sign": "s1", "qrcode": "q1"}
    emu.inject_body(DEVICE_CODE_PATH, {"state": 1, "code": 0, "data": data})
    code = await client.auth_device_code(DEFAULT_APP_ID, make_pkce())
    assert code == DeviceCode(uid="12345", time=1767225600, sign="s1", qrcode="q1")


# ----- /get/status/ (long poll) -------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("scan_device_code", DeviceCodeStatus.SCANNED),
        ("confirm_device_code", DeviceCodeStatus.CONFIRMED),
        ("cancel_device_code", DeviceCodeStatus.CANCELLED),
        ("expire_device_code", DeviceCodeStatus.EXPIRED),
    ],
)
async def test_status_answers_the_change(
    client: Open115Client, emu: Emulator115, change: str, expected: DeviceCodeStatus
) -> None:
    code, _ = await new_code(client)
    assert await poll_after(emu, client, code, change) is expected
    assert emu.count(QR_STATUS_PATH) == 1
    assert emu.held_polls == 0


async def test_status_scan_then_confirm(client: Open115Client, emu: Emulator115) -> None:
    code, _ = await new_code(client)
    assert await poll_after(emu, client, code, "scan_device_code") is DeviceCodeStatus.SCANNED
    # The next poll waits for the next change, not answering "scanned" again.
    assert await poll_after(emu, client, code, "confirm_device_code") is (
        DeviceCodeStatus.CONFIRMED
    )
    assert emu.count(QR_STATUS_PATH) == 2
    assert emu.device_code().user_id == USER_ID


async def test_status_unchanged_when_115_wait_ends(client: Open115Client, emu: Emulator115) -> None:
    code, _ = await new_code(client)
    task = asyncio.create_task(client.device_code_status(code))
    await emu.wait_for_held_poll()
    emu.end_long_polls()
    assert await task is DeviceCodeStatus.WAITING
    assert emu.device_code().status == QR_WAITING


async def test_status_expired_by_time(
    client: Open115Client, emu: Emulator115, clock: FakeClock
) -> None:
    code, _ = await new_code(client)
    clock.now += emu.device_code_lifetime
    assert await client.device_code_status(code) is DeviceCodeStatus.EXPIRED


async def test_status_of_unknown_or_used_code_is_dead(
    client: Open115Client, emu: Emulator115
) -> None:
    code, _ = await new_code(client)
    unknown = DeviceCode(uid="nope", time=code.time, sign=code.sign, qrcode=code.qrcode)
    assert await client.device_code_status(unknown) is DeviceCodeStatus.EXPIRED
    emu.device_code().redeemed = True
    assert await client.device_code_status(code) is DeviceCodeStatus.EXPIRED


async def test_status_bad_sign(client: Open115Client, emu: Emulator115) -> None:
    code, _ = await new_code(client)
    forged = DeviceCode(uid=code.uid, time=code.time, sign="forged", qrcode=code.qrcode)
    err = await fails(Open115ApiError, client.device_code_status(forged), emu)
    assert err.code == CODE_BAD_SIGN
    stale = DeviceCode(uid=code.uid, time=code.time + 1, sign=code.sign, qrcode=code.qrcode)
    assert (await fails(Open115ApiError, client.device_code_status(stale), emu)).code == (
        CODE_BAD_SIGN
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"state": 1, "data": {"status": "1"}}, DeviceCodeStatus.SCANNED),
        ({"state": True, "data": {"status": 2}}, DeviceCodeStatus.CONFIRMED),
        ({"state": 1, "data": {"status": 0}}, DeviceCodeStatus.WAITING),
        ({"state": 1, "data": []}, DeviceCodeStatus.WAITING),
        ({"state": 1}, DeviceCodeStatus.WAITING),
        ({"state": 1, "data": {"status": True}}, DeviceCodeStatus.WAITING),
        ({"state": 1, "data": {"status": -2}}, DeviceCodeStatus.CANCELLED),
        ({"state": 0, "data": {"status": -2}}, DeviceCodeStatus.CANCELLED),
        ({"state": 0, "data": {"status": -1}}, DeviceCodeStatus.EXPIRED),
        ({"state": 0, "data": {"status": 1}}, DeviceCodeStatus.EXPIRED),
        ({"state": 0, "code": 0, "message": "dead"}, DeviceCodeStatus.EXPIRED),
    ],
)
async def test_status_answer_variants(
    client: Open115Client, emu: Emulator115, body: dict[str, Any], expected: DeviceCodeStatus
) -> None:
    code, _ = await new_code(client)
    emu.inject_body(QR_STATUS_PATH, body)
    assert await client.device_code_status(code) is expected


async def test_status_unknown_value(client: Open115Client, emu: Emulator115) -> None:
    code, _ = await new_code(client)
    emu.inject_body(QR_STATUS_PATH, {"state": 1, "data": {"status": 7}})
    err = await fails(Open115ApiError, client.device_code_status(code), emu)
    assert str(err) == "Polling the QR code failed: unknown status 7"


async def test_status_error_code(client: Open115Client, emu: Emulator115) -> None:
    code, _ = await new_code(client)
    emu.inject_body(QR_STATUS_PATH, {"state": 0, "errno": 40140105, "error": "boom"})
    err = await fails(Open115ApiError, client.device_code_status(code), emu)
    assert str(err) == "Polling the QR code failed with code 40140105 (boom)"


@pytest.mark.parametrize("fault", [FAULT_HTTP_500, FAULT_HTML, FAULT_RESET])
async def test_status_faults(client: Open115Client, emu: Emulator115, fault: str) -> None:
    code, _ = await new_code(client)
    # Twice: aiohttp sends an idempotent GET again once when the connection was reset.
    emu.inject(QR_STATUS_PATH, fault, fault)
    await fails(Open115TransientError, client.device_code_status(code), emu)


async def test_status_own_wait_runs_out(client: Open115Client, emu: Emulator115) -> None:
    code, _ = await new_code(client)
    emu.inject(QR_STATUS_PATH, FAULT_HANG)
    err = await fails(Open115TransientError, client.device_code_status(code, wait=0.05), emu)
    assert str(err) == "Polling the QR code timed out"
    assert isinstance(err.__cause__, TimeoutError)


# ----- /open/deviceCodeToToken ----------------------------------------------------------------


@pytest.mark.parametrize("method", CHALLENGE_METHODS)
async def test_exchange_makes_a_new_authorization(
    client: Open115Client, emu: Emulator115, method: str
) -> None:
    code, pkce = await new_code(client, method)
    emu.confirm_device_code(code.uid)
    pair = await client.device_code_to_token(code.uid, pkce.verifier)
    (grant,) = emu.grants.values()
    assert (grant.user_id, grant.app_id, grant.authorized_at) == (USER_ID, DEFAULT_APP_ID, START)
    assert pair.refresh_token == emu.live_refresh_token(grant)
    assert emu.access_tokens[pair.access_token].grant_id == grant.grant_id
    assert (pair.expires_in, pair.received_at) == (7200, datetime.fromtimestamp(START, UTC))
    assert (await bearer(client, pair.access_token).user_info()).user_id == str(USER_ID)
    # The code is used up.
    err = await fails(Open115ApiError, client.device_code_to_token(code.uid, pkce.verifier), emu)
    assert err.code == CODE_BAD_DEVICE_CODE
    assert await client.device_code_status(code) is DeviceCodeStatus.EXPIRED


@pytest.mark.parametrize("variant", ["urlsafe", "unpadded"])
async def test_exchange_accepts_url_safe_challenges(
    client: Open115Client, emu: Emulator115, variant: str
) -> None:
    verifier = make_pkce().verifier
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).decode()
    if variant == "unpadded":
        challenge = challenge.rstrip("=")
    code = await client.auth_device_code(DEFAULT_APP_ID, Pkce(verifier, challenge, "sha256"))
    emu.confirm_device_code(code.uid)
    pair = await client.device_code_to_token(code.uid, verifier)
    assert pair.refresh_token == emu.live_refresh_token(next(iter(emu.grants.values())))


async def test_exchange_with_another_verifier(client: Open115Client, emu: Emulator115) -> None:
    code, _ = await new_code(client)
    emu.confirm_device_code(code.uid)
    other = make_pkce().verifier
    err = await fails(Open115ApiError, client.device_code_to_token(code.uid, other), emu, other)
    assert err.code == CODE_VERIFIER_MISMATCH
    assert emu.grants == {}


async def test_exchange_challenge_that_is_not_base64(
    client: Open115Client, emu: Emulator115
) -> None:
    verifier = make_pkce().verifier
    code = await client.auth_device_code(DEFAULT_APP_ID, Pkce(verifier, "not base64!", "md5"))
    emu.confirm_device_code(code.uid)
    err = await fails(Open115ApiError, client.device_code_to_token(code.uid, verifier), emu)
    assert err.code == CODE_VERIFIER_MISMATCH


@pytest.mark.parametrize("length", [42, 129])
async def test_exchange_verifier_length(
    client: Open115Client, emu: Emulator115, length: int
) -> None:
    code, _ = await new_code(client)
    emu.confirm_device_code(code.uid)
    err = await fails(Open115ApiError, client.device_code_to_token(code.uid, "v" * length), emu)
    assert err.code == CODE_VERIFIER_LENGTH


@pytest.mark.parametrize("state", ["waiting", "scanned", "cancelled", "expired", "late"])
async def test_exchange_before_confirmation(
    client: Open115Client, emu: Emulator115, clock: FakeClock, state: str
) -> None:
    code, pkce = await new_code(client)
    if state == "scanned":
        emu.scan_device_code(code.uid)
    elif state == "cancelled":
        emu.cancel_device_code(code.uid)
    elif state == "expired":
        emu.expire_device_code(code.uid)
    elif state == "late":
        emu.scan_device_code(code.uid)
        clock.now += emu.device_code_lifetime
    err = await fails(Open115ApiError, client.device_code_to_token(code.uid, pkce.verifier), emu)
    assert err.code == CODE_BAD_DEVICE_CODE
    assert str(err).startswith(f"Exchanging the QR code failed with code {CODE_BAD_DEVICE_CODE}")
    assert emu.grants == {}


async def test_exchange_of_unknown_code(client: Open115Client, emu: Emulator115) -> None:
    err = await fails(Open115ApiError, client.device_code_to_token("nope", "v" * 43), emu)
    assert err.code == CODE_BAD_DEVICE_CODE


async def test_exchange_answer_blanks_the_verifier(client: Open115Client, emu: Emulator115) -> None:
    code, pkce = await new_code(client)
    emu.inject_body(
        DEVICE_TOKEN_PATH,
        {"state": 0, "code": 40140113, "message": f"verifier {pkce.verifier} failed"},
    )
    err = await fails(
        Open115ApiError, client.device_code_to_token(code.uid, pkce.verifier), emu, pkce.verifier
    )
    assert str(err) == "Exchanging the QR code failed with code 40140113 (verifier *** failed)"


async def test_exchange_faults(client: Open115Client, emu: Emulator115) -> None:
    code, pkce = await new_code(client)
    emu.confirm_device_code(code.uid)
    emu.inject(DEVICE_TOKEN_PATH, FAULT_HTTP_500, "code:40140117")
    await fails(Open115TransientError, client.device_code_to_token(code.uid, pkce.verifier), emu)
    await fails(Open115RateLimitError, client.device_code_to_token(code.uid, pkce.verifier), emu)
    # Neither reached the exchange: the confirmed code still works.
    assert emu.device_code().status == QR_CONFIRMED
    await client.device_code_to_token(code.uid, pkce.verifier)


async def test_newer_authorizations_push_out_the_oldest(
    client: Open115Client, emu: Emulator115, clock: FakeClock
) -> None:
    """Scanning the same AppID twice more kills the first token (two live per app)."""
    pairs = []
    for _ in range(3):
        code, pkce = await new_code(client)
        emu.confirm_device_code(code.uid)
        pairs.append(await client.device_code_to_token(code.uid, pkce.verifier))
        clock.now += 60
    first, second, third = pairs
    err = await fails(Open115AuthError, client.refresh(first.refresh_token), emu)
    assert (err.code, err.reason) == (40140116, "revoked")
    await client.refresh(second.refresh_token)
    clock.now += 60
    await client.refresh(third.refresh_token)


async def test_scan_by_another_account(client: Open115Client, emu: Emulator115) -> None:
    code, pkce = await new_code(client)
    emu.scan_device_code(code.uid, user_id=OTHER_ID)
    emu.confirm_device_code(code.uid)
    pair = await client.device_code_to_token(code.uid, pkce.verifier)
    assert (await bearer(client, pair.access_token).user_info()).user_id == str(OTHER_ID)
