"""The keeper as the client's token source (auth.py) and the entry's client built on it."""

from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.open115.auth import KeeperAuth

from .conftest import USER_ID, keeper_of, setup_entry
from .emulator import REFRESH_PATH, USER_INFO_PATH, Emulator115


async def test_keeper_auth_hands_out_the_keepers_token(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    no_account_reads: None,
) -> None:
    await setup_entry(hass, config_entry)
    auth = KeeperAuth(keeper_of(config_entry))
    assert await auth.async_get_access_token() == config_entry.data["access_token"]
    assert emulator.count(REFRESH_PATH) == 0


async def test_keeper_auth_reports_a_rejected_token_to_the_keeper(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    no_account_reads: None,
) -> None:
    await setup_entry(hass, config_entry)
    old = config_entry.data["access_token"]
    fresh = await KeeperAuth(keeper_of(config_entry)).async_get_access_token(rejected_token=old)
    assert emulator.count(REFRESH_PATH) == 1
    assert fresh == config_entry.data["access_token"] != old


async def test_the_entrys_client_asks_the_keeper_and_reports_a_refusal(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    no_account_reads: None,
) -> None:
    """runtime_data.client: the keeper's token; a refused one costs one refresh and one retry."""
    await setup_entry(hass, config_entry)
    client = config_entry.runtime_data.client
    old = config_entry.data["access_token"]
    emulator.access_tokens.pop(old)  # 115 voided it early
    assert (await client.user_info()).user_id == str(USER_ID)
    assert emulator.count(REFRESH_PATH) == 1
    assert [r.code for r in emulator.requests if r.path == USER_INFO_PATH] == [40140123, 0]
    assert client.proapi_requests == 2
