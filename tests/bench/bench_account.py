"""The account's request economy: proapi requests a day, idle and with cloud downloads.

Run by `scripts/bench` beside bench.py (see tests/bench/__main__.py). One open115 entry with its
account coordinator (storage, VIP, quota, task list) lives through simulated days on Home
Assistant's frozen clock, talking real loopback HTTP to a fresh 115 emulator; the figures are
the emulator's request log. Measured, never asserted.

Scenarios (the same random days for every run number):
- idle: nothing downloads.
- idle, restarts: the same, with Home Assistant restarted (the entry set up again) at random.
- downloads: DOWNLOADS_PER_DAY links a day, half added with `open115.add_cloud_download`,
  half in 115's own app (the coordinator learns of those only by polling); each runs 2 min to
  2 h, one in six fails. The latency of `finished`/`failed` is from the moment the emulator's
  task ends to the moment the event entity fires.
- rate limited: idle, with proapi refusing every request (770004) for LIMITED_HOURS.
- stalled: idle, with one task on the list that never moves (0 %, allocating, no peers).
- forty tasks: idle, with BACKLOG_TASKS ended tasks on the list (two pages of 30).
"""

from collections import Counter
from dataclasses import asdict, dataclass, field
import random
import time
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
import pytest

from custom_components.open115.const import DOMAIN
from tests.conftest import USER_ID
from tests.emulator import (
    CODE_TOO_FREQUENT,
    OFFLINE_PATHS,
    REFRESH_PATH,
    TASK_LIST_PATH,
    USER_INFO_PATH,
    Emulator115,
    info_hash_of,
)

from .bench import DAYS, RUNS, Open115Keeper, advance_to, record, start_emulator, wall_ns

DAY = 86400
PROAPI_PATHS = (USER_INFO_PATH, *OFFLINE_PATHS)
DOWNLOADS_PER_DAY = 6
DOWNLOAD_SECONDS = (120, 7200)
FAIL_ONE_IN = 6
RESTARTS_PER_DAY = 4
LIMITED_FROM = 6 * 3600  # s into the first day
LIMITED_HOURS = 2
TAIL = 3 * 3600  # s simulated after the last day, for the events of tasks that end late
BACKLOG_TASKS = 40
SCENARIOS = ("idle", "idle_restarts", "downloads", "rate_limited", "stalled", "forty_tasks")

pytestmark = pytest.mark.usefixtures("socket_enabled")


@pytest.fixture(autouse=True)
def production_loop(hass: HomeAssistant) -> None:
    """Run the loop as Home Assistant does (the test harness turns asyncio's debug mode on)."""
    hass.loop.set_debug(False)


@dataclass
class Download:
    """One cloud download of the workload."""

    url: str
    added: float  # s from the start
    ends: float
    via_action: bool
    fails: bool


def make_downloads(seed: int) -> list[Download]:
    """DOWNLOADS_PER_DAY random downloads on each simulated day."""
    rnd = random.Random(seed)
    out: list[Download] = []
    for day in range(DAYS):
        for n in range(DOWNLOADS_PER_DAY):
            added = day * DAY + rnd.uniform(600, DAY - 600)
            ends = added + rnd.uniform(*DOWNLOAD_SECONDS)
            out.append(
                Download(
                    url=f"https://example.com/bench/{seed}/{day}/{n}.mkv",
                    added=added,
                    ends=ends,
                    via_action=n % 2 == 0,
                    fails=rnd.randrange(FAIL_ONE_IN) == 0,
                )
            )
    return out


@dataclass
class AccountResult:
    """One scenario's run."""

    scenario: str
    run: int
    days: int = DAYS
    proapi: int = 0
    proapi_by_path: dict[str, int] = field(default_factory=dict)
    max_day: int = 0  # proapi requests on the busiest simulated day
    refreshes: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # proapi answers with an error code
    downloads: int = 0
    events: int = 0
    duplicate_events: int = 0
    missed_events: int = 0
    # s from a task's end to its event: for tasks a read saw running, and for tasks added in
    # 115's app that ended before any read saw them (found by the next idle read).
    latencies: list[float] = field(default_factory=list)
    unseen_latencies: list[float] = field(default_factory=list)
    missed: list[dict[str, Any]] = field(default_factory=list)  # what the missed ones were
    add_to_read: list[float] = field(default_factory=list)  # s, action add -> task list read
    app_add_to_read: list[float] = field(default_factory=list)  # s, added in 115's app -> read
    limited_requests: int = 0  # proapi requests sent while rate limited
    restarts: int = 0


def _first_read_after(emu: Emulator115, at: float) -> float | None:
    return next(
        (
            r.at - at
            for r in emu.requests
            if r.path == TASK_LIST_PATH and r.at >= at and r.code == 0
        ),
        None,
    )


