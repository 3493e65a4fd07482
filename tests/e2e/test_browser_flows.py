"""In a real browser: reconfigure and re-authenticate, by paste and by QR code, with the errors.

What a user does after setup: the entry's ⋮ → Reconfigure (paste, then QR code), and, once 115
refuses the stored token, the re-authentication card's Reconfigure button (paste, then QR code):
Home Assistant's own repair is open (open115 has none), the menu names the cause, an empty paste
goes back to the menu, and the success screens show open115's texts. On the way it types what
people really type: a token that is too short, another account's token, an AppID with letters, an
AppID that 115 refuses, a QR code confirmed by the wrong account. Every dialog is checked for raw
placeholders, raw Markdown and wiped fields, and photographed into the test's temporary folder;
with OPEN115_UPDATE_SCREENSHOTS=1 the README's picture of the re-authentication card
(reauth-card.png) goes to docs/. The same walk in 简体中文 is test_browser_chinese.py.

115 allows one refresh a minute and every sign-in is one, so the two re-authentications wait for
that minute before another program "uses" the stored token (the README's usual cause).
"""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import re
import time
from typing import Any

from playwright.sync_api import Page, expect
import pytest
import requests

from tests.emulator import DEFAULT_APP_ID, REFRESH_PATH

from .browser import _add_by_rest, _chromium, _log_in, _no_secrets, _page, _prepare, _shots
from .chinese import en
from .conftest import DOMAIN, EmulatorProcess, HassProcess
from .flow_dialog import (
    CAUSE,
    DIALOG,
    close,
    list_issues,
    looks_right,
    repairs,
    submit,
    textbox,
    token_used_elsewhere,
)
from .test_browser import DEMO_NAME

OTHER_ID = 320000002
OTHER_NAME = "other_user"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """The emulator with scripts/develop's demo account, so that the picture matches the README."""
    emu = EmulatorProcess(tmp_path_factory.mktemp("emulator") / "emulator.log", user_name=DEMO_NAME)
    try:
        yield emu
    finally:
        emu.stop()


def _authorize(emulator: EmulatorProcess, **account: Any) -> str:
    """A new authorization (of the demo account, or of `user_id`/`user_name`): its token."""
    reply = requests.post(f"{emulator.base_url}/_emulator/authorize", json=account, timeout=10)
    reply.raise_for_status()
    return str(reply.json()["refresh_token"])


def _qr(emulator: EmulatorProcess, action: str, **account: Any) -> None:
    """What the 115 app does with the newest QR code (as `user_id`/`user_name`, if given)."""
    reply = requests.post(f"{emulator.base_url}/_emulator/qr/{action}", json=account, timeout=10)
    reply.raise_for_status()


def _entry_menu(page: Page, hass_proc: HassProcess, item: str) -> None:
    """Settings → Devices & services → 115 Open Platform → the entry's ⋮ → `item`."""
    page.goto(f"{hass_proc.url}/config/integrations/integration/{DOMAIN}")
    page.get_by_role("button", name="Configure").wait_for()  # the entry's row
    page.get_by_role("button", name="Menu").nth(1).click()  # its ⋮ (the first is the page's)
    page.get_by_role("menuitem", name=item).click()


def _reconfigure_by_paste(page: Page, emulator: EmulatorProcess, shots: Path, name: str) -> None:
    expect(page.get_by_text("Replace the token", exact=True)).to_be_visible()
    expect(page.locator(DIALOG).locator("strong", has_text=name)).to_be_visible()
    looks_right(page, shots, "reconfigure-menu.png")
    page.get_by_text("Paste a refresh token", exact=True).click()
    expect(page.get_by_text(f"Replace the token of {name}", exact=True)).to_be_visible()
    field = textbox(page, "Refresh token")

    field.fill("too short")
    submit(page)
    expect(page.get_by_text("This does not look like a refresh token")).to_be_visible()
    expect(field).to_have_value("too short")  # kept, so that the typo can be seen

    theirs = _authorize(emulator, user_id=OTHER_ID, user_name=OTHER_NAME)
    field.fill(theirs)
    submit(page)
    expect(page.get_by_text(f"belongs to another 115 account, {OTHER_NAME}")).to_be_visible()
    expect(page.get_by_text("Checking it used it up")).to_be_visible()
    expect(field).to_have_value("")  # used up: not offered again
    looks_right(page, shots, "reconfigure-wrong-account.png")
    assert theirs in emulator.state()["used_refresh_tokens"]

    field.fill(_authorize(emulator))
    submit(page)
    close(page, en("config", "abort", "reconfigure_successful"))


