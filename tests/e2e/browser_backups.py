"""The browser tests' visit of Settings → System → Backups: each 115 account is a location.

As a user does: one backup is made to the 115 location first (over the websocket, as the
Backups page's "Backup now" does), then the pages show it. Home Assistant's frontend (2026.10)
names a location of an integration "<integration name>: <location name>" when the integration
has more than one location, else only "<integration name>"; open115 names each location after
its entry, so the visit is made with two accounts set up.
"""

from dataclasses import dataclass
from pathlib import Path
import time

from playwright.sync_api import Page, expect

from .conftest import DOMAIN, HassProcess, random_password

INTEGRATION = "115 Open Platform"  # the manifest's name, untranslated
BACKUP_NAME = "open115 browser"
BACKUP_TIMEOUT = 180.0


def backup_to_115(hass_proc: HassProcess, agent_id: str) -> str:
    """One backup stored both locally and at the 115 location `agent_id`: its id."""
    with hass_proc.websocket() as ws:
        agents = ws.call({"type": "backup/agents/info"})["agents"]
        assert agent_id in [a["agent_id"] for a in agents], agents
        ws.call(
            {
                "type": "backup/generate",
                "agent_ids": ["backup.local", agent_id],
                "include_homeassistant": True,
                "include_database": False,
                "name": BACKUP_NAME,
                "password": random_password(),
            },
            timeout=120,
        )
        deadline = time.monotonic() + BACKUP_TIMEOUT
        while True:
            info = ws.call({"type": "backup/info"})
            done = [b for b in info["backups"] if agent_id in b["agents"]]
            failed = [b for b in info["backups"] if agent_id in b["failed_agent_ids"]]
            assert not failed, hass_proc.log_text[-3000:]
            if done and info["state"] == "idle":
                return str(done[0]["backup_id"])
            assert time.monotonic() < deadline, info
            time.sleep(1)


def location_name(account: str) -> str:
    """The 115 location as Home Assistant's Backups pages name it."""
    return f"{INTEGRATION}: {account}"


def agent_id(user_id: int) -> str:
    return f"{DOMAIN}.{user_id}"


@dataclass(frozen=True)
class BackupTexts:
    """Home Assistant's own texts of the Backups pages, in one language of its frontend."""

    locations: str
    this_system: str
    automatic_backups: str
    encrypted: str


ENGLISH = BackupTexts("Locations", "This system", "Automatic backups", "Encrypted")
CHINESE = BackupTexts("位置", "本系统", "自动备份", "已加密")


def backups_pages(
    page: Page,
    hass_proc: HassProcess,
    backup_id: str,
    account: str,
    texts: BackupTexts,
    docs_png: Path,
    tmp: Path,
) -> None:
    """Automatic backups' Locations with `account` chosen (`docs_png`), the backup's details."""
    name = location_name(account)
    page.goto(f"{hass_proc.url}/config/backup/settings")
    expect(page.get_by_text(texts.automatic_backups, exact=True).first).to_be_visible()
    items = page.get_by_role("listitem").filter(has_text=f"{INTEGRATION}: ")
    expect(items.first).to_be_visible()
    local = page.get_by_role("listitem").filter(has_text=texts.this_system)
    expect(local).to_have_count(1)
    item = items.filter(has_text=name)
    expect(item).to_have_count(1)
    switch = item.get_by_role("switch")
    if not switch.is_checked():  # the user picks the account for automatic backups
        item.locator("ha-switch").click()  # its thumb covers the input
    expect(switch).to_be_checked()
    page.get_by_text(texts.locations, exact=True).first.evaluate(
        "e => e.scrollIntoView({block: 'start'})"
    )
    page.wait_for_load_state("networkidle")  # the brand icons
    page.wait_for_timeout(300)
    page.screenshot(path=docs_png, animations="disabled")

    page.goto(f"{hass_proc.url}/config/backup/details/{backup_id}")
    stored = page.get_by_role("listitem").filter(has_text=name)
    expect(stored).to_contain_text(texts.encrypted)
    page.wait_for_load_state("networkidle")
    page.screenshot(path=tmp / docs_png.name.replace("page", "details"), animations="disabled")
