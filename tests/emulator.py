"""A loopback emulator of the 115 Open Platform token endpoints.

It models the rules of shared/spec/115-open-api.md: refresh-token rotation (a used token is
void, 40140120), the one-year refresh-token limit (40140119), the per-app authorization limit
(a newer authorization kills the oldest, 40140116), frequency control (40140117), expiring
access tokens on /open/user/info (40140125), and per-request fault injection. It never sleeps
for real time: a "hang" fault waits on an event until the client gives up or the emulator
stops, so it works under Home Assistant's frozen test clock.

Run it alone with `python -m tests.emulator --port 8115` (scripts/develop does).
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from collections.abc import Callable
import contextlib
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
    last_refresh_at: float | None = None

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


@dataclass
class Emulator115:
    """State and rules of the emulated 115 service; `app()` serves it."""

    clock: Callable[[], float] = time.time
    expires_in: int = 7200
    min_refresh_interval: float = 30.0
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
        app.router.add_post(REFRESH_PATH, self._refresh)
        app.router.add_get(USER_INFO_PATH, self._user_info)
        return app

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
        queue = self.faults.get(path)
        fault = queue.pop(0) if queue else None
        await asyncio.sleep(0)  # let concurrent requests overlap, as on a real server
        return fault

    def _log(self, path: str, code: int | None, fault: str | None = None) -> None:
        self.requests.append(LoggedRequest(path, self.clock(), code, fault))

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
            code = int(fault.removeprefix("code:"))
            return web.json_response({"state": 0, "code": code, "message": "injected", "data": {}})
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
        state: Any = False if proapi else 0
        if proapi:
            return web.json_response({"state": state, "errno": code, "error": message, "data": {}})
        return web.json_response({"state": state, "code": code, "message": message, "data": {}})

    async def _refresh(self, request: web.Request) -> web.StreamResponse:
        fault = await self._begin(request)
        try:
            if fault is not None and fault != FAULT_DROP_AFTER_ROTATE:
                self._log(REFRESH_PATH, None, fault)
                return await self._fault_response(request, fault)
            form = await request.post()
            token = str(form.get("refresh_token", ""))
            code, response = self._do_refresh(token)
            self._log(REFRESH_PATH, code, fault)
            if fault == FAULT_DROP_AFTER_ROTATE:
                return await self._fault_response(request, fault)
            return response
        finally:
            self.in_flight -= 1

    def _do_refresh(self, token: str) -> tuple[int, web.Response]:
        now = self.clock()
        if not token:
            return 40140114, self._error(40140114, "refresh_token invalid (empty)")
        if token in self.used_refresh_tokens:
            return 40140120, self._error(40140120, "refresh token check failed")
        grant = next((g for g in self.grants.values() if g.refresh_token == token), None)
        if grant is None:
            return 40140114, self._error(40140114, "refresh token format error")
        if not grant.alive:
            return grant.dead_code, self._error(grant.dead_code, "refresh token invalid")
        if now >= grant.refresh_expires_at:
            return 40140119, self._error(40140119, "refresh token expired")
        last = max(
            (
                g.last_refresh_at
                for g in self.grants.values()
                if g.user_id == grant.user_id and g.last_refresh_at is not None
            ),
            default=None,
        )
        if last is not None and now - last < self.min_refresh_interval:
            return 40140117, self._error(40140117, "refresh frequently")
        grant.last_refresh_at = now
        self.used_refresh_tokens[token] = grant.grant_id
        grant.refresh_token = self._new_token("rt")
        access = self._new_token("at")
        self.access_tokens[access] = AccessToken(grant.grant_id, now + self.expires_in)
        return 0, web.json_response(
            {
                "state": 1,
                "code": 0,
                "message": "",
                "data": {
                    "access_token": access,
                    "refresh_token": grant.refresh_token,
                    "expires_in": self.expires_in,
                },
            }
        )

    async def _user_info(self, request: web.Request) -> web.StreamResponse:
        fault = await self._begin(request)
        try:
            return await self._answer_user_info(request, fault)
        finally:
            self.in_flight -= 1

    async def _answer_user_info(
        self, request: web.Request, fault: str | None
    ) -> web.StreamResponse:
        if fault is not None:
            self._log(USER_INFO_PATH, None, fault)
            return await self._fault_response(request, fault)
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip()
        at = self.access_tokens.get(token)
        if at is None:
            self._log(USER_INFO_PATH, 40140123)
            return self._error(40140123, "access_token format error", proapi=True)
        if self.clock() >= at.expires_at:
            self._log(USER_INFO_PATH, 40140125)
            return self._error(40140125, "access_token invalid", proapi=True)
        account = self.accounts[self.grants[at.grant_id].user_id]
        self._log(USER_INFO_PATH, 0)
        total, used = account.space_total, account.space_used
        return web.json_response(
            {
                "state": True,
                "code": 0,
                "message": "",
                "data": {
                    "user_id": str(account.user_id),
                    "user_name": account.user_name,
                    "user_face_s": "",
                    "rt_space_info": {
                        "all_total": {"size": total, "size_format": f"{total / 1024**4:.1f}TB"},
                        "all_remain": {"size": total - used, "size_format": ""},
                        "all_use": {"size": used, "size_format": ""},
                    },
                    "vip_info": {"level_name": "VIP", "expire": int(self.clock()) + YEAR},
                },
            }
        )


class RunningEmulator:
    """An emulator served on 127.0.0.1 on a free (or given) port."""

    def __init__(self, emulator: Emulator115, port: int = 0) -> None:
        """Prepare; `start()` binds the port."""
        self.emulator = emulator
        self._port = port
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> RunningEmulator:
        """Bind and serve."""
        self._runner = web.AppRunner(self.emulator.app(), access_log=None, shutdown_timeout=0.1)
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


async def _main() -> None:  # pragma: no cover - a development tool
    parser = argparse.ArgumentParser(description="Serve the 115 emulator on loopback.")
    parser.add_argument("--port", type=int, default=8115)
    parser.add_argument("--expires-in", type=int, default=7200, help="access-token lifetime, s")
    parser.add_argument("--min-refresh-interval", type=float, default=30.0)
    args = parser.parse_args()
    emulator = Emulator115(
        expires_in=args.expires_in, min_refresh_interval=args.min_refresh_interval
    )
    grant = emulator.authorize()
    running = await RunningEmulator(emulator, args.port).start()
    print(f"115 emulator on {running.base_url}", flush=True)
    print(f"Demo refresh token (paste it into the setup dialog): {grant.refresh_token}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await running.stop()


if __name__ == "__main__":  # pragma: no cover
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())
