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
    Open115ApiError,
    Open115RateLimitError,
    Open115TransientError,
    error_for,
    is_success,
)

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
        access_token: str,
        *,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One Open API (proapi) request with the access token as a Bearer header."""
        return await self._request(
            method,
            f"{self.proapi_url}{path}",
            what,
            data=data,
            params=params,
            headers={"Authorization": f"Bearer {access_token}"},
            secret=access_token,
            proapi=True,
        )
