"""config_flow.py's user step against the loopback emulator: a pasted token checked, dead tokens, errors and recovery, the rotated pair kept."""

from datetime import timedelta
import logging
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_ACCESS_TOKEN
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.open115.const import (
    CONF_EXPIRES_AT,
    CONF_EXPIRES_IN,
    CONF_REFRESH_TOKEN,
    CONF_REFRESHED_AT,
    DOMAIN,
)

from .conftest import (
    OTHER_ID,
    OTHER_NAME,
    USER_ID,
    USER_NAME,
    advance,
    stored_entry,
)
from .emulator import (
    FAULT_HTML,
    FAULT_HTTP_500,
    FAULT_HTTP_502,
    FAULT_RESET,
    REFRESH_PATH,
    USER_INFO_PATH,
    YEAR,
    Emulator115,
    Grant,
)
from .flow_helpers import assert_pair_is_live, requests, start_user_flow, submit

pytestmark = pytest.mark.usefixtures("no_account_reads")

# ----- user step -----------------------------------------------------------------------------


async def test_user_step_creates_entry_with_rotated_pair(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    freezer: FrozenDateTimeFactory,
) -> None:
    pasted = emulator.live_refresh_token(grant)
    result = await start_user_flow(hass)
    assert requests(emulator) == (0, 0)

    result = await submit(hass, result["flow_id"], pasted)

    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == USER_NAME
    entry = result["result"]
    assert entry.unique_id == str(USER_ID)
    assert entry.title == USER_NAME
    now = dt_util.utcnow()
    live = emulator.live_refresh_token(grant)
    assert live != pasted
    assert entry.data == {
        CONF_REFRESH_TOKEN: live,
        CONF_ACCESS_TOKEN: entry.data[CONF_ACCESS_TOKEN],
        CONF_EXPIRES_AT: (now + timedelta(seconds=7200)).isoformat(),
        CONF_EXPIRES_IN: 7200,
        CONF_REFRESHED_AT: now.isoformat(),
    }
    assert_pair_is_live(emulator, grant, dict(entry.data))
    assert entry.options == {}
    assert requests(emulator) == (1, 1)
    # The pasted token was spent by the check: using it again fails.
    assert emulator.used_refresh_tokens[pasted] == grant.grant_id

    # The new entry was set up on the fresh pair without another refresh, and once set up
    # it is on disk (not only after Home Assistant's delayed save).
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.keeper.data.refresh_token == live
    assert stored_entry(hass_storage, entry.entry_id)["data"][CONF_REFRESH_TOKEN] == live
    await hass.async_block_till_done()
    assert requests(emulator) == (1, 1)


async def test_user_step_refuses_token_an_entry_holds(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    config_entry: MockConfigEntry,
) -> None:
    config_entry.add_to_hass(hass)
    held = config_entry.data[CONF_REFRESH_TOKEN]
    result = await start_user_flow(hass)
    result = await submit(hass, result["flow_id"], f'  "Bearer {held}" ')
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "token_in_use"}
    assert requests(emulator) == (0, 0)
    # The entry's token is untouched and still live.
    assert config_entry.data[CONF_REFRESH_TOKEN] == emulator.live_refresh_token(grant)


async def test_user_step_ignores_tokens_of_ignored_entries(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str, grant: Grant
) -> None:
    """An ignored entry keeps no token: the check does not look at it."""
    pasted = emulator.live_refresh_token(grant)
    MockConfigEntry(
        domain=DOMAIN,
        source="ignore",
        unique_id="999",
        data={CONF_REFRESH_TOKEN: pasted},
    ).add_to_hass(hass)
    result = await start_user_flow(hass)
    result = await submit(hass, result["flow_id"], pasted)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert requests(emulator) == (1, 1)
    await hass.async_block_till_done()


def _used(emulator: Emulator115, grant: Grant) -> str:
    """A token another program already rotated: void (40140120)."""
    old = emulator.live_refresh_token(grant)
    emulator.rotate_elsewhere(grant)
    return old


def _revoked(emulator: Emulator115, grant: Grant) -> str:
    """The user removed the authorization in 115 (40140116)."""
    emulator.revoke(grant)
    return emulator.live_refresh_token(grant)


def _pushed_out(emulator: Emulator115, grant: Grant) -> str:
    """Two newer authorizations of the same app push the oldest out (40140116)."""
    token = emulator.live_refresh_token(grant)
    emulator.authorize(USER_ID)
    emulator.authorize(USER_ID)
    return token


def _expired(emulator: Emulator115, grant: Grant) -> str:
    """Past the one-year limit of the authorization (40140119)."""
    old = emulator.authorize(USER_ID, at=emulator.clock() - YEAR - 1)
    return emulator.live_refresh_token(old)


def _unknown(emulator: Emulator115, grant: Grant) -> str:
    """A token 115 never issued (40140114)."""
    return "rt_never_issued_by_115_0123456789"


