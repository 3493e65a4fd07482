"""The backup location's benchmark: upload and restore throughput, memory, requests per backup.

Plain asyncio (no Home Assistant test harness, whose debug event loop would slow everything):
the client of the backup agent (`Open115Client.upload` / `download`, what the agent calls)
against the 115 emulator served by a child process on loopback, so that the emulator's CPU and
memory are not counted as ours. The backup is a file of random bytes read in 1 MiB chunks
through a thread, as Home Assistant's `open_stream` reads a local backup. Baselines in the same
run, alternating with ours: one SHA1 pass over the file (hashlib, the same reads); one plain
aiohttp PUT of the file (streamed from disk) to the same emulator (a signed PutObject without
115's callback: the same server work); one plain aiohttp GET of the file's download link.
Each run's file differs in its first bytes, so 115 never knows it (no instant upload).
Memory: tracemalloc's peak over the start, in a separate untimed pass.

`python -m tests.bench.bench_backup [--quick]` prints the rows; tests/bench/__main__.py runs it
for docs/benchmarks.md.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
import hashlib
import json
import multiprocessing
import os
from pathlib import Path
import sys
import tempfile
import time
import tracemalloc
from typing import Any

import aiohttp

from custom_components.open115.api import Open115Client, StaticAccessToken
from custom_components.open115.api.oss import endpoint_host, sign_v4
from custom_components.open115.api.upload import PART_SIZE

MIB = 1024 * 1024
SIZES = (100 * MIB, 1024 * MIB)
READ = MIB  # Home Assistant reads a local backup in 1 MiB chunks (backup/manager.py)
USER_AGENT = "open115-bench/1"
RESULTS_ENV = "OPEN115_BENCH_RESULTS"


def _serve(conn: Any) -> None:  # pragma: no cover - the child process
    """Run the emulator; send its base URL and an access token through `conn`."""
    from tests.emulator import Emulator115, RunningEmulator

    async def run() -> None:
        emu = Emulator115()
        emu.add_account(310000001, "bench")
        grant = emu.authorize(310000001)
        token = emu.issue_access_token(grant, 86400)
        running = await RunningEmulator(emu).start()
        conn.send((running.base_url, token))
        await asyncio.Event().wait()  # until the parent kills the process

    asyncio.run(run())


def _reader(path: Path) -> Callable[[], Any]:
    """open_stream: a new reading of the file in 1 MiB chunks, each read in a thread."""

    async def open_stream() -> AsyncIterator[bytes]:
        async def chunks() -> AsyncIterator[bytes]:
            with path.open("rb") as stream:
                while chunk := await asyncio.to_thread(stream.read, READ):
                    yield chunk

        return chunks()

    return open_stream


def _make_file(path: Path, size: int) -> None:
    with path.open("wb") as out:
        left = size
        while left:
            block = os.urandom(min(left, 16 * MIB))
            out.write(block)
            left -= len(block)


def _mark(path: Path, run: int) -> None:
    """Make this run's file unknown to 115: new first bytes."""
    with path.open("r+b") as stream:
        stream.write(os.urandom(32) + run.to_bytes(8, "big"))


async def _sha1_pass(path: Path) -> None:
    sha1 = hashlib.sha1(usedforsecurity=False)
    async for chunk in await _reader(path)():
        sha1.update(chunk)


async def _plain_put(
    session: aiohttp.ClientSession,
    client: Open115Client,
    base: str,
    path: Path,
    size: int,
    key: str,
) -> None:
    creds = await client.upload_token()
    headers = {"Content-Type": "application/octet-stream"}
    sign_v4(
        method="PUT",
        bucket="fhnfile",
        key=key,
        query={},
        headers=headers,
        credentials=creds,
        now=datetime.now(UTC),
    )
    headers["Host"] = f"fhnfile.{endpoint_host(creds.endpoint)}"
    headers["Content-Length"] = str(size)

    async def body() -> AsyncIterator[bytes]:
        async for chunk in await _reader(path)():
            yield chunk

    async with session.put(f"{base}/{key}", data=body(), headers=headers) as resp:
        await resp.read()
        assert resp.status == 200, resp.status


