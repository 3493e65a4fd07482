"""The config flow, reauth, reconfigure and options, all against the loopback emulator."""

from datetime import timedelta
import logging
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_USER,
    ConfigEntryState,
)
from homeassistant.const import CONF_ACCESS_TOKEN
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.open115.config_flow import clean_refresh_token
from custom_components.open115.const import (
    CONF_EXPIRES_AT,
    CONF_EXPIRES_IN,
    CONF_REFRESH_MARGIN,
    CONF_REFRESH_TOKEN,
    CONF_REFRESHED_AT,
    DEFAULT_REFRESH_MARGIN,
    DOMAIN,
)

from .conftest import (
    OTHER_ID,
    OTHER_NAME,
    USER_ID,
    USER_NAME,
    advance,
    make_entry,
    setup_entry,
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

pytestmark = pytest.mark.usefixtures("no_account_reads")


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


# ----- input cleaning ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pasted", "expected"),
    [
        ("abc", "abc"),
        ("  abc \n", "abc"),
        ('"abc"', "abc"),
        ("'abc'", "abc"),
        ("`abc`", "abc"),
        ("\u201cabc\u201d", "abc"),
        ("Bearer abc", "abc"),
        ("bearer   abc", "abc"),
        (' "Bearer abc" ', "abc"),
        ("Bearer 'abc'", "abc"),
        ("", ""),
        ('  "" ', ""),
        ("Bearer ", "Bearer"),
        ("Bearerabc", "Bearerabc"),
    ],
)
def test_clean_refresh_token(pasted: str, expected: str) -> None:
    assert clean_refresh_token(pasted) == expected


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


@pytest.mark.parametrize(
    "wrap",
    [
        "  {}  ",
        "\n{}\n",
        '"{}"',
        "'{}'",
        "\u201c{}\u201d",
        "Bearer {}",
        'Bearer "{}"',
        ' "Bearer {}"\t',
    ],
)
async def test_user_step_cleans_pasted_token(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str, grant: Grant, wrap: str
) -> None:
    pasted = emulator.live_refresh_token(grant)
    result = await start_user_flow(hass)
    result = await submit(hass, result["flow_id"], wrap.format(pasted))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    # The clean token was the one refreshed (otherwise 115 would have refused it).
    assert emulator.used_refresh_tokens[pasted] == grant.grant_id
    assert result["result"].data[CONF_REFRESH_TOKEN] == emulator.live_refresh_token(grant)
    assert requests(emulator) == (1, 1)
    await hass.async_block_till_done()


@pytest.mark.parametrize(
    ("pasted", "error"),
    [
        ("", "empty_token"),
        ("   \n\t ", "empty_token"),
        ('""', "empty_token"),
        ("Bearer  ", "invalid_format"),
        ("short_token", "invalid_format"),
        ("x" * 15, "invalid_format"),
        ("x" * 4097, "invalid_format"),
        ("rt_has an inner space_123456", "invalid_format"),
        ("rt_non_ascii_\u00e9_1234567890", "invalid_format"),
        ("rt_control_\x7f_1234567890", "invalid_format"),
    ],
)
async def test_user_step_refuses_impossible_input_without_requests(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str, pasted: str, error: str
) -> None:
    result = await start_user_flow(hass)
    result = await submit(hass, result["flow_id"], pasted)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "token"
    assert result["errors"] == {CONF_REFRESH_TOKEN: error}
    assert requests(emulator) == (0, 0)


async def test_user_step_accepts_bounds_of_token_length(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str
) -> None:
    """16 and 4096 characters pass the form and reach 115 (which refuses unknown tokens)."""
    result = await start_user_flow(hass)
    result = await submit(hass, result["flow_id"], "x" * 16)
    assert result["errors"] == {"base": "invalid_token"}
    result = await submit(hass, result["flow_id"], "y" * 4096)
    assert result["errors"] == {"base": "invalid_token"}
    assert requests(emulator) == (2, 0)


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


# ----- reauth --------------------------------------------------------------------------------


