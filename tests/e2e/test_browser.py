"""In a real browser: log in to Home Assistant's frontend and add open115 as a user does.

Debian's chromium is driven by Playwright (tests/e2e/browser.py) against the real `hass` of the
`hass_proc` fixture. It takes the screenshots that the README shows,
setup-dialog.png (the paste form), qr-dialog.png (the QR code) and device-page.png, into its
temporary folder; with OPEN115_UPDATE_SCREENSHOTS=1 it writes them to docs/ instead, to refresh
the README's pictures.

The tests share the module's `hass` and emulator and run in any order: the paste test adds the
emulator's demo account, the QR test signs in a second account and removes its entry again, and
the Chinese walk (tests/e2e/chinese.py) adds two accounts of its own as a user who reads 简体中文,
photographs the same screens (setup-dialog-zh.png, qr-dialog-zh.png, device-page-zh.png, for
README.zh-Hans.md) and removes them again. The Backups visit (tests/e2e/browser_backups.py) makes
a backup to the demo account, adds a second account, and photographs Settings → System → Backups
in both languages (backups-page.png, backups-page-zh.png).
"""

import base64
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
import re
import struct
from typing import Any

from playwright.sync_api import Browser, Page, expect
import pytest
import requests

from custom_components.open115.config_flow import qr_markdown
from tests.emulator import DEFAULT_APP_ID, REFRESH_PATH

from . import chinese as zh_ui
from .browser import (
    PNG_DATA_URI,
    _add_by_rest,
    _chromium,
    _delete_entry,
    _entry_ids,
    _log_in,
    _no_secrets,
    _page,
    _prepare,
    _shots,
)
from .browser_backups import CHINESE, ENGLISH, agent_id, backup_to_115, backups_pages
from .chinese import (
    ZH_NAME,
    ZH_QR_NAME,
    ZH_QR_USER_ID,
    ZH_USER,
    ZH_USER_ID,
    add_chinese_user,
    authorize,
    en,
    finish_zh,
    open_add_dialog_zh,
    server_language,
    zh,
)
from .conftest import DOMAIN, EmulatorProcess, HassProcess

DEMO_NAME = "115 demo"  # the demo account's name in scripts/develop, as the README shows it

SETUP_DIALOG_PNG = "setup-dialog.png"
DEVICE_PAGE_PNG = "device-page.png"
QR_DIALOG_PNG = "qr-dialog.png"
BACKUPS_PNG = "backups-page.png"
BACKUPS_ZH_PNG = "backups-page-zh.png"
FAMILY_USER_ID = 310000003  # a second account beside the demo one: two 115 backup locations
FAMILY_NAME = "115 family"
QR_USER_ID = 310000002  # a second account: the paste test's entry keeps the demo one
QR_USER_NAME = "emu_user"  # the emulator's default account name
# The diagnostic timestamps, disabled by default (by the key of their names in translations).
DISABLED_SENSORS = ("access_token_expires", "next_refresh", "last_refresh")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """The emulator with scripts/develop's demo account, so that the pictures match the README."""
    emu = EmulatorProcess(tmp_path_factory.mktemp("emulator") / "emulator.log", user_name=DEMO_NAME)
    try:
        yield emu
    finally:
        emu.stop()


def _open_add_dialog(page: Page) -> None:
    """Settings → Devices & services → Add integration → 115 Open Platform: the menu."""
    page.get_by_role("link", name="Settings").click()
    page.wait_for_url("**/config/dashboard")
    page.get_by_role("link", name="Devices & services").click()
    page.wait_for_url("**/config/integrations/dashboard")
    page.get_by_role("button", name="Add integration").click()
    page.get_by_placeholder("Search for a brand name").fill("115")
    # In the dialog: with an entry, the dashboard behind it has a card of the same name.
    page.locator("dialog-add-integration").get_by_text("115 Open Platform", exact=True).click()
    expect(page.get_by_text("Add a 115 account", exact=True)).to_be_visible()


