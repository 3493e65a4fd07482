"""The report's section on the account's proapi requests (the scenarios of bench_account.py)."""

from typing import Any

from .numbers import fmt, med


def account_section(rows: list[dict[str, Any]]) -> list[str]:
    """proapi requests a day for the account's data, idle and with cloud downloads."""
    from . import bench_account as a

    acc = [r for r in rows if r["kind"] == "account"]
    if not acc:
        return []
    labels = {
        "idle": "idle",
        "idle_restarts": f"idle, {a.RESTARTS_PER_DAY} restarts a day",
        "downloads": f"{a.DOWNLOADS_PER_DAY} cloud downloads a day",
        "rate_limited": f"idle, proapi rate limited for {a.LIMITED_HOURS} h",
        "stalled": "idle, one task stalled at 0 %",
        "forty_tasks": f"idle, {a.BACKLOG_TASKS} ended tasks on the list",
    }
    out = [
        f"## Account and cloud downloads: proapi requests, {a.DAYS} simulated days",
        "",
        (
            "One entry with its account data (storage, VIP, the cloud-download quota and task "
            "list) on Home Assistant's frozen clock, real loopback HTTP to the 115 emulator; "
            "counted from the emulator's request log, refresh requests beside them. Downloads: "
            f"{a.DOWNLOADS_PER_DAY} links a day at random times, every other one added with "
            "`open115.add_cloud_download` and the others in 115's own app; each runs "
            f"{a.DOWNLOAD_SECONDS[0] // 60} min to {a.DOWNLOAD_SECONDS[1] // 3600} h, one in "
            f"{a.FAIL_ONE_IN} fails. Budget (the issue): at most 150 proapi requests a day "
            "idle; `finished` within 2 min of the task completing."
        ),
        "",
        (
            "| scenario | proapi requests / day | busiest day | user_info / task list / quota "
            "/ add (per day) | refresh requests / day |"
        ),
        "| --- | ---: | ---: | --- | ---: |",
    ]
    for scenario in a.SCENARIOS:
        rs = [r for r in acc if r["scenario"] == scenario]
        if not rs:
            continue
        days = rs[0]["days"]

        def per_day(path: str, rs: list[dict[str, Any]] = rs, days: int = days) -> str:
            return fmt(med([r["proapi_by_path"].get(path, 0) / days for r in rs]), 1)

        paths = " / ".join(
            per_day(p) for p in ("info", "get_task_list", "get_quota_info", "add_task_urls")
        )
        out.append(
            f"| {labels[scenario]} | {fmt(med([r['proapi'] / days for r in rs]), 1)} "
            f"| {fmt(med([r['max_day'] for r in rs]), 0)} | {paths} "
            f"| {fmt(med([r['refreshes'] / days for r in rs]), 1)} |"
        )
    dl = [r for r in acc if r["scenario"] == "downloads"]
    if dl:
        from custom_components.open115.const import IDLE_TASKS_INTERVAL

        idle_min = int(IDLE_TASKS_INTERVAL.total_seconds() // 60)
        seen = [x for r in dl for x in r["latencies"]]
        unseen = [x for r in dl for x in r["unseen_latencies"]]
        adds = [x for r in dl for x in r["add_to_read"]]
        app_adds = [x for r in dl for x in r["app_add_to_read"]]
        out += [
            "",
            (
                f"Downloads: {sum(r['downloads'] for r in dl)} tasks over {len(dl)} runs; "
                f"{sum(r['events'] for r in dl)} events fired, "
                f"{sum(r['duplicate_events'] for r in dl)} twice, "
                f"{sum(r['missed_events'] for r in dl)} missed. From the end of a task that a "
                f"read had seen running to its event ({len(seen)} tasks): median "
                f"{fmt(med(seen), 0)} s, slowest {fmt(max(seen, default=0), 0)} s. "
                f"{len(unseen)} tasks were added in 115's app and ended before any read saw "
                f"them; the next idle read (every {idle_min} min) found them ended"
                + (
                    f", {fmt(med(unseen), 0)} s after their end (median; slowest "
                    f"{fmt(max(unseen), 0)} s). "
                    if unseen
                    else ". "
                )
                + "After an add with the action, the task "
                f"list was read {fmt(med(adds), 0)} s later (median; slowest "
                f"{fmt(max(adds, default=0), 0)} s); a task added in 115's app was seen by the "
                f"next idle read, {fmt(med(app_adds) / 60, 0)} min later (median)."
            ),
        ]
    limited = [r for r in acc if r["scenario"] == "rate_limited"]
    if limited:
        out += [
            "",
            (
                f"Rate limited: while proapi answered 770004 for {a.LIMITED_HOURS} h, the "
                f"coordinator sent {fmt(med([r['limited_requests'] for r in limited]), 0)} "
                "requests (median), backing off, and resumed its schedule afterwards."
            ),
        ]
    restarts = [r for r in acc if r["scenario"] == "idle_restarts"]
    idle = {r["run"]: r["proapi"] for r in acc if r["scenario"] == "idle"}
    if restarts and idle:
        extra = med([r["proapi"] - idle[r["run"]] for r in restarts if r["run"] in idle])
        out += [
            "",
            (
                f"Restarts: {fmt(med([r['restarts'] for r in restarts]), 0)} per run cost "
                f"{fmt(extra, 0)} proapi requests more than the same idle days without them "
                "(median within a run): a restart shows the stored read while it is fresh."
            ),
        ]
    return out