async def run_account(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
    scenario: str,
    run: int,
) -> AccountResult:
    emu, grant, running = await start_emulator(monkeypatch, time.time)
    keeper = Open115Keeper(hass, emu, grant)
    result = AccountResult(scenario, run)
    start = time.time()
    fired: dict[str, list[float]] = {}

    @callback
    def on_state(event: Event[EventStateChangedData]) -> None:
        new, old = event.data["new_state"], event.data["old_state"]
        if not event.data["entity_id"].startswith("event.") or new is None:
            return
        if old is not None and old.state == new.state:
            return
        info_hash = new.attributes.get("info_hash")
        if isinstance(info_hash, str):
            fired.setdefault(info_hash, []).append(time.time())

    unsub = hass.bus.async_listen("state_changed", on_state)
    if scenario == "stalled":
        emu.add_task(USER_ID, f"https://example.com/bench/{run}/stalled.iso")
    if scenario == "forty_tasks":
        for n in range(BACKLOG_TASKS):
            old = emu.add_task(USER_ID, f"https://example.com/bench/{run}/old/{n}.iso")
            if n % 5:
                emu.finish_task(old)
            else:
                emu.fail_task(old)
    await keeper.start()
    await hass.async_block_till_done(wait_background_tasks=True)

    rnd = random.Random(1000 + run)
    steps: list[tuple[float, str, Any]] = []
    downloads = make_downloads(run) if scenario == "downloads" else []
    for download in downloads:
        steps += [(download.added, "add", download), (download.ends, "end", download)]
    if scenario == "idle_restarts":
        steps += [
            (rnd.uniform(0, DAYS * DAY), "restart", None) for _ in range(RESTARTS_PER_DAY * DAYS)
        ]
    if scenario == "rate_limited":
        steps += [
            (LIMITED_FROM, "limit", CODE_TOO_FREQUENT),
            (LIMITED_FROM + LIMITED_HOURS * 3600, "limit", None),
        ]
    steps.sort(key=lambda s: s[0])
    ended_at: dict[str, float] = {}
    hashes: dict[str, str] = {}
    horizon: int | None = None  # requests logged within the DAYS
    for offset, action, arg in steps:
        if horizon is None and offset >= DAYS * DAY:
            await advance_to(hass, freezer, start + DAYS * DAY)
            horizon = len(emu.requests)
        await advance_to(hass, freezer, start + offset)
        if action == "add":
            if arg.via_action:
                at = time.time()
                await hass.services.async_call(
                    DOMAIN,
                    "add_cloud_download",
                    {"urls": arg.url},
                    blocking=True,
                    return_response=True,
                )
                read = _first_read_after(emu, at)
                result.add_to_read.append(float("nan") if read is None else read)
            else:
                emu.add_task(USER_ID, arg.url)
            hashes[arg.url] = info_hash_of(arg.url)
            # It downloads (moves) until it ends; only the stalled scenario's task stands still.
            emu.task(hashes[arg.url]).expected_seconds = arg.ends - arg.added
        elif action == "end":
            info_hash = hashes[arg.url]
            if arg.fails:
                emu.fail_task(info_hash)
            else:
                emu.finish_task(info_hash)
            ended_at[info_hash] = time.time()
        elif action == "restart":
            await keeper.restart()
            result.restarts += 1
        else:
            emu.proapi_limit = arg
        await hass.async_block_till_done(wait_background_tasks=True)
    if horizon is None:
        await advance_to(hass, freezer, start + DAYS * DAY)
        horizon = len(emu.requests)
    # Longer for the events of tasks that end late on the last day; the requests are
    # counted over the DAYS only.
    await advance_to(hass, freezer, start + DAYS * DAY + TAIL)
    unsub()

    proapi = [r for r in emu.requests[:horizon] if r.path in PROAPI_PATHS]
    result.proapi = len(proapi)
    result.proapi_by_path = dict(Counter(r.path.rsplit("/", 1)[1] for r in proapi))
    per_day = Counter(int((r.at - start) // DAY) for r in proapi)
    result.max_day = max(per_day.values(), default=0)
    result.refreshes = sum(1 for r in emu.requests[:horizon] if r.path == REFRESH_PATH)
    result.refused = dict(Counter(str(r.code) for r in proapi if r.code))
    if scenario == "rate_limited":
        limited = (start + LIMITED_FROM, start + LIMITED_FROM + LIMITED_HOURS * 3600)
        result.limited_requests = sum(1 for r in proapi if limited[0] <= r.at < limited[1])
    result.downloads = len(downloads)
    reads = [r.at for r in emu.requests if r.path == TASK_LIST_PATH and r.code == 0]
    for download in downloads:
        info_hash = hashes[download.url]
        at = ended_at[info_hash]
        times = fired.get(info_hash, [])
        result.events += len(times)
        result.duplicate_events += max(len(times) - 1, 0)
        seen = any(start + download.added <= t < at for t in reads)
        if times:
            (result.latencies if seen else result.unseen_latencies).append(times[0] - at)
        else:
            result.missed_events += 1
            result.missed.append(
                {**asdict(download), "seen": seen, "reads_after": sum(t >= at for t in reads)}
            )
    for download in downloads:
        if not download.via_action:
            read = _first_read_after(emu, start + download.added)
            result.app_add_to_read.append(float("nan") if read is None else read)
    await hass.config_entries.async_remove(keeper.entry.entry_id)
    await running.stop()
    return result


@pytest.mark.parametrize("run", range(RUNS))
@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_account_economy(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    monkeypatch: pytest.MonkeyPatch,
    scenario: str,
    run: int,
) -> None:
    wall = wall_ns()
    result = await run_account(hass, freezer, monkeypatch, scenario, run)
    record("account", **asdict(result), wall_s=(wall_ns() - wall) / 1e9)
