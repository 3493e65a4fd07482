"""The `open115.add_cloud_download` action: any user, validated before any request, one result
per link in order, and the new tasks counted at once."""

from typing import Any

from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser

from custom_components.open115.const import DOMAIN, MAX_LINKS_PER_CALL

from . import helpers
from .cloud_downloads import (
    ACTIVE,
    MAGNET,
    QUOTA,
    add,
    hash_of,
    magnet,
)
from .conftest import USER_ID, setup_entry
from .emulator import (
    ADD_URLS_PATH,
    CODE_TOO_FREQUENT,
    REFRESH_PATH,
    Emulator115,
)
from .helpers import (
    state_of,
)

frozen = helpers.frozen  # autouse: a round instant, predictable jitter

SECRET = "0123456789abcdef0123"  # a tracker passkey


async def test_add_reports_each_link_in_order_and_counts_the_new_tasks_at_once(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    hass_read_only_user: MockUser,
) -> None:
    """Added, duplicate and failed links, one result each; any user may add (no secret)."""
    emulator.add_task(USER_ID, magnet(1))
    bad = "http://example.invalid/gone.iso"
    emulator.refuse_link(bad)
    await setup_entry(hass, config_entry)
    assert state_of(hass, ACTIVE) == "1"
    quota = int(state_of(hass, QUOTA))

    results = await add(
        hass,
        f"{magnet(2)}\n\n  {magnet(1)}  \n{bad}\nftp://example.com/a.iso\n",
        context=Context(user_id=hass_read_only_user.id),
        folder_id="123",
    )

    # 115 answers a duplicate without its info hash: the magnet link carries it. 115's reasons
    # in the server's language, its own (Chinese) text as the detail.
    assert results == [
        {
            "url": magnet(2),
            "status": "added",
            "info_hash": hash_of(2),
            "message": None,
            "detail": None,
        },
        {
            "url": magnet(1),
            "status": "duplicate",
            "info_hash": hash_of(1),
            "message": "The task exists already in 115's cloud download (115 code 10008: 任务已存在).",
            "detail": "任务已存在",
        },
        {
            "url": bad,
            "status": "failed",
            "info_hash": None,
            "message": "115 refused this link (code 10004: 错误的链接).",
            "detail": "错误的链接",
        },
        {
            "url": "ftp://example.com/a.iso",
            "status": "added",
            "info_hash": emulator.task().info_hash,
            "message": None,
            "detail": None,
        },
    ]
    assert emulator.count(ADD_URLS_PATH) == 1
    assert emulator.task(hash_of(2)).folder_id == "123"
    # Read at once, without waiting for the next poll: two more tasks, two fewer in the quota.
    assert state_of(hass, ACTIVE) == "3"
    assert state_of(hass, QUOTA) == str(quota - 2)


