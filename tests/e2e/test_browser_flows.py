"""In a real browser: reconfigure and re-authenticate, by paste and by QR code, with the errors.

What a user does after setup: the entry's ⋮ → Reconfigure (paste, then QR code), and, once 115
refuses the stored token, the re-authentication card's Reconfigure button (paste, then QR code):
Home Assistant's own repair is open (open115 has none), the menu names the cause, an empty paste
goes back to the menu, and the success screens show open115's texts. On the way it types what people really type: a token that is too short, another account's
token, an AppID with letters, an AppID that 115 refuses, a QR code confirmed by the wrong account.
Every dialog is checked for raw placeholders, raw Markdown and wiped fields, and photographed
into the test's temporary folder; with OPEN115_UPDATE_SCREENSHOTS=1 the READMEs' pictures of the
re-authentication card (reauth-card.png, reauth-card-zh.png) go to docs/. The Chinese walk sets the
options, reads open115's actions under 设置 → 工具 → 动作 and re-authenticates an account of its
own, as a user who reads 简体中文 (tests/e2e/chinese.py).

115 allows one refresh a minute and every sign-in is one, so the two re-authentications wait for
that minute before another program "uses" the stored token (the README's usual cause).
"""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import re
import time
from typing import Any

from playwright.sync_api import Locator, Page, expect
import pytest
import requests

from tests.emulator import DEFAULT_APP_ID, REFRESH_PATH

