"""Fixtures: the loopback 115 emulator and config entries that hold its tokens."""

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
import pathlib
from typing import Any
from unittest.mock import PropertyMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.open115.account_coordinator import AccountCoordinator
from custom_components.open115.api import TokenPair
from custom_components.open115.const import DOMAIN, ENV_BASE_URL
from custom_components.open115.keeper import TokenKeeper
from custom_components.open115.token_state import TOKEN_KEYS, token_data

from .emulator import Emulator115, Grant, RunningEmulator

pytest_plugins = ["tests.api_fixtures"]

USER_ID = 310000001
USER_NAME = "emu_user"
OTHER_ID = 320000002
OTHER_NAME = "other_user"
ENTRIES_KEY = "core.config_entries"


# The longest modules, started first when the suite runs on several workers (scripts/test:
# pytest-xdist, --dist loadscope --no-loadscope-reorder), so that none is left for the end; then
# the other end-to-end modules (they mostly wait on their processes), then the rest in order.
# How xdist 3.8 hands them out: one module to each of the 4 workers, then at once a second one to
# each worker whose module has at most 2 tests (here test_property.py and test_browser_flows.py),
# then a module whenever a worker is down to 2 tests. So test_handoff.py follows the short
# test_property.py, test_openlist_standin.py (seconds) the longest, test_browser_flows.py, and
# test_browser_chinese.py goes to test_browser.py's worker after its first tests. Measured
# (seconds after pytest started): with test_browser_chinese.py behind test_browser_flows.py the
# last worker ended at 267, the others at 153-167.
SLOW_FIRST = (
    "tests/test_property.py",  # ~40 s, then tests/e2e/test_handoff.py (~95 s)
    "tests/e2e/test_browser.py",  # ~65 s, then tests/e2e/test_browser_chinese.py (~100 s)
    "tests/e2e/test_e2e.py",  # ~170 s
    "tests/e2e/test_browser_flows.py",  # ~175 s, then tests/e2e/test_openlist_standin.py (~5 s)
    "tests/e2e/test_handoff.py",
    "tests/e2e/test_openlist_standin.py",
    "tests/e2e/test_browser_chinese.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order the modules: SLOW_FIRST, the other end-to-end modules, the rest (a stable sort)."""

    def rank(item: pytest.Item) -> int:
        module = item.nodeid.split("::", 1)[0]
        if module in SLOW_FIRST:
            return SLOW_FIRST.index(module)
        return len(SLOW_FIRST) + (0 if module.startswith("tests/e2e/") else 1)

    items.sort(key=rank)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/open115."""


@pytest.fixture(autouse=True)
def backup_config_dir(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> None:
    """A config directory of its own for each backup test.

    Home Assistant's backup integration writes received and local backups under the config
    directory (`tmp_backups/`, `backups/`); the test plugin's is one directory shared by every
    xdist worker, so two backup tests running at once would delete each other's files.
    """
    if request.module.__name__.rsplit(".", 1)[-1].startswith("test_backup"):
        hass: HomeAssistant = request.getfixturevalue("hass")
        hass.config.config_dir = str(tmp_path)


@pytest.fixture
def emulator() -> Emulator115:
    """The emulated 115 service, on Home Assistant's (possibly frozen) clock."""
    emu = Emulator115(clock=lambda: dt_util.utcnow().timestamp())
    emu.add_account(USER_ID, USER_NAME)
    return emu


@pytest.fixture
async def emulator_url(
    emulator: Emulator115, socket_enabled: None, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """Serve the emulator on loopback and point open115 at it."""
    running = await RunningEmulator(emulator).start()
    monkeypatch.setenv(ENV_BASE_URL, running.base_url)
    yield running.base_url
    await running.stop()


@pytest.fixture
def no_account_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """The account coordinator does not start: for tests that count what the flow and the
    keeper send (the account's reads are tests/test_account_coordinator_sensors.py's)."""

    async def _not_started(self: AccountCoordinator) -> None:
        return None

    monkeypatch.setattr(AccountCoordinator, "async_start", _not_started)


@pytest.fixture
def grant(emulator: Emulator115) -> Grant:
    """A live authorization of the test account."""
    return emulator.authorize(USER_ID)


def make_entry_data(
    emulator: Emulator115, grant: Grant, *, expires_in: int | None = None
) -> dict[str, Any]:
    """Entry data holding the grant's live refresh token and a fresh access token."""
    lifetime = expires_in or emulator.expires_in
    access = emulator.issue_access_token(grant, lifetime)
    pair = TokenPair(
        access_token=access,
        refresh_token=emulator.live_refresh_token(grant),
        expires_in=emulator.expires_in,
        received_at=dt_util.utcnow() - timedelta(seconds=emulator.expires_in - lifetime),
    )
    return token_data(pair, authorized_at=None)


def make_entry(
    emulator: Emulator115, grant: Grant, *, expires_in: int | None = None, **extra: Any
) -> MockConfigEntry:
    """An entry of the test account holding the grant's tokens (`extra`: more entry data)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=USER_NAME,
        unique_id=str(USER_ID),
        data={**make_entry_data(emulator, grant, expires_in=expires_in), **extra},
    )


@pytest.fixture
def config_entry(emulator: Emulator115, grant: Grant) -> MockConfigEntry:
    """An entry whose stored access token is fresh (2 h left)."""
    return make_entry(emulator, grant)


@pytest.fixture
def secrets_seen(emulator: Emulator115) -> Iterator[set[str]]:
    """Every token the emulator issued during the test (to scan outputs for)."""
    seen: set[str] = set()
    yield seen
    seen |= emulator.secrets_issued()


def keeper_of(entry: MockConfigEntry) -> TokenKeeper:
    """The token keeper of a loaded entry."""
    keeper: TokenKeeper = entry.runtime_data.keeper
    return keeper


async def setup_entry(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Add and set up an entry, waiting for Home Assistant to settle."""
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


def token_file(hass_storage: dict[str, Any], entry_id: str) -> dict[str, Any] | None:
    """The entry's token file as written to (mocked) disk, if it was."""
    stored = hass_storage.get(f"{DOMAIN}.{entry_id}.token")
    return None if stored is None else dict(stored["data"])


def stored_entry(hass_storage: dict[str, Any], entry_id: str) -> dict[str, Any]:
    """The entry as on (mocked) disk: its token as in its token file (written at once), the
    rest as in Home Assistant's config entries (written by its delayed save)."""
    entries = hass_storage[ENTRIES_KEY]["data"]["entries"] if ENTRIES_KEY in hass_storage else []
    entry = next((e for e in entries if e["entry_id"] == entry_id), {"entry_id": entry_id})
    data = dict(entry.get("data", {}))
    token = token_file(hass_storage, entry_id)
    if token is not None:
        data = {k: v for k, v in data.items() if k not in TOKEN_KEYS} | token["token"]
    return {**entry, "data": data}


def stored_data(hass_storage: dict[str, Any], entry: MockConfigEntry) -> dict[str, Any]:
    """The entry's data as it is on (mocked) disk (see `stored_entry`)."""
    data: dict[str, Any] = stored_entry(hass_storage, entry.entry_id)["data"]
    return data


async def advance(hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float) -> None:
    """Move the frozen clock and run what became due."""
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


@pytest.fixture
def timestamps_enabled() -> Iterator[None]:
    """Entities that are off by default (the diagnostic timestamps) are on, as core's tests do."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        yield
