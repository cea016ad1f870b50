"""What the manifest as a whole settles before any row is mapped.

Some facts belong to the file, not to a row: whether its numeric dates are day-first or
month-first is one. Deciding them row by row would read ``03/05/2024`` one way on one row
and another way on the next; deciding them once gives one answer, or one message.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

from importer.errors import InvalidCell, ManifestError
from importer.read.manifest import read_manifest
from importer.rows.dates import (
    DAYFIRST,
    MONTHFIRST,
    DateStyle,
    decide_order,
    parse_start_at,
    read_as,
    split_zone_name,
    zone_disagreement,
)
from importer.rows.validate import MappingOptions
from importer.settings import DEFAULT_BATCH_SIZE, SourceOptions

HOW = {DAYFIRST: "day-first", MONTHFIRST: "month-first"}


def _reading(value: str, timezone: str, order: str) -> str:
    """What ``value`` is sent as when read in ``order`` (or why it cannot be)."""
    try:
        return parse_start_at(value, timezone, DateStyle(order=order))
    except InvalidCell as error:
        return f"unreadable ({error})"


def _zone_checked(
    values: Iterator[tuple[int, str]], manifest: Path, column: str, timezone: str
) -> Iterator[tuple[int, str]]:
    """The values, unchanged; the first that ends with a zone name (``2:30 PM EST``) must
    agree with ``timezone``, else that is one message for the file, not one per row."""
    for row, value in values:
        yield row, value
        zoned = split_zone_name(value)
        if zoned is None:
            continue
        for order in (MONTHFIRST, DAYFIRST):  # the file's order is not known yet
            try:
                sent = parse_start_at(zoned[0], timezone, DateStyle(order=order))
            except InvalidCell:
                continue
            moment = dt.datetime.fromisoformat(sent).astimezone(ZoneInfo(timezone))
            problem = zone_disagreement(moment, zoned[1], timezone)
            if problem is not None:
                raise ManifestError(
                    str(manifest), f"column {column!r}: row {row} {value.strip()!r} {problem}"
                )
            break
        yield from values
        return


def settle_dates(
    manifest: Path,
    options: MappingOptions,
    source: SourceOptions,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> tuple[MappingOptions, list[str]]:
    """``options`` with the file's date order decided, and a notice saying how it was read.

    A format or order given by the user is kept. Otherwise the start_at column is read
    until a day above 12 settles the order; a column that settles it both ways, or reads
    two ways with nothing to settle it, is a ``ManifestError`` naming a row and a value.
    """
    style = options.dates
    if style.format or style.order:
        return options, []
    column = options.columns.column_of("start_at")
    values = (
        (row.row_number, row.cells.get(column, ""))
        for batch in read_manifest(manifest, batch_size, source)
        for row in batch
    )
    decision = decide_order(_zone_checked(values, manifest, column, options.timezone))
    if decision.conflict is not None and decision.evidence is not None:
        (row_a, value_a), (row_b, value_b) = decision.evidence, decision.conflict
        how_a = HOW[decision.order or DAYFIRST]
        how_b = "month-first" if how_a == "day-first" else "day-first"
        raise ManifestError(
            str(manifest),
            f"column {column!r} mixes date orders: row {row_a} {value_a!r} can only be "
            f"{how_a} and row {row_b} {value_b!r} only {how_b}; pass --date-format with "
            "the format of most rows (rows in another format are then reported)",
            column=column,
        )
    if decision.order is None:
        if decision.stopped_after is not None:
            unsettled = DateStyle(scanned=decision.stopped_after)
            return dataclasses.replace(options, dates=unsettled), []
        if decision.ambiguous is None:
            return options, []
        row, value = decision.ambiguous
        day_first, month_first = (
            _reading(value, options.timezone, order) for order in (DAYFIRST, MONTHFIRST)
        )
        raise ManifestError(
            str(manifest),
            f"column {column!r} has dates that read two ways and no day above 12 to settle "
            f"it: row {row} {value!r} is {day_first} day-first or {month_first} month-first; "
            'pass --dayfirst or --monthfirst (or [formats] start_at = "monthfirst" in the '
            "mapping)",
            column=column,
        )
    settled = dataclasses.replace(options, dates=DateStyle(order=decision.order))
    assert decision.evidence is not None
    row, value = decision.evidence
    notice = (
        f"Dates in column {column!r} read {HOW[decision.order]} (row {row} has "
        f"{read_as(value, options.timezone, settled.dates)}); --dayfirst or --monthfirst to "
        "say otherwise."
    )
    return settled, [notice]