async def test_add_a_list(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    link = "ed2k://|file|a.iso|1024|0123456789ABCDEF0123456789ABCDEF|/"
    results = await add(hass, [magnet(7), f"  {link} "], config_entry_id=config_entry.entry_id)
    assert [(r["url"], r["status"]) for r in results] == [(magnet(7), "added"), (link, "added")]
    assert state_of(hass, ACTIVE) == "2"


@pytest.mark.parametrize(
    ("urls", "key", "placeholders"),
    [
        ("", "no_links", {}),
        (" \n\t\n", "no_links", {}),
        ([], "no_links", {}),
        ("hello world", "not_a_link", {"line": "1", "link": "hello world"}),
        (
            f"{MAGNET.format(1, 1)}\nsmb://nas/share/x.iso",
            "unsupported_link",
            {"line": "2", "link": "smb://nas/…"},
        ),
        (["https://"], "not_a_link", {"line": "1", "link": "https://"}),
        (
            ["https://example.com/a b.iso"],
            "not_a_link",
            {"line": "1", "link": "https://example.com/…"},
        ),
        (["file:///etc/passwd"], "unsupported_link", {"line": "1", "link": "file:///…"}),
        # A link's secret parts (user:password@, passkeys in path or query) are never quoted.
        (
            [f"https://me:{SECRET}@t.example/dl/{SECRET}/a b.torrent?passkey={SECRET}"],
            "not_a_link",
            {"line": "1", "link": "https://t.example/…"},
        ),
        (
            [f"udp://t.example:6969/{SECRET}/announce"],
            "unsupported_link",
            {"line": "1", "link": "udp://t.example:6969/…"},
        ),
        ([f"magnet:xt={SECRET}"], "unsupported_link", {"line": "1", "link": "magnet:…"}),
        (
            [f"t.example/announce?passkey={SECRET}"],
            "not_a_link",
            {"line": "1", "link": "t.example…"},
        ),
        (
            [magnet(n) for n in range(MAX_LINKS_PER_CALL + 1)],
            "too_many_links",
            {"count": str(MAX_LINKS_PER_CALL + 1), "max": "200"},
        ),
    ],
)
async def test_invalid_links_are_refused_before_any_request(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    urls: Any,
    key: str,
    placeholders: dict[str, str],
) -> None:
    await setup_entry(hass, config_entry)
    with pytest.raises(ServiceValidationError) as err:
        await add(hass, urls)
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == key
    assert (err.value.translation_placeholders or {}) == placeholders
    assert SECRET not in str(err.value.translation_placeholders)
    assert emulator.count(ADD_URLS_PATH) == 0


async def test_the_most_links_per_call_are_sent(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    results = await add(hass, [magnet(n) for n in range(MAX_LINKS_PER_CALL)])
    assert [r["status"] for r in results] == ["added"] * MAX_LINKS_PER_CALL
    assert emulator.count(ADD_URLS_PATH) == 1


@pytest.mark.parametrize("folder_id", ["Downloads", "\u00b2", "\u0661\u0662", "-1", "1.5"])
async def test_bad_folder_id_is_refused(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
    folder_id: str,
) -> None:
    """ASCII digits only ("²" and Arabic-Indic digits pass str.isdigit())."""
    await setup_entry(hass, config_entry)
    with pytest.raises(ServiceValidationError) as err:
        await add(hass, magnet(1), folder_id=folder_id)
    assert err.value.translation_key == "bad_folder_id"
    assert emulator.count(ADD_URLS_PATH) == 0


async def test_without_a_folder_id_115_picks_its_default_folder(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    """No wp_path_id is sent: 115 downloads into its default cloud-download folder."""
    await setup_entry(hass, config_entry)
    await add(hass, magnet(1), folder_id="  ")
    await add(hass, magnet(2))
    assert [emulator.task(hash_of(n)).folder_id for n in (1, 2)] == ["0", "0"]


async def test_add_while_rate_limited_says_so(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    emulator.proapi_limit = CODE_TOO_FREQUENT
    with pytest.raises(HomeAssistantError) as err:
        await add(hass, magnet(1))
    assert err.value.translation_key == "cloud_download_rate_limited"
    assert emulator.count(REFRESH_PATH) == 0
    assert state_of(hass, "sensor.emu_user_token_status") == "ok"


async def test_add_with_a_refused_token_reports_it_and_retries_once(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    await setup_entry(hass, config_entry)
    emulator.access_tokens.pop(config_entry.data["access_token"])
    results = await add(hass, magnet(1))
    assert [r["status"] for r in results] == ["added"]
    assert emulator.count(REFRESH_PATH) == 1
    assert [r.code for r in emulator.requests if r.path == ADD_URLS_PATH] == [40140123, 0]


async def test_reasons_follow_the_servers_language(
    hass: HomeAssistant,
    emulator: Emulator115,
    emulator_url: str,
    config_entry: MockConfigEntry,
) -> None:
    """A Chinese server says 115's duplicate in Chinese too (the detail stays 115's text)."""
    await hass.config.async_update(language="zh-Hans")
    emulator.add_task(USER_ID, magnet(3))
    await setup_entry(hass, config_entry)
    (result,) = await add(hass, magnet(3))
    assert result == {
        "url": magnet(3),
        "status": "duplicate",
        "info_hash": hash_of(3),
        "message": "离线下载中已有这个任务（115 错误码 10008：任务已存在）。",  # noqa: RUF001
        "detail": "任务已存在",
    }