def _add_integration(page: Page, refresh_token: str, shots: Path) -> None:
    """The add dialog's paste path: paste the token, submit."""
    _open_add_dialog(page)
    field = page.get_by_role("textbox", name="Refresh token")
    paste = page.get_by_text("Paste a refresh token", exact=True)
    expect(paste.or_(field).first).to_be_visible()
    if paste.is_visible():  # the menu: QR code or paste
        paste.click()
    expect(page.get_by_text("open115 becomes the only keeper of this token")).to_be_visible()
    expect(field).to_have_attribute("type", "password")
    field.fill(refresh_token)
    page.screenshot(path=shots / SETUP_DIALOG_PNG, animations="disabled")
    page.get_by_role("button", name="Submit").click()


def _qr_sign_in(page: Page, emulator: EmulatorProcess, shots: Path) -> None:
    """The add dialog's QR path: the AppID, the QR code, the phone's scan and confirmation."""
    _open_add_dialog(page)
    page.get_by_text("Scan a QR code with the 115 app", exact=True).click()
    expect(page.get_by_text("Sign in with the 115 app", exact=True)).to_be_visible()
    expect(page.get_by_text("Authorizing the same AppID in other programs")).to_be_visible()
    page.get_by_role("textbox", name="AppID").fill(DEFAULT_APP_ID)
    page.get_by_role("button", name="Submit").click()

    # The progress step: the QR code, drawn by open115 as a PNG data URI, while 115 is polled.
    expect(page.get_by_text("Scan the QR code with the 115 app", exact=True)).to_be_visible()
    expect(page.get_by_text(f"confirm the authorization of AppID {DEFAULT_APP_ID}")).to_be_visible()
    image = page.locator("step-flow-progress img")  # the only picture of the step
    expect(image).to_be_visible()
    tag, src, width, height = image.evaluate(
        "img => img.decode().then(() => [img.tagName, img.src, img.naturalWidth, img.naturalHeight])"
    )
    code = emulator.state()["qr_codes"][-1]  # the newest (the Chinese walk may have made one)
    assert (code["app_id"], code["status"], code["user_id"]) == (DEFAULT_APP_ID, 0, None)
    assert tag == "IMG"
    assert src.startswith(PNG_DATA_URI)
    # Exactly the QR code of the emulator's device code, intact through the Markdown renderer.
    assert f"![QR code]({src})" == qr_markdown(f"https://115.com/scan/dg-{code['uid']}")
    png = base64.b64decode(src.removeprefix(PNG_DATA_URI))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert (width, height) == struct.unpack(">II", png[16:24])  # IHDR: the PNG's own size
    assert width == height > 0
    page.screenshot(path=shots / QR_DIALOG_PNG, animations="disabled")

    # The 115 app of the second account scans the code: the dialog asks to confirm on the phone.
    emulator.qr("scan", uid=code["uid"], user_id=QR_USER_ID)
    scanned = page.get_by_text(
        f"Scanned. Now confirm the authorization of AppID {DEFAULT_APP_ID} in the 115 app"
    )
    expect(scanned).to_be_visible()
    expect(image).to_have_count(0)
    _no_secrets(page, emulator, "Scanned. Now confirm")

    emulator.qr("confirm", uid=code["uid"])
    expect(scanned).to_have_count(0)


def _finish(page: Page, account: str) -> None:
    """The created entry's "Name and assign" step: keep the name, no area, finish."""
    expect(page.get_by_text("Name and assign", exact=True)).to_be_visible()
    expect(page.get_by_role("textbox", name="Device name")).to_have_value(account)
    page.get_by_role("button", name=re.compile(r"finish$", re.IGNORECASE)).click()
    page.wait_for_url("**/config/devices/device/*")


def _device_page(page: Page, account: str, shots: Path) -> None:
    """The device page lists open115's entities: a healthy token, the account's storage."""
    expect(page.get_by_text("Service info", exact=True)).to_be_visible()
    expect(page.get_by_text(account, exact=True).first).to_be_visible()
    # A new token is healthy; its authorization time (so the one-year limit) is unknown when
    # pasted. The diagnostic timestamps are disabled by default.
    sensors = " ".join(
        f"{re.escape(en('entity', *key.split('.'), 'name'))} {value}"
        for key, value in (
            ("sensor.cloud_downloads_active", "0"),
            ("sensor.cloud_download_quota", "3,000"),
            ("sensor.storage_free", r"1,536\.0 GiB"),
            (
                "binary_sensor.token_problem",
                en("entity", "binary_sensor", "token_problem", "state", "off"),
            ),
            ("sensor.token_status", en("entity", "sensor", "token_status", "state", "ok")),
            ("sensor.storage_total", r"2,048\.0 GiB"),
            ("sensor.storage_used", r"512\.0 GiB"),
            ("sensor.vip_expires", r"\w.+"),
        )
    )
    expect(page.locator("body")).to_match_aria_snapshot(
        f"""
        - heading "Sensors"
        - list: /{sensors}/
        - heading "Events"
        - list: Cloud download Unknown
        """
    )
    listed = page.locator("body").aria_snapshot()
    for key in DISABLED_SENSORS:
        assert en("entity", "sensor", key, "name") not in listed, (key, listed)
    page.wait_for_load_state("networkidle")  # the brand icons
    page.screenshot(path=shots / DEVICE_PAGE_PNG, animations="disabled")


