"""In a real browser: log in to Home Assistant's frontend and add open115 as a user does.

Debian's chromium (scripts/setup-browser installs it) is driven by Playwright from PyPI against
the real `hass` of the `hass_proc` fixture. It takes the screenshots that the README shows,
setup-dialog.png (the paste form), qr-dialog.png (the QR code) and device-page.png, into its
temporary folder; with OPEN115_UPDATE_SCREENSHOTS=1 it writes them to docs/ instead, to refresh
the README's pictures.

The tests share the module's `hass` and emulator and run in any order: the paste test adds the
emulator's demo account, the QR test signs in a second account and removes its entry again, and
the Chinese walk (tests/e2e/chinese.py) adds two accounts of its own as a user who reads 简体中文,
photographs the same screens (setup-dialog-zh.png, qr-dialog-zh.png, device-page-zh.png, for
README.zh-Hans.md) and removes them again.
"""

import base64
from collections.abc import Iterator
import contextlib
from datetime import datetime
import os
from pathlib import Path
import re
import struct
from typing import Any

from playwright.sync_api import (
    Browser,
    Error as PlaywrightError,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)
import pytest
import requests

from custom_components.open115.config_flow import qr_markdown
from tests.emulator import DEFAULT_APP_ID, REFRESH_PATH

from . import chinese as zh_ui
from .chinese import (
    ZH_NAME,
    ZH_QR_NAME,
    ZH_QR_USER_ID,
    ZH_USER,
    ZH_USER_ID,
    add_chinese_user,
    authorize,
    finish_zh,
    open_add_dialog_zh,
    server_language,
    zh,
)
from .conftest import DOMAIN, OWNER, REPO, EmulatorProcess, HassProcess

DEMO_NAME = "115 demo"  # the demo account's name in scripts/develop, as the README shows it

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",  # tests run as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    # Without these, chromium phones home, and the closed test network refuses it.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS = REPO / "docs"
SETUP_DIALOG_PNG = "setup-dialog.png"
DEVICE_PAGE_PNG = "device-page.png"
QR_DIALOG_PNG = "qr-dialog.png"
QR_USER_ID = 310000002  # a second account: the paste test's entry keeps the demo one
QR_USER_NAME = "emu_user"  # the emulator's default account name
PNG_DATA_URI = "data:image/png;base64,"
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
TIMEOUT_MS = 30_000
# The page's HTML with every (open) shadow root's, and the values of its fields.
COMPOSED_TEXT = """() => {
  const parts = [];
  const walk = (root) => {
    parts.push(root.innerHTML);
    for (const el of root.querySelectorAll("*")) {
      if ("value" in el && typeof el.value === "string") parts.push(el.value);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document.documentElement);
  return parts.join("\\n");
}"""
# Onboarding adds these, and they need the internet: offline they only add "Failed to set up"
# cards behind the dialog.
ONLINE_DOMAINS = {"google_translate", "radio_browser"}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """The emulator with scripts/develop's demo account, so that the pictures match the README."""
    emu = EmulatorProcess(tmp_path_factory.mktemp("emulator") / "emulator.log", user_name=DEMO_NAME)
    try:
        yield emu
    finally:
        emu.stop()


@contextlib.contextmanager
def _chromium() -> Iterator[Browser]:
    """Headless chromium; fails (never skips) with the reason when it cannot start.

    Sync Playwright keeps its event loop running in this thread while it is open, so the
    websocket helpers (which run a loop of their own) are used before and after it.
    """
    if not CHROMIUM.exists():
        pytest.fail(
            f"the browser test needs Debian's chromium at {CHROMIUM}, which is missing: "
            "run scripts/setup-browser (it installs chromium with apt-get and needs root)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                timeout=60_000,
            )
        except PlaywrightError as err:
            pytest.fail(f"chromium ({CHROMIUM}) could not start: {err}", pytrace=False)
        try:
            yield chromium
        finally:
            chromium.close()


def _prepare(hass_proc: HassProcess) -> None:
    """Confirm the HTTP settings and remove the entries that need the internet.

    Home Assistant 2026.10 moves `http:` from YAML into a pending config that the frontend asks
    to confirm in a dialog (and that reverts after 5 minutes); it is confirmed here instead.
    """
    with hass_proc.websocket() as ws:
        if ws.call({"type": "http/config"})["pending"] is not None:
            ws.call({"type": "http/config/promote"})
    reply = hass_proc.get("/api/config/config_entries/entry")
    assert reply.status_code == 200, reply.text
    for entry in reply.json():
        if entry["domain"] in ONLINE_DOMAINS:
            gone = requests.delete(
                f"{hass_proc.url}/api/config/config_entries/entry/{entry['entry_id']}",
                headers=hass_proc.headers(),
                timeout=30,
            )
            assert gone.status_code == 200, gone.text


def _log_in(page: Page, hass_proc: HassProcess, user: dict[str, str] = OWNER) -> None:
    """The login page, as a user fills it (in the browser's language, English)."""
    page.goto(f"{hass_proc.url}/")
    page.get_by_role("textbox", name="Username").fill(user["username"])
    page.get_by_role("textbox", name="Password").fill(user["password"])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "auth" not in url and url.rstrip("/") != hass_proc.url)


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


def _no_secrets(page: Page, emulator: EmulatorProcess, expected: str) -> None:
    """No token the emulator handed out shows in the page, its shadow roots or its fields."""
    shown = page.evaluate(COMPOSED_TEXT)
    assert expected in shown  # the text read is the page's, shadow roots included
    assert not [secret for secret in emulator.secrets() if secret in shown]


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
    # A new token lives 2 hours; its authorization time is unknown when pasted.
    expect(page.locator("body")).to_match_aria_snapshot(
        """
        - heading "Sensors"
        - list: /Access token expires In 2 hours Active cloud downloads 0 Cloud download quota 3,000 Free storage 1,536\\.0 GiB Token problem OK Token status OK Total storage 2,048\\.0 GiB Used storage 512\\.0 GiB VIP expires \\w.+/
        - heading "Events"
        - list: Cloud download Unknown
        - heading "Diagnostic"
        - list: /Last refresh \\d+ seconds? ago Next refresh In \\d hours?/
        """
    )
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


@contextlib.contextmanager
def _page(chromium: Browser, tmp: Path) -> Iterator[Page]:
    """A fresh English page; on failure, a screenshot of where it stopped."""
    context = chromium.new_context(viewport=VIEWPORT, locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    except Exception:
        shot = tmp / "failure.png"
        page.screenshot(path=shot)
        print(f"browser test failed at {page.url}; screenshot: {shot}")
        raise
    finally:
        context.close()


def _shots(tmp: Path) -> Path:
    """Where the screenshots go: docs/ when refreshing the README's pictures."""
    return DOCS if os.environ.get("OPEN115_UPDATE_SCREENSHOTS") else tmp


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


def _entry_ids(hass_proc: HassProcess) -> set[str]:
    reply = hass_proc.get(f"/api/config/config_entries/entry?domain={DOMAIN}")
    assert reply.status_code == 200, reply.text
    return {e["entry_id"] for e in reply.json()}


def _delete_entry(hass_proc: HassProcess, entry_id: str) -> None:
    reply = requests.delete(
        f"{hass_proc.url}/api/config/config_entries/entry/{entry_id}",
        headers=hass_proc.headers(),
        timeout=60,
    )
    assert reply.status_code == 200, reply.text


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
                - list: /Access token expires In 2 hours .*Refresh token expires Next year Token problem OK Token status OK .*/
                """
            )
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
PASTED_SENSORS = ("access_token_expires", "storage_total", "storage_used", "storage_free")


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
