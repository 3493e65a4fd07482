"""Reading 115's numbers: they arrive as ints, floats or numeric strings."""

import math
from typing import Any


def as_int(value: Any) -> int | None:
    """Read an int from an int, a numeric string or a whole float; None otherwise."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def as_number(value: Any) -> float | None:
    """A finite number from an int, a float or a numeric string; None otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def as_size(value: Any) -> int | None:
    """A size in bytes (115 sends some sizes as floats); None when absent or negative."""
    number = as_number(value)
    return None if number is None or number < 0 else round(number)
