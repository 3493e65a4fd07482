"""The OpenList stand-in keeps OpenList's rules (so the hand-off tests mean something).

Each rule is from OpenList's source (see openlist_standin.py). The last tests show why the
README's old example was harmful: a partial update wipes the storage, and a refresh token left
in OpenList lets OpenList rotate the token.
"""

from collections.abc import Iterator
import json
from typing import Any

import pytest
import requests

from .conftest import EmulatorProcess
from .openlist_standin import (
    ADDITION,
    GET_PATH,
    GO_ZERO_TIME,
    MOUNT_PATH_REQUIRED,
    STORAGE,
    STORAGE_ID,
    UPDATE_PATH,
    OpenListStandIn,
)

ADMIN = "openlist-admin-token"


@pytest.fixture
def openlist(emulator: EmulatorProcess) -> Iterator[OpenListStandIn]:
    """A fresh stand-in with the test storage (refreshes of one account may follow at once)."""
    emulator.configure(min_refresh_interval=0)
    with OpenListStandIn(ADMIN, STORAGE, emulator.base_url) as standin:
        yield standin


def _get(openlist: OpenListStandIn, query: str, auth: str | None = ADMIN) -> Any:
    headers = {} if auth is None else {"Authorization": auth}
    reply = requests.get(f"{openlist.url}{GET_PATH}?{query}", headers=headers, timeout=30)
    assert reply.status_code == 200  # OpenList's errors too: the status is the body's `code`
    return reply.json()


def _update(openlist: OpenListStandIn, body: Any, auth: str = ADMIN) -> Any:
    reply = requests.post(
        f"{openlist.url}{UPDATE_PATH}", json=body, headers={"Authorization": auth}, timeout=30
    )
    assert reply.status_code == 200
    return reply.json()


def _live(emulator: EmulatorProcess, grant_id: int) -> tuple[str, str]:
    grant = emulator.grant(grant_id)
    return str(grant["access_token"]), str(grant["refresh_token"])


def _pair(emulator: EmulatorProcess) -> tuple[int, str, str]:
    """A new authorization, refreshed once as its keeper would: grant id, access, refresh."""
    grant_id, refresh = emulator.authorize()
    reply = requests.post(
        f"{emulator.base_url}/open/refreshToken", data={"refresh_token": refresh}, timeout=10
    ).json()
    assert reply["code"] == 0, reply["code"]
    return grant_id, reply["data"]["access_token"], reply["data"]["refresh_token"]


def test_the_header_is_the_raw_admin_token(openlist: OpenListStandIn) -> None:
    assert _get(openlist, f"id={STORAGE_ID}") == {
        "code": 200,
        "message": "success",
        "data": STORAGE,
    }
    assert _get(openlist, f"id={STORAGE_ID}", auth=f"Bearer {ADMIN}") == {
        "code": 401,
        "message": "that's not even a token",
        "data": None,
    }
    assert _get(openlist, f"id={STORAGE_ID}", auth=None)["code"] == 401
    assert _get(openlist, "id=8")["code"] == 500
    assert _get(openlist, "id=x")["code"] == 400


def test_a_whole_object_with_a_live_token_works(
    openlist: OpenListStandIn, emulator: EmulatorProcess
) -> None:
    _, access, _ = _pair(emulator)
    body = {**STORAGE, "addition": json.dumps({**ADDITION, "access_token": access})}
    assert _update(openlist, body) == {"code": 200, "message": "success", "data": None}
    stored = openlist.storage(STORAGE_ID)
    assert stored["status"] == "work"
    assert json.loads(stored["addition"])["access_token"] == access
    assert stored["modified"] != STORAGE["modified"]
    assert {k: stored[k] for k in STORAGE if k not in ("addition", "modified")} == {
        k: STORAGE[k] for k in STORAGE if k not in ("addition", "modified")
    }
    assert openlist.refreshes == []


def test_missing_fields_become_zero_and_the_driver_is_fixed(
    openlist: OpenListStandIn, emulator: EmulatorProcess
) -> None:
    # The README's old payload: no mount_path, so OpenList refuses it outright …
    old_example = {"id": STORAGE_ID, "addition": json.dumps({"access_token": "x"})}
    assert _update(openlist, old_example) == {
        "code": 400,
        "message": MOUNT_PATH_REQUIRED,
        "data": None,
    }
    assert _update(openlist, {**old_example, "mount_path": "/115", "driver": "Local"}) == {
        "code": 500,
        "message": "driver cannot be changed",
        "data": None,
    }
    assert openlist.storage(STORAGE_ID) == STORAGE
    assert _update(openlist, {**STORAGE, "order": "3"})["code"] == 400  # a string for an int
    # … and with the required fields, every field left out is stored as its zero value.
    _, access, _ = _pair(emulator)
    partial = {
        "id": STORAGE_ID,
        "mount_path": "115",
        "driver": "115 Open",
        "addition": json.dumps({"access_token": access}),
    }
    assert _update(openlist, partial)["code"] == 200
    stored = openlist.storage(STORAGE_ID)
    assert stored["mount_path"] == "/115"
    assert stored["order"] == 0
    assert stored["remark"] == ""
    assert stored["disable_index"] is False
    assert stored["down_proxy_url"] == ""
    assert stored["modified"] != GO_ZERO_TIME
    assert json.loads(stored["addition"]) == {
        "root_folder_id": "",
        "order_by": "",
        "order_direction": "",
        "limit_rate": 0.0,
        "page_size": 200,  # Open115.Init's default
        "access_token": access,
        "refresh_token": "",
    }


def test_an_empty_refresh_token_never_rotates(
    openlist: OpenListStandIn, emulator: EmulatorProcess
) -> None:
    """A refused access token makes the SDK refresh; without a refresh token 115 says no."""
    grant_id, _ = emulator.authorize()
    body = {**STORAGE, "addition": json.dumps({**ADDITION, "refresh_token": ""})}
    reply = _update(openlist, body)
    assert reply["code"] == 500
    assert reply["message"].startswith("failed init storage: code: 40140114")
    assert openlist.refreshes == [{"sent": {}, "code": 40140114}]  # no refresh_token field
    stored = openlist.storage(STORAGE_ID)
    assert stored["status"].startswith("code: 40140114")
    assert emulator.grant(grant_id)["alive"] is True


def test_a_refresh_token_left_in_openlist_is_rotated_by_openlist(
    openlist: OpenListStandIn, emulator: EmulatorProcess
) -> None:
    """What the README's old example allowed: OpenList refreshes the keeper's token itself."""
    grant_id, _, refresh = _pair(emulator)
    body = {
        **STORAGE,
        "addition": json.dumps({**ADDITION, "access_token": "stale", "refresh_token": refresh}),
    }
    assert _update(openlist, body)["code"] == 200
    assert [r["code"] for r in openlist.refreshes] == [0]
    assert refresh in emulator.state()["used_refresh_tokens"]  # the keeper's copy is void now
    stored = json.loads(openlist.storage(STORAGE_ID)["addition"])
    assert (stored["access_token"], stored["refresh_token"]) == _live(emulator, grant_id)
