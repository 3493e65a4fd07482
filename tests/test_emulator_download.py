"""The emulator's download links (tests/emulator/download.py): bound to the User-Agent that
asked, expiring, ranged (206), and a download cut short."""

import os

import aiohttp
import pytest

from .api_fixtures import FakeClock
from .conftest import USER_ID
from .emulator import CODE_NO_SUCH_FILE, DOWNURL_PATH, Emulator115
from .emulator_requests import Proapi

DATA = os.urandom(3 * 256 * 1024 + 5)
UA = "open115-test/1.0"


@pytest.fixture
async def api(session: aiohttp.ClientSession, base_url: str, emu: Emulator115) -> Proapi:
    return Proapi(session, base_url, emu, emu.authorize(USER_ID))


async def test_download_link_is_bound_to_the_user_agent_and_serves_ranges(
    session: aiohttp.ClientSession, emu: Emulator115, api: Proapi, clock: FakeClock
) -> None:
    node = emu.add_file(USER_ID, "0", "a b.tar", DATA)
    answer = await api.post(DOWNURL_PATH, {"pick_code": node.pick_code}, {"User-Agent": UA})
    entry = answer["data"][node.file_id]
    assert entry["file_name"] == "a b.tar"
    assert (entry["file_size"], entry["pick_code"]) == (len(DATA), node.pick_code)
    assert entry["sha1"] == node.sha1
    url = entry["url"]["url"]
    assert url in emu.secrets_issued()
    async with session.get(url, headers={"User-Agent": UA}) as response:
        assert response.status == 200
        assert await response.read() == DATA
    async with session.get(url, headers={"User-Agent": "other"}) as response:
        assert response.status == 403
    async with session.get(url, headers={"User-Agent": UA, "Range": "bytes=10-19"}) as response:
        assert response.status == 206
        assert response.headers["Content-Range"] == f"bytes 10-19/{len(DATA)}"
        assert await response.read() == DATA[10:20]
    async with session.get(url, headers={"User-Agent": UA, "Range": "bytes=-7"}) as response:
        assert (response.status, await response.read()) == (206, DATA[-7:])
    async with session.get(
        url, headers={"User-Agent": UA, "Range": f"bytes={len(DATA)}-"}
    ) as response:
        assert response.status == 416
    clock.advance(emu.download_link_lifetime)
    async with session.get(url, headers={"User-Agent": UA}) as response:
        assert response.status == 403
    unknown = await api.post(DOWNURL_PATH, {"pick_code": "nope"}, {"User-Agent": UA})
    assert (unknown["state"], unknown["code"]) == (False, CODE_NO_SUCH_FILE)


async def test_a_download_cut_short(
    session: aiohttp.ClientSession, emu: Emulator115, api: Proapi
) -> None:
    node = emu.add_file(USER_ID, "0", "a.tar", DATA)
    answer = await api.post(DOWNURL_PATH, {"pick_code": node.pick_code}, {"User-Agent": UA})
    emu.download_cuts.append(300 * 1024)
    async with session.get(
        answer["data"][node.file_id]["url"]["url"], headers={"User-Agent": UA}
    ) as response:
        assert response.status == 200
        assert response.content_length == len(DATA)
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()


async def test_corrupted_bytes_are_served_as_they_are(
    session: aiohttp.ClientSession, emu: Emulator115, api: Proapi
) -> None:
    node = emu.add_file(USER_ID, "0", "a.tar", DATA)
    emu.blobs[node.sha1].write_bytes(bytes(len(DATA)))  # same size, other bytes
    answer = await api.post(DOWNURL_PATH, {"pick_code": node.pick_code}, {"User-Agent": UA})
    assert answer["data"][node.file_id]["sha1"] == node.sha1  # 115 still says the old SHA1
    async with session.get(
        answer["data"][node.file_id]["url"]["url"], headers={"User-Agent": UA}
    ) as response:
        assert await response.read() == bytes(len(DATA))
