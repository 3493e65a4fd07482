"""The errors the keeper and the consumer API raise: translated, never holding a token."""

from datetime import datetime

from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.util import dt as dt_util

from .const import DOMAIN, MIN_REFRESH_INTERVAL
from .token_record import TokenRecord


class KeeperError(HomeAssistantError):
    """No valid access token can be had; carries a translated message."""

    def __init__(self, key: str, **placeholders: str) -> None:
        """Translate by key from the integration's `exceptions`."""
        super().__init__(
            translation_domain=DOMAIN,
            translation_key=key,
            translation_placeholders=placeholders or None,
        )


class ReauthRequiredError(KeeperError):
    """The refresh token is dead; the user must authorize again."""


class RefreshTooSoonError(KeeperError, ServiceValidationError):
    """A forced refresh refused because of the caller's timing.

    Too soon after the last refresh (115's 60 s window), or while 115 rate limits this token.
    """


def refresh_too_soon(
    record: TokenRecord, refreshed_at: datetime | None, title: str
) -> RefreshTooSoonError | None:
    """Why a forced refresh (the `refresh_token` action) may not be sent now, if it may not."""
    now = dt_util.utcnow()
    failure = record.failure_now()
    if failure is not None and failure.slow and now < failure.retry_at:
        # 115 asked us to slow down, or refused without saying why: a forced refresh now
        # would only prolong it (the status may say expired meanwhile).
        when = dt_util.as_local(failure.retry_at).strftime("%H:%M")
        if failure.rate_limited:
            return RefreshTooSoonError("rate_limited", entry_title=title)
        if failure.last_error_code is None:
            return RefreshTooSoonError("refresh_backing_off", entry_title=title, time=when)
        return RefreshTooSoonError(
            "refresh_backing_off_code",
            entry_title=title,
            time=when,
            code=str(failure.last_error_code),
        )
    if any(
        at is not None and now - at < MIN_REFRESH_INTERVAL
        for at in (refreshed_at, record.last_request_at)
    ):
        return RefreshTooSoonError(
            "refresh_too_soon", seconds=str(int(MIN_REFRESH_INTERVAL.total_seconds()))
        )
    return None
