"""Where a development or test `hass` listens: its stored HTTP config, written before it starts.

Home Assistant 2026.10 keeps the `http:` settings in `.storage/http`: YAML is migrated once, as
a "pending" trial that is reverted (with a restart, onto port 8123 on every interface) unless
someone confirms it in the UI within five minutes, and a repair issue asks to remove the YAML.
So scripts/develop and the end-to-end tests write the confirmed ("stable") config themselves,
validated by Home Assistant's own schema, while Home Assistant is not running.

    python -m tests.e2e.http_config CONFIG_DIR HOST PORT
"""

import json
from pathlib import Path
import sys
from typing import Any

from homeassistant.components.http.config import (
    HTTP_STORAGE_SCHEMA,
    STORAGE_KEY,
    STORAGE_MINOR_VERSION,
    STORAGE_VERSION,
)
from homeassistant.util import dt as dt_util


def write_http_config(config_dir: Path, host: str, port: int) -> None:
    """Make `host:port` the stable HTTP config of `config_dir`; keep its other settings."""
    path = config_dir / ".storage" / STORAGE_KEY
    stable: dict[str, Any] = {}
    if path.exists():
        stable = dict(json.loads(path.read_text())["data"]["stable"])
    for meta in ("created_at", "error", "error_message"):
        stable.pop(meta, None)
    stable |= {"server_host": [host], "server_port": port}
    stored = {
        "version": STORAGE_VERSION,
        "minor_version": STORAGE_MINOR_VERSION,
        "key": STORAGE_KEY,
        "data": {
            "stable": {
                **HTTP_STORAGE_SCHEMA(stable),
                "created_at": dt_util.utcnow().isoformat(),
                "error": None,
                "error_message": None,
            },
            "pending": None,
            "yaml_migration_done": True,
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(stored, indent=2))


if __name__ == "__main__":  # pragma: no cover - used by scripts/develop
    write_http_config(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]))
