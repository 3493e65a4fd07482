"""What a loaded entry carries (`entry.runtime_data`)."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeassistant.config_entries import ConfigEntry

from .keeper import TokenKeeper

if TYPE_CHECKING:
    from .account_coordinator import AccountCoordinator


@dataclass(slots=True)
class Open115Data:
    """The loaded entry's parts: the token keeper, and the account it serves."""

    keeper: TokenKeeper
    account: AccountCoordinator


type Open115ConfigEntry = ConfigEntry[Open115Data]
