"""options_flow.py: the refresh margin's range when the entry does not know its tokens' lifetime.

The options flow on a loaded entry (reload, bounds, the capped margin): test_options_flow_loaded.py.
"""

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.open115.const import (
    CONF_EXPIRES_IN,
    CONF_REFRESH_MARGIN,
    DEFAULT_REFRESH_MARGIN,
    MAX_REFRESH_MARGIN,
)

from .conftest import make_entry
from .emulator import Emulator115, Grant


def entry_without_lifetime(
    emulator: Emulator115, grant: Grant, lifetime: int | None
) -> MockConfigEntry:
    """An entry whose data has no usable expires_in (missing, or 0)."""
    entry = make_entry(emulator, grant)
    data = dict(entry.data)
    if lifetime is None:
        del data[CONF_EXPIRES_IN]
    else:
        data[CONF_EXPIRES_IN] = lifetime
    return MockConfigEntry(
        domain=entry.domain, title=entry.title, unique_id=entry.unique_id, data=data
    )


@pytest.mark.parametrize("lifetime", [None, 0])
async def test_without_a_lifetime_the_range_ends_at_the_largest_margin(
    hass: HomeAssistant, emulator: Emulator115, grant: Grant, lifetime: int | None
) -> None:
    """No lifetime to take a quarter of: up to MAX_REFRESH_MARGIN (3600 s) takes effect."""
    entry = entry_without_lifetime(emulator, grant, lifetime)
    entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["description_placeholders"] == {"min": "60", "max": "3600"}
    assert result["data_schema"]({}) == {CONF_REFRESH_MARGIN: DEFAULT_REFRESH_MARGIN}

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_REFRESH_MARGIN: MAX_REFRESH_MARGIN + 1}
    )
    assert result["errors"] == {CONF_REFRESH_MARGIN: "margin_out_of_range"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_REFRESH_MARGIN: MAX_REFRESH_MARGIN}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {CONF_REFRESH_MARGIN: 3600}
    await hass.async_block_till_done()
