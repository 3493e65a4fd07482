"""flow_qr.py: polling 115 for the QR code's status, and exchanging it for a token."""

import asyncio
from datetime import timedelta

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import (
    FlowResultType,
)
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    async_fire_time_changed,
)

from custom_components.open115 import flow_qr
from custom_components.open115.const import (
    CONF_APP_ID,
)

from . import qr_flow
from .emulator import (
    DEFAULT_APP_ID,
    DEVICE_TOKEN_PATH,
    FAULT_HANG,
    FAULT_HTTP_500,
    FAULT_HTTP_502,
    QR_STATUS_PATH,
    Emulator115,
)
from .qr_flow import (
    assert_qr_data,
    code_shown,
    configure,
    current,
    failed_poll,
    handler,
    held_poll,
    newest_grant,
    phone,
    scan_and_confirm,
    show_code,
    start_setup,
)

pytestmark = pytest.mark.usefixtures("no_account_reads")
frozen = qr_flow.frozen  # autouse: 2026-03-01 12:00 UTC


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
