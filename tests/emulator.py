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
import base64
from collections import Counter
from collections.abc import Callable
import contextlib
import dataclasses
from dataclasses import dataclass, field
import hashlib
import hmac
import itertools
import json
import logging
import pathlib
import secrets
import signal
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
# Device-code (QR, PKCE) authorization.
DEVICE_CODE_PATH = "/open/authDeviceCode"
QR_STATUS_PATH = "/get/status/"
DEVICE_TOKEN_PATH = "/open/deviceCodeToToken"
DEFAULT_APP_ID = "100195123"
QR_WAITING, QR_SCANNED, QR_CONFIRMED, QR_EXPIRED, QR_CANCELLED = 0, 1, 2, -1, -2
CHALLENGE_DIGESTS = {"md5": "md5", "sha1": "sha1", "sha256": "sha256"}
# The codes 115 answers for bad device-code parameters (its error table; the emulator's pick
# for an unknown, unconfirmed or used code: 40140134, "code check failed").
CODE_BAD_CLIENT_ID = 40140100
CODE_NO_CHALLENGE = 40140101
CODE_BAD_CHALLENGE_METHOD = 40140102
CODE_NO_SIGN = 40140103
CODE_BAD_SIGN = 40140104
CODE_BAD_APP_ID = 40140106
CODE_VERIFIER_LENGTH = 40140112
CODE_VERIFIER_MISMATCH = 40140113
CODE_BAD_DEVICE_CODE = 40140134


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
class EmulatedDeviceCode:
    """A device code (QR code) handed out by /open/authDeviceCode."""

    uid: str
    time: int
    sign: str
    qrcode: str
    app_id: str
    challenge: str
    method: str
    created_at: float
    status: int = QR_WAITING
    user_id: int | None = None
    redeemed: bool = False
    reported: int = QR_WAITING  # the status the last long poll answered
    changed: asyncio.Event | None = field(default=None, repr=False)


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
    # The same per path (e.g. "never two refreshes in flight", while user info may overlap).
    in_flight_by_path: Counter[str] = field(default_factory=Counter)
    max_in_flight_by_path: Counter[str] = field(default_factory=Counter)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _release: asyncio.Event | None = None
    _issued: set[str] = field(default_factory=set)
    # Device-code (QR) authorization: the AppIDs 115 knows, the codes, their lifetime.
    device_apps: set[str] = field(default_factory=lambda: {DEFAULT_APP_ID})
    device_codes: dict[str, EmulatedDeviceCode] = field(default_factory=dict)
    device_code_lifetime: float = 300.0
    held_polls: int = 0  # long polls waiting for a change right now
    holds: int = 0  # long polls ever held
    _holds_seen: int = 0
    _device_event: asyncio.Event | None = None

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
        app.router.add_post(DEVICE_CODE_PATH, self._auth_device_code)
        app.router.add_get(QR_STATUS_PATH, self._qr_status)
        app.router.add_post(DEVICE_TOKEN_PATH, self._device_code_to_token)
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
        self.in_flight_by_path[path] += 1
        self.max_in_flight_by_path[path] = max(
            self.max_in_flight_by_path[path], self.in_flight_by_path[path]
        )
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
            self.in_flight_by_path[REFRESH_PATH] -= 1

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
            self.in_flight_by_path[USER_INFO_PATH] -= 1

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

    # ----- device-code (QR, PKCE) authorization ----------------------------------------------
    # Tests drive the phone's side: scan, confirm, cancel, expire. The long poll on
    # /get/status/ is held until the status changes (never sleeping): `end_long_polls()` plays
    # 115's own wait running out, `release()` lets everything go.

    def device_code(self, uid: str | None = None) -> EmulatedDeviceCode:
        """A device code by uid, or the newest one."""
        if uid is not None:
            return self.device_codes[uid]
        return list(self.device_codes.values())[-1]

    def scan_device_code(
        self, uid: str | None = None, user_id: int = 310000001
    ) -> EmulatedDeviceCode:
        """The 115 app of `user_id` scans the QR code."""
        code = self.device_code(uid)
        self.add_account(user_id)
        code.user_id = user_id
        self._set_device_status(code, QR_SCANNED)
        return code

    def confirm_device_code(self, uid: str | None = None) -> EmulatedDeviceCode:
        """The user confirms the authorization on the phone (scanning first if needed)."""
        code = self.device_code(uid)
        if code.user_id is None:
            self.scan_device_code(code.uid)
        self._set_device_status(code, QR_CONFIRMED)
        return code

    def cancel_device_code(self, uid: str | None = None) -> EmulatedDeviceCode:
        """The user declines on the phone."""
        code = self.device_code(uid)
        self._set_device_status(code, QR_CANCELLED)
        return code

    def expire_device_code(self, uid: str | None = None) -> EmulatedDeviceCode:
        """The QR code times out on 115's side."""
        code = self.device_code(uid)
        self._set_device_status(code, QR_EXPIRED)
        return code

    def end_long_polls(self) -> None:
        """115's wait runs out: every held long poll answers the unchanged status."""
        for code in self.device_codes.values():
            self._wake(code)

    async def wait_for_device(self, predicate: Callable[[], bool]) -> None:
        """Return once `predicate` holds; checked whenever a device-code request comes or goes."""
        while not predicate():
            if self._device_event is None:
                self._device_event = asyncio.Event()
            await self._device_event.wait()

    async def wait_for_held_poll(self) -> None:
        """Return once a long poll is held that no earlier call returned for."""
        seen = self._holds_seen
        await self.wait_for_device(lambda: self.held_polls > 0 and self.holds > seen)
        self._holds_seen = self.holds

    def _device_changed(self) -> None:
        if self._device_event is not None:
            self._device_event.set()
            self._device_event = None

    def _set_device_status(self, code: EmulatedDeviceCode, status: int) -> None:
        code.status = status
        self._wake(code)

    @staticmethod
    def _wake(code: EmulatedDeviceCode) -> None:
        if code.changed is not None:
            code.changed.set()
            code.changed = None

    def _expire_if_due(self, code: EmulatedDeviceCode) -> None:
        if code.status in (QR_WAITING, QR_SCANNED) and (
            self.clock() >= code.created_at + self.device_code_lifetime
        ):
            code.status = QR_EXPIRED

    @staticmethod
    def _challenge_matches(code: EmulatedDeviceCode, verifier: str) -> bool:
        """Check the verifier against the challenge: standard or URL-safe base64, padded or not."""
        digest = hashlib.new(CHALLENGE_DIGESTS[code.method], verifier.encode()).digest()
        text = code.challenge.replace("-", "+").replace("_", "/")
        try:
            sent = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except ValueError:
            return False
        return hmac.compare_digest(sent, digest)

    async def _auth_device_code(self, request: web.Request) -> web.StreamResponse:
        fault = await self._begin(request)
        self._device_changed()
        try:
            if fault is not None:
                self._log(DEVICE_CODE_PATH, None, fault)
                return await self._fault_response(request, fault)
            form = await request.post()
            client_id = str(form.get("client_id", "")).strip()
            challenge = str(form.get("code_challenge", ""))
            method = str(form.get("code_challenge_method", ""))
            error = None
            if not client_id:
                error = CODE_BAD_CLIENT_ID, "client_id 错误"
            elif client_id not in self.device_apps:
                error = CODE_BAD_APP_ID, "APP ID 无效"
            elif not challenge:
                error = CODE_NO_CHALLENGE, "code_challenge 必填"
            elif method not in CHALLENGE_DIGESTS:
                error = (
                    CODE_BAD_CHALLENGE_METHOD,
                    "code_challenge_method 必须是 sha256、sha1、md5 之一",
                )
            if error is not None:
                self._log(DEVICE_CODE_PATH, error[0])
                return self._error(*error)
            uid = secrets.token_hex(16)
            code = EmulatedDeviceCode(
                uid=uid,
                time=int(self.clock()),
                sign=secrets.token_hex(20),
                qrcode=f"https://115.com/scan/dg-{uid}",
                app_id=client_id,
                challenge=challenge,
                method=method,
                created_at=self.clock(),
            )
            self.device_codes[uid] = code
            self._log(DEVICE_CODE_PATH, 0)
            data = {"uid": uid, "time": code.time, "qrcode": code.qrcode, "sign": code.sign}
            return web.json_response({"state": 1, "code": 0, "message": "", "data": data})
        finally:
            self.in_flight -= 1
            self.in_flight_by_path[DEVICE_CODE_PATH] -= 1

    async def _qr_status(self, request: web.Request) -> web.StreamResponse:
        fault = await self._begin(request)
        self._device_changed()
        try:
            if fault is not None:
                self._log(QR_STATUS_PATH, None, fault)
                return await self._fault_response(request, fault)
            query = request.query
            code = self.device_codes.get(query.get("uid", ""))
            if not query.get("sign"):
                self._log(QR_STATUS_PATH, CODE_NO_SIGN)
                return self._error(CODE_NO_SIGN, "sign 必填")
            if code is None or code.redeemed:
                self._log(QR_STATUS_PATH, 0)
                return web.json_response(
                    {"state": 0, "code": 0, "message": "二维码无效", "data": {}}
                )
            if query.get("sign") != code.sign or query.get("time") != str(code.time):
                self._log(QR_STATUS_PATH, CODE_BAD_SIGN)
                return self._error(CODE_BAD_SIGN, "sign 签名失败")
            self._expire_if_due(code)
            if code.status == code.reported and code.status in (QR_WAITING, QR_SCANNED):
                await self._hold_poll(code)
            code.reported = code.status
            self._log(QR_STATUS_PATH, 0)
            return self._status_answer(code.status)
        finally:
            self.in_flight -= 1
            self.in_flight_by_path[QR_STATUS_PATH] -= 1

    async def _hold_poll(self, code: EmulatedDeviceCode) -> None:
        """Wait for a change of the code (or the end of 115's wait, or `release()`)."""
        assert self._release is not None
        if code.changed is None:
            code.changed = asyncio.Event()
        waits = [
            asyncio.ensure_future(code.changed.wait()),
            asyncio.ensure_future(self._release.wait()),
        ]
        self.held_polls += 1
        self.holds += 1
        self._device_changed()
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.held_polls -= 1
            self._device_changed()
            for waiter in waits:
                waiter.cancel()

    @staticmethod
    def _status_answer(status: int) -> web.Response:
        messages = {
            QR_SCANNED: "扫码成功",
            QR_CONFIRMED: "已确认授权",
            QR_EXPIRED: "二维码已过期",
            QR_CANCELLED: "已取消授权",
        }
        if status == QR_WAITING:  # nothing to tell until the code is scanned
            return web.json_response({"state": 1, "code": 0, "message": "", "data": {}})
        # An expired code is dead (state 0); a cancelled one is reported in data only.
        state = 0 if status == QR_EXPIRED else 1
        data = {"msg": messages[status], "status": status, "version": ""}
        return web.json_response({"state": state, "code": 0, "message": "", "data": data})

    async def _device_code_to_token(self, request: web.Request) -> web.StreamResponse:
        fault = await self._begin(request)
        self._device_changed()
        try:
            if fault is not None:
                self._log(DEVICE_TOKEN_PATH, None, fault)
                return await self._fault_response(request, fault)
            form = await request.post()
            code = self.device_codes.get(str(form.get("uid", "")))
            verifier = str(form.get("code_verifier", ""))
            if not 43 <= len(verifier) <= 128:
                self._log(DEVICE_TOKEN_PATH, CODE_VERIFIER_LENGTH)
                return self._error(CODE_VERIFIER_LENGTH, "code_verifier 长度要求43~128位")
            self._issued.add(verifier)  # a secret of the client's: scan outputs for it too
            if code is not None:
                self._expire_if_due(code)
            if code is None or code.redeemed or code.status != QR_CONFIRMED:
                self._log(DEVICE_TOKEN_PATH, CODE_BAD_DEVICE_CODE)
                return self._error(CODE_BAD_DEVICE_CODE, "code 验证失败")
            if not self._challenge_matches(code, verifier):
                self._log(DEVICE_TOKEN_PATH, CODE_VERIFIER_MISMATCH)
                return self._error(CODE_VERIFIER_MISMATCH, "code_verifier 验证失败")
            assert code.user_id is not None
            code.redeemed = True
            grant = self.authorize(code.user_id, code.app_id)
            access = self.issue_access_token(grant)
            self._log(DEVICE_TOKEN_PATH, 0)
            data = {
                "access_token": access,
                "refresh_token": grant.refresh_token,
                "expires_in": self.expires_in,
            }
            return web.json_response({"state": 1, "code": 0, "message": "", "data": data})
        finally:
            self.in_flight -= 1
            self.in_flight_by_path[DEVICE_TOKEN_PATH] -= 1


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


