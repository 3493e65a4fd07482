"""End to end: a real `hass` process with open115, driven over HTTP and websocket like the frontend.

One emulator and one Home Assistant serve the whole module; the config entry is made once by
the `entry` fixture through the config-flow HTTP API. The short-token test changes the
emulator's token lifetime and so runs last.
"""

from datetime import datetime
import json
import subprocess
import time
from typing import Any

import pytest
import requests

from tests.emulator import DEFAULT_APP_ID, REFRESH_PATH, USER_INFO_PATH

from .conftest import (
    DOMAIN,
    EVENT,
    HASS,
    OWNER,
    EmulatorProcess,
    HassProcess,
    HAWebSocket,
    random_password,
)

TIMESTAMPS = ("access_token_expires", "next_refresh", "last_refresh")
KEYS = {
    "access_token_expires": "sensor",
    "next_refresh": "sensor",
    "last_refresh": "sensor",
    "token_status": "sensor",
    "token_problem": "binary_sensor",
    "storage_total": "sensor",
    "storage_used": "sensor",
    "storage_free": "sensor",
    "vip_expires": "sensor",
    "cloud_download_quota": "sensor",
    "cloud_downloads_active": "sensor",
    "cloud_download": "event",
}
MAGNET = "magnet:?xt=urn:btih:{}&dn=ubuntu.iso&xl=4294967296".format("ab" * 20)
FLOW_PROGRESSED = "data_entry_flow_progressed"
QR_USER_ID = 310000002  # a second account: the module's entry keeps the first
# s: margin = a quarter = 25 s, so the refresh is due ~75 s after issue: after the 60 s window
# that the reconfigure flow's own refresh (checking the pasted token) opened.
SHORT_LIFETIME = 100
MIN_FORCE_INTERVAL = 61  # s: open115 refuses a forced refresh within 60 s of the last one
HA_SAVE_DELAY = 1.0  # s: homeassistant.config_entries.SAVE_DELAY, the delayed save


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


@pytest.fixture(scope="module")
def entry(hass_proc: HassProcess, emulator: EmulatorProcess) -> dict[str, Any]:
    """Add the emulator's account through /api/config/config_entries/flow (pasted sloppily)."""
    reply = hass_proc.post("/api/config/config_entries/flow", {"handler": DOMAIN})
    assert reply.status_code == 200, reply.text
    menu = reply.json()
    reply = hass_proc.post(
        f"/api/config/config_entries/flow/{menu['flow_id']}", {"next_step_id": "token"}
    )
    assert reply.status_code == 200, reply.text
    form = reply.json()
    before = time.time()
    reply = hass_proc.post(
        f"/api/config/config_entries/flow/{form['flow_id']}",
        {"refresh_token": f'  "Bearer {emulator.refresh_token}"\n'},
    )
    after = time.time()
    assert reply.status_code == 200, reply.text
    return {"menu": menu, "form": form, "result": reply.json(), "before": before, "after": after}


def _registry(hass_proc: HassProcess, entry_id: str) -> dict[str, dict[str, Any]]:
    """open115's entity registry entries of the entry, by key."""
    with hass_proc.websocket() as ws:
        registry = ws.call({"type": "config/entity_registry/list"})
    ours = [e for e in registry if e["platform"] == DOMAIN and e["config_entry_id"] == entry_id]
    return {e["unique_id"].split("_", 1)[1]: e for e in ours}


def _entity_ids(hass_proc: HassProcess, entry_id: str) -> dict[str, str]:
    """open115's entities of the entry, by key, from the entity registry."""
    return {key: e["entity_id"] for key, e in _registry(hass_proc, entry_id).items()}


def _states(hass_proc: HassProcess, entry_id: str) -> dict[str, dict[str, Any]]:
    reply = hass_proc.get("/api/states")
    assert reply.status_code == 200
    by_id = {s["entity_id"]: s for s in reply.json()}
    # Entities disabled by default (the diagnostic timestamps) have no state.
    return {
        key: by_id[eid] for key, eid in _entity_ids(hass_proc, entry_id).items() if eid in by_id
    }


