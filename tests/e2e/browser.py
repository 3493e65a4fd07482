"""What both browser test files share: chromium, a page, the login, the secrets check.

Debian's chromium (scripts/setup-browser installs it) is driven by Playwright from PyPI against
the real `hass` of the `hass_proc` fixture (tests/e2e/conftest.py).
"""

from collections.abc import Iterator
import contextlib
import os
from pathlib import Path
import threading

from playwright.sync_api import (
    Browser,
    Error as PlaywrightError,
    Page,
    ViewportSize,
    sync_playwright,
)
import pytest
import requests

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
    before = set(threading.enumerate())
    with _threads_ended(before), sync_playwright() as playwright:
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


@contextlib.contextmanager
def _threads_ended(before: set[threading.Thread]) -> Iterator[None]:
    """On the way out, wait for the event loop threads ("asyncio_N") started since `before`.

    An event loop closed without waiting for its default executor leaves its thread ending a
    moment later, and the test plugin fails a test that leaves a thread behind.
    """
    try:
        yield
    finally:
        for thread in set(threading.enumerate()) - before:
            if thread.name.startswith("asyncio_"):
                thread.join(10)


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


def _no_secrets(page: Page, emulator: EmulatorProcess, expected: str) -> None:
    """No token the emulator handed out shows in the page, its shadow roots or its fields."""
    shown = page.evaluate(COMPOSED_TEXT)
    assert expected in shown  # the text read is the page's, shadow roots included
    assert not [secret for secret in emulator.secrets() if secret in shown]


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


def _add_by_rest(hass_proc: HassProcess, refresh_token: str) -> str:
    """An entry added by pasting `refresh_token` (as the paste test does by hand): its id."""
    base = "/api/config/config_entries/flow"
    step = hass_proc.post(base, {"handler": DOMAIN}).json()
    step = hass_proc.post(f"{base}/{step['flow_id']}", {"next_step_id": "token"}).json()
    step = hass_proc.post(f"{base}/{step['flow_id']}", {"refresh_token": refresh_token}).json()
    assert step["type"] == "create_entry", step
    return str(step["result"]["entry_id"])
