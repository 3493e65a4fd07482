"""The randomized fault injection's world: its steps and the entry and emulator they act on
(property_invariants.py checks it; test_property.py runs both)."""

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
import os
from typing import Any

from aiohttp import web
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.util import dt as dt_util
from homeassistant.util.async_ import get_scheduled_timer_handles
from hypothesis import strategies as st
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.open115 import async_get_access_token
from custom_components.open115.api import TokenPair
from custom_components.open115.const import (
    DEFAULT_REFRESH_MARGIN,
)
from custom_components.open115.keeper import TokenKeeper
from custom_components.open115.token_record import DATA_RECORDS, async_store_pair
from custom_components.open115.token_state import token_data

from .conftest import USER_ID
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


def check_token_is_live(world: World, token: str) -> None:
    """A token handed to a consumer works at 115 right now (unless 115 voided it behind us)."""
    if world.lost() or world.revoked:
        return
    issued = world.emu.access_tokens.get(token)
    assert issued is not None, "a consumer got an access token 115 no longer knows"
    assert issued.expires_at > world.now, "a consumer got an expired access token"


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
