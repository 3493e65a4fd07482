"""The account and its cloud downloads: storage, VIP, the quota and the task list.

It reads 115 through the entry's client, which asks the keeper for its access token before
each request and reports a refused one itself (`auth.KeeperAuth`). It never refreshes, and its failures never touch the token's state: its own entities go
unavailable instead. It polls rarely while nothing downloads and every minute while a task
runs, and it reports each task that finishes or fails once, across restarts.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, override

from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .account_store import (
    Stored,
    StoredRead,
    account_store,
    async_load,
    async_save,
    stored_data,
)
from .api import Account, Open115Client, Open115Error
from .api.errors import Open115RateLimitError
from .api.offline import OfflineQuota, OfflineTask, TaskStatus
from .const import (
    ACCOUNT_INTERVAL,
    ACTIVE_TASKS_INTERVAL,
    CLOUD_DOWNLOAD_FAILED,
    CLOUD_DOWNLOAD_FINISHED,
    DOMAIN,
    IDLE_TASKS_INTERVAL,
    LOGGER,
    MAX_REPORTED_TASKS,
    MAX_TASK_PAGES,
    READ_RETRY_START,
    SLOW_BACKOFF_MAX,
    SLOW_BACKOFF_START,
)
from .data import Open115ConfigEntry

SAVE_DELAY: Final = 60.0  # seconds: the last read is written this late (reported tasks at once)
# A read due at most this much early still counts as due (the poll timer drifts a little).
DUE_SLACK: Final = timedelta(minutes=2)
ACTIVE: Final = frozenset({TaskStatus.ALLOCATING, TaskStatus.DOWNLOADING})
ENDED: Final = {TaskStatus.DONE: CLOUD_DOWNLOAD_FINISHED, TaskStatus.FAILED: CLOUD_DOWNLOAD_FAILED}


async def async_remove_store(hass: HomeAssistant, entry_id: str) -> None:
    """Forget an entry's last read and reported cloud downloads (the entry is removed)."""
    await account_store(hass, entry_id).async_remove()


@dataclass(frozen=True, slots=True)
class CloudDownloadEvent:
    """A task that reached `finished` or `failed` since the last read."""

    event_type: str
    task: OfflineTask


@dataclass(frozen=True, slots=True)
class AccountData:
    """What the last successful read knows; `events` are new with this read only."""

    account: Account
    quota: OfflineQuota
    tasks: tuple[OfflineTask, ...]
    events: tuple[CloudDownloadEvent, ...] = ()

    @property
    def active(self) -> int:
        """Tasks allocating or downloading now."""
        return sum(1 for task in self.tasks if task.status in ACTIVE)


