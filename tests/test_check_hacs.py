"""scripts/check_hacs.py: HACS's offline checks pass on this tree and catch planted faults."""

import json
from pathlib import Path
import shutil
import subprocess
import sys

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "check_hacs.py"


def run(root: Path) -> subprocess.CompletedProcess[str]:
    """The script over `root`."""
    return subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(SCRIPT), str(root)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def copy_tree(tmp_path: Path) -> Path:
    """What HACS reads of the repository: hacs.json, README, LICENSE and the integration."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("hacs.json", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, root / name)
    shutil.copytree(ROOT / "custom_components/open115", root / "custom_components/open115")
    return root


def test_this_tree_passes_and_says_what_it_cannot_check() -> None:
    result = run(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[:5] == [
        "ok   hacsjson",
        "ok   integration_manifest",
        "ok   brands",
        "ok   information",
        "ok   license",
    ]
    assert [line.split(":")[0] for line in lines[5:]] == [
        "--   archived",
        "--   description",
        "--   issues",
        "--   topics",
        "--   license (GitHub's SPDX id)",
    ]


def test_planted_faults_fail(tmp_path: Path) -> None:
    root = copy_tree(tmp_path)
    hacs = json.loads((root / "hacs.json").read_text())
    (root / "hacs.json").write_text(json.dumps({**hacs, "domains": ["sensor"]}))
    manifest_file = root / "custom_components/open115/manifest.json"
    manifest = json.loads(manifest_file.read_text())
    del manifest["issue_tracker"]
    manifest_file.write_text(json.dumps(manifest))
    (root / "custom_components/open115/brand/icon.png").unlink()
    (root / "README.md").unlink()
    result = run(root)
    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert [line.split(":")[0] for line in failed] == [
        "FAIL hacsjson",
        "FAIL integration_manifest",
        "FAIL brands",
        "FAIL information",
    ]
    assert failed[0] == "FAIL hacsjson: not a valid option at 'domains'. Got ['sensor']"
    assert failed[1] == (
        "FAIL integration_manifest: required key not provided at 'issue_tracker'. Got None"
    )
