"""The README's hand-off recipes in a real `hass`: the REST API with curl, and OpenList.

OpenList is `OpenListStandIn` (its two storage admin endpoints, written from its source); the
package `packages/open115_openlist.yaml` is installed as the README says, with only its address,
storage id and secret filled in. The module also pins what Home Assistant's traces keep: a
response variable holding the token is in an automation's trace, in the UI and on disk, so the
package keeps the token in a script that stores no trace. Token values are compared, never shown.
"""

from collections.abc import Iterator
import json
import os
from pathlib import Path
import re
import secrets
import subprocess
import time
from typing import Any

import pytest

from tests.emulator import REFRESH_PATH

from .conftest import DOMAIN, EVENT, REPO, EmulatorProcess, HassProcess
from .openlist_standin import (
    ADDITION,
    GET_PATH,
    STORAGE,
    STORAGE_ID,
    UPDATE_PATH,
    OpenListStandIn,
)

PACKAGE = REPO / "packages" / "open115_openlist.yaml"
ADDITION_TOKENS = ("access_token", "refresh_token")
NAIVE_ID = "naive_token_in_variables"  # a test-only automation: the token in a response variable
NAIVE_PACKAGE = f"""
automation:
  - id: {NAIVE_ID}
    alias: "Token in a response variable"
    triggers:
      - trigger: event
        event_type: open115_test_naive
    actions:
      - action: open115.get_access_token
        response_variable: token
      - action: persistent_notification.dismiss
        data:
          notification_id: "{{{{ token.access_token }}}}"
"""
RECIPE_ID = "open115_openlist_sync"  # the package's automation and script


def _same(secret: str, other: Any) -> bool:
    """Equal, without pytest showing either."""
    return isinstance(other, str) and secrets.compare_digest(secret, other)


def _live_access_token(emulator: EmulatorProcess) -> str:
    return str(emulator.grant(emulator.grant_id)["access_token"])


def _leaks(emulator: EmulatorProcess, text: str, *extra: str) -> int:
    """How many token strings occur in `text` (a count, so a failure shows none)."""
    return sum(1 for secret in emulator.secrets() | set(extra) if secret in text)


@pytest.fixture(scope="module")
def entry_id(hass_proc: HassProcess, emulator: EmulatorProcess) -> str:
    """open115's entry for the emulator's account, added through the config-flow API."""
    flow = hass_proc.post("/api/config/config_entries/flow", {"handler": DOMAIN}).json()
    path = f"/api/config/config_entries/flow/{flow['flow_id']}"
    assert hass_proc.post(path, {"next_step_id": "token"}).json()["step_id"] == "token"
    result = hass_proc.post(path, {"refresh_token": emulator.refresh_token}).json()
    assert result["type"] == "create_entry", result["type"]
    return str(result["result"]["entry_id"])


@pytest.fixture(scope="module")
def openlist(emulator: EmulatorProcess) -> Iterator[OpenListStandIn]:
    """OpenList with one 115 Open storage that holds tokens of its own."""
    with OpenListStandIn(secrets.token_urlsafe(24), STORAGE, emulator.base_url) as standin:
        yield standin


@pytest.fixture(scope="module")
def recipe(hass_proc: HassProcess, openlist: OpenListStandIn, entry_id: str) -> OpenListStandIn:
    """Install the package as the README says, restart Home Assistant: the start pushes."""
    config = hass_proc.config_dir
    text = PACKAGE.read_text()
    for old, new in (
        ('"http://127.0.0.1:5244"', f'"{openlist.url}"'),
        ("storage_id: 1 ", f"storage_id: {STORAGE_ID} "),
    ):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    (config / "packages").mkdir()
    (config / "packages" / PACKAGE.name).write_text(text)
    (config / "packages" / "naive.yaml").write_text(NAIVE_PACKAGE)
    (config / "secrets.yaml").write_text(f"openlist_token: {json.dumps(openlist.admin_token)}\n")
    configuration = (config / "configuration.yaml").read_text()
    assert configuration.count("\nhomeassistant:\n") == 1
    (config / "configuration.yaml").write_text(
        configuration.replace(
            "\nhomeassistant:\n", "\nhomeassistant:\n  packages: !include_dir_named packages\n"
        )
    )
    hass_proc.restart()
    assert openlist.wait_for(lambda: any(r["path"] == UPDATE_PATH for r in openlist.requests), 60)
    return openlist


def _readme_curl(readme: Path) -> str:
    """The README's one curl block for get_access_token."""
    blocks = re.findall(r"```bash\n(curl .*?)```", readme.read_text(), re.DOTALL)
    [block] = [b for b in blocks if "/api/services/open115/get_access_token" in b]
    return str(block)


