"""The emulator's core: accounts, grants, tokens, fault injection and the request log.

Each group of 115 endpoints is a mixin of its own module (auth, account, device_code); the
package's `Emulator115` combines them. A mixin adds its routes in `_add_routes`.
"""

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
import itertools
import json
import secrets
import time
from typing import Any

from aiohttp import web

YEAR = 365 * 24 * 3600

# Faults a test can queue for the next request(s) to a path.
FAULT_HANG = "hang"  # never answer (until the client times out)
FAULT_HTTP_500 = "http500"
FAULT_HTTP_502 = "http502"
FAULT_HTTP_429 = "http429"
FAULT_HTML = "html"  # a gateway's HTML error page with HTTP 200
FAULT_RESET = "reset"  # close the connection without answering, nothing done
FAULT_DROP_AFTER_ROTATE = "drop_after_rotate"  # rotate, then close without answering
# An error answer without a usable code, as reported in 2025-03: errno 0, "refresh token error".
FAULT_CODELESS = "codeless"
# A successful refresh whose answer holds no new refresh token; the sent one stays valid (two
# independent clients handle this; see shared/spec/115-open-api.md, "Refresh").
FAULT_NO_REFRESH_TOKEN = "no_refresh_token"
# A successful refresh (the token rotates) whose answer is malformed in one way; every field of
# the answer is "not required" in 115's document (shared/spec/seed-refresh-token-doc.md).
FAULT_NO_EXPIRES_IN = "no_expires_in"
FAULT_EXPIRES_IN_ZERO = "expires_in_zero"
FAULT_EXPIRES_IN_FLOAT = "expires_in_float"
FAULT_EXPIRES_IN_BOOL = "expires_in_bool"
FAULT_NO_ACCESS_TOKEN = "no_access_token"
MALFORMED_FAULTS = frozenset(
    {
        FAULT_NO_EXPIRES_IN,
        FAULT_EXPIRES_IN_ZERO,
        FAULT_EXPIRES_IN_FLOAT,
        FAULT_EXPIRES_IN_BOOL,
        FAULT_NO_ACCESS_TOKEN,
    }
)
# "code:<n>" answers a 115 error with code n; "body:<status>:<text>" answers `text` verbatim
# (as application/json) with HTTP `status`; see `inject_body`.
FAULTS = frozenset(
    {
        FAULT_HANG,
        FAULT_HTTP_500,
        FAULT_HTTP_502,
        FAULT_HTTP_429,
        FAULT_HTML,
        FAULT_RESET,
        FAULT_DROP_AFTER_ROTATE,
        FAULT_CODELESS,
        FAULT_NO_REFRESH_TOKEN,
        *MALFORMED_FAULTS,
    }
)
REFRESH_PATH = "/open/refreshToken"
USER_INFO_PATH = "/open/user/info"


@dataclass
class Account:
    """An emulated 115 account."""

    user_id: int
    user_name: str
    space_total: int = 2 * 1024**4
    space_used: int = 512 * 1024**3


@dataclass
class Grant:
    """One authorization of an app by an account; its refresh token rotates."""

    grant_id: int
    user_id: int
    app_id: str
    authorized_at: float
    refresh_token: str
    alive: bool = True
    dead_code: int = 0
    last_refresh_at: float | None = None  # the last successful refresh
    last_request_at: float | None = None  # the last refresh request of any of its tokens
    refused: int = 0  # refreshes refused as revoked/used/expired (see dead_after_failures)

    @property
    def refresh_expires_at(self) -> float:
        """The one-year limit, counted from the authorization."""
        return self.authorized_at + YEAR


@dataclass
class AccessToken:
    """An issued access token."""

    grant_id: int
    expires_at: float


@dataclass
class LoggedRequest:
    """What the emulator saw: path, time, and the answer's code (0 for success)."""

    path: str
    at: float
    code: int | None
    fault: str | None = None
    # The authorization a refresh request was for, when known (not part of equality).
    grant_id: int | None = field(default=None, compare=False)


