"""What the texts look like to a reader: rendered Markdown, filled titles, one word per idea."""

import json
from pathlib import Path
import re
from typing import Any

from markdown_it import MarkdownIt
import pytest

from custom_components.open115.config_flow import QR_ERRORS
from custom_components.open115.const import DOMAIN

COMPONENT = Path(__file__).resolve().parents[1] / "custom_components" / DOMAIN
FILES = {
    "strings": COMPONENT / "strings.json",
    **{p.stem: p for p in sorted((COMPONENT / "translations").glob("*.json"))},
}
# Steps the frontend shows without filling placeholders into their titles (menus, progress).
UNFILLED_TITLES = ("user", "reauth", "reconfigure", "qr_scan")


def _load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FILES[name].read_text(encoding="utf-8"))
    return data


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out |= _flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize("name", FILES)
def test_bold_renders(name: str) -> None:
    """CommonMark (the frontend's Markdown) closes every `**`: no raw asterisks shown.

    A closing `**` after CJK punctuation and before a CJK character does not close.
    """
    markdown = MarkdownIt("commonmark")
    raw = {
        key: text
        for key, text in _flatten(_load(name)).items()
        if "**" in re.sub(r"<[^>]+>", "", markdown.render(text))
    }
    assert raw == {}


@pytest.mark.parametrize("name", FILES)
def test_menu_and_progress_titles_have_no_placeholders(name: str) -> None:
    steps = _load(name)["config"]["step"]
    assert {s: steps[s]["title"] for s in UNFILLED_TITLES if "{" in steps[s]["title"]} == {}


@pytest.mark.parametrize("name", FILES)
def test_qr_errors_do_not_speak_of_a_pasted_token(name: str) -> None:
    """Who only scanned a QR code has no refresh token in hand, and none is "kept"."""
    errors = _load(name)["config"]["error"]
    english = {k: errors[k] for k in QR_ERRORS if k != "unknown"}
    assert [k for k, text in english.items() if re.search(r"refresh token|刷新令牌", text)] == []
    assert [
        k for k, text in english.items() if re.search(r"token is kept|令牌仍然保留", text)
    ] == []


def test_simplified_chinese_uses_one_word_per_idea() -> None:
    texts = _flatten(_load("zh-Hans"))
    # Home Assistant's tone is 您; 115's own word for a revoked authorization is 解除授权.
    assert [k for k, t in texts.items() if "你" in t] == []
    assert [k for k, t in texts.items() if "撤销" in t] == []
    # Rate limiting is 频率限制, nothing else.
    assert [k for k, t in texts.items() if re.search(r"频控|限制.{0,8}频率|刷新过于频繁", t)] == []
    # A config entry is a 配置条目; the integration keeps its name where Home Assistant shows it.
    assert [k for k, t in texts.items() if re.search(r"(?<!配置)条目", t)] == []
    assert [k for k, t in texts.items() if "开放平台条目" in t] == []
    # The action is a verb, not the noun 刷新令牌 (the refresh token).
    assert texts["services.refresh_token.name"] != "刷新令牌"
    assert "刷新令牌" not in texts["services.refresh_token.name"]
    # Home Assistant's own words for its flows.
    assert texts["config.abort.reauth_successful"] == "重新认证成功。"
    assert "重新认证" in texts["entity.sensor.token_status.state.reauth_required"]


def test_what_the_browser_walk_found_reads_right() -> None:
    """Issue 16's walk: names for what they are, the range said, Chinese without the nits."""
    english, chinese = _flatten(_load("strings")), _flatten(_load("zh-Hans"))
    range_error = "options.error.margin_out_of_range"
    assert english[range_error] == "Enter a whole number of seconds from {min} to {max}."
    assert chinese[range_error] == "请输入 {min} 到 {max} 之间的整数秒数。"
    # Beside "Token status: OK", the binary sensor says what it tells.
    assert english["entity.binary_sensor.token_problem.name"] == "Token needs attention"
    assert chinese["entity.binary_sensor.token_problem.name"] == "令牌需要处理"
    assert english["entity.sensor.cloud_download_quota.name"] == "Cloud download quota left"
    nits = r"新刷新令牌|也有来源|刷新最多提前|的 115 刷新令牌|的 115 令牌|some sources say"
    assert [k for k, t in {**english, **chinese}.items() if re.search(nits, t)] == []
    # The paste steps say how to get back to the QR code.
    for texts in (english, chinese):
        for step in ("reauth_confirm", "reconfigure_token"):
            assert re.search(r"QR code|二维码", texts[f"config.step.{step}.description"])