def test_the_readmes_curl_gets_the_live_token(
    hass_proc: HassProcess, emulator: EmulatorProcess, entry_id: str
) -> None:
    """Recipe A: the README's curl command, run as written, with an admin long-lived token."""
    command = _readme_curl(REPO / "README.md")
    assert _readme_curl(REPO / "README.zh-Hans.md") == command
    with hass_proc.websocket() as ws:
        ha_token = str(
            ws.call({"type": "auth/long_lived_access_token", "client_name": "curl", "lifespan": 1})
        )
        assert ws.call({"type": "auth/current_user"})["is_admin"] is True
    refreshes = emulator.count(REFRESH_PATH)
    done = subprocess.run(  # noqa: S603 - the README's command, with our own variables
        ["bash", "-c", command],  # noqa: S607
        env={**os.environ, "HA_URL": hass_proc.url, "HA_TOKEN": ha_token},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-500:]
    try:
        reply = json.loads(done.stdout)
    except ValueError:
        pytest.fail("curl's output is not JSON")
    assert sorted(reply) == ["changed_states", "service_response"]
    response = reply["service_response"]
    assert sorted(response) == ["access_token", "expires_at", "expires_in", "user_id"]
    matches = _same(_live_access_token(emulator), response["access_token"])
    assert matches, "the access token is not the emulator's live one"
    assert response["user_id"] == str(emulator.user_id)
    assert 600 <= response["expires_in"] <= 7200  # min_validity 600 from the README's body
    assert emulator.count(REFRESH_PATH) == refreshes  # a fresh token is handed out as it is


def _check_pushed(openlist: OpenListStandIn, emulator: EmulatorProcess) -> dict[str, Any]:
    """The storage holds open115's live access token, no refresh token, everything else kept."""
    stored = openlist.storage(STORAGE_ID)
    kept = {k: v for k, v in stored.items() if k not in ("addition", "status", "modified")}
    assert kept == {k: v for k, v in STORAGE.items() if k not in ("addition", "status", "modified")}
    addition = json.loads(stored["addition"])
    live = _live_access_token(emulator)
    matches = _same(live, addition.pop("access_token"))
    assert matches, "OpenList's access token is not open115's live one"
    assert addition.pop("refresh_token") == ""
    assert addition == {k: v for k, v in ADDITION.items() if k not in ADDITION_TOKENS}
    # OpenList's Init asked 115 for the account with that token, and never tried to refresh.
    assert stored["status"] == "work"
    assert openlist.refreshes == []
    return stored


def test_start_hands_openlist_the_token_and_an_empty_refresh_token(
    recipe: OpenListStandIn, emulator: EmulatorProcess
) -> None:
    _check_pushed(recipe, emulator)
    with recipe.lock:
        seen = list(recipe.requests)
    assert all(r["authorization_ok"] for r in seen)
    assert [(r["method"], r["path"]) for r in seen[:2]] == [
        ("GET", GET_PATH),
        ("POST", UPDATE_PATH),
    ]
    update = next(r for r in seen if r["path"] == UPDATE_PATH)
    assert update["content_type"] == "application/json"
    assert update["answer"] == {"code": 200, "message": "success"}
    body = json.loads(update["body"])
    assert sorted(body) == sorted(STORAGE)  # the whole object went back


def test_every_refresh_is_handed_to_openlist(
    hass_proc: HassProcess, recipe: OpenListStandIn, emulator: EmulatorProcess, entry_id: str
) -> None:
    before = _live_access_token(emulator)
    last = emulator.grant(emulator.grant_id)["last_refresh_at"]
    time.sleep(max(0.0, last + 62 - time.time()))  # open115 refuses a refresh within 60 s
    updates = len(recipe.updates())
    with hass_proc.websocket() as ws:
        sub = ws.send({"type": "subscribe_events", "event_type": EVENT})
        assert ws.receive(30)["success"] is True
        reply = hass_proc.post(
            "/api/services/open115/refresh_token?return_response", {"config_entry_id": entry_id}
        )
        assert reply.status_code == 200, reply.status_code
        event = ws.receive(60)
    assert (event["id"], event["event"]["event_type"]) == (sub, EVENT)
    assert not _same(before, _live_access_token(emulator))  # rotated
    assert recipe.wait_for(lambda: len(recipe.updates()) > updates, 60)
    assert recipe.wait_for(
        lambda: _same(
            _live_access_token(emulator),
            json.loads(recipe.storages[STORAGE_ID]["addition"])["access_token"],
        ),
        30,
    )
    _check_pushed(recipe, emulator)


def test_a_current_openlist_is_only_read(hass_proc: HassProcess, recipe: OpenListStandIn) -> None:
    updates, total = len(recipe.updates()), len(recipe.requests)
    reply = hass_proc.post(f"/api/services/script/{RECIPE_ID}", {})
    assert reply.status_code == 200, reply.status_code
    with recipe.lock:  # one read (a 15-minute run may add another), no write
        paths = [r["path"] for r in recipe.requests[total:]]
    assert set(paths) == {GET_PATH}  # and not empty
    assert len(recipe.updates()) == updates