def _registry(hass_proc: HassProcess) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """open115's config entries and devices."""
    reply = hass_proc.get(f"/api/config/config_entries/entry?domain={DOMAIN}")
    assert reply.status_code == 200, reply.text
    with hass_proc.websocket() as ws:
        devices = ws.call({"type": "config/device_registry/list"})
    entries = reply.json()
    ids = {e["entry_id"] for e in entries}
    return entries, [d for d in devices if set(d["config_entries"]) & ids]


def _drive(chromium: Browser, hass_proc: HassProcess, emulator: EmulatorProcess, tmp: Path) -> str:
    """Everything a user does in the browser to paste a token; the device page's URL."""
    with _page(chromium, tmp) as page:
        _log_in(page, hass_proc)
        shots = _shots(tmp)
        _add_integration(page, emulator.refresh_token, shots)
        _finish(page, emulator.user_name)
        _device_page(page, emulator.user_name, shots)
        return page.url


def test_add_the_integration_in_the_browser(
    hass_proc: HassProcess, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    _prepare(hass_proc)
    with _chromium() as chromium:
        device_url = _drive(chromium, hass_proc, emulator, tmp_path)

    entries, devices = _registry(hass_proc)
    assert [(e["title"], e["state"]) for e in entries] == [(emulator.user_name, "loaded")]
    assert [(d["name"], d["manufacturer"], d["entry_type"]) for d in devices] == [
        (emulator.user_name, "115", "service")
    ]
    assert device_url == f"{hass_proc.url}/config/devices/device/{devices[0]['id']}"
    # The pasted token was refreshed exactly once, so it is void now.
    state = emulator.state()
    assert state["counts"][REFRESH_PATH] == 1
    assert emulator.refresh_token in state["used_refresh_tokens"]
    shots = _shots(tmp_path)
    for png in (shots / SETUP_DIALOG_PNG, shots / DEVICE_PAGE_PNG):
        assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_sign_in_by_qr_code_in_the_browser(
    hass_proc: HassProcess, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    """A second account signs in by scanning: the AppID, the QR code, scan, confirm, done."""
    _prepare(hass_proc)
    before = _entry_ids(hass_proc)
    try:
        with _chromium() as chromium, _page(chromium, tmp_path) as page:
            _log_in(page, hass_proc)
            _qr_sign_in(page, emulator, _shots(tmp_path))
            _finish(page, QR_USER_NAME)
            expect(page.get_by_text("Service info", exact=True)).to_be_visible()
            # Signed in by QR code: the authorization time, so the one-year limit, is known.
            expect(page.locator("body")).to_match_aria_snapshot(
                """
                - heading "Sensors"
                - list: /.*Refresh token expires Next year Token needs attention No Token status OK .*/
                """
            )
            assert en("entity", "binary_sensor", "token_problem", "name") == "Token needs attention"
            _no_secrets(page, emulator, "Service info")
            device_url = page.url

        [entry_id] = _entry_ids(hass_proc) - before
        entries, devices = _registry(hass_proc)
        assert [
            (e["title"], e["source"], e["state"]) for e in entries if e["entry_id"] == entry_id
        ] == [(QR_USER_NAME, "user", "loaded")]
        [device] = [d for d in devices if entry_id in d["config_entries"]]
        assert device_url == f"{hass_proc.url}/config/devices/device/{device['id']}"

        # The entry keeps the new authorization of the AppID and knows when it was made.
        [grant] = [g for g in emulator.state()["grants"] if g["user_id"] == QR_USER_ID]
        assert (grant["app_id"], grant["alive"], grant["last_refresh_at"]) == (
            DEFAULT_APP_ID,
            True,
            None,
        )
        reply = hass_proc.get(f"/api/diagnostics/config_entry/{entry_id}")
        assert reply.status_code == 200, reply.text
        diagnostics = reply.json()["data"]
        data = diagnostics["entry"]["data"]
        assert diagnostics["loaded"] is True
        assert data["app_id"] == DEFAULT_APP_ID
        assert (data["access_token"], data["refresh_token"]) == ("**REDACTED**", "**REDACTED**")
        authorized_at = datetime.fromisoformat(data["authorized_at"]).timestamp()
        assert authorized_at == pytest.approx(grant["authorized_at"], abs=5)
        assert diagnostics["token"]["authorized_at"] == data["authorized_at"]
        assert not [secret for secret in emulator.secrets() if secret in reply.text]
        reply = hass_proc.post(
            "/api/services/open115/get_access_token?return_response",
            {"config_entry_id": entry_id},
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["service_response"]["access_token"] == grant["access_token"]
    finally:
        for entry_id in _entry_ids(hass_proc) - before:  # leave the paste test's account alone
            _delete_entry(hass_proc, entry_id)
    assert _entry_ids(hass_proc) == before


# Sensors a pasted token has (by the key of their names in translations).
PASTED_SENSORS = ("token_status", "storage_total", "storage_used", "storage_free")


def _zh_paste(
    page: Page, hass_proc: HassProcess, refresh_token: str, tmp: Path, shots: Path
) -> None:
    """The menu, the paste step, the device page with its Chinese entity names and states."""
    open_add_dialog_zh(page, hass_proc)
    for option in ("qr", "token"):
        menu = zh("config", "step", "user", "menu_options", option)
        expect(page.get_by_text(menu, exact=True)).to_be_visible()
    page.wait_for_timeout(300)  # the dialog's animation
    page.screenshot(path=tmp / "setup-menu-zh.png", animations="disabled")
    page.get_by_text(zh("config", "step", "user", "menu_options", "token"), exact=True).click()
    token = zh("config", "step", "token", "description")
    expect(page.get_by_text(token, exact=True)).to_be_visible()
    field = page.get_by_role("textbox", name=zh("config", "step", "token", "data", "refresh_token"))
    expect(field).to_have_attribute("type", "password")
    field.fill(refresh_token)
    page.screenshot(path=shots / SETUP_DIALOG_PNG.replace(".png", "-zh.png"), animations="disabled")
    page.get_by_role("button", name=zh_ui.SUBMIT).click()
    finish_zh(page, ZH_NAME)
    expect(page.get_by_text(ZH_NAME, exact=True).first).to_be_visible()
    # The entities' names follow the server's language, their states the user's: both Chinese.
    status = zh("entity", "sensor", "token_status", "name")
    ok = zh("entity", "sensor", "token_status", "state", "ok")
    expect(page.locator("body")).to_match_aria_snapshot(
        f'- heading "{zh_ui.SENSORS}"\n- list: /.*{re.escape(f"{status} {ok}")}.*/'
    )
    listed = page.locator("body").aria_snapshot()
    for key in PASTED_SENSORS:
        assert zh("entity", "sensor", key, "name") in listed, (key, listed)
    page.wait_for_load_state("networkidle")  # the brand icons
    page.screenshot(path=shots / DEVICE_PAGE_PNG.replace(".png", "-zh.png"), animations="disabled")


def _zh_qr(page: Page, hass_proc: HassProcess, emulator: EmulatorProcess, shots: Path) -> None:
    """The QR path: the AppID step, the QR code, scanned, confirmed, the new device."""
    open_add_dialog_zh(page, hass_proc)
    page.get_by_text(zh("config", "step", "user", "menu_options", "qr"), exact=True).click()
    expect(page.get_by_text(zh("config", "step", "qr", "title"), exact=True)).to_be_visible()
    page.get_by_role("textbox", name=zh("config", "step", "qr", "data", "app_id")).fill(
        DEFAULT_APP_ID
    )
    page.get_by_role("button", name=zh_ui.SUBMIT).click()
    shown = zh("config", "progress", "qr_scan", app_id=DEFAULT_APP_ID).split("\n\n", 1)[1]
    expect(page.get_by_text(shown, exact=True)).to_be_visible()
    image = page.locator("step-flow-progress img")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.decode().then(() => img.naturalWidth)") > 0
    page.screenshot(path=shots / QR_DIALOG_PNG.replace(".png", "-zh.png"), animations="disabled")
    code = emulator.state()["qr_codes"][-1]
    body = {"uid": code["uid"], "user_id": ZH_QR_USER_ID, "user_name": ZH_QR_NAME}
    requests.post(
        f"{emulator.base_url}/_emulator/qr/scan", json=body, timeout=10
    ).raise_for_status()
    scanned = zh("config", "progress", "qr_confirm", app_id=DEFAULT_APP_ID)
    expect(page.get_by_text(scanned, exact=True)).to_be_visible()
    _no_secrets(page, emulator, scanned)
    emulator.qr("confirm", uid=code["uid"])
    finish_zh(page, ZH_QR_NAME)
    expires = zh("entity", "sensor", "refresh_token_expires", "name")
    expect(page.get_by_text(expires, exact=True)).to_be_visible()


def test_add_the_integration_in_chinese(
    hass_proc: HassProcess, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    """The setup dialog, the QR code and the device page for a user who reads 简体中文."""
    _prepare(hass_proc)
    add_chinese_user(hass_proc)
    before = _entry_ids(hass_proc)
    shots = _shots(tmp_path)
    try:
        with (
            server_language(hass_proc, "zh-Hans"),
            _chromium() as chromium,
            _page(chromium, tmp_path) as page,
        ):
            _log_in(page, hass_proc, ZH_USER)
            token = authorize(emulator, ZH_USER_ID, ZH_NAME)
            _zh_paste(page, hass_proc, token, tmp_path, shots)
            _no_secrets(page, emulator, zh("entity", "sensor", "token_status", "name"))
            _zh_qr(page, hass_proc, emulator, shots)
            _no_secrets(page, emulator, zh("entity", "sensor", "refresh_token_expires", "name"))
        entries = hass_proc.get(f"/api/config/config_entries/entry?domain={DOMAIN}").json()
        titles = {(e["title"], e["state"]) for e in entries if e["entry_id"] not in before}
        assert titles == {(ZH_NAME, "loaded"), (ZH_QR_NAME, "loaded")}
    finally:
        for entry_id in _entry_ids(hass_proc) - before:
            _delete_entry(hass_proc, entry_id)


def _demo_entry(hass_proc: HassProcess, emulator: EmulatorProcess) -> None:
    """The demo account's entry (the paste test adds it; alone, this adds it by REST)."""
    reply = hass_proc.get(f"/api/config/config_entries/entry?domain={DOMAIN}")
    if not any(e["title"] == emulator.user_name for e in reply.json()):
        _add_by_rest(hass_proc, authorize(emulator, emulator.user_id, emulator.user_name))


def test_backups_page_lists_the_115_location(
    hass_proc: HassProcess, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    """Settings → System → Backups, in English and in 简体中文: each account is a location."""
    _prepare(hass_proc)
    add_chinese_user(hass_proc)
    _demo_entry(hass_proc, emulator)
    before = _entry_ids(hass_proc)
    shots = _shots(tmp_path)
    try:
        _add_by_rest(hass_proc, authorize(emulator, FAMILY_USER_ID, FAMILY_NAME))
        backup_id = backup_to_115(hass_proc, agent_id(emulator.user_id))
        with _chromium() as chromium:
            with _page(chromium, tmp_path) as page:
                _log_in(page, hass_proc)
                backups_pages(
                    page, hass_proc, backup_id, DEMO_NAME, ENGLISH, shots / BACKUPS_PNG, tmp_path
                )
            with _page(chromium, tmp_path) as page:
                _log_in(page, hass_proc, ZH_USER)
                backups_pages(
                    page, hass_proc, backup_id, DEMO_NAME, CHINESE, shots / BACKUPS_ZH_PNG, tmp_path
                )
                _no_secrets(page, emulator, DEMO_NAME)
    finally:
        for entry_id in _entry_ids(hass_proc) - before:
            _delete_entry(hass_proc, entry_id)