def _qr_form_errors(page: Page, shots: Path) -> None:
    """An AppID with letters (no request), then one 115 refuses (its code and message)."""
    field = textbox(page, "AppID")
    field.fill("100195123abc")
    submit(page)
    expect(page.get_by_text("An AppID is a number (digits only)")).to_be_visible()
    expect(field).to_have_value("100195123abc")
    looks_right(page, shots, "qr-invalid-app-id.png")
    field.fill("999")
    submit(page)
    expect(page.get_by_text("(error 40140106: APP ID 无效)")).to_be_visible()
    expect(field).to_have_value("999")
    looks_right(page, shots, "qr-app-refused.png")


def _scan(page: Page, emulator: EmulatorProcess, **account: Any) -> None:
    """Submit the AppID form; the QR code shows; the 115 app scans and confirms it."""
    submit(page)
    expect(page.locator("step-flow-progress img")).to_be_visible()
    _qr(emulator, "scan", **account)
    expect(page.get_by_text("Scanned. Now confirm")).to_be_visible()
    _qr(emulator, "confirm")


def _reconfigure_by_qr(page: Page, emulator: EmulatorProcess, shots: Path, name: str) -> None:
    page.get_by_text("Scan a QR code with the 115 app", exact=True).click()
    expect(page.get_by_text("Sign in with the 115 app", exact=True)).to_be_visible()
    _qr_form_errors(page, shots)
    field = textbox(page, "AppID")
    field.fill(DEFAULT_APP_ID)
    _scan(page, emulator, user_id=OTHER_ID, user_name=OTHER_NAME)
    expect(page.get_by_text(f"confirmed with another 115 account, {OTHER_NAME}")).to_be_visible()
    expect(field).to_have_value(DEFAULT_APP_ID)
    looks_right(page, shots, "qr-wrong-account.png")
    _scan(page, emulator)
    close(page, en("config", "abort", "reconfigure_successful"))


def _reauth_card(page: Page, hass_proc: HassProcess, name: str, shots: Path, docs: Path) -> None:
    """Settings → Devices & services: the card named after the account, its Reconfigure."""
    page.goto(f"{hass_proc.url}/config/integrations/dashboard")
    card = page.locator("ha-config-flow-card").filter(has_text=name)
    expect(card).to_be_visible()
    expect(card.get_by_text("115 Open Platform", exact=True)).to_be_visible()
    page.wait_for_load_state("networkidle")  # the brand icon
    page.screenshot(path=docs / "reauth-card.png", animations="disabled")
    card.get_by_role("button", name="Reconfigure").click()
    expect(page.get_by_text(en("config", "step", CAUSE, "title"), exact=True)).to_be_visible()
    expect(page.locator(DIALOG).locator("strong", has_text=name)).to_be_visible()
    # The menu names the cause: 115 refused the stored token because it was already used.
    cause = _cause(en("config", "step", CAUSE, "description"))
    expect(page.locator(DIALOG).get_by_text(cause)).to_be_visible()
    looks_right(page, shots, "reauth-menu.png")


def _cause(description: str) -> str:
    """The cause's first sentence after "(error {code}): " (the rest has Markdown)."""
    return description.split("): ", 1)[1].split(". ", 1)[0]


def _ha_reauth_repair(hass_proc: HassProcess, entry_id: str) -> None:
    """Home Assistant's own repair ("Authentication expired for …") is open; open115 has none.

    Playwright's loop runs in this thread meanwhile: the websocket helper runs in another.
    """
    with ThreadPoolExecutor(1) as pool:
        issues = pool.submit(list_issues, hass_proc).result()
    assert [
        (i["domain"], i["issue_domain"], i["translation_key"])
        for i in issues
        if i["issue_id"] == f"config_entry_reauth_{DOMAIN}_{entry_id}"
    ] == [("homeassistant", DOMAIN, "config_entry_reauth")]
    assert [i for i in issues if i["domain"] == DOMAIN and not i["dismissed_version"]] == []


