"""Repair issues that follow the token keeper, for what Home Assistant does not cover.

A dead refresh token has no issue here: the keeper starts re-authentication, Home Assistant
raises its own repair ("Authentication expired") that opens it, and the re-authentication
dialog says why (config_flow.py). Two issues per entry, each with the entry id in its issue id
and each removed again as soon as its cause is gone:

- `refresh_failing_<entry_id>`: refreshing has failed, been rate limited, or been refused
  without an error code for an hour.
- `refresh_token_expiring_<entry_id>`: the refresh token's one-year limit is < 14 days away.

The checks run on every coordinator update and, because "for an hour" and "14 days before"
become true with time alone, on a timer set to the moment they become true.
"""

from datetime import datetime, timedelta
from typing import Final

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.util import dt as dt_util

from .api import CODE_RATE_LIMITED, Open115UnexplainedError
from .const import DOMAIN
from .keeper import TokenKeeper
from .token_state import TokenState, TokenStatus

ISSUE_FAILING: Final = "refresh_failing"
ISSUE_EXPIRING: Final = "refresh_token_expiring"
# Earlier versions raised a reauth issue of their own beside Home Assistant's: removed on setup.
ISSUE_REAUTH_OLD: Final = "reauth_required"
ISSUE_KINDS: Final = (ISSUE_FAILING, ISSUE_EXPIRING, ISSUE_REAUTH_OLD)

FAILING_FOR: Final = timedelta(hours=1)
EXPIRY_WARNING: Final = timedelta(days=14)
FAILING_STATUSES: Final = frozenset(
    {TokenStatus.RETRYING, TokenStatus.RATE_LIMITED, TokenStatus.EXPIRED}
)


def issue_id(kind: str, entry_id: str) -> str:
    """The issue id of one kind of issue of an entry."""
    return f"{kind}_{entry_id}"


def _format_time(when: datetime) -> str:
    return dt_util.as_local(when).strftime("%Y-%m-%d %H:%M %Z")


@callback
def async_delete_issues(hass: HomeAssistant, entry_id: str) -> None:
    """Remove every issue of an entry (the entry is removed)."""
    for kind in ISSUE_KINDS:
        ir.async_delete_issue(hass, DOMAIN, issue_id(kind, entry_id))


@callback
def async_track_issues(hass: HomeAssistant, coordinator: TokenKeeper) -> CALLBACK_TYPE:
    """Keep the entry's issues in step with its keeper; returns the stop callback.

    Register it before the first refresh, so that the issues are checked from the start.
    """
    return TokenIssues(hass, coordinator).async_start()


class TokenIssues:
    """Creates and removes one entry's repair issues."""

    def __init__(self, hass: HomeAssistant, coordinator: TokenKeeper) -> None:
        """Watch `coordinator`; nothing happens before `async_start`."""
        self.hass = hass
        self.coordinator = coordinator
        self.entry_id = coordinator.config_entry.entry_id
        self._timers: dict[str, tuple[datetime, CALLBACK_TYPE]] = {}

    @callback
    def async_start(self) -> CALLBACK_TYPE:
        """Listen to the keeper and check the time-based issues now."""
        unsub = self.coordinator.async_add_listener(self._async_check)
        self._delete(ISSUE_REAUTH_OLD)
        self._check_failing(self.coordinator.data)
        self._check_expiring(self.coordinator.data)

        @callback
        def stop() -> None:
            unsub()
            for kind in list(self._timers):
                self._cancel(kind)
            # Nobody watches these any more; the next setup checks them again.
            self._delete(ISSUE_FAILING)
            self._delete(ISSUE_EXPIRING)

        return stop

    @callback
    def _async_check(self) -> None:
        state = self.coordinator.data
        self._check_failing(state)
        self._check_expiring(state)

    # ----- the two issues -----------------------------------------------------------------------

    def _check_failing(self, state: TokenState) -> None:
        if state.status is TokenStatus.REFRESHING and state.failing_since is not None:
            return  # a retry is under way: leave the issue (and its timer) as they are
        since = state.failing_since
        if state.status not in FAILING_STATUSES or since is None:
            self._cancel(ISSUE_FAILING)
            self._delete(ISSUE_FAILING)
            return
        due = since + FAILING_FOR
        if dt_util.utcnow() < due:
            self._at(ISSUE_FAILING, due)
            return
        self._cancel(ISSUE_FAILING)
        rate_limited = state.last_error_code == CODE_RATE_LIMITED
        key = "refresh_rate_limited" if rate_limited else "refresh_failing"
        if state.last_error == Open115UnexplainedError.__name__:
            key = "refresh_unexplained"
        error = state.last_error or "unknown"
        if state.last_error_code is not None:
            error = f"{error} {state.last_error_code}"
        self._create(
            ISSUE_FAILING,
            key,
            ir.IssueSeverity.ERROR
            if state.status is TokenStatus.EXPIRED
            else ir.IssueSeverity.WARNING,
            since=_format_time(since),
            error=error,
        )

    def _check_expiring(self, state: TokenState) -> None:
        limit = state.refresh_token_expires
        if limit is None or state.status is TokenStatus.REAUTH_REQUIRED:
            # Unknown, or re-authentication (Home Assistant's repair) already asks for more.
            self._cancel(ISSUE_EXPIRING)
            self._delete(ISSUE_EXPIRING)
            return
        due = limit - EXPIRY_WARNING
        if dt_util.utcnow() < due:
            self._at(ISSUE_EXPIRING, due)
            self._delete(ISSUE_EXPIRING)
            return
        self._cancel(ISSUE_EXPIRING)
        self._create(
            ISSUE_EXPIRING,
            ISSUE_EXPIRING,
            ir.IssueSeverity.WARNING,
            expires=_format_time(limit),
        )

    # ----- registry and timers ------------------------------------------------------------------

    def _create(self, kind: str, key: str, severity: ir.IssueSeverity, **placeholders: str) -> None:
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id(kind, self.entry_id),
            is_fixable=False,
            severity=severity,
            translation_key=key,
            translation_placeholders={
                "entry_title": self.coordinator.config_entry.title,
                **placeholders,
            },
        )

    def _delete(self, kind: str) -> None:
        ir.async_delete_issue(self.hass, DOMAIN, issue_id(kind, self.entry_id))

    def _at(self, kind: str, when: datetime) -> None:
        """Check again at `when` (one timer per issue kind)."""
        current = self._timers.get(kind)
        if current is not None and current[0] == when:
            return
        self._cancel(kind)

        @callback
        def fire(_now: datetime) -> None:
            self._timers.pop(kind, None)
            self._async_check()

        self._timers[kind] = (when, async_track_point_in_utc_time(self.hass, fire, when))

    def _cancel(self, kind: str) -> None:
        if (current := self._timers.pop(kind, None)) is not None:
            current[1]()