from . import chinese as zh_ui
from .browser import (
    COMPOSED_TEXT,
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
from .chinese import (
    ZH_HANS,
    ZH_NAME,
    ZH_USER,
    ZH_USER_ID,
    add_chinese_user,
    authorize,
    en,
    server_language,
    zh,
)
from .conftest import DOMAIN, EmulatorProcess, HassProcess
from .test_browser import DEMO_NAME

OTHER_ID = 320000002
OTHER_NAME = "other_user"
# The re-authentication menu of a token another program refreshed (by its step in translations).
CAUSE = "reauth_used"
MIN_INTERVAL = 62.0  # open115 refreshes a token at most once a minute (and a sign-in is one)
# What must never show: a placeholder the frontend did not fill, its error about one, Markdown
# that did not render.
RAW = re.compile(r"\{(account|other|code|message|entry_title|min|max|app_id|qr_code)\}")
DIALOG = "dialog-data-entry-flow"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    """The emulator with scripts/develop's demo account, so that the picture matches the README."""
    emu = EmulatorProcess(tmp_path_factory.mktemp("emulator") / "emulator.log", user_name=DEMO_NAME)
    try:
        yield emu
    finally:
        emu.stop()


def _dialog_text(page: Page) -> str:
    """The open flow dialog's text, shadow roots included (what the user reads)."""
    text: str = page.locator(DIALOG).evaluate(
        """d => {
          const parts = [];
          const walk = (root) => {
            for (const el of root.querySelectorAll("*")) {
              if (el.shadowRoot) walk(el.shadowRoot);
            }
            if (root.textContent) parts.push(root.textContent);
          };
          walk(d.shadowRoot || d);
          return parts.join("\\n");
        }"""
    )
    return text


def _looks_right(page: Page, shots: Path, name: str) -> None:
    """No raw placeholder or Markdown in the dialog, nothing secret in the page; a screenshot."""
    page.wait_for_timeout(300)  # let the dialog's animation end
    text = _dialog_text(page)
    assert not RAW.findall(text), text
    assert "**" not in text, text
    assert "MISSING_VALUE" not in page.evaluate(COMPOSED_TEXT)
    page.screenshot(path=shots / name, animations="disabled")


def _submit(page: Page) -> None:
    page.locator(DIALOG).get_by_role("button", name="Submit").click()


def _close(page: Page, message: str) -> None:
    """The flow ended with `message`: close the dialog."""
    expect(page.get_by_text(message)).to_be_visible()
    page.locator(DIALOG).get_by_role("button", name="Close").last.click()  # not the header's
    expect(page.get_by_text(message)).to_have_count(0)


def _authorize(emulator: EmulatorProcess, **account: Any) -> str:
    """A new authorization (of the demo account, or of `user_id`/`user_name`): its token."""
    reply = requests.post(f"{emulator.base_url}/_emulator/authorize", json=account, timeout=10)
    reply.raise_for_status()
    return str(reply.json()["refresh_token"])


def _qr(emulator: EmulatorProcess, action: str, **account: Any) -> None:
    """What the 115 app does with the newest QR code (as `user_id`/`user_name`, if given)."""
    reply = requests.post(f"{emulator.base_url}/_emulator/qr/{action}", json=account, timeout=10)
    reply.raise_for_status()


def _token_used_elsewhere(
    hass_proc: HassProcess, emulator: EmulatorProcess, since: float, entry_id: str | None = None
) -> None:
    """Another program refreshes the stored token (of `entry_id`): open115 needs re-auth."""
    time.sleep(max(0.0, since + MIN_INTERVAL - time.monotonic()))
    which = {} if entry_id is None else {"config_entry_id": entry_id}
    reply = hass_proc.post("/api/services/open115/get_access_token?return_response", which)
    assert reply.status_code == 200, reply.text
    access = reply.json()["service_response"]["access_token"]
    [grant] = [g for g in emulator.state()["grants"] if g["access_token"] == access]
    stolen = requests.post(
        f"{emulator.base_url}{REFRESH_PATH}",
        data={"refresh_token": grant["refresh_token"]},
        timeout=10,
    )
    assert stolen.json()["state"] == 1, stolen.text
    reply = hass_proc.post("/api/services/open115/refresh_token?return_response", which)
    assert reply.status_code == 500
    assert "re-authenticate" in reply.json()["message"]


def _entry_menu(page: Page, hass_proc: HassProcess, item: str) -> None:
    """Settings → Devices & services → 115 Open Platform → the entry's ⋮ → `item`."""
    page.goto(f"{hass_proc.url}/config/integrations/integration/{DOMAIN}")
    page.get_by_role("button", name="Configure").wait_for()  # the entry's row
    page.get_by_role("button", name="Menu").nth(1).click()  # its ⋮ (the first is the page's)
    page.get_by_role("menuitem", name=item).click()


def _field(page: Page, name: str) -> Locator:
    return page.locator(DIALOG).get_by_role("textbox", name=name)


def _reconfigure_by_paste(page: Page, emulator: EmulatorProcess, shots: Path, name: str) -> None:
    expect(page.get_by_text("Replace the token", exact=True)).to_be_visible()
    expect(page.locator(DIALOG).locator("strong", has_text=name)).to_be_visible()
    _looks_right(page, shots, "reconfigure-menu.png")
    page.get_by_text("Paste a refresh token", exact=True).click()
    expect(page.get_by_text(f"Replace the token of {name}", exact=True)).to_be_visible()
    field = _field(page, "Refresh token")

    field.fill("too short")
    _submit(page)
    expect(page.get_by_text("This does not look like a refresh token")).to_be_visible()
    expect(field).to_have_value("too short")  # kept, so that the typo can be seen

    theirs = _authorize(emulator, user_id=OTHER_ID, user_name=OTHER_NAME)
    field.fill(theirs)
    _submit(page)
    expect(page.get_by_text(f"belongs to another 115 account, {OTHER_NAME}")).to_be_visible()
    expect(page.get_by_text("Checking it used it up")).to_be_visible()
    expect(field).to_have_value("")  # used up: not offered again
    _looks_right(page, shots, "reconfigure-wrong-account.png")
    assert theirs in emulator.state()["used_refresh_tokens"]

    field.fill(_authorize(emulator))
    _submit(page)
    _close(page, en("config", "abort", "reconfigure_successful"))


def _qr_form_errors(page: Page, shots: Path) -> None:
    """An AppID with letters (no request), then one 115 refuses (its code and message)."""
    field = _field(page, "AppID")
    field.fill("100195123abc")
    _submit(page)
    expect(page.get_by_text("An AppID is a number (digits only)")).to_be_visible()
    expect(field).to_have_value("100195123abc")
    _looks_right(page, shots, "qr-invalid-app-id.png")
    field.fill("999")
    _submit(page)
    expect(page.get_by_text("(error 40140106: APP ID 无效)")).to_be_visible()
    expect(field).to_have_value("999")
    _looks_right(page, shots, "qr-app-refused.png")


def _scan(page: Page, emulator: EmulatorProcess, **account: Any) -> None:
    """Submit the AppID form; the QR code shows; the 115 app scans and confirms it."""
    _submit(page)
    expect(page.locator("step-flow-progress img")).to_be_visible()
    _qr(emulator, "scan", **account)
    expect(page.get_by_text("Scanned. Now confirm")).to_be_visible()
    _qr(emulator, "confirm")


def _reconfigure_by_qr(page: Page, emulator: EmulatorProcess, shots: Path, name: str) -> None:
    page.get_by_text("Scan a QR code with the 115 app", exact=True).click()
    expect(page.get_by_text("Sign in with the 115 app", exact=True)).to_be_visible()
    _qr_form_errors(page, shots)
    field = _field(page, "AppID")
    field.fill(DEFAULT_APP_ID)
    _scan(page, emulator, user_id=OTHER_ID, user_name=OTHER_NAME)
    expect(page.get_by_text(f"confirmed with another 115 account, {OTHER_NAME}")).to_be_visible()
    expect(field).to_have_value(DEFAULT_APP_ID)
    _looks_right(page, shots, "qr-wrong-account.png")
    _scan(page, emulator)
    _close(page, en("config", "abort", "reconfigure_successful"))


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
    _looks_right(page, shots, "reauth-menu.png")


def _cause(description: str) -> str:
    """The cause's first sentence after "(error {code}): " (the rest has Markdown)."""
    return description.split("): ", 1)[1].split(". ", 1)[0]


def _ha_reauth_repair(hass_proc: HassProcess, entry_id: str) -> None:
    """Home Assistant's own repair ("Authentication expired for …") is open; open115 has none.

    Playwright's loop runs in this thread meanwhile: the websocket helper runs in another.
    """
    with ThreadPoolExecutor(1) as pool:
        issues = pool.submit(_issues, hass_proc).result()
    assert [
        (i["domain"], i["issue_domain"], i["translation_key"])
        for i in issues
        if i["issue_id"] == f"config_entry_reauth_{DOMAIN}_{entry_id}"
    ] == [("homeassistant", DOMAIN, "config_entry_reauth")]
    assert [i for i in issues if i["domain"] == DOMAIN and not i["dismissed_version"]] == []


def _issues(hass_proc: HassProcess) -> list[dict[str, Any]]:
    with hass_proc.websocket() as ws:
        issues: list[dict[str, Any]] = ws.call({"type": "repairs/list_issues"})["issues"]
    return issues


def _repairs(hass_proc: HassProcess) -> list[str]:
    """open115's open repair issues."""
    issues = _issues(hass_proc)
    return [i["issue_id"] for i in issues if i["domain"] == DOMAIN and not i["dismissed_version"]]


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

        _token_used_elsewhere(hass_proc, emulator, signed_in)
        _ha_reauth_repair(hass_proc, entry_id)
        _reauth_card(page, hass_proc, name, shots, _shots(tmp_path))
        page.get_by_text("Paste a refresh token", exact=True).click()
        expect(page.get_by_text(f"Re-authenticate {name}", exact=True)).to_be_visible()
        _submit(page)  # empty: back to the choice (QR code or paste)
        expect(page.get_by_text(f"Re-authenticate {name}", exact=True)).to_have_count(0)
        page.get_by_text("Paste a refresh token", exact=True).click()
        field = _field(page, "Refresh token")
        field.fill(_authorize(emulator, user_id=OTHER_ID, user_name=OTHER_NAME))
        _submit(page)
        expect(page.get_by_text(f"belongs to another 115 account, {OTHER_NAME}")).to_be_visible()
        expect(field).to_have_value("")
        _looks_right(page, shots, "reauth-wrong-account.png")
        field.fill(_authorize(emulator))
        _submit(page)
        _close(page, en("config", "abort", "reauth_successful"))
        signed_in = time.monotonic()

        _token_used_elsewhere(hass_proc, emulator, signed_in)
        _reauth_card(page, hass_proc, name, shots, _shots(tmp_path))
        page.get_by_text("Scan a QR code with the 115 app", exact=True).click()
        # The AppID of the last QR sign-in is filled in: one click for a new code.
        expect(_field(page, "AppID")).to_have_value(DEFAULT_APP_ID)
        _scan(page, emulator)
        _close(page, en("config", "abort", "reauth_successful"))
        _options(page, hass_proc, shots)
        _no_secrets(page, emulator, "115 Open Platform")

    reply = hass_proc.get(f"/api/config/config_entries/entry?domain={DOMAIN}")
    assert [(e["entry_id"], e["state"]) for e in reply.json()] == [(entry_id, "loaded")]
    assert _repairs(hass_proc) == []
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
    _submit(page)
    expect(page.get_by_text("Enter a whole number of seconds from 60 to 1800.")).to_be_visible()
    expect(field).to_have_value("1900")
    _looks_right(page, shots, "options-out-of-range.png")
    field.fill("900")
    _submit(page)
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


def _zh_options(page: Page, hass_proc: HassProcess, shots: Path) -> None:
    """The entry's 配置: the options dialog, its range, its error for a value out of it."""
    page.goto(f"{hass_proc.url}/config/integrations/integration/{DOMAIN}")
    row = page.locator("ha-config-entry-row").filter(has_text=ZH_NAME)
    row.get_by_role("button", name=zh_ui.CONFIGURE, exact=True).click()
    expect(page.get_by_text(zh("options", "step", "init", "title"), exact=True)).to_be_visible()
    field = page.locator(DIALOG).get_by_role("spinbutton")
    expect(field).to_have_value("600")
    field.fill("1900")
    page.locator(DIALOG).get_by_role("button", name=zh_ui.SUBMIT).click()
    error = zh("options", "error", "margin_out_of_range", min=60, max=1800)
    expect(page.get_by_text(error, exact=True)).to_be_visible()
    _looks_right(page, shots, "options-zh.png")
    field.fill("900")
    page.locator(DIALOG).get_by_role("button", name=zh_ui.SUBMIT).click()
    expect(page.locator(DIALOG).get_by_role("spinbutton")).to_have_count(0)
    expect(page.get_by_text(zh_ui.OPTIONS_SAVED, exact=True)).to_be_visible()
    page.locator(DIALOG).get_by_role("button", name=zh_ui.FINISH, exact=True).click()
    expect(page.get_by_text(zh_ui.OPTIONS_SAVED, exact=True)).to_have_count(0)


def _zh_actions(page: Page, emulator: EmulatorProcess, shots: Path) -> None:
    """设置 → 工具 → 动作: each of open115's actions, its description and fields, in Chinese."""
    page.get_by_role("link", name=zh_ui.SETTINGS).click()  # its name ends in its badge
    page.wait_for_url("**/config/dashboard")
    page.get_by_role("link", name=re.compile(f"^{zh_ui.TOOLS}")).click()
    page.get_by_role("tab", name=zh_ui.ACTIONS).click()
    expect(page.get_by_role("button", name=zh_ui.PERFORM_ACTION)).to_be_visible()
    for action, texts in ZH_HANS["services"].items():  # open115's actions, each in Chinese
        page.locator("ha-service-picker").click()
        page.get_by_placeholder(zh_ui.SEARCH).fill(texts["name"])
        page.get_by_text(texts["name"], exact=True).click()
        expect(page.get_by_text(f"{DOMAIN}.{action}", exact=True)).to_be_visible()
        expect(page.get_by_text(texts["description"], exact=True)).to_be_visible()
        for field in texts["fields"].values():
            expect(page.get_by_text(field["name"], exact=True)).to_be_visible()
            expect(page.get_by_text(field["description"], exact=True)).to_be_visible()
        page.screenshot(path=shots / f"actions-{action}-zh.png", animations="disabled")
        _no_secrets(page, emulator, texts["description"])


def _zh_reauthenticate(
    page: Page, hass_proc: HassProcess, emulator: EmulatorProcess, shots: Path, docs: Path
) -> None:
    """The re-authentication card, its dialog, the paste step with an error, the success."""
    page.goto(f"{hass_proc.url}/config/integrations/dashboard")
    card = page.locator("ha-config-flow-card").filter(has_text=ZH_NAME)
    expect(card).to_be_visible()
    expect(card.get_by_text("115 Open Platform", exact=True)).to_be_visible()
    page.wait_for_load_state("networkidle")  # the brand icon
    page.screenshot(path=docs / "reauth-card-zh.png", animations="disabled")
    card.get_by_role("button", name=zh_ui.RECONFIGURE).click()
    expect(page.get_by_text(zh("config", "step", CAUSE, "title"), exact=True)).to_be_visible()
    expect(page.locator(DIALOG).locator("strong", has_text=ZH_NAME)).to_be_visible()
    cause = zh("config", "step", CAUSE, "description").split("\uff1a", 1)[1].split("。", 1)[0]
    expect(page.locator(DIALOG).get_by_text(cause)).to_be_visible()
    for option in ("qr", "reauth_confirm"):
        menu = zh("config", "step", CAUSE, "menu_options", option)
        expect(page.get_by_text(menu, exact=True)).to_be_visible()
    _looks_right(page, shots, "reauth-menu-zh.png")
    page.get_by_text(zh("config", "step", CAUSE, "menu_options", "reauth_confirm")).click()
    title = zh("config", "step", "reauth_confirm", "title", account=ZH_NAME)
    expect(page.get_by_text(title, exact=True)).to_be_visible()
    field = _field(page, zh("config", "step", "reauth_confirm", "data", "refresh_token"))
    field.fill("too short")
    page.locator(DIALOG).get_by_role("button", name=zh_ui.SUBMIT).click()
    expect(page.get_by_text(zh("config", "error", "invalid_format"), exact=True)).to_be_visible()
    _looks_right(page, shots, "reauth-paste-zh.png")
    field.fill(authorize(emulator, ZH_USER_ID, ZH_NAME))
    page.locator(DIALOG).get_by_role("button", name=zh_ui.SUBMIT).click()
    expect(field).to_have_count(0)
    done = zh("config", "abort", "reauth_successful")
    expect(page.locator(DIALOG).get_by_text(done, exact=True)).to_be_visible()
    _looks_right(page, shots, "reauth-done-zh.png")
    page.locator(DIALOG).get_by_role("button", name=zh_ui.CLOSE).last.click()
    expect(page.locator(DIALOG).get_by_role("button", name=zh_ui.CLOSE)).to_have_count(0)


def test_options_actions_and_reauthentication_in_chinese(
    hass_proc: HassProcess, emulator: EmulatorProcess, tmp_path: Path
) -> None:
    """The options, 设置 → 工具 → 动作 and re-authentication for a user who reads 简体中文."""
    _prepare(hass_proc)
    add_chinese_user(hass_proc)
    before = _entry_ids(hass_proc)
    try:
        with server_language(hass_proc, "zh-Hans"):
            entry_id = _add_by_rest(hass_proc, authorize(emulator, ZH_USER_ID, ZH_NAME))
        signed_in = time.monotonic()
        with _chromium() as chromium, _page(chromium, tmp_path) as page:
            _log_in(page, hass_proc, ZH_USER)
            _zh_options(page, hass_proc, tmp_path)
            _zh_actions(page, emulator, tmp_path)
            _token_used_elsewhere(hass_proc, emulator, signed_in, entry_id)
            _zh_reauthenticate(page, hass_proc, emulator, tmp_path, _shots(tmp_path))
            _no_secrets(page, emulator, "115 Open Platform")
        reply = hass_proc.get(f"/api/config/config_entries/entry?domain={DOMAIN}")
        assert [e["state"] for e in reply.json() if e["entry_id"] == entry_id] == ["loaded"]
        assert not [i for i in _repairs(hass_proc) if entry_id in i]
    finally:
        for new in _entry_ids(hass_proc) - before:
            _delete_entry(hass_proc, new)
