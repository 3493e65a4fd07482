"""The token keeper: one per loaded 115 entry, the only code that refreshes its token.

It owns the timers and the published state; the refresh itself is the entry's (token_record):
callers wait for it shielded, so no caller's cancellation cuts it short, and a keeper replaced
by a reload hands its refresh to the one that replaced it. When to refresh is policy.py's.
"""

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
import time
from typing import Any, override

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from . import policy
from .api import Open115AuthError, Open115Client, Open115RateLimitError
from .const import CONF_REFRESH_MARGIN, DEFAULT_REFRESH_MARGIN, DOMAIN, LOGGER
from .exceptions import KeeperError, ReauthRequiredError, refresh_too_soon
from .helpers import create_client
from .token_record import Outcome, TokenRecord
from .token_state import TokenState, TokenStatus


class TokenKeeper(DataUpdateCoordinator[TokenState]):
    """Keeps one account's token alive: timers, publishing, and the callers' side of a refresh."""

    config_entry: ConfigEntry[Any]
    data: TokenState

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry[Any],
        record: TokenRecord,
        client: Open115Client | None = None,
    ) -> None:
        """Take over the entry's record (and any refresh in flight); sends nothing."""
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {entry.title}",
            update_interval=None,  # the keeper runs its own timer
            always_update=False,
        )
        self.record = record
        self.client = client or create_client(hass)
        self.user_id = entry.unique_id or ""
        self._setting_up = True
        self._shut_down = False
        self._failing_logged = record.failure_now() is not None
        self._unsub_timer: CALLBACK_TYPE | None = None
        self._unsub_expiry: CALLBACK_TYPE | None = None
        self._timer_for: str | None = None  # the refresh token the timer is set for
        self._timer_at: datetime | None = None
        self.data = self._derive()
        record.listener = self._on_outcome

    # ----- what is due ---------------------------------------------------------------------

    @property
    def refresh_count(self) -> int:
        """Refreshes stored in this run of Home Assistant."""
        return self.record.refresh_count

    @property
    def margin(self) -> timedelta:
        """Refresh this long before expiry: min(option, a quarter of the lifetime)."""
        option = self.config_entry.options.get(CONF_REFRESH_MARGIN, DEFAULT_REFRESH_MARGIN)
        return policy.margin(float(option), self.data.expires_in)

    def refresh_due_at(self) -> datetime:
        """When the proactive refresh of the current token is due (without jitter)."""
        return self.data.expires_at - self.margin

    def _valid_for(self, seconds: float) -> bool:
        # time.time() is dt_util.utcnow()'s clock (frozen alike in tests), and far cheaper.
        return self.data.expires_ts - time.time() > seconds

    def _refused(self) -> bool:
        return self.record.refused

    def _retry_at(self) -> datetime | None:
        failure = self.record.failure_now()
        return failure.retry_at if failure else None

    def _may_request(self, *, force: bool = False) -> bool:
        retry_at = None if force else self._retry_at()
        return policy.may_request(dt_util.utcnow(), retry_at, self.record.last_request_at)

    # ----- the published state -------------------------------------------------------------

    def _derive(self) -> TokenState:
        """The state to publish: the stored pair, its failures, a refresh in flight."""
        record = self.record
        state = record.state()
        failure = record.failure_now()
        if state.status is TokenStatus.REAUTH_REQUIRED:
            if failure is None:
                return state
            return replace(state, failures=failure.failures, failing_since=failure.failing_since)
        if failure is not None:
            state = replace(
                state,
                status=TokenStatus.RATE_LIMITED if failure.rate_limited else TokenStatus.RETRYING,
                next_refresh=failure.retry_at,
                last_error=failure.last_error,
                last_error_code=failure.last_error_code,
                failures=failure.failures,
                failing_since=failure.failing_since,
            )
            if state.seconds_left(dt_util.utcnow()) <= 0:
                state = replace(state, status=TokenStatus.EXPIRED)
        elif record.task is not None:
            state = replace(state, status=TokenStatus.REFRESHING)
        if state.next_refresh is None and self._unsub_timer is not None:
            state = replace(state, next_refresh=self.data.next_refresh)
        return state

    def _publish(self) -> None:
        """Re-read the record, reschedule, and tell the entities."""
        self.data = self._derive()
        self._reschedule()
        self.async_update_listeners()

    def _reschedule(self) -> None:
        """Set the timer for the next refresh (none while one runs, after reauth, unloaded)."""
        record = self.record
        if self._shut_down or record.refused or record.task is not None:
            self._cancel_timer()
            if record.refused:
                self._cancel_expiry()
                self.data = replace(self.data, next_refresh=None)
            return
        failure = record.failure_now()
        if failure is not None:
            window = policy.window_end(record.last_request_at)
            when = max(failure.retry_at, window) if window else failure.retry_at
            self._set_timer(when, record.refresh_token)
            if self._unsub_expiry is None and self._valid_for(0):
                self._unsub_expiry = async_track_point_in_utc_time(
                    self.hass, self._on_expiry, self.data.expires_at
                )
            return
        self._cancel_expiry()
        if self._unsub_timer is not None and self._timer_for == record.refresh_token:
            return  # the timer of this token stands (its jitter stays)
        due = policy.jittered(self.refresh_due_at(), self.margin)
        window = policy.window_end(record.last_request_at)
        self._set_timer(max(due, window) if window else due, record.refresh_token)

    def _set_timer(self, when: datetime, refresh_token: str) -> None:
        if self._unsub_timer is not None and (self._timer_for, self._timer_at) == (
            refresh_token,
            when,
        ):
            return
        self._cancel_timer()
        self._timer_at = when
        self._unsub_timer = async_track_point_in_utc_time(self.hass, self._on_timer, when)
        self._timer_for = refresh_token
        self.data = replace(self.data, next_refresh=when)

    def _cancel_timer(self) -> None:
        if self._unsub_timer is not None:
            self._unsub_timer()
            self._unsub_timer = None
            self._timer_for = None

    def _cancel_expiry(self) -> None:
        if self._unsub_expiry is not None:
            self._unsub_expiry()
            self._unsub_expiry = None

    @callback
    def _on_expiry(self, _now: datetime) -> None:
        """The token ran out while refreshing fails: say so."""
        self._unsub_expiry = None
        self._publish()

    @callback
    def _on_timer(self, _now: datetime) -> None:
        self._unsub_timer = None
        self._timer_for = None
        # A tracked task: Home Assistant waits for it (a refresh is short: one request).
        self.config_entry.async_create_task(
            self.hass, self._async_timer_refresh(), f"{DOMAIN} scheduled refresh"
        )

    async def _async_timer_refresh(self) -> None:
        if self.record.failure_now() is None and dt_util.utcnow() < policy.jittered_floor(
            self.refresh_due_at()
        ):
            self._publish()  # someone refreshed since this timer was set
            return
        await self._async_join()

    # ----- a refresh, shared by every caller -------------------------------------------------

    def _start(self, *, force: bool = False) -> asyncio.Task[Outcome] | None:
        """The entry's refresh in flight, or a new one when allowed now; None when not."""
        record = self.record
        if record.task is not None:
            return record.task
        if self._shut_down or record.refused or self.hass.is_stopping:
            # Stopping: Home Assistant defers writes to its final one, so a rotated pair could
            # not be on disk before use. Unloaded: the keeper that replaced this one refreshes.
            return None
        if not self._may_request(force=force):
            return None
        task = record.async_start_refresh(self.client)
        self._publish()
        return task

    async def _async_join(self, *, force: bool = False) -> Outcome | None:
        """Start or join the entry's refresh and wait for it, shielded; None if none may run."""
        task = self._start(force=force)
        if task is None:
            self._publish()
            return None
        outcome = await asyncio.shield(task)
        if self.record.listener != self._on_outcome:
            self._publish()  # retired meanwhile: its caller still gets the stored pair
        return outcome

    @callback
    def _on_outcome(self, outcome: Outcome) -> None:
        """The entry's refresh ended (whoever started it): log, reauth, publish, reschedule."""
        title = self.config_entry.title
        err = outcome.error
        if outcome.applied and isinstance(err, Open115AuthError):
            reason = self.record.state().reauth_reason
            LOGGER.error(
                "The 115 refresh token of %s can no longer be used (%s, code %s); "
                "re-authenticate the integration",
                title,
                (reason or err.reason).replace("_", " "),
                err.code,
            )
            self._failing_logged = True
            self.config_entry.async_start_reauth(self.hass)
        elif outcome.applied and err is not None and not self._failing_logged:
            retry_at = self._retry_at() or dt_util.utcnow()
            LOGGER.warning(
                "Refreshing the 115 token of %s failed (%s); retrying in %d s, the token is kept",
                title,
                err,
                (retry_at - dt_util.utcnow()).total_seconds(),
            )
            self._failing_logged = True
        elif outcome.pair is not None and outcome.applied:
            LOGGER.debug(
                "Refreshed the 115 token of %s; the new access token lives %d s",
                title,
                outcome.pair.expires_in,
            )
            if self._failing_logged and self.record.failure_now() is None:
                LOGGER.info("Refreshing the 115 token of %s works again", title)
                self._failing_logged = False
        self._publish()

    def _raise_for(self, outcome: Outcome | None, needed: float) -> TokenState:
        """The current state if it lasts `needed` s; else the error that explains why not."""
        title = self.config_entry.title
        if self.data.status is TokenStatus.REAUTH_REQUIRED:
            raise ReauthRequiredError("reauth_required", entry_title=title)
        if self._valid_for(needed):
            return self.data
        err = outcome.error if outcome is not None and outcome.applied else None
        if isinstance(err, Open115RateLimitError):
            raise KeeperError("rate_limited", entry_title=title) from err
        if err is not None:
            raise KeeperError("refresh_failed", entry_title=title) from err
        if self._valid_for(0):
            # A refresh may not be sent yet (115's 60 s window, a backoff) or could not give
            # a longer-lived token: the current one does not last `min_validity`.
            raise KeeperError("token_too_short", entry_title=title, seconds=str(int(needed)))
        raise KeeperError("token_unavailable", entry_title=title)

    # ----- the consumer side -----------------------------------------------------------------

    async def async_ensure_valid(
        self, min_validity: float, *, rejected_token: str | None = None
    ) -> TokenState:
        """A token valid for `min_validity` seconds (capped at half its lifetime), or raise.

        Refreshes first when the current token would not last (one refresh per entry, shared
        by all callers, and never cut short by a caller's cancellation). When no refresh may
        be sent yet (115's 60 s window, a backoff after failures, Home Assistant stopping) or
        it fails, the current token is returned only if it still lasts `min_validity`;
        otherwise a translated `KeeperError` says why (`token_too_short` while it still lives).

        `rejected_token`: 115 refused this access token before its expiry. While it is still
        the current one, rotate once (every caller reporting it shares that refresh), but not
        more than once per 10 minutes unless the token is due anyway: then, and while a
        refresh may not be sent, raise `token_rejected`.
        """
        state = self.data
        needed = policy.needed_validity(min_validity, state.expires_in)
        if (
            state.expires_ts - time.time() > needed
            and state.status is not TokenStatus.REAUTH_REQUIRED
            and (rejected_token is None or rejected_token != state.access_token)
        ):
            return state  # the hot path: a valid token, no lock, no datetime
        if (task := self.record.task) is not None:
            await asyncio.shield(task)  # a refresh in flight: it may give what is needed
            if self.record.listener != self._on_outcome:
                self._publish()
        state = self.data
        needed = policy.needed_validity(min_validity, state.expires_in)
        title = self.config_entry.title
        if state.status is TokenStatus.REAUTH_REQUIRED:
            raise ReauthRequiredError("reauth_required", entry_title=title)
        rejected = rejected_token is not None and rejected_token == state.access_token
        if not rejected:
            if self._valid_for(needed):
                return state
            return self._raise_for(await self._async_join(), needed)
        now = dt_util.utcnow()
        if not policy.may_rotate_for_rejection(
            now, self.record.rejection_rotated_at, self.refresh_due_at()
        ) or (self.record.task is None and not self._may_request()):
            raise KeeperError("token_rejected", entry_title=title)
        LOGGER.debug("A consumer reports that 115 refused the current access token")
        if self.record.task is None:
            self.record.rejection_rotated_at = now
        outcome = await self._async_join()
        if self.data.access_token != rejected_token:
            return self._raise_for(outcome, 0)
        if outcome is not None and outcome.applied and outcome.error is not None:
            self._raise_for(outcome, float("inf"))  # raises why the refresh failed
        raise KeeperError("token_rejected", entry_title=title)

    async def async_force_refresh(self) -> TokenState:
        """Refresh now (the `refresh_token` action), unless the last refresh is too recent."""
        if (task := self.record.task) is not None:
            await asyncio.shield(task)
        title = self.config_entry.title
        if self.data.status is TokenStatus.REAUTH_REQUIRED:
            raise ReauthRequiredError("reauth_required", entry_title=title)
        if self._shut_down or self.hass.is_stopping:
            raise KeeperError("token_unavailable", entry_title=title)
        if (refusal := refresh_too_soon(self.record, self.data.refreshed_at, title)) is not None:
            raise refusal
        # A retry after a network failure may be pending: the user asks for it now.
        outcome = await self._async_join(force=True)
        if outcome is None or not outcome.applied:
            return self._raise_for(outcome, 0)
        if outcome.error is not None:
            self._raise_for(outcome, float("inf"))
        return self.data

    # ----- start-up and shutdown ----------------------------------------------------------------

    @override
    async def _async_update_data(self) -> TokenState:
        """Refresh only when due. At setup, a failure decides: not ready, or retry later.

        Also runs for `homeassistant.update_entity`, where it never refreshes early.
        """
        setting_up, self._setting_up = self._setting_up, False
        title = self.config_entry.title
        if self.record.refused:
            if setting_up:  # refused for good: never send it again
                raise ConfigEntryAuthFailed(
                    translation_domain=DOMAIN,
                    translation_key="reauth_required",
                    translation_placeholders={"entry_title": title},
                )
            return self.data
        due = self.record.failure_now() is not None or dt_util.utcnow() >= self.refresh_due_at()
        outcome = None
        if due and (self.record.task is None or not setting_up):
            outcome = await self._async_join()
        else:
            self._publish()
        if setting_up and self._refused():
            self._abandon()
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN,
                translation_key="reauth_required",
                translation_placeholders={"entry_title": title},
            )
        if setting_up and not self._valid_for(0) and self.record.task is None:
            # Setup fails and is retried by Home Assistant; this keeper is dropped.
            self._abandon()
            err = outcome.error if outcome else None
            raise UpdateFailed(
                translation_domain=DOMAIN, translation_key="setup_refresh_failed"
            ) from err
        return self.data

    def _abandon(self) -> None:
        """Retire this keeper (unloaded, or its setup failed): no timer, no outcomes."""
        self._shut_down = True
        self._cancel_timer()
        self._cancel_expiry()
        if self.record.listener == self._on_outcome:
            self.record.listener = None

    @override
    async def async_shutdown(self) -> None:
        """Stop the timers with the entry; a refresh in flight still stores its pair."""
        self._abandon()
        await super().async_shutdown()
