"""Where the client gets its access token: asked right before each Open API request."""

from abc import ABC, abstractmethod

from .errors import Open115AccessTokenError


class AccessTokenSource(ABC):
    """Where the client gets its access token before each proapi request (the keeper, in HA)."""

    @abstractmethod
    async def async_get_access_token(self, rejected_token: str | None = None) -> str:
        """A usable access token.

        `rejected_token`: 115 refused that token (although not expired): return a fresh one
        (the source decides whether to refresh).
        """


class StaticAccessToken(AccessTokenSource):
    """One fixed token; a rejection re-raises (there is nothing to refresh)."""

    def __init__(self, access_token: str) -> None:
        """Hand out `access_token`."""
        self._access_token = access_token

    async def async_get_access_token(self, rejected_token: str | None = None) -> str:
        """The token; refused, it raises `Open115AccessTokenError` (marked reported)."""
        if rejected_token is not None:
            raise Open115AccessTokenError("The access token was refused", reported=True)
        return self._access_token
