"""The entry's token as stored, and the entry's refresh in flight (one of each per entry).

The record outlives the keepers of its entry: a reload replaces the keeper, not the record, so
a refresh started by a keeper that was replaced stores its pair here and reaches the keeper
that replaced it. The pair is written with a `Store` (`async_save`: on disk before anyone gets
it) and mirrored into the entry's data. A pair or a refusal applies only while the record still
holds the refresh token that was sent: a flow that stored a new pair meanwhile wins.
"""

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from . import policy
from .api import (
    Open115AuthError,
    Open115Client,
    Open115Error,
    Open115RateLimitError,
    Open115TransientError,
    TokenPair,
)
from .const import CONF_REFRESH_TOKEN, CONF_REFUSED, DOMAIN, EVENT_TOKEN_REFRESHED
from .token_state import TOKEN_KEYS, TokenState, state_from_data, token_data

STORAGE_VERSION = 1
DATA_RECORDS: HassKey[dict[str, TokenRecord]] = HassKey(f"{DOMAIN}_token_records")
DATA_LOAD_LOCK: HassKey[asyncio.Lock] = HassKey(f"{DOMAIN}_token_records_lock")


@dataclass(frozen=True, slots=True)
class Failure:
    """Refreshing the stored token failed `failures` times in a row; retry at `retry_at`."""

    refresh_token: str = field(repr=False)
    failures: int
    failing_since: datetime
    retry_at: datetime
    slow: bool  # rate limited, or refused without a usable code
    rate_limited: bool
    last_error: str
    last_error_code: int | None
    maybe_rotated: bool  # an answer was lost: a following 40140120 is explained


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one refresh did. `applied`: False when a newer pair (a flow's) won meanwhile."""

    sent: str = field(repr=False)
    pair: TokenPair | None = None
    error: Open115Error | None = None
    applied: bool = True


def token_store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, Any]]:
    """The entry's token file (.storage/open115.<entry_id>.token)."""
    return Store(
        hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.token", private=True, atomic_writes=True
    )


