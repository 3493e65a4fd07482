"""Helpers of the QR-code (device-code, PKCE) sign-in's tests, against the loopback emulator.

The flow polls /get/status/ in a background task; the emulator holds each long poll until the
test plays the phone (scan, confirm, cancel, expire). A test waits for the held poll, makes the
change, awaits the flow's poll task and lets Home Assistant run the step it schedules.
`frozen` is autouse in each test module that assigns it (`frozen = qr_flow.frozen`).
"""

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import (
    SOURCE_USER,
)
from homeassistant.const import CONF_ACCESS_TOKEN
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import (
    EVENT_DATA_ENTRY_FLOW_PROGRESSED,
    FlowResultType,
)
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    async_capture_events,
)

from custom_components.open115.config_flow import qr_markdown
from custom_components.open115.const import (
    CONF_APP_ID,
    CONF_AUTHORIZED_AT,
    CONF_EXPIRES_AT,
    CONF_EXPIRES_IN,
    CONF_REFRESH_TOKEN,
    CONF_REFRESHED_AT,
    DOMAIN,
)
from custom_components.open115.token_state import TOKEN_KEYS

from .emulator import (
    DEFAULT_APP_ID,
    Emulator115,
    Grant,
)

RT_EXPIRES = "sensor.emu_user_refresh_token_expires"


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