def test_runs_the_chosen_home_assistant(hass_proc: HassProcess) -> None:
    """The `hass` of OPEN115_E2E_HASS (scripts/test: also the newest release) is the one running."""
    installed = subprocess.run(  # noqa: S603 - our own venv's program
        [str(HASS), "--version"], capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()
    assert hass_proc.get("/api/config").json()["version"] == installed


def _wait_for(
    hass_proc: HassProcess,
    entry_id: str,
    key: str,
    test: Any,
    timeout: float = 90,
    poke: bool = False,
) -> dict[str, Any]:
    """The state of the entry's entity `key` once `test(state)` holds.

    `poke`: ask for an update now and then (homeassistant.update_entity reads the account).
    """
    deadline = time.monotonic() + timeout
    while True:
        state = _states(hass_proc, entry_id)[key]
        if test(state):
            return state
        assert time.monotonic() < deadline, state
        if poke:
            hass_proc.post(
                "/api/services/homeassistant/update_entity", {"entity_id": state["entity_id"]}
            )
        time.sleep(1)


def test_owner_logs_in_through_the_login_flow(hass_proc: HassProcess) -> None:
    tokens = hass_proc.login(OWNER["username"], OWNER["password"])
    assert tokens["token_type"] == "Bearer"
    with hass_proc.websocket(tokens["access_token"]) as ws:
        user = ws.call({"type": "auth/current_user"})
    assert (user["name"], user["is_owner"], user["is_admin"]) == ("Owner", True, True)


def test_config_flow_creates_the_entry(
    hass_proc: HassProcess, emulator: EmulatorProcess, entry: dict[str, Any]
) -> None:
    menu, form, result = entry["menu"], entry["form"], entry["result"]
    assert (menu["type"], menu["step_id"]) == ("menu", "user")
    assert menu["menu_options"] == ["qr", "token"]
    assert (form["type"], form["step_id"]) == ("form", "token")
    assert [field["name"] for field in form["data_schema"]] == ["refresh_token"]
    assert result["type"] == "create_entry", result
    assert result["title"] == emulator.user_name
    entry_id = result["result"]["entry_id"]

    reply = hass_proc.get(f"/api/config/config_entries/entry?domain={DOMAIN}")
    entries = reply.json()
    assert [(e["entry_id"], e["title"], e["state"]) for e in entries] == [
        (entry_id, emulator.user_name, "loaded")
    ]
    # The pasted token was refreshed once (so it is void now) and the account read once by
    # the flow, then once by the new entry's account coordinator.
    _wait_for(hass_proc, entry_id, "storage_total", lambda s: s["state"] != "unavailable")
    state = emulator.state()
    assert state["counts"][REFRESH_PATH] == 1
    assert state["counts"][USER_INFO_PATH] == 2
    assert emulator.refresh_token in state["used_refresh_tokens"]


def test_entities_show_the_emulators_token(
    hass_proc: HassProcess, emulator: EmulatorProcess, entry: dict[str, Any]
) -> None:
    entry_id = entry["result"]["result"]["entry_id"]
    assert {key: eid.split(".")[0] for key, eid in _entity_ids(hass_proc, entry_id).items()} == KEYS
    # The diagnostic timestamps are registered, disabled by default (no state).
    disabled = {k for k, e in _registry(hass_proc, entry_id).items() if e["disabled_by"]}
    assert disabled == set(TIMESTAMPS)
    states = _states(hass_proc, entry_id)
    assert set(states) == set(KEYS) - set(TIMESTAMPS)
    assert "refresh_token_expires" not in states  # a pasted token's year is unknown
    assert states["token_status"]["state"] == "ok"
    assert states["token_problem"]["state"] == "off"
    shown = json.dumps(states)
    assert not [secret for secret in emulator.secrets() if secret in shown]


def test_get_access_token_returns_the_live_token(
    hass_proc: HassProcess, emulator: EmulatorProcess, entry: dict[str, Any]
) -> None:
    refreshes = emulator.count(REFRESH_PATH)
    reply = hass_proc.post(
        "/api/services/open115/get_access_token?return_response", {"min_validity": 300}
    )
    assert reply.status_code == 200, reply.text
    response = reply.json()["service_response"]
    grant = emulator.grant(emulator.grant_id)
    assert response["access_token"] == grant["access_token"]
    assert response["user_id"] == str(emulator.user_id)
    # Home Assistant counts the lifetime from when the answer arrived, the emulator from when
    # it answered.
    assert (
        grant["access_expires_at"] - 1
        < _ts(response["expires_at"])
        < grant["access_expires_at"] + 5
    )
    assert 0 < response["expires_in"] <= 7200
    assert emulator.count(REFRESH_PATH) == refreshes  # a fresh token is handed out as it is


def test_non_admin_user_is_refused(
    hass_proc: HassProcess, emulator: EmulatorProcess, entry: dict[str, Any]
) -> None:
    password = random_password()
    with hass_proc.websocket() as ws:
        user = ws.call(
            {"type": "config/auth/create", "name": "Guest", "group_ids": ["system-users"]}
        )["user"]
        ws.call(
            {
                "type": "config/auth_provider/homeassistant/create",
                "user_id": user["id"],
                "username": "guest",
                "password": password,
            }
        )
    assert user["group_ids"] == ["system-users"]
    guest = hass_proc.login("guest", password)["access_token"]
    with hass_proc.websocket(guest) as ws:  # a valid login, of a user who is no admin…
        assert ws.call({"type": "auth/current_user"})["is_admin"] is False
    reply = hass_proc.post(
        "/api/services/open115/get_access_token?return_response", {}, token=guest
    )
    assert reply.status_code == 401  # …that may not have the token
    assert not [secret for secret in emulator.secrets() if secret in reply.text]


def test_add_a_magnet_and_watch_it_finish(
    hass_proc: HassProcess, emulator: EmulatorProcess, entry: dict[str, Any]
) -> None:
    """The README's example: add a magnet, finish it on 115, the event fires."""
    entry_id = entry["result"]["result"]["entry_id"]
    states = _states(hass_proc, entry_id)
    assert float(states["storage_total"]["state"]) > 0
    assert states["storage_total"]["attributes"]["unit_of_measurement"] == "GiB"
    assert states["cloud_downloads_active"]["state"] == "0"
    quota = int(states["cloud_download_quota"]["state"])

    reply = hass_proc.post(
        "/api/services/open115/add_cloud_download?return_response", {"urls": [MAGNET, MAGNET]}
    )
    assert reply.status_code == 200, reply.text
    results = reply.json()["service_response"]["results"]
    assert [(r["url"], r["status"], r["info_hash"]) for r in results] == [
        (MAGNET, "added", "ab" * 20),
        (MAGNET, "duplicate", "ab" * 20),  # the hash read from the magnet
    ]
    # Read right after the add: the new task is counted.
    _wait_for(hass_proc, entry_id, "cloud_downloads_active", lambda s: s["state"] == "1", 15)
    assert _states(hass_proc, entry_id)["cloud_download_quota"]["state"] == str(quota - 1)

    reply = requests.post(
        f"{emulator.base_url}/_emulator/offline/finish", json={"info_hash": "ab" * 20}, timeout=10
    )
    assert reply.status_code == 200, reply.text
    event = _wait_for(
        hass_proc,
        entry_id,
        "cloud_download",
        lambda s: s["attributes"].get("event_type") == "finished",
        poke=True,
    )
    attributes = event["attributes"]
    assert (attributes["name"], attributes["size"]) == ("ubuntu.iso", 4294967296)
    assert attributes["info_hash"] == "ab" * 20
    assert attributes["file_id"]
    assert attributes["folder_id"] == "0"
    assert _states(hass_proc, entry_id)["cloud_downloads_active"]["state"] == "0"


def test_a_consumer_integration_reads_the_account_through_open115(
    hass_proc: HassProcess, emulator: EmulatorProcess, entry: dict[str, Any]
) -> None:
    """tests/e2e/consumer: another integration, loaded next to open115, uses its token."""
    refreshes = emulator.count(REFRESH_PATH)
    path = "/api/services/open115_consumer/read_account?return_response"
    reply = hass_proc.post(path, {})
    assert reply.status_code == 200, reply.text
    response = reply.json()["service_response"]
    assert response["user_id"] == str(emulator.user_id)
    assert response["user_name"] == emulator.user_name
    assert response["recovered"] is False
    assert emulator.count(REFRESH_PATH) == refreshes  # the live token, as it is

    # 115 voids the live access token early: the consumer reports it, open115 refreshes once.
    reply = requests.post(f"{emulator.base_url}/_emulator/access_token/void", json={}, timeout=10)
    assert reply.status_code == 200
    assert reply.json()["voided"] >= 1
    reply = hass_proc.post(path, {})
    assert reply.status_code == 200, reply.text
    assert reply.json()["service_response"]["recovered"] is True
    assert emulator.count(REFRESH_PATH) == refreshes + 1
    entry_id = entry["result"]["result"]["entry_id"]
    assert _states(hass_proc, entry_id)["token_status"]["state"] == "ok"
    assert not [secret for secret in emulator.secrets() if secret in reply.text]


def test_backup_to_115_and_back(
    hass_proc: HassProcess, emulator: EmulatorProcess, entry: dict[str, Any]
) -> None:
    """A backup created to the 115 location and the local one from the websocket API, as the
    Backups page does (encrypted, the same password for both); the tar downloaded back from
    115 is the local one, byte for byte."""
    agent_id = f"{DOMAIN}.{emulator.user_id}"
    with hass_proc.websocket() as ws:
        agents = ws.call({"type": "backup/agents/info"})["agents"]
        assert {"agent_id": agent_id, "name": emulator.user_name} in agents
        ws.call(
            {
                "type": "backup/generate",
                "agent_ids": ["backup.local", agent_id],
                "include_homeassistant": True,
                "include_database": True,
                "name": "open115 e2e",
                "password": random_password(),
            },
            timeout=120,
        )
        deadline = time.monotonic() + 180
        while True:
            info = ws.call({"type": "backup/info"})
            done = [b for b in info["backups"] if agent_id in b["agents"]]
            failed = [b for b in info["backups"] if agent_id in b["failed_agent_ids"]]
            assert not failed, hass_proc.log_text[-3000:]
            if done and info["state"] == "idle":
                break
            assert time.monotonic() < deadline, info
            time.sleep(1)
    [backup] = done
    # The same encryption for both (the default), so the same bytes are stored in both.
    assert backup["agents"][agent_id]["protected"] == backup["agents"]["backup.local"]["protected"]
    from_115 = hass_proc.get(f"/api/backup/download/{backup['backup_id']}?agent_id={agent_id}")
    local = hass_proc.get(f"/api/backup/download/{backup['backup_id']}?agent_id=backup.local")
    assert (from_115.status_code, local.status_code) == (200, 200)
    assert len(from_115.content) > 0
    assert from_115.content == local.content
    assert "Upload failed" not in hass_proc.log_text
    assert not [secret for secret in emulator.secrets() if secret in hass_proc.log_text]


def test_qr_sign_in_through_the_flow_api(
    hass_proc: HassProcess, emulator: EmulatorProcess, entry: dict[str, Any]
) -> None:
    """A second account signs in by QR code: the frontend's progress steps, the app's scan."""
    flow_path = "/api/config/config_entries/flow"
    reply = hass_proc.post(flow_path, {"handler": DOMAIN})
    flow = f"{flow_path}/{reply.json()['flow_id']}"
    form = hass_proc.post(flow, {"next_step_id": "qr"}).json()
    assert (form["type"], form["step_id"]) == ("form", "qr"), form
    assert [field["name"] for field in form["data_schema"]] == ["app_id"]

    with hass_proc.websocket() as ws:
        sub = ws.send({"type": "subscribe_events", "event_type": FLOW_PROGRESSED})
        assert ws.receive(30)["success"] is True

        shown = hass_proc.post(flow, {"app_id": DEFAULT_APP_ID}).json()
        assert (shown["type"], shown["step_id"]) == ("progress", "qr_scan"), shown
        assert shown["progress_action"] == "qr_scan"
        assert shown["description_placeholders"]["qr_code"].startswith(
            "![QR code](data:image/png;base64,"
        )
        [code] = emulator.state()["qr_codes"]
        assert (code["app_id"], code["status"]) == (DEFAULT_APP_ID, 0)

        # The frontend waits for the flow to progress, then fetches it again.
        emulator.qr("scan", uid=code["uid"], user_id=QR_USER_ID)
        _wait_for_progress(ws, sub, shown["flow_id"])
        scanned = hass_proc.get(flow).json()
        assert (scanned["type"], scanned["progress_action"]) == ("progress", "qr_confirm")

        emulator.qr("confirm", uid=code["uid"])
        _wait_for_progress(ws, sub, shown["flow_id"])
        result = hass_proc.get(flow).json()

    assert result["type"] == "create_entry", result
    new_entry = result["result"]
    assert new_entry["title"] == "emu_user"  # the emulator's default account name
    [grant] = [g for g in emulator.state()["grants"] if g["user_id"] == QR_USER_ID]
    assert (grant["app_id"], grant["alive"]) == (DEFAULT_APP_ID, True)
    states = _states(hass_proc, new_entry["entry_id"])
    assert states["token_status"]["state"] == "ok"
    # Signed in by QR code, so the authorization time and the one-year limit are known.
    assert _ts(states["refresh_token_expires"]["state"]) == pytest.approx(
        grant["authorized_at"] + 365 * 24 * 3600, abs=5
    )
    reply = hass_proc.post(
        "/api/services/open115/get_access_token?return_response",
        {"config_entry_id": new_entry["entry_id"]},
    )
    assert reply.json()["service_response"]["access_token"] == grant["access_token"]
    assert not [secret for secret in emulator.secrets() if secret in json.dumps(states)]

    # Leave the module's single entry as it was.
    reply = requests.delete(
        f"{hass_proc.url}/api/config/config_entries/entry/{new_entry['entry_id']}",
        headers=hass_proc.headers(),
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    reply = hass_proc.get(f"/api/config/config_entries/entry?domain={DOMAIN}")
    assert [e["entry_id"] for e in reply.json()] == [entry["result"]["result"]["entry_id"]]


def _wait_for_progress(ws: HAWebSocket, sub: int, flow_id: str) -> None:
    """The next `data_entry_flow_progressed` event of the flow (as the frontend waits)."""
    while True:
        message = ws.receive(timeout=60)
        if message.get("id") == sub and message["event"]["data"]["flow_id"] == flow_id:
            return


def test_forced_refresh_is_on_disk_at_once(
    hass_proc: HassProcess, emulator: EmulatorProcess, entry: dict[str, Any]
) -> None:
    """The rotated pair is in the entry's token file (.storage/open115.<entry id>.token) when
    the action returns: written with Home Assistant's public `Store.async_save`, not its delayed
    save (SAVE_DELAY, 1 s)."""
    entry_id = entry["result"]["result"]["entry_id"]
    last = emulator.grant(emulator.grant_id)["last_refresh_at"]
    time.sleep(max(0.0, last + MIN_FORCE_INTERVAL - time.time()))  # else "refresh_too_soon"
    old = emulator.grant(emulator.grant_id)
    path = hass_proc.config_dir / ".storage" / f"open115.{entry_id}.token"

    start = time.monotonic()
    reply = hass_proc.post("/api/services/open115/refresh_token", {})
    on_disk = json.loads(path.read_text())
    elapsed = time.monotonic() - start

    assert reply.status_code == 200, reply.text
    live = emulator.grant(emulator.grant_id)
    rotated = live["refresh_token"] != old["refresh_token"]
    assert rotated, "the action did not refresh"
    stored = on_disk["data"]["token"]
    # Compared without printing a token.
    same = (stored["refresh_token"], stored["access_token"]) == (
        live["refresh_token"],
        live["access_token"],
    )
    assert same, "the rotated pair is not on disk when the refresh_token action returns"
    assert elapsed < HA_SAVE_DELAY, f"{elapsed:.2f} s: too slow to tell the flush from HA's save"
    assert not [secret for secret in emulator.secrets() if secret in reply.text]


def test_restart_sends_no_request(
    hass_proc: HassProcess, emulator: EmulatorProcess, entry: dict[str, Any]
) -> None:
    entry_id = entry["result"]["result"]["entry_id"]
    counts = emulator.state()["counts"]
    token_before = emulator.grant(emulator.grant_id)["access_token"]

    hass_proc.restart()

    reply = hass_proc.get(f"/api/config/config_entries/entry?domain={DOMAIN}")
    assert [(e["entry_id"], e["state"]) for e in reply.json()] == [(entry_id, "loaded")]
    assert _states(hass_proc, entry_id)["token_status"]["state"] == "ok"
    assert emulator.state()["counts"] == counts  # not one request to 115
    reply = hass_proc.post("/api/services/open115/get_access_token?return_response", {})
    assert reply.json()["service_response"]["access_token"] == token_before
    assert emulator.state()["counts"] == counts


def test_short_tokens_are_refreshed_before_expiry_and_announced(
    hass_proc: HassProcess, emulator: EmulatorProcess, entry: dict[str, Any]
) -> None:
    entry_id = entry["result"]["result"]["entry_id"]
    emulator.configure(expires_in=SHORT_LIFETIME, min_refresh_interval=1)
    grant_id, new_token = emulator.authorize()  # as if the user scanned a QR code again

    with hass_proc.websocket() as ws:
        sub = ws.send({"type": "subscribe_events", "event_type": EVENT})
        assert ws.receive(30) == {"id": sub, "type": "result", "success": True, "result": None}

        # Reconfigure the entry with the new authorization: its tokens live 30 s.
        reply = hass_proc.post(
            "/api/config/config_entries/flow", {"handler": DOMAIN, "entry_id": entry_id}
        )
        assert reply.json()["step_id"] == "reconfigure", reply.text
        flow = f"/api/config/config_entries/flow/{reply.json()['flow_id']}"
        reply = hass_proc.post(flow, {"next_step_id": "reconfigure_token"})
        assert reply.json()["step_id"] == "reconfigure_token", reply.text
        reply = hass_proc.post(flow, {"refresh_token": new_token})
        assert reply.json()["type"] == "abort", reply.text
        assert reply.json()["reason"] == "reconfigure_successful"
        refreshes = emulator.count(REFRESH_PATH)
        first_expiry = emulator.grant(grant_id)["access_expires_at"]

        # Nobody asks for the token: the keeper's own timer refreshes it before it expires.
        event = ws.receive(timeout=SHORT_LIFETIME * 4)

    assert event["type"] == "event"
    assert event["event"]["event_type"] == EVENT
    data = event["event"]["data"]
    assert emulator.count(REFRESH_PATH) == refreshes + 1
    new_expiry = emulator.grant(grant_id)["access_expires_at"]
    assert data["config_entry_id"] == entry_id
    assert data["user_id"] == str(emulator.user_id)
    assert new_expiry - 1 < _ts(data["expires_at"]) < new_expiry + 5
    assert _ts(event["event"]["time_fired"]) < first_expiry  # proactive: before expiry
    assert not [secret for secret in emulator.secrets() if secret in json.dumps(event)]
    assert _states(hass_proc, entry_id)["token_status"]["state"] == "ok"


def test_no_token_in_the_logs(hass_proc: HassProcess, emulator: EmulatorProcess) -> None:
    log = hass_proc.log_text
    assert "open115" in log  # the log is the right one (the OPEN115_BASE_URL warning)
    assert not [secret for secret in emulator.secrets() if secret in log]


def test_no_pip_install_at_run_time(hass_proc: HassProcess) -> None:
    """requirements_dev.txt pins every package that starting and onboarding need."""
    assert "homeassistant.bootstrap" in hass_proc.log_text  # the log has INFO lines
    assert hass_proc.pip_installs() == []