_LOGGER = logging.getLogger("tests.emulator")
CONTROL_PREFIX = "/_emulator"
DEMO_USER_ID = 310000001
TOKEN_TOOL_APP_ID = "100195000"  # the app of the demo refresh token the emulator prints


class ControlledEmulator115(Emulator115):  # pragma: no cover - used by the standalone emulator
    """The emulator plus a control API under /_emulator, for another process to drive it.

    Only the standalone emulator (scripts/develop, tests/e2e) serves it, on loopback: it hands
    out the live tokens, so it is for development and tests only.
    - GET /_emulator/state: request counts per path, the grants (with their live refresh token
      and newest access token), the access tokens with their expiry, the voided refresh
      tokens, the request log, the settings.
    - POST /_emulator/config, JSON {"expires_in": s, "min_refresh_interval": s}: change them
      for the tokens issued from now on.
    - POST /_emulator/authorize, JSON {"user_id": n} (optional): a new authorization, as a new
      QR scan would make; answers its refresh token. With "user_name", a new account gets it.
    - POST /_emulator/qr/scan, /qr/confirm, /qr/cancel, JSON {"uid": s} (optional, else the
      newest QR code; "user_id" and "user_name" as above for scan and confirm): what the 115
      app does with a QR code shown by the setup dialog.

    With `state_file` set, the accounts, grants and tokens survive a restart of the emulator
    (loaded by `load()`, written after every answer of a 115 path and by `save()`), so that
    Home Assistant's stored tokens stay valid across `scripts/develop` runs.
    """

    state_file: str | None = None

    def _log(self, path: str, code: int | None, fault: str | None = None) -> None:
        """Also write each 115 request to the log (config/emulator.log): path and outcome only."""
        super()._log(path, code, fault)
        outcome = "no answer" if code is None else ("ok" if code == 0 else f"error {code}")
        _LOGGER.info("%s: %s%s", path, outcome, f" (injected: {fault})" if fault else "")

    def load(self) -> bool:
        """Read the saved state, if there is one; True when loaded."""
        if self.state_file is None:
            return False
        path = pathlib.Path(self.state_file)
        if not path.exists():
            return False
        saved = json.loads(path.read_text())
        self.accounts = {a["user_id"]: Account(**a) for a in saved["accounts"]}
        self.grants = {g["grant_id"]: Grant(**g) for g in saved["grants"]}
        self.access_tokens = {t: AccessToken(**a) for t, a in saved["access_tokens"].items()}
        self.used_refresh_tokens = dict(saved["used_refresh_tokens"])
        self._ids = itertools.count(max(self.grants, default=0) + 1)
        return True

    def save(self) -> None:
        """Write the state (when a state file is set)."""
        if self.state_file is None:
            return
        saved = {
            "accounts": [dataclasses.asdict(a) for a in self.accounts.values()],
            "grants": [dataclasses.asdict(g) for g in self.grants.values()],
            "access_tokens": {t: dataclasses.asdict(a) for t, a in self.access_tokens.items()},
            "used_refresh_tokens": self.used_refresh_tokens,
        }
        path = pathlib.Path(self.state_file)
        path.with_suffix(".tmp").write_text(json.dumps(saved))
        path.with_suffix(".tmp").replace(path)

    async def _save_after(self, request: web.Request, response: web.StreamResponse) -> None:
        """Save once a request may have changed tokens (a refresh, a QR code redeemed, ...)."""
        self.save()

    def app(self) -> web.Application:
        """The 115 paths plus the control paths."""
        app = super().app()
        app.on_response_prepare.append(self._save_after)
        app.router.add_get(f"{CONTROL_PREFIX}/state", self._control_state)
        app.router.add_post(f"{CONTROL_PREFIX}/config", self._control_config)
        app.router.add_post(f"{CONTROL_PREFIX}/authorize", self._control_authorize)
        for action in ("scan", "confirm", "cancel"):
            app.router.add_post(f"{CONTROL_PREFIX}/qr/{action}", self._control_qr)
        return app

    def state(self) -> dict[str, Any]:
        """What the control API reports."""
        newest: dict[int, str] = {}
        for token, at in self.access_tokens.items():
            newest[at.grant_id] = token  # issued in order, so the last one wins
        return {
            "now": self.clock(),
            "expires_in": self.expires_in,
            "min_refresh_interval": self.min_refresh_interval,
            "counts": dict(self.counters),
            "grants": [
                {
                    "grant_id": g.grant_id,
                    "user_id": g.user_id,
                    "app_id": g.app_id,
                    "alive": g.alive,
                    "refresh_token": g.refresh_token,
                    "access_token": newest.get(g.grant_id),
                    "authorized_at": g.authorized_at,
                    "last_refresh_at": g.last_refresh_at,
                }
                for g in self.grants.values()
            ],
            "access_tokens": {
                token: {"grant_id": at.grant_id, "expires_at": at.expires_at}
                for token, at in self.access_tokens.items()
            },
            "used_refresh_tokens": list(self.used_refresh_tokens),
            "secrets": sorted(self.secrets_issued()),  # every token string ever handed out
            "qr_codes": [
                {"uid": c.uid, "app_id": c.app_id, "status": c.status, "user_id": c.user_id}
                for c in self.device_codes.values()
            ],
            "requests": [
                {"path": r.path, "at": r.at, "code": r.code, "fault": r.fault}
                for r in self.requests
            ],
        }

    async def _control_state(self, request: web.Request) -> web.Response:
        return web.json_response(self.state())

    async def _control_config(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "expires_in" in body:
            self.expires_in = int(body["expires_in"])
        if "min_refresh_interval" in body:
            self.min_refresh_interval = float(body["min_refresh_interval"])
        return web.json_response(self.state())

    def _control_account(self, body: dict[str, Any]) -> None:
        """A control request's `user_name` names its `user_id`'s account when it is new."""
        if "user_id" in body and "user_name" in body:
            self.add_account(int(body["user_id"]), str(body["user_name"]))

    async def _control_authorize(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        self._control_account(body)
        grant = self.authorize(int(body.get("user_id", DEMO_USER_ID)))
        return web.json_response({"grant_id": grant.grant_id, "refresh_token": grant.refresh_token})

    async def _control_qr(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        uid = body.get("uid")
        if not self.device_codes or (uid is not None and uid not in self.device_codes):
            return web.json_response({"error": "no such QR code"}, status=404)
        action = request.path.rsplit("/", 1)[1]
        self._control_account(body)
        if action == "scan":
            code = self.scan_device_code(uid, int(body.get("user_id", DEMO_USER_ID)))
        elif action == "confirm":
            code = self.confirm_device_code(uid)
        else:
            code = self.cancel_device_code(uid)
        return web.json_response({"uid": code.uid, "status": code.status})


async def _main() -> None:  # pragma: no cover - a development tool
    parser = argparse.ArgumentParser(description="Serve the 115 emulator on loopback.")
    parser.add_argument("--port", type=int, default=8115, help="0 picks a free port")
    parser.add_argument("--expires-in", type=int, default=7200, help="access-token lifetime, s")
    parser.add_argument("--min-refresh-interval", type=float, default=30.0)
    parser.add_argument("--user-name", default="emu_user", help="the demo account's name")
    parser.add_argument(
        "--print-json",
        action="store_true",
        help="print one JSON line (base_url, refresh_token, grant_id, user_id, user_name)",
    )
    parser.add_argument(
        "--state-file", help="keep accounts and tokens in this JSON file across restarts"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    emulator = ControlledEmulator115(
        expires_in=args.expires_in, min_refresh_interval=args.min_refresh_interval
    )
    emulator.state_file = args.state_file
    emulator.load()
    account = emulator.add_account(DEMO_USER_ID, args.user_name)
    # Offer an authorization nobody has used yet; a used one's token is held by its user. It is
    # of a token tool's app, so that QR codes of DEFAULT_APP_ID (two live grants per app) do
    # not push it out, nor it them.
    unused = [
        g
        for g in emulator.grants.values()
        if g.alive
        and g.user_id == account.user_id
        and g.app_id == TOKEN_TOOL_APP_ID
        and g.last_refresh_at is None
    ]
    grant = unused[-1] if unused else emulator.authorize(account.user_id, TOKEN_TOOL_APP_ID)
    emulator.save()
    running = await RunningEmulator(emulator, args.port).start()
    _LOGGER.info(
        "Serving on %s: tokens live %s s, state in %s",
        running.base_url,
        args.expires_in,
        args.state_file or "memory",
    )
    if args.print_json:
        info = {
            "base_url": running.base_url,
            "refresh_token": grant.refresh_token,
            "grant_id": grant.grant_id,
            "user_id": account.user_id,
            "user_name": account.user_name,
        }
        print(json.dumps(info), flush=True)
    else:
        print(f"115 emulator on {running.base_url}", flush=True)
        print(
            f"Demo refresh token (paste it into the setup dialog): {grant.refresh_token}",
            flush=True,
        )
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # also when started in the background
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        emulator.save()
        await running.stop()


if __name__ == "__main__":  # pragma: no cover
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main())
