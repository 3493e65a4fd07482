"""flow_qr.py: re-authentication and reconfiguration by QR code."""

from datetime import timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import (
    SOURCE_REAUTH,
    ConfigEntryState,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import (
    FlowResultType,
)
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.open115 import async_get_access_token
from custom_components.open115.const import (
    CONF_APP_ID,
    CONF_AUTHORIZED_AT,
    CONF_REFRESH_TOKEN,
    DOMAIN,
    REFRESH_TOKEN_LIFETIME,
)
from custom_components.open115.token_state import TokenStatus

from . import qr_flow
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
    Emulator115,
    Grant,
)
from .qr_flow import (
    RT_EXPIRES,
    app_id_default,
    assert_qr_data,
    code_shown,
    configure,
    current,
    newest_grant,
    open_qr_form,
    phone,
    scan_and_confirm,
    show_code,
    token_keys,
)

pytestmark = pytest.mark.usefixtures("no_account_reads")
frozen = qr_flow.frozen  # autouse: 2026-03-01 12:00 UTC

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
