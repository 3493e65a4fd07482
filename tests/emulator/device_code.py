"""The device-code (QR, PKCE) sign-in: /open/authDeviceCode, /get/status/, /open/deviceCodeToToken."""

import asyncio
import base64
from collections.abc import Callable
from dataclasses import dataclass, field
import hashlib
import hmac
import secrets

from aiohttp import web

from .core import (
    EmulatorCore,
)

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
class DeviceCodeEndpoints(EmulatorCore):
    """The QR sign-in's three endpoints, driven from the phone's side by tests."""

    # Device-code (QR) authorization: the AppIDs 115 knows, the codes, their lifetime.
    device_apps: set[str] = field(default_factory=lambda: {DEFAULT_APP_ID})
    device_codes: dict[str, EmulatedDeviceCode] = field(default_factory=dict)
    device_code_lifetime: float = 300.0
    # Sources disagree on how a dead code is told: data.status -1/-2 (the older cookie login,
    # handled by clients) or only top-level state 0 (the document). True: the latter.
    qr_dead_as_state0: bool = False
    held_polls: int = 0  # long polls waiting for a change right now
    holds: int = 0  # long polls ever held
    _holds_seen: int = 0
    _device_event: asyncio.Event | None = None

    def _add_routes(self, app: web.Application) -> None:
        super()._add_routes(app)
        app.router.add_post(DEVICE_CODE_PATH, self._auth_device_code)
        app.router.add_get(QR_STATUS_PATH, self._qr_status)
        app.router.add_post(DEVICE_TOKEN_PATH, self._device_code_to_token)

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

    def _status_answer(self, status: int) -> web.Response:
        messages = {
            QR_SCANNED: "扫码成功",
            QR_CONFIRMED: "已确认授权",
            QR_EXPIRED: "二维码已过期",
            QR_CANCELLED: "已取消授权",
        }
        if status == QR_WAITING:  # nothing to tell until the code is scanned
            return web.json_response({"state": 1, "code": 0, "message": "", "data": {}})
        if self.qr_dead_as_state0 and status in (QR_EXPIRED, QR_CANCELLED):
            # The document's reading: state 0 says the code is dead, without a status.
            return web.json_response(
                {"state": 0, "code": 0, "message": messages[status], "data": {}}
            )
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
