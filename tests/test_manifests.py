"""Every manifest.json in the checkout, as hassfest's GitHub action finds them.

The action validates each folder holding a manifest.json (tests/e2e/consumer's too). hassfest
refuses an integration that registers an action without a services.yaml; this checks that, and
that the repository is named alike wherever a manifest names it.
"""

import json
from pathlib import Path
import re

import yaml

ROOT = Path(__file__).resolve().parents[1]
# TODO(publish): "open115/open115" and the code owner "@open115" are placeholders until the
# repository is published. Then set the real owner/name here; this test then shows every place
# still to change (manifest.json's codeowners, documentation and issue_tracker, the consumer's
# documentation). README.md "Development" says so too.
REPOSITORY = "open115/open115"
CODEOWNER = "@open115"
# hassfest's services plugin looks for these to tell that an integration registers actions.
REGISTERS = re.compile(
    r"(hass\.services\.(register|async_register))|async_register_entity_service"
    r"|async_register_admin_service"
)
SKIP = {".venv", ".venv-newest", ".cache", ".git", "node_modules"}


def manifests() -> list[Path]:
    """Every manifest.json outside the tool folders."""
    return sorted(
        p for p in ROOT.rglob("manifest.json") if not SKIP & set(p.relative_to(ROOT).parts)
    )


def test_the_checkout_holds_open115_and_the_consumer() -> None:
    assert [str(p.parent.relative_to(ROOT)) for p in manifests()] == [
        "custom_components/open115",
        "tests/e2e/consumer/custom_components/open115_consumer",
    ]


def test_an_integration_registering_actions_has_a_services_yaml() -> None:
    for manifest in manifests():
        folder = manifest.parent
        registers = any(REGISTERS.search(p.read_text()) for p in folder.rglob("*.py"))
        services = folder / "services.yaml"
        assert registers, folder
        assert services.is_file(), f"{folder}: registers actions but has no services.yaml"
        described = yaml.safe_load(services.read_text())
        assert isinstance(described, dict), folder
        assert described, folder


def test_the_consumers_action_is_described() -> None:
    folder = ROOT / "tests/e2e/consumer/custom_components/open115_consumer"
    described = yaml.safe_load((folder / "services.yaml").read_text())
    assert set(described) == {"read_account"}
    assert '"read_account"' in (folder / "__init__.py").read_text()
    assert set(described["read_account"]["fields"]) == {"config_entry_id"}


def test_the_repository_is_named_alike_everywhere() -> None:
    manifest = json.loads((ROOT / "custom_components/open115/manifest.json").read_text())
    assert manifest["codeowners"] == [CODEOWNER]
    assert manifest["documentation"] == f"https://github.com/{REPOSITORY}"
    assert manifest["issue_tracker"] == f"https://github.com/{REPOSITORY}/issues"
    consumer = json.loads(
        (ROOT / "tests/e2e/consumer/custom_components/open115_consumer/manifest.json").read_text()
    )
    assert consumer["documentation"].startswith(f"https://github.com/{REPOSITORY}#")


def test_manifest_keys_are_in_hassfests_order() -> None:
    """hassfest refuses a manifest whose keys are not domain, name, then alphabetical."""
    for manifest in manifests():
        keys = list(json.loads(manifest.read_text()))
        assert keys[:2] == ["domain", "name"], manifest
        assert keys[2:] == sorted(keys[2:]), manifest
