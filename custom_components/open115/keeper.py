"""The token keeper: one per 115 account, the only code that refreshes its token.

It refreshes on its own timer shortly before expiry, one refresh at a time (concurrent askers
share it), writes every rotated pair to disk before handing it out, and backs off on failures.
"""

import contextlib
from dataclasses import replace
import time
from typing import TYPE_CHECKING, override

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed
from homeassistant.helpers.update_coordinator import UpdateFailed
from homeassistant.util import dt as dt_util

from .api import (
    Open115AuthError,
    Open115Client,
    Open115Error,
    Open115RateLimitError,
    Open115TransientError,
    TokenPair,
)
from .const import (
    CONF_REFRESH_TOKEN,
    CONF_REFUSED,
    DOMAIN,
    EVENT_TOKEN_REFRESHED,
    LOGGER,
    MIN_REFRESH_INTERVAL,
)
from .exceptions import KeeperError, ReauthRequiredError, RefreshTooSoonError
from .helpers import async_flush_config_entries, create_client
from .pacing import KeeperPacing
from .token_state import TokenState, TokenStatus, state_from_entry, token_data

if TYPE_CHECKING:
    from .data import Open115ConfigEntry


class TokenKeeper(KeeperPacing):
    """Keeps one account's token alive; the only code that refreshes it."""

    config_entry: Open115ConfigEntry
    data: TokenState

    def __init__(
        self,
        hass: HomeAssistant,
        entry: Open115ConfigEntry,
        client: Open115Client | None = None,
    ) -> None:
        """Set up from the entry's stored token state; sends nothing."""
        super().__init__(hass, entry)
        self.client = client or create_client(hass)
        self.user_id = entry.unique_id or ""
        self._setting_up = True
        self._maybe_rotated = False  # the last refresh's answer was lost in transit
        self.refresh_count = 0

    # ----- start-up ----------------------------------------------------------------------------

    @override
    async def _async_update_data(self) -> TokenState:
        """Refresh only when due. At setup, a failure decides: not ready, or retry later.

        Also runs for `homeassistant.update_entity`, where it never refreshes early.
        """
        setting_up, self._setting_up = self._setting_up, False
        if self.data.status is TokenStatus.REAUTH_REQUIRED:
            if setting_up:  # refused for good in an earlier run: never send it again
                raise ConfigEntryAuthFailed(
                    translation_domain=DOMAIN,
                    translation_key="reauth_required",
                    translation_placeholders={"entry_title": self.config_entry.title},
                )
            return self.data
        earliest = self._earliest_request()
        if earliest is not None and dt_util.utcnow() < earliest:
            # Backing off (also when rate limited before a reload or a setup retry), or inside
            # the 60 s window of the last request: no request now; without a valid token setup
            # fails, and Home Assistant retries it.
            if setting_up and not self._valid_for(0):
                raise UpdateFailed(
                    translation_domain=DOMAIN, translation_key="setup_refresh_failed"
                )
            if self._unsub_timer is None:
                self._schedule(max(earliest, self._jittered(self.refresh_due_at())))
            return self.data
        if dt_util.utcnow() < self.refresh_due_at():
            if self._unsub_timer is None:
                self._schedule(self._jittered(self.refresh_due_at()))
            return self.data
        try:
            async with self._lock:
                now = dt_util.utcnow()
                if now >= self.refresh_due_at() and self._may_refresh(now):
                    await self._async_refresh_locked()
        except ReauthRequiredError as err:
            if setting_up:
                raise ConfigEntryAuthFailed(
                    translation_domain=DOMAIN,
                    translation_key="reauth_required",
                    translation_placeholders={"entry_title": self.config_entry.title},
                ) from err
        except KeeperError as err:
            if setting_up and not self._valid_for(0):
                # Setup fails and is retried by Home Assistant; this coordinator is dropped.
                self._cancel_timer()
                self._cancel_expiry()
                raise UpdateFailed(
                    translation_domain=DOMAIN,
                    translation_key="setup_refresh_failed",
                ) from err
        return self.data

    # ----- the consumer side -------------------------------------------------------------------

    async def async_ensure_valid(
        self, min_validity: float, rejected_token: str | None = None
    ) -> TokenState:
        """A token valid for `min_validity` seconds, refreshing first if it would not last.

        `min_validity` is capped at half a token's lifetime, so a consumer that asks for more
        than a token can give does not make every call refresh. While a retry is pending the
        current token is returned if it still lives; a refresh failure raises only when no
        valid token is left.

        `rejected_token`: 115 refused this access token before its expiry. While it is still
        the current one, refresh once (callers waiting on the lock then find it replaced and
        share that refresh); when refreshing is not allowed yet, raise.
        """
        state = self.data
        needed = min(float(min_validity), state.expires_in / 2)
        if (
            state.expires_ts - time.time() > needed
            and state.status is not TokenStatus.REAUTH_REQUIRED
            and (rejected_token is None or rejected_token != state.access_token)
        ):
            return state  # the hot path: a valid token, no lock, no datetime
        self._raise_if_reauth_required()
        async with self._lock:
            self._raise_if_reauth_required()
            self._adopt_stored_pair()
            rejected = rejected_token is not None and rejected_token == self.data.access_token
            if not rejected and self._valid_for(needed):
                return self.data
            if self._may_refresh(dt_util.utcnow()):
                if rejected:
                    LOGGER.debug("A consumer reports that 115 refused the current access token")
                try:
                    await self._async_refresh_locked()
                except ReauthRequiredError:
                    raise
                except KeeperError:
                    if rejected or not self._valid_for(0):
                        raise
            elif rejected:
                raise KeeperError("token_rejected", entry_title=self.config_entry.title)
            if not self._valid_for(0):
                raise KeeperError("token_unavailable", entry_title=self.config_entry.title)
            return self.data

    def _raise_if_reauth_required(self) -> None:
        if self.data.status is TokenStatus.REAUTH_REQUIRED:
            raise ReauthRequiredError("reauth_required", entry_title=self.config_entry.title)

    async def async_force_refresh(self) -> TokenState:
        """Refresh now (the `refresh_token` action), unless the last refresh is too recent."""
        async with self._lock:
            self._raise_if_reauth_required()
            if self._shut_down:
                # Unloaded: the keeper that replaced this one refreshes (or will).
                raise KeeperError("token_unavailable", entry_title=self.config_entry.title)
            self._adopt_stored_pair()
            now = dt_util.utcnow()
            backoff = self._shared.backoff
            if backoff is not None and self._retry_at is not None and now < self._retry_at:
                # 115 asked us to slow down, or refused without saying why: a forced refresh
                # now would only prolong it (the status may say expired meanwhile).
                when = dt_util.as_local(self._retry_at).strftime("%H:%M")
                title = self.config_entry.title
                if backoff.status is TokenStatus.RATE_LIMITED:
                    raise RefreshTooSoonError("rate_limited", entry_title=title)
                if backoff.last_error_code is None:
                    raise RefreshTooSoonError("refresh_backing_off", entry_title=title, time=when)
                raise RefreshTooSoonError(
                    "refresh_backing_off_code",
                    entry_title=title,
                    time=when,
                    code=str(backoff.last_error_code),
                )
            last = self.data.refreshed_at
            last_request = self._shared.last_request_at
            if any(
                at is not None and now - at < MIN_REFRESH_INTERVAL for at in (last, last_request)
            ):
                raise RefreshTooSoonError(
                    "refresh_too_soon",
                    seconds=str(int(MIN_REFRESH_INTERVAL.total_seconds())),
                )
            # A retry after a network failure may be pending: the user asks for it now.
            self._retry_at = None
            await self._async_refresh_locked()
            return self.data

    # ----- the refresh itself ---------------------------------------------------------------

    async def _async_refresh_locked(self) -> None:
        """Refresh once; the caller holds the lock. Raises a KeeperError on failure."""
        if self._shut_down:
            # Unloaded: the keeper that replaced this one refreshes (or will).
            raise KeeperError("token_unavailable", entry_title=self.config_entry.title)
        if self._adopt_stored_pair():
            return
        if self._refused_on_disk():
            raise ReauthRequiredError("reauth_required", entry_title=self.config_entry.title)
        if (earliest := self._earliest_request()) is not None and dt_util.utcnow() < earliest:
            # Never two requests for one authorization within 60 s, retries included (115's
            # frequency control); callers check first, this keeps the rule whatever they do.
            self._schedule(earliest)
            raise KeeperError("token_unavailable", entry_title=self.config_entry.title)
        self._cancel_timer()
        if self.data.failures == 0:
            # A retry keeps showing why it is retrying, so the problem sensor does not flicker.
            self._publish(replace(self.data, status=TokenStatus.REFRESHING))
        sent = self.data.refresh_token
        self._shared.last_request_at = dt_util.utcnow()
        try:
            pair = await self.client.refresh(sent)
        except Open115AuthError as err:
            await self._async_auth_failed(err)
            raise ReauthRequiredError(
                "reauth_required", entry_title=self.config_entry.title
            ) from err
        except Open115Error as err:
            if isinstance(err, Open115TransientError) and err.code is None:
                # The request may have reached 115 and rotated the token before the answer
                # was lost; remember it so that a following 40140120 is explained.
                self._maybe_rotated = True
            self._retry_later(err)
            raise KeeperError(
                "rate_limited" if isinstance(err, Open115RateLimitError) else "refresh_failed",
                entry_title=self.config_entry.title,
            ) from err
        await self._async_store(pair)

    def _adopt_stored_pair(self) -> bool:
        """Use the entry's pair when it is newer than this keeper's; True when it was.

        The keeper this one replaced was unloaded while its refresh was in flight, and stored
        the rotated pair since: this one's copy is void (and its access token may be too).
        """
        if self.config_entry.data.get(CONF_REFRESH_TOKEN) == self.data.refresh_token:
            return False
        self._use(state_from_entry(self.config_entry))
        return True

    def _refused_on_disk(self) -> bool:
        """Whether 115 refused the stored token for good; then say so too.

        Another keeper of this entry (replaced by a reload while its refresh was in flight)
        stored the refusal after this one read the entry.
        """
        if CONF_REFUSED not in self.config_entry.data:
            return False
        self._cancel_timer()
        self._cancel_expiry()
        self._publish(replace(state_from_entry(self.config_entry), next_refresh=None))
        return True

    async def _async_store(self, pair: TokenPair) -> None:
        """Persist the rotated pair (on disk now), then publish, reschedule and announce it."""
        entry = self.config_entry
        authorized_at = self.data.authorized_at
        self.hass.config_entries.async_update_entry(
            entry, data={**entry.data, **token_data(pair, authorized_at)}
        )
        await async_flush_config_entries(self.hass)
        self.refresh_count += 1
        LOGGER.debug(
            "Refreshed the 115 token of %s; the new access token lives %d s",
            entry.title,
            pair.expires_in,
        )
        if self._failing_logged:
            LOGGER.info("Refreshing the 115 token of %s works again", entry.title)
            self._failing_logged = False
        self._use(
            TokenState(
                access_token=pair.access_token,
                refresh_token=pair.refresh_token,
                expires_at=pair.expires_at,
                expires_in=pair.expires_in,
                refreshed_at=pair.received_at,
                authorized_at=authorized_at,
            )
        )
        self.hass.bus.async_fire(
            EVENT_TOKEN_REFRESHED,
            {
                "config_entry_id": entry.entry_id,
                "user_id": self.user_id,
                "expires_at": pair.expires_at.isoformat(),
            },
        )

    def _use(self, state: TokenState) -> None:
        """Make a stored pair current: forget failures, publish, schedule its refresh."""
        self._maybe_rotated = False
        self._retry_at = None
        self._shared.backoff = None
        self._cancel_expiry()
        self.data = state
        due = self._jittered(self.refresh_due_at())
        self._publish(replace(state, next_refresh=due))
        self._schedule(due)

    async def _async_auth_failed(self, err: Open115AuthError) -> None:
        """The refresh token is dead: keep it (for diagnostics) and start re-authentication."""
        reason = "lost_response" if self._maybe_rotated and err.code == 40140120 else err.reason
        LOGGER.error(
            "The 115 refresh token of %s can no longer be used (%s, code %s); "
            "re-authenticate the integration",
            self.config_entry.title,
            reason.replace("_", " "),
            err.code,
        )
        self._failing_logged = True
        self._publish(
            replace(
                self.data,
                status=TokenStatus.REAUTH_REQUIRED,
                next_refresh=None,
                last_error=type(err).__name__,
                last_error_code=err.code,
                reauth_reason=reason,
                failures=self.data.failures + 1,
                failing_since=self.data.failing_since or dt_util.utcnow(),
            )
        )
        # Remember it on disk, so that no restart sends the dead token again.
        entry = self.config_entry
        self.hass.config_entries.async_update_entry(
            entry, data={**entry.data, CONF_REFUSED: {"reason": reason, "code": err.code}}
        )
        await async_flush_config_entries(self.hass)
        entry.async_start_reauth(self.hass)
        if self._shut_down:
            # Unloaded while the refresh was in flight: the keeper that replaced this one was
            # set up before the refusal was stored; a reload makes it read it.
            self.hass.config_entries.async_schedule_reload(entry.entry_id)

    # ----- the timer ----------------------------------------------------------------------------

    @override
    async def _async_timer_refresh(self) -> None:
        async with self._lock:
            if self.data.status is TokenStatus.REAUTH_REQUIRED:
                return
            now = dt_util.utcnow()
            if self._retry_at is None and now < self._jittered_floor():
                # Someone refreshed since this timer was set.
                self._schedule(self._jittered(self.refresh_due_at()))
                return
            # A failure is recorded, and a retry (or reauth) is under way.
            with contextlib.suppress(KeeperError):
                await self._async_refresh_locked()
