"""issues.py: refreshing failing for an hour, the one-year limit near; a dead token has Home
Assistant's repair only, and the re-authentication dialog it opens says why."""

from collections.abc import Callable
from datetime import datetime, timedelta
import re

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.core import DOMAIN as HOMEASSISTANT_DOMAIN, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.translation import async_get_translations
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.open115.const import CONF_AUTHORIZED_AT, DOMAIN
from custom_components.open115.exceptions import KeeperError
from custom_components.open115.issues import ISSUE_EXPIRING, ISSUE_FAILING, issue_id
from custom_components.open115.token_state import TokenStatus

from .conftest import USER_ID, USER_NAME, keeper_of, make_entry_data, setup_entry
from .emulator import (
    FAULT_DROP_AFTER_ROTATE,
    FAULT_HTTP_500,
    REFRESH_PATH,
    Emulator115,
    Grant,
)

pytestmark = pytest.mark.usefixtures("emulator_url")

DAY = timedelta(days=1)


def get_issue(hass: HomeAssistant, kind: str, entry: MockConfigEntry) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, issue_id(kind, entry.entry_id))


def our_issues(hass: HomeAssistant) -> set[str]:
    return {iid for (domain, iid) in ir.async_get(hass).issues if domain == DOMAIN}


def local(when: datetime) -> str:
    return dt_util.as_local(when).strftime("%Y-%m-%d %H:%M %Z")


async def run_until(hass: HomeAssistant, freezer: FrozenDateTimeFactory, when: datetime) -> None:
    """Move the frozen clock to `when` and run what became due."""
    freezer.move_to(when)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


async def assert_translated(hass: HomeAssistant, issue: ir.IssueEntry) -> None:
    """Title and description exist in both languages and use exactly the given placeholders."""
    placeholders = set(issue.translation_placeholders or {})
    for language in ("en", "zh-Hans"):
        strings = await async_get_translations(hass, language, "issues", {DOMAIN})
        base = f"component.{DOMAIN}.issues.{issue.translation_key}"
        title, description = strings[f"{base}.title"], strings[f"{base}.description"]
        used = set(re.findall(r"\{(\w+)\}", title + description))
        assert used == placeholders, language


async def new_grant_token(emulator: Emulator115) -> str:
    """The refresh token of a new authorization of the account (a new QR scan)."""
    return emulator.authorize(USER_ID).refresh_token


# ----- re-authorization: Home Assistant's repair, the reason in the dialog --------------------


def _revoke(emulator: Emulator115, grant: Grant) -> None:
    emulator.revoke(grant)


def _rotate_elsewhere(emulator: Emulator115, grant: Grant) -> None:
    emulator.rotate_elsewhere(grant)


def _lose_answer(emulator: Emulator115, grant: Grant) -> None:
    emulator.inject(REFRESH_PATH, FAULT_DROP_AFTER_ROTATE)


def _bad_signature(emulator: Emulator115, grant: Grant) -> None:
    emulator.inject(REFRESH_PATH, "code:40140115")


def ha_reauth_issue(hass: HomeAssistant, entry: MockConfigEntry) -> ir.IssueEntry | None:
    """Home Assistant's own "Authentication expired" repair of the entry."""
    return ir.async_get(hass).async_get_issue(
        HOMEASSISTANT_DOMAIN, f"config_entry_reauth_{DOMAIN}_{entry.entry_id}"
    )


