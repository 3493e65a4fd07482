"""In a real browser: log in to Home Assistant's frontend and add open115 as a user does.

Debian's chromium (scripts/setup-browser installs it) is driven by Playwright from PyPI against
the real `hass` of the `hass_proc` fixture. It takes the screenshots that the README shows,
setup-dialog.png (the config flow's form) and device-page.png, into its temporary folder; with
OPEN115_UPDATE_SCREENSHOTS=1 it writes them to docs/ instead, to refresh the README's pictures.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import os
from pathlib import Path
import re
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

from tests.emulator import REFRESH_PATH

from .conftest import DOMAIN, OWNER, REPO, EmulatorProcess, HassProcess

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
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
TIMEOUT_MS = 30_000
# Onboarding adds these, and they need the internet: offline they only add "Failed to set up"
# cards behind the dialog.
ONLINE_DOMAINS = {"google_translate", "radio_browser"}


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


def _log_in(page: Page, hass_proc: HassProcess) -> None:
    """The login page, as a user fills it."""
    page.goto(f"{hass_proc.url}/")
    page.get_by_role("textbox", name="Username").fill(OWNER["username"])
    page.get_by_role("textbox", name="Password").fill(OWNER["password"])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "auth" not in url and url.rstrip("/") != hass_proc.url)


def _add_integration(page: Page, refresh_token: str, shots: Path) -> None:
    """Settings → Devices & services → Add integration → 115 Open Platform; paste; submit."""
    page.get_by_role("link", name="Settings").click()
    page.wait_for_url("**/config/dashboard")
    page.get_by_role("link", name="Devices & services").click()
    page.wait_for_url("**/config/integrations/dashboard")
    page.get_by_role("button", name="Add integration").click()
    page.get_by_placeholder("Search for a brand name").fill("115")
    page.get_by_text("115 Open Platform", exact=True).click()

    field = page.get_by_role("textbox", name="Refresh token")
    paste = page.get_by_text("Paste a refresh token", exact=True)
    expect(page.get_by_text("Add a 115 account", exact=True)).to_be_visible()
    expect(paste.or_(field).first).to_be_visible()
    if paste.is_visible():  # the menu: QR code or paste
        paste.click()
    expect(page.get_by_text("open115 becomes the only keeper of this token")).to_be_visible()
    expect(field).to_have_attribute("type", "password")
    field.fill(refresh_token)
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=shots / SETUP_DIALOG_PNG, animations="disabled")
    page.get_by_role("button", name="Submit").click()


def _finish(page: Page, account: str) -> None:
    """The created entry's "Name and assign" step: keep the name, no area, finish."""
    expect(page.get_by_text("Name and assign", exact=True)).to_be_visible()
    expect(page.get_by_role("textbox", name="Device name")).to_have_value(account)
    page.get_by_role("button", name=re.compile(r"finish$", re.IGNORECASE)).click()
    page.wait_for_url("**/config/devices/device/*")


def _device_page(page: Page, account: str, shots: Path) -> None:
    """The device page lists open115's entities with a healthy token."""
    expect(page.get_by_text("Service info", exact=True)).to_be_visible()
    expect(page.get_by_text(account, exact=True).first).to_be_visible()
    # A new token lives 2 hours; its authorization time is unknown when pasted.
    expect(page.locator("body")).to_match_aria_snapshot(
        """
        - heading "Sensors"
        - list: Access token expires In 2 hours Refresh token expires Unknown Token problem OK Token status OK
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


def _drive(chromium: Browser, hass_proc: HassProcess, emulator: EmulatorProcess, tmp: Path) -> str:
    """Everything a user does in the browser; the device page's URL."""
    context = chromium.new_context(viewport=VIEWPORT, locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        _log_in(page, hass_proc)
        shots = DOCS if os.environ.get("OPEN115_UPDATE_SCREENSHOTS") else tmp
        _add_integration(page, emulator.refresh_token, shots)
        _finish(page, emulator.user_name)
        _device_page(page, emulator.user_name, shots)
        return page.url
    except Exception:
        shot = tmp / "failure.png"
        page.screenshot(path=shot)
        print(f"browser test failed at {page.url}; screenshot: {shot}")
        raise
    finally:
        context.close()


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
    shots = DOCS if os.environ.get("OPEN115_UPDATE_SCREENSHOTS") else tmp_path
    for png in (shots / SETUP_DIALOG_PNG, shots / DEVICE_PAGE_PNG):
        assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
