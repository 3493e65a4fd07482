"""What a loaded entry carries (`entry.runtime_data`)."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntry

from .api import Open115Client
from .keeper import TokenKeeper

if TYPE_CHECKING:
    from .account_coordinator import AccountCoordinator


@dataclass(slots=True)
class Open115Data:
    """The loaded entry's parts: the token keeper, the client it serves, and the account.

    `client` asks the keeper for its token before each request (`auth.KeeperAuth`).
    """

    keeper: TokenKeeper
    account: AccountCoordinator
    client: Open115Client


type Open115ConfigEntry = ConfigEntry[Open115Data]