async def _entry_needing_reauth(
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


async def test_reauth_replaces_token_and_reloads(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entry, result = await _entry_needing_reauth(hass, emulator, grant)
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
    entry, result = await _entry_needing_reauth(hass, emulator, grant)
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


# ----- options -------------------------------------------------------------------------------


async def test_options_change_margin_reloads_without_refresh(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    keeper = config_entry.runtime_data.keeper
    assert keeper.margin == timedelta(seconds=DEFAULT_REFRESH_MARGIN)

    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    schema = result["data_schema"]
    assert schema is not None
    assert schema({}) == {CONF_REFRESH_MARGIN: DEFAULT_REFRESH_MARGIN}

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_REFRESH_MARGIN: 900}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert config_entry.options == {CONF_REFRESH_MARGIN: 900}
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.LOADED
    assert config_entry.runtime_data.keeper is not keeper
    assert config_entry.runtime_data.keeper.margin == timedelta(seconds=900)
    assert requests(emulator) == (0, 0)

    # The form now shows the stored value; keeping it does not reload.
    keeper = config_entry.runtime_data.keeper
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    assert result["data_schema"] is not None
    assert result["data_schema"]({}) == {CONF_REFRESH_MARGIN: 900}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_REFRESH_MARGIN: 900.0}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert config_entry.options == {CONF_REFRESH_MARGIN: 900}
    await hass.async_block_till_done()
    assert config_entry.runtime_data.keeper is keeper
    assert requests(emulator) == (0, 0)


# The emulator's tokens live 7200 s: a margin above a quarter of that (1800 s) would be capped.
@pytest.mark.parametrize(("value", "stored"), [(60, 60), (1800, 1800), (120.0, 120)])
async def test_options_bounds_accepted(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    value: float,
    stored: int,
) -> None:
    await setup_entry(hass, config_entry)
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_REFRESH_MARGIN: value}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert config_entry.options == {CONF_REFRESH_MARGIN: stored}
    assert type(config_entry.options[CONF_REFRESH_MARGIN]) is int
    await hass.async_block_till_done()
    assert requests(emulator) == (0, 0)


@pytest.mark.parametrize("value", [59, 1801, 1900, 3600, 3601, 0, -600, 600.5])
async def test_options_out_of_bounds_refused(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    value: float,
) -> None:
    """What would be refused or capped is refused in the form, with the range, and kept."""
    await setup_entry(hass, config_entry)
    keeper = config_entry.runtime_data.keeper
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    assert result["description_placeholders"] == {"min": "60", "max": "1800"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_REFRESH_MARGIN: value}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_REFRESH_MARGIN: "margin_out_of_range"}
    assert result["description_placeholders"] == {"min": "60", "max": "1800"}
    (key,) = result["data_schema"].schema
    assert key.description == {"suggested_value": value}
    await hass.async_block_till_done()
    assert config_entry.options == {}
    assert config_entry.runtime_data.keeper is keeper
    assert requests(emulator) == (0, 0)


async def test_options_not_a_number_refused(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    with pytest.raises(InvalidData):
        await hass.config_entries.options.async_configure(
            result["flow_id"], {CONF_REFRESH_MARGIN: "soon"}
        )
    assert config_entry.options == {}


async def test_options_show_the_margin_in_effect(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
) -> None:
    """A margin stored before (1900 s) is capped by the keeper: the form shows what is used."""
    entry = make_entry(emulator, grant)
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, options={CONF_REFRESH_MARGIN: 1900})
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.runtime_data.keeper.margin == timedelta(seconds=1800)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["data_schema"]({}) == {CONF_REFRESH_MARGIN: 1800}
    assert result["description_placeholders"] == {"min": "60", "max": "1800"}


async def test_reconfigure_while_reauth_pending(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
) -> None:
    """A reauth flow waits (its context holds the unique id); the user reconfigures instead."""
    entry, _ = await _entry_needing_reauth(hass, emulator, grant)
    new_grant = emulator.authorize(USER_ID)
    result = await start_reconfigure(hass, entry)
    result = await submit(hass, result["flow_id"], emulator.live_refresh_token(new_grant))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert_pair_is_live(emulator, new_grant, dict(entry.data))
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []
