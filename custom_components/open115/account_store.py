"""What the account coordinator keeps on disk, per entry: its last read and the tasks seen.

The tasks seen (by info hash and add time: running, finished or failed) make sure a finished or
failed download is announced once, also across restarts. The last read lets a restart show the
account without a request while it is fresh. Task links are never written (they may hold a
tracker's passkey): a stored task has none, and an empty `url` when read back.
"""

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Final

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from .account_policy import Seen, state_of, task_key
from .api import Account
from .api.offline import OfflineQuota, OfflineTask, TaskStatus
from .const import DOMAIN

STORE_VERSION: Final = 1


@dataclass(slots=True)
class StoredRead:
    """The account coordinator's last successful read, and when each part was read."""

    account: Account
    account_at: datetime
    quota: OfflineQuota
    quota_at: datetime
    tasks: tuple[OfflineTask, ...]
    tasks_at: datetime


@dataclass(slots=True)
class Stored:
    """Everything on disk: `seen` is None until the first task list was taken as it is."""

    seen: Seen | None = None  # task key -> "running" / "finished" / "failed", oldest first
    read: StoredRead | None = field(default=None)


def account_store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, Any]]:
    """The store of an entry's account."""
    return Store(hass, STORE_VERSION, f"{DOMAIN}.{entry_id}.account")


async def async_load(store: Store[dict[str, Any]]) -> Stored:
    """What is on disk; a missing or unreadable part is None.

    Written before tasks were keyed by add time (`reported`: info hash -> end state), the
    tasks seen are those of the last read (each was reported, or running, then).
    """
    raw = await store.async_load()
    if not isinstance(raw, dict):
        return Stored()
    read = _read_from(raw.get("read"))
    seen = raw.get("seen")
    if isinstance(seen, dict):
        return Stored(seen={str(k): str(v) for k, v in seen.items()}, read=read)
    if isinstance(raw.get("reported"), dict):
        tasks = read.tasks if read is not None else ()
        return Stored(seen={task_key(t): state_of(t) for t in reversed(tasks)}, read=read)
    return Stored(read=read)


def stored_data(stored: Stored) -> dict[str, Any]:
    """What is written to disk."""
    return {"seen": stored.seen, "read": _read_to(stored.read)}


async def async_save(store: Store[dict[str, Any]], stored: Stored) -> None:
    """Write it now (before events are fired, so a restart never repeats them)."""
    await store.async_save(stored_data(stored))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _read_to(read: StoredRead | None) -> dict[str, Any] | None:
    if read is None:
        return None
    account = asdict(read.account)
    account["vip_expire"] = _iso(read.account.vip_expire)
    return {
        "account": account,
        "account_at": _iso(read.account_at),
        "quota": asdict(read.quota),
        "quota_at": _iso(read.quota_at),
        "tasks": [
            {
                **{key: value for key, value in asdict(task).items() if key != "url"},
                "status": int(task.status),
                "add_time": _iso(task.add_time),
                "last_update": _iso(task.last_update),
            }
            for task in read.tasks
        ],
        "tasks_at": _iso(read.tasks_at),
    }


def _read_from(raw: Any) -> StoredRead | None:
    """The stored read, or None when anything in it is not as written (a newer format, damage)."""
    if not isinstance(raw, dict):
        return None
    try:
        account = Account(**{**raw["account"], "vip_expire": _time(raw["account"]["vip_expire"])})
        quota = OfflineQuota(**raw["quota"])
        tasks = tuple(
            OfflineTask(
                **{
                    **task,
                    "url": "",
                    # Written by a version that named a nameless task after its link.
                    "name": task["info_hash"] if task["name"] == task.get("url") else task["name"],
                    "status": TaskStatus(task["status"]),
                    "add_time": _time(task["add_time"]),
                    "last_update": _time(task["last_update"]),
                }
            )
            for task in raw["tasks"]
        )
        times = [_time(raw[key]) for key in ("account_at", "quota_at", "tasks_at")]
    except KeyError, TypeError, ValueError:
        return None
    account_at, quota_at, tasks_at = times
    if account_at is None or quota_at is None or tasks_at is None:
        return None
    return StoredRead(account, account_at, quota, quota_at, tasks, tasks_at)
