"""The service actions `open115.get_access_token` and `open115.refresh_token`."""

import asyncio
from datetime import datetime, timedelta
import json
from pathlib import Path
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError, Unauthorized
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockUser,
    async_fire_time_changed,
)
import voluptuous as vol

from custom_components.open115.const import (
    DOMAIN,
    MIN_REFRESH_INTERVAL,
    SERVICE_GET_ACCESS_TOKEN,
    SERVICE_REFRESH_TOKEN,
)
from custom_components.open115.exceptions import ReauthRequiredError, RefreshTooSoonError

from .conftest import USER_ID, USER_NAME, make_entry_data, setup_entry
from .emulator import FAULT_HTTP_500, REFRESH_PATH, Emulator115, Grant
from .helpers import START, successful_refreshes

TRANSLATIONS = json.loads(
    (Path(__file__).parent.parent / "custom_components/open115/translations/en.json").read_text()
)


@pytest.fixture(autouse=True)
def frozen(freezer: FrozenDateTimeFactory) -> FrozenDateTimeFactory:
    """Freeze time at a round instant before any token is issued."""
    freezer.move_to(START)
    return freezer


async def call(
    hass: HomeAssistant,
    service: str,
    data: dict[str, Any] | None = None,
    context: Context | None = None,
) -> dict[str, Any]:
    """Call an open115 action and return its response."""
    response = await hass.services.async_call(
        DOMAIN, service, data or {}, blocking=True, return_response=True, context=context
    )
    assert response is not None
    return dict(response)


async def move(hass: HomeAssistant, freezer: FrozenDateTimeFactory, to: datetime) -> None:
    """Move frozen time and let timers that are due run."""
    freezer.move_to(to)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


def emulator_expiry(emulator: Emulator115, token: str) -> str:
    """The emulator's expiry of an access token, as ISO 8601 UTC."""
    return dt_util.utc_from_timestamp(emulator.access_tokens[token].expires_at).isoformat()


def translated(key: str, **placeholders: str) -> str:
    """The English message of an exception translation key (Home Assistant drops the dot)."""
    return str(TRANSLATIONS["exceptions"][key]["message"]).rstrip(".").format(**placeholders)


def assert_translated(
    err: HomeAssistantError, key: str, placeholders: dict[str, str] | None = None
) -> None:
    """The error carries the translation key, its placeholders and the translated text."""
    assert err.translation_domain == DOMAIN
    assert err.translation_key == key
    assert (err.translation_placeholders or {}) == (placeholders or {})
    assert str(err) == translated(key, **(placeholders or {}))


def second_entry(emulator: Emulator115) -> MockConfigEntry:
    """An entry of a second 115 account."""
    emulator.add_account(310000002, "other_user")
    grant = emulator.authorize(310000002)
    return MockConfigEntry(
        domain=DOMAIN,
        title="other_user",
        unique_id="310000002",
        data=make_entry_data(emulator, grant),
    )


# ----- get_access_token ------------------------------------------------------------------------


