"""api/values.py: 115's numbers as they arrive (ints, floats, numeric strings, bools)."""

import math
from typing import Any

import pytest

from custom_components.open115.api import as_int, as_number, as_size


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (7200, 7200),
        (7200.0, 7200),  # a whole float, as some answers send lifetimes
        (7200.5, None),  # not a whole number: no guessing
        (" 7200 ", 7200),
        ("7200s", None),
        (True, 1),
        (None, None),
        ([7200], None),
    ],
)
def test_as_int(value: Any, expected: int | None) -> None:
    assert as_int(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.5, 1.5),
        (3, 3.0),
        ("2.25", 2.25),
        ("x", None),
        (True, None),  # a bool is never a number here
        (math.inf, None),
        ("nan", None),
        ({}, None),
    ],
)
def test_as_number(value: Any, expected: float | None) -> None:
    assert as_number(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1024, 1024), (1024.6, 1025), ("2048", 2048), (-1, None), (None, None)],
)
def test_as_size(value: Any, expected: int | None) -> None:
    assert as_size(value) == expected
