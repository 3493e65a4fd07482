"""In a real browser, as a user who reads 简体中文: the options, open115's actions under
设置 → 工具 → 动作, and re-authentication of an account of its own (tests/e2e/chinese.py).

Its own module (and Home Assistant) so that it runs beside test_browser_flows.py's English walk,
whose two one-minute waits make it the longest module. With OPEN115_UPDATE_SCREENSHOTS=1 the
README's picture of the re-authentication card (reauth-card-zh.png) goes to docs/.
"""

from pathlib import Path
import re
import time

from playwright.sync_api import Page, expect

from . import chinese as zh_ui
from .browser import (
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
    server_language,
    zh,
)
from .conftest import DOMAIN, EmulatorProcess, HassProcess
from .flow_dialog import CAUSE, DIALOG, looks_right, repairs, textbox, token_used_elsewhere


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
    looks_right(page, shots, "options-zh.png")
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
    looks_right(page, shots, "reauth-menu-zh.png")
    page.get_by_text(zh("config", "step", CAUSE, "menu_options", "reauth_confirm")).click()
    title = zh("config", "step", "reauth_confirm", "title", account=ZH_NAME)
    expect(page.get_by_text(title, exact=True)).to_be_visible()
    field = textbox(page, zh("config", "step", "reauth_confirm", "data", "refresh_token"))
    field.fill("too short")
    page.locator(DIALOG).get_by_role("button", name=zh_ui.SUBMIT).click()
    expect(page.get_by_text(zh("config", "error", "invalid_format"), exact=True)).to_be_visible()
    looks_right(page, shots, "reauth-paste-zh.png")
    field.fill(authorize(emulator, ZH_USER_ID, ZH_NAME))
    page.locator(DIALOG).get_by_role("button", name=zh_ui.SUBMIT).click()
    expect(field).to_have_count(0)
    done = zh("config", "abort", "reauth_successful")
    expect(page.locator(DIALOG).get_by_text(done, exact=True)).to_be_visible()
    looks_right(page, shots, "reauth-done-zh.png")
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
            token_used_elsewhere(hass_proc, emulator, signed_in, entry_id)
            _zh_reauthenticate(page, hass_proc, emulator, tmp_path, _shots(tmp_path))
            _no_secrets(page, emulator, "115 Open Platform")
        reply = hass_proc.get(f"/api/config/config_entries/entry?domain={DOMAIN}")
        assert [e["state"] for e in reply.json() if e["entry_id"] == entry_id] == ["loaded"]
        assert not [i for i in repairs(hass_proc) if entry_id in i]
    finally:
        for new in _entry_ids(hass_proc) - before:
            _delete_entry(hass_proc, new)
