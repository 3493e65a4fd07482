"""The emulator's benchmark sink (tests/emulator/sink.py): a plain PUT, written and dropped."""

import aiohttp
import pytest

from .emulator import SINK_PATH, Emulator115

DATA = bytes(range(256)) * 4096 + b"end"


@pytest.mark.parametrize("query", ["", "?discard=1"])
async def test_the_benchmark_sink_takes_a_plain_put(
    session: aiohttp.ClientSession, base_url: str, emu: Emulator115, query: str
) -> None:
    async with session.put(f"{base_url}{SINK_PATH}{query}", data=DATA) as response:
        assert (await response.json())["bytes"] == len(DATA)
    assert emu.count(SINK_PATH) == 1
    assert [p.name for p in emu.storage_dir().iterdir()] == []