@pytest.mark.parametrize(
    ("make_token", "error", "code"),
    [
        (_used, "invalid_token", 40140120),
        (_unknown, "invalid_token", 40140114),
        (_expired, "invalid_token", 40140119),
        (_revoked, "revoked_token", 40140116),
        (_pushed_out, "revoked_token", 40140116),
    ],
)
async def test_user_step_dead_tokens(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    make_token: Any,
    error: str,
    code: int,
) -> None:
    token = make_token(emulator, grant)
    result = await start_user_flow(hass)
    result = await submit(hass, result["flow_id"], token)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "token"
    assert result["errors"] == {"base": error}
    assert [r.code for r in emulator.requests] == [code]
    assert requests(emulator) == (1, 0)
    assert hass.config_entries.async_entries(DOMAIN) == []


@pytest.mark.parametrize(
    ("path", "fault", "error"),
    [
        (REFRESH_PATH, "code:40140116", "revoked_token"),
        (REFRESH_PATH, "code:40140115", "invalid_token"),
        (REFRESH_PATH, "code:40140110", "app_expired"),
        (REFRESH_PATH, "code:40140117", "rate_limited"),
        (REFRESH_PATH, "code:40140121", "cannot_connect"),
        (REFRESH_PATH, "code:40110000", "cannot_connect"),
        (REFRESH_PATH, FAULT_RESET, "cannot_connect"),
        (REFRESH_PATH, FAULT_HTTP_500, "cannot_connect"),
        (REFRESH_PATH, FAULT_HTTP_502, "cannot_connect"),
        (REFRESH_PATH, FAULT_HTML, "cannot_connect"),
        (REFRESH_PATH, "code:40140118", "unknown"),
        (REFRESH_PATH, "code:40140122", "unknown"),
    ],
)
async def test_user_step_error_then_recovery(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    freezer: FrozenDateTimeFactory,
    path: str,
    fault: str,
    error: str,
) -> None:
    """An error is shown in the form; the token was not spent and the retry succeeds."""
    pasted = emulator.live_refresh_token(grant)
    emulator.inject(path, fault)
    result = await start_user_flow(hass)
    result = await submit(hass, result["flow_id"], pasted)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "token"
    assert result["errors"] == {"base": error}
    assert requests(emulator) == (1, 0)
    assert emulator.live_refresh_token(grant) == pasted

    if path == REFRESH_PATH and fault.startswith("code:"):
        # 115 answered, so the request counted: retrying within 60 s would be rate limited.
        await advance(hass, freezer, 60)
    result = await submit(hass, result["flow_id"], pasted)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == str(USER_ID)
    assert_pair_is_live(emulator, grant, dict(result["result"].data))
    assert requests(emulator) == (2, 1)
    await hass.async_block_till_done()


