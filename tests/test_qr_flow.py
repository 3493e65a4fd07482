"""The QR-code (device-code, PKCE) sign-in of the config flow, against the loopback emulator.

The flow polls /get/status/ in a background task; the emulator holds each long poll until the
test plays the phone (scan, confirm, cancel, expire). A test waits for the held poll, makes the
change, awaits the flow's poll task and lets Home Assistant run the step it schedules.
"""

import asyncio
import base64
from collections.abc import Mapping
from datetime import timedelta
import logging
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import (
    SOURCE_IGNORE,
    SOURCE_REAUTH,
    SOURCE_USER,
    ConfigEntryState,
)
from homeassistant.const import CONF_ACCESS_TOKEN
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import (
    EVENT_DATA_ENTRY_FLOW_PROGRESSED,
    FlowResultType,
)
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)
import segno

from custom_components.open115 import async_get_access_token, flow_qr
from custom_components.open115.config_flow import qr_markdown
from custom_components.open115.const import (
    CONF_APP_ID,
    CONF_AUTHORIZED_AT,
    CONF_EXPIRES_AT,
    CONF_EXPIRES_IN,
    CONF_REFRESH_TOKEN,
    CONF_REFRESHED_AT,
    DOMAIN,
    REFRESH_TOKEN_LIFETIME,
)
from custom_components.open115.token_state import TOKEN_KEYS, TokenStatus

from .conftest import (
    OTHER_ID,
    OTHER_NAME,
    USER_ID,
    USER_NAME,
    make_entry,
    make_entry_data,
    setup_entry,
    stored_entry,
)
from .emulator import (
    DEFAULT_APP_ID,
    DEVICE_CODE_PATH,
    DEVICE_TOKEN_PATH,
    FAULT_HANG,
    FAULT_HTTP_500,
    FAULT_HTTP_502,
    QR_STATUS_PATH,
    REFRESH_PATH,
    USER_INFO_PATH,
    Emulator115,
    Grant,
)

RT_EXPIRES = "sensor.emu_user_refresh_token_expires"

pytestmark = pytest.mark.usefixtures("no_account_reads")


def counts(emulator: Emulator115) -> dict[str, int]:
    """Requests per path (only the paths that saw any)."""
    return {path: n for path, n in emulator.counters.items() if n}


def handler(hass: HomeAssistant, flow_id: str) -> Any:
    return hass.config_entries.flow._progress[flow_id]


def token_keys(data: Mapping[str, Any]) -> dict[str, Any]:
    """The token part of entry data (on disk at once; the rest follows with HA's save)."""
    return {k: data[k] for k in TOKEN_KEYS if k in data}


async def configure(
    hass: HomeAssistant, flow_id: str, user_input: dict[str, Any] | None = None
) -> dict[str, Any]:
    return dict(await hass.config_entries.flow.async_configure(flow_id, user_input))


async def open_qr_form(hass: HomeAssistant, flow_id: str, menu: str = "user") -> dict[str, Any]:
    """Pick the QR path in the flow's menu; the AppID form."""
    flow = hass.config_entries.flow.async_get(flow_id)
    assert flow["step_id"] == menu
    result = await configure(hass, flow_id, {"next_step_id": "qr"})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "qr"
    return result


async def start_setup(hass: HomeAssistant) -> dict[str, Any]:
    result = dict(
        await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    )
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "user"
    assert result["menu_options"] == ["qr", "token"]
    result = await open_qr_form(hass, result["flow_id"])
    assert result["errors"] == {}
    return result


def app_id_default(result: dict[str, Any]) -> str:
    """What the AppID field shows: the last AppID, or what was typed before an error."""
    (key,) = result["data_schema"].schema
    assert key == CONF_APP_ID
    return str(key.description["suggested_value"])


async def show_code(
    hass: HomeAssistant, emulator: Emulator115, flow_id: str, app_id: str = DEFAULT_APP_ID
) -> dict[str, Any]:
    """Submit the AppID: the progress step shows the QR code and starts polling."""
    result = await configure(hass, flow_id, {CONF_APP_ID: app_id})
    assert result["type"] is FlowResultType.SHOW_PROGRESS
    assert result["step_id"] == "qr_scan"
    assert result["progress_action"] == "qr_scan"
    code = emulator.device_code()
    assert result["description_placeholders"] == {
        "qr_code": qr_markdown(code.qrcode),
        "app_id": app_id.strip(),
    }
    return result