def test_reconfigure_and_reauthenticate_in_the_browser(
    hass_proc: HassProcess, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    _prepare(hass_proc)
    shots = tmp_path
    name = emulator.user_name
    assert name == DEMO_NAME
    entry_id = _add_by_rest(hass_proc, emulator.refresh_token)
    with _chromium() as chromium, _page(chromium, tmp_path) as page:
        _log_in(page, hass_proc)

        _entry_menu(page, hass_proc, "Reconfigure")
        _reconfigure_by_paste(page, emulator, shots, name)
        _entry_menu(page, hass_proc, "Reconfigure")
        _reconfigure_by_qr(page, emulator, shots, name)
        signed_in = time.monotonic()

        token_used_elsewhere(hass_proc, emulator, signed_in)
        _ha_reauth_repair(hass_proc, entry_id)
        _reauth_card(page, hass_proc, name, shots, _shots(tmp_path))
        page.get_by_text("Paste a refresh token", exact=True).click()
        expect(page.get_by_text(f"Re-authenticate {name}", exact=True)).to_be_visible()
        submit(page)  # empty: back to the choice (QR code or paste)
        expect(page.get_by_text(f"Re-authenticate {name}", exact=True)).to_have_count(0)
        page.get_by_text("Paste a refresh token", exact=True).click()
        field = textbox(page, "Refresh token")
        field.fill(_authorize(emulator, user_id=OTHER_ID, user_name=OTHER_NAME))
        submit(page)
        expect(page.get_by_text(f"belongs to another 115 account, {OTHER_NAME}")).to_be_visible()
        expect(field).to_have_value("")
        looks_right(page, shots, "reauth-wrong-account.png")
        field.fill(_authorize(emulator))
        submit(page)
        close(page, en("config", "abort", "reauth_successful"))
        signed_in = time.monotonic()

        token_used_elsewhere(hass_proc, emulator, signed_in)
        _reauth_card(page, hass_proc, name, shots, _shots(tmp_path))
        page.get_by_text("Scan a QR code with the 115 app", exact=True).click()
        # The AppID of the last QR sign-in is filled in: one click for a new code.
        expect(textbox(page, "AppID")).to_have_value(DEFAULT_APP_ID)
        _scan(page, emulator)
        close(page, en("config", "abort", "reauth_successful"))
        _options(page, hass_proc, shots)
        _no_secrets(page, emulator, "115 Open Platform")

    reply = hass_proc.get(f"/api/config/config_entries/entry?domain={DOMAIN}")
    assert [(e["entry_id"], e["state"]) for e in reply.json()] == [(entry_id, "loaded")]
    assert repairs(hass_proc) == []
    reply = hass_proc.post("/api/services/open115/get_access_token?return_response", {})
    assert reply.status_code == 200, reply.text
    # The emulator's log names every 115 request it answered (scripts/develop's emulator.log).
    assert f"{REFRESH_PATH}: ok" in emulator.log.read_text()


def _options(page: Page, hass_proc: HassProcess, shots: Path) -> None:
    """The entry's Configure: the margin's range shows, what would be capped is refused."""
    page.goto(f"{hass_proc.url}/config/integrations/integration/{DOMAIN}")
    page.get_by_role("button", name="Configure").click()
    expect(page.get_by_text("a whole number from 60 to 1800")).to_be_visible()
    field = page.locator(DIALOG).get_by_role("spinbutton")
    expect(field).to_have_value("600")
    field.fill("1900")
    submit(page)
    expect(page.get_by_text("Enter a whole number of seconds from 60 to 1800.")).to_be_visible()
    expect(field).to_have_value("1900")
    looks_right(page, shots, "options-out-of-range.png")
    field.fill("900")
    submit(page)
    expect(page.locator(DIALOG).get_by_role("spinbutton")).to_have_count(0)


def test_actions_are_under_settings_tools(
    hass_proc: HassProcess, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    """Where the README and scripts/develop send users to run an action (no Developer tools)."""
    _prepare(hass_proc)
    with _chromium() as chromium, _page(chromium, tmp_path) as page:
        _log_in(page, hass_proc)
        expect(page.get_by_role("link", name=re.compile("Developer tools"))).to_have_count(0)
        page.get_by_role("link", name="Settings").click()
        page.wait_for_url("**/config/dashboard")
        page.get_by_role("link", name=re.compile(r"^Tools")).click()
        for tab in ("YAML", "States", "Actions"):
            expect(page.get_by_role("tab", name=tab)).to_be_visible()
        page.get_by_role("tab", name="Actions").click()
        expect(page.get_by_role("button", name="Perform action")).to_be_visible()
        page.screenshot(path=tmp_path / "settings-tools-actions.png")
