"""Randomized fault injection: one entry through random steps, invariants after every step.

Hypothesis draws a list of steps (time passing, consumers asking, restarts, reloads, forced
refreshes, emulator faults, revocation) and runs them in one async test against the loopback
emulator on Home Assistant's frozen clock. After every step it checks:

- the refresh token on disk is the emulator's live one, unless a response was lost in transit;
  an entry in reauth has a cause (a lost response, a revocation or the one-year limit);
- never two refresh requests in flight;
- no refresh while the token is valid beyond the margin, unless forced, asked for by a
  consumer's min_validity or report of a refused token, retrying such a refresh, or after 115
  voided the access token (a revocation, a lost answer in strict mode: the account's reads
  report it);
- refresh requests in any simulated hour stay bounded (no hot loop during an outage), and after
  115 answers 40140117 (rate limited) or an error without a code, the next refresh request
  waits for the slow backoff;
- never two refresh requests of one authorization within 60 s (115's window), restarts
  included (the time of the last request is kept on disk);
- after 115 refused the refresh token for good (revoked, used, expired, dead, the app's access
  lost), no refresh request is ever sent again, restarts included;
- every access token handed to a consumer is live at 115 at that moment (unless a response was
  lost or the authorization revoked), also when 115 voids the old access token at each refresh;
- an unloaded keeper keeps no timer, and no keeper outlives its entry;
- no token text in logs, states, attributes, events or any other stored file.

A restart is an unload and a setup in which consumers die and the keepers' memory is lost (a
refresh in flight ends as Home Assistant's stop lets it, or dies with the process if it hangs);
a reload keeps both. The steps also cancel consumers mid-refresh, reload the entry while a
refresh is in flight, store a new authorization the way a flow does while the old chain's
refresh may be in flight, and make 115 answer a refresh malformed (no expires_in, 0, a float,
a bool, no access token) after rotating.

CI runs a fixed set: the sequences that found bugs (`@example`, each also a plain test in
test_regressions.py) and 150 derandomized examples, about 70 s on 2 cores. A longer hunt with
new examples (about 9 min per 1000 on a busy 2-core machine):

    OPEN115_PROPERTY_RANDOM=1 OPEN115_PROPERTY_EXAMPLES=1000 \
        .venv/bin/python -m pytest tests/test_property.py -p no:cacheprovider
"""

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
import itertools
import json
import logging
import os
from typing import Any

from aiohttp import web
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import MATCH_ALL
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.util import dt as dt_util
from homeassistant.util.async_ import get_scheduled_timer_handles
from hypothesis import HealthCheck, example, given, settings, strategies as st
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.open115 import async_get_access_token
from custom_components.open115.api import Open115Client, TokenPair
from custom_components.open115.const import (
    DEFAULT_REFRESH_MARGIN,
    ENV_BASE_URL,
    MAX_SCHEDULE_JITTER,
)
from custom_components.open115.keeper import TokenKeeper
from custom_components.open115.token_record import DATA_RECORDS, async_store_pair
from custom_components.open115.token_state import TokenStatus, token_data

from .conftest import USER_ID, USER_NAME, make_entry
from .emulator import (
    FAULT_CODELESS,
    FAULT_DROP_AFTER_ROTATE,
    FAULT_EXPIRES_IN_FLOAT,
    FAULT_HANG,
    FAULT_HTML,
    FAULT_HTTP_429,
    FAULT_HTTP_500,
    FAULT_HTTP_502,
    FAULT_NO_REFRESH_TOKEN,
    FAULT_RESET,
    MALFORMED_FAULTS,
    REFRESH_PATH,
    YEAR,
    Emulator115,
    Grant,
    RunningEmulator,
)