async def _plain_get(session: aiohttp.ClientSession, url: str) -> int:
    got = 0
    async with session.get(url, headers={"User-Agent": USER_AGENT}) as resp:
        async for chunk in resp.content.iter_chunked(MIB):
            got += len(chunk)
    return got


async def _ours_upload(client: Open115Client, path: Path, name: str) -> dict[str, Any]:
    before = client.proapi_requests
    stored = await client.upload(folder_id="0", file_name=name, open_stream=_reader(path))
    assert not stored.instant
    return {
        "file": stored,
        "proapi": client.proapi_requests - before,
        "oss": stored.oss_requests,
    }


async def _ours_download(client: Open115Client, pick_code: str) -> int:
    link = await client.download_link(pick_code, USER_AGENT)
    got = 0
    async for chunk in client.download(link):
        got += len(chunk)
    return got


async def _timed(coro: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = await coro
    return time.perf_counter() - start, result


async def _peak(coro: Any) -> tuple[int, Any]:
    """Peak traced memory growth while `coro` runs (bytes)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    result = await coro
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak, result


async def bench(sizes: tuple[int, ...], runs: int) -> list[dict[str, Any]]:
    """Every size, `runs` alternating runs of ours and the baselines, then one memory pass."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child,), daemon=True)
    proc.start()
    rows: list[dict[str, Any]] = []
    try:
        base, token = parent.recv()
        os.environ["OPEN115_BASE_URL"] = base
        async with aiohttp.ClientSession() as session:
            client = Open115Client(session, base_url=base, auth=StaticAccessToken(token))
            with tempfile.TemporaryDirectory() as tmp:
                for size in sizes:
                    path = Path(tmp) / f"backup-{size}.tar"
                    _make_file(path, size)
                    for run in range(runs):
                        _mark(path, run * 2)
                        sha1_s, _ = await _timed(_sha1_pass(path))
                        put_s, _ = await _timed(
                            _plain_put(session, client, base, path, size, f"plain/{size}/{run}")
                        )
                        up_s, up = await _timed(_ours_upload(client, path, f"b{size}-{run}.tar"))
                        link = await client.download_link(up["file"].pick_code, USER_AGENT)
                        get_s, got = await _timed(_plain_get(session, link.url))
                        assert got == size
                        down_s, got = await _timed(_ours_download(client, up["file"].pick_code))
                        assert got == size
                        rows.append(
                            {
                                "kind": "backup",
                                "size": size,
                                "run": run,
                                "sha1_s": sha1_s,
                                "put_s": put_s,
                                "upload_s": up_s,
                                "get_s": get_s,
                                "download_s": down_s,
                                "proapi": up["proapi"],
                                "oss": up["oss"],
                                "part_size": PART_SIZE,
                            }
                        )
                        print(json.dumps(rows[-1]), file=sys.stderr)
                    _mark(path, 999)
                    up_peak, up = await _peak(_ours_upload(client, path, f"m{size}.tar"))
                    down_peak, _ = await _peak(_ours_download(client, up["file"].pick_code))
                    rows.append(
                        {
                            "kind": "backup_memory",
                            "size": size,
                            "upload_peak": up_peak,
                            "download_peak": down_peak,
                            "part_size": PART_SIZE,
                        }
                    )
                    print(json.dumps(rows[-1]), file=sys.stderr)
                    path.unlink()
    finally:
        proc.kill()
        proc.join()
    return rows


def run_backup_bench(quick: bool = False) -> list[dict[str, Any]]:
    """The rows (appended to OPEN115_BENCH_RESULTS when set)."""
    runs = int(os.environ.get("OPEN115_BENCH_BACKUP_RUNS", "1" if quick else "3"))
    sizes = (SIZES[0],) if quick else SIZES
    rows = asyncio.run(bench(sizes, runs))
    if results := os.environ.get(RESULTS_ENV):
        with Path(results).open("a", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row) + "\n")
    return rows


if __name__ == "__main__":
    for row in run_backup_bench("--quick" in sys.argv):
        print(json.dumps(row))
