"""What the account coordinator keeps on disk (account_store.py): written, read, migrated."""

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from homeassistant.core import HomeAssistant
import pytest

from custom_components.open115.account_store import (
    Stored,
    StoredRead,
    account_store,
    async_load,
    async_save,
)
from custom_components.open115.api import Account, OfflineQuota, OfflineTask, TaskStatus
from custom_components.open115.const import DOMAIN
from custom_components.open115.sensor import _free

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
LINK = "https://me:pw@t.example/dl/0123456789abcdef/f.torrent"
TASK = OfflineTask(
    info_hash="a" * 40,
    name="f",
    size=1,
    status=TaskStatus.DONE,
    status_code=2,
    percent_done=100.0,
    file_id="9",
    folder_id="0",
    url=LINK,
    add_time=NOW,
    last_update=None,
)
READ = StoredRead(Account("1", "u", vip_expire=NOW), NOW, OfflineQuota(3, 1, 2), NOW, (TASK,), NOW)
KEY = f"{DOMAIN}.entry.account"


async def test_written_without_links_and_read_back(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    store = account_store(hass, "entry")
    await async_save(store, Stored({"k": "finished"}, READ))
    assert "t.example" not in str(hass_storage[KEY])
    loaded = await async_load(store)
    assert loaded.seen == {"k": "finished"}
    assert loaded.read is not None
    assert loaded.read.tasks == (replace(TASK, url=""),)
    assert loaded.read.account == READ.account


@pytest.mark.parametrize(
    ("data", "seen", "has_read"),
    [
        (None, None, False),
        ("garbage", None, False),
        ({"seen": None, "read": None}, None, False),
        ({"reported": {}, "read": None}, {}, False),  # an older version, nothing read
        ({"read": {"account": {}}}, None, False),  # damaged: missing keys
        ({"read": "x"}, None, False),
    ],
)
async def test_unreadable_parts_are_none(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    data: Any,
    seen: dict[str, str] | None,
    has_read: bool,
) -> None:
    if data is not None:
        hass_storage[KEY] = {"version": 1, "minor_version": 1, "key": KEY, "data": data}
    loaded = await async_load(account_store(hass, "entry"))
    assert loaded.seen == seen
    assert (loaded.read is not None) == has_read


@pytest.mark.parametrize("broken", ["account_at", "tasks_at"])
async def test_a_read_with_a_bad_time_is_dropped(
    hass: HomeAssistant, hass_storage: dict[str, Any], broken: str
) -> None:
    store = account_store(hass, "entry")
    await async_save(store, Stored({}, READ))
    hass_storage[KEY]["data"]["read"][broken] = "not a time"
    assert (await async_load(store)).read is None


async def test_an_older_version_is_migrated_from_its_last_read(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """Keyed by info hash alone, a nameless task named after its link: taken from the read."""
    store = account_store(hass, "entry")
    await async_save(store, Stored(None, READ))
    data = hass_storage[KEY]["data"]
    data["read"]["tasks"][0] |= {"url": LINK, "name": LINK}
    hass_storage[KEY]["data"] = {"reported": {"a" * 40: "finished"}, "read": data["read"]}
    loaded = await async_load(store)
    assert loaded.seen == {f"{'a' * 40}@{int(NOW.timestamp())}": "finished"}
    assert loaded.read is not None
    assert (loaded.read.tasks[0].name, loaded.read.tasks[0].url) == ("a" * 40, "")


def test_free_storage_falls_back_to_total_minus_used() -> None:
    def data(total: int | None, used: int | None, remain: int | None) -> Any:
        account = Account("1", "u", space_total=total, space_used=used, space_remain=remain)
        return type("Data", (), {"account": account})()

    assert _free(data(10, 4, 5)) == 5
    assert _free(data(10, 4, None)) == 6
    assert _free(data(10, 14, None)) == 0
    assert _free(data(None, 4, None)) is None
