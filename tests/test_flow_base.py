"""No rotated pair is lost: pasted tokens of a set-up account or of the wrong account.

Checking a pasted token refreshes it, so the pasted token is void afterwards and the new pair
exists only in the flow. Each path below shows where that pair ends up, and what the dialog
says. (The QR paths are in test_flow_qr*.py.) Also: form errors keep what was typed.
"""

from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.open115.const import CONF_APP_ID, CONF_REFRESH_TOKEN, DOMAIN

from .conftest import (
    OTHER_ID,
    OTHER_NAME,
    USER_ID,
    USER_NAME,
    make_entry_data,
    setup_entry,
    stored_data,
)
from .emulator import FAULT_HTTP_502, REFRESH_PATH, Emulator115, Grant
from .flow_helpers import (
    assert_pair_is_live,
    disk_at_reload,
    entry_needing_reauth,
    requests,
    start_reconfigure,
    start_user_flow,
    submit,
)

pytestmark = pytest.mark.usefixtures("no_account_reads")


async def other_entry(hass: HomeAssistant, emulator: Emulator115) -> tuple[MockConfigEntry, Grant]:
    """A second account, set up with its own entry; its entry and a new grant of it."""
    emulator.add_account(OTHER_ID, OTHER_NAME)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=OTHER_NAME,
        unique_id=str(OTHER_ID),
        data={**make_entry_data(emulator, emulator.authorize(OTHER_ID)), CONF_APP_ID: "100200300"},
    )
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    return entry, emulator.authorize(OTHER_ID)


def suggested(result: dict[str, Any]) -> Any:
    """What the form's only field shows (None: empty)."""
    (key,) = result["data_schema"].schema
    return key.description.get("suggested_value") if key.description else None


# ----- adding an account that is already set up -----------------------------------------------


