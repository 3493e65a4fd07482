"""The open115 benchmark: refresh economy, bursts, hot path and setup; writes docs/benchmarks.md.

The account's request economy (proapi requests a day) is in bench_account.py.

Run it with `scripts/bench` (or `python -m tests.bench`, which runs this file with pytest and
writes the report; see tests/bench/__main__.py). Its scenarios are pytest tests inside Home Assistant's test harness (pytest-homeassistant-custom-component): the economy
simulation moves Home Assistant's frozen clock (freezegun) from event to event, and every keeper
talks real loopback HTTP to a fresh 115 emulator. Measured, never asserted: each figure is the
median of OPEN115_BENCH_RUNS runs (default 5) and each comparison is a ratio taken within one run.

The three keepers:
- open115: this integration (`async_get_access_token`), its own timer and lock.
- OAuth2Session: Home Assistant core's `config_entry_oauth2_flow.OAuth2Session` with an
  `AbstractOAuth2Implementation` whose `_async_refresh_token` calls /open/refreshToken; it
  refreshes on demand (token within 20 s of expiry) under its lock.
- naive: no lock, no timer; a consumer that sees the token expire within its min_validity
  (at least 60 s) refreshes it itself.
"""

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
import json
import os
from pathlib import Path
import random
import time
from typing import Any, override

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import (
    HomeAssistantError,
    OAuth2TokenRequestReauthError,
    OAuth2TokenRequestTransientError,
)
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.config_entry_oauth2_flow import (
    AbstractOAuth2Implementation,
    OAuth2Session,
)
from homeassistant.util import dt as dt_util
from homeassistant.util.async_ import get_scheduled_timer_handles
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.open115 import async_get_access_token
from custom_components.open115.api import (
    Open115AuthError,
    Open115Client,
    Open115Error,
    Open115RateLimitError,
)
from custom_components.open115.const import DEFAULT_REFRESH_MARGIN, DOMAIN, ENV_BASE_URL
from tests.conftest import USER_ID, USER_NAME, make_entry_data
from tests.emulator import REFRESH_PATH, Emulator115, Grant, RunningEmulator

ROOT = Path(__file__).resolve().parents[2]
RESULTS_ENV = "OPEN115_BENCH_RESULTS"
RUNS = int(os.environ.get("OPEN115_BENCH_RUNS", "5"))

