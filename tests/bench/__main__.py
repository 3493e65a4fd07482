"""Run the benchmark scenarios (tests/bench/bench*.py) with pytest, then write docs/benchmarks.md.

`python -m tests.bench [--quick] [pytest arguments]`; scripts/bench calls it. `--quick` runs once
over two simulated days and only prints (a check that it works). Nothing from Home
Assistant is imported before pytest has loaded its Home Assistant plugin.
"""

from collections import Counter
from datetime import UTC, datetime
import json
import os
from pathlib import Path
import platform
import sys
import tempfile
from typing import Any

import pytest

from .numbers import fmt, med
from .report_account import account_section
from .report_backup import backup_section, splice

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = [Path(__file__).with_name(name) for name in ("bench.py", "bench_account.py")]
RESULTS_ENV = "OPEN115_BENCH_RESULTS"


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    from homeassistant.const import __version__ as ha_version

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        load = f"{os.getloadavg()[0]:.1f}"
    except OSError:
        load = "unknown"
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "load": load,
        "python": platform.python_version(),
        "home_assistant": ha_version,
        "os": f"{platform.system()} {platform.release()}",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def economy_section(rows: list[dict[str, Any]]) -> list[str]:
    """The refresh-economy table and the ratios taken within each run."""
    from . import bench as b

    ideal = b.DURATION / (b.LIFETIME - b.MARGIN)
    eco = [r for r in rows if r["kind"] == "economy"]
    by = {k: [r for r in eco if r["keeper"] == k] for k in b.KEEPERS}

    def ratio_vs(keeper: str, key: str) -> float:
        ours = {r["run"]: r[key] for r in by["open115"]}
        return med([r[key] / ours[r["run"]] for r in by[keeper] if ours.get(r["run"])])

    out = [
        f"## Refresh economy: {b.DAYS} simulated days",
        "",
        (
            f"{b.DAYS} days of {b.LIFETIME} s tokens, refresh margin {b.MARGIN} s (the default); "
            f"{b.CONSUMERS} consumers each asking on average every {b.ASK_INTERVAL // 60} min "
            f"(Poisson) with a random min_validity of 0-{b.MAX_MIN_VALIDITY} s; {b.RESTARTS} "
            "Home Assistant restarts at random moments; asks less than "
            f"{b.WINDOW} s apart run concurrently. Simulated time (Home Assistant's frozen "
            "clock), real loopback HTTP to the 115 emulator (a fresh one per keeper), the same "
            "random workload for the three keepers of a run. Ideal for a keeper that hands out "
            f"tokens with at least the margin left: {b.DURATION} / ({b.LIFETIME} - {b.MARGIN}) "
            f"= {ideal:.1f} refresh requests, and none at restart."
        ),
        "",
        (
            "| keeper | refresh requests | vs ideal | requests at restart | asks | failed asks "
            "| tokens with less validity than asked | refused by 115 (per run) | outcome |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for k in b.KEEPERS:
        rs = by[k]
        if not rs:
            continue
        refreshes = med([r["refreshes"] for r in rs])
        codes: Counter[str] = Counter()
        for r in rs:
            codes.update(r["error_codes"])
        codes_txt = ", ".join(f"{c} x{n / len(rs):g}" for c, n in sorted(codes.items())) or "none"
        died = [r for r in rs if r["died_after_h"] is not None]
        if died:
            cause = Counter(r["died_of"] for r in died).most_common(1)[0][0]
            outcome = (
                f"dead (needs a new authorization) in {len(died)}/{len(rs)} runs, median after "
                f"{med([r['died_after_h'] for r in died]):.1f} h ({cause})"
            )
        else:
            outcome = "alive in every run"
        out.append(
            f"| {k} | {fmt(refreshes, 0)} | {refreshes / ideal:.2f}x "
            f"| {fmt(med([r['restart_refreshes'] for r in rs]), 0)} "
            f"| {fmt(med([r['asks'] for r in rs]), 0)} "
            f"| {fmt(med([r['failed_asks'] for r in rs]), 0)} "
            f"| {fmt(med([r['short_tokens'] for r in rs]), 0)} "
            f"| {codes_txt} | {outcome} |"
        )
    if by["oauth2session"] and by["open115"]:
        out += [
            "",
            (
                f"Within a run, OAuth2Session sent {ratio_vs('oauth2session', 'refreshes'):.2f}x "
                f"and the naive keeper {ratio_vs('naive', 'refreshes'):.2f}x open115's refresh "
                f"requests (medians over {len(by['open115'])} runs)."
            ),
        ]
    out += [
        "",
        (
            "Requests at restart count the refresh requests sent while an entry was set up "
            "again; open115 sends one only when the stored token is already inside its margin. "
            "OAuth2Session refreshes only when a consumer asks within 20 s of expiry: it needs "
            "fewer refreshes than the ideal because it uses each token to its end, but it hands "
            "out tokens with less validity than the consumer asked for, and the consumer that "
            "trips the refresh waits for it. The naive keeper refreshes whenever a consumer "
            "finds the token too short, without a lock: concurrent consumers send the same "
            "refresh token twice, and 115 answers 40140120 (already used: the token is dead) "
            "or 40140117 (refreshing too often)."
        ),
    ]
    return out


def burst_section(rows: list[dict[str, Any]]) -> list[str]:
    """Concurrent askers at expiry."""
    from . import bench as b

    out = [
        "## Bursts at expiry",
        "",
        (
            "N consumers ask at once (min_validity 60 s) when the token has "
            f"{b.BURST_LEFT} s left; wall time over real loopback HTTP, the slowest asker's "
            "wait from its call to its answer."
        ),
        "",
        "| askers | keeper | refresh requests | slowest wait (ms) | failed asks |",
        "| ---: | --- | ---: | ---: | ---: |",
    ]
    bursts = [r for r in rows if r["kind"] == "burst"]
    for n in b.BURSTS:
        for k in b.KEEPERS:
            rs = [r for r in bursts if r["askers"] == n and r["keeper"] == k]
            if rs:
                out.append(
                    f"| {n} | {k} | {fmt(med([r['refreshes'] for r in rs]), 0)} "
                    f"| {fmt(med([r['slowest_ms'] for r in rs]), 2)} "
                    f"| {fmt(med([r['failures'] for r in rs]), 0)} |"
                )
    out += [
        "",
        (
            "open115 and OAuth2Session both send one request however many ask. open115's askers "
            "wait a little longer for it: before the new token is handed out, open115 writes the "
            "rotated pair to disk (a crash cannot lose it: the old refresh token is void), "
            "updates its entities and fires `open115_token_refreshed`; OAuth2Session leaves the "
            "write to Home Assistant's delayed save. Without a lock, every naive asker sends the "
            "same refresh token: the first one wins, the others are refused (40140120, 40140117) "
            "and the token is dead."
        ),
    ]
    return out


def hot_section(rows: list[dict[str, Any]]) -> list[str]:
    """A valid token, asked for again and again."""
    from . import bench as b

    hot = [r for r in rows if r["kind"] == "hot"]
    if not hot:
        return []
    ratio50 = med([r["oauth2session_p50_us"] / r["open115_p50_us"] for r in hot])
    ratio99 = med([r["oauth2session_p99_us"] / r["open115_p99_us"] for r in hot])
    ours = (
        f"| open115 `async_get_access_token` | {fmt(med([r['open115_p50_us'] for r in hot]), 2)} "
        f"| {fmt(med([r['open115_p99_us'] for r in hot]), 2)} |"
    )
    theirs = (
        "| `OAuth2Session.async_ensure_token_valid` + token read "
        f"| {fmt(med([r['oauth2session_p50_us'] for r in hot]), 2)} "
        f"| {fmt(med([r['oauth2session_p99_us'] for r in hot]), 2)} |"
    )
    return [
        "## Hot path: a valid token",
        "",
        (
            f"{b.HOT_CALLS} sequential awaited calls per run after 1000 warm-up calls, the two "
            "kinds alternating in blocks within a run; microseconds per call."
        ),
        "",
        "| call | p50 (us) | p99 (us) |",
        "| --- | ---: | ---: |",
        ours,
        theirs,
        "",
        (
            f"OAuth2Session / open115 within a run: p50 {ratio50:.2f}x, p99 {ratio99:.2f}x. "
            f"Refresh requests during the hot path: {int(max(r['requests'] for r in hot))}."
        ),
    ]


def setup_section(rows: list[dict[str, Any]]) -> list[str]:
    """Setting up an entry whose stored token is valid."""
    setup = [r for r in rows if r["kind"] == "setup"]
    if not setup:
        return []
    return [
        "## Setup with a stored valid token",
        "",
        (
            "From `async_setup` of the entry until Home Assistant is idle (its six entities "
            "included); the first setup, which imports the integration, is not counted."
        ),
        "",
        "| time to set up (ms) | refresh requests (ideal 0) |",
        "| ---: | ---: |",
        f"| {fmt(med([r['ms'] for r in setup]), 2)} | {int(max(r['requests'] for r in setup))} |",
    ]


def report(rows: list[dict[str, Any]]) -> str:
    """docs/benchmarks.md."""
    m = machine()
    runs = len({r["run"] for r in rows if r["kind"] == "economy"}) or 1
    out = [
        "# Benchmarks",
        "",
        (
            "Generated by `scripts/bench` (tests/bench/); do not edit by hand. Every figure is "
            f"the median of {runs} runs; every ratio is taken within one run, then the median "
            "over the runs. Measured, never asserted."
        ),
        "",
        (
            f"Machine: {m['cpu']}, {m['cores']} cores (load average {m['load']} at the end), "
            f"{m['os']}; Python {m['python']}, Home Assistant {m['home_assistant']}; {m['date']}."
        ),
        "",
        *economy_section(rows),
        "",
        *burst_section(rows),
        "",
        *hot_section(rows),
        "",
        *setup_section(rows),
        "",
        *account_section(rows),
        "",
        *backup_section(rows),
    ]
    return "\n".join(out).rstrip("\n") + "\n"


def backup_only(quick: bool) -> int:
    """Run bench_backup.py only; replace the backup section of docs/benchmarks.md."""
    from .bench_backup import run_backup_bench

    section = backup_section(run_backup_bench(quick))
    print("\n".join(section))
    if not quick:
        target = ROOT / "docs" / "benchmarks.md"
        target.write_text(splice(target.read_text(encoding="utf-8"), section), encoding="utf-8")
        print(f"wrote the backup section of {target}")
    return 0


def main() -> int:
    """Run the scenarios, write docs/benchmarks.md."""
    args = sys.argv[1:]
    quick = "--quick" in args
    if "--backup" in args:  # the backup benchmark alone: its section of the report
        return backup_only(quick)
    if quick:
        args = [a for a in args if a != "--quick"]
        os.environ.setdefault("OPEN115_BENCH_RUNS", "1")
        os.environ.setdefault("OPEN115_BENCH_DAYS", "2")
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results.jsonl"
        os.environ[RESULTS_ENV] = str(results)
        base = [
            *map(str, SCENARIOS),
            "-q",
            "-p",
            "no:cacheprovider",
            "-x",
            "--no-header",
            "-W",
            "ignore",
        ]
        code = pytest.main([*base, *args])
        if code != 0:
            return int(code)
        if not any(a.startswith("-k") for a in args):
            from .bench_backup import run_backup_bench

            run_backup_bench(quick)
        rows = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines()]
    text = report(rows)
    print(text)
    if quick:  # a smoke run: the published figures stay those of a full run
        print("--quick: docs/benchmarks.md left as it is")
        return 0
    target = ROOT / "docs" / "benchmarks.md"
    target.parent.mkdir(exist_ok=True)
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