class TokenRecord:
    """One entry's stored pair, its last refresh request, its failures, its refresh task."""

    def __init__(
        self, hass: HomeAssistant, entry_id: str, token: Mapping[str, Any], last: datetime | None
    ) -> None:
        """Hold a loaded (or migrated) token; `async_record` makes one."""
        self.hass = hass
        self.entry_id = entry_id
        self.store = token_store(hass, entry_id)
        self.token: dict[str, Any] = {k: token[k] for k in TOKEN_KEYS if k in token}
        # When the last refresh request was sent (whatever its answer; kept on disk): 115's
        # frequency control counts per authorization, so the next one waits 60 s.
        self.last_request_at = last
        self.failure: Failure | None = None
        self.rejection_rotated_at: datetime | None = None
        self.task: asyncio.Task[Outcome] | None = None
        self.refresh_count = 0
        # The entry's current keeper: told of every outcome (it publishes and reschedules).
        self.listener: Callable[[Outcome], None] | None = None

    @property
    def refresh_token(self) -> str:
        """The stored refresh token."""
        return str(self.token.get(CONF_REFRESH_TOKEN, ""))

    @property
    def refused(self) -> bool:
        """Whether 115 refused the stored refresh token for good."""
        return CONF_REFUSED in self.token

    def state(self) -> TokenState:
        """The stored pair as a token state (no failures)."""
        return state_from_data(self.token)

    def failure_now(self) -> Failure | None:
        """The failures of the stored token (none once it was replaced)."""
        failure = self.failure
        return failure if failure and failure.refresh_token == self.refresh_token else None

    # ----- writing -----------------------------------------------------------------------

    async def async_save(self) -> None:
        """Write the token and the last request time to disk now."""
        last = self.last_request_at
        await self.store.async_save(
            {"token": dict(self.token), "last_request_at": last.isoformat() if last else None}
        )

    def _mirror(self) -> None:
        """Show the stored pair in the entry's data too (saved by Home Assistant, later)."""
        entry = self.hass.config_entries.async_get_entry(self.entry_id)
        if entry is None:
            return
        data = {k: v for k, v in entry.data.items() if k not in TOKEN_KEYS}
        self.hass.config_entries.async_update_entry(entry, data={**data, **self.token})

    async def async_replace(self, data: Mapping[str, Any]) -> None:
        """A flow's new pair: it wins over any refresh in flight, whose answer is dropped."""
        replaced = self.refresh_token
        self.token = {k: data[k] for k in TOKEN_KEYS if k in data}
        self.failure = None
        self.rejection_rotated_at = None
        # The flow got its pair from 115 just now (a pasted token is checked by refreshing
        # it): the 60 s window counts from that request, not from the replaced chain's last.
        if (received := self.state().refreshed_at) is not None:
            self.last_request_at = received
        await self.async_save()
        if self.listener is not None:  # the keeper shows (and hands out) the new pair at once
            self.listener(Outcome(replaced, applied=False))

    # ----- the refresh -------------------------------------------------------------------

    def async_start_refresh(self, client: Open115Client) -> asyncio.Task[Outcome]:
        """Send the stored refresh token in a task of the record's own; callers shield it.

        No caller's cancellation reaches the request-and-store: a pair that arrives is stored.
        """
        self.last_request_at = dt_util.utcnow()
        # Not one of Home Assistant's tasks: neither a reload nor the stop cancels it (the stop
        # cancels background tasks, and tracked ones when it closes), and a refresh held by a
        # slow answer does not hold up a reload; it ends within the client's timeout.
        self.task = self.hass.loop.create_task(
            self._async_run(client, self.refresh_token), name=f"{DOMAIN} token refresh"
        )
        return self.task

    async def _async_run(self, client: Open115Client, sent: str) -> Outcome:
        outcome = Outcome(sent)
        try:
            await self.async_save()  # the attempt is on disk first: the 60 s window survives
            try:
                pair = await client.refresh(sent)
            except Open115AuthError as err:
                outcome = Outcome(sent, error=err, applied=await self._async_refuse(sent, err))
            except Open115Error as err:
                outcome = Outcome(sent, error=err, applied=self._fail(sent, err))
            else:
                outcome = Outcome(sent, pair=pair, applied=await self._async_commit(pair, sent))
        except asyncio.CancelledError:
            # Home Assistant stopped waiting (its shutdown): 115 may have rotated already.
            cancelled = Open115TransientError("Token refresh was cancelled")
            outcome = Outcome(sent, error=cancelled, applied=self._fail(sent, cancelled))
            raise
        finally:
            self.task = None
            if self.listener is not None:
                self.listener(outcome)
            if outcome.pair is not None and outcome.applied:
                self._announce(outcome.pair)  # once the keeper shows the new pair
        return outcome

    def _announce(self, pair: TokenPair) -> None:
        entry = self.hass.config_entries.async_get_entry(self.entry_id)
        self.hass.bus.async_fire(
            EVENT_TOKEN_REFRESHED,
            {
                "config_entry_id": self.entry_id,
                "user_id": (entry.unique_id if entry else None) or "",
                "expires_at": pair.expires_at.isoformat(),
            },
        )

    async def _async_commit(self, pair: TokenPair, sent: str) -> bool:
        """Store a rotated pair unless a newer one (a flow's) replaced the sent token."""
        if self.refresh_token != sent:
            return False
        authorized_at = self.state().authorized_at
        previous = self.failure_now()
        self.token = token_data(pair, authorized_at)
        self.failure = None
        self.refresh_count += 1
        if not pair.complete:
            # The new refresh token is kept; the access token counts as due now, and the next
            # try waits like a retry (counting on), so a run of such answers backs off.
            if previous is not None:
                self.failure = replace(previous, refresh_token=pair.refresh_token)
            self._fail(pair.refresh_token, Open115TransientError("incomplete refresh answer"))
        await self.async_save()
        self._mirror()
        return True

    async def _async_refuse(self, sent: str, err: Open115AuthError) -> bool:
        """Mark the sent token refused for good, unless a newer one replaced it."""
        if self.refresh_token != sent:
            return False
        failure = self.failure_now()
        lost = failure is not None and failure.maybe_rotated and err.code == 40140120
        self._fail(sent, err)  # counted with the failures before it (diagnostics)
        self.token[CONF_REFUSED] = {
            "reason": "lost_response" if lost else err.reason,
            "code": err.code,
        }
        await self.async_save()
        self._mirror()
        return True

    def _fail(self, sent: str, err: Open115Error) -> bool:
        """Record a failed refresh of `sent` (when still stored) and when to retry."""
        if self.refresh_token != sent:
            return False
        now = dt_util.utcnow()
        last = self.failure_now()
        failures = (last.failures if last else 0) + 1
        # The network, 5xx and 115's "retry" codes retry soon; an answer that refuses for
        # another reason (rate limited, no error code, an unknown code) retries slowly.
        slow = not isinstance(err, Open115TransientError)
        lost = isinstance(err, Open115TransientError) and err.code is None
        self.failure = Failure(
            refresh_token=sent,
            failures=failures,
            failing_since=last.failing_since if last else now,
            retry_at=policy.retry_at(
                now, failures, slow=slow, last_request_at=self.last_request_at
            ),
            slow=slow,
            rate_limited=isinstance(err, Open115RateLimitError),
            last_error=type(err).__name__,
            last_error_code=err.code,
            maybe_rotated=(last is not None and last.maybe_rotated) or lost,
        )
        return True


