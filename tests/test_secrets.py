"""Secrets, proven: no token string reaches a log, state, attribute, event, diagnostics or error.

The integration is run through setup (the config flow), refreshes, every kind of failure,
expiry, service calls, events, diagnostics and re-authentication while everything it shows is
captured; then every string the emulator ever issued as a token is searched for in all of it.
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
import importlib
import importlib.util
import logging
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, SOURCE_USER, ConfigEntry, ConfigEntryState
from homeassistant.const import MATCH_ALL
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.json import json_dumps
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.open115 import async_get_access_token
from custom_components.open115.const import (
    DOMAIN,
    EVENT_TOKEN_REFRESHED,
    MIN_REFRESH_INTERVAL,
    SERVICE_GET_ACCESS_TOKEN,
    SERVICE_REFRESH_TOKEN,
)

from .conftest import USER_ID
from .emulator import (
    FAULT_DROP_AFTER_ROTATE,
    FAULT_HTML,
    FAULT_HTTP_429,
    FAULT_HTTP_500,
    FAULT_HTTP_502,
    FAULT_RESET,
    REFRESH_PATH,
    USER_INFO_PATH,
    Emulator115,
    Grant,
)
from .secret_scan import Capture, leaks

START = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)
STATUS = "sensor.emu_user_token_status"
NEXT = "sensor.emu_user_next_refresh"
HAS_DIAGNOSTICS = importlib.util.find_spec("custom_components.open115.diagnostics") is not None


def test_the_scan_finds_a_secret() -> None:
    """The scan itself works: a token anywhere in a text is found."""
    texts = [("a", "nothing"), ("b", "x rt_abc-DEF_123 y"), ("c", "{'k': 'at_zz'}")]
    assert leaks(texts, {"rt_abc-DEF_123", "at_zz"}) == ["b", "c"]
    assert leaks(texts, {"rt_other"}) == []


HARNESS = "pytest_homeassistant_custom_component"


@pytest.mark.usefixtures("timestamps_enabled")
async def test_no_token_anywhere(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    caplog: pytest.LogCaptureFixture,
    hass_storage: dict[str, Any],
) -> None:
    caplog.set_level(logging.DEBUG)
    freezer.move_to(START)
    cap = Capture()

    @callback
    def _any_event(event: Event) -> None:
        cap.events.append(event)

    hass.bus.async_listen(MATCH_ALL, _any_event)

    async def move(to: datetime) -> None:
        freezer.move_to(to)
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)

    def snapshot(label: str) -> None:
        for state in hass.states.async_all():
            cap.add(f"state {label} {state.entity_id}", state.as_dict())
        for issue in ir.async_get(hass).issues.values():
            cap.add(f"issue {label}", issue.to_json())

    def status() -> str:
        state = hass.states.get(STATUS)
        assert state is not None
        return state.state

    async def next_refresh() -> None:
        state = hass.states.get(NEXT)
        assert state is not None
        # The sensor shows whole seconds; the timer may be due a fraction later.
        await move(datetime.fromisoformat(state.state) + timedelta(seconds=1))

    async def expect_error(label: str, call: Callable[[], Any]) -> None:
        with pytest.raises(HomeAssistantError) as exc:
            await call()
        cap.error(label, exc.value)

    async def service(name: str, data: dict[str, Any] | None = None) -> Any:
        return await hass.services.async_call(
            DOMAIN, name, data or {}, blocking=True, return_response=True
        )

    async def diagnostics(label: str, entry: ConfigEntry) -> None:
        if not HAS_DIAGNOSTICS:
            return
        module = importlib.import_module("custom_components.open115.diagnostics")
        result = await module.async_get_config_entry_diagnostics(hass, entry)
        cap.diagnostics.append(result)
        cap.add(f"diagnostics {label}", result)
        cap.texts.append((f"diagnostics json {label}", json_dumps(result)))

    # ----- setup through the config flow, with a refused token first ------------------------
    used = emulator.rotate_elsewhere(grant)  # another program refreshed: `used` is ours now
    voided = emulator.rotate_elsewhere(grant)  # and `used` is void
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "token"}
    )
    cap.add("flow form", result)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"refresh_token": used}
    )
    cap.add("flow used token", result)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_token"}
    await move(dt_util.utcnow() + timedelta(seconds=60))  # 115's frequency window
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"refresh_token": f'  "Bearer {voided}" '}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    cap.add("flow created", {k: v for k, v in result.items() if k not in ("data", "result")})
    await hass.async_block_till_done()
    (entry,) = hass.config_entries.async_entries(DOMAIN)
    assert entry.state is ConfigEntryState.LOADED
    assert entry.unique_id == str(USER_ID)
    snapshot("setup")
    await diagnostics("setup", entry)

    # ----- service calls and refreshes -----------------------------------------------------
    response = await service(SERVICE_GET_ACCESS_TOKEN)
    assert response["access_token"] in emulator.access_tokens  # the one place a token belongs
    await expect_error("too soon", lambda: service(SERVICE_REFRESH_TOKEN))
    await expect_error(
        "unknown entry", lambda: service(SERVICE_GET_ACCESS_TOKEN, {"config_entry_id": "nope"})
    )
    await move(dt_util.utcnow() + MIN_REFRESH_INTERVAL)
    await service(SERVICE_REFRESH_TOKEN)
    await next_refresh()  # proactive
    assert status() == "ok"
    snapshot("refreshed")

    # ----- every kind of failure, until the token expires -----------------------------------
    emulator.inject(
        REFRESH_PATH,
        "code:40140117",
        FAULT_HTTP_500,
        FAULT_HTTP_502,
        FAULT_HTTP_429,
        FAULT_HTML,
        FAULT_RESET,
        "code:40110000",
        "code:40140121",
        "code:40140118",
    )
    seen_statuses: set[str] = set()
    for _ in range(9):
        await next_refresh()
        seen_statuses.add(status())
        snapshot(f"failing {len(seen_statuses)}")
    await diagnostics("failing", entry)
    expires = dt_util.parse_datetime(entry.data["expires_at"])
    assert expires is not None
    if dt_util.utcnow() < expires:
        emulator.inject(REFRESH_PATH, *[FAULT_HTTP_500] * 20)
        await move(expires)
    assert status() == "expired"
    seen_statuses.add(status())
    assert {"retrying", "rate_limited", "expired"} <= seen_statuses
    await expect_error("expired", lambda: service(SERVICE_GET_ACCESS_TOKEN))
    await expect_error("expired api", lambda: async_get_access_token(hass))
    await diagnostics("expired", entry)
    emulator.faults.clear()
    await next_refresh()
    assert status() == "ok"
    snapshot("recovered")

    # ----- the answer to a refresh is lost: 115 rotated, we never learn the new pair ---------
    emulator.inject(REFRESH_PATH, FAULT_DROP_AFTER_ROTATE)
    for _ in range(10):
        await next_refresh()
        if status() == "reauth_required":
            break
    assert status() == "reauth_required"
    snapshot("reauth required")
    await expect_error("reauth get", lambda: service(SERVICE_GET_ACCESS_TOKEN))
    await expect_error("reauth refresh", lambda: service(SERVICE_REFRESH_TOKEN))
    await expect_error("reauth api", lambda: async_get_access_token(hass, entry.entry_id))
    await diagnostics("reauth", entry)

    # ----- re-authentication: the stored (dead) token is refused, a new authorization taken ---
    (flow,) = entry.async_get_active_flows(hass, {SOURCE_REAUTH})
    await hass.config_entries.flow.async_configure(
        flow["flow_id"], {"next_step_id": "reauth_confirm"}
    )
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {"refresh_token": entry.data["refresh_token"]}
    )
    cap.add("reauth stale token", result)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "token_refused"}
    new_grant = emulator.authorize(USER_ID)
    await move(dt_util.utcnow() + timedelta(seconds=emulator.min_refresh_interval))
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {"refresh_token": emulator.live_refresh_token(new_grant)}
    )
    cap.add("reauth done", result)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert status() == "ok"
    await next_refresh()
    assert status() == "ok"
    snapshot("after reauth")
    await diagnostics("after reauth", entry)

    # ----- unloaded: diagnostics from the stored data -----------------------------------------
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    await expect_error(
        "not loaded",
        lambda: service(SERVICE_GET_ACCESS_TOKEN, {"config_entry_id": entry.entry_id}),
    )
    await diagnostics("unloaded", entry)
    snapshot("unloaded")

    # ----- everything captured ------------------------------------------------------------------
    # The test harness's mock storage logs what it writes (Home Assistant's Store does not):
    # the stored files themselves are checked below.
    records = [r for r in caplog.records if not r.name.startswith(HARNESS)]
    for record in records:
        cap.add(f"log {record.name}", record.getMessage())
        cap.add(f"log args {record.name}", record.args)
        if record.exc_info:
            cap.texts.append(
                (f"log exc {record.name}", logging.Formatter().formatException(record.exc_info))
            )
    cap.texts.append(("log text", "\n".join(logging.Formatter().format(r) for r in records)))
    for event in cap.events:
        cap.add(f"event {event.event_type}", event.as_dict())
    for key, stored in hass_storage.items():
        # The places the pair must be: the token file, and the entry's data it is mirrored to.
        if key != "core.config_entries" and not key.endswith(".token"):
            cap.add(f"storage {key}", stored)

    # The capture saw what it should have.
    refreshed = [e for e in cap.events if e.event_type == EVENT_TOKEN_REFRESHED]
    # Every rotation the keeper learned of was announced; the config flow's two validating
    # refreshes and the one whose answer was lost were not.
    answered = [r for r in emulator.requests if r.path == REFRESH_PATH and r.code == 0]
    assert len(refreshed) == len([r for r in answered if r.fault is None]) - 2 == 4
    assert any(e.event_type == "state_changed" for e in cap.events)
    assert any("retrying" in text for label, text in cap.texts if label.startswith("log"))
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    assert len(cap.errors) == 8
    assert emulator.count(USER_INFO_PATH) >= 2
    if HAS_DIAGNOSTICS:
        assert len(cap.diagnostics) == 6

    secrets = emulator.secrets_issued()
    assert used in secrets
    assert voided in secrets
    assert len(secrets) > 10
    assert leaks(cap.texts, secrets) == []
