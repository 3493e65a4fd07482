"""The randomized fault injection's invariants, checked after every step, and one run of a
scenario (test_property.py uses them)."""

import itertools
import json
import logging
import os
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import MATCH_ALL
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from homeassistant.util.async_ import get_scheduled_timer_handles
import pytest

from custom_components.open115.api import Open115Client, TokenPair
from custom_components.open115.const import (
    ENV_BASE_URL,
    MAX_SCHEDULE_JITTER,
)
from custom_components.open115.token_state import TokenStatus

from .conftest import USER_ID, USER_NAME, make_entry
from .emulator import (
    FAULT_CODELESS,
    FAULT_DROP_AFTER_ROTATE,
    REFRESH_PATH,
    RunningEmulator,
)
from .property_world import (
    HOURLY_BUDGET,
    INCOMPLETE,
    LIFETIME,
    MARGIN,
    RATE_LIMITED,
    RATE_LIMITED_FAULT,
    REAUTH_CAUSES,
    REFUSALS,
    SLOW_PAUSE,
    WINDOW,
    Step,
    WatchedEmulator,
    World,
    run_step,
)

# ----- the invariants ------------------------------------------------------------------------


def in_reauth(world: World) -> str | None:
    """Why the entry waits for re-authentication (the keeper's reason), or None."""
    flows = world.entry.async_get_active_flows(world.hass, {SOURCE_REAUTH})
    coordinator = world.coordinator()
    if coordinator is not None and coordinator.data.status is TokenStatus.REAUTH_REQUIRED:
        return coordinator.data.reauth_reason or "unknown"
    if world.entry.state is ConfigEntryState.SETUP_ERROR or any(True for _ in flows):
        return "setup"
    return None


def check_tokens_on_disk(world: World) -> None:
    on_disk = world.stored()["refresh_token"]
    live = world.emu.live_refresh_token(world.grant)
    causes = {
        "lost": world.lost(),
        "revoked": world.revoked,
        "expired": world.now >= world.grant.refresh_expires_at,
    }
    if on_disk != live:
        assert causes["lost"], "the refresh token on disk is not the live one"
    reason = in_reauth(world)
    if reason is not None:
        allowed = set().union(*(REAUTH_CAUSES[c] for c, yes in causes.items() if yes))
        assert allowed, f"re-authentication ({reason}) without a cause"
        if reason != "setup":
            assert reason in allowed, f"reauth reason {reason}, causes {causes}"


def check_unloaded_keepers_are_quiet(world: World) -> None:
    """A keeper whose entry was unloaded has no timer left (it would refresh on its own)."""
    current = world.coordinator()
    for keeper in world.keepers:
        if keeper is not current:
            assert keeper._unsub_timer is None, "an unloaded keeper still has a refresh timer"


def check_refreshes(world: World, step_start_expiry: float, failing_at_start: bool) -> None:
    emu = world.emu
    assert emu.max_in_flight_by_path[REFRESH_PATH] <= 1, "two refreshes in flight"
    new = [r for r in emu.requests[world.seen_requests :] if r.path == REFRESH_PATH]
    world.seen_requests = len(emu.requests)
    expiry = step_start_expiry
    failing = failing_at_start or world.demand_since is not None
    for request in new:
        left = expiry - request.at
        if left > MARGIN + MAX_SCHEDULE_JITTER + 1:
            assert failing, f"refresh with {left:.0f} s left, nobody asked for it"
        if request.code == 0 and request.fault not in (FAULT_DROP_AFTER_ROTATE, *INCOMPLETE):
            expiry = request.at + LIFETIME
            world.demand_since = None
            failing = False
        elif request.code != 0 or request.fault in INCOMPLETE:
            failing = True
    # No hot loop: refresh requests per simulated hour.
    refreshes = [r for r in emu.requests if r.path == REFRESH_PATH]
    times = [r.at for r in refreshes]
    for i, start in enumerate(times):
        in_hour = sum(1 for t in times[i:] if t < start + 3600)
        extra = sum(n for t, n in world.explicit if start - 60 <= t < start + 3600)
        assert in_hour <= HOURLY_BUDGET + extra, (
            f"{in_hour} refresh requests within an hour (budget {HOURLY_BUDGET} + {extra})"
        )
    for grant_id in {r.grant_id for r in refreshes}:
        chain = [r for r in refreshes if r.grant_id == grant_id]
        for before, after in itertools.pairwise(chain):
            restarted = any(before.at <= t <= after.at for t in world.restarts)
            gap = after.at - before.at
            # Rate limited or code-less: the next request waits for the slow backoff (kept in
            # memory only).
            slow = before.code == RATE_LIMITED or before.fault in (
                RATE_LIMITED_FAULT,
                FAULT_CODELESS,
            )
            if slow and gap < SLOW_PAUSE:
                assert restarted, f"a refresh {gap:.0f} s after 115 rate limited or refused one"
            # 115's window: never two requests of the authorization within 60 s, restarts
            # included (the last request's time is on disk).
            assert gap >= WINDOW, f"two refresh requests {gap:.0f} s apart"
        # Refused for good (and the answer arrived): nothing is ever sent again.
        refused = [r.at for r in chain if r.code in REFUSALS and r.fault is None]
        if refused:
            later = [r for r in chain if r.at > refused[0]]
            assert not later, "a refresh token 115 refused for good was sent again"


