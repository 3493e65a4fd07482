"""The browser tests' Chinese walk: a user who reads 简体中文, and the texts the screens must show.

The user's language is set in the profile as Home Assistant's frontend stores it there (Profile →
Language): `frontend/set_user_data`, key "language". The frontend applies it after login, over
the browser's own language (en-US here, so that only the profile can make the screens Chinese).
Entity names follow the server's language instead (Settings → System → General), so
`server_language` switches that too while the Chinese entries are added, and back afterwards.

open115's texts are read from translations/zh-Hans.json (`zh`), so that the tests show exactly
what a Chinese user reads; Home Assistant's own texts are its frontend's 简体中文 (2026.10).
The steps both browser test files take in Chinese live here too.
"""

from collections.abc import Iterator
import contextlib
import json
import re
from typing import Any

from playwright.sync_api import Page, expect
import requests

from .conftest import REPO, EmulatorProcess, HassProcess

TRANSLATIONS = REPO / "custom_components" / "open115" / "translations"
ZH_HANS: dict[str, Any] = json.loads((TRANSLATIONS / "zh-Hans.json").read_text())
EN: dict[str, Any] = json.loads((TRANSLATIONS / "en.json").read_text())
ZH_USER = {"name": "李雷", "username": "lilei", "password": "lilei-password-1"}
ZH_NAME = "115 演示"  # the Chinese walk's own account, beside the English tests' "115 demo"
ZH_USER_ID = 330000001
ZH_QR_USER_ID = 330000002
ZH_QR_NAME = "115 扫码"
# The profile's language as the frontend saves it (the formats follow the language).
LANGUAGE = {
    "language": "zh-Hans",
    "number_format": "language",
    "time_format": "language",
    "date_format": "language",
    "time_zone": "local",
    "first_weekday": "language",
}
# Home Assistant's own texts in its frontend's 简体中文.
ADD_INTEGRATION = "添加集成"
SEARCH_BRAND = "搜索品牌名称"
SEARCH = "搜索"
SUBMIT = "提交"
CLOSE = "关闭"
FINISH = "完成"
NAME_AND_ASSIGN = "命名和分配"
DEVICE_NAME = "设备名称"
SERVICE_INFO = "服务信息"
SENSORS = "传感器"
CONFIGURE = "配置"
OPTIONS_SAVED = "选项已成功保存。"
RECONFIGURE = "重新配置"
SETTINGS = "设置"
TOOLS = "工具"
ACTIONS = "动作"
PERFORM_ACTION = "执行动作"


def zh(*keys: str, **placeholders: object) -> str:
    """A text of translations/zh-Hans.json, its placeholders filled in."""
    return _text(ZH_HANS, keys, placeholders)


def en(*keys: str, **placeholders: object) -> str:
    """A text of translations/en.json, its placeholders filled in."""
    return _text(EN, keys, placeholders)


def _text(texts: dict[str, Any], keys: tuple[str, ...], placeholders: dict[str, object]) -> str:
    node: Any = texts
    for key in keys:
        node = node[key]
    text = str(node)
    for name, value in placeholders.items():
        text = text.replace(f"{{{name}}}", str(value))
    return text


def add_chinese_user(hass_proc: HassProcess) -> None:
    """An administrator `ZH_USER` whose profile language is 简体中文 (once per Home Assistant)."""
    with hass_proc.websocket() as ws:
        users = ws.call({"type": "config/auth/list"})
        if any(u["name"] == ZH_USER["name"] for u in users):
            return
        user = ws.call(
            {"type": "config/auth/create", "name": ZH_USER["name"], "group_ids": ["system-admin"]}
        )["user"]
        ws.call(
            {
                "type": "config/auth_provider/homeassistant/create",
                "user_id": user["id"],
                "username": ZH_USER["username"],
                "password": ZH_USER["password"],
            }
        )
    access = hass_proc.login(ZH_USER["username"], ZH_USER["password"])["access_token"]
    with hass_proc.websocket(access) as ws:
        ws.call({"type": "frontend/set_user_data", "key": "language", "value": LANGUAGE})
        assert ws.call({"type": "frontend/get_user_data", "key": "language"}) == {"value": LANGUAGE}


@contextlib.contextmanager
def server_language(hass_proc: HassProcess, language: str) -> Iterator[None]:
    """Home Assistant's own language (entity names of entries set up meanwhile), then "en"."""
    with hass_proc.websocket() as ws:
        ws.call({"type": "config/core/update", "language": language})
    try:
        yield
    finally:
        with hass_proc.websocket() as ws:
            ws.call({"type": "config/core/update", "language": "en"})


def authorize(emulator: EmulatorProcess, user_id: int, user_name: str) -> str:
    """A new authorization of the account `user_id` (made on first use): its refresh token."""
    reply = requests.post(
        f"{emulator.base_url}/_emulator/authorize",
        json={"user_id": user_id, "user_name": user_name},
        timeout=10,
    )
    reply.raise_for_status()
    return str(reply.json()["refresh_token"])


def open_add_dialog_zh(page: Page, hass_proc: HassProcess) -> None:
    """设置 → 设备与服务 → 添加集成 → 115 Open Platform: the menu, in 简体中文."""
    page.goto(f"{hass_proc.url}/config/integrations/dashboard")
    page.get_by_role("button", name=ADD_INTEGRATION).click()
    page.get_by_placeholder(SEARCH_BRAND).fill("115")
    page.locator("dialog-add-integration").get_by_text("115 Open Platform", exact=True).click()
    expect(page.get_by_text(zh("config", "step", "user", "title"), exact=True)).to_be_visible()
    expect(
        page.get_by_text(zh("config", "step", "user", "description"), exact=True)
    ).to_be_visible()


def finish_zh(page: Page, account: str) -> None:
    """命名和分配: keep the name, finish; the device page."""
    expect(page.get_by_text(NAME_AND_ASSIGN, exact=True)).to_be_visible()
    expect(page.get_by_role("textbox", name=DEVICE_NAME)).to_have_value(account)
    page.get_by_role("button", name=re.compile(f"{FINISH}$")).click()  # 跳过并完成
    page.wait_for_url("**/config/devices/device/*")
    expect(page.get_by_text(SERVICE_INFO, exact=True)).to_be_visible()
