"""Upload scheduling (proapi): upload/init with the sign check, get_token, upload/resume.

What is modelled, from which source (commits as in shared/spec/115-open-api.md):
- `POST /open/upload/init` form file_name, file_size, target=U_1_<cid>, fileid (upper SHA1),
  preid (SHA1 of the first 128 KiB; qmediasync sends `pre_id`: both accepted, neither checked),
  topupload, sign_key, sign_val: restic-115@a4175a2 docs/115-api/.../文件上传.md;
  115-sdk-go@788107e upload.go; OpenList@0b1e9d0 drivers/115_open/driver.go Put.
  - status 2 (秒传): 115 holds a file with that SHA1: a new file is made, `file_id` and
    `pick_code` returned, `callback: []`, bucket/object "" (restic-115
    docs/115-fast-upload-behavior.md, a captured answer).
  - status 7 / 701: `sign_key` and `sign_check` "start-end", an inclusive random range
    (文件上传.md "二次认证"; OpenList driver.go comment; p115client@608a443 client.py
    upload_file_init: asked for files of 1 MiB or more, `sign_check_min_size`). The answer has
    `state: true`: 115-sdk-go (request.go) and p115client read `data.status` only when state is
    true, and restic-115 (src/open115/client.rs upload_init) treats any envelope code ≠ 0 as a
    failure yet handles status 6 to 8 from `data`: so the envelope says code 0 unless
    `sign_envelope_codes` is set (then 701/700/702 beside `state: true`).
  - the second init carries sign_key and sign_val = upper SHA1 of that range. For a SHA1 the
    emulator holds it checks at once: right → status 2, wrong → status 8 / 702, an unknown or
    used sign_key → status 6 / 700. For a new file it cannot check (it has no bytes): it
    answers status 1 and checks the claim against the bytes when OSS calls back (a false claim
    fails the callback). `sign_check_unknown` (default on, p115client's "≥ 1 MiB") asks the
    check for new files too; off, only for SHA1s it holds.
  - status 1: `bucket` ("fhnfile", p115client modules/p115oss/p115oss/oss.py DEFAULT_BUCKET),
    `object`, `callback` {callback, callback_var} as JSON strings (the client base64-encodes
    them as received: OpenList upload.go, p115oss oss.py): `callback` has `callbackUrl` and
    `callbackBody` (qmediasync upload.go reads them), `callback_var` has `x:pick_code`,
    `x:target`, `x:user_id` (p115client client.py upload_resume). `callback_shape` "list" sends
    it as a one-item list (the document's "object []"; 115-sdk-go json_types StructOrArray).
- `GET /open/upload/get_token` → endpoint ("http://oss-cn-shenzhen.aliyuncs.com", p115oss
  DEFAULT_ENDPOINT; qmediasync signs V4 for region cn-shenzhen), AccessKeyId, AccessKeySecret,
  SecurityToken, Expiration (ISO 8601 UTC, `oss_token_lifetime` s): 获取上传凭证.md;
  115-sdk-go upload.go; `token_shape` "list" sends a one-item list (restic-115
  docs/debugging-notes.md 4.2: an object, though the document says a list).
- `POST /open/upload/resume` form file_size, target, fileid, pick_code → pick_code, target,
  version, bucket, object, callback again (断点续传.md; 115-sdk-go upload.go UploadResume).
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime
import json
import random
import secrets
from typing import Any

from aiohttp import web

from .drive import CODE_BAD_PARAMS, CODE_FOLDER_MISSING, DriveEndpoints

UPLOAD_INIT_PATH = "/open/upload/init"
UPLOAD_TOKEN_PATH = "/open/upload/get_token"
UPLOAD_RESUME_PATH = "/open/upload/resume"
UPLOAD_PATHS = (UPLOAD_INIT_PATH, UPLOAD_TOKEN_PATH, UPLOAD_RESUME_PATH)

STATUS_UPLOAD, STATUS_INSTANT = 1, 2
STATUS_SIGN_FAILED_AFTER, STATUS_SIGN_NEEDED, STATUS_SIGN_WRONG = 6, 7, 8
SIGN_CODES = {STATUS_SIGN_FAILED_AFTER: 700, STATUS_SIGN_NEEDED: 701, STATUS_SIGN_WRONG: 702}
CODE_NO_UPLOAD = 1002  # the emulator's choice: resume of an unknown pick code
OSS_BUCKET = "fhnfile"
OSS_ENDPOINT = "http://oss-cn-shenzhen.aliyuncs.com"
CALLBACK_URL = "https://callback.115.emulator.invalid/open/upload/callback"
MIB = 1024 * 1024


@dataclass
class PendingUpload:
    """An upload 115 scheduled (status 1): where OSS must put it and what it must be."""

    user_id: int
    pick_code: str
    cid: str
    file_name: str
    file_size: int
    sha1: str
    bucket: str
    object: str
    callback: str
    callback_var: str
    # A sign check 115 could not verify when asked (a new file): checked on the callback.
    sign_range: tuple[int, int] | None = None
    sign_val: str = ""


@dataclass
class SignCheck:
    """A sign check handed out by a first init, answered by the next one."""

    user_id: int
    sha1: str
    start: int
    end: int


@dataclass
class OssCredentials:
    """Temporary OSS credentials from get_token."""

    user_id: int
    access_key_id: str
    access_key_secret: str
    security_token: str
    expires_at: float


@dataclass
class UploadEndpoints(DriveEndpoints):
    """upload/init, get_token and upload/resume; tests set the switches."""

    sign_check_min_size: int = MIB
    sign_check_unknown: bool = True
    sign_envelope_codes: bool = False
    callback_shape: str = "object"  # or "list"
    token_shape: str = "object"  # or "list"
    oss_token_lifetime: float = 3600.0
    oss_endpoint: str = OSS_ENDPOINT
    oss_bucket: str = OSS_BUCKET
    uploads: dict[str, PendingUpload] = field(default_factory=dict)  # by pick code
    sign_checks: dict[str, SignCheck] = field(default_factory=dict)  # by sign_key
    oss_credentials: dict[str, OssCredentials] = field(default_factory=dict)  # by key id
    init_forms: list[dict[str, str]] = field(default_factory=list)  # what init received
    rng: random.Random = field(default_factory=random.Random)

    def _add_routes(self, app: web.Application) -> None:
        super()._add_routes(app)
        app.router.add_post(UPLOAD_INIT_PATH, self._upload_init)
        app.router.add_get(UPLOAD_TOKEN_PATH, self._upload_token)
        app.router.add_post(UPLOAD_RESUME_PATH, self._upload_resume)

    async def _upload_init(self, request: web.Request) -> web.StreamResponse:
        return await self._serve_proapi(request, UPLOAD_INIT_PATH, self._answer_init)

    async def _upload_token(self, request: web.Request) -> web.StreamResponse:
        return await self._serve_proapi(request, UPLOAD_TOKEN_PATH, self._answer_token)

    async def _upload_resume(self, request: web.Request) -> web.StreamResponse:
        return await self._serve_proapi(request, UPLOAD_RESUME_PATH, self._answer_resume)

    def _callback_json(self, upload: PendingUpload) -> Any:
        pair = {"callback": upload.callback, "callback_var": upload.callback_var}
        return [pair] if self.callback_shape == "list" else pair

    def _status(self, status: int, data: dict[str, Any]) -> web.Response:
        """An init answer: `data` with its status (and the envelope code when switched on)."""
        code = SIGN_CODES.get(status, 0) if self.sign_envelope_codes else 0
        self._log(UPLOAD_INIT_PATH, code)
        body = {"state": True, "code": code, "message": "", "data": {"status": status, **data}}
        return web.json_response(body)

    def _instant(self, user_id: int, cid: str, name: str, size: int, sha1: str) -> web.Response:
        node = self.create_file(user_id, cid, name, size, sha1)
        return self._status(
            STATUS_INSTANT,
            {
                "file_id": node.file_id,
                "pick_code": node.pick_code,
                "bucket": "",
                "object": "",
                "target": f"U_1_{cid}",
                "callback": [],
            },
        )

    def _schedule(self, user_id: int, cid: str, name: str, size: int, sha1: str) -> PendingUpload:
        pick_code = self.new_pick_code()
        target = f"U_1_{cid}"
        callback = json.dumps(
            {
                "callbackUrl": CALLBACK_URL,
                "callbackBody": (
                    "bucket=${bucket}&object=${object}&etag=${etag}&size=${size}"
                    "&pick_code=${x:pick_code}&user_id=${x:user_id}&target=${x:target}"
                ),
                "callbackBodyType": "application/x-www-form-urlencoded",
            },
            separators=(",", ":"),
        )
        callback_var = json.dumps(
            {"x:pick_code": pick_code, "x:target": target, "x:user_id": str(user_id)},
            separators=(",", ":"),
        )
        upload = PendingUpload(
            user_id,
            pick_code,
            cid,
            name,
            size,
            sha1,
            self.oss_bucket,
            f"{secrets.token_hex(20)}/{secrets.token_hex(4)}",
            callback,
            callback_var,
        )
        self.uploads[pick_code] = upload
        return upload

    def _upload_data(self, upload: PendingUpload) -> dict[str, Any]:
        return {
            "pick_code": upload.pick_code,
            "target": f"U_1_{upload.cid}",
            "bucket": upload.bucket,
            "object": upload.object,
            "callback": self._callback_json(upload),
        }

    async def _answer_init(self, request: web.Request, user_id: int) -> web.StreamResponse:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.init_forms.append(form)
        name = form.get("file_name", "").strip()
        sha1 = form.get("fileid", "").strip().upper()
        target = form.get("target", "")
        try:
            size = int(form.get("file_size", ""))
        except ValueError:
            size = -1
        cid = target.removeprefix("U_1_") if target.startswith("U_1_") else ""
        if not name or len(sha1) != 40 or size < 0 or not cid:
            self._log(UPLOAD_INIT_PATH, CODE_BAD_PARAMS)
            return self._error(CODE_BAD_PARAMS, "参数错误", proapi=True)
        if cid != "0" and self._folder(user_id, cid) is None:
            self._log(UPLOAD_INIT_PATH, CODE_FOLDER_MISSING)
            return self._error(CODE_FOLDER_MISSING, "目录不存在", proapi=True)
        held = self.blobs.get(sha1)
        known = held is not None and held.size == size  # 115 knows bytes by SHA1 and size
        sign_key = form.get("sign_key", "")
        if sign_key:
            check = self.sign_checks.pop(sign_key, None)
            if check is None or check.user_id != user_id or check.sha1 != sha1:
                return self._status(STATUS_SIGN_FAILED_AFTER, {"sign_key": "", "sign_check": ""})
            sign_val = form.get("sign_val", "")
            if known:
                if sign_val != self.blobs[sha1].range_sha1(check.start, check.end):
                    return self._status(STATUS_SIGN_WRONG, {"sign_key": "", "sign_check": ""})
                return self._instant(user_id, cid, name, size, sha1)
            upload = self._schedule(user_id, cid, name, size, sha1)
            upload.sign_range, upload.sign_val = (check.start, check.end), sign_val
            return self._status(STATUS_UPLOAD, self._upload_data(upload))
        if size >= self.sign_check_min_size and (known or self.sign_check_unknown):
            start = self.rng.randrange(size)
            end = min(size - 1, start + self.rng.randrange(1, 2 * MIB))
            key = secrets.token_hex(20)
            self.sign_checks[key] = SignCheck(user_id, sha1, start, end)
            return self._status(
                STATUS_SIGN_NEEDED,
                {"sign_key": key, "sign_check": f"{start}-{end}", "pick_code": "", "file_id": ""},
            )
        if known:
            return self._instant(user_id, cid, name, size, sha1)
        upload = self._schedule(user_id, cid, name, size, sha1)
        return self._status(STATUS_UPLOAD, self._upload_data(upload))

    def issue_oss_credentials(self, user_id: int) -> OssCredentials:
        """New temporary credentials (what get_token hands out)."""
        creds = OssCredentials(
            user_id,
            f"STS.{secrets.token_hex(12).upper()}",
            secrets.token_urlsafe(30),
            f"CAIS{secrets.token_urlsafe(90)}",
            self.clock() + self.oss_token_lifetime,
        )
        self.oss_credentials[creds.access_key_id] = creds
        self._issued |= {creds.access_key_id, creds.access_key_secret, creds.security_token}
        return creds

    async def _answer_token(self, request: web.Request, user_id: int) -> web.StreamResponse:
        creds = self.issue_oss_credentials(user_id)
        expiration = datetime.fromtimestamp(creds.expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        data = {
            "endpoint": self.oss_endpoint,
            "AccessKeyId": creds.access_key_id,
            "AccessKeySecret": creds.access_key_secret,
            "SecurityToken": creds.security_token,
            "Expiration": expiration,
        }
        return self._proapi_ok(UPLOAD_TOKEN_PATH, [data] if self.token_shape == "list" else data)

    async def _answer_resume(self, request: web.Request, user_id: int) -> web.StreamResponse:
        form = await request.post()
        upload = self.uploads.get(str(form.get("pick_code", "")))
        if upload is None or upload.user_id != user_id:
            self._log(UPLOAD_RESUME_PATH, CODE_NO_UPLOAD)
            return self._error(CODE_NO_UPLOAD, "上传任务不存在", proapi=True)
        return self._proapi_ok(UPLOAD_RESUME_PATH, {**self._upload_data(upload), "version": ""})
