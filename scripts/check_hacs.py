"""HACS's validation of an integration repository (hacs/action), offline, over this tree.

Usage: python scripts/check_hacs.py [ROOT]

Reproduces the checks of hacs/integration's custom_components/hacs/validate/ (read at commit
3249355704d1a716e637d4d044b6cb4ae72dc271) that need only the files:
- hacsjson: hacs.json exists and matches HACS's schema (no extra keys; zip_release needs filename);
- integration_manifest: custom_components/<first directory>/manifest.json has codeowners (list),
  documentation and issue_tracker (URLs), domain, name and a version;
- brands: the integration ships brand/icon.png (else HACS asks the brands repository);
- information: a README(.md) or info(.md) at the root;
- license: a LICENSE file (HACS asks GitHub for its SPDX id; here: MIT's text is recognised).
GitHub's own data cannot be read offline: archived, description, issues enabled, topics and the
license's SPDX id as GitHub detects it. They are listed as not checked. The exit code is 1 when
a check fails.
"""

import json
from pathlib import Path
import sys

from awesomeversion import AwesomeVersion
from homeassistant.helpers.config_validation import url as url_validator
import voluptuous as vol
from voluptuous.humanize import humanize_error

HACS_JSON_SCHEMA = vol.Schema(
    {
        vol.Optional("content_in_root"): bool,
        vol.Optional("country"): vol.Any(str, [str]),
        vol.Optional("filename"): str,
        vol.Optional("hacs"): str,
        vol.Optional("hide_default_branch"): bool,
        vol.Optional("homeassistant"): str,
        vol.Optional("persistent_directory"): str,
        vol.Optional("render_readme"): bool,
        vol.Optional("zip_release"): bool,
        vol.Required("name"): str,
    },
    extra=vol.PREVENT_EXTRA,
)
MANIFEST_SCHEMA = vol.Schema(
    {
        vol.Required("codeowners"): list,
        vol.Required("documentation"): url_validator,
        vol.Required("domain"): str,
        vol.Required("issue_tracker"): url_validator,
        vol.Required("name"): str,
        vol.Required("version"): vol.Coerce(AwesomeVersion),
    },
    extra=vol.ALLOW_EXTRA,
)
NOT_OFFLINE = ("archived", "description", "issues", "topics", "license (GitHub's SPDX id)")


def integration_dir(root: Path) -> Path | None:
    """custom_components/<first directory>, as HACS picks it."""
    base = root / "custom_components"
    dirs = sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    return dirs[0] if dirs else None


def check(root: Path) -> dict[str, str | None]:
    """Check name → None when it passes, else why it fails."""
    results: dict[str, str | None] = {}
    hacs_file = root / "hacs.json"
    content_in_root = False
    try:
        hacs = json.loads(hacs_file.read_text())
        HACS_JSON_SCHEMA(hacs)
        content_in_root = bool(hacs.get("content_in_root"))
        if hacs.get("zip_release") and not hacs.get("filename"):
            results["hacsjson"] = "zip_release is True, but filename is not set"
        else:
            results["hacsjson"] = None
    except FileNotFoundError:
        results["hacsjson"] = "The repository has no 'hacs.json' file"
    except ValueError as err:
        results["hacsjson"] = f"invalid hacs.json: {err}"
    except vol.Invalid as err:
        results["hacsjson"] = humanize_error(hacs, err)

    integration = root if content_in_root else integration_dir(root)
    manifest_file = integration / "manifest.json" if integration else None
    if manifest_file is None or not manifest_file.is_file():
        results["integration_manifest"] = "The repository has no 'manifest.json' file"
    else:
        manifest = json.loads(manifest_file.read_text())
        try:
            MANIFEST_SCHEMA(manifest)
            results["integration_manifest"] = None
        except vol.Invalid as err:
            results["integration_manifest"] = humanize_error(manifest, err)

    icon = integration / "brand" / "icon.png" if integration else None
    results["brands"] = (
        None
        if icon is not None and icon.is_file()
        else "no brand/icon.png (HACS then needs the domain in the brands repository)"
    )
    names = {p.name.lower() for p in root.iterdir()}
    results["information"] = (
        None
        if names & {"readme", "readme.md", "info", "info.md"}
        else "The repository has no information file"
    )
    license_file = root / "LICENSE"
    results["license"] = (
        None
        if license_file.is_file() and "Permission is hereby granted" in license_file.read_text()
        else "no LICENSE with the MIT text (GitHub must detect an OSI-approved SPDX id)"
    )
    return results


def main(root: Path) -> int:
    """Print each check; 1 when one fails."""
    results = check(root)
    for name, error in results.items():
        print(
            f"{'ok  ' if error is None else 'FAIL'} {name}"
            + ("" if error is None else f": {error}")
        )
    for name in NOT_OFFLINE:
        print(f"--   {name}: not checked offline (GitHub's repository data)")
    return 1 if any(results.values()) else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parents[1]))
