"""The keeper against the real 115's rules: dead tokens, code-less answers, the 60 s window,
answers without a refresh token, and consumers reporting a refused access token."""

import asyncio
from datetime import timedelta
import itertools
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.open115 import async_get_access_token
from custom_components.open115.const import DOMAIN
from custom_components.open115.exceptions import KeeperError, ReauthRequiredError
from custom_components.open115.token_state import TokenStatus

from .conftest import advance, keeper_of, make_entry, setup_entry, stored_data
from .emulator import (
    FAULT_CODELESS,
    FAULT_EXPIRES_IN_FLOAT,
    FAULT_HTTP_502,
    FAULT_NO_REFRESH_TOKEN,
    MALFORMED_FAULTS,
    REFRESH_PATH,
    Emulator115,
    Grant,
)

pytestmark = pytest.mark.usefixtures("emulator_url")


def refresh_times(emulator: Emulator115) -> list[float]:
    return [r.at for r in emulator.requests if r.path == REFRESH_PATH]


@pytest.mark.parametrize(
    ("code", "reason", "step"),
    [(40140137, "dead", "reauth_dead"), (40140110, "app_expired", "reauth_app_expired")],
)
async def test_dead_token_and_lost_app_access_start_reauth_and_are_never_resent(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    grant: Grant,
    config_entry: MockConfigEntry,
    code: int,
    reason: str,
    step: str,
) -> None:
    await setup_entry(hass, config_entry)
    emulator.inject(REFRESH_PATH, f"code:{code}")
    await advance(hass, freezer, 6600)  # the proactive refresh
    keeper = keeper_of(config_entry)
    assert keeper.data.status is TokenStatus.REAUTH_REQUIRED
    assert keeper.data.reauth_reason == reason
    # The re-authentication dialog says why (Home Assistant's repair opens it).
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [(f["context"]["source"], f["step_id"]) for f in flows] == [("reauth", step)]
    # A consumer is told at once; nothing sends the dead token again, ever.
    with pytest.raises(ReauthRequiredError):
        await async_get_access_token(hass, min_validity=7000)
    for _ in range(48):
        await advance(hass, freezer, 3600)
    assert emulator.count(REFRESH_PATH) == 1
    # Not after a restart either: the refusal is on disk, setup asks for re-authentication.
    assert config_entry.data["refused"] == {"reason": reason, "code": code}
    await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.SETUP_ERROR
    assert emulator.count(REFRESH_PATH) == 1
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [(f["context"]["source"], f["step_id"]) for f in flows] == [("reauth", step)]


