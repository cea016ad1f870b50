"""The compact form pass one spools a batch of mapped rows in, and pass two reads back.

A mapped row is spooled as a tuple of plain values (no dataclass to pickle field by field),
which the spool writes with ``marshal``; pass two makes the same ``MappedRow`` of it again,
its payload hash included (already computed by pass one, so never hashed twice).

    >>> from importer.rows.validate import MappingOptions, map_row
    >>> cells = {"id": "7", "type": "call", "title": "Intro", "source_system": "crm",
    ...          "media_url": "https://media.example.com/7.mp3", "start_at": "2024-05-01Z"}
    >>> row = map_row(cells, 2, MappingOptions())
    >>> back = rows_of(plain_rows([row]))[0]
    >>> back == row, back.payload_hash == row.payload_hash
    (True, True)
"""

from __future__ import annotations

import gc
from typing import Any

from importer.rows.validate import MappedRow, RowError

PlainRow = tuple[Any, ...]
"""(file, row, cells, external_id, payload, errors, contact ids, skip reason, source id,
payload hash); each error as the tuple of its fields."""

_FIELDS = (
    "file",
    "row_number",
    "cells",
    "external_id",
    "payload",
    "errors",
    "contact_ids",
    "skip_reason",
    "source_id",
    "payload_hash",  # MappedRow's cached property, set as computing it would
)


def plain_rows(rows: list[MappedRow]) -> list[PlainRow]:
    """The rows as tuples of plain values (what ``marshal`` writes)."""
    return [
        (
            r.file,
            r.row_number,
            r.cells,
            r.external_id,
            r.payload,
            tuple((e.file, e.row, e.column, e.rule, e.message) for e in r.errors)
            if r.errors
            else (),
            r.contact_ids,
            r.skip_reason,
            r.source_id,
            r.payload_hash,
        )
        for r in rows
    ]


def rows_of(plain: list[PlainRow]) -> list[MappedRow]:
    """The rows ``plain_rows`` made the tuples of, equal field by field.

    Made with the cycle collector paused, as the spool reads them back: a thousand rows
    would set off collections that find nothing (they hold no cycles); on error too it
    resumes at once."""
    rows = []
    paused = gc.isenabled()
    gc.disable()
    try:
        for values in plain:
            fields = dict(zip(_FIELDS, values, strict=True))
            if values[5]:
                fields["errors"] = tuple(RowError(*e) for e in values[5])
            rows.append(MappedRow.from_fields(fields))
    finally:
        if paused:
            gc.enable()
    return rows