async def test_pasted_token_of_a_set_up_account_goes_to_its_entry(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    config_entry: MockConfigEntry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The check spent the pasted token: the entry takes the new pair, and the dialog says so."""
    await setup_entry(hass, config_entry)
    old_keeper = config_entry.runtime_data.keeper
    newer = emulator.authorize(USER_ID)
    pasted = emulator.live_refresh_token(newer)
    at_reload = disk_at_reload(hass, hass_storage, monkeypatch)
    result = await start_user_flow(hass)
    result = await submit(hass, result["flow_id"], pasted)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured_updated"
    assert result["description_placeholders"] == {"account": USER_NAME}
    assert requests(emulator) == (1, 1)
    assert emulator.used_refresh_tokens[pasted] == newer.grant_id
    assert_pair_is_live(emulator, newer, dict(config_entry.data))
    # On disk before the reload, so a crash cannot lose it either.
    assert at_reload == [emulator.live_refresh_token(newer)]
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.LOADED
    assert config_entry.runtime_data.keeper is not old_keeper
    assert config_entry.runtime_data.keeper.data.refresh_token == emulator.live_refresh_token(newer)
    assert stored_data(hass_storage, config_entry)[CONF_REFRESH_TOKEN] == (
        emulator.live_refresh_token(newer)
    )
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1
    assert requests(emulator) == (1, 1)


async def test_set_up_account_keeps_its_app_id(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str, grant: Grant
) -> None:
    """A pasted pair does not know the AppID: the one of the last QR sign-in stays."""
    entry, newer = await other_entry(hass, emulator)
    result = await start_user_flow(hass)
    result = await submit(hass, result["flow_id"], emulator.live_refresh_token(newer))
    assert result["reason"] == "already_configured_updated"
    assert result["description_placeholders"] == {"account": OTHER_NAME}
    assert entry.data[CONF_APP_ID] == "100200300"
    assert_pair_is_live(emulator, newer, dict(entry.data))
    await hass.async_block_till_done()


# ----- re-authentication and reconfigure with another account's token ------------------------


async def test_reauth_token_of_an_account_not_set_up(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
) -> None:
    """Said plainly: the token was used up; the form stays open for the right one."""
    entry, result = await entry_needing_reauth(hass, emulator, grant)
    before = dict(entry.data)
    emulator.add_account(OTHER_ID, OTHER_NAME)
    other = emulator.authorize(OTHER_ID)
    pasted = emulator.live_refresh_token(other)
    result = await submit(hass, result["flow_id"], pasted)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert result["errors"] == {"base": "wrong_account"}
    assert result["description_placeholders"] | {"name": USER_NAME} == {
        "account": USER_NAME,
        "other": OTHER_NAME,
        "name": USER_NAME,  # a re-authentication's title placeholder
    }
    assert suggested(result) is None  # the pasted token is void: not offered again
    assert emulator.used_refresh_tokens[pasted] == other.grant_id
    assert dict(entry.data) == before
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1

    # Pasting it again says what 115 says of it; the right account's token then succeeds.
    result = await submit(hass, result["flow_id"], pasted)
    assert result["errors"] == {"base": "invalid_token"}
    newer = emulator.authorize(USER_ID)
    result = await submit(hass, result["flow_id"], emulator.live_refresh_token(newer))
    assert result["reason"] == "reauth_successful"
    assert_pair_is_live(emulator, newer, dict(entry.data))
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


async def test_reauth_token_of_another_set_up_account_goes_to_its_entry(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
) -> None:
    entry, result = await entry_needing_reauth(hass, emulator, grant)
    before = dict(entry.data)
    other, newer = await other_entry(hass, emulator)
    other_keeper = other.runtime_data.keeper
    result = await submit(hass, result["flow_id"], emulator.live_refresh_token(newer))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "wrong_account_moved"}
    assert result["description_placeholders"] | {"name": USER_NAME} == {
        "account": USER_NAME,
        "other": OTHER_NAME,
        "name": USER_NAME,  # a re-authentication's title placeholder
    }
    assert_pair_is_live(emulator, newer, dict(other.data))
    assert stored_data(hass_storage, other)[CONF_REFRESH_TOKEN] == other.data[CONF_REFRESH_TOKEN]
    assert other.data[CONF_APP_ID] == "100200300"
    await hass.async_block_till_done()
    assert other.state is ConfigEntryState.LOADED
    assert other.runtime_data.keeper is not other_keeper
    assert other.runtime_data.keeper.data.refresh_token == emulator.live_refresh_token(newer)
    assert dict(entry.data) == before
    assert entry.state is ConfigEntryState.SETUP_ERROR  # still waiting for its own token
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [f["step_id"] for f in flows] == ["reauth_confirm"]


async def test_reconfigure_token_of_an_account_not_set_up(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    keeper = config_entry.runtime_data.keeper
    before = dict(config_entry.data)
    emulator.add_account(OTHER_ID, OTHER_NAME)
    other = emulator.authorize(OTHER_ID)
    pasted = emulator.live_refresh_token(other)
    result = await start_reconfigure(hass, config_entry)
    result = await submit(hass, result["flow_id"], pasted)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure_token"
    assert result["errors"] == {"base": "wrong_account"}
    assert result["description_placeholders"] | {"name": USER_NAME} == {
        "account": USER_NAME,
        "other": OTHER_NAME,
        "name": USER_NAME,  # a re-authentication's title placeholder
    }
    assert emulator.used_refresh_tokens[pasted] == other.grant_id
    await hass.async_block_till_done()
    assert dict(config_entry.data) == before
    assert config_entry.runtime_data.keeper is keeper
    assert requests(emulator) == (1, 1)
    hass.config_entries.flow.async_abort(result["flow_id"])


async def test_reconfigure_token_of_another_set_up_account_goes_to_its_entry(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    keeper = config_entry.runtime_data.keeper
    before = dict(config_entry.data)
    other, newer = await other_entry(hass, emulator)
    result = await start_reconfigure(hass, config_entry)
    result = await submit(hass, result["flow_id"], emulator.live_refresh_token(newer))
    assert result["errors"] == {"base": "wrong_account_moved"}
    assert_pair_is_live(emulator, newer, dict(other.data))
    await hass.async_block_till_done()
    assert other.runtime_data.keeper.data.refresh_token == emulator.live_refresh_token(newer)
    assert dict(config_entry.data) == before
    assert config_entry.runtime_data.keeper is keeper

    # Then the right token: this entry takes it, the other keeps its new one.
    mine = emulator.authorize(USER_ID)
    result = await submit(hass, result["flow_id"], emulator.live_refresh_token(mine))
    assert result["reason"] == "reconfigure_successful"
    assert_pair_is_live(emulator, mine, dict(config_entry.data))
    assert_pair_is_live(emulator, newer, dict(other.data))
    await hass.async_block_till_done()


# ----- form errors keep what was typed --------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("too short", {CONF_REFRESH_TOKEN: "invalid_format"}),
        ("x" * 16, {"base": "invalid_token"}),
    ],
)
async def test_token_form_keeps_what_was_pasted(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    typed: str,
    error: dict[str, str],
) -> None:
    result = await start_user_flow(hass)
    result = await submit(hass, result["flow_id"], typed)
    assert result["errors"] == error
    assert suggested(result) == typed
    hass.config_entries.flow.async_abort(result["flow_id"])


async def test_token_form_keeps_the_token_when_115_is_unreachable(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str, grant: Grant
) -> None:
    pasted = emulator.live_refresh_token(grant)
    emulator.inject(REFRESH_PATH, FAULT_HTTP_502)
    result = await start_user_flow(hass)
    result = await submit(hass, result["flow_id"], pasted)
    assert result["errors"] == {"base": "cannot_connect"}
    assert suggested(result) == pasted
    result = await submit(hass, result["flow_id"], suggested(result))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