async def test_codeless_answers_retry_slowly_and_are_reported_within_an_hour(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    grant: Grant,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    kept = dict(config_entry.data)
    emulator.inject(REFRESH_PATH, *[FAULT_CODELESS] * 4)
    await advance(hass, freezer, 6600)
    keeper = keeper_of(config_entry)
    assert keeper.data.status is TokenStatus.RETRYING
    assert keeper.data.last_error == "Open115UnexplainedError"
    assert keeper.data.last_error_code is None
    # The token still lives its last 10 minutes: consumers get it.
    assert await async_get_access_token(hass) == kept["access_token"]
    issue_id = f"refresh_failing_{config_entry.entry_id}"
    for _ in range(75):
        await advance(hass, freezer, 60)
        if ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None:
            break
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "refresh_unexplained"
    # Slow: 5 min, 10 min, 20 min (each +-10 %), never a hot loop; tokens kept throughout.
    gaps = [b - a for a, b in itertools.pairwise(refresh_times(emulator))]
    assert len(gaps) == 3
    for gap, want in zip(gaps, [300, 600, 1200], strict=True):
        assert want * 0.9 - 1 <= gap <= want * 1.1 + 60
    assert config_entry.data["refresh_token"] == kept["refresh_token"]
    assert keeper.data.status is TokenStatus.EXPIRED
    # The fifth attempt succeeds: the issue goes, the status is ok.
    for _ in range(60):
        await advance(hass, freezer, 60)
    assert keeper.data.status is TokenStatus.OK
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
    assert config_entry.data["refresh_token"] == emulator.live_refresh_token(grant)


async def test_no_two_requests_within_60_seconds_whoever_asks(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    grant: Grant,
) -> None:
    """A failed refresh, then consumers, the action and a reload: nothing within 60 s."""
    entry = make_entry(emulator, grant, expires_in=300)
    emulator.inject(REFRESH_PATH, FAULT_HTTP_502)
    await setup_entry(hass, entry)  # within the margin: refreshes at setup, which fails
    assert emulator.count(REFRESH_PATH) == 1
    keeper = keeper_of(entry)
    assert keeper.data.status is TokenStatus.RETRYING
    token = keeper.data.access_token
    # A consumer that needs more than the token has left is told so (issue 17, point 7),
    # and nothing is sent; one that asks for what the token still has gets it.
    with pytest.raises(KeeperError) as err:
        await async_get_access_token(hass, min_validity=3000)
    assert err.value.translation_key == "token_too_short"
    assert await async_get_access_token(hass, min_validity=200) == token
    # One reporting it refused cannot make it refresh either.
    with pytest.raises(KeeperError) as err:
        await async_get_access_token(hass, rejected_token=token)
    assert err.value.translation_key == "token_rejected"
    with pytest.raises(KeeperError):
        await hass.services.async_call(
            DOMAIN, "refresh_token", {}, blocking=True, return_response=True
        )
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert emulator.count(REFRESH_PATH) == 1
    await advance(hass, freezer, 30)
    assert emulator.count(REFRESH_PATH) == 1
    for _ in range(6):
        await advance(hass, freezer, 10)
    assert emulator.count(REFRESH_PATH) == 2
    times = refresh_times(emulator)
    assert times[1] - times[0] >= 60
    assert keeper_of(entry).data.status is TokenStatus.OK


async def test_refresh_without_a_new_refresh_token_keeps_the_sent_one(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    grant: Grant,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    sent = config_entry.data["refresh_token"]
    old_access = config_entry.data["access_token"]
    emulator.inject(REFRESH_PATH, FAULT_NO_REFRESH_TOKEN)
    await advance(hass, freezer, 6600)
    keeper = keeper_of(config_entry)
    assert keeper.data.status is TokenStatus.OK
    assert config_entry.data["refresh_token"] == sent == emulator.live_refresh_token(grant)
    assert config_entry.data["access_token"] != old_access
    assert keeper.data.expires_at == dt_util.utcnow() + timedelta(seconds=7200)
    # The next refresh sends the same refresh token, which 115 still accepts, and rotates.
    await advance(hass, freezer, 6600)
    assert [r.code for r in emulator.requests if r.path == REFRESH_PATH] == [0, 0]
    assert config_entry.data["refresh_token"] == emulator.live_refresh_token(grant) != sent


async def test_rejected_token_refreshes_once_for_all_reporters(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    grant: Grant,
    config_entry: MockConfigEntry,
) -> None:
    """115 dropped a session early: every consumer reports it; one refresh serves them all."""
    emulator.strict_access_tokens = True
    await setup_entry(hass, config_entry)
    await advance(hass, freezer, 120)  # the stored pair is older than the 60 s window
    refused = await async_get_access_token(hass)
    results = await asyncio.gather(
        *(async_get_access_token(hass, rejected_token=refused) for _ in range(10))
    )
    assert emulator.count(REFRESH_PATH) == 1
    assert emulator.max_in_flight_by_path[REFRESH_PATH] == 1
    assert len(set(results)) == 1
    (fresh,) = set(results)
    assert fresh != refused
    assert fresh == config_entry.data["access_token"]
    # A late report of the replaced token just returns the current one.
    assert await async_get_access_token(hass, rejected_token=refused) == fresh
    assert emulator.count(REFRESH_PATH) == 1
    # Strict 115: the old access token is dead, the new one works.
    assert refused not in emulator.access_tokens
    assert fresh in emulator.access_tokens


async def test_rejected_token_when_the_pair_is_dead_starts_reauth(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    grant: Grant,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    await advance(hass, freezer, 120)
    emulator.revoke(grant)
    token = config_entry.data["access_token"]
    with pytest.raises(ReauthRequiredError):
        await async_get_access_token(hass, rejected_token=token)
    assert keeper_of(config_entry).data.reauth_reason == "revoked"
    with pytest.raises(ReauthRequiredError):
        await async_get_access_token(hass, rejected_token=token)
    assert emulator.count(REFRESH_PATH) == 1


@pytest.mark.parametrize("fault", sorted(MALFORMED_FAULTS))
async def test_a_malformed_success_answer_never_drops_the_new_refresh_token(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    grant: Grant,
    hass_storage: dict[str, Any],
    fault: str,
) -> None:
    """Issue 17, point 2: the answer rotated the token; whatever else it lacks, the new refresh
    token is stored first; a missing access token or lifetime counts as due now."""
    entry = make_entry(emulator, grant)
    await setup_entry(hass, entry)
    keeper = keeper_of(entry)
    await advance(hass, freezer, 61)
    emulator.inject(REFRESH_PATH, fault)
    await keeper.async_force_refresh()  # answered malformed
    live = emulator.live_refresh_token(grant)
    assert stored_data(hass_storage, entry)["refresh_token"] == live
    assert keeper.data.refresh_token == live
    complete = fault == FAULT_EXPIRES_IN_FLOAT
    assert keeper.data.status is (TokenStatus.OK if complete else TokenStatus.EXPIRED)
    for _ in range(20):
        await advance(hass, freezer, 10)
    assert [r.code for r in emulator.requests if r.path == REFRESH_PATH] == (
        [0] if complete else [0, 0]
    )
    assert keeper.data.status is TokenStatus.OK
    token = await async_get_access_token(hass)
    assert token in emulator.access_tokens


async def test_rejections_rotate_at_most_once_per_10_minutes(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    emulator: Emulator115,
    config_entry: MockConfigEntry,
) -> None:
    """Issue 17, point 6: an answer a new token does not cure (40140118, 40100000) is reported
    on every read; the keeper rotates for it once per 10 minutes, not once per read."""
    await setup_entry(hass, config_entry)
    await advance(hass, freezer, 120)
    token = await async_get_access_token(hass, rejected_token=config_entry.data["access_token"])
    assert emulator.count(REFRESH_PATH) == 1
    for _ in range(4):  # a read every two minutes reports the new token refused
        await advance(hass, freezer, 120)
        with pytest.raises(KeeperError) as err:
            await async_get_access_token(hass, rejected_token=token)
        assert err.value.translation_key == "token_rejected"
    assert emulator.count(REFRESH_PATH) == 1
    await advance(hass, freezer, 121)  # 10 minutes after the rotation
    assert await async_get_access_token(hass, rejected_token=token) != token
    assert emulator.count(REFRESH_PATH) == 2
