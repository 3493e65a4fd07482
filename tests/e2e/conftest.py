"""Real processes for the end-to-end tests: the standalone 115 emulator and a real `hass`.

Everything goes over loopback HTTP and Home Assistant's websocket API, as the frontend does.
The tests are synchronous (`requests`, and aiohttp's websocket client on a loop of its own);
no in-process Home Assistant is set up here. Each process runs in its own process group that
the fixtures' finalizers end (and that the kernel ends with pytest, see `_die_with_parent`),
so no process is left behind, even when a test fails.

For any test module in this folder (each module gets its own pair of processes):
- `emulator` (module): an `EmulatorProcess` with its demo account; `.refresh_token` is an
  authorization nobody has used yet, `.state()`/`.grant()`/`.count()` read the control API.
- `hass_proc` (module): a `HassProcess` started with open115 pointed at that emulator,
  onboarded (the owner `OWNER` exists, onboarding is done, `.token` is the owner's long-lived
  token) and without any open115 entry yet. `.url`, `.get()`, `.post()`, `.websocket()`,
  `.login(username, password)`, `.restart()`, `.log_text`.
"""

import asyncio
from collections.abc import Iterator
import contextlib
import ctypes
import json
import os
from pathlib import Path
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any, Self

import aiohttp
import pytest
import pytest_socket
import requests

from .http_config import write_http_config

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# The `hass` the fixtures start: .venv's unless OPEN115_E2E_HASS names another (scripts/test runs
# test_e2e.py a second time with .venv-newest/bin/hass, the newest Home Assistant release).
HASS = Path(os.environ.get("OPEN115_E2E_HASS") or VENV_BIN / "hass")
CLIENT_ID = "http://127.0.0.1/"  # any URL; Home Assistant only checks the shape
OWNER = {"name": "Owner", "username": "owner", "password": "owner-password-1"}
START_TIMEOUT = 180.0  # a cold start on 2 slow cores, with the frontend
STOP_TIMEOUT = 60.0
DOMAIN = "open115"
CONSUMER = "open115_consumer"  # tests/e2e/consumer: another integration built on open115
EVENT = "open115_token_refreshed"


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations() -> None:
    """No in-process Home Assistant here: `hass` runs as a real process."""


@pytest.fixture(autouse=True)
def _sockets(socket_enabled: None) -> None:
    """The tests talk to their processes over loopback."""