async def test_user_step_fixed_input_after_error(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The user pastes a wrong token, then the right one."""
    result = await start_user_flow(hass)
    result = await submit(hass, result["flow_id"], "tiny")
    assert result["errors"] == {CONF_REFRESH_TOKEN: "invalid_format"}
    result = await submit(hass, result["flow_id"], _used(emulator, grant))
    assert result["errors"] == {"base": "invalid_token"}
    assert requests(emulator) == (1, 0)
    # Within 60 s of the refused request, 115 limits the authorization's refreshes.
    result = await submit(hass, result["flow_id"], emulator.live_refresh_token(grant))
    assert result["errors"] == {"base": "rate_limited"}
    await advance(hass, freezer, 60)
    result = await submit(hass, result["flow_id"], emulator.live_refresh_token(grant))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert_pair_is_live(emulator, grant, dict(result["result"].data))
    assert requests(emulator) == (3, 1)
    await hass.async_block_till_done()


async def test_unknown_error_is_logged_without_secrets(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pasted = emulator.live_refresh_token(grant)
    emulator.inject(REFRESH_PATH, "code:40140118")
    caplog.set_level(logging.DEBUG, logger="custom_components.open115")
    result = await start_user_flow(hass)
    result = await submit(hass, result["flow_id"], pasted)
    assert result["errors"] == {"base": "unknown"}
    ours = [r for r in caplog.records if r.name.startswith("custom_components.open115")]
    assert [r.levelno for r in ours] == [logging.WARNING]
    assert "40140118" in ours[0].getMessage()
    assert pasted not in caplog.text


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (FAULT_HTTP_500, "cannot_connect"),
        (FAULT_HTML, "cannot_connect"),
        ("code:40110000", "cannot_connect"),
        ("code:40140125", "unknown"),
        ("code:40140118", "unknown"),
    ],
)
async def test_user_info_failure_keeps_rotated_pair(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    fault: str,
    error: str,
) -> None:
    """The refresh worked but reading the account did not: the retry must not refresh again.

    The pasted token is void after the first submit; refreshing it again would answer
    40140120 and lose the pair that the first refresh created.
    """
    pasted = emulator.live_refresh_token(grant)
    emulator.inject(USER_INFO_PATH, fault)
    result = await start_user_flow(hass)
    result = await submit(hass, result["flow_id"], pasted)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    assert requests(emulator) == (1, 1)
    rotated = emulator.live_refresh_token(grant)
    assert rotated != pasted

    result = await submit(hass, result["flow_id"], f" {pasted} ")
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert requests(emulator) == (1, 2)
    assert all(r.code != 40140120 for r in emulator.requests)
    assert_pair_is_live(emulator, grant, dict(result["result"].data))
    assert result["result"].data[CONF_REFRESH_TOKEN] == rotated
    await hass.async_block_till_done()
    assert result["result"].state is ConfigEntryState.LOADED
    assert requests(emulator) == (1, 2)


async def test_kept_pair_refreshed_when_its_access_token_ran_out(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The form waited past the kept access token's life: refresh the kept refresh token."""
    pasted = emulator.live_refresh_token(grant)
    emulator.inject(USER_INFO_PATH, FAULT_HTTP_500)
    result = await start_user_flow(hass)
    result = await submit(hass, result["flow_id"], pasted)
    assert result["errors"] == {"base": "cannot_connect"}
    kept = emulator.live_refresh_token(grant)

    freezer.tick(timedelta(seconds=emulator.expires_in - 59))
    result = await submit(hass, result["flow_id"], pasted)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert requests(emulator) == (2, 2)
    # The second refresh sent the kept token, not the void pasted one, before the account read.
    assert [(r.path, r.code) for r in emulator.requests] == [
        (REFRESH_PATH, 0),
        (USER_INFO_PATH, None),
        (REFRESH_PATH, 0),
        (USER_INFO_PATH, 0),
    ]
    assert emulator.used_refresh_tokens[kept] == grant.grant_id
    data = dict(result["result"].data)
    assert_pair_is_live(emulator, grant, data)
    assert data[CONF_REFRESHED_AT] == dt_util.utcnow().isoformat()
    await hass.async_block_till_done()


async def test_kept_pair_reused_while_its_access_token_lives(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    freezer: FrozenDateTimeFactory,
) -> None:
    """61 s left: the flow reads the account with the kept pair (the keeper refreshes it)."""
    pasted = emulator.live_refresh_token(grant)
    emulator.inject(USER_INFO_PATH, FAULT_HTTP_500)
    result = await start_user_flow(hass)
    result = await submit(hass, result["flow_id"], pasted)
    assert result["errors"] == {"base": "cannot_connect"}

    freezer.tick(timedelta(seconds=emulator.expires_in - 61))
    result = await submit(hass, result["flow_id"], pasted)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    # The flow sent one refresh; the second is the new entry's keeper, after the account read.
    assert [(r.path, r.code) for r in emulator.requests] == [
        (REFRESH_PATH, 0),
        (USER_INFO_PATH, None),
        (USER_INFO_PATH, 0),
        (REFRESH_PATH, 0),
    ]
    assert result["result"].state is ConfigEntryState.LOADED
    assert_pair_is_live(emulator, grant, dict(result["result"].data))


async def test_user_info_failure_then_another_token(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str, grant: Grant
) -> None:
    """After a failed account read, a different pasted token is refreshed on its own."""
    first = emulator.live_refresh_token(grant)
    emulator.inject(USER_INFO_PATH, FAULT_HTTP_500)
    result = await start_user_flow(hass)
    result = await submit(hass, result["flow_id"], first)
    assert result["errors"] == {"base": "cannot_connect"}

    # Refreshes of one account less than 30 s apart are rate limited by 115.
    emulator.min_refresh_interval = 0
    other = emulator.authorize(USER_ID)
    second = emulator.live_refresh_token(other)
    result = await submit(hass, result["flow_id"], second)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert requests(emulator) == (2, 2)
    assert emulator.used_refresh_tokens[second] == other.grant_id
    assert_pair_is_live(emulator, other, dict(result["result"].data))
    await hass.async_block_till_done()


async def test_user_step_second_account(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    config_entry: MockConfigEntry,
) -> None:
    """A second account gets its own entry next to the first."""
    config_entry.add_to_hass(hass)
    emulator.add_account(OTHER_ID, OTHER_NAME)
    other = emulator.authorize(OTHER_ID)
    result = await start_user_flow(hass)
    result = await submit(hass, result["flow_id"], emulator.live_refresh_token(other))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == OTHER_NAME
    assert result["result"].unique_id == str(OTHER_ID)
    assert_pair_is_live(emulator, other, dict(result["result"].data))
    assert len(hass.config_entries.async_entries(DOMAIN)) == 2
    await hass.async_block_till_done()
