"""quality_scale.yaml answers every rule of Home Assistant's integration quality scale."""

from pathlib import Path

import yaml

ROOT = Path(__file__).parent.parent
FILE = ROOT / "custom_components/open115/quality_scale.yaml"
# The rules as core's hassfest lists them, pinned with the commit they were copied from.
PINNED = Path(__file__).with_name("quality_scale_rules.txt")
TIERS = ("bronze", "silver", "gold", "platinum")


def pinned_rules() -> dict[str, str]:
    """Rule name → tier, from the pinned copy."""
    rules: dict[str, str] = {}
    for line in PINNED.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        tier, name = line.split()
        assert tier in TIERS, line
        assert name not in rules, f"{name} twice"
        rules[name] = tier
    return rules


def test_the_pinned_copy_names_its_source_commit_and_every_tier() -> None:
    header = PINNED.read_text()
    assert "script/hassfest/quality_scale.py" in header
    assert "008538e822535b1d6155c91f6642127afa184ed1" in header
    rules = pinned_rules()
    assert set(rules.values()) == set(TIERS)
    assert {"docs-conditions", "docs-triggers"} <= {
        name for name, tier in rules.items() if tier == "bronze"
    }


def test_every_rule_is_answered_once_in_hassfests_schema() -> None:
    answers = yaml.safe_load(FILE.read_text())["rules"]
    assert set(answers) == set(pinned_rules())
    for name, answer in answers.items():
        # hassfest: "done"/"todo" alone, or {status, comment}; "exempt" needs its comment.
        if isinstance(answer, str):
            assert answer in {"done", "todo"}, name
            continue
        assert set(answer) <= {"status", "comment"}, name
        assert answer["status"] in {"done", "todo", "exempt"}, name
        if answer["status"] == "exempt" or "comment" in answer:
            assert isinstance(answer.get("comment"), str), name
            assert answer["comment"].strip(), f"{name}: say why"


def test_no_rule_is_left_todo() -> None:
    answers = yaml.safe_load(FILE.read_text())["rules"]
    todo = [
        name for name, a in answers.items() if (a if isinstance(a, str) else a["status"]) == "todo"
    ]
    assert todo == []
