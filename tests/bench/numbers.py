"""The two ways the benchmark report reads its figures: a median, and a number printed."""

import statistics


def med(values: list[float]) -> float:
    """The median (NaN when there is nothing)."""
    return statistics.median(values) if values else float("nan")


def fmt(value: float, digits: int = 1) -> str:
    """A number with `digits` decimals."""
    return f"{value:.{digits}f}"
