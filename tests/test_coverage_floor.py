"""scripts/coverage_floor.py: every module at 95 %, the config and options flows at 100 %."""

import json
from pathlib import Path
import subprocess
import sys

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "coverage_floor.py"
PKG = "custom_components/open115"
FLOWS = ("config_flow", "flow_base", "flow_input", "flow_qr", "options_flow")
FULL = {f"{PKG}/{name}.py": 100.0 for name in FLOWS}


def run(tmp_path: Path, percents: dict[str, float]) -> subprocess.CompletedProcess[str]:
    """The script on a report where each file has the given percent."""
    report = {"files": {name: {"summary": {"percent_covered": p}} for name, p in percents.items()}}
    path = tmp_path / "coverage.json"
    path.write_text(json.dumps(report))
    return subprocess.run(  # noqa: S603 - our own script
        [sys.executable, str(SCRIPT), str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_every_module_at_its_floor_passes(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        {**FULL, f"{PKG}/x.py": 95.0},
    )
    assert result.returncode == 0, result.stdout
    assert result.stdout == ("coverage floor: every module at 95 % or more, the flows at 100 %\n")


def test_the_offenders_are_named_lowest_first(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        {
            **FULL,
            f"{PKG}/config_flow.py": 99.5,
            f"{PKG}/sensor.py": 94.9,
            f"{PKG}/keeper.py": 90.0,
            f"{PKG}/fine.py": 96.0,
        },
    )
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"coverage floor: {PKG}/keeper.py is at 90.0 % (floor 95 %)",
        f"coverage floor: {PKG}/sensor.py is at 94.9 % (floor 95 %)",
        f"coverage floor: {PKG}/config_flow.py is at 99.5 % (floor 100 %)",
    ]


def test_a_flow_missing_from_the_report_fails(tmp_path: Path) -> None:
    result = run(tmp_path, {name: 100.0 for name in FULL if "options" not in name})
    assert result.returncode == 1
    assert result.stdout == f"coverage floor: {PKG}/options_flow.py is at 0.0 % (floor 100 %)\n"
