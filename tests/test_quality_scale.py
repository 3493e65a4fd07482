"""quality_scale.yaml answers every rule of Home Assistant's integration quality scale."""

from pathlib import Path

import yaml

FILE = Path(__file__).parent.parent / "custom_components/open115/quality_scale.yaml"

# The 52 rules of the scale (developers.home-assistant.io, integration quality scale checklist).
RULES = {
    "bronze": {
        "action-setup",
        "appropriate-polling",
        "brands",
        "common-modules",
        "config-flow-test-coverage",
        "config-flow",
        "dependency-transparency",
        "docs-actions",
        "docs-high-level-description",
        "docs-installation-instructions",
        "docs-removal-instructions",
        "entity-event-setup",
        "entity-unique-id",
        "has-entity-name",
        "runtime-data",
        "test-before-configure",
        "test-before-setup",
        "unique-config-entry",
    },
    "silver": {
        "action-exceptions",
        "config-entry-unloading",
        "docs-configuration-parameters",
        "docs-installation-parameters",
        "entity-unavailable",
        "integration-owner",
        "log-when-unavailable",
        "parallel-updates",
        "reauthentication-flow",
        "test-coverage",
    },
    "gold": {
        "devices",
        "diagnostics",
        "discovery",
        "discovery-update-info",
        "docs-data-update",
        "docs-examples",
        "docs-known-limitations",
        "docs-supported-devices",
        "docs-supported-functions",
        "docs-troubleshooting",
        "docs-use-cases",
        "dynamic-devices",
        "entity-category",
        "entity-device-class",
        "entity-disabled-by-default",
        "entity-translations",
        "exception-translations",
        "icon-translations",
        "reconfiguration-flow",
        "repair-issues",
        "stale-devices",
    },
    "platinum": {"async-dependency", "inject-websession", "strict-typing"},
}


def test_every_rule_is_answered_once_with_a_reason_where_it_is_not_done() -> None:
    rules = yaml.safe_load(FILE.read_text())["rules"]
    assert sum(len(tier) for tier in RULES.values()) == 52
    assert set(rules) == set().union(*RULES.values())
    for name, answer in rules.items():
        status = answer if isinstance(answer, str) else answer["status"]
        assert status in {"done", "todo", "exempt"}, name
        if status != "done":
            assert isinstance(answer, dict), name
            assert str(answer.get("comment", "")).strip(), f"{name}: say why"
