"""The account and its cloud downloads: storage, VIP, the quota and the task list.

It reads 115 through the entry's client, which asks the keeper for its access token before
each request and reports a refused one itself (`auth.KeeperAuth`). It never refreshes, and its failures never touch the token's state: its own entities go
unavailable instead. It polls rarely while nothing downloads and every minute while a task
runs, and it reports each task that finishes or fails once, across restarts.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, override

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .account_policy import (
    ACTIVE,
    ended_since,
    poll_interval,
    progress,
    rate_limited_delay,
    read_retry_delay,
    task_key,
    wants_next_page,
)
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
from .api.offline import OfflineQuota, OfflineTask
from .const import (
    ACCOUNT_INTERVAL,
    CLOUD_DOWNLOAD_FINISHED,
    DOMAIN,
    IDLE_TASKS_INTERVAL,
    LOGGER,
    MAX_TASK_PAGES,
)

SAVE_DELAY: Final = 60.0  # seconds: the last read is written this late (one with events at once)
# A read due at most this much early still counts as due (the poll timer drifts a little).
DUE_SLACK: Final = timedelta(minutes=2)


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

    # The entry only: its runtime data (data.py) holds this coordinator, not the reverse.
    config_entry: ConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
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
        self._stalled_reads = 0  # reads in a row in which no running task moved

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
            interval = poll_interval(self.data.active, 0)
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
        """Read the task list; the account and the quota when due or changed.

        A failed read is retried after a delay that doubles from the nominal intervals, also
        while a task runs (never from the shortened first interval after a restart).
        """
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
            delay = rate_limited_delay(self._rate_limited)
            self._retry_at = now + delay
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="account_rate_limited",
                retry_after=delay.total_seconds(),
            ) from err
        except (Open115Error, HomeAssistantError) as err:
            self._failures += 1
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="account_read_failed",
                translation_placeholders={"error": str(err)},
                retry_after=read_retry_delay(self._failures).total_seconds(),
            ) from err
        self._failures = self._rate_limited = 0
        self._retry_at = None
        self.update_interval = poll_interval(data.active, self._stalled_reads)
        return data

    async def _async_read(self, now: datetime) -> AccountData:
        previous = self.data.tasks if self.data else ()
        tasks, complete = await self._async_read_tasks(previous)
        seen = self._stored.seen
        ended, seen_now = ended_since(tasks, seen, self._tasks_at, complete=complete)
        events = tuple(CloudDownloadEvent(kind, task) for kind, task in ended)
        moved = progress(tasks) != progress(previous)
        self._stalled_reads = 0 if moved else self._stalled_reads + 1
        if self._due(self._account_at, now) or any(
            e.event_type == CLOUD_DOWNLOAD_FINISHED for e in events
        ):
            self._account = await self.client.user_info()
            self._account_at = now
        if (
            self._quota_stale
            or self._due(self._quota_at, now)
            or any(seen is not None and task_key(task) not in seen for task in tasks)
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
        self._stored = Stored(
            seen_now, StoredRead(account, self._account_at, quota, self._quota_at, tasks, now)
        )
        if events or seen is None:
            # On disk before the events fire: a restart never reports them again.
            await async_save(self._store, self._stored)
        else:
            self._store.async_delay_save(self._stored_data, SAVE_DELAY)
        return AccountData(account, quota, tasks, events)

    def _stored_data(self) -> dict[str, Any]:
        return stored_data(self._stored)

    def _due(self, last: datetime | None, now: datetime) -> bool:
        return last is None or now - last >= ACCOUNT_INTERVAL - DUE_SLACK

    async def _async_read_tasks(
        self, previous: tuple[OfflineTask, ...]
    ) -> tuple[tuple[OfflineTask, ...], bool]:
        """The task list, and whether all of it was read.

        Page after page while the last one read can be followed by a task not yet ended or
        not yet seen, or a task that was running is not found yet, up to MAX_TASK_PAGES. A
        task that was running and is past that cap keeps its last known state (it still
        counts as running).
        """
        seen = self._stored.seen
        running = {task_key(t): t for t in previous if t.status in ACTIVE}
        tasks: list[OfflineTask] = []
        number = 0
        while True:
            number += 1
            page = await self.client.offline_tasks(number)
            tasks.extend(page.tasks)
            if number >= page.page_count:
                return tuple(tasks), True
            missing = running.keys() - {task_key(t) for t in tasks}
            if number >= MAX_TASK_PAGES:
                break
            if not wants_next_page(page.tasks, seen, missing):
                return tuple(tasks), False
        return (*tasks, *(running[key] for key in running if key in missing)), False

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