def enable_sockets() -> None:
    """Allow sockets now (the HA test plugin disables them before every test)."""
    pytest_socket.enable_socket()


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup() -> None:
    """Allow sockets for every fixture here, also module-scoped ones.

    The HA test plugin disables sockets before each test, and module-scoped fixtures are set
    up before the per-test `socket_enabled`; every fixture here talks to its processes.
    """
    enable_sockets()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Have the kernel end the child when pytest dies (PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def spawn(
    args: list[str], *, env: dict[str, str], log: Path, **kwargs: Any
) -> subprocess.Popen[bytes]:
    """Start a process in its own process group, its output going to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own venv's programs
            args,
            env=env,
            stdout=kwargs.pop("stdout", out),
            stderr=out,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads in this process
            cwd=REPO,
            **kwargs,
        )


def stop_group(proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the process group, wait, then SIGKILL whatever is left of it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group, if any
    proc.wait()


class EmulatorProcess:
    """`python -m tests.emulator` with its control API (/_emulator/...)."""

    def __init__(
        self,
        log: Path,
        *,
        expires_in: int = 7200,
        min_interval: float = 1.0,
        user_name: str = "emu_user",
    ) -> None:
        """Start it on a free port and read its base URL and demo refresh token."""
        enable_sockets()
        self.log = log
        cmd = [
            sys.executable,
            "-m",
            "tests.emulator",
            "--port=0",
            "--print-json",
            f"--expires-in={expires_in}",
            f"--min-refresh-interval={min_interval}",
            f"--user-name={user_name}",
        ]
        self.proc = spawn(cmd, env=dict(os.environ), log=log, stdout=subprocess.PIPE)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.stop()
            pytest.fail(f"the emulator did not start:\n{log.read_text()}")
        info = json.loads(line)
        self.base_url: str = info["base_url"]
        self.refresh_token: str = info["refresh_token"]
        self.grant_id: int = info["grant_id"]
        self.user_id: int = info["user_id"]
        self.user_name: str = info["user_name"]

    def state(self) -> dict[str, Any]:
        """What the emulator saw and issued."""
        reply = requests.get(f"{self.base_url}/_emulator/state", timeout=10)
        reply.raise_for_status()
        return dict(reply.json())

    def count(self, path: str) -> int:
        """Requests that reached `path`."""
        return int(self.state()["counts"].get(path, 0))

    def configure(self, **settings: float) -> None:
        """Change expires_in / min_refresh_interval for tokens issued from now on."""
        reply = requests.post(f"{self.base_url}/_emulator/config", json=settings, timeout=10)
        reply.raise_for_status()

    def authorize(self) -> tuple[int, str]:
        """A new authorization of the demo account: its grant id and refresh token."""
        reply = requests.post(f"{self.base_url}/_emulator/authorize", json={}, timeout=10)
        reply.raise_for_status()
        return int(reply.json()["grant_id"]), str(reply.json()["refresh_token"])

    def grant(self, grant_id: int) -> dict[str, Any]:
        """One authorization: its live refresh token, newest access token and its expiry."""
        state = self.state()
        grant = next(g for g in state["grants"] if g["grant_id"] == grant_id)
        access = state["access_tokens"].get(grant["access_token"], {})
        return {**grant, "access_expires_at": access.get("expires_at")}

    def secrets(self) -> set[str]:
        """Every token string the emulator ever handed out (or was sent as a PKCE verifier)."""
        return set(self.state()["secrets"])

    def qr(self, action: str, *, uid: str | None = None, user_id: int | None = None) -> Any:
        """What the 115 app (of `user_id`) does with the newest or the given QR code.

        `action`: "scan", "confirm" (scans first when nobody has) or "cancel".
        """
        body: dict[str, Any] = {} if uid is None else {"uid": uid}
        if user_id is not None:
            body["user_id"] = user_id
        reply = requests.post(f"{self.base_url}/_emulator/qr/{action}", json=body, timeout=10)
        reply.raise_for_status()
        return reply.json()

    def stop(self) -> None:
        """End it."""
        stop_group(self.proc, timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class HassProcess:
    """A real `hass -c <tmp>` with the committed config/configuration.yaml and open115."""

    def __init__(self, config_dir: Path, emulator: EmulatorProcess) -> None:
        """Lay out the config folder; `start()` runs it."""
        self.config_dir = config_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (config_dir / "custom_components").mkdir(parents=True, exist_ok=True)
        (config_dir / "custom_components" / DOMAIN).symlink_to(REPO / "custom_components" / DOMAIN)
        shutil.copy(REPO / "config" / "configuration.yaml", config_dir / "configuration.yaml")
        consumer = Path(__file__).parent / "consumer" / "custom_components" / CONSUMER
        (config_dir / "custom_components" / CONSUMER).symlink_to(consumer)
        with (config_dir / "configuration.yaml").open("a") as yaml:
            yaml.write(f"\n{CONSUMER}:\n")
        write_http_config(config_dir, "127.0.0.1", self.port)
        self.env = {**os.environ, "OPEN115_BASE_URL": emulator.base_url}
        self.proc: subprocess.Popen[bytes] | None = None
        self.console = config_dir / "hass.console.log"
        self.token: str | None = None  # an owner's long-lived token, once onboarded

    @property
    def log_text(self) -> str:
        """Home Assistant's log file and console output."""
        parts = [
            p.read_text(errors="replace")
            for p in (self.config_dir / "home-assistant.log", self.console)
            if p.exists()
        ]
        return "\n".join(parts)

    def pip_installs(self) -> list[str]:
        """The packages Home Assistant tried to install at run time (none, thanks to the pins)."""
        return [
            line.split("Attempting install of ", 1)[1].strip()
            for line in self.log_text.splitlines()
            if "Attempting install of " in line
        ]

    def start(self) -> None:
        """Start `hass`, as scripts/develop does (pip allowed: see `pip_installs`)."""
        enable_sockets()
        cmd = [str(HASS), "-c", str(self.config_dir)]
        self.proc = spawn(cmd, env=self.env, log=self.console)
        self.wait_running()

    def _running(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"hass exited with {self.proc.returncode}:\n{self.log_text[-4000:]}")
        try:
            if self.token is None:
                reply = requests.get(f"{self.url}/api/onboarding", timeout=5)
                return reply.status_code == 200
            reply = requests.get(f"{self.url}/api/config", headers=self.headers(), timeout=5)
        except requests.ConnectionError:
            return False
        return reply.status_code == 200 and reply.json().get("state") == "RUNNING"

    def wait_running(self) -> None:
        """Until the HTTP API answers (and, once onboarded, the core is RUNNING)."""
        deadline = time.monotonic() + START_TIMEOUT
        while not self._running():
            if time.monotonic() > deadline:
                pytest.fail(f"hass did not start in {START_TIMEOUT} s:\n{self.log_text[-4000:]}")
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop it (SIGTERM: Home Assistant shuts down and saves its storage)."""
        if self.proc is not None:
            stop_group(self.proc)
            self.proc = None

    def restart(self) -> None:
        """Stop and start again, with the same config folder."""
        self.stop()
        self.start()

    def headers(self, token: str | None = None) -> dict[str, str]:
        """Bearer auth (the owner's token unless given)."""
        return {"Authorization": f"Bearer {token or self.token}"}

    def get(self, path: str, token: str | None = None) -> requests.Response:
        """GET an API path."""
        return requests.get(f"{self.url}{path}", headers=self.headers(token), timeout=30)

    def post(self, path: str, data: Any = None, token: str | None = None) -> requests.Response:
        """POST JSON to an API path."""
        return requests.post(
            f"{self.url}{path}", json=data or {}, headers=self.headers(token), timeout=60
        )

    # ----- users -----------------------------------------------------------------------------

    def onboard(self) -> None:
        """Create the owner and finish onboarding, as the frontend's first screens do."""
        reply = requests.post(
            f"{self.url}/api/onboarding/users",
            json={**OWNER, "client_id": CLIENT_ID, "language": "en"},
            timeout=60,
        )
        assert reply.status_code == 200, reply.text
        tokens = self.exchange_code(reply.json()["auth_code"])
        access = tokens["access_token"]
        for step, data in (
            ("core_config", {}),
            ("analytics", {}),
            ("integration", {"client_id": CLIENT_ID, "redirect_uri": CLIENT_ID}),
        ):
            reply = self.post(f"/api/onboarding/{step}", data, token=access)
            assert reply.status_code == 200, (step, reply.text)
        with self.websocket(access) as ws:
            self.token = str(
                ws.call(
                    {
                        "type": "auth/long_lived_access_token",
                        "client_name": "e2e",
                        "lifespan": 1,
                    }
                )
            )

    def exchange_code(self, code: str) -> dict[str, Any]:
        """/auth/token: an authorization code for tokens."""
        reply = requests.post(
            f"{self.url}/auth/token",
            data={"grant_type": "authorization_code", "code": code, "client_id": CLIENT_ID},
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        return dict(reply.json())

    def login(self, username: str, password: str) -> dict[str, Any]:
        """Log in through /auth/login_flow and /auth/token; the token reply."""
        reply = requests.post(
            f"{self.url}/auth/login_flow",
            json={
                "client_id": CLIENT_ID,
                "handler": ["homeassistant", None],
                "redirect_uri": CLIENT_ID,
            },
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        flow = reply.json()
        assert flow["type"] == "form"
        assert flow["step_id"] == "init"
        reply = requests.post(
            f"{self.url}/auth/login_flow/{flow['flow_id']}",
            json={"client_id": CLIENT_ID, "username": username, "password": password},
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
        result = reply.json()
        assert result["type"] == "create_entry", result
        return self.exchange_code(result["result"])

    def websocket(self, token: str | None = None) -> HAWebSocket:
        """A websocket API connection (use as a context manager)."""
        return HAWebSocket(self.url, token or str(self.token))


class HAWebSocket:
    """A synchronous face for Home Assistant's websocket API, on an event loop of its own."""

    def __init__(self, url: str, token: str) -> None:
        """Connect and authenticate on `__enter__`."""
        self._url = url.replace("http", "ws", 1) + "/api/websocket"
        self._token = token
        self._loop = asyncio.new_event_loop()
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._id = 0

    def __enter__(self) -> Self:
        """Connect and authenticate."""
        self._loop.run_until_complete(self._connect())
        return self

    def __exit__(self, *_exc: object) -> None:
        """Close the connection and the loop.

        The loop's default executor (its thread "asyncio_0" resolved the host) is shut down and
        waited for first: `close()` alone leaves the thread ending a moment later, and the test
        plugin fails a test that leaves a thread behind.
        """
        self._loop.run_until_complete(self._close())
        self._loop.run_until_complete(self._loop.shutdown_default_executor())
        self._loop.close()

    async def _connect(self) -> None:
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(self._url)
        assert (await self._ws.receive_json())["type"] == "auth_required"
        await self._ws.send_json({"type": "auth", "access_token": self._token})
        reply = await self._ws.receive_json()
        assert reply["type"] == "auth_ok", reply

    async def _close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()

    def send(self, message: dict[str, Any]) -> int:
        """Send a command; its id."""
        assert self._ws is not None
        self._id += 1
        self._loop.run_until_complete(self._ws.send_json({**message, "id": self._id}))
        return self._id

    def receive(self, timeout: float) -> dict[str, Any]:
        """The next message."""
        assert self._ws is not None
        return dict(self._loop.run_until_complete(self._ws.receive_json(timeout=timeout)))

    def call(self, message: dict[str, Any], timeout: float = 30) -> Any:
        """Send a command and return its result (fail on an error reply)."""
        msg_id = self.send(message)
        while True:
            reply = self.receive(timeout)
            if reply.get("id") == msg_id and reply["type"] == "result":
                assert reply["success"], reply
                return reply["result"]


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """The standalone emulator (2-hour tokens unless a test changes it)."""
    log = tmp_path_factory.mktemp("emulator") / "emulator.log"
    emu = EmulatorProcess(log)
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="module")
def hass_proc(
    tmp_path_factory: pytest.TempPathFactory, emulator: EmulatorProcess
) -> Iterator[HassProcess]:
    """A real Home Assistant, onboarded (owner `OWNER`, token in `.token`), no open115 entry."""
    proc = HassProcess(tmp_path_factory.mktemp("hass-config"), emulator)
    try:
        proc.start()
        proc.onboard()
        proc.wait_running()
        yield proc
    finally:
        proc.stop()


def random_password() -> str:
    """A password for a test user."""
    return secrets.token_urlsafe(12)