EXAMPLES = int(os.environ.get("OPEN115_PROPERTY_EXAMPLES", "150"))
DERANDOMIZE = not os.environ.get("OPEN115_PROPERTY_RANDOM")
LIFETIME = 7200
MARGIN = min(DEFAULT_REFRESH_MARGIN, LIFETIME / 4)
# Refresh requests allowed in any simulated hour: the keeper's backoff starts at 60 s and
# doubles up to 15 min (60, 120, 240, ... +-10 %), at most 7 requests in an hour.
HOURLY_BUDGET = 10
# More for each restart or reload in that hour: a setup whose stored token expired and whose
# refresh fails (115 unreachable) is retried by Home Assistant after 5, 10, 20, ... 600 s,
# at most 12 times in the first hour; a loaded keeper starts its backoff afresh.
PER_RESTART = 12
PER_FORCE = 1
# After 115 rate limited a refresh or answered without an error code, the next one waits at
# least this long (5 min -10 %), unless Home Assistant restarted in between (the backoff is
# kept in memory only).
SLOW_PAUSE = 270
# 115's frequency window per authorization.
WINDOW = 60
# Answers that refuse the refresh token for good.
REFUSALS = {40140114, 40140115, 40140116, 40140119, 40140120, 40140137, 40140110}

RATE_LIMITED = 40140117
RATE_LIMITED_FAULT = f"code:{RATE_LIMITED}"
FAULTS = [
    FAULT_HANG,
    FAULT_HTTP_500,
    FAULT_HTTP_502,
    FAULT_HTTP_429,
    FAULT_HTML,
    FAULT_RESET,
    FAULT_DROP_AFTER_ROTATE,
    RATE_LIMITED_FAULT,
    "code:40140121",
    "code:40110000",
    FAULT_CODELESS,
    FAULT_NO_REFRESH_TOKEN,
    *sorted(MALFORMED_FAULTS),
]
# Answers that rotated the token but gave no usable access token or lifetime: due at once.
INCOMPLETE = MALFORMED_FAULTS - {FAULT_EXPIRES_IN_FLOAT}
REAUTH_CAUSES = {
    "lost": {"lost_response", "used"},
    "revoked": {"revoked", "dead", "app_expired"},
    "expired": {"expired"},
}

# ----- steps --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wait:
    seconds: int


@dataclass(frozen=True)
class Ask:
    """A consumer asks for a token; with `report`, it then says 115 refused that token; with
    `cancel`, it gives up (its own timeout, a `mode: restart` script) right after asking."""

    min_validity: int
    report: bool = False
    cancel: bool = False


@dataclass(frozen=True)
class NewAuthorization:
    """A flow (QR re-authentication or reconfigure) stores a new authorization's pair while a
    refresh of the old chain may be in flight; the old one may be pushed out (two per app)."""


@dataclass(frozen=True)
class Restart:
    """Home Assistant stops (in-flight consumers die with it) and starts again."""


@dataclass(frozen=True)
class Reload:
    """The entry is reloaded (options changed); consumers already waiting keep waiting. With
    `mid_refresh`, the `refresh_token` action starts a refresh first, not waited for."""

    mid_refresh: bool = False


@dataclass(frozen=True)
class Force:
    """The `refresh_token` action."""


@dataclass(frozen=True)
class Fault:
    fault: str
    times: int


@dataclass(frozen=True)
class Revoke:
    """115 ends the authorization: the user removed the app (40140116), 115 marked the token
    dead (40140137), or the app lost its access (40140110)."""

    code: int = 40140116


type Step = Wait | Ask | Restart | Reload | Force | Fault | Revoke | NewAuthorization

STEPS = st.one_of(
    st.builds(
        Wait,
        st.one_of(st.integers(1, 60), st.integers(60, 1800), st.integers(1800, 3 * 3600)),
    ),
    st.builds(
        Ask,
        st.one_of(st.integers(0, 900), st.integers(0, 2 * LIFETIME)),
        st.booleans(),
        st.booleans(),
    ),
    st.just(Restart()),
    st.builds(Reload, st.booleans()),
    st.just(NewAuthorization()),
    st.just(Force()),
    st.builds(Fault, st.sampled_from(FAULTS), st.one_of(st.integers(1, 4), st.just(60))),
    st.builds(Revoke, st.sampled_from([40140116, 40140137, 40140110])),
)
SCENARIOS = {
    "steps": st.lists(STEPS, min_size=1, max_size=30),
    # Seconds since the authorization: fresh, or close to the one-year limit.
    "age": st.sampled_from([0, YEAR - 86400, YEAR - 3 * 3600]),
    # Seconds the stored access token still lives at the start.
    "left": st.sampled_from([LIFETIME, 3000, 700, 300, 5]),
    # 115 voids the old access token at every refresh (the 2026 document's advice).
    "strict": st.booleans(),
}

