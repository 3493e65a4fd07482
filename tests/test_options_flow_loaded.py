"""options_flow.py on a loaded entry: the margin changed with a reload and no refresh, its bounds, the margin in effect."""

from datetime import timedelta

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.open115.const import (
    CONF_REFRESH_MARGIN,
    DEFAULT_REFRESH_MARGIN,
)

from .conftest import (
    make_entry,
    setup_entry,
)
from .emulator import (
    Emulator115,
    Grant,
)
from .flow_helpers import requests

pytestmark = pytest.mark.usefixtures("no_account_reads")

# ----- options -------------------------------------------------------------------------------


async def test_options_change_margin_reloads_without_refresh(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    keeper = config_entry.runtime_data.keeper
    assert keeper.margin == timedelta(seconds=DEFAULT_REFRESH_MARGIN)

    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    schema = result["data_schema"]
    assert schema is not None
    assert schema({}) == {CONF_REFRESH_MARGIN: DEFAULT_REFRESH_MARGIN}

    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_REFRESH_MARGIN: 900}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert config_entry.options == {CONF_REFRESH_MARGIN: 900}
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.LOADED
    assert config_entry.runtime_data.keeper is not keeper
    assert config_entry.runtime_data.keeper.margin == timedelta(seconds=900)
    assert requests(emulator) == (0, 0)

    # The form now shows the stored value; keeping it does not reload.
    keeper = config_entry.runtime_data.keeper
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    assert result["data_schema"] is not None
    assert result["data_schema"]({}) == {CONF_REFRESH_MARGIN: 900}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_REFRESH_MARGIN: 900.0}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert config_entry.options == {CONF_REFRESH_MARGIN: 900}
    await hass.async_block_till_done()
    assert config_entry.runtime_data.keeper is keeper
    assert requests(emulator) == (0, 0)


# The emulator's tokens live 7200 s: a margin above a quarter of that (1800 s) would be capped.
@pytest.mark.parametrize(("value", "stored"), [(60, 60), (1800, 1800), (120.0, 120)])
async def test_options_bounds_accepted(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    value: float,
    stored: int,
) -> None:
    await setup_entry(hass, config_entry)
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_REFRESH_MARGIN: value}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert config_entry.options == {CONF_REFRESH_MARGIN: stored}
    assert type(config_entry.options[CONF_REFRESH_MARGIN]) is int
    await hass.async_block_till_done()
    assert requests(emulator) == (0, 0)


@pytest.mark.parametrize("value", [59, 1801, 1900, 3600, 3601, 0, -600, 600.5])
async def test_options_out_of_bounds_refused(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    value: float,
) -> None:
    """What would be refused or capped is refused in the form, with the range, and kept."""
    await setup_entry(hass, config_entry)
    keeper = config_entry.runtime_data.keeper
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    assert result["description_placeholders"] == {"min": "60", "max": "1800"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_REFRESH_MARGIN: value}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_REFRESH_MARGIN: "margin_out_of_range"}
    assert result["description_placeholders"] == {"min": "60", "max": "1800"}
    (key,) = result["data_schema"].schema
    assert key.description == {"suggested_value": value}
    await hass.async_block_till_done()
    assert config_entry.options == {}
    assert config_entry.runtime_data.keeper is keeper
    assert requests(emulator) == (0, 0)


async def test_options_not_a_number_refused(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    result = await hass.config_entries.options.async_init(config_entry.entry_id)
    with pytest.raises(InvalidData):
        await hass.config_entries.options.async_configure(
            result["flow_id"], {CONF_REFRESH_MARGIN: "soon"}
        )
    assert config_entry.options == {}


async def test_options_show_the_margin_in_effect(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
) -> None:
    """A margin stored before (1900 s) is capped by the keeper: the form shows what is used."""
    entry = make_entry(emulator, grant)
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, options={CONF_REFRESH_MARGIN: 1900})
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.runtime_data.keeper.margin == timedelta(seconds=1800)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["data_schema"]({}) == {CONF_REFRESH_MARGIN: 1800}
    assert result["description_placeholders"] == {"min": "60", "max": "1800"}
