"""Config entry diagnostics: the token state and timings, nothing secret, nobody named."""

from datetime import datetime, timedelta
from http import HTTPStatus
import json
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.diagnostics import REDACTED
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockUser,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.open115.const import (
    CONF_AUTHORIZED_AT,
    CONF_REFRESH_MARGIN,
    DOMAIN,
)
from custom_components.open115.keeper import TokenKeeper

from .conftest import USER_ID, USER_NAME, make_entry_data, setup_entry
from .emulator import REFRESH_PATH, Emulator115, Grant

pytestmark = pytest.mark.usefixtures("emulator_url")


async def download(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_admin_user: MockUser,
    entry: MockConfigEntry,
) -> tuple[dict[str, Any], str]:
    """The whole diagnostics download (as the UI gets it) and its raw text."""
    assert await async_setup_component(hass, "diagnostics", {})
    # An admin's access token of the (moved) frozen time.
    refresh_token = next(iter(hass_admin_user.refresh_tokens.values()))
    client = await hass_client(hass.auth.async_create_access_token(refresh_token))
    response = await client.get(f"/api/diagnostics/config_entry/{entry.entry_id}")
    assert response.status == HTTPStatus.OK
    text = await response.text()
    payload: dict[str, Any] = json.loads(text)
    return payload, text


def assert_nothing_secret(text: str, secrets: set[str]) -> None:
    """No token of the emulator, and neither the user id nor the user name, in `text`."""
    assert secrets  # the scan must have something to look for
    for secret in secrets | {str(USER_ID), USER_NAME}:
        assert secret not in text


def entry_with(emulator: Emulator115, grant: Grant, **extra: Any) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title=USER_NAME,
        unique_id=str(USER_ID),
        data={**make_entry_data(emulator, grant), **extra.pop("data", {})},
        **extra,
    )


async def test_loaded_entry(
    freezer: FrozenDateTimeFactory,
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_admin_user: MockUser,
    emulator: Emulator115,
    grant: Grant,
) -> None:
    start = dt_util.utcnow()
    authorized = start - timedelta(days=30)
    entry = entry_with(
        emulator,
        grant,
        data={CONF_AUTHORIZED_AT: authorized.isoformat()},
        options={CONF_REFRESH_MARGIN: 900},
    )
    await setup_entry(hass, entry)
    payload, text = await download(hass, hass_client, hass_admin_user, entry)
    data = payload["data"]

    expires_at = start + timedelta(seconds=7200)
    due = expires_at - timedelta(seconds=900)
    next_refresh = datetime.fromisoformat(data["token"].pop("next_refresh"))
    # The proactive refresh starts up to 30 s early, at random.
    assert due - timedelta(seconds=30) <= next_refresh <= due
    assert data["token"] == {
        "status": "ok",
        "expires_at": expires_at.isoformat(),
        "expires_in": 7200,
        "refreshed_at": start.isoformat(),
        "authorized_at": authorized.isoformat(),
        "refresh_token_expires": (authorized + timedelta(days=365)).isoformat(),
        "failures": 0,
        "failing_since": None,
        "last_error": None,
        "last_error_code": None,
        "reauth_reason": None,
    }
    assert data["loaded"] is True
    assert data["entry_state"] == "loaded"
    assert data["timings"] == {
        "margin": 900.0,
        "seconds_left": 7200.0,
        "refresh_due_at": due.isoformat(),
        "refresh_count": 0,
    }
    assert data["options"] == {CONF_REFRESH_MARGIN: 900}
    assert data["entry"]["title"] == REDACTED
    assert data["entry"]["unique_id"] == REDACTED
    assert data["entry"]["options"] == {CONF_REFRESH_MARGIN: 900}
    assert data["entry"]["data"] == {
        "access_token": REDACTED,
        "refresh_token": REDACTED,
        "expires_at": expires_at.isoformat(),
        "expires_in": 7200,
        "refreshed_at": start.isoformat(),
        "authorized_at": authorized.isoformat(),
    }
    assert_nothing_secret(text, emulator.secrets_issued())


async def test_after_rotation_and_failure(
    freezer: FrozenDateTimeFactory,
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_admin_user: MockUser,
    emulator: Emulator115,
    grant: Grant,
    config_entry: MockConfigEntry,
) -> None:
    """A refresh, then a revoked grant: counts, errors and the reason show; no token does."""
    await setup_entry(hass, config_entry)
    coordinator: TokenKeeper = config_entry.runtime_data.keeper
    freezer.move_to(coordinator.refresh_due_at())
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert emulator.count(REFRESH_PATH) == 1
    refreshed_at = dt_util.utcnow()
    # Revoking forgets the grant's access tokens: collect them now.
    secrets = emulator.secrets_issued()

    emulator.revoke(grant)
    freezer.move_to(coordinator.refresh_due_at())
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert emulator.count(REFRESH_PATH) == 2
    failed_at = dt_util.utcnow()

    payload, text = await download(hass, hass_client, hass_admin_user, config_entry)
    token = payload["data"]["token"]
    assert token == {
        "status": "reauth_required",
        "expires_at": (refreshed_at + timedelta(seconds=7200)).isoformat(),
        "expires_in": 7200,
        "next_refresh": None,
        "refreshed_at": refreshed_at.isoformat(),
        "authorized_at": None,
        "refresh_token_expires": None,
        "failures": 1,
        "failing_since": failed_at.isoformat(),
        "last_error": "Open115AuthError",
        "last_error_code": 40140116,
        "reauth_reason": "revoked",
    }
    timings = payload["data"]["timings"]
    assert timings["refresh_count"] == 1
    assert (
        timings["seconds_left"]
        == (refreshed_at + timedelta(seconds=7200) - failed_at).total_seconds()
    )
    # No issue of open115's: Home Assistant's own repair asks for re-authentication.
    assert payload["issues"] == []
    # Two refresh tokens (seeded, rotated: now dead but kept) and two access tokens.
    secrets |= emulator.secrets_issued()
    assert len(secrets) == 4
    assert config_entry.data["refresh_token"] in secrets
    assert_nothing_secret(text, secrets)


async def test_entry_that_failed_setup(
    freezer: FrozenDateTimeFactory,
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_admin_user: MockUser,
    emulator: Emulator115,
    grant: Grant,
) -> None:
    """An entry whose token was found dead at setup: the stored state, and no keeper status."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=USER_NAME,
        unique_id=str(USER_ID),
        data=make_entry_data(emulator, grant, expires_in=60),
    )
    secrets = emulator.secrets_issued()
    emulator.revoke(grant)
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert emulator.count(REFRESH_PATH) == 1
    payload, text = await download(hass, hass_client, hass_admin_user, entry)
    data = payload["data"]
    assert data["loaded"] is False
    assert data["entry_state"] == "setup_error"
    assert data["token"]["status"] is None
    assert data["token"]["next_refresh"] is None
    assert data["token"]["expires_in"] == 7200
    assert data["timings"] == {"seconds_left": 60.0}
    assert data["options"] == {}
    assert data["entry"]["data"]["refresh_token"] == REDACTED
    assert data["entry"]["data"]["access_token"] == REDACTED
    assert payload["issues"] == []
    assert_nothing_secret(text, secrets | emulator.secrets_issued())