# ----- the world the steps act on ----------------------------------------------------------


@dataclass
class WatchedEmulator(Emulator115):
    """The emulator, also telling how many requests hang right now."""

    hanging: int = 0

    async def _fault_response(self, request: web.Request, fault: str) -> web.StreamResponse:
        if fault != FAULT_HANG:
            return await super()._fault_response(request, fault)
        self.hanging += 1
        try:
            return await super()._fault_response(request, fault)
        finally:
            self.hanging -= 1


@dataclass
class World:
    """One example: Home Assistant, the emulator, the entry, and what the steps did."""

    hass: HomeAssistant
    freezer: FrozenDateTimeFactory
    hass_storage: dict[str, Any]
    emu: WatchedEmulator
    grant: Grant
    entry: MockConfigEntry
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    consumers: list[asyncio.Task[Any]] = field(default_factory=list)
    revoked: bool = False
    demand_since: float | None = None  # a consumer or force asked for an early refresh
    explicit: list[tuple[float, int]] = field(default_factory=list)  # (time, extra budget)
    restarts: list[float] = field(default_factory=list)  # real restarts (memory lost)
    seen_requests: int = 0
    events: list[Event] = field(default_factory=list)
    initial: dict[str, Any] = field(default_factory=dict)
    keepers: list[TokenKeeper] = field(default_factory=list)  # every one set up
    sending: list[int] = field(default_factory=lambda: [0])  # refreshes the client is sending

    @property
    def now(self) -> float:
        return dt_util.utcnow().timestamp()

    def coordinator(self) -> TokenKeeper | None:
        if self.entry.state is not ConfigEntryState.LOADED:
            return None
        coordinator: TokenKeeper = self.entry.runtime_data.keeper
        if coordinator not in self.keepers:
            self.keepers.append(coordinator)
        return coordinator

    def stored(self) -> dict[str, Any]:
        """The entry's token on disk (as created, until it is first written)."""
        token_file = self.hass_storage.get(f"open115.{self.entry.entry_id}.token")
        if token_file is not None:
            token: dict[str, Any] = token_file["data"]["token"]
            return token
        store = self.hass_storage.get("core.config_entries")
        entries = store["data"]["entries"] if store else []
        data: dict[str, Any] = next(
            (e["data"] for e in entries if e["entry_id"] == self.entry.entry_id),
            self.initial,
        )
        return data

    def lost(self) -> bool:
        """A refresh rotated the token but its answer never arrived."""
        return any(
            r.path == REFRESH_PATH and r.fault == FAULT_DROP_AFTER_ROTATE and r.code == 0
            for r in self.emu.requests
        )

    def start(self, coro: Coroutine[Any, Any, Any], *, consumer: bool = False) -> None:
        task = self.hass.loop.create_task(coro)
        self.tasks.append(task)
        if consumer:
            self.consumers.append(task)

    async def settle(self) -> None:
        """Run until nothing can move without time passing (real loopback I/O included)."""
        hass = self.hass
        spins_while_hanging = 0
        for _ in range(200_000):
            await asyncio.sleep(0)
            busy = any(not t.done() for t in self.tasks) or any(not t.done() for t in hass._tasks)
            # A refresh the client started but the emulator has not seen yet may wait for a
            # thread (the resolver): not quiet until it arrives or hangs there.
            busy = busy or self.sending[0] > self.emu.hanging
            busy = busy or any(r.task is not None for r in hass.data.get(DATA_RECORDS, {}).values())
            if not busy and self.emu.in_flight_by_path[REFRESH_PATH] == 0:
                break
            if self.emu.hanging:
                spins_while_hanging += 1
                if spins_while_hanging > 200:
                    break
        else:
            pytest.fail("the keeper did not settle")
        self.coordinator()  # remember every keeper that was set up
        for task in [t for t in self.tasks if t.done()]:
            self.tasks.remove(task)
            if task in self.consumers:
                self.consumers.remove(task)
            err = None if task.cancelled() else task.exception()
            if err is not None and not isinstance(err, HomeAssistantError):
                raise err

    async def advance(self, seconds: float) -> None:
        """Move the frozen clock by `seconds`, stopping at every timer on the way."""
        end = self.now + seconds
        loop = self.hass.loop
        while (left := end - self.now) > 0:
            due = [
                h.when() - loop.time()
                for h in get_scheduled_timer_handles(loop)
                if not h.cancelled()
            ]
            step = min([d for d in due if d > 0] + [left])
            self.freezer.tick(timedelta(seconds=max(step, 0.001)))
            async_fire_time_changed(self.hass)
            await self.settle()


