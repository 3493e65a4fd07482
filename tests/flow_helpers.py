"""Helpers of the config flow tests: start a flow, submit a token, read what reached the disk."""

from typing import Any

from homeassistant.config_entries import SOURCE_REAUTH, SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_ACCESS_TOKEN
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.open115.const import (
    CONF_REFRESH_TOKEN,
    DOMAIN,
)

from .conftest import USER_NAME, make_entry, setup_entry, stored_entry
from .emulator import (
    REFRESH_PATH,
    USER_INFO_PATH,
    Emulator115,
    Grant,
)


def requests(emulator: Emulator115) -> tuple[int, int]:
    """Requests sent so far: (refresh, user info)."""
    return emulator.count(REFRESH_PATH), emulator.count(USER_INFO_PATH)


async def start_user_flow(hass: HomeAssistant) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "user"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "token"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "token"
    assert result["errors"] == {}
    return dict(result)


async def start_reconfigure(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    """Start reconfiguring `entry` and pick pasting a token in its menu."""
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "reconfigure"
    return dict(
        await hass.config_entries.flow.async_configure(
            result["flow_id"], {"next_step_id": "reconfigure_token"}
        )
    )


async def submit(hass: HomeAssistant, flow_id: str, token: str) -> dict[str, Any]:
    return dict(
        await hass.config_entries.flow.async_configure(flow_id, {CONF_REFRESH_TOKEN: token})
    )


def disk_at_reload(
    hass: HomeAssistant, hass_storage: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> list[str | None]:
    """Record the stored refresh token of each entry the moment its reload is scheduled.

    A reload sets the entry up, and setup flushes too: looking at the disk only after the
    flow returns would not tell whether the flow itself wrote the new pair first.
    """
    seen: list[str | None] = []
    schedule = hass.config_entries.async_schedule_reload

    def spy(entry_id: str) -> None:
        try:
            seen.append(stored_entry(hass_storage, entry_id)["data"][CONF_REFRESH_TOKEN])
        except KeyError, StopIteration:
            seen.append(None)
        schedule(entry_id)

    monkeypatch.setattr(hass.config_entries, "async_schedule_reload", spy)
    return seen


def assert_pair_is_live(emulator: Emulator115, grant: Grant, data: dict[str, Any]) -> None:
    """The stored pair is the grant's current one: its refresh token is the live one."""
    assert data[CONF_REFRESH_TOKEN] == emulator.live_refresh_token(grant)
    assert data[CONF_ACCESS_TOKEN] in emulator.access_tokens
    assert emulator.access_tokens[data[CONF_ACCESS_TOKEN]].grant_id == grant.grant_id


async def entry_needing_reauth(
    hass: HomeAssistant, emulator: Emulator115, grant: Grant
) -> tuple[MockConfigEntry, dict[str, Any]]:
    """An entry whose authorization was revoked, set up with a token that needs a refresh."""
    entry = make_entry(emulator, grant, expires_in=300)
    emulator.revoke(grant)
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert entry.data["refused"] == {"reason": "revoked", "code": 40140116}
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert len(flows) == 1
    assert flows[0]["context"]["source"] == SOURCE_REAUTH
    assert flows[0]["step_id"] == "reauth_revoked"  # the menu says why
    assert requests(emulator) == (1, 0)
    result = await hass.config_entries.flow.async_configure(
        flows[0]["flow_id"], {"next_step_id": "reauth_confirm"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert result["description_placeholders"]["account"] == USER_NAME
    return entry, dict(result)
