"""flow_input.py: a pasted refresh token cleaned, refused before any request when it cannot be one."""

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest

from custom_components.open115.config_flow import clean_refresh_token
from custom_components.open115.const import CONF_REFRESH_TOKEN

from .emulator import (
    Emulator115,
    Grant,
)
from .flow_helpers import requests, start_user_flow, submit

pytestmark = pytest.mark.usefixtures("no_account_reads")

# ----- input cleaning ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pasted", "expected"),
    [
        ("abc", "abc"),
        ("  abc \n", "abc"),
        ('"abc"', "abc"),
        ("'abc'", "abc"),
        ("`abc`", "abc"),
        ("\u201cabc\u201d", "abc"),
        ("Bearer abc", "abc"),
        ("bearer   abc", "abc"),
        (' "Bearer abc" ', "abc"),
        ("Bearer 'abc'", "abc"),
        ("", ""),
        ('  "" ', ""),
        ("Bearer ", "Bearer"),
        ("Bearerabc", "Bearerabc"),
    ],
)
def test_clean_refresh_token(pasted: str, expected: str) -> None:
    assert clean_refresh_token(pasted) == expected


@pytest.mark.parametrize(
    "wrap",
    [
        "  {}  ",
        "\n{}\n",
        '"{}"',
        "'{}'",
        "\u201c{}\u201d",
        "Bearer {}",
        'Bearer "{}"',
        ' "Bearer {}"\t',
    ],
)
async def test_user_step_cleans_pasted_token(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str, grant: Grant, wrap: str
) -> None:
    pasted = emulator.live_refresh_token(grant)
    result = await start_user_flow(hass)
    result = await submit(hass, result["flow_id"], wrap.format(pasted))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    # The clean token was the one refreshed (otherwise 115 would have refused it).
    assert emulator.used_refresh_tokens[pasted] == grant.grant_id
    assert result["result"].data[CONF_REFRESH_TOKEN] == emulator.live_refresh_token(grant)
    assert requests(emulator) == (1, 1)
    await hass.async_block_till_done()


@pytest.mark.parametrize(
    ("pasted", "error"),
    [
        ("", "empty_token"),
        ("   \n\t ", "empty_token"),
        ('""', "empty_token"),
        ("Bearer  ", "invalid_format"),
        ("short_token", "invalid_format"),
        ("x" * 15, "invalid_format"),
        ("x" * 4097, "invalid_format"),
        ("rt_has an inner space_123456", "invalid_format"),
        ("rt_non_ascii_\u00e9_1234567890", "invalid_format"),
        ("rt_control_\x7f_1234567890", "invalid_format"),
    ],
)
async def test_user_step_refuses_impossible_input_without_requests(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str, pasted: str, error: str
) -> None:
    result = await start_user_flow(hass)
    result = await submit(hass, result["flow_id"], pasted)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "token"
    assert result["errors"] == {CONF_REFRESH_TOKEN: error}
    assert requests(emulator) == (0, 0)


async def test_user_step_accepts_bounds_of_token_length(
    hass: HomeAssistant, emulator: Emulator115, emulator_url: str
) -> None:
    """16 and 4096 characters pass the form and reach 115 (which refuses unknown tokens)."""
    result = await start_user_flow(hass)
    result = await submit(hass, result["flow_id"], "x" * 16)
    assert result["errors"] == {"base": "invalid_token"}
    result = await submit(hass, result["flow_id"], "y" * 4096)
    assert result["errors"] == {"base": "invalid_token"}
    assert requests(emulator) == (2, 0)