async def ask(world: World, min_validity: int, report: bool) -> str:
    token = await async_get_access_token(world.hass, min_validity=min_validity)
    check_token_is_live(world, token)
    if report:  # 115 refused it (as it may, early, in strict mode): say so, ask again
        token = await async_get_access_token(world.hass, rejected_token=token)
        check_token_is_live(world, token)
    return token


async def new_authorization(world: World) -> None:
    """What a flow does with a new authorization (a QR sign-in: no refresh request)."""
    emu, entry = world.emu, world.entry
    grant = emu.authorize(USER_ID)
    lifetime = emu.expires_in
    pair = TokenPair(
        access_token=emu.issue_access_token(grant, lifetime),
        refresh_token=emu.live_refresh_token(grant),
        expires_in=lifetime,
        received_at=dt_util.utcnow(),
    )
    world.grant = grant
    world.revoked = False
    data = {**entry.data, **token_data(pair, dt_util.utcnow())}
    data.pop("refused", None)
    await async_store_pair(world.hass, entry, data)
    # The flow's reload, as one of the example's tasks (cancelled with them at the end).
    world.start(world.hass.config_entries.async_reload(entry.entry_id))


async def restart(world: World, *, real: bool) -> None:
    """Unload and set up again: a reload, or (`real`) a restart of Home Assistant."""
    hass, entry = world.hass, world.entry
    world.coordinator()  # remember the keeper being unloaded
    if real:  # consumers die with Home Assistant
        for task in world.tasks:
            task.cancel()
        await world.settle()
    world.start(hass.config_entries.async_unload(entry.entry_id))
    await world.settle()
    if real:  # a refresh that still hangs dies with the process; the memory is gone
        records = hass.data.pop(DATA_RECORDS, {})
        for record in records.values():
            if record.task is not None:
                record.task.cancel()
        await world.settle()
    world.start(hass.config_entries.async_setup(entry.entry_id))


async def force(world: World) -> None:
    coordinator = world.coordinator()
    if coordinator is not None:
        world.start(coordinator.async_force_refresh())


async def run_step(world: World, step: Step) -> None:
    """Apply one step, then let everything it started run as far as it can."""
    match step:
        case Wait(seconds):
            await world.advance(seconds)
        case Ask(min_validity, report, cancel):
            coordinator = world.coordinator()
            if coordinator is not None:
                needed = min(min_validity, coordinator.data.expires_in / 2)
                if report or coordinator.data.seconds_left(dt_util.utcnow()) <= needed:
                    world.demand_since = world.demand_since or world.now
            if report:
                world.explicit.append((world.now, PER_FORCE))
            world.start(ask(world, min_validity, report), consumer=True)
            if cancel:  # the consumer gives up once its request is on its way
                for _ in range(20):
                    await asyncio.sleep(0)
                world.consumers[-1].cancel()
        case Restart():
            world.explicit.append((world.now, PER_RESTART))
            world.restarts.append(world.now)
            await restart(world, real=True)
        case Reload(mid_refresh):
            world.explicit.append((world.now, PER_RESTART))
            if mid_refresh:
                world.explicit.append((world.now, PER_FORCE))
                world.demand_since = world.demand_since or world.now
                await force(world)
                for _ in range(20):
                    await asyncio.sleep(0)
            await restart(world, real=False)
        case NewAuthorization():
            world.explicit.append((world.now, PER_RESTART))
            await new_authorization(world)
        case Force():
            world.explicit.append((world.now, PER_FORCE))
            world.demand_since = world.demand_since or world.now
            await force(world)
        case Fault(fault, times):
            world.emu.inject(REFRESH_PATH, *[fault] * times)
        case Revoke(code):
            world.revoked = True
            world.emu._kill(world.emu.grants[world.grant.grant_id], code)
    await world.settle()


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


