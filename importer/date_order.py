"""Day first or month first: what a file's numeric dates decide, once per column.

A value with a day above 12 settles the order for the whole column; a column that reads
both ways, or holds both orders, is left to ``--dayfirst``/``--monthfirst``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from importer.cells import InvalidCell
from importer.dates import DAYFIRST, MONTHFIRST, DateStyle, numeric_parts, parse_start_at
from importer.zone_names import split_zone_name


@dataclass(frozen=True)
class OrderDecision:
    """What a file's numeric dates say about day-first or month-first."""

    order: str | None
    """``dayfirst``, ``monthfirst``, or None when the file does not say."""
    evidence: tuple[int, str] | None = None
    """The row and value that settled it (a day above 12)."""
    ambiguous: tuple[int, str] | None = None
    """A row and value that reads two ways, when nothing settled it."""
    conflict: tuple[int, str] | None = None
    """A row and value that contradicts ``evidence``: the column mixes formats."""
    stopped_after: int | None = None
    """The values read, when the scan stopped early for want of numeric dates."""


def _is_real(value: str, order: str) -> bool:
    """Whether ``value`` read in ``order`` is a real date and time."""
    zoned = split_zone_name(value)  # its zone is checked against --timezone elsewhere
    try:
        parse_start_at(zoned[0] if zoned else value, style=DateStyle(order=order))
    except InvalidCell:
        return False
    return True


def decide_order(values: Iterable[tuple[int, str]], *, enough: int = 10_000) -> OrderDecision:
    """Day-first or month-first, from ``(row, value)`` pairs of one column.

    Stops at the first contradiction, or after ``enough`` values with no numeric date.
    """
    dayfirst: tuple[int, str] | None = None
    monthfirst: tuple[int, str] | None = None
    ambiguous: tuple[int, str] | None = None
    seen_without_numeric = 0
    for row, value in values:
        parts = numeric_parts(value)
        if parts is None:
            seen_without_numeric += 1
            if seen_without_numeric >= enough and not (ambiguous or dayfirst or monthfirst):
                return OrderDecision(None, stopped_after=seen_without_numeric)
            continue
        first, second = parts
        if first > 12 >= second:
            if dayfirst is None and _is_real(value, DAYFIRST):  # 31/02/2024: a typo
                dayfirst = (row, value.strip())
        elif second > 12 >= first:
            if monthfirst is None and _is_real(value, MONTHFIRST):
                monthfirst = (row, value.strip())
        elif first != second:
            ambiguous = ambiguous or (row, value.strip())
        if dayfirst and monthfirst:
            earlier, later = sorted((dayfirst, monthfirst))
            order = DAYFIRST if earlier is dayfirst else MONTHFIRST
            return OrderDecision(order, earlier, conflict=later)
    if dayfirst:
        return OrderDecision(DAYFIRST, dayfirst)
    if monthfirst:
        return OrderDecision(MONTHFIRST, monthfirst)
    return OrderDecision(None, ambiguous=ambiguous)
