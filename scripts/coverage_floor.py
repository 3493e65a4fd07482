"""Fail when a module's coverage is below its floor (coverage's JSON report, from scripts/test).

Usage: python scripts/coverage_floor.py coverage.json

Every module of custom_components must reach FLOOR (percent, branch coverage as coverage counts
it); the config flow's modules and the options flow must reach 100 (the quality scale's
config-flow-test-coverage).
The total has its own floor, fail_under in pyproject.toml, which pytest-cov applies.
"""

import json
from pathlib import Path
import sys

FLOOR = 95.0
# The config flow's modules and the options flow (flow_base, flow_input and flow_qr are the
# config flow's steps and helpers).
FULL = tuple(
    f"custom_components/open115/{name}.py"
    for name in ("config_flow", "flow_base", "flow_input", "flow_qr", "options_flow")
)


def offenders(report: dict[str, object]) -> list[tuple[str, float, float]]:
    """(file, percent, floor) for every module under its floor, lowest first."""
    files = report["files"]
    assert isinstance(files, dict)
    below = []
    for name, data in files.items():
        percent = float(data["summary"]["percent_covered"])
        floor = 100.0 if name in FULL else FLOOR
        if percent < floor:
            below.append((name, percent, floor))
    missing = [name for name in FULL if name not in files]
    below += [(name, 0.0, 100.0) for name in missing]
    return sorted(below, key=lambda item: item[1])


def main(path: str) -> int:
    """Print the offenders; 1 when there are any."""
    report = json.loads(Path(path).read_text())
    below = offenders(report)
    for name, percent, floor in below:
        print(f"coverage floor: {name} is at {percent:.1f} % (floor {floor:.0f} %)")
    if not below:
        print(f"coverage floor: every module at {FLOOR:.0f} % or more, the flows at 100 %")
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
