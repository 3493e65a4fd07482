"""The standalone emulator: a control API for another process, and `python -m tests.emulator`."""

import argparse
import asyncio
import dataclasses
import itertools
import json
import logging
import pathlib
import signal
from typing import Any

from aiohttp import web

from . import Emulator115
from .blob import Blob
from .core import (
    AccessToken,
    Account,
    Grant,
    RunningEmulator,
)
from .drive import DriveNode
from .offline import EmulatedTask

_LOGGER = logging.getLogger("tests.emulator")
CONTROL_PREFIX = "/_emulator"
DEMO_USER_ID = 310000001
TOKEN_TOOL_APP_ID = "100195000"  # the app of the demo refresh token the emulator prints
# /_emulator/token/<action>: how 115 refuses an authorization's refresh tokens from then on.
REFUSALS = {"revoke": 40140116, "dead": 40140137, "app_lost": 40140110}


# What POST /_emulator/drive may switch, with the type each value takes.
DRIVE_SETTINGS: dict[str, type] = {
    "sign_check_min_size": int,
    "sign_check_unknown": bool,
    "sign_envelope_codes": bool,
    "callback_shape": str,
    "token_shape": str,
    "oss_token_lifetime": float,
    "download_link_lifetime": float,
    "listing_delay": float,
    "missing_folder_error": bool,
}


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
    - POST /_emulator/offline/finish, /offline/fail, JSON {"info_hash": s} (optional, else the
      newest task): a cloud download completes or fails; /offline/progress also takes
      {"percent": n}; /offline/add, JSON {"url": s, "user_id": n}, adds a task as 115's app would.
    - POST /_emulator/proapi, JSON {"limit": 770004 | 406 | 429 | null, "float_sizes": bool}:
      switch proapi's rate limit on or off, send sizes as floats.
    - POST /_emulator/vip, JSON {"user_id": n, "level": s | null, "expires_at": unix time}:
      give or take VIP.
    - POST /_emulator/access_token/void, JSON {"grant_id": n} (optional, else every grant):
      115 drops the live access tokens early (proapi answers 40140123 until the next refresh).
    - POST /_emulator/token/revoke, /token/dead, /token/app_lost, JSON {"grant_id": n}
      (optional, else every live grant of "user_id", the demo account by default): 115 refuses
      the authorization's refresh tokens from now on, revoked (40140116), dead (40140137) or
      because the app lost its access (40140110); answers the grants and the code.
    - POST /_emulator/inject, JSON {"path": "/open/upload/init", "faults": ["code:770004"]}:
      queue faults for the next requests to a 115 path (see `EmulatorCore.inject`).
    - POST /_emulator/oss, JSON {"faults": ["callback_failed" | "token_expired" |
      "drop_part" | "oss_hang" | "no_upload_id" | "no_etag"]}: queue OSS faults (203
      CallbackFailed, 403 SecurityTokenExpired on the next OSS request, a connection dropped
      mid-part, aiohttp resends a PUT once, so queue two; a send never answered, a multipart
      start without an UploadId, a part without an ETag).
    - POST /_emulator/download, JSON {"cut_after": bytes}: the next download is cut short.
    - POST /_emulator/drive, JSON with any of DRIVE_SETTINGS: switch the drive's and the
      upload's behaviour (e.g. {"sign_check_unknown": false, "token_shape": "list"}).

    With `state_file` set, the accounts, grants, tokens and the drive (its bytes in a directory
    beside the state file, `<state>.blobs`) survive a restart of the emulator
    (loaded by `load()`, written after every answer of a 115 path and by `save()`), so that
    Home Assistant's stored tokens stay valid across `scripts/develop` runs.
    """

    state_file: str | None = None

    def _log(
        self, path: str, code: int | None, fault: str | None = None, grant_id: int | None = None
    ) -> None:
        """Also write each 115 request to the log (config/emulator.log): path and outcome only."""
        super()._log(path, code, fault, grant_id)
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
        self.offline_tasks = [EmulatedTask(**t) for t in saved.get("offline_tasks", [])]
        self.offline_used = {int(u): n for u, n in saved.get("offline_used", {}).items()}
        self.nodes = {n["file_id"]: DriveNode(**n) for n in saved.get("drive_nodes", [])}
        self.blobs = {
            sha1: Blob([(pathlib.Path(p), size) for p, size in segments])
            for sha1, segments in saved.get("blobs", {}).items()
            if all(pathlib.Path(p).exists() for p, _ in segments)
        }
        self._node_ids = itertools.count(
            max((int(n) for n in self.nodes), default=3000000000000000000) + 1
        )
        file_ids = [int(t.file_id) for t in self.offline_tasks if t.file_id.isdigit()]
        self._file_ids = itertools.count(max(file_ids, default=9000000000) + 1)
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
            "offline_tasks": [dataclasses.asdict(t) for t in self.offline_tasks],
            "offline_used": self.offline_used,
            "drive_nodes": [dataclasses.asdict(n) for n in self.nodes.values()],
            "blobs": {
                sha1: [[str(p), size] for p, size in blob.segments]
                for sha1, blob in self.blobs.items()
            },
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
        for action in ("finish", "fail", "progress", "add"):
            app.router.add_post(f"{CONTROL_PREFIX}/offline/{action}", self._control_offline)
        app.router.add_post(f"{CONTROL_PREFIX}/proapi", self._control_proapi)
        app.router.add_post(f"{CONTROL_PREFIX}/vip", self._control_vip)
        app.router.add_post(f"{CONTROL_PREFIX}/access_token/void", self._control_void)
        for action in REFUSALS:
            app.router.add_post(f"{CONTROL_PREFIX}/token/{action}", self._control_refuse)
        app.router.add_post(f"{CONTROL_PREFIX}/inject", self._control_inject)
        app.router.add_post(f"{CONTROL_PREFIX}/oss", self._control_oss)
        app.router.add_post(f"{CONTROL_PREFIX}/download", self._control_download)
        app.router.add_post(f"{CONTROL_PREFIX}/drive", self._control_drive)
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
            "offline_tasks": [dataclasses.asdict(t) for t in self.offline_tasks],
            "proapi_limit": self.proapi_limit,
            "float_sizes": self.float_sizes,
            "drive": [dataclasses.asdict(n) for n in self.nodes.values()],
            "recycle_bin": [dataclasses.asdict(n) for n in self.recycle_bin],
            "uploads": list(self.uploads),
            "multipart_uploads": list(self.multipart),
            "oss_requests": [
                {"op": op, "status": status, "code": code} for op, status, code in self.oss_requests
            ],
            "oss_faults": list(self.oss_faults),
            "drive_settings": {name: getattr(self, name) for name in DRIVE_SETTINGS},
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

    async def _control_offline(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        action = request.path.rsplit("/", 1)[1]
        if action == "add":
            user_id = int(body.get("user_id", DEMO_USER_ID))
            self.add_account(user_id)
            task = self.task(self.add_task(user_id, str(body["url"])))
        else:
            try:
                task = self.task(body.get("info_hash"))
            except KeyError:
                return web.json_response({"error": "no such task"}, status=404)
            if action == "finish":
                self.finish_task(task.info_hash)
            elif action == "fail":
                self.fail_task(task.info_hash)
            else:
                self.set_progress(task.info_hash, float(body.get("percent", 50)))
        self.save()
        return web.json_response(dataclasses.asdict(task))

    async def _control_proapi(self, request: web.Request) -> web.Response:
        body = await request.json()
        if "limit" in body:
            self.proapi_limit = None if body["limit"] is None else int(body["limit"])
        if "float_sizes" in body:
            self.float_sizes = bool(body["float_sizes"])
        return web.json_response({"limit": self.proapi_limit, "float_sizes": self.float_sizes})

    async def _control_vip(self, request: web.Request) -> web.Response:
        body = await request.json()
        user_id = int(body.get("user_id", DEMO_USER_ID))
        level = body.get("level")
        self.set_vip(user_id, level, float(body.get("expires_at", 0)))
        return web.json_response({"user_id": user_id, "vip": self.vip[user_id]})

    async def _control_inject(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            self.inject(str(body["path"]), *(str(f) for f in body.get("faults", [])))
        except (KeyError, ValueError) as err:
            return web.json_response({"error": str(err)}, status=400)
        return web.json_response({"path": body["path"], "queued": self.faults[body["path"]]})

    async def _control_oss(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            self.inject_oss(*(str(f) for f in body.get("faults", [])))
        except ValueError as err:
            return web.json_response({"error": str(err)}, status=400)
        return web.json_response({"queued": self.oss_faults})

    async def _control_download(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.download_cuts.append(int(body["cut_after"]))
        return web.json_response({"cuts": self.download_cuts})

    async def _control_drive(self, request: web.Request) -> web.Response:
        body = await request.json()
        unknown = set(body) - set(DRIVE_SETTINGS)
        if unknown:
            return web.json_response({"error": f"unknown settings {sorted(unknown)}"}, status=400)
        for name, value in body.items():
            setattr(self, name, DRIVE_SETTINGS[name](value))
        return web.json_response({name: getattr(self, name) for name in DRIVE_SETTINGS})

    async def _control_void(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        grant_id = body.get("grant_id")
        voided = [
            token
            for token, issued in self.access_tokens.items()
            if grant_id is None or issued.grant_id == int(grant_id)
        ]
        for token in voided:
            del self.access_tokens[token]
        return web.json_response({"voided": len(voided)})

    async def _control_refuse(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        code = REFUSALS[request.path.rsplit("/", 1)[1]]
        if "grant_id" in body:
            grant = self.grants.get(int(body["grant_id"]))
            if grant is None:
                return web.json_response({"error": "no such grant"}, status=404)
            grants = [grant]
        else:
            user_id = int(body.get("user_id", DEMO_USER_ID))
            grants = [g for g in self.grants.values() if g.alive and g.user_id == user_id]
        for grant in grants:
            self._kill(grant, code)
        self.save()
        return web.json_response({"grants": [g.grant_id for g in grants], "code": code})


async def main() -> None:  # pragma: no cover - a development tool
    parser = argparse.ArgumentParser(description="Serve the 115 emulator on loopback.")
    parser.add_argument("--port", type=int, default=8115, help="0 picks a free port")
    parser.add_argument("--expires-in", type=int, default=7200, help="access-token lifetime, s")
    # 115's frequency window for one authorization (the 2026 document: 60 s).
    parser.add_argument("--min-refresh-interval", type=float, default=60.0)
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
    if args.state_file:  # the drive's bytes live beside the state, to survive restarts
        emulator.blob_dir = pathlib.Path(args.state_file).with_suffix(".blobs")
        emulator.blob_dir.mkdir(parents=True, exist_ok=True)
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