async def code_shown(
    hass: HomeAssistant, emulator: Emulator115, app_id: str = DEFAULT_APP_ID
) -> str:
    """Start a setup and submit the AppID: the QR code shows; the flow's id."""
    flow_id: str = (await start_setup(hass))["flow_id"]
    await show_code(hass, emulator, flow_id, app_id)
    return flow_id


async def held_poll(hass: HomeAssistant, emulator: Emulator115, flow_id: str) -> asyncio.Task[Any]:
    """Wait until the emulator holds the flow's poll; the flow's poll task."""
    await emulator.wait_for_held_poll()
    task = handler(hass, flow_id).async_get_progress_task()
    assert task is not None
    return task


async def settle(hass: HomeAssistant, task: asyncio.Task[Any]) -> None:
    """Await the poll task and let Home Assistant run the step it schedules."""
    await task
    await hass.async_block_till_done()


async def failed_poll(
    hass: HomeAssistant, flow_id: str, task: asyncio.Task[Any], error: type[Exception]
) -> dict[str, Any]:
    """The poll task fails with `error`; the flow's next step."""
    with pytest.raises(error):
        await task
    await hass.async_block_till_done()
    return await configure(hass, flow_id)


async def phone(hass: HomeAssistant, emulator: Emulator115, flow_id: str, change: str) -> None:
    """The phone does `change` while the flow's poll is held; the flow takes the answer."""
    task = await held_poll(hass, emulator, flow_id)
    getattr(emulator, change)()
    await settle(hass, task)


def current(hass: HomeAssistant, flow_id: str) -> dict[str, Any]:
    return dict(handler(hass, flow_id).cur_step)


async def scan_and_confirm(
    hass: HomeAssistant, emulator: Emulator115, flow_id: str
) -> dict[str, Any]:
    """Scan, confirm: the flow finishes (exchange, account) on the next configure."""
    progressed = async_capture_events(hass, EVENT_DATA_ENTRY_FLOW_PROGRESSED)
    await phone(hass, emulator, flow_id, "scan_device_code")
    step = current(hass, flow_id)
    assert (step["type"], step["progress_action"]) == (FlowResultType.SHOW_PROGRESS, "qr_confirm")
    assert len(progressed) == 1  # the frontend is told to show "confirm on your phone"
    await phone(hass, emulator, flow_id, "confirm_device_code")
    assert current(hass, flow_id)["type"] is FlowResultType.SHOW_PROGRESS_DONE
    assert len(progressed) == 2
    return await configure(hass, flow_id)


def assert_qr_data(
    emulator: Emulator115, data: dict[str, Any], grant: Grant, *, app_id: str = DEFAULT_APP_ID
) -> None:
    """Entry data: the grant's live pair, the authorization time, the AppID."""
    now = dt_util.utcnow()
    access = data[CONF_ACCESS_TOKEN]
    assert data == {
        CONF_REFRESH_TOKEN: emulator.live_refresh_token(grant),
        CONF_ACCESS_TOKEN: access,
        CONF_EXPIRES_AT: (now + timedelta(seconds=7200)).isoformat(),
        CONF_EXPIRES_IN: 7200,
        CONF_REFRESHED_AT: now.isoformat(),
        CONF_AUTHORIZED_AT: now.isoformat(),
        CONF_APP_ID: app_id,
    }
    assert emulator.access_tokens[access].grant_id == grant.grant_id
    assert grant.authorized_at == now.timestamp()


def newest_grant(emulator: Emulator115) -> Grant:
    return list(emulator.grants.values())[-1]


@pytest.fixture(autouse=True)
def frozen(freezer: FrozenDateTimeFactory) -> FrozenDateTimeFactory:
    """Freeze time, so that stored times can be compared exactly."""
    freezer.move_to("2026-03-01T12:00:00+00:00")
    return freezer


# ----- the QR image ---------------------------------------------------------------------------


def test_qr_markdown_is_a_png_of_the_text() -> None:
    text = "https://115.com/scan/dg-0123456789abcdef"
    markdown = qr_markdown(text)
    prefix = "![QR code](data:image/png;base64,"
    assert markdown.startswith(prefix)
    assert markdown.endswith(")")
    png = base64.b64decode(markdown[len(prefix) : -1], validate=True)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    expected = segno.make(text, error="m", micro=False).png_data_uri(scale=5, border=4)
    assert markdown == f"![QR code]({expected})"
    assert qr_markdown(text + "x") != markdown


# ----- setup ----------------------------------------------------------------------------------


