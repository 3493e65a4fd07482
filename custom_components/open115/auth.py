"""The keeper as the 115 client's token source (the client asks it before each request)."""

from typing import override

from .api.token_source import AccessTokenSource
from .const import DEFAULT_MIN_VALIDITY
from .keeper import TokenKeeper


class KeeperAuth(AccessTokenSource):
    """The keeper as the client's token source."""

    def __init__(self, keeper: TokenKeeper, min_validity: float = DEFAULT_MIN_VALIDITY) -> None:
        """Ask `keeper` for tokens valid at least `min_validity` seconds."""
        self._keeper = keeper
        self._min_validity = min_validity

    @override
    async def async_get_access_token(self, rejected_token: str | None = None) -> str:
        """The keeper's token; a rejected one is reported to it (it decides on a refresh)."""
        state = await self._keeper.async_ensure_valid(
            self._min_validity, rejected_token=rejected_token
        )
        return state.access_token
