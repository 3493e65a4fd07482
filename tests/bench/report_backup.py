"""The report's section on the backup location (the runs of bench_backup.py)."""

import os
from typing import Any

from .numbers import fmt, med

SECTION = "## Backups: upload and restore over loopback"
MIB = 1024 * 1024


def backup_section(rows: list[dict[str, Any]]) -> list[str]:
    """Throughput against the baselines of the same run, memory, requests per backup."""
    runs = [r for r in rows if r["kind"] == "backup"]
    memory = [r for r in rows if r["kind"] == "backup_memory"]
    if not runs:
        return []
    part = runs[0]["part_size"]
    out = [
        SECTION,
        "",
        (
            "`Open115Client.upload` / `download` (what the backup agent calls) against the 115 "
            "emulator in a child process on loopback; the backup a file of random bytes read in "
            "1 MiB chunks through a thread, as Home Assistant reads a local backup; parts of "
            f"{part // MIB} MiB. Baselines in the same run, alternating with ours: one SHA1 pass "
            "over the file (the same reads), one plain aiohttp PUT of the file streamed from "
            "disk to the same emulator (a signed PutObject without 115's callback), one plain "
            "aiohttp GET of the file's download link. Upload = SHA1 pass, upload/init, the sign "
            "check's range (read from the start of a new opening), get_token, then the parts "
            "with the bytes hashed again and checked before the object is completed; download "
            "= downurl, then the GET with its SHA1 checked. Ratios within a run, medians over "
            f"{len({r['run'] for r in runs})} runs."
        ),
        "",
        (
            "| backup | SHA1 pass (s) | plain PUT (s) | upload (s) | upload / (SHA1 + PUT) "
            "| plain GET (s) | download (s) | download / GET | download / max(GET, SHA1 pass) "
            "| proapi requests | OSS requests |"
        ),
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for size in sorted({r["size"] for r in runs}):
        rs = [r for r in runs if r["size"] == size]
        up_ratio = med([r["upload_s"] / (r["sha1_s"] + r["put_s"]) for r in rs])
        down_ratio = med([r["download_s"] / r["get_s"] for r in rs])
        # No verified download can beat the slower of receiving the bytes and hashing them.
        floor_ratio = med([r["download_s"] / max(r["get_s"], r["sha1_s"]) for r in rs])
        out.append(
            f"| {size // MIB} MiB | {fmt(med([r['sha1_s'] for r in rs]), 2)} "
            f"| {fmt(med([r['put_s'] for r in rs]), 2)} | {fmt(med([r['upload_s'] for r in rs]), 2)} "
            f"| {up_ratio:.2f}x | {fmt(med([r['get_s'] for r in rs]), 2)} "
            f"| {fmt(med([r['download_s'] for r in rs]), 2)} | {down_ratio:.2f}x "
            f"| {floor_ratio:.2f}x "
            f"| {fmt(med([r['proapi'] for r in rs]), 0)} | {fmt(med([r['oss'] for r in rs]), 0)} |"
        )
    if memory:
        out += [
            "",
            "| backup | upload: peak memory growth | download: peak memory growth |",
            "| ---: | ---: | ---: |",
        ]
        for r in sorted(memory, key=lambda r: r["size"]):
            out.append(
                f"| {r['size'] // MIB} MiB | {r['upload_peak'] / MIB:.1f} MiB "
                f"({r['upload_peak'] / part:.2f} parts) | {r['download_peak'] / MIB:.1f} MiB |"
            )
    try:
        load = f"{os.getloadavg()[0]:.1f}"
    except OSError:
        load = "unknown"
    out += [
        "",
        (
            f"Measured on {os.cpu_count()} cores (load average {load} when reported: other "
            "work shared them). Where the time goes: a verified download hashes every byte, "
            "and over loopback SHA1 is slower than the GET itself (compare the SHA1 pass with "
            "the plain GET), so no download that checks 115's SHA1 can come within 1.3x of a "
            "plain GET here: its floor is the slower of the two, and the column "
            "download / max(GET, SHA1 pass) says how close open115 comes to it. open115 hashes "
            "in a worker thread in 4 MiB batches, overlapping with receiving when a core is "
            "free. Over a real connection to 115's CDN (tens of MB/s) the hash costs next to "
            "nothing. An upload hashes "
            "the bytes twice (before upload/init, and again as they are sent, to check them), "
            "reads the sign check's range, and sends parts one at a time (the next is read "
            "meanwhile), each waiting for OSS's answer; the emulator does the same work per byte "
            "for ours and for the plain PUT (it writes the bytes to disk with their MD5 and "
            "SHA1). The emulator also offers `PUT /_sink` (disk only); the signed PutObject is "
            "used here because it costs the server what our upload costs it."
        ),
        "",
        (
            "Requests are the tar's: the backup agent adds its metadata file (upload/init, "
            "get_token, one PutObject) and, for the first backup, finding or making the folder. "
            "Memory is tracemalloc's peak over the start of the client's process during one "
            "upload or download (not counting the emulator). The goals were upload within 2.5x "
            "of (SHA1 pass + plain PUT), download within 1.3x of a plain GET, memory growth "
            "within two parts."
        ),
    ]
    return out


def splice(document: str, section: list[str]) -> str:
    """`document` with its backup section replaced by (or followed by) `section`."""
    text = "\n".join(section).rstrip("\n") + "\n"
    start = document.find(SECTION)
    if start < 0:
        return document.rstrip("\n") + "\n\n" + text
    end = document.find("\n## ", start + len(SECTION))
    rest = "" if end < 0 else document[end:]
    return document[:start] + text + rest