async def test_setup_by_qr_code(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: Emulator115,
    emulator_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    result = await start_setup(hass)
    assert app_id_default(result) == ""
    flow_id = result["flow_id"]
    await show_code(hass, emulator, flow_id)
    code = emulator.device_code()
    assert (code.app_id, code.method) == (DEFAULT_APP_ID, "sha256")

    result = await scan_and_confirm(hass, emulator, flow_id)

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == USER_NAME
    grant = newest_grant(emulator)
    assert_qr_data(emulator, result["data"], grant)
    assert result["result"].unique_id == str(USER_ID)
    assert counts(emulator) == {
        DEVICE_CODE_PATH: 1,
        QR_STATUS_PATH: 2,
        DEVICE_TOKEN_PATH: 1,
        USER_INFO_PATH: 1,
    }
    await hass.async_block_till_done()
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    assert entry.state is ConfigEntryState.LOADED
    # The fresh pair is used as it is; the one-year limit is known.
    assert emulator.count(REFRESH_PATH) == 0
    authorized = dt_util.utcnow()
    state = hass.states.get(RT_EXPIRES)
    assert state is not None
    assert state.state == (authorized + REFRESH_TOKEN_LIFETIME).isoformat()
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []
    for secret in emulator.secrets_issued():
        # (the test harness's mock storage logs what it writes; Home Assistant's Store does not)
        assert not [
            r
            for r in caplog.records
            if secret in r.getMessage() and not r.name.startswith("pytest_homeassistant")
        ]


@pytest.mark.parametrize(
    "app_id",
    ["", "   ", "100 195", "1" * 21, "app!", "100195123abc", "abc", "-1", "1e5", "100_195"],
)
async def test_impossible_app_id_is_refused_without_requests(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str, app_id: str
) -> None:
    """AppIDs are digits: anything else is refused before a request, and stays in the field."""
    result = await start_setup(hass)
    result = await configure(hass, result["flow_id"], {CONF_APP_ID: app_id})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "qr"
    assert result["errors"] == {CONF_APP_ID: "invalid_app_id"}
    assert app_id_default(result) == app_id
    assert counts(emulator) == {}
    hass.config_entries.flow.async_abort(result["flow_id"])


async def test_full_width_digits_are_an_app_id(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str
) -> None:
    """Digits typed with a Chinese input method (full width) are the same AppID."""
    full_width = DEFAULT_APP_ID.translate({ord(d): 0xFF10 + int(d) for d in "0123456789"})
    assert full_width != DEFAULT_APP_ID
    flow_id = (await start_setup(hass))["flow_id"]
    await configure(hass, flow_id, {CONF_APP_ID: full_width})
    assert emulator.device_code().app_id == DEFAULT_APP_ID
    hass.config_entries.flow.async_abort(flow_id)


async def test_app_id_is_stripped(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str
) -> None:
    flow_id = await code_shown(hass, emulator, f"  {DEFAULT_APP_ID} ")
    assert emulator.device_code().app_id == DEFAULT_APP_ID
    hass.config_entries.flow.async_abort(flow_id)


async def test_app_refused_then_the_right_one(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    result = await start_setup(hass)
    flow_id = result["flow_id"]
    result = await configure(hass, flow_id, {CONF_APP_ID: "999"})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "app_refused"}
    # The dialog shows what 115 said, and the AppID stays in the field to be corrected.
    assert result["description_placeholders"] == {
        "account": "",
        "other": "",
        "code": "40140106",
        "message": "APP ID 无效",
    }
    assert app_id_default(result) == "999"
    assert (
        "115 refused a QR code for AppID 999: Requesting a QR code failed with code 40140106"
        in (caplog.text)
    )
    await show_code(hass, emulator, flow_id)
    result = await scan_and_confirm(hass, emulator, flow_id)
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (FAULT_HTTP_500, "cannot_connect"),
        ("code:40140117", "rate_limited"),
        ("code:40140122", "too_many_apps"),
        ("code:40140105", "app_refused"),
        ("code:40140116", "unknown"),  # a refresh-token code here makes no sense
    ],
)
async def test_qr_code_request_fails(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str, fault: str, error: str
) -> None:
    result = await start_setup(hass)
    emulator.inject(DEVICE_CODE_PATH, fault)
    result = await configure(hass, result["flow_id"], {CONF_APP_ID: DEFAULT_APP_ID})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "qr"
    assert result["errors"] == {"base": error}
    assert counts(emulator) == {DEVICE_CODE_PATH: 1}
    hass.config_entries.flow.async_abort(result["flow_id"])