@pytest.mark.parametrize(
    ("cause", "step", "code", "requests"),
    [
        (_revoke, "reauth_revoked", 40140116, 1),
        (_rotate_elsewhere, "reauth_used", 40140120, 1),
        # The answer is lost after 115 rotated; the retry 60 s later sends the voided token.
        (_lose_answer, "reauth_lost_response", 40140120, 2),
        (_bad_signature, "reauth_invalid", 40140115, 1),
    ],
)
async def test_dead_token_has_home_assistants_repair_only_and_the_dialog_says_why(
    freezer: FrozenDateTimeFactory,
    hass: HomeAssistant,
    emulator: Emulator115,
    grant: Grant,
    config_entry: MockConfigEntry,
    cause: Callable[[Emulator115, Grant], None],
    step: str,
    code: int,
    requests: int,
) -> None:
    await setup_entry(hass, config_entry)
    assert our_issues(hass) == set()
    cause(emulator, grant)
    await run_until(hass, freezer, keeper_of(config_entry).refresh_due_at())
    if requests == 2:
        assert keeper_of(config_entry).data.status is TokenStatus.RETRYING
        assert our_issues(hass) == set()
        await run_until(hass, freezer, dt_util.utcnow() + timedelta(minutes=2))
    assert emulator.count(REFRESH_PATH) == requests
    assert keeper_of(config_entry).data.status is TokenStatus.REAUTH_REQUIRED

    # One repair: Home Assistant's, which opens the flow; none of open115's beside it.
    assert our_issues(hass) == set()
    issue = ha_reauth_issue(hass, config_entry)
    assert issue is not None
    assert issue.issue_domain == DOMAIN
    (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flow["context"]["source"] == SOURCE_REAUTH
    assert issue.data == {"flow_id": flow["flow_id"]}
    # The dialog it opens names the cause and 115's code.
    assert flow["step_id"] == step
    menu = await hass.config_entries.flow.async_configure(flow["flow_id"])
    assert menu["type"] is FlowResultType.MENU
    assert menu["step_id"] == step
    assert menu["description_placeholders"] == {"account": USER_NAME, "code": str(code)}

    await hass.config_entries.flow.async_configure(
        flow["flow_id"], {"next_step_id": "reauth_confirm"}
    )
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {"refresh_token": await new_grant_token(emulator)}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert config_entry.state is ConfigEntryState.LOADED
    assert keeper_of(config_entry).data.status is TokenStatus.OK
    assert ha_reauth_issue(hass, config_entry) is None
    assert our_issues(hass) == set()


async def test_old_versions_reauth_issue_is_removed_at_setup(
    hass: HomeAssistant, config_entry: MockConfigEntry
) -> None:
    """Earlier versions raised their own reauth repair beside Home Assistant's."""
    config_entry.add_to_hass(hass)
    ir.async_create_issue(
        hass,
        DOMAIN,
        f"reauth_required_{config_entry.entry_id}",
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key="reauth_revoked",
    )
    await setup_entry(hass, config_entry)
    assert config_entry.state is ConfigEntryState.LOADED
    assert our_issues(hass) == set()


async def test_token_found_dead_at_setup_has_no_issue_of_ours(
    freezer: FrozenDateTimeFactory, hass: HomeAssistant, emulator: Emulator115, grant: Grant
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=USER_NAME,
        unique_id=str(USER_ID),
        data=make_entry_data(emulator, grant, expires_in=60),
    )
    emulator.revoke(grant)
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert our_issues(hass) == set()
    assert ha_reauth_issue(hass, entry) is not None
    (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flow["step_id"] == "reauth_revoked"

    # The entry's removal takes Home Assistant's repair with it.
    await hass.config_entries.async_remove(entry.entry_id)
    assert ha_reauth_issue(hass, entry) is None
    assert our_issues(hass) == set()


# ----- failing or rate limited for an hour ------------------------------------------------------


async def _fail_until_an_hour(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, entry: MockConfigEntry
) -> datetime:
    """Run the failing retries up to just before the hour; returns when failing started."""
    coordinator = keeper_of(entry)
    since = coordinator.data.failing_since
    assert since == dt_util.utcnow()
    hour = since + timedelta(hours=1)
    while (retry := coordinator.data.next_refresh) is not None and retry < hour:
        await run_until(hass, freezer, retry)
        assert coordinator.data.failing_since == since
        assert our_issues(hass) == set()
    await run_until(hass, freezer, hour - timedelta(seconds=1))
    assert our_issues(hass) == set()
    return since


@pytest.mark.parametrize(
    ("fault", "key", "error", "status"),
    [
        (FAULT_HTTP_500, "refresh_failing", "Open115TransientError", TokenStatus.EXPIRED),
        (
            "code:40140117",
            "refresh_rate_limited",
            "Open115RateLimitError 40140117",
            TokenStatus.EXPIRED,
        ),
    ],
)
async def test_failing_for_an_hour(
    freezer: FrozenDateTimeFactory,
    hass: HomeAssistant,
    emulator: Emulator115,
    config_entry: MockConfigEntry,
    fault: str,
    key: str,
    error: str,
    status: TokenStatus,
) -> None:
    await setup_entry(hass, config_entry)
    emulator.inject(REFRESH_PATH, *[fault] * 20)
    coordinator = keeper_of(config_entry)
    await run_until(hass, freezer, coordinator.refresh_due_at())
    since = await _fail_until_an_hour(hass, freezer, config_entry)
    requests = emulator.count(REFRESH_PATH)
    assert requests > 1

    # The hour passes between two retries: the issue comes from the timer, not an update.
    await run_until(hass, freezer, since + timedelta(hours=1))
    assert emulator.count(REFRESH_PATH) == requests
    assert coordinator.data.status is status
    issue = get_issue(hass, ISSUE_FAILING, config_entry)
    assert issue is not None
    assert our_issues(hass) == {issue_id(ISSUE_FAILING, config_entry.entry_id)}
    assert issue.translation_key == key
    # The access token (2 h, refresh 10 min before) has run out by now.
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_placeholders == {
        "entry_title": USER_NAME,
        "since": local(since),
        "error": error,
    }
    await assert_translated(hass, issue)

    # A further failed retry keeps it, untouched (no flicker while it runs); the first
    # success clears it.
    events = async_capture_events(hass, ir.EVENT_REPAIRS_ISSUE_REGISTRY_UPDATED)
    next_retry = coordinator.data.next_refresh
    assert next_retry is not None
    await run_until(hass, freezer, next_retry)
    assert emulator.count(REFRESH_PATH) == requests + 1
    assert our_issues(hass) == {issue_id(ISSUE_FAILING, config_entry.entry_id)}
    assert events == []
    emulator.faults[REFRESH_PATH].clear()
    next_retry = coordinator.data.next_refresh
    assert next_retry is not None
    await run_until(hass, freezer, next_retry)
    assert coordinator.data.status is TokenStatus.OK
    assert our_issues(hass) == set()


async def test_failing_issue_while_the_token_still_lives(
    freezer: FrozenDateTimeFactory,
    hass: HomeAssistant,
    emulator: Emulator115,
    config_entry: MockConfigEntry,
) -> None:
    """Failing from a forced refresh, 2 h before expiry: a warning; it goes with the unload."""
    await setup_entry(hass, config_entry)
    emulator.inject(REFRESH_PATH, *[FAULT_HTTP_500] * 20)
    await run_until(hass, freezer, dt_util.utcnow() + timedelta(minutes=2))
    with pytest.raises(KeeperError):
        await keeper_of(config_entry).async_force_refresh()
    since = await _fail_until_an_hour(hass, freezer, config_entry)
    await run_until(hass, freezer, since + timedelta(hours=1))
    assert keeper_of(config_entry).data.status is TokenStatus.RETRYING
    issue = get_issue(hass, ISSUE_FAILING, config_entry)
    assert issue is not None
    assert issue.translation_key == "refresh_failing"
    assert issue.severity is ir.IssueSeverity.WARNING

    assert await hass.config_entries.async_unload(config_entry.entry_id)
    assert our_issues(hass) == set()


async def test_no_failing_issue_when_it_recovers_within_the_hour(
    freezer: FrozenDateTimeFactory,
    hass: HomeAssistant,
    emulator: Emulator115,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    emulator.inject(REFRESH_PATH, *[FAULT_HTTP_500] * 3)
    coordinator = keeper_of(config_entry)
    await run_until(hass, freezer, coordinator.refresh_due_at())
    since = coordinator.data.failing_since
    assert since is not None
    while coordinator.data.status is not TokenStatus.OK:
        retry = coordinator.data.next_refresh
        assert retry is not None
        await run_until(hass, freezer, retry)
    assert emulator.count(REFRESH_PATH) == 4
    # The hour's timer was cancelled with the recovery.
    await run_until(hass, freezer, since + timedelta(hours=1))
    assert our_issues(hass) == set()


# ----- the one-year limit -----------------------------------------------------------------------


def aged_entry(emulator: Emulator115, age: timedelta) -> tuple[MockConfigEntry, Grant]:
    """An entry (and its grant) authorized `age` ago, with the time stored."""
    authorized = dt_util.utcnow() - age
    grant = emulator.authorize(USER_ID, at=authorized.timestamp())
    data = {**make_entry_data(emulator, grant), CONF_AUTHORIZED_AT: authorized.isoformat()}
    entry = MockConfigEntry(domain=DOMAIN, title=USER_NAME, unique_id=str(USER_ID), data=data)
    return entry, grant


async def test_expiring_issue_at_setup_cleared_by_reconfigure(
    freezer: FrozenDateTimeFactory, hass: HomeAssistant, emulator: Emulator115
) -> None:
    authorized = dt_util.utcnow() - 360 * DAY
    entry, _ = aged_entry(emulator, 360 * DAY)
    await setup_entry(hass, entry)
    assert emulator.count(REFRESH_PATH) == 0
    issue = get_issue(hass, ISSUE_EXPIRING, entry)
    assert issue is not None
    assert our_issues(hass) == {issue_id(ISSUE_EXPIRING, entry.entry_id)}
    assert issue.translation_key == "refresh_token_expiring"
    assert issue.severity is ir.IssueSeverity.WARNING
    assert issue.translation_placeholders == {
        "entry_title": USER_NAME,
        "expires": local(authorized + 365 * DAY),
    }
    await assert_translated(hass, issue)

    # A new authorization, pasted with reconfigure, replaces the token (age unknown again).
    result = await entry.start_reconfigure_flow(hass)
    await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "reconfigure_token"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"refresh_token": await new_grant_token(emulator)}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done(wait_background_tasks=True)
    assert entry.state is ConfigEntryState.LOADED
    assert keeper_of(entry).data.refresh_token_expires is None
    assert our_issues(hass) == set()


async def test_expiring_issue_appears_fourteen_days_before(
    freezer: FrozenDateTimeFactory, hass: HomeAssistant, emulator: Emulator115
) -> None:
    start = dt_util.utcnow()
    entry, _ = aged_entry(emulator, 340 * DAY)
    warn_at = start + 11 * DAY  # 351 days after the authorization
    await setup_entry(hass, entry)
    assert our_issues(hass) == set()

    # The keeper refreshes meanwhile; none of its updates is the moment.
    await run_until(hass, freezer, warn_at - timedelta(minutes=1))
    assert emulator.count(REFRESH_PATH) == 1
    assert our_issues(hass) == set()
    await run_until(hass, freezer, warn_at)
    assert emulator.count(REFRESH_PATH) == 1
    assert our_issues(hass) == {issue_id(ISSUE_EXPIRING, entry.entry_id)}

    # Unloading stops watching: the next setup decides again.
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert our_issues(hass) == set()
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert our_issues(hass) == {issue_id(ISSUE_EXPIRING, entry.entry_id)}


async def test_limit_reached_turns_into_home_assistants_repair(
    freezer: FrozenDateTimeFactory, hass: HomeAssistant, emulator: Emulator115
) -> None:
    """Past the one-year limit, 115 answers 40140119: re-authentication replaces the warning."""
    entry, _ = aged_entry(emulator, 365 * DAY - timedelta(hours=1))
    await setup_entry(hass, entry)
    assert our_issues(hass) == {issue_id(ISSUE_EXPIRING, entry.entry_id)}
    await run_until(hass, freezer, keeper_of(entry).refresh_due_at())
    assert keeper_of(entry).data.status is TokenStatus.REAUTH_REQUIRED
    assert our_issues(hass) == set()
    assert ha_reauth_issue(hass, entry) is not None
    (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flow["step_id"] == "reauth_expired"