async def test_get_access_token_response(
    hass: HomeAssistant,
    frozen: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    stored = config_entry.data["access_token"]

    response = await call(hass, SERVICE_GET_ACCESS_TOKEN)

    assert set(response) == {"access_token", "expires_at", "expires_in", "user_id"}
    assert response["access_token"] == stored
    assert response["access_token"] in emulator.access_tokens
    assert response["expires_at"] == emulator_expiry(emulator, stored)
    parsed = datetime.fromisoformat(response["expires_at"])
    assert parsed.utcoffset() == timedelta(0)
    assert response["expires_in"] == emulator.expires_in
    assert response["user_id"] == str(USER_ID)
    assert emulator.count(REFRESH_PATH) == 0

    # Whole seconds left, rounded down.
    await move(hass, frozen, START + timedelta(seconds=1000.5))
    response = await call(
        hass, SERVICE_GET_ACCESS_TOKEN, {"config_entry_id": config_entry.entry_id}
    )
    assert response["access_token"] == stored
    left = emulator.access_tokens[stored].expires_at - dt_util.utcnow().timestamp()
    assert isinstance(response["expires_in"], int)
    assert response["expires_in"] == int(left) == emulator.expires_in - 1001
    assert emulator.count(REFRESH_PATH) == 0


async def test_min_validity_refreshes_once(
    hass: HomeAssistant,
    frozen: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    old = config_entry.data["access_token"]
    # 2000 s left: before the proactive refresh point (600 s before expiry).
    await move(hass, frozen, START + timedelta(seconds=emulator.expires_in - 2000))
    assert emulator.count(REFRESH_PATH) == 0

    response = await call(hass, SERVICE_GET_ACCESS_TOKEN, {"min_validity": 1999})
    assert response["access_token"] == old
    assert response["expires_in"] == 2000
    assert emulator.count(REFRESH_PATH) == 0

    # Two callers at once that both need more than is left share one refresh.
    first, second = await asyncio.gather(
        call(hass, SERVICE_GET_ACCESS_TOKEN, {"min_validity": 2001}),
        call(hass, SERVICE_GET_ACCESS_TOKEN, {"min_validity": 3000}),
    )
    assert emulator.count(REFRESH_PATH) == 1
    assert successful_refreshes(emulator) == 1
    new = first["access_token"]
    assert second == first
    assert new != old
    assert new in emulator.access_tokens
    assert first["expires_at"] == emulator_expiry(emulator, new)
    assert first["expires_in"] == emulator.expires_in
    assert config_entry.data["access_token"] == new
    assert config_entry.data["refresh_token"] == emulator.live_refresh_token(grant)

    # The fresh token lasts: no further request.
    again = await call(hass, SERVICE_GET_ACCESS_TOKEN, {"min_validity": 3000})
    assert again["access_token"] == new
    assert emulator.count(REFRESH_PATH) == 1


@pytest.mark.parametrize("asked", [3601, 86400, 86401, 10**30])
async def test_min_validity_above_the_cap_is_capped(
    hass: HomeAssistant,
    frozen: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    config_entry: MockConfigEntry,
    asked: int,
) -> None:
    """Asking more than half a token's lifetime (3600 s) asks for half of it, not an error."""
    await setup_entry(hass, config_entry)
    old = config_entry.data["access_token"]
    await move(hass, frozen, START + timedelta(seconds=emulator.expires_in - 3601))
    response = await call(hass, SERVICE_GET_ACCESS_TOKEN, {"min_validity": asked})
    assert response["access_token"] == old  # 3601 s left: enough for the cap
    assert emulator.count(REFRESH_PATH) == 0
    await move(hass, frozen, START + timedelta(seconds=emulator.expires_in - 3599))
    response = await call(hass, SERVICE_GET_ACCESS_TOKEN, {"min_validity": asked})
    assert response["access_token"] != old
    assert response["expires_in"] == emulator.expires_in
    assert emulator.count(REFRESH_PATH) == 1


async def test_get_access_token_expired_and_unreachable(
    hass: HomeAssistant,
    frozen: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    # The proactive refresh and its retries fail until the token is gone.
    emulator.inject(REFRESH_PATH, *[FAULT_HTTP_500] * 50)
    await move(hass, frozen, START + timedelta(seconds=emulator.expires_in))
    sent = emulator.count(REFRESH_PATH)

    assert sent == 1

    # A retry is pending: the action does not send another request, and has no token.
    with pytest.raises(HomeAssistantError) as exc:
        await call(hass, SERVICE_GET_ACCESS_TOKEN)
    assert not isinstance(exc.value, ServiceValidationError)
    assert_translated(exc.value, "token_unavailable", {"entry_title": USER_NAME})
    assert emulator.count(REFRESH_PATH) == sent


# ----- refresh_token ---------------------------------------------------------------------------


async def test_refresh_right_after_reconfigure_says_reconfigure_counted(
    hass: HomeAssistant,
    frozen: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    config_entry: MockConfigEntry,
) -> None:
    """Reconfigure refreshed the pasted token: a refresh a moment later is refused, and why."""
    await setup_entry(hass, config_entry)
    await move(hass, frozen, START + timedelta(minutes=30))
    result = await config_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "reconfigure_token"}
    )
    newer = emulator.authorize(USER_ID)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"refresh_token": emulator.live_refresh_token(newer)}
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    sent = emulator.count(REFRESH_PATH)
    await move(hass, frozen, START + timedelta(minutes=30, seconds=10))
    with pytest.raises(RefreshTooSoonError) as exc:
        await call(hass, SERVICE_REFRESH_TOKEN)
    assert_translated(exc.value, "refresh_too_soon", {"seconds": "60"})
    assert "reconfiguring the account counts as a refresh" in str(exc.value)
    assert emulator.count(REFRESH_PATH) == sent