@dataclass
class EmulatorCore:
    """State and rules shared by every group of endpoints; `app()` serves them."""

    clock: Callable[[], float] = time.time
    expires_in: int = 7200
    # Frequency control: a refresh of one authorization within this many seconds of the last
    # one is answered 40140117 (the 2026 document: 60 s per authorization).
    min_refresh_interval: float = 60.0
    # Strict: the access tokens of an authorization stop working when it is refreshed (the 2026
    # document tells callers to stop using pre-refresh credentials).
    strict_access_tokens: bool = False
    # After this many refused refreshes (40140116/119/120), an authorization's tokens answer
    # 40140137 ("stop retrying and authorize again") from then on; None: never.
    dead_after_failures: int | None = None
    max_grants_per_app: int = 2
    accounts: dict[int, Account] = field(default_factory=dict)
    grants: dict[int, Grant] = field(default_factory=dict)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)
    used_refresh_tokens: dict[str, int] = field(default_factory=dict)
    faults: dict[str, list[str]] = field(default_factory=dict)
    requests: list[LoggedRequest] = field(default_factory=list)
    counters: Counter[str] = field(default_factory=Counter)
    in_flight: int = 0
    max_in_flight: int = 0
    # The same per path (e.g. "never two refreshes in flight", while user info may overlap).
    in_flight_by_path: Counter[str] = field(default_factory=Counter)
    max_in_flight_by_path: Counter[str] = field(default_factory=Counter)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _release: asyncio.Event | None = None
    _issued: set[str] = field(default_factory=set)

    # ----- set-up helpers for tests and scripts -------------------------------------------

    def add_account(self, user_id: int = 310000001, user_name: str = "emu_user") -> Account:
        """Create an account (or return the existing one)."""
        return self.accounts.setdefault(user_id, Account(user_id, user_name))

    def authorize(
        self, user_id: int = 310000001, app_id: str = "100195123", *, at: float | None = None
    ) -> Grant:
        """Authorize an app for an account, as a QR scan would; returns the new grant.

        Past `max_grants_per_app` live grants, the oldest dies (40140116 from then on).
        """
        self.add_account(user_id)
        now = self.clock() if at is None else at
        live = sorted(
            (
                g
                for g in self.grants.values()
                if g.alive and g.user_id == user_id and g.app_id == app_id
            ),
            key=lambda g: g.authorized_at,
        )
        while len(live) >= self.max_grants_per_app:
            self._kill(live.pop(0), 40140116)
        grant = Grant(next(self._ids), user_id, app_id, now, self._new_token("rt"))
        self.grants[grant.grant_id] = grant
        return grant

    def live_refresh_token(self, grant: Grant) -> str:
        """The grant's current refresh token."""
        return self.grants[grant.grant_id].refresh_token

    def revoke(self, grant: Grant) -> None:
        """Revoke an authorization (the user removed the app in 115's settings)."""
        self._kill(self.grants[grant.grant_id], 40140116)

    def issue_access_token(self, grant: Grant, expires_in: int | None = None) -> str:
        """Issue an access token for a grant without a refresh (to seed stored state)."""
        token = self._new_token("at")
        self.access_tokens[token] = AccessToken(
            grant.grant_id, self.clock() + (expires_in or self.expires_in)
        )
        return token

    def rotate_elsewhere(self, grant: Grant) -> str:
        """Another program refreshes the grant: our copy of the refresh token becomes void."""
        g = self.grants[grant.grant_id]
        self.used_refresh_tokens[g.refresh_token] = g.grant_id
        g.refresh_token = self._new_token("rt")
        return g.refresh_token

    def inject(self, path: str, *faults: str) -> None:
        """Queue faults for the next requests to `path`, one per request."""
        for fault in faults:
            if fault not in FAULTS and not fault.startswith(("code:", "body:")):
                raise ValueError(f"unknown fault {fault}")
        self.faults.setdefault(path, []).extend(faults)

    def inject_body(self, path: str, body: str | dict[str, Any], *, status: int = 200) -> None:
        """Queue an answer with an arbitrary body (a dict is sent as JSON) for `path`."""
        text = body if isinstance(body, str) else json.dumps(body)
        self.inject(path, f"body:{status}:{text}")

    def count(self, path: str) -> int:
        """How many requests reached `path`."""
        return self.counters[path]

    def secrets_issued(self) -> set[str]:
        """Every token string this emulator has ever handed out."""
        out = set(self.access_tokens) | set(self.used_refresh_tokens) | self._issued
        out |= {g.refresh_token for g in self.grants.values()}
        return out

    # ----- the HTTP side --------------------------------------------------------------------

    def app(self) -> web.Application:
        """The aiohttp application serving all three 115 hosts' paths."""
        self._release = asyncio.Event()
        app = web.Application()
        self._add_routes(app)
        return app

    def _add_routes(self, app: web.Application) -> None:
        """Each group of endpoints adds its paths (and calls super())."""

    def release(self) -> None:
        """Let every hanging request end (call before stopping the server)."""
        if self._release is not None:
            self._release.set()

    def _new_token(self, prefix: str) -> str:
        token = f"{prefix}_{secrets.token_urlsafe(24)}"
        self._issued.add(token)
        return token

    def _kill(self, grant: Grant, code: int) -> None:
        grant.alive = False
        grant.dead_code = code
        for token, at in list(self.access_tokens.items()):
            if at.grant_id == grant.grant_id:
                del self.access_tokens[token]

    async def _begin(self, request: web.Request) -> str | None:
        """Count and log the request; return the queued fault, if any."""
        path = request.path
        self.counters[path] += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.in_flight_by_path[path] += 1
        self.max_in_flight_by_path[path] = max(
            self.max_in_flight_by_path[path], self.in_flight_by_path[path]
        )
        queue = self.faults.get(path)
        fault = queue.pop(0) if queue else None
        await asyncio.sleep(0)  # let concurrent requests overlap, as on a real server
        return fault

    def _log(
        self, path: str, code: int | None, fault: str | None = None, grant_id: int | None = None
    ) -> None:
        self.requests.append(LoggedRequest(path, self.clock(), code, fault, grant_id))

    async def _fault_response(self, request: web.Request, fault: str) -> web.StreamResponse:
        if fault == FAULT_HANG:
            assert self._release is not None
            await self._release.wait()
            return web.Response(status=503)
        if fault in (FAULT_RESET, FAULT_DROP_AFTER_ROTATE):
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=500)
        if fault.startswith("code:"):
            return self._error(int(fault.removeprefix("code:")), "injected")
        if fault == FAULT_CODELESS:
            return web.json_response({"state": 0, "errno": 0, "error": "refresh token error"})
        if fault.startswith("body:"):
            code_text, _, text = fault.removeprefix("body:").partition(":")
            return web.Response(status=int(code_text), text=text, content_type="application/json")
        if fault == FAULT_HTML:
            return web.Response(
                text="<html><body>502 Bad Gateway</body></html>", content_type="text/html"
            )
        status = {FAULT_HTTP_500: 500, FAULT_HTTP_502: 502, FAULT_HTTP_429: 429}[fault]
        return web.Response(status=status, text="error")

    @staticmethod
    def _error(code: int, message: str, *, proapi: bool = False) -> web.Response:
        """An error answer with both pairs, as captured real answers carry them.

        Passport: `{"state":0,"code":40140120,"errno":40140120,"data":{},"message":"refresh
        token error","error":"refresh token error"}`; proapi says `state: false`.
        """
        state: Any = False if proapi else 0
        return web.json_response(
            {
                "state": state,
                "code": code,
                "errno": code,
                "message": message,
                "error": message,
                "data": {},
            }
        )


class RunningEmulator:
    """An emulator served on 127.0.0.1 on a free (or given) port."""

    def __init__(self, emulator: EmulatorCore, port: int = 0) -> None:
        """Prepare; `start()` binds the port."""
        self.emulator = emulator
        self._port = port
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> RunningEmulator:
        """Bind and serve."""
        # handler_cancellation: a request whose client gave up (timeout, reset) ends here too,
        # so a "hang" stops counting as in flight once the client is gone.
        self._runner = web.AppRunner(
            self.emulator.app(), access_log=None, shutdown_timeout=0.1, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        """Release hanging requests and stop serving."""
        self.emulator.release()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