class AccountCoordinator(DataUpdateCoordinator[AccountData]):
    """Reads one account's storage, VIP, quota and cloud downloads; never refreshes."""

    config_entry: Open115ConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: Open115ConfigEntry,
        client: Open115Client,
    ) -> None:
        """Prepare; the first read is `async_start`'s."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {entry.title} account",
            update_interval=IDLE_TASKS_INTERVAL,
        )
        self.client = client
        self.user_id = entry.unique_id or ""
        self._store = account_store(hass, entry.entry_id)
        self._stored = Stored()
        self._account: Account | None = None
        self._account_at: datetime | None = None
        self._quota: OfflineQuota | None = None
        self._quota_at: datetime | None = None
        self._tasks_at: datetime | None = None
        self._quota_stale = False
        self._failures = 0
        self._rate_limited = 0
        self._retry_at: datetime | None = None

    # ----- start-up -----------------------------------------------------------------------

    async def async_restore(self) -> None:
        """Take the stored read, if any, as the data (before the entities are added).

        The entities show the last known account at once, and an event of the first read
        after a restart comes from an available entity.
        """
        self._stored = await async_load(self._store)
        read = self._stored.read
        if read is not None:
            self._account, self._account_at = read.account, read.account_at
            self._quota, self._quota_at = read.quota, read.quota_at
            self._tasks_at = read.tasks_at
            self.data = AccountData(read.account, read.quota, read.tasks)

    async def async_start(self) -> None:
        """Read now, unless the stored read is fresh (then a restart sends nothing)."""
        if self.data is not None and self._tasks_at is not None:
            interval = ACTIVE_TASKS_INTERVAL if self.data.active else IDLE_TASKS_INTERVAL
            age = dt_util.utcnow() - self._tasks_at
            if timedelta(0) <= age < interval:
                # The next read when it would have been without the restart.
                self.update_interval = interval - age
                self.async_set_updated_data(self.data)
                return
        await self.async_refresh()

    # ----- reading ------------------------------------------------------------------------

    @property
    def request_count(self) -> int:
        """Open API requests the entry's client sent (diagnostics)."""
        return self.client.proapi_requests

    @override
    async def _async_update_data(self) -> AccountData:
        """Read the task list; the account and the quota when due or changed."""
        now = dt_util.utcnow()
        if self._retry_at is not None and now < self._retry_at and self._rate_limited:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="account_rate_limited",
                retry_after=(self._retry_at - now).total_seconds(),
            )
        try:
            data = await self._async_read(now)
        except Open115RateLimitError as err:
            self._rate_limited += 1
            delay = min(SLOW_BACKOFF_START * 2 ** (self._rate_limited - 1), SLOW_BACKOFF_MAX)
            self._retry_at = now + delay
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="account_rate_limited",
                retry_after=delay.total_seconds(),
            ) from err
        except (Open115Error, HomeAssistantError) as err:
            self._failures += 1
            interval = self.update_interval or IDLE_TASKS_INTERVAL
            delay = min(READ_RETRY_START * 2 ** (self._failures - 1), interval)
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="account_read_failed",
                translation_placeholders={"error": str(err)},
                retry_after=delay.total_seconds(),
            ) from err
        self._failures = self._rate_limited = 0
        self._retry_at = None
        self.update_interval = ACTIVE_TASKS_INTERVAL if data.active else IDLE_TASKS_INTERVAL
        return data

    async def _async_read(self, now: datetime) -> AccountData:
        tasks = await self._async_read_tasks()
        known = {task.info_hash for task in self.data.tasks} if self.data else set()
        events, reported = self._ended(tasks)
        if self._due(self._account_at, now) or any(
            e.event_type == CLOUD_DOWNLOAD_FINISHED for e in events
        ):
            self._account = await self.client.user_info()
            self._account_at = now
        if (
            self._quota_stale
            or self._due(self._quota_at, now)
            or any(task.info_hash not in known for task in tasks)
        ):
            self._quota = await self.client.offline_quota()
            self._quota_at = now
            self._quota_stale = False
        self._tasks_at = now
        account, quota = self._account, self._quota
        if account is None or quota is None or self._account_at is None or self._quota_at is None:
            raise UpdateFailed(  # never: the first read reads both
                translation_domain=DOMAIN,
                translation_key="account_read_failed",
                translation_placeholders={"error": "no account data"},
            )
        changed = reported != self._stored.reported
        self._stored = Stored(
            reported, StoredRead(account, self._account_at, quota, self._quota_at, tasks, now)
        )
        if changed:
            # On disk before the events fire: a restart never reports them again.
            await async_save(self._store, self._stored)
        else:
            self._store.async_delay_save(self._stored_data, SAVE_DELAY)
        return AccountData(account, quota, tasks, events)

    def _stored_data(self) -> dict[str, Any]:
        return stored_data(self._stored)

    def _due(self, last: datetime | None, now: datetime) -> bool:
        return last is None or now - last >= ACCOUNT_INTERVAL - DUE_SLACK

    async def _async_read_tasks(self) -> tuple[OfflineTask, ...]:
        """Page 1; further pages only while a task that was running is not found yet."""
        running = (
            {t.info_hash for t in self.data.tasks if t.status in ACTIVE} if self.data else set()
        )
        page = await self.client.offline_tasks()
        tasks = list(page.tasks)
        number = 1
        while number < min(page.page_count, MAX_TASK_PAGES) and running - {
            task.info_hash for task in tasks
        }:
            number += 1
            more = await self.client.offline_tasks(number)
            tasks.extend(more.tasks)
        return tuple(tasks)

    def _ended(
        self, tasks: tuple[OfflineTask, ...]
    ) -> tuple[tuple[CloudDownloadEvent, ...], dict[str, str]]:
        """The tasks that finished or failed since last reported, and what is reported then.

        The very first read (nothing stored) takes the tasks as they are, reporting none.
        """
        baseline = self._stored.reported is None
        reported = dict(self._stored.reported or {})
        events: list[CloudDownloadEvent] = []
        for task in tasks:
            ended = ENDED.get(task.status)
            if ended is None:
                reported.pop(task.info_hash, None)  # running again: report its end again
            elif reported.get(task.info_hash) != ended:
                reported.pop(task.info_hash, None)
                reported[task.info_hash] = ended  # the newest last
                if not baseline:
                    events.append(CloudDownloadEvent(ended, task))
        while len(reported) > MAX_REPORTED_TASKS:
            del reported[next(iter(reported))]
        return tuple(events), reported

    @override
    async def async_shutdown(self) -> None:
        """Stop polling; write the last read now (a reload then shows it without a request)."""
        await super().async_shutdown()
        if self._stored.read is not None:
            await async_save(self._store, self._stored)

    # ----- for the action -------------------------------------------------------------------

    async def async_read_soon(self) -> None:
        """Read the task list and the quota now (after an add), unless rate limited."""
        self._quota_stale = True
        await self.async_request_refresh()

    @callback
    def async_read_storage_soon(self) -> None:
        """Read the account's storage now (a backup was stored or deleted): one read, no polling."""
        self._account_at = None
        self.config_entry.async_create_background_task(
            self.hass, self.async_refresh(), f"{DOMAIN} storage read"
        )
