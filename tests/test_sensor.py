"""sensor.py: the free storage when 115 leaves out what is left."""

from types import SimpleNamespace
from typing import Any

import pytest

from custom_components.open115.sensor import ACCOUNT_SENSORS

FREE = next(d for d in ACCOUNT_SENSORS if d.key == "storage_free")


def read(**space: int | None) -> Any:
    """An account read with these storage values (what the free storage sensor looks at)."""
    fields = {"space_total": None, "space_used": None, "space_remain": None, **space}
    return SimpleNamespace(account=SimpleNamespace(**fields))


@pytest.mark.parametrize(
    ("space", "free"),
    [
        ({"space_total": 100, "space_used": 30, "space_remain": 50}, 50),  # 115's own figure
        ({"space_total": 100, "space_used": 30}, 70),  # without it: total - used
        ({"space_total": 100, "space_used": 130}, 0),  # never below zero
        ({"space_total": 100}, None),  # not enough to tell
        ({"space_used": 30}, None),
        ({}, None),
    ],
)
def test_free_storage(space: dict[str, int], free: int | None) -> None:
    assert FREE.value_fn(read(**space)) == free
