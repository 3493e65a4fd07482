"""flow_qr.py: the QR-code sign-in when adding an account (the code, the app, the account)."""

import asyncio
import base64
from datetime import timedelta
import logging
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import (
    SOURCE_IGNORE,
    SOURCE_USER,
    ConfigEntryState,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import (
    FlowResultType,
)
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
)
import segno

from custom_components.open115.config_flow import qr_markdown
from custom_components.open115.const import (
    CONF_APP_ID,
    CONF_AUTHORIZED_AT,
    CONF_REFRESH_TOKEN,
    CONF_REFRESHED_AT,
    DOMAIN,
    REFRESH_TOKEN_LIFETIME,
)

from . import qr_flow
from .conftest import (
    OTHER_ID,
    OTHER_NAME,
    USER_ID,
    USER_NAME,
    setup_entry,
    stored_entry,
)
from .emulator import (
    DEFAULT_APP_ID,
    DEVICE_CODE_PATH,
    DEVICE_TOKEN_PATH,
    FAULT_HTTP_500,
    FAULT_HTTP_502,
    QR_STATUS_PATH,
    REFRESH_PATH,
    USER_INFO_PATH,
    Emulator115,
    Grant,
)
from .qr_flow import (
    RT_EXPIRES,
    app_id_default,
    assert_qr_data,
    code_shown,
    configure,
    counts,
    current,
    handler,
    held_poll,
    newest_grant,
    phone,
    scan_and_confirm,
    settle,
    show_code,
    start_setup,
    token_keys,
)

pytestmark = pytest.mark.usefixtures("no_account_reads")
frozen = qr_flow.frozen  # autouse: 2026-03-01 12:00 UTC

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
