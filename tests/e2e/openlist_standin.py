"""A loopback stand-in of OpenList's two storage admin endpoints, written from OpenList's source.

What it models (OpenList 4, `OpenListTeam/OpenList` at 0b1e9d09, SDK `115-sdk-go` v0.2.6):
- server/middlewares/auth.go: the `Authorization` header is the raw admin token (no `Bearer `),
  compared whole; an empty header is the guest (disabled by default), anything else is parsed as
  a login JWT and refused. server/common/common.go: every answer is HTTP 200 with
  `{"code", "message", "data"}`; the real status is `code`.
- server/handles/storage.go `GetStorage`: `GET /api/admin/storage/get?id=N` answers the stored
  `model.Storage` (internal/model/storage.go: its fields and the embedded Sort and Proxy, flat).
- `UpdateStorage`: `POST /api/admin/storage/update` binds the JSON body onto a zero
  `model.Storage` (a missing field becomes its zero value, `mount_path` is required), then
  internal/op/storage.go `UpdateStorage` refuses a changed driver and saves the whole object
  (gorm `Save`, zero values included), and `initStorage` unmarshals `addition` (a JSON string)
  into the driver's Addition and runs its `Init`, then saves the Addition back as JSON.
- drivers/115_open: `Init` calls `/open/user/info` with the access token; the SDK
  (request.go `authRequest`) answers a `99` or `401xxxxx` code by refreshing with the stored
  refresh token (req_option.go drops empty form fields) and, on success, saves the new pair.

It runs in a thread of the test process (`with OpenListStandIn(...) as openlist:`); the 115 side
is the emulator. `requests` lists what reached it, `refreshes` what its SDK sent to 115.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
import json
import posixpath
import threading
from typing import Any, Self, override
from urllib.parse import parse_qs, urlsplit

import requests

GET_PATH = "/api/admin/storage/get"
UPDATE_PATH = "/api/admin/storage/update"
DRIVER = "115 Open"
GO_ZERO_TIME = "0001-01-01T00:00:00Z"
MOUNT_PATH_REQUIRED = (
    "Key: 'Storage.MountPath' Error:Field validation for 'MountPath' failed on the 'required' tag"
)

# model.Storage, its embedded Sort and Proxy flattened, in Go's JSON order.
STORAGE_FIELDS: dict[str, type] = {
    "id": int,
    "mount_path": str,
    "order": int,
    "driver": str,
    "cache_expiration": int,
    "custom_cache_policies": str,
    "status": str,
    "addition": str,
    "remark": str,
    "modified": datetime,
    "disabled": bool,
    "disable_index": bool,
    "enable_sign": bool,
    "order_by": str,
    "order_direction": str,
    "extract_folder": str,
    "web_proxy": bool,
    "webdav_policy": str,
    "proxy_range": bool,
    "down_proxy_url": str,
    "disable_proxy_sign": bool,
}
# drivers/115_open/meta.go Addition (driver.RootID first), in Go's JSON order.
ADDITION_FIELDS: dict[str, type] = {
    "root_folder_id": str,
    "order_by": str,
    "order_direction": str,
    "limit_rate": float,
    "page_size": int,
    "access_token": str,
    "refresh_token": str,
}
ZERO: dict[type, Any] = {int: 0, float: 0.0, str: "", bool: False, datetime: GO_ZERO_TIME}

# A sample 115 Open storage (id 7) with no zero value: a field a writer dropped would come back
# as zero.
STORAGE_ID = 7
ADDITION = {
    "root_folder_id": "2990000000000000001",
    "order_by": "file_name",
    "order_direction": "desc",
    "limit_rate": 2.5,
    "page_size": 500,
    "access_token": "access-token-openlist-had",
    "refresh_token": "refresh-token-openlist-had",
}
STORAGE: dict[str, Any] = {
    "id": STORAGE_ID,
    "mount_path": "/115",
    "order": 3,
    "driver": "115 Open",
    "cache_expiration": 45,
    "custom_cache_policies": "/movies:120",
    "status": "work",
    "addition": json.dumps(ADDITION),
    "remark": "kept by the recipe",
    "modified": "2026-11-30T08:00:00+08:00",
    "disabled": False,
    "disable_index": True,
    "enable_sign": True,
    "order_by": "name",
    "order_direction": "asc",
    "extract_folder": "front",
    "web_proxy": True,
    "webdav_policy": "use_proxy_url",
    "proxy_range": True,
    "down_proxy_url": "https://proxy.invalid/d",
    "disable_proxy_sign": True,
}


class BindError(ValueError):
    """What encoding/json or gin's validator says about a body."""