async def async_record(hass: HomeAssistant, entry: ConfigEntry) -> TokenRecord:
    """The entry's record, loaded once per run; an entry stored before it existed migrates.

    Migration copies the entry's token keys into the token file; it sends no request.
    """
    records = hass.data.setdefault(DATA_RECORDS, {})
    async with hass.data.setdefault(DATA_LOAD_LOCK, asyncio.Lock()):
        if (record := records.get(entry.entry_id)) is not None:
            return record
        stored = await token_store(hass, entry.entry_id).async_load()
        if stored is not None and isinstance(stored.get("token"), dict):
            last = dt_util.parse_datetime(str(stored.get("last_request_at") or ""))
            record = TokenRecord(hass, entry.entry_id, stored["token"], last)
            if _newer_in_entry(record.token, entry.data):
                # The entry holds a later pair than the file (written by an open115 from
                # before the token file, run in between): the file's refresh token is void.
                record.token = {k: entry.data[k] for k in TOKEN_KEYS if k in entry.data}
                await record.async_save()
        else:
            record = TokenRecord(hass, entry.entry_id, entry.data, None)
            await record.async_save()
        records[entry.entry_id] = record
        return record


def _newer_in_entry(token: Mapping[str, Any], data: Mapping[str, Any]) -> bool:
    """Whether the entry's data holds another refresh token, received after the file's."""
    if data.get(CONF_REFRESH_TOKEN) in (None, token.get(CONF_REFRESH_TOKEN)):
        return False
    in_file = state_from_data(token).refreshed_at
    in_entry = state_from_data(data).refreshed_at
    return in_entry is not None and (in_file is None or in_entry > in_file)


async def async_store_pair(hass: HomeAssistant, entry: ConfigEntry, data: dict[str, Any]) -> None:
    """A flow's new pair for `entry`: on disk now, in the entry's data, winning over any refresh."""
    record = await async_record(hass, entry)
    await record.async_replace(data)
    hass.config_entries.async_update_entry(entry, data=data)


async def async_remove_record(hass: HomeAssistant, entry_id: str) -> None:
    """Forget a removed entry's token (memory and file)."""
    record = hass.data.get(DATA_RECORDS, {}).pop(entry_id, None)
    if record is not None and record.task is not None:
        record.task.cancel()
    await token_store(hass, entry_id).async_remove()