async def test_refresh_token_now_and_too_soon(
    hass: HomeAssistant,
    frozen: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    # The stored pair was received at START: younger than the minimum interval.
    interval = MIN_REFRESH_INTERVAL.total_seconds()
    await move(hass, frozen, START + timedelta(seconds=interval - 1))
    with pytest.raises(RefreshTooSoonError) as exc:
        await call(hass, SERVICE_REFRESH_TOKEN)
    assert_translated(exc.value, "refresh_too_soon", {"seconds": str(int(interval))})
    # The caller's timing, not a failure of open115: a validation error (action-exceptions).
    assert isinstance(exc.value, ServiceValidationError)
    assert emulator.count(REFRESH_PATH) == 0

    await move(hass, frozen, START + MIN_REFRESH_INTERVAL)
    response = await call(hass, SERVICE_REFRESH_TOKEN, {"config_entry_id": config_entry.entry_id})
    assert emulator.count(REFRESH_PATH) == 1
    assert successful_refreshes(emulator) == 1
    new = config_entry.data["access_token"]
    assert new in emulator.access_tokens
    assert response == {"expires_at": emulator_expiry(emulator, new)}
    assert datetime.fromisoformat(response["expires_at"]) == dt_util.utcnow() + timedelta(
        seconds=emulator.expires_in
    )
    assert config_entry.data["refresh_token"] == emulator.live_refresh_token(grant)

    # Refused again right after it, without a request.
    await move(hass, frozen, dt_util.utcnow() + MIN_REFRESH_INTERVAL - timedelta(seconds=1))
    with pytest.raises(RefreshTooSoonError) as exc:
        await call(hass, SERVICE_REFRESH_TOKEN)
    assert_translated(exc.value, "refresh_too_soon", {"seconds": str(int(interval))})
    assert emulator.count(REFRESH_PATH) == 1

    # Without return_response it works too (the response is optional).
    await move(hass, frozen, dt_util.utcnow() + timedelta(seconds=1))
    await hass.services.async_call(DOMAIN, SERVICE_REFRESH_TOKEN, {}, blocking=True)
    assert emulator.count(REFRESH_PATH) == 2
    assert successful_refreshes(emulator) == 2


# ----- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("service", [SERVICE_GET_ACCESS_TOKEN, SERVICE_REFRESH_TOKEN])
async def test_unknown_entry_id(
    hass: HomeAssistant, emulator_url: str, config_entry: MockConfigEntry, service: str
) -> None:
    await setup_entry(hass, config_entry)
    with pytest.raises(ServiceValidationError) as exc:
        await call(hass, service, {"config_entry_id": "no_such_entry"})
    assert_translated(exc.value, "entry_not_found", {"entry_id": "no_such_entry"})


@pytest.mark.parametrize("service", [SERVICE_GET_ACCESS_TOKEN, SERVICE_REFRESH_TOKEN])
async def test_entry_of_another_domain(
    hass: HomeAssistant, emulator_url: str, config_entry: MockConfigEntry, service: str
) -> None:
    await setup_entry(hass, config_entry)
    other = MockConfigEntry(domain="not_open115")
    other.add_to_hass(hass)
    with pytest.raises(ServiceValidationError) as exc:
        await call(hass, service, {"config_entry_id": other.entry_id})
    assert_translated(exc.value, "entry_not_found", {"entry_id": other.entry_id})


@pytest.mark.parametrize("service", [SERVICE_GET_ACCESS_TOKEN, SERVICE_REFRESH_TOKEN])
async def test_entry_not_loaded(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    service: str,
) -> None:
    await setup_entry(hass, config_entry)
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.NOT_LOADED

    with pytest.raises(ServiceValidationError) as exc:
        await call(hass, service, {"config_entry_id": config_entry.entry_id})
    assert_translated(exc.value, "entry_not_loaded", {"entry_title": USER_NAME})
    # Not named, and none loaded.
    with pytest.raises(ServiceValidationError) as exc:
        await call(hass, service)
    assert_translated(exc.value, "no_entry")
    assert emulator.count(REFRESH_PATH) == 0


@pytest.mark.parametrize("service", [SERVICE_GET_ACCESS_TOKEN, SERVICE_REFRESH_TOKEN])
async def test_no_entry(hass: HomeAssistant, emulator_url: str, service: str) -> None:
    assert await async_setup_component(hass, DOMAIN, {})
    await hass.async_block_till_done()
    with pytest.raises(ServiceValidationError) as exc:
        await call(hass, service)
    assert_translated(exc.value, "no_entry")


async def test_several_entries(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    other = second_entry(emulator)
    await setup_entry(hass, config_entry)
    await setup_entry(hass, other)
    assert other.state is ConfigEntryState.LOADED

    for service in (SERVICE_GET_ACCESS_TOKEN, SERVICE_REFRESH_TOKEN):
        with pytest.raises(ServiceValidationError) as exc:
            await call(hass, service)
        assert_translated(exc.value, "several_entries")

    # Named, each gives its own account's token.
    mine = await call(hass, SERVICE_GET_ACCESS_TOKEN, {"config_entry_id": config_entry.entry_id})
    theirs = await call(hass, SERVICE_GET_ACCESS_TOKEN, {"config_entry_id": other.entry_id})
    assert mine["user_id"] == str(USER_ID)
    assert mine["access_token"] == config_entry.data["access_token"]
    assert theirs["user_id"] == "310000002"
    assert theirs["access_token"] == other.data["access_token"]
    assert emulator.count(REFRESH_PATH) == 0


async def test_reauth_required(
    hass: HomeAssistant,
    frozen: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    grant: Grant,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    emulator.revoke(grant)
    await move(hass, frozen, START + MIN_REFRESH_INTERVAL)

    # The forced refresh meets the revoked token.
    with pytest.raises(ReauthRequiredError) as exc:
        await call(hass, SERVICE_REFRESH_TOKEN)
    assert_translated(exc.value, "reauth_required", {"entry_title": USER_NAME})
    assert emulator.count(REFRESH_PATH) == 1

    # From then on both actions refuse without a request, even though the old access
    # token has not reached its expiry time.
    with pytest.raises(ReauthRequiredError) as exc:
        await call(hass, SERVICE_GET_ACCESS_TOKEN)
    assert_translated(exc.value, "reauth_required", {"entry_title": USER_NAME})
    with pytest.raises(ReauthRequiredError) as exc:
        await call(hass, SERVICE_REFRESH_TOKEN)
    assert_translated(exc.value, "reauth_required", {"entry_title": USER_NAME})
    assert emulator.count(REFRESH_PATH) == 1
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]


@pytest.mark.parametrize("data", [{"min_validity": -1}, {"min_validity": "soon"}, {"x": 1}])
async def test_get_access_token_schema(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    data: dict[str, Any],
) -> None:
    await setup_entry(hass, config_entry)
    with pytest.raises(vol.Invalid):
        await call(hass, SERVICE_GET_ACCESS_TOKEN, data)
    assert emulator.count(REFRESH_PATH) == 0


# ----- admins only -----------------------------------------------------------------------------


@pytest.mark.parametrize("service", [SERVICE_GET_ACCESS_TOKEN, SERVICE_REFRESH_TOKEN])
async def test_non_admin_refused(
    hass: HomeAssistant,
    frozen: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    hass_read_only_user: MockUser,
    hass_admin_user: MockUser,
    service: str,
) -> None:
    await setup_entry(hass, config_entry)
    await move(hass, frozen, START + MIN_REFRESH_INTERVAL)
    with pytest.raises(Unauthorized):
        await call(hass, service, context=Context(user_id=hass_read_only_user.id))
    assert emulator.count(REFRESH_PATH) == 0

    # An admin may.
    response = await call(hass, service, context=Context(user_id=hass_admin_user.id))
    assert "expires_at" in response


async def test_get_access_token_while_a_retry_is_pending(
    hass: HomeAssistant,
    frozen: FrozenDateTimeFactory,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    """While refreshing fails, the still valid token comes back with its true expires_in,
    if it lasts the min_validity asked for; otherwise the action says so (issue 17)."""
    await setup_entry(hass, config_entry)
    stored = config_entry.data["access_token"]
    emulator.inject(REFRESH_PATH, FAULT_HTTP_500)
    due = START + timedelta(seconds=emulator.expires_in - 600)
    await move(hass, frozen, due)
    assert emulator.count(REFRESH_PATH) == 1
    assert hass.states.get("sensor.emu_user_token_status").state == "retrying"  # type: ignore[union-attr]

    with pytest.raises(HomeAssistantError) as err:
        await call(hass, SERVICE_GET_ACCESS_TOKEN, {"min_validity": 900})
    assert err.value.translation_key == "token_too_short"
    response = await call(hass, SERVICE_GET_ACCESS_TOKEN, {"min_validity": 500})
    assert emulator.count(REFRESH_PATH) == 1
    assert response["access_token"] == stored
    assert response["expires_in"] == 600
    assert response["expires_at"] == emulator_expiry(emulator, stored)