def go_unmarshal(raw: Any, fields: dict[str, type], struct: str) -> dict[str, Any]:
    """encoding/json onto a zero struct: missing or null fields stay zero, wrong types fail."""
    if not isinstance(raw, dict):
        raise BindError(
            f"json: cannot unmarshal {type(raw).__name__} into Go value of type {struct}"
        )
    out = {name: ZERO[kind] for name, kind in fields.items()}
    for name, kind in fields.items():
        value = raw.get(name)
        if value is None:
            continue
        ok = {
            int: isinstance(value, int) and not isinstance(value, bool),
            float: isinstance(value, int | float) and not isinstance(value, bool),
            str: isinstance(value, str),
            bool: isinstance(value, bool),
            datetime: isinstance(value, str),
        }[kind]
        if kind is datetime and ok:
            try:
                datetime.fromisoformat(value)
            except ValueError:
                ok = False
        if not ok:
            raise BindError(
                f"json: cannot unmarshal {type(value).__name__} into Go struct field "
                f"{struct}.{name} of type {kind.__name__}"
            )
        out[name] = value
    return out


def fix_and_clean_path(path: str) -> str:
    """pkg/utils/path.go FixAndCleanPath."""
    path = path.replace("\\", "/")
    if not path.startswith("/"):
        path = "/" + path
    return posixpath.normpath(path).replace("//", "/")


