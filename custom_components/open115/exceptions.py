"""The errors the keeper and the consumer API raise: translated, never holding a token."""

from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from .const import DOMAIN


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
