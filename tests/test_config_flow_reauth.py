"""config_flow.py's re-authentication and reconfigure dialogs: the cause named, a way back to
the QR code, the refused token recognised, our own (translated) success screens."""

from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.translation import async_get_translations
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.open115.config_flow import REAUTH_CAUSES
from custom_components.open115.const import CONF_REFRESH_TOKEN, CONF_REFUSED, DOMAIN

from .conftest import USER_ID, USER_NAME, make_entry_data, setup_entry
from .emulator import REFRESH_PATH, Emulator115, Grant

pytestmark = pytest.mark.usefixtures("no_account_reads", "emulator_url")


async def refused_entry(
    hass: HomeAssistant, emulator: Emulator115, grant: Grant, reason: str, code: int
) -> tuple[MockConfigEntry, dict[str, Any]]:
    """An entry whose token 115 refused in an earlier run; its re-authentication flow."""
    data = {**make_entry_data(emulator, grant), CONF_REFUSED: {"reason": reason, "code": code}}
    entry = MockConfigEntry(domain=DOMAIN, title=USER_NAME, unique_id=str(USER_ID), data=data)
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert emulator.count(REFRESH_PATH) == 0  # a refused token is never sent again
    (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    return entry, dict(await hass.config_entries.flow.async_configure(flow["flow_id"]))


@pytest.mark.parametrize(
    ("reason", "code", "step"),
    [
        ("revoked", 40140116, "reauth_revoked"),
        ("used", 40140120, "reauth_used"),
        ("lost_response", 40140120, "reauth_lost_response"),
        ("expired", 40140119, "reauth_expired"),
        ("dead", 40140137, "reauth_dead"),
        ("app_expired", 40140110, "reauth_app_expired"),
        ("malformed", 40140114, "reauth_invalid"),
        ("bad_signature", 40140115, "reauth_invalid"),
    ],
)
async def test_reauth_menu_names_the_cause(
    hass: HomeAssistant,
    emulator: Emulator115,
    grant: Grant,
    reason: str,
    code: int,
    step: str,
) -> None:
    _, result = await refused_entry(hass, emulator, grant, reason, code)
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == step
    assert result["menu_options"] == ["qr", "reauth_confirm"]
    assert result["description_placeholders"] == {"account": USER_NAME, "code": str(code)}
    for language in ("en", "zh-Hans"):
        strings = await async_get_translations(hass, language, "config", {DOMAIN})
        description = strings[f"component.{DOMAIN}.config.step.{step}.description"]
        assert "{account}" in description
        assert "{code}" in description


async def test_every_cause_has_its_menu(hass: HomeAssistant) -> None:
    strings = await async_get_translations(hass, "zh-Hans", "config", {DOMAIN})
    for cause in {*REAUTH_CAUSES, "invalid"}:
        assert f"component.{DOMAIN}.config.step.reauth_{cause}.menu_options.qr" in strings


async def test_reauth_without_a_stored_refusal_shows_the_general_menu(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    await setup_entry(hass, config_entry)
    result = await config_entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "reauth"
    assert result["description_placeholders"] == {"account": USER_NAME, "code": "-"}


async def test_pasting_the_refused_token_says_it_is_the_refused_one(
    hass: HomeAssistant, emulator: Emulator115, grant: Grant
) -> None:
    entry, result = await refused_entry(hass, emulator, grant, "revoked", 40140116)
    result = dict(
        await hass.config_entries.flow.async_configure(
            result["flow_id"], {"next_step_id": "reauth_confirm"}
        )
    )
    result = dict(
        await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_REFRESH_TOKEN: entry.data[CONF_REFRESH_TOKEN]}
        )
    )
    assert result["errors"] == {"base": "token_refused"}
    assert emulator.count(REFRESH_PATH) == 0


async def test_reauth_paste_step_leads_back_to_the_qr_code(
    hass: HomeAssistant, emulator: Emulator115, grant: Grant
) -> None:
    """The card's button reopens the paste step: submitting it empty offers the QR code."""
    _, result = await refused_entry(hass, emulator, grant, "used", 40140120)
    flow_id = result["flow_id"]
    result = dict(
        await hass.config_entries.flow.async_configure(flow_id, {"next_step_id": "reauth_confirm"})
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    for submitted in ({}, {CONF_REFRESH_TOKEN: "  "}):
        result = dict(await hass.config_entries.flow.async_configure(flow_id, submitted))
        assert result["type"] is FlowResultType.MENU
        assert result["step_id"] == "reauth_used"
        await hass.config_entries.flow.async_configure(flow_id, {"next_step_id": "reauth_confirm"})
    result = dict(await hass.config_entries.flow.async_configure(flow_id, {}))
    result = dict(await hass.config_entries.flow.async_configure(flow_id, {"next_step_id": "qr"}))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "qr"
    assert emulator.count(REFRESH_PATH) == 0


async def test_reconfigure_paste_step_leads_back_to_the_qr_code(
    hass: HomeAssistant, emulator: Emulator115, config_entry: MockConfigEntry
) -> None:
    await setup_entry(hass, config_entry)
    result = await config_entry.start_reconfigure_flow(hass)
    flow_id = result["flow_id"]
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"next_step_id": "reconfigure_token"}
    )
    assert result["step_id"] == "reconfigure_token"
    result = await hass.config_entries.flow.async_configure(flow_id, {})
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(flow_id, {"next_step_id": "qr"})
    assert result["step_id"] == "qr"


@pytest.mark.parametrize("source", ["reauth", "reconfigure"])
async def test_success_screens_are_our_translated_ones(
    hass: HomeAssistant, emulator: Emulator115, config_entry: MockConfigEntry, source: str
) -> None:
    """Not Home Assistant's defaults (translation_domain homeassistant), which stay English."""
    await setup_entry(hass, config_entry)
    if source == "reauth":
        result = await config_entry.start_reauth_flow(hass)
        step = "reauth_confirm"
    else:
        result = await config_entry.start_reconfigure_flow(hass)
        step = "reconfigure_token"
    await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": step})
    token = emulator.authorize(USER_ID).refresh_token
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_REFRESH_TOKEN: token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == f"{source}_successful"
    assert "translation_domain" not in result
    strings = await async_get_translations(hass, "zh-Hans", "config", {DOMAIN})
    assert strings[f"component.{DOMAIN}.config.abort.{source}_successful"] in (
        "重新认证成功。",
        "令牌已更换。",
    )
    await hass.async_block_till_done()