@pytest.mark.parametrize(
    ("change", "error"),
    [("expire_device_code", "qr_expired"), ("cancel_device_code", "qr_cancelled")],
)
@pytest.mark.parametrize("scanned", [False, True])
async def test_dead_code_then_a_new_one(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    change: str,
    error: str,
    scanned: bool,
) -> None:
    flow_id = await code_shown(hass, emulator)
    first = emulator.device_code()
    if scanned:
        await phone(hass, emulator, flow_id, "scan_device_code")
    await phone(hass, emulator, flow_id, change)
    assert current(hass, flow_id)["type"] is FlowResultType.SHOW_PROGRESS_DONE
    result = await configure(hass, flow_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "qr"
    assert result["errors"] == {"base": error}
    assert app_id_default(result) == DEFAULT_APP_ID  # start over with one click
    # Starting over: a new code, its own QR image.
    await show_code(hass, emulator, flow_id)
    assert emulator.device_code() is not first
    assert len(emulator.device_codes) == 2
    result = await scan_and_confirm(hass, emulator, flow_id)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert emulator.device_code().redeemed
    assert not first.redeemed


async def test_code_expired_while_nobody_looked(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    frozen: FrozenDateTimeFactory,
) -> None:
    """Our wait runs out after the code's lifetime: the next poll answers "expired"."""
    flow_id = await code_shown(hass, emulator)
    task = await held_poll(hass, emulator, flow_id)
    frozen.tick(timedelta(seconds=emulator.device_code_lifetime))
    await settle(hass, task)
    result = await configure(hass, flow_id)
    assert result["errors"] == {"base": "qr_expired"}
    assert emulator.count(QR_STATUS_PATH) == 2


async def test_unchanged_answers_and_own_timeouts_keep_polling(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """115's wait ending, and ours, say nothing: the flow polls on and still sees the scan."""
    monkeypatch.setattr(flow_qr, "POLL_WAIT", 0.05)
    monkeypatch.setattr(flow_qr, "MIN_POLL_SPACING", 0.0)  # the frozen loop clock stands
    flow_id = await code_shown(hass, emulator)
    task = await held_poll(hass, emulator, flow_id)
    emulator.end_long_polls()
    await emulator.wait_for_held_poll()
    assert emulator.count(QR_STATUS_PATH) == 2
    # More of our own timeouts in a row than failures are allowed.
    hangs = flow_qr.MAX_POLL_FAILURES + 1
    emulator.inject(QR_STATUS_PATH, *[FAULT_HANG] * hangs)
    emulator.end_long_polls()
    for sent in range(3, 3 + hangs):
        await emulator.wait_for_device(lambda n=sent: emulator.count(QR_STATUS_PATH) == n)
        async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=1))  # our wait ends
    await emulator.wait_for_device(lambda: emulator.held_polls == 1)
    assert emulator.count(QR_STATUS_PATH) == 3 + hangs
    assert handler(hass, flow_id).async_get_progress_task() is task
    assert not task.done()
    result = await scan_and_confirm(hass, emulator, flow_id)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_polls_are_spaced_when_115_answers_at_once(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Failures and unchanged answers that come at once: the next poll waits out the second."""
    pauses: list[float] = []

    async def _pause(seconds: float) -> None:
        pauses.append(seconds)

    monkeypatch.setattr(flow_qr, "_pause", _pause)
    emulator.inject(QR_STATUS_PATH, FAULT_HTTP_500, FAULT_HTTP_502)
    flow_id = await code_shown(hass, emulator)
    await held_poll(hass, emulator, flow_id)
    emulator.end_long_polls()  # an unchanged answer, at once
    await emulator.wait_for_held_poll()
    assert emulator.count(QR_STATUS_PATH) == 4
    assert pauses == [flow_qr.MIN_POLL_SPACING] * 3  # the loop clock stands still here


async def test_next_poll_waits_for_the_loop_clock(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
) -> None:
    """A poll that fails at once is followed by the next only when a second has passed."""
    emulator.inject(QR_STATUS_PATH, FAULT_HTTP_500)
    flow_id = await code_shown(hass, emulator)
    await emulator.wait_for_device(lambda: emulator.count(QR_STATUS_PATH) == 1)
    for _ in range(20):
        await asyncio.sleep(0)
    assert emulator.count(QR_STATUS_PATH) == 1  # the flow waits, the clock stands still
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=flow_qr.MIN_POLL_SPACING))
    await held_poll(hass, emulator, flow_id)
    assert emulator.count(QR_STATUS_PATH) == 2


async def test_poll_failures_in_a_row_give_up(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(flow_qr, "MIN_POLL_SPACING", 0.0)  # the frozen loop clock stands
    # Two failures, then an answer: the count starts again.
    emulator.inject(QR_STATUS_PATH, FAULT_HTTP_500, FAULT_HTTP_502)
    flow_id = await code_shown(hass, emulator)
    await phone(hass, emulator, flow_id, "scan_device_code")
    assert current(hass, flow_id)["progress_action"] == "qr_confirm"
    task = await held_poll(hass, emulator, flow_id)
    emulator.inject(QR_STATUS_PATH, *[FAULT_HTTP_500] * flow_qr.MAX_POLL_FAILURES)
    emulator.end_long_polls()
    result = await failed_poll(hass, flow_id, task, flow_qr.Open115TransientError)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    assert emulator.count(QR_STATUS_PATH) == 3 + 1 + flow_qr.MAX_POLL_FAILURES
    assert "Polling the QR code failed: Polling the QR code failed with HTTP 500" in caplog.text


async def test_poll_refused(hass: HomeAssistant, emulator: Emulator115, emulator_url: str) -> None:
    flow_id = (await start_setup(hass))["flow_id"]
    emulator.inject_body(QR_STATUS_PATH, {"state": 0, "code": 40140104, "message": "sign"})
    await configure(hass, flow_id, {CONF_APP_ID: DEFAULT_APP_ID})
    task = handler(hass, flow_id).async_get_progress_task()
    assert task is not None
    result = await failed_poll(hass, flow_id, task, flow_qr.Open115ApiError)
    assert result["errors"] == {"base": "unknown"}


@pytest.mark.parametrize(
    ("fault", "error"),
    [(FAULT_HTTP_500, "cannot_connect"), ("code:40140117", "rate_limited")],
)
async def test_exchange_fails_then_retried(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str, fault: str, error: str
) -> None:
    flow_id = await code_shown(hass, emulator)
    emulator.inject(DEVICE_TOKEN_PATH, fault)
    result = await scan_and_confirm(hass, emulator, flow_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "qr_finish"
    assert result["errors"] == {"base": error}
    assert emulator.grants == {}
    result = await configure(hass, flow_id, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert_qr_data(emulator, result["data"], newest_grant(emulator))
    assert emulator.count(DEVICE_TOKEN_PATH) == 2


@pytest.mark.parametrize(
    ("fault", "error"),
    [("code:40140113", "qr_failed"), ("code:40140122", "too_many_apps")],
)
async def test_exchange_refused_starts_over(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    caplog: pytest.LogCaptureFixture,
    fault: str,
    error: str,
) -> None:
    flow_id = await code_shown(hass, emulator)
    emulator.inject(DEVICE_TOKEN_PATH, fault)
    result = await scan_and_confirm(hass, emulator, flow_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "qr"
    assert result["errors"] == {"base": error}
    assert result["description_placeholders"]["code"] == fault.removeprefix("code:")
    assert result["description_placeholders"]["message"] == "injected"
    assert "115 refused the QR sign-in: Exchanging the QR code failed with code" in caplog.text
    await show_code(hass, emulator, flow_id)
    result = await scan_and_confirm(hass, emulator, flow_id)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def account_read_fails(hass: HomeAssistant, emulator: Emulator115) -> dict[str, Any]:
    """Scan and confirm while reading the account fails: the flow holds the new pair."""
    flow_id = await code_shown(hass, emulator)
    emulator.inject(USER_INFO_PATH, FAULT_HTTP_502)
    return await scan_and_confirm(hass, emulator, flow_id)


async def test_account_read_fails_the_pair_is_kept(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str
) -> None:
    result = await account_read_fails(hass, emulator)
    flow_id = result["flow_id"]
    assert result["step_id"] == "qr_finish"
    assert result["errors"] == {"base": "cannot_connect"}
    result = await configure(hass, flow_id, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert_qr_data(emulator, result["data"], newest_grant(emulator))
    assert counts(emulator)[DEVICE_TOKEN_PATH] == 1
    assert counts(emulator)[USER_INFO_PATH] == 2
    assert emulator.count(REFRESH_PATH) == 0


async def test_kept_pair_refreshed_when_its_access_token_ran_out(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    frozen: FrozenDateTimeFactory,
) -> None:
    flow_id = (await account_read_fails(hass, emulator))["flow_id"]
    authorized = dt_util.utcnow()
    grant = newest_grant(emulator)
    frozen.tick(timedelta(seconds=7200 - 30))
    result = await configure(hass, flow_id, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert emulator.count(REFRESH_PATH) == 1
    data = result["data"]
    assert data[CONF_REFRESH_TOKEN] == emulator.live_refresh_token(grant)
    assert data[CONF_REFRESHED_AT] == dt_util.utcnow().isoformat()
    # Refreshing never moves the authorization time.
    assert data[CONF_AUTHORIZED_AT] == authorized.isoformat()


async def test_kept_pair_refused_starts_over(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    frozen: FrozenDateTimeFactory,
) -> None:
    flow_id = (await account_read_fails(hass, emulator))["flow_id"]
    emulator.revoke(newest_grant(emulator))
    frozen.tick(timedelta(seconds=7200))
    result = await configure(hass, flow_id, {})
    assert result["step_id"] == "qr"
    assert result["errors"] == {"base": "qr_failed"}


async def test_steps_reached_without_a_code_ask_for_one(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str
) -> None:
    """Home Assistant only offers the menu's choices; should a step be reached anyway."""
    result = dict(
        await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    )
    flow = handler(hass, result["flow_id"])
    for step in (flow.async_step_qr_scan, flow.async_step_qr_finish):
        result = dict(await step())
        assert result["type"] is FlowResultType.FORM
        assert result["step_id"] == "qr"
    assert counts(emulator) == {}
    hass.config_entries.flow.async_abort(result["flow_id"])


async def test_closing_the_dialog_stops_polling(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str
) -> None:
    flow_id = await code_shown(hass, emulator)
    task = await held_poll(hass, emulator, flow_id)
    hass.config_entries.flow.async_abort(flow_id)
    with pytest.raises(asyncio.CancelledError):
        await task
    # The server side of the poll ends when the client is gone.
    await emulator.wait_for_device(lambda: emulator.held_polls == 0)
    assert emulator.count(QR_STATUS_PATH) == 1


async def test_already_configured_account_takes_the_new_authorization(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    grant: Grant,
) -> None:
    """The scan made a new authorization (which may push out the old one): it is kept."""
    await setup_entry(hass, config_entry)
    old_keeper = config_entry.runtime_data.keeper
    flow_id = await code_shown(hass, emulator)
    result = await scan_and_confirm(hass, emulator, flow_id)
    assert result["type"] is FlowResultType.ABORT
    # Said so: the entry now holds the new authorization.
    assert result["reason"] == "already_configured_updated"
    assert result["description_placeholders"] == {"account": USER_NAME}
    new_grant = newest_grant(emulator)
    assert new_grant is not grant
    assert_qr_data(emulator, dict(config_entry.data), new_grant)
    assert token_keys(stored_entry(hass_storage, config_entry.entry_id)["data"]) == token_keys(
        config_entry.data
    )
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.LOADED
    assert config_entry.runtime_data.keeper is not old_keeper
    assert config_entry.runtime_data.keeper.data.refresh_token == emulator.live_refresh_token(
        new_grant
    )
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def test_ignored_account_is_added(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str
) -> None:
    ignored = MockConfigEntry(domain=DOMAIN, unique_id=str(USER_ID), source=SOURCE_IGNORE, data={})
    ignored.add_to_hass(hass)
    flow_id = await code_shown(hass, emulator)
    result = await scan_and_confirm(hass, emulator, flow_id)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    assert entry.source == SOURCE_USER


async def test_scanned_by_another_account_adds_that_one(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str
) -> None:
    emulator.add_account(OTHER_ID, OTHER_NAME)
    flow_id = await code_shown(hass, emulator)
    task = await held_poll(hass, emulator, flow_id)
    emulator.scan_device_code(user_id=OTHER_ID)
    await settle(hass, task)
    await phone(hass, emulator, flow_id, "confirm_device_code")
    result = await configure(hass, flow_id)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert (result["title"], result["result"].unique_id) == (OTHER_NAME, str(OTHER_ID))


# ----- re-authentication and reconfiguration --------------------------------------------------


async def entry_needing_reauth(
    hass: HomeAssistant, emulator: Emulator115, grant: Grant, **extra: Any
) -> MockConfigEntry:
    entry = make_entry(emulator, grant, expires_in=300, **extra)
    emulator.revoke(grant)
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    return entry


async def test_reauth_by_qr_code(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
) -> None:
    entry = await entry_needing_reauth(hass, emulator, grant, **{CONF_APP_ID: "100200300"})
    emulator.device_apps.add("100200300")
    (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flow["context"]["source"] == SOURCE_REAUTH
    step = current(hass, flow["flow_id"])
    assert step["type"] is FlowResultType.MENU
    assert step["menu_options"] == ["qr", "reauth_confirm"]
    assert step["description_placeholders"] == {"account": USER_NAME, "code": "40140116"}
    result = await open_qr_form(hass, flow["flow_id"], menu="reauth_revoked")
    assert app_id_default(result) == "100200300"  # the AppID of the last QR sign-in
    await show_code(hass, emulator, flow["flow_id"], "100200300")
    result = await scan_and_confirm(hass, emulator, flow["flow_id"])
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    new_grant = newest_grant(emulator)
    assert_qr_data(emulator, dict(entry.data), new_grant, app_id="100200300")
    # On disk before the reload.
    assert token_keys(stored_entry(hass_storage, entry.entry_id)["data"]) == token_keys(entry.data)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.keeper.data.authorized_at == dt_util.utcnow()
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []


async def test_reauth_by_qr_code_of_another_account(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str, grant: Grant
) -> None:
    """Confirmed with an account that is not set up: said so, and the AppID form stays open."""
    entry = await entry_needing_reauth(hass, emulator, grant)
    before = dict(entry.data)
    emulator.add_account(OTHER_ID, OTHER_NAME)
    (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    result = await open_qr_form(hass, flow["flow_id"], menu="reauth_revoked")
    assert app_id_default(result) == ""
    await show_code(hass, emulator, flow["flow_id"])
    emulator.scan_device_code(user_id=OTHER_ID)
    await phone(hass, emulator, flow["flow_id"], "confirm_device_code")
    result = await configure(hass, flow["flow_id"])
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "qr"
    assert result["errors"] == {"base": "wrong_account_qr"}
    assert result["description_placeholders"]["account"] == USER_NAME
    assert result["description_placeholders"]["other"] == OTHER_NAME
    assert app_id_default(result) == DEFAULT_APP_ID  # one click for a new code
    assert dict(entry.data) == before
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1

    # The same dialog goes on: a new code, confirmed with the right account.
    await show_code(hass, emulator, flow["flow_id"])
    result = await scan_and_confirm(hass, emulator, flow["flow_id"])
    assert result["reason"] == "reauth_successful"
    assert_qr_data(emulator, dict(entry.data), newest_grant(emulator))
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


async def test_reconfigure_by_qr_code_of_another_set_up_account(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    config_entry: MockConfigEntry,
) -> None:
    """Confirmed with another account that is set up: that entry takes the new authorization."""
    await setup_entry(hass, config_entry)
    before = dict(config_entry.data)
    emulator.add_account(OTHER_ID, OTHER_NAME)
    other_entry = MockConfigEntry(
        domain=DOMAIN,
        title=OTHER_NAME,
        unique_id=str(OTHER_ID),
        data=make_entry_data(emulator, emulator.authorize(OTHER_ID)),
    )
    await setup_entry(hass, other_entry)
    other_keeper = other_entry.runtime_data.keeper
    result = await config_entry.start_reconfigure_flow(hass)
    flow_id = result["flow_id"]
    await open_qr_form(hass, flow_id, menu="reconfigure")
    await show_code(hass, emulator, flow_id)
    emulator.scan_device_code(user_id=OTHER_ID)
    await phone(hass, emulator, flow_id, "confirm_device_code")
    result = await configure(hass, flow_id)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "wrong_account_qr_moved"}
    assert result["description_placeholders"]["other"] == OTHER_NAME
    new_grant = newest_grant(emulator)
    assert new_grant.user_id == OTHER_ID
    assert_qr_data(emulator, dict(other_entry.data), new_grant)
    assert token_keys(stored_entry(hass_storage, other_entry.entry_id)["data"]) == token_keys(
        other_entry.data
    )
    await hass.async_block_till_done()
    assert other_entry.runtime_data.keeper is not other_keeper  # reloaded with the new pair
    assert other_entry.runtime_data.keeper.data.refresh_token == emulator.live_refresh_token(
        new_grant
    )
    assert dict(config_entry.data) == before
    hass.config_entries.flow.async_abort(flow_id)


async def test_paste_reauth_keeps_the_app_id(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str, grant: Grant
) -> None:
    entry = await entry_needing_reauth(
        hass,
        emulator,
        grant,
        **{CONF_APP_ID: DEFAULT_APP_ID, CONF_AUTHORIZED_AT: dt_util.utcnow().isoformat()},
    )
    (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    result = await configure(hass, flow["flow_id"], {"next_step_id": "reauth_confirm"})
    assert result["step_id"] == "reauth_confirm"
    new_grant = emulator.authorize(USER_ID)
    result = await configure(
        hass, flow["flow_id"], {CONF_REFRESH_TOKEN: emulator.live_refresh_token(new_grant)}
    )
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_APP_ID] == DEFAULT_APP_ID
    # A pasted token's authorization time is unknown.
    assert CONF_AUTHORIZED_AT not in entry.data


async def test_reconfigure_by_qr_code_renews_the_year(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    result = dict(await config_entry.start_reconfigure_flow(hass))
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["qr", "reconfigure_token"]
    assert result["description_placeholders"] == {"account": USER_NAME}
    flow_id = result["flow_id"]
    await open_qr_form(hass, flow_id, menu="reconfigure")
    await show_code(hass, emulator, flow_id)
    result = await scan_and_confirm(hass, emulator, flow_id)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert_qr_data(emulator, dict(config_entry.data), newest_grant(emulator))
    await hass.async_block_till_done()
    state = hass.states.get(RT_EXPIRES)
    assert state is not None
    assert state.state == (dt_util.utcnow() + REFRESH_TOKEN_LIFETIME).isoformat()


async def test_expiring_repair_follows_the_qr_authorization(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    frozen: FrozenDateTimeFactory,
) -> None:
    """The authorization time a QR sign-in stores drives the 14-day repair."""
    flow_id = await code_shown(hass, emulator)
    result = await scan_and_confirm(hass, emulator, flow_id)
    await hass.async_block_till_done()
    entry = result["result"]
    authorized = dt_util.utcnow()
    issue_id = f"refresh_token_expiring_{entry.entry_id}"
    frozen.move_to(authorized + REFRESH_TOKEN_LIFETIME - timedelta(days=14, seconds=1))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    frozen.move_to(authorized + REFRESH_TOKEN_LIFETIME - timedelta(days=14))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "refresh_token_expiring"


@pytest.mark.parametrize("change", ["expire_device_code", "cancel_device_code"])
@pytest.mark.parametrize("lifetime", [120.0, 600.0])
async def test_dead_code_told_by_state_0_only(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    change: str,
    lifetime: float,
) -> None:
    """Where 115 tells a dead code only by state 0 (no -1/-2 status), whatever its lifetime,
    the dialog goes back to the AppID form saying the code expired, and a new one works."""
    emulator.qr_dead_as_state0 = True
    emulator.device_code_lifetime = lifetime
    flow_id = await code_shown(hass, emulator)
    await phone(hass, emulator, flow_id, "scan_device_code")
    await phone(hass, emulator, flow_id, change)
    result = await configure(hass, flow_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "qr"
    assert result["errors"] == {"base": "qr_expired"}
    await show_code(hass, emulator, flow_id)
    result = await scan_and_confirm(hass, emulator, flow_id)
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize("per_app", [2, 3])
async def test_scans_elsewhere_push_out_ours_after_the_apps_limit(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str, per_app: int
) -> None:
    """Two or three live authorizations per app (sources differ): ours dies with the one
    that goes over the limit, and the keeper then asks to re-authenticate (revoked)."""
    emulator.max_grants_per_app = per_app
    flow_id = await code_shown(hass, emulator)
    result = await scan_and_confirm(hass, emulator, flow_id)
    entry = result["result"]
    await hass.async_block_till_done()
    for _ in range(per_app - 1):
        emulator.authorize(USER_ID, DEFAULT_APP_ID)  # another program scans the same app
    keeper = entry.runtime_data.keeper
    assert keeper.data.status is TokenStatus.OK
    assert await async_get_access_token(hass, min_validity=7000) != ""
    assert keeper.data.status is TokenStatus.OK
    assert emulator.grants[newest_grant(emulator).grant_id].alive
    # One more scan elsewhere: ours (the oldest) is pushed out.
    emulator.authorize(USER_ID, DEFAULT_APP_ID)
    with pytest.raises(HomeAssistantError):
        await async_get_access_token(hass, rejected_token=keeper.data.access_token)
    assert keeper.data.status is TokenStatus.REAUTH_REQUIRED
    assert keeper.data.reauth_reason == "revoked"
