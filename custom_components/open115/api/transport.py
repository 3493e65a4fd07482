"""The client's transport: one request to a 115 host, its failures made typed errors."""

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
import json
import socket
from typing import Any, Final

import aiohttp

from .errors import (
    PROAPI_RATE_LIMIT_HTTP_STATUS,
    TRANSIENT_HTTP_STATUSES,
    Open115AccessTokenError,
    Open115ApiError,
    Open115RateLimitError,
    Open115TransientError,
    error_for,
    is_success,
)
from .token_source import AccessTokenSource

PASSPORT_URL: Final = "https://passportapi.115.com"
QRCODE_URL: Final = "https://qrcodeapi.115.com"
PROAPI_URL: Final = "https://proapi.115.com"
DEFAULT_TIMEOUT: Final = 20.0


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


class Transport:
    """Holds the session and the hosts; sends requests and reads their JSON answers."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], datetime] = utcnow,
        auth: AccessTokenSource | None = None,
    ) -> None:
        """Use `session`; `base_url` replaces all three 115 hosts (development, tests).

        `auth` gives the access token of every Open API request (the passport and QR-code
        calls need none).
        """
        self._session = session
        self._auth = auth
        self._reported_fresh: str | None = None  # got through rejected_token
        self.proapi_requests = 0  # Open API requests sent
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
        proapi: bool = False,
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
        if status == PROAPI_RATE_LIMIT_HTTP_STATUS and proapi:
            # On the Open API, 429 is its rate limit (on the passport hosts a transient failure).
            raise Open115RateLimitError(f"{what} failed with HTTP {status} (rate limited)")
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
        if proapi and secret and secret.encode() in raw:
            # An answer quoting the token never hands it on.
            body = {key: _blank(item, secret) for key, item in body.items()}
        if status >= 400 and is_success(body):
            raise Open115ApiError(f"{what} failed with HTTP {status}")
        if raise_for_error and not is_success(body):
            raise error_for(body, what, secret, proapi=proapi)
        return body

    async def _proapi(
        self,
        method: str,
        path: str,
        what: str,
        *,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One Open API (proapi) request, with the token source's access token as a Bearer.

        The token is asked for right before the request. When 115 refuses it, the refusal is
        reported to the source once and the request sent once more with the token it gives;
        a second refusal raises `Open115AccessTokenError` with `reported` set. A token got
        that way and refused again (now or by a later request) is never reported again: a
        refusal a new token does not cure (40140118, 40100000) costs no rotation per request.
        """
        if self._auth is None:
            raise RuntimeError(f"{what}: this client has no access token source")
        token = await self._auth.async_get_access_token()
        try:
            return await self._bearer(
                method, path, what, token, data=data, params=params, headers=headers
            )
        except Open115AccessTokenError as err:
            if token == self._reported_fresh:
                err.reported = True  # got by reporting a refusal, and refused again
                raise
            refused = err
        try:
            fresh = await self._auth.async_get_access_token(rejected_token=token)
        except Open115AccessTokenError:
            refused.reported = True  # the source has nothing else
            raise refused from None
        if fresh == token:  # the source kept it: sending it again would be refused again
            refused.reported = True
            raise refused
        self._reported_fresh = fresh
        try:
            return await self._bearer(
                method, path, what, fresh, data=data, params=params, headers=headers
            )
        except Open115AccessTokenError as err:
            err.reported = True
            raise

    async def _bearer(
        self,
        method: str,
        path: str,
        what: str,
        token: str,
        *,
        data: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        """Send one proapi request with `token` (counted in `proapi_requests`)."""
        self.proapi_requests += 1
        return await self._request(
            method,
            f"{self.proapi_url}{path}",
            what,
            data=data,
            params=params,
            headers={**(headers or {}), "Authorization": f"Bearer {token}"},
            secret=token,
            proapi=True,
        )


def _blank(value: Any, secret: str) -> Any:
    """`value` with `secret` replaced by *** in every string it holds."""
    if isinstance(value, str):
        return value.replace(secret, "***")
    if isinstance(value, dict):
        return {key: _blank(item, secret) for key, item in value.items()}
    if isinstance(value, list):
        return [_blank(item, secret) for item in value]
    return value