class OpenListStandIn:
    """OpenList's storage get/update endpoints with one 115 Open storage, on 127.0.0.1."""

    def __init__(self, admin_token: str, storage: dict[str, Any], api_base_url: str) -> None:
        """Keep `storage` (a full model.Storage) as id `storage["id"]`; 115 is `api_base_url`."""
        self.admin_token = admin_token
        self.api_base_url = api_base_url
        self.storages: dict[int, dict[str, Any]] = {storage["id"]: dict(storage)}
        self.requests: list[dict[str, Any]] = []
        self.refreshes: list[dict[str, Any]] = []
        self.down = False  # True: every connection is closed without an answer
        self.lock = threading.RLock()  # `wait_for` predicates may call `storage()`, `updates()`
        self.changed = threading.Condition(self.lock)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        """Serve."""
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def storage(self, storage_id: int) -> dict[str, Any]:
        """A copy of what is stored."""
        with self.lock:
            return dict(self.storages[storage_id])

    def updates(self) -> list[dict[str, Any]]:
        """The update requests so far."""
        with self.lock:
            return [r for r in self.requests if r["path"] == UPDATE_PATH]

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Until `predicate()` (called under the lock) holds, or `timeout` runs out."""
        with self.changed:
            return self.changed.wait_for(predicate, timeout)

    # ----- OpenList ---------------------------------------------------------------------------

    def _auth(self, header: str) -> tuple[int, str] | None:
        """middlewares.Auth(false) + AuthAdmin: None for the admin, else (code, message)."""
        if header == self.admin_token:
            return None
        if header == "":
            return 401, "Guest user is disabled, login please"
        return 401, "that's not even a token"  # common.ParseToken of anything but a login JWT

    def _get(self, query: str) -> tuple[int, str, Any]:
        raw = parse_qs(query).get("id", [""])[0]
        try:
            storage_id = int(raw)
        except ValueError:
            return 400, f'strconv.Atoi: parsing "{raw}": invalid syntax', None
        if storage_id not in self.storages:
            return 500, "record not found", None
        return 200, "success", dict(self.storages[storage_id])

    def _update(self, body: bytes) -> tuple[int, str, Any]:
        try:
            storage = go_unmarshal(json.loads(body), STORAGE_FIELDS, "model.Storage")
        except (ValueError, BindError) as err:
            return 400, str(err), None
        if not storage["mount_path"]:
            return (
                400,
                MOUNT_PATH_REQUIRED,
                None,
            )
        old = self.storages.get(storage["id"])
        if old is None:
            return 500, "failed get old storage: record not found", None
        if old["driver"] != storage["driver"]:
            return 500, "driver cannot be changed", None
        storage["modified"] = datetime.now(UTC).isoformat()
        storage["mount_path"] = fix_and_clean_path(storage["mount_path"])
        self.storages[storage["id"]] = storage  # gorm Save: the whole row, zero values too
        if storage["disabled"]:
            return 200, "success", None
        error = self._init_storage(storage)
        if error is not None:
            return 500, f"failed init storage: {error}", None
        return 200, "success", None

    def _init_storage(self, storage: dict[str, Any]) -> str | None:
        """op.initStorage for the 115 Open driver; the error text, or None."""
        try:
            addition = go_unmarshal(json.loads(storage["addition"]), ADDITION_FIELDS, "Addition")
        except (ValueError, BindError) as err:
            storage["status"] = str(err)
            return str(err)
        error = self._driver_init(addition)
        storage["status"] = "work" if error is None else error
        # MustSaveDriverStorage: the Addition as the driver now holds it.
        storage["addition"] = json.dumps(addition, separators=(",", ":"))
        return error

    def _driver_init(self, addition: dict[str, Any]) -> str | None:
        """Open115.Init: UserInfo through the SDK's authRequest, then the page size default."""
        error = self._user_info(addition, retry=False)
        if addition["page_size"] <= 0:
            addition["page_size"] = 200
        elif addition["page_size"] > 1150:
            addition["page_size"] = 1150
        return error

    def _user_info(self, addition: dict[str, Any], *, retry: bool) -> str | None:
        headers = {}
        if addition["access_token"]:
            headers["Authorization"] = f"Bearer {addition['access_token']}"
        answer = requests.get(f"{self.api_base_url}/open/user/info", headers=headers, timeout=10)
        reply = answer.json()
        if reply.get("state"):
            return None
        # The SDK reads `code`; proapi sends it (shared/spec), the emulator sends `errno`.
        code = int(reply.get("code") or reply.get("errno") or 0)
        if not retry and (code == 99 or str(code).startswith("401")):
            form = {"refresh_token": addition["refresh_token"]}
            sent = {k: v for k, v in form.items() if v != ""}  # removeEmptyForm
            refreshed = requests.post(
                f"{self.api_base_url}/open/refreshToken", data=sent, timeout=10
            ).json()
            self.refreshes.append({"sent": sent, "code": refreshed.get("code")})
            if refreshed.get("code", 0) != 0:
                return f"code: {refreshed['code']}, message: {refreshed.get('message', '')}"
            data = refreshed["data"]
            addition["access_token"] = data["access_token"]  # onRefreshToken saves the pair
            addition["refresh_token"] = data["refresh_token"]
            return self._user_info(addition, retry=True)
        return f"code: {code}, message: {reply.get('message') or reply.get('error', '')}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, method: str) -> None:
                if standin.down:
                    self.close_connection = True
                    return
                url = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                header = self.headers.get("Authorization", "")
                with standin.changed:
                    record = {
                        "method": method,
                        "path": url.path,
                        "authorization_ok": header == standin.admin_token,
                        "content_type": self.headers.get("Content-Type"),
                        "body": body,
                    }
                    refused = standin._auth(header)
                    if refused is not None:
                        code, message, data = *refused, None
                    elif (method, url.path) == ("GET", GET_PATH):
                        code, message, data = standin._get(url.query)
                    elif (method, url.path) == ("POST", UPDATE_PATH):
                        code, message, data = standin._update(body)
                    else:
                        code, message, data = 404, "not found", None
                    record["answer"] = {"code": code, "message": message}
                    standin.requests.append(record)
                    standin.changed.notify_all()
                text = json.dumps({"code": code, "message": message, "data": data}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                self._answer("POST")

            @override
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests read `requests`."""

        return Handler
