"""What the browser flow tests share: the flow dialog (its text, its checks, its buttons),
another program using the stored token, and the repairs Home Assistant lists.

115 allows one refresh a minute and every sign-in is one, so `token_used_elsewhere` waits for that
minute before another program "uses" the stored token (the README's usual cause of a
re-authentication).
"""

from pathlib import Path
import re
import time
from typing import Any

from playwright.sync_api import Locator, Page, expect
import requests

from tests.emulator import REFRESH_PATH

from .browser import COMPOSED_TEXT
from .conftest import DOMAIN, EmulatorProcess, HassProcess

# The re-authentication menu of a token another program refreshed (by its step in translations).
CAUSE = "reauth_used"
MIN_INTERVAL = 62.0  # open115 refreshes a token at most once a minute (and a sign-in is one)
# What must never show: a placeholder the frontend did not fill, its error about one, Markdown
# that did not render.
RAW = re.compile(r"\{(account|other|code|message|entry_title|min|max|app_id|qr_code)\}")
DIALOG = "dialog-data-entry-flow"


def dialog_text(page: Page) -> str:
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


def looks_right(page: Page, shots: Path, name: str) -> None:
    """No raw placeholder or Markdown in the dialog, nothing secret in the page; a screenshot."""
    page.wait_for_timeout(300)  # let the dialog's animation end
    text = dialog_text(page)
    assert not RAW.findall(text), text
    assert "**" not in text, text
    assert "MISSING_VALUE" not in page.evaluate(COMPOSED_TEXT)
    page.screenshot(path=shots / name, animations="disabled")


def submit(page: Page) -> None:
    page.locator(DIALOG).get_by_role("button", name="Submit").click()


def close(page: Page, message: str) -> None:
    """The flow ended with `message`: close the dialog."""
    expect(page.get_by_text(message)).to_be_visible()
    page.locator(DIALOG).get_by_role("button", name="Close").last.click()  # not the header's
    expect(page.get_by_text(message)).to_have_count(0)


def textbox(page: Page, name: str) -> Locator:
    return page.locator(DIALOG).get_by_role("textbox", name=name)


def token_used_elsewhere(
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


def list_issues(hass_proc: HassProcess) -> list[dict[str, Any]]:
    with hass_proc.websocket() as ws:
        issues: list[dict[str, Any]] = ws.call({"type": "repairs/list_issues"})["issues"]
    return issues


def repairs(hass_proc: HassProcess) -> list[str]:
    """open115's open repair issues."""
    issues = list_issues(hass_proc)
    return [i["issue_id"] for i in issues if i["domain"] == DOMAIN and not i["dismissed_version"]]