LIFETIME = 7200
MARGIN = min(DEFAULT_REFRESH_MARGIN, LIFETIME // 4)
DAYS = int(os.environ.get("OPEN115_BENCH_DAYS", "7"))
DURATION = DAYS * 86400
CONSUMERS = 50
ASK_INTERVAL = 600  # each consumer asks on average every 10 min (Poisson)
MAX_MIN_VALIDITY = MARGIN  # consumers ask for 0..600 s of validity
RESTARTS = 20
WINDOW = 2  # s: asks this close together overlap (about one refresh round trip to 115)
NAIVE_FLOOR = 60
BURSTS = (1, 10, 100, 1000)
BURST_LEFT = 10  # s of validity left when a burst asks
HOT_CALLS = 20_000
HOT_BLOCK = 1000

KEEPERS = ("open115", "oauth2session", "naive")

pytestmark = pytest.mark.usefixtures("socket_enabled")


@pytest.fixture(autouse=True)
def production_loop(hass: HomeAssistant) -> None:
    """Run the loop as Home Assistant does: the test harness turns asyncio's debug mode on."""
    hass.loop.set_debug(False)


def wall_ns() -> int:
    """A monotonic clock that the frozen test clock leaves alone (freezegun patches perf_counter)."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def record(kind: str, **values: Any) -> None:
    """Append one measurement to the results file."""
    path = os.environ.get(RESULTS_ENV)
    if path:
        with Path(path).open("a", encoding="utf-8") as out:
            out.write(json.dumps({"kind": kind, **values}) + "\n")


# ----- the three keepers ----------------------------------------------------------------------


class Keeper:
    """What the workload needs from a token keeper."""

    def __init__(self, hass: HomeAssistant, emu: Emulator115, grant: Grant) -> None:
        self.hass = hass
        self.emu = emu
        self.grant = grant
        self.dead: str | None = None

    async def start(self) -> None:
        raise NotImplementedError

    async def restart(self) -> None:
        raise NotImplementedError

    async def get(self, min_validity: int) -> tuple[str, float]:
        """An access token and when it expires (timestamp)."""
        raise NotImplementedError


class Open115Keeper(Keeper):
    @override
    async def start(self) -> None:
        self.entry = MockConfigEntry(
            domain=DOMAIN,
            title=USER_NAME,
            unique_id=str(USER_ID),
            data=make_entry_data(self.emu, self.grant),
        )
        self.entry.add_to_hass(self.hass)
        await self.hass.config_entries.async_setup(self.entry.entry_id)

    @override
    async def restart(self) -> None:
        await self.hass.config_entries.async_unload(self.entry.entry_id)
        await self.hass.config_entries.async_setup(self.entry.entry_id)

    @override
    async def get(self, min_validity: int) -> tuple[str, float]:
        token = await async_get_access_token(self.hass, self.entry.entry_id, min_validity)
        return token, self.entry.runtime_data.keeper.data.expires_at.timestamp()


class Open115Implementation(AbstractOAuth2Implementation):
    """Home Assistant's OAuth2 plumbing, refreshing through 115's /open/refreshToken."""

    def __init__(self, hass: HomeAssistant) -> None:
        self.client = Open115Client(
            async_get_clientsession(hass), base_url=os.environ[ENV_BASE_URL]
        )

    @property
    @override
    def name(self) -> str:
        return "115"

    @property
    @override
    def domain(self) -> str:
        return "bench_oauth2"

    @override
    async def async_generate_authorize_url(self, flow_id: str) -> str:
        raise NotImplementedError

    @override
    async def async_resolve_external_data(self, external_data: Any) -> dict[str, Any]:
        raise NotImplementedError

    @override
    async def _async_refresh_token(self, token: dict[str, Any]) -> dict[str, Any]:
        try:
            pair = await self.client.refresh(token["refresh_token"])
        except Open115AuthError as err:
            raise OAuth2TokenRequestReauthError(
                domain=self.domain, request_info=None, history=(), status=400
            ) from err
        except Open115Error as err:
            raise OAuth2TokenRequestTransientError(
                domain=self.domain, request_info=None, history=(), status=500
            ) from err
        return {
            **token,
            "access_token": pair.access_token,
            "refresh_token": pair.refresh_token,
            "expires_in": pair.expires_in,
        }


def oauth2_token(emu: Emulator115, grant: Grant) -> dict[str, Any]:
    data = make_entry_data(emu, grant)
    expires_at = dt_util.parse_datetime(data["expires_at"])
    assert expires_at is not None
    return {
        "access_token": data["access_token"],
        "refresh_token": data["refresh_token"],
        "expires_in": LIFETIME,
        "expires_at": expires_at.timestamp(),
        "token_type": "Bearer",
    }


class OAuth2SessionKeeper(Keeper):
    @override
    async def start(self) -> None:
        self.entry = MockConfigEntry(
            domain="bench_oauth2", data={"token": oauth2_token(self.emu, self.grant)}
        )
        self.entry.add_to_hass(self.hass)
        self.session = OAuth2Session(self.hass, self.entry, Open115Implementation(self.hass))

    @override
    async def restart(self) -> None:
        self.session = OAuth2Session(self.hass, self.entry, Open115Implementation(self.hass))

    @override
    async def get(self, min_validity: int) -> tuple[str, float]:
        try:
            await self.session.async_ensure_token_valid()
        except OAuth2TokenRequestReauthError as err:
            self.dead = self.dead or "reauth"
            raise HomeAssistantError("reauth") from err
        token = self.session.token
        return token["access_token"], float(token["expires_at"])


class NaiveKeeper(Keeper):
    """No lock: whoever sees the token about to expire refreshes it."""

    @override
    async def start(self) -> None:
        self.entry = MockConfigEntry(
            domain="bench_naive", data={"token": oauth2_token(self.emu, self.grant)}
        )
        self.entry.add_to_hass(self.hass)
        self.client = Open115Client(
            async_get_clientsession(self.hass), base_url=os.environ[ENV_BASE_URL]
        )

    @override
    async def restart(self) -> None:
        """Nothing to do: the token lives in the entry."""

    @override
    async def get(self, min_validity: int) -> tuple[str, float]:
        token = self.entry.data["token"]
        if self.dead:
            raise HomeAssistantError(self.dead)
        left = token["expires_at"] - time.time()
        if left < max(min_validity, NAIVE_FLOOR):
            try:
                pair = await self.client.refresh(token["refresh_token"])
            except Open115AuthError as err:
                self.dead = self.dead or f"code {err.code}"
                raise HomeAssistantError(self.dead) from err
            except (Open115RateLimitError, Open115Error) as err:
                if left <= 0:
                    raise HomeAssistantError("refresh failed") from err
                return token["access_token"], float(token["expires_at"])
            token = {
                **token,
                "access_token": pair.access_token,
                "refresh_token": pair.refresh_token,
                "expires_at": pair.expires_at.timestamp(),
            }
            self.hass.config_entries.async_update_entry(self.entry, data={"token": token})
        return token["access_token"], float(token["expires_at"])


KEEPER_CLASSES: dict[str, type[Keeper]] = {
    "open115": Open115Keeper,
    "oauth2session": OAuth2SessionKeeper,
    "naive": NaiveKeeper,
}


# ----- the harness ------------------------------------------------------------------------------


async def start_emulator(
    monkeypatch: pytest.MonkeyPatch, clock: Callable[[], float]
) -> tuple[Emulator115, Grant, RunningEmulator]:
    emu = Emulator115(clock=clock, expires_in=LIFETIME)
    emu.add_account(USER_ID, USER_NAME)
    grant = emu.authorize(USER_ID)
    running = await RunningEmulator(emu).start()
    monkeypatch.setenv(ENV_BASE_URL, running.base_url)
    return emu, grant, running


async def advance_to(hass: HomeAssistant, freezer: FrozenDateTimeFactory, target: float) -> None:
    """Move the frozen clock to `target`, stopping at every timer due on the way."""
    loop = hass.loop
    while (left := target - time.time()) > 0:
        due = [
            h.when() - loop.time()
            for h in get_scheduled_timer_handles(loop)
            if not h.cancelled() and h.when() - loop.time() > 0
        ]
        step = min([*due, left])
        freezer.tick(timedelta(seconds=max(step, 0.001)))
        if step < left:
            async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)


@dataclass
class Workload:
    """The same random week for every keeper of one run."""

    asks: list[tuple[float, int]]  # (offset s, min_validity)
    restarts: list[float]

    @classmethod
    def make(cls, seed: int) -> Workload:
        rnd = random.Random(seed)
        asks: list[tuple[float, int]] = []
        for _ in range(CONSUMERS):
            at = rnd.expovariate(1 / ASK_INTERVAL)
            while at < DURATION:
                asks.append((at, rnd.randint(0, MAX_MIN_VALIDITY)))
                at += rnd.expovariate(1 / ASK_INTERVAL)
        asks.sort()
        restarts = sorted(rnd.uniform(0, DURATION) for _ in range(RESTARTS))
        return cls(asks, restarts)


@dataclass
class EconomyResult:
    keeper: str
    run: int
    refreshes: int = 0
    restart_refreshes: int = 0
    asks: int = 0
    failed_asks: int = 0
    short_tokens: int = 0  # handed out with less validity left than asked for
    error_codes: dict[str, int] = field(default_factory=dict)
    died_after_h: float | None = None
    died_of: str | None = None


async def run_economy(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    run: int,
) -> EconomyResult:
    workload = Workload.make(run)
    emu, grant, running = await start_emulator(monkeypatch, time.time)
    keeper = KEEPER_CLASSES[name](hass, emu, grant)
    result = EconomyResult(name, run)
    start = time.time()
    await keeper.start()
    await hass.async_block_till_done(wait_background_tasks=True)
    restarts = list(workload.restarts)
    i = 0
    asks = workload.asks

    async def one(min_validity: int) -> None:
        result.asks += 1
        try:
            _token, expires_at = await keeper.get(min_validity)
        except HomeAssistantError:
            result.failed_asks += 1
            if keeper.dead and result.died_after_h is None:
                result.died_after_h = round((time.time() - start) / 3600, 1)
                result.died_of = keeper.dead
            return
        if expires_at - time.time() < min_validity:
            result.short_tokens += 1

    while i < len(asks) or restarts:
        next_ask = asks[i][0] if i < len(asks) else DURATION
        if restarts and restarts[0] <= next_ask:
            await advance_to(hass, freezer, start + restarts.pop(0))
            before = emu.count(REFRESH_PATH)
            await keeper.restart()
            await hass.async_block_till_done(wait_background_tasks=True)
            result.restart_refreshes += emu.count(REFRESH_PATH) - before
            continue
        window = [asks[i]]
        i += 1
        while i < len(asks) and asks[i][0] < window[0][0] + WINDOW:
            window.append(asks[i])
            i += 1
        await advance_to(hass, freezer, start + window[0][0])
        await asyncio.gather(*(one(mv) for _at, mv in window))
        await hass.async_block_till_done(wait_background_tasks=True)
    await advance_to(hass, freezer, start + DURATION)
    result.refreshes = emu.count(REFRESH_PATH)
    codes = Counter(str(r.code) for r in emu.requests if r.path == REFRESH_PATH and r.code)
    result.error_codes = dict(codes)
    if isinstance(keeper, Open115Keeper):
        await hass.config_entries.async_remove(keeper.entry.entry_id)
    await running.stop()
    return result


# ----- the scenarios (collected only when this file is named on the command line) -------------


@pytest.mark.parametrize("run", range(RUNS))
@pytest.mark.parametrize("name", KEEPERS)
async def test_economy(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    run: int,
) -> None:
    wall = wall_ns()
    result = await run_economy(hass, freezer, monkeypatch, name, run)
    record("economy", **asdict(result), wall_s=(wall_ns() - wall) / 1e9)


@pytest.mark.parametrize("run", range(RUNS))
@pytest.mark.parametrize("askers", BURSTS)
@pytest.mark.parametrize("name", KEEPERS)
async def test_burst(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    askers: int,
    run: int,
) -> None:
    """`askers` consumers ask at once, 10 s before the token expires.

    That is inside every keeper's refresh window: open115's margin, the min_validity of 60 s
    the askers want, and OAuth2Session's 20 s.
    """
    emu, grant, running = await start_emulator(monkeypatch, time.time)
    keeper = KEEPER_CLASSES[name](hass, emu, grant)
    await keeper.start()
    await hass.async_block_till_done(wait_background_tasks=True)
    freezer.tick(timedelta(seconds=LIFETIME - BURST_LEFT))
    waits: list[float] = []
    failures = 0

    async def one() -> None:
        nonlocal failures
        t0 = wall_ns()
        try:
            await keeper.get(60)
        except HomeAssistantError:
            failures += 1
        waits.append((wall_ns() - t0) / 1e9)

    await asyncio.gather(*(one() for _ in range(askers)))
    await hass.async_block_till_done(wait_background_tasks=True)
    record(
        "burst",
        keeper=name,
        askers=askers,
        run=run,
        refreshes=emu.count(REFRESH_PATH),
        slowest_ms=max(waits) * 1000,
        failures=failures,
    )
    if isinstance(keeper, Open115Keeper):
        await hass.config_entries.async_remove(keeper.entry.entry_id)
    await running.stop()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@pytest.mark.parametrize("run", range(RUNS))
async def test_hot_path(hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch, run: int) -> None:
    """A valid token, asked for again and again: open115 beside OAuth2Session."""
    emu, grant, running = await start_emulator(monkeypatch, time.time)
    ours = Open115Keeper(hass, emu, grant)
    await ours.start()
    theirs = OAuth2SessionKeeper(hass, emu, grant)
    await theirs.start()
    await hass.async_block_till_done()
    entry_id = ours.entry.entry_id
    session = theirs.session

    async def open115_call() -> None:
        await async_get_access_token(hass, entry_id, 60)

    async def oauth2_call() -> None:
        await session.async_ensure_token_valid()
        _ = session.token["access_token"]

    calls = {"open115": open115_call, "oauth2session": oauth2_call}
    timings: dict[str, list[float]] = {label: [] for label in calls}
    for call in calls.values():
        for _ in range(1000):  # warm up
            await call()
    # Alternate blocks, so that a change of load on the machine hits both alike.
    for _ in range(HOT_CALLS // HOT_BLOCK):
        for label, call in calls.items():
            samples = timings[label]
            for _ in range(HOT_BLOCK):
                t0 = wall_ns()
                await call()
                samples.append((wall_ns() - t0) / 1000)
    record(
        "hot",
        run=run,
        requests=emu.count(REFRESH_PATH),
        **{f"{k}_p50_us": percentile(v, 0.5) for k, v in timings.items()},
        **{f"{k}_p99_us": percentile(v, 0.99) for k, v in timings.items()},
    )
    await hass.config_entries.async_remove(entry_id)
    await running.stop()


async def test_setup(hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch) -> None:
    """Set up an entry whose stored token is valid: time and requests (ideal 0)."""
    emu, grant, running = await start_emulator(monkeypatch, time.time)
    for run in range(-1, RUNS):  # run -1 warms up (imports the integration)
        keeper = Open115Keeper(hass, emu, grant)
        t0 = wall_ns()
        await keeper.start()
        await hass.async_block_till_done()
        elapsed_ms = (wall_ns() - t0) / 1e6
        if run >= 0:
            record("setup", run=run, ms=elapsed_ms, requests=emu.count(REFRESH_PATH))
        await hass.config_entries.async_remove(keeper.entry.entry_id)
        await hass.async_block_till_done()
    await running.stop()