def test_openlist_refusing_is_a_notification_without_tokens(
    hass_proc: HassProcess, recipe: OpenListStandIn, emulator: EmulatorProcess
) -> None:
    right = recipe.admin_token
    recipe.admin_token = "a-token-openlist-no-longer-has"
    try:
        reply = hass_proc.post(f"/api/services/script/{RECIPE_ID}", {})
    finally:
        recipe.admin_token = right
    assert reply.status_code == 200  # the script ran; it stopped with an error
    assert _leaks(emulator, reply.text, right) == 0
    with hass_proc.websocket() as ws:
        notes = ws.call({"type": "persistent_notification/get"})
    [note] = [n for n in notes if n["notification_id"] == "open115_openlist"]
    assert "401" in note["message"]
    assert "Guest user is disabled" not in note["message"]  # the header was sent, and refused
    assert "that's not even a token" in note["message"]
    assert _leaks(emulator, json.dumps(note), right) == 0
    # OpenList not answering at all is a notification too.
    recipe.down = True
    try:
        assert hass_proc.post(f"/api/services/script/{RECIPE_ID}", {}).status_code == 200
    finally:
        recipe.down = False
    with hass_proc.websocket() as ws:
        notes = ws.call({"type": "persistent_notification/get"})
    [note] = [n for n in notes if n["notification_id"] == "open115_openlist"]
    assert note["message"].endswith("no answer")
    # The next run that works takes the notification away.
    assert hass_proc.post(f"/api/services/script/{RECIPE_ID}", {}).status_code == 200
    with hass_proc.websocket() as ws:
        notes = ws.call({"type": "persistent_notification/get"})
    assert [n for n in notes if n["notification_id"] == "open115_openlist"] == []


def _traces(hass_proc: HassProcess, domain: str, item_id: str) -> list[dict[str, Any]]:
    """Every stored trace of an automation or script, in full (what the trace UI shows)."""
    with hass_proc.websocket() as ws:
        runs = ws.call({"type": "trace/list", "domain": domain, "item_id": item_id})
        return [
            ws.call(
                {
                    "type": "trace/get",
                    "domain": domain,
                    "item_id": item_id,
                    "run_id": run["run_id"],
                }
            )
            for run in runs
        ]


def test_a_response_variable_with_the_token_is_in_the_trace(
    hass_proc: HassProcess, recipe: OpenListStandIn, emulator: EmulatorProcess
) -> None:
    """The finding: a trace keeps each step's changed variables and each action's data."""
    assert hass_proc.post("/api/events/open115_test_naive", {}).status_code == 200
    deadline = time.monotonic() + 30
    while not (naive := _traces(hass_proc, "automation", NAIVE_ID)) or any(
        t["state"] == "running" for t in naive
    ):
        assert time.monotonic() < deadline, "the naive automation left no finished trace"
        time.sleep(0.2)
    [trace] = naive
    live = _live_access_token(emulator)
    step = trace["trace"]["action/0"][0]
    found = _same(live, step["changed_variables"]["token"]["access_token"])
    assert found, "the trace's variable is not the live access token"
    step = trace["trace"]["action/1"][0]  # and an action's data, as rendered
    found = _same(live, step["result"]["params"]["service_data"]["notification_id"])
    assert found, "the trace's action data is not the live access token"


def test_the_recipe_leaves_no_token_in_any_trace(
    hass_proc: HassProcess, recipe: OpenListStandIn, emulator: EmulatorProcess
) -> None:
    automation = _traces(hass_proc, "automation", RECIPE_ID)
    assert len(automation) >= 2  # the start and the refresh (and maybe a 15-minute run)
    assert any(t["trace"]["action/0"][0]["child_id"]["domain"] == "script" for t in automation)
    assert _leaks(emulator, json.dumps(automation)) == 0
    assert _traces(hass_proc, "script", RECIPE_ID) == []  # it ran, and kept nothing


def test_traces_on_disk_after_a_stop(
    hass_proc: HassProcess, recipe: OpenListStandIn, emulator: EmulatorProcess
) -> None:
    """Home Assistant writes the traces to .storage/trace.saved_traces when it stops."""
    live = _live_access_token(emulator)
    hass_proc.stop()
    saved = json.loads((hass_proc.config_dir / ".storage" / "trace.saved_traces").read_text())
    traces = saved["data"]
    found = live in json.dumps(traces[f"automation.{NAIVE_ID}"])
    assert found, "the naive automation's trace on disk lacks the token"
    assert f"automation.{RECIPE_ID}" in traces
    assert traces.get(f"script.{RECIPE_ID}", []) == []  # the bucket is there, empty
    ours = {k: v for k, v in traces.items() if k != f"automation.{NAIVE_ID}"}
    assert _leaks(emulator, json.dumps(ours)) == 0
    assert _leaks(emulator, hass_proc.log_text, recipe.admin_token) == 0
    hass_proc.start()  # leave it running, as the module's fixture expects