def check_token_is_live(world: World, token: str) -> None:
    """A token handed to a consumer works at 115 right now (unless 115 voided it behind us)."""
    if world.lost() or world.revoked:
        return
    issued = world.emu.access_tokens.get(token)
    assert issued is not None, "a consumer got an access token 115 no longer knows"
    assert issued.expires_at > world.now, "a consumer got an expired access token"


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


@pytest.mark.usefixtures("socket_enabled")
@settings(
    max_examples=EXAMPLES,
    derandomize=DERANDOMIZE,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(**SCENARIOS)
# What it found so far (each also a plain test in test_regressions.py), always run.
@example(
    steps=[Fault(FAULT_HANG, 1), Force(), Reload(), Wait(60), Wait(7200)],
    age=0,
    left=700,
    strict=False,
)
@example(
    steps=[Fault(RATE_LIMITED_FAULT, 60), Wait(3600), Restart(), *[Wait(600)] * 6],
    age=0,
    left=700,
    strict=False,
)
@example(
    steps=[Fault(RATE_LIMITED_FAULT, 4), Wait(6600), Reload(), Wait(600)],
    age=0,
    left=7200,
    strict=False,
)
@example(steps=[Fault(RATE_LIMITED_FAULT, 60), Wait(1100), Force()], age=0, left=700, strict=False)
@example(
    steps=[
        Fault(RATE_LIMITED_FAULT, 2),
        Ask(21, True),
        Revoke(40140116),
        Revoke(40140110),
        Restart(),
        Revoke(40140110),
        Ask(66, False),
        Wait(7200),
        Reload(),
        Reload(),
        Force(),
    ],
    age=YEAR - 86400,
    left=700,
    strict=True,
)
@example(
    steps=[
        Wait(688),
        Revoke(40140116),
        Fault(FAULT_CODELESS, 4),
        Wait(1800),
        Reload(),
        Reload(),
        Force(),
        Ask(590, False),
        Revoke(40140137),
        Force(),
        Wait(4281),
        Reload(),
    ],
    age=YEAR - 86400,
    left=7200,
    strict=False,
)
# Issue 17's moves, always run: a consumer giving up mid-refresh, a reload mid-refresh, a
# malformed success answer, new authorizations racing a refresh of the old chain.
@example(steps=[Ask(3600, False, True), Wait(60), Ask(60)], age=0, left=3000, strict=True)
@example(steps=[Reload(True), Ask(60), Wait(120)], age=0, left=700, strict=True)
@example(steps=[Fault("expires_in_bool", 60), Wait(3600)], age=0, left=5, strict=False)
@example(
    steps=[Fault("no_access_token", 1), Ask(100), Wait(600), Restart(), Wait(60)],
    age=0,
    left=5,
    strict=False,
)
@example(
    steps=[Fault(FAULT_HANG, 1), Force(), NewAuthorization(), NewAuthorization(), Wait(60)],
    age=0,
    left=7200,
    strict=False,
)
async def test_random_faults_keep_the_invariants(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    steps: list[Step],
    age: int,
    left: int,
    strict: bool,
) -> None:
    # Not a parameter: Hypothesis prints a failing example's parameters, and this holds tokens.
    hass_storage: dict[str, Any] = request.getfixturevalue("hass_storage")
    monkeypatch.setenv(ENV_BASE_URL, "http://127.0.0.1:9")  # restored after the test
    caplog.set_level(logging.DEBUG)
    await run_scenario(hass, freezer, hass_storage, caplog, monkeypatch, steps, age, left, strict)