def check_no_secrets(world: World, records: list[logging.LogRecord]) -> None:
    secrets = world.emu.secrets_issued()
    texts = [
        r.getMessage() + str(r.exc_info or "") + str(r.exc_text or "")
        for r in records
        if not r.name.startswith("pytest_homeassistant_custom_component")
    ]
    texts += [f"{s.state} {s.attributes}" for s in world.hass.states.async_all()]
    texts += [str(e.data) for e in world.events]
    # Stored files: only the config entries may hold a token.
    texts += [
        json.dumps(v)
        for k, v in world.hass_storage.items()
        if k != "core.config_entries" and not k.endswith(".token")
    ]
    blob = "\n".join(texts)
    leaked = [s for s in secrets if s in blob]
    assert not leaked, "a token appears in logs, states, events or storage"


def expiry_on_disk(world: World) -> float:
    stamp = dt_util.parse_datetime(world.stored()["expires_at"])
    assert stamp is not None
    return stamp.timestamp()


def failing_now(world: World) -> bool:
    """The keeper is retrying, or 115 no longer knows the access token it holds (revoked, or
    voided by a refresh whose answer was lost): a consumer (the account's reads) that reports it
    refused may make it refresh early."""
    coordinator = world.coordinator()
    if world.stored()["access_token"] not in world.emu.access_tokens:
        return True
    return coordinator is not None and coordinator.data.status in (
        TokenStatus.RETRYING,
        TokenStatus.RATE_LIMITED,
        TokenStatus.EXPIRED,
    )


# ----- one example ----------------------------------------------------------------------------


async def run_scenario(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    steps: list[Step],
    age: int,
    left: int,
    strict: bool,
) -> None:
    emu = WatchedEmulator(
        clock=lambda: dt_util.utcnow().timestamp(),
        expires_in=LIFETIME,
        strict_access_tokens=strict,
    )
    emu.add_account(USER_ID, USER_NAME)
    grant = emu.authorize(USER_ID, at=dt_util.utcnow().timestamp() - age)
    running = await RunningEmulator(emu).start()
    os.environ[ENV_BASE_URL] = running.base_url
    entry = make_entry(emu, grant, expires_in=left)
    world = World(hass, freezer, hass_storage, emu, grant, entry, initial=dict(entry.data))
    refresh = Open115Client.refresh

    async def counted_refresh(client: Open115Client, refresh_token: str) -> TokenPair:
        world.sending[0] += 1
        try:
            return await refresh(client, refresh_token)
        finally:
            world.sending[0] -= 1

    monkeypatch.setattr(Open115Client, "refresh", counted_refresh)
    unsub = hass.bus.async_listen(MATCH_ALL, world.events.append)
    caplog.clear()
    try:
        expiry = expiry_on_disk(world)
        entry.add_to_hass(hass)
        world.start(hass.config_entries.async_setup(entry.entry_id))
        await world.settle()
        check_refreshes(world, expiry, failing_at_start=False)
        for step in steps:
            expiry, failing = expiry_on_disk(world), failing_now(world)
            await run_step(world, step)
            check_tokens_on_disk(world)
            check_refreshes(world, expiry, failing)
            check_unloaded_keepers_are_quiet(world)
        # Let everything that hangs time out, then check once more.
        expiry, failing = expiry_on_disk(world), failing_now(world)
        await world.advance(60)
        check_tokens_on_disk(world)
        check_refreshes(world, expiry, failing)
        check_unloaded_keepers_are_quiet(world)
        check_no_secrets(world, caplog.records)
    finally:
        unsub()
        for task in world.tasks:
            task.cancel()
        world.tasks.clear()
        emu.release()
        await world.settle()
        await hass.config_entries.async_remove(entry.entry_id)
        await running.stop()
        await hass.async_block_till_done()
    timers = [repr(h) for h in get_scheduled_timer_handles(hass.loop) if not h.cancelled()]
    assert not [t for t in timers if "TokenKeeper" in t], "a keeper outlived its entry"
