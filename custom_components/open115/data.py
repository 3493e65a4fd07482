"""What a loaded entry carries (`entry.runtime_data`)."""

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry

from .keeper import TokenKeeper


@dataclass(slots=True)
class Open115Data:
    """The loaded entry's parts: the token keeper."""

    keeper: TokenKeeper


type Open115ConfigEntry = ConfigEntry[Open115Data]
