"""Async client for the 115 Open Platform token API.

This module speaks HTTP to 115 and imports nothing from Home Assistant, so that it can become
a library of its own. It never logs, formats or repr()s a token.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import IntEnum
import hashlib
import json
import logging
import secrets
import socket
from typing import Any, Final

import aiohttp

_LOGGER = logging.getLogger(__name__)

PASSPORT_URL: Final = "https://passportapi.115.com"
QRCODE_URL: Final = "https://qrcodeapi.115.com"
PROAPI_URL: Final = "https://proapi.115.com"
DEFAULT_TIMEOUT: Final = 20.0
# /get/status/ holds the request until the QR code's status changes or its own timeout.
DEVICE_CODE_POLL_TIMEOUT: Final = 65.0
# PKCE: the methods /open/authDeviceCode accepts, and the verifier's length limits.
CHALLENGE_METHODS: Final = ("sha256", "sha1", "md5")
VERIFIER_MIN_LENGTH: Final = 43
VERIFIER_MAX_LENGTH: Final = 128

# Refresh-token codes: the token is gone; only a new authorization helps.
REAUTH_REASONS: Final[Mapping[int, str]] = {
    40140114: "malformed",
    40140115: "bad_signature",
    40140116: "revoked",
    40140119: "expired",
    40140120: "used",
}
CODE_RATE_LIMITED: Final = 40140117
CODE_TOO_MANY_APPS: Final = 40140122  # the account authorized too many apps
TRANSIENT_CODES: Final = frozenset({40140121, 40110000})
ACCESS_TOKEN_CODES: Final = frozenset({40140123, 40140124, 40140125, 40140126})
TRANSIENT_HTTP_STATUSES: Final = frozenset({405, 408, 425, 429})


class Open115Error(Exception):
    """Base class of every error of this client; messages never hold a token."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        """Keep the 115 error code, when there is one."""
        super().__init__(message)
        self.code = code


class Open115AuthError(Open115Error):
    """The refresh token can no longer be used: the user must authorize again."""

    def __init__(self, message: str, *, code: int, reason: str) -> None:
        """Keep why the token is dead (one of REAUTH_REASONS' values)."""
        super().__init__(message, code=code)
        self.reason = reason


class Open115RateLimitError(Open115Error):
    """115 put the caller under frequency control (40140117): keep tokens, retry later."""


class Open115TransientError(Open115Error):
    """A failure that says nothing about the tokens: network, timeout, 5xx, non-JSON, retry codes."""


class Open115AccessTokenError(Open115Error):
    """The access token was refused (expired, revoked or malformed): refresh it."""


class Open115ApiError(Open115Error):
    """Any other error answer from 115 (bad AppID, certification expired, ...)."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class TokenPair:
    """An access token and the refresh token that came with it."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_in: int
    received_at: datetime

    @property
    def expires_at(self) -> datetime:
        """When the access token expires."""
        return self.received_at + timedelta(seconds=self.expires_in)


@dataclass(frozen=True, slots=True)
class Account:
    """Who a token belongs to, with the facts /open/user/info gave."""

    user_id: str
    user_name: str
    space_total: int | None = None
    space_used: int | None = None
    space_remain: int | None = None
    vip_level: str | None = None
    vip_expire: datetime | None = None


class DeviceCodeStatus(IntEnum):
    """The status /get/status/ reports for a device code (QR code)."""

    WAITING = 0  # shown, not scanned yet
    SCANNED = 1  # scanned, waiting for the confirmation on the phone
    CONFIRMED = 2  # authorized: exchange the code for tokens now
    EXPIRED = -1  # dead: a new code is needed
    CANCELLED = -2  # the user declined on the phone


@dataclass(frozen=True, slots=True)
class Pkce:
    """A PKCE verifier (secret, sent only to exchange the code) and its challenge."""

    verifier: str = field(repr=False)
    challenge: str
    method: str


@dataclass(frozen=True, slots=True)
class DeviceCode:
    """What /open/authDeviceCode answered: the code's id, the poll's check values, the QR text."""

    uid: str
    time: int
    sign: str = field(repr=False)
    qrcode: str = field(repr=False)


def pkce_challenge(verifier: str, method: str = "sha256") -> str:
    """The challenge of a verifier: standard base64 of its digest (what clients send)."""
    if method not in CHALLENGE_METHODS:
        raise ValueError(f"unsupported challenge method {method!r}")
    digest = hashlib.new(method, verifier.encode("ascii"), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode("ascii")


def make_pkce(method: str = "sha256", length: int = 64) -> Pkce:
    """A fresh random verifier (RFC 7636 unreserved characters) and its challenge."""
    if not VERIFIER_MIN_LENGTH <= length <= VERIFIER_MAX_LENGTH:
        raise ValueError(
            f"a verifier has {VERIFIER_MIN_LENGTH} to {VERIFIER_MAX_LENGTH} characters"
        )
    verifier = secrets.token_urlsafe(length)[:length]
    return Pkce(verifier=verifier, challenge=pkce_challenge(verifier, method), method=method)


def _as_int(value: Any) -> int | None:
    """Read an int from an int, a numeric string or a float; None otherwise."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _is_success(body: Mapping[str, Any]) -> bool:
    """Tell success by `state` (0/1 or false/true), falling back to a zero code."""
    state = body.get("state")
    if state is not None:
        return _as_int(state) == 1
    return (_as_int(body.get("code")) or _as_int(body.get("errno")) or 0) == 0


def _error_for(body: Mapping[str, Any], what: str, secret: str | None) -> Open115Error:
    """Map an error answer to the typed error a caller can act on.

    The server's message is quoted, with the token that was sent blanked out of it.
    """
    code = _as_int(body.get("code")) or _as_int(body.get("errno"))
    raw = body.get("message") or body.get("error") or ""
    text = raw.strip() if isinstance(raw, str) else ""
    if secret:
        text = text.replace(secret, "***")
    head = f"{what} failed with code {code}" if code else f"{what} failed without an error code"
    detail = head + (f" ({text})" if text else "")
    if code is not None and code in REAUTH_REASONS:
        return Open115AuthError(detail, code=code, reason=REAUTH_REASONS[code])
    if code == CODE_RATE_LIMITED:
        return Open115RateLimitError(detail, code=code)
    if code in TRANSIENT_CODES:
        return Open115TransientError(detail, code=code)
    if code in ACCESS_TOKEN_CODES:
        return Open115AccessTokenError(detail, code=code)
    return Open115ApiError(detail, code=code)


class Open115Client:
    """The few 115 Open Platform calls a token keeper needs."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        """Use `session`; `base_url` replaces all three 115 hosts (development, tests)."""
        self._session = session
        self._timeout = timeout
        self._clock = clock
        root = base_url.rstrip("/") if base_url else None
        self.passport_url = root or PASSPORT_URL
        self.qrcode_url = root or QRCODE_URL
        self.proapi_url = root or PROAPI_URL

    async def _request(
        self,
        method: str,
        url: str,
        what: str,
        *,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        secret: str | None = None,
        wait: float | None = None,
        raise_for_error: bool = True,
    ) -> dict[str, Any]:
        """Send one request and return the JSON body of a successful answer.

        `wait` replaces the client's timeout (seconds); with `raise_for_error` False, a JSON
        error answer is returned as it is too.
        """
        try:
            async with asyncio.timeout(self._timeout if wait is None else wait):
                async with self._session.request(
                    method, url, data=data, params=params, headers=headers, allow_redirects=False
                ) as resp:
                    status = resp.status
                    raw = await resp.read()
        except TimeoutError as err:
            raise Open115TransientError(f"{what} timed out") from err
        except (aiohttp.ClientError, socket.gaierror, OSError) as err:
            raise Open115TransientError(
                f"{what} failed: cannot connect ({type(err).__name__})"
            ) from err
        if status >= 500 or status in TRANSIENT_HTTP_STATUSES:
            raise Open115TransientError(f"{what} failed with HTTP {status}")
        try:
            body = json.loads(raw)
        except ValueError as err:
            raise Open115TransientError(
                f"{what} failed: the answer is not JSON (HTTP {status})"
            ) from err
        if not isinstance(body, dict):
            raise Open115TransientError(f"{what} failed: unexpected answer (HTTP {status})")
        if status >= 400 and _is_success(body):
            raise Open115ApiError(f"{what} failed with HTTP {status}")
        if raise_for_error and not _is_success(body):
            raise _error_for(body, what, secret)
        return body

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Trade a refresh token for a new pair. The sent refresh token is void afterwards."""
        body = await self._request(
            "POST",
            f"{self.passport_url}/open/refreshToken",
            "Token refresh",
            data={"refresh_token": refresh_token},
            secret=refresh_token,
        )
        return self._parse_pair(body, "Token refresh")

    async def user_info(self, access_token: str) -> Account:
        """Read the account that owns `access_token`."""
        body = await self._request(
            "GET",
            f"{self.proapi_url}/open/user/info",
            "Reading the account",
            headers={"Authorization": f"Bearer {access_token}"},
            secret=access_token,
        )
        data = body.get("data")
        if not isinstance(data, dict):
            raise Open115TransientError("Reading the account failed: no data in the answer")
        user_id = data.get("user_id")
        if (
            isinstance(user_id, bool)
            or not isinstance(user_id, (int, str))
            or not str(user_id).strip()
        ):
            raise Open115ApiError("Reading the account failed: no user id in the answer")
        uid = str(user_id).strip()
        name = data.get("user_name")
        space = data.get("rt_space_info")
        vip = data.get("vip_info")
        return Account(
            user_id=uid,
            user_name=name if isinstance(name, str) and name else uid,
            space_total=_space(space, "all_total"),
            space_used=_space(space, "all_use"),
            space_remain=_space(space, "all_remain"),
            vip_level=_vip_level(vip),
            vip_expire=_vip_expire(vip),
        )

    # ----- device-code (QR, PKCE) authorization ------------------------------------------

    async def auth_device_code(self, client_id: str, pkce: Pkce) -> DeviceCode:
        """Start a device-code authorization of app `client_id`; the QR text is in the answer."""
        what = "Requesting a QR code"
        body = await self._request(
            "POST",
            f"{self.passport_url}/open/authDeviceCode",
            what,
            data={
                "client_id": client_id,
                "code_challenge": pkce.challenge,
                "code_challenge_method": pkce.method,
            },
        )
        data = body.get("data")
        if not isinstance(data, dict):
            raise Open115TransientError(f"{what} failed: no data in the answer")
        uid, stamp, sign, qrcode = (
            data.get("uid"),
            data.get("time"),
            data.get("sign"),
            data.get("qrcode"),
        )
        issued = None if isinstance(stamp, bool) else _as_int(stamp)
        if (
            isinstance(uid, bool)
            or not isinstance(uid, (str, int))
            or not str(uid).strip()
            or issued is None
            or not isinstance(sign, str)
            or not sign
            or not isinstance(qrcode, str)
            or not qrcode
        ):
            raise Open115TransientError(f"{what} failed: the answer holds no device code")
        return DeviceCode(uid=str(uid).strip(), time=issued, sign=sign, qrcode=qrcode)

    async def device_code_status(
        self, code: DeviceCode, *, wait: float = DEVICE_CODE_POLL_TIMEOUT
    ) -> DeviceCodeStatus:
        """Long-poll the code's status (up to `wait` s): 115 answers when it changes or its wait ends."""
        what = "Polling the QR code"
        body = await self._request(
            "GET",
            f"{self.qrcode_url}/get/status/",
            what,
            params={"uid": code.uid, "time": str(code.time), "sign": code.sign},
            wait=wait,
            raise_for_error=False,
        )
        data = body.get("data")
        raw = data.get("status") if isinstance(data, dict) else None
        value = None if isinstance(raw, bool) else _as_int(raw)
        if not _is_success(body):
            # State 0: the code is dead. An error code instead means the request was wrong.
            if value in (DeviceCodeStatus.EXPIRED, DeviceCodeStatus.CANCELLED):
                return DeviceCodeStatus(value)
            if _as_int(body.get("code")) or _as_int(body.get("errno")):
                raise _error_for(body, what, None)
            return DeviceCodeStatus.EXPIRED
        if value is None:
            return DeviceCodeStatus.WAITING  # no data until the code is scanned
        try:
            return DeviceCodeStatus(value)
        except ValueError:
            raise Open115ApiError(f"{what} failed: unknown status {value}") from None

    async def device_code_to_token(self, uid: str, verifier: str) -> TokenPair:
        """Exchange a confirmed device code for a token pair (a new authorization)."""
        what = "Exchanging the QR code"
        body = await self._request(
            "POST",
            f"{self.passport_url}/open/deviceCodeToToken",
            what,
            data={"uid": uid, "code_verifier": verifier},
            secret=verifier,
        )
        return self._parse_pair(body, what)

    def _parse_pair(self, body: Mapping[str, Any], what: str) -> TokenPair:
        data = body.get("data")
        if not isinstance(data, dict):
            raise Open115TransientError(f"{what} failed: no data in the answer")
        access = data.get("access_token")
        refresh = data.get("refresh_token")
        raw_expires = data.get("expires_in")
        expires_in = None if isinstance(raw_expires, bool) else _as_int(raw_expires)
        if not (isinstance(access, str) and access and isinstance(refresh, str) and refresh):
            raise Open115TransientError(f"{what} failed: the answer holds no token pair")
        if expires_in is None or expires_in <= 0:
            raise Open115TransientError(f"{what} failed: the answer has no valid expires_in")
        return TokenPair(
            access_token=access,
            refresh_token=refresh,
            expires_in=expires_in,
            received_at=self._clock(),
        )


def _space(space: Any, key: str) -> int | None:
    if not isinstance(space, dict):
        return None
    item = space.get(key)
    if isinstance(item, dict):
        return _as_int(item.get("size"))
    return _as_int(item)


def _vip_level(vip: Any) -> str | None:
    if isinstance(vip, dict) and isinstance(vip.get("level_name"), str) and vip["level_name"]:
        return str(vip["level_name"])
    return None


def _vip_expire(vip: Any) -> datetime | None:
    if not isinstance(vip, dict):
        return None
    stamp = _as_int(vip.get("expire"))
    if not stamp or stamp <= 0:
        return None
    try:
        return datetime.fromtimestamp(stamp, UTC)
    except OverflowError, OSError, ValueError:
        return None
