"""Authorization: refreshing a token pair, and the device-code (QR, PKCE) sign-in."""

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
import hashlib
import secrets
from typing import Any, Final

from .errors import Open115ApiError, Open115TransientError, error_for, is_success
from .transport import Transport
from .values import as_int, as_number

# /get/status/ holds the request until the QR code's status changes or its own timeout.
DEVICE_CODE_POLL_TIMEOUT: Final = 65.0
# PKCE: the methods /open/authDeviceCode accepts, and the verifier's length limits.
CHALLENGE_METHODS: Final = ("sha256", "sha1", "md5")
VERIFIER_MIN_LENGTH: Final = 43
VERIFIER_MAX_LENGTH: Final = 128
# A longer lifetime in a refresh answer is taken as this (a year: the refresh token's own).
MAX_EXPIRES_IN: Final = 365 * 86400


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

    @property
    def complete(self) -> bool:
        """Whether the answer held a usable access token and lifetime (see `AuthApi.refresh`)."""
        return bool(self.access_token) and self.expires_in > 0


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


class AuthApi(Transport):
    """The passport calls: refresh, and the device-code sign-in."""

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Trade a refresh token for a new pair. The sent refresh token is void afterwards."""
        body = await self._request(
            "POST",
            f"{self.passport_url}/open/refreshToken",
            "Token refresh",
            data={"refresh_token": refresh_token},
            secret=refresh_token,
        )
        # 115 sometimes answers a successful refresh without a new refresh token; two clients
        # (see the spec) then keep the one they sent, which stays valid.
        return self._parse_refresh(body, refresh_token)

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
        issued = None if isinstance(stamp, bool) else as_int(stamp)
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
        value = None if isinstance(raw, bool) else as_int(raw)
        if not is_success(body):
            # State 0: the code is dead. An error code instead means the request was wrong.
            if value in (DeviceCodeStatus.EXPIRED, DeviceCodeStatus.CANCELLED):
                return DeviceCodeStatus(value)
            if as_int(body.get("code")) or as_int(body.get("errno")):
                raise error_for(body, what, None)
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

    def _parse_refresh(self, body: Mapping[str, Any], sent: str) -> TokenPair:
        """A refresh's pair, as much of it as arrived: a new refresh token is never dropped.

        Every field of the answer is "not required" in 115's document. A new refresh token
        voids the sent one, so it is returned whatever else is missing; a missing, boolean or
        non-positive `expires_in`, or a missing access token, gives an incomplete pair (no
        access token, lifetime 0: due now). A fractional lifetime is rounded down.
        """
        data = body.get("data")
        if not isinstance(data, dict):
            raise Open115TransientError("Token refresh failed: no data in the answer")
        access, refresh = data.get("access_token"), data.get("refresh_token")
        new_refresh = isinstance(refresh, str) and bool(refresh)
        has_access = isinstance(access, str) and bool(access)
        if not (new_refresh or has_access):
            raise Open115TransientError("Token refresh failed: the answer holds no token")
        raw = data.get("expires_in")
        seconds = None if isinstance(raw, bool) else as_number(raw)
        usable = seconds is not None and seconds >= 1 and has_access
        expires_in = int(min(seconds, MAX_EXPIRES_IN)) if usable and seconds else 0
        return TokenPair(
            access_token=str(access) if has_access else "",
            refresh_token=str(refresh) if new_refresh else sent,
            expires_in=expires_in,
            received_at=self._clock(),
        )

    def _parse_pair(self, body: Mapping[str, Any], what: str) -> TokenPair:
        data = body.get("data")
        if not isinstance(data, dict):
            raise Open115TransientError(f"{what} failed: no data in the answer")
        access = data.get("access_token")
        refresh = data.get("refresh_token")
        raw_expires = data.get("expires_in")
        expires_in = None if isinstance(raw_expires, bool) else as_int(raw_expires)
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
