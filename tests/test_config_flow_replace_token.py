"""config_flow.py's re-authentication and reconfigure against the loopback emulator: the new token replaces the old, errors then success."""

from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import (
    ConfigEntryState,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.open115.const import (
    CONF_REFRESH_TOKEN,
    DOMAIN,
)

from .conftest import (
    USER_ID,
    USER_NAME,
    advance,
    setup_entry,
    stored_entry,
)
from .emulator import (
    FAULT_HTTP_502,
    FAULT_RESET,
    REFRESH_PATH,
    USER_INFO_PATH,
    Emulator115,
    Grant,
)
from .flow_helpers import (
    assert_pair_is_live,
    disk_at_reload,
    entry_needing_reauth,
    requests,
    start_reconfigure,
    submit,
)

pytestmark = pytest.mark.usefixtures("no_account_reads")

# ----- reauth --------------------------------------------------------------------------------


async def test_reauth_replaces_token_and_reloads(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entry, result = await entry_needing_reauth(hass, emulator, grant)
    new_grant = emulator.authorize(USER_ID)
    pasted = emulator.live_refresh_token(new_grant)
    on_disk = disk_at_reload(hass, hass_storage, monkeypatch)

    result = await submit(hass, result["flow_id"], f"Bearer {pasted}")

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    live = emulator.live_refresh_token(new_grant)
    assert emulator.used_refresh_tokens[pasted] == new_grant.grant_id
    assert_pair_is_live(emulator, new_grant, dict(entry.data))
    # On disk before the reload was even scheduled.
    assert on_disk == [live]
    assert stored_entry(hass_storage, entry.entry_id)["data"][CONF_REFRESH_TOKEN] == live

    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.keeper.data.refresh_token == live
    assert entry.unique_id == str(USER_ID)
    assert entry.title == USER_NAME
    # One failed refresh at setup, one in the flow; the reload sends nothing.
    assert requests(emulator) == (2, 1)
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []


async def test_reauth_of_loaded_entry(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    config_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reauth started on a running entry: the new pair is stored and a new keeper loads it."""
    await setup_entry(hass, config_entry)
    old_keeper = config_entry.runtime_data.keeper
    result = await config_entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.MENU
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "reauth_confirm"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    new_grant = emulator.authorize(USER_ID)
    on_disk = disk_at_reload(hass, hass_storage, monkeypatch)

    result = dict(
        await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_REFRESH_TOKEN: emulator.live_refresh_token(new_grant)}
        )
    )

    assert result["reason"] == "reauth_successful"
    live = emulator.live_refresh_token(new_grant)
    assert on_disk == [live]
    assert stored_entry(hass_storage, config_entry.entry_id)["data"][CONF_REFRESH_TOKEN] == live
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.LOADED
    assert config_entry.runtime_data.keeper is not old_keeper
    assert config_entry.runtime_data.keeper.data.refresh_token == live
    assert requests(emulator) == (1, 1)


async def test_reauth_errors_then_success(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    freezer: FrozenDateTimeFactory,
) -> None:
    entry, result = await entry_needing_reauth(hass, emulator, grant)
    # The dead token it holds is refused before any request, as the refused one.
    result = await submit(hass, result["flow_id"], entry.data[CONF_REFRESH_TOKEN])
    assert result["errors"] == {"base": "token_refused"}
    # Submitted empty: back to the menu (to scan a QR code instead), and on to pasting again.
    result = await submit(hass, result["flow_id"], "")
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "reauth_revoked"
    result = dict(
        await hass.config_entries.flow.async_configure(
            result["flow_id"], {"next_step_id": "reauth_confirm"}
        )
    )
    assert requests(emulator) == (1, 0)
    new_grant = emulator.authorize(USER_ID)
    pasted = emulator.live_refresh_token(new_grant)
    emulator.inject(REFRESH_PATH, "code:40140117")
    result = await submit(hass, result["flow_id"], pasted)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert result["errors"] == {"base": "rate_limited"}
    assert result["description_placeholders"]["account"] == USER_NAME
    await advance(hass, freezer, 60)  # 115's answer counted for its frequency control
    emulator.inject(USER_INFO_PATH, FAULT_HTTP_502)
    result = await submit(hass, result["flow_id"], pasted)
    assert result["errors"] == {"base": "cannot_connect"}
    assert requests(emulator) == (3, 1)
    # The retry reuses the rotated pair.
    result = await submit(hass, result["flow_id"], pasted)
    assert result["reason"] == "reauth_successful"
    assert "refused" not in entry.data  # the new token is not marked refused
    assert requests(emulator) == (3, 2)
    assert_pair_is_live(emulator, new_grant, dict(entry.data))
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


# ----- reconfigure ---------------------------------------------------------------------------


async def test_reconfigure_replaces_token_and_reloads(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    config_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await setup_entry(hass, config_entry)
    old_keeper = config_entry.runtime_data.keeper
    result = await start_reconfigure(hass, config_entry)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure_token"
    assert result["errors"] == {}
    assert result["description_placeholders"] == {"account": USER_NAME, "other": ""}
    assert requests(emulator) == (0, 0)

    new_grant = emulator.authorize(USER_ID)
    pasted = emulator.live_refresh_token(new_grant)
    on_disk = disk_at_reload(hass, hass_storage, monkeypatch)
    result = await submit(hass, result["flow_id"], f"'{pasted}'")

    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    live = emulator.live_refresh_token(new_grant)
    assert live != pasted
    assert_pair_is_live(emulator, new_grant, dict(config_entry.data))
    assert on_disk == [live]
    assert stored_entry(hass_storage, config_entry.entry_id)["data"][CONF_REFRESH_TOKEN] == live

    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.LOADED
    assert config_entry.runtime_data.keeper is not old_keeper
    assert config_entry.runtime_data.keeper.data.refresh_token == live
    assert requests(emulator) == (1, 1)


async def test_reconfigure_errors_then_success(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    config_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    await setup_entry(hass, config_entry)
    result = await start_reconfigure(hass, config_entry)
    # Its own live token: refreshing it here would void the running keeper's token.
    result = await submit(hass, result["flow_id"], config_entry.data[CONF_REFRESH_TOKEN])
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure_token"
    assert result["errors"] == {"base": "token_in_use"}
    result = await submit(hass, result["flow_id"], "not a token")
    assert result["errors"] == {CONF_REFRESH_TOKEN: "invalid_format"}
    assert requests(emulator) == (0, 0)

    new_grant = emulator.authorize(USER_ID)
    pasted = emulator.live_refresh_token(new_grant)
    emulator.inject(REFRESH_PATH, FAULT_RESET)
    result = await submit(hass, result["flow_id"], pasted)
    assert result["errors"] == {"base": "cannot_connect"}
    emulator.inject(REFRESH_PATH, "code:40140118")
    result = await submit(hass, result["flow_id"], pasted)
    assert result["errors"] == {"base": "unknown"}
    await advance(hass, freezer, 60)  # 115's answer counted for its frequency control
    result = await submit(hass, result["flow_id"], pasted)
    assert result["reason"] == "reconfigure_successful"
    assert requests(emulator) == (3, 1)
    assert_pair_is_live(emulator, new_grant, dict(config_entry.data))
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.LOADED
    # The old grant was never refreshed by the flow: still live, still the same token.
    assert grant.refresh_token == emulator.live_refresh_token(grant)


async def test_reconfigure_while_reauth_pending(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
) -> None:
    """A reauth flow waits (its context holds the unique id); the user reconfigures instead."""
    entry, _ = await entry_needing_reauth(hass, emulator, grant)
    new_grant = emulator.authorize(USER_ID)
    result = await start_reconfigure(hass, entry)
    result = await submit(hass, result["flow_id"], emulator.live_refresh_token(new_grant))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert_pair_is_live(emulator, new_grant, dict(entry.data))
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []
