"""Report footers: the block of totals and notices CRMs append after the last record.

A Salesforce report export ends with lines such as ``"Grand Totals (1,202 records)"``,
``"Confidential Information - Do Not Distribute"`` and ``"Copyright (c) 2000-2024
salesforce.com, inc."``. They are not recordings: a trailing block of such rows is dropped
(and counted, for one notice), while the same words in the middle of the data are a row
like any other.

    >>> is_footer_row(["Grand Totals (1,202 records)", "", "", "", "3600"])
    True
    >>> is_footer_row(["Confidential pricing call", "00T1", "CALL", "https://x", "2024"])
    False
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

FOOTER_START = re.compile(
    r"\s*(grand totals?\b|totals?\b|sub-?totals?\b|confidential\b|copyright\b|\(c\)|©|"
    r"generated\b|report generated\b|exported (on|by|at)\b|filtered by\b|powered by\b|"
    r"count\b|record count\b|\d[\d,]* records?\b)",
    re.IGNORECASE,
)
# A trailing block longer than this is data, not a footer: memory stays bounded.
MAX_FOOTER_ROWS = 20


def is_footer_row(cells: list[str]) -> bool:
    """First cell starts like a footer, and most cells are blank (a record fills them)."""
    if not cells or not FOOTER_START.match(cells[0] or ""):
        return False
    filled = sum(1 for cell in cells if cell and cell.strip())
    return filled <= max(2, len(cells) // 3)


@dataclass
class FooterStats:
    """Rows dropped as a report footer, for one notice."""

    rows: list[int] = field(default_factory=list)
    first_cell: str = ""


def drop_trailing_footer(
    records: Iterator[tuple[int, list[str], Any]], stats: FooterStats | None = None
) -> Iterator[tuple[int, list[str], Any]]:
    """``(row, cells, extra)`` records less a trailing block of footer rows."""
    held: list[tuple[int, list[str], Any]] = []
    for record in records:
        if is_footer_row(record[1]) and len(held) < MAX_FOOTER_ROWS:
            held.append(record)
            continue
        yield from held
        held = []
        if is_footer_row(record[1]):
            held.append(record)  # the block was too long to be a footer; start again
        else:
            yield record
    if held and stats is not None:
        stats.rows = [record[0] for record in held]
        stats.first_cell = held[0][1][0].strip()
