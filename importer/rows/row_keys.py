"""Row keys: one hash of a manifest row's cells and of everything that maps them. Pure.

Mapping and validating a row costs about a hundred times more than hashing it. A re-sync
of a full export sends almost nothing new, so a row whose key the ledger already holds,
for a row it holds as imported unchanged, needs no mapping at all (``importer.plan.passes``).

The key must change whenever the mapped row could: it covers the cells (names, values, in
order), the record's structural problem, the mapping and reading options, and the source of
the code that reads, maps and validates rows. A row that reads a transcript file has no key:
the file may change while its cell does not.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import importer
from importer.read.manifest import Batch, PlainColumns
from importer.rows.validate import MappingOptions, RowMapper
from importer.settings import SourceOptions

KEY_BYTES = 16
"""128 bits (kept as a BLOB): a collision between two different rows is no practical concern."""
RULE_SOURCES = ("read", "rows", "targets")
"""The packages whose code decides what a row maps to."""


def _code_digest() -> bytes:
    """The source of the reading, mapping and validation rules: new rules, new keys."""
    digest = hashlib.blake2b(digest_size=KEY_BYTES)
    root = Path(importer.__file__).parent
    for package in RULE_SOURCES:
        for path in sorted((root / package).glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.digest()


class RowKeys:
    """Keys of one manifest's rows under one run's settings."""

    def __init__(self, settings_text: str, transcript_column: str | None) -> None:
        self.salt = hashlib.blake2b(
            settings_text.encode("utf-8", "surrogatepass"), digest_size=KEY_BYTES
        ).digest()
        self.salt = hashlib.blake2b(self.salt + _code_digest(), digest_size=KEY_BYTES).digest()
        self.transcript_column = transcript_column

    def key(self, cells: dict[str, str], problem: str | None) -> bytes | None:
        """The row's key, or None when something beyond its cells decides its mapping."""
        if self.transcript_column is not None and cells.get(self.transcript_column, "").strip():
            return None
        return hashlib.blake2b(
            _row_text(cells, problem).encode("utf-8", "surrogatepass"),
            digest_size=KEY_BYTES,
            key=self.salt,
        ).digest()

    def keys(self, records: Batch) -> list[bytes | None]:
        """``key`` of each record, a batch at once: the rows' texts are checked for
        separators, encoded and split together, and each is hashed from a copy of one salted
        hash. Record by record as ``key`` does when a cell or problem holds a separator, a
        record has no cells, or a transcript cell is filled (rare). Records column by column
        (``PlainColumns``) give the keys their rows give, with no row made (a header naming
        a column twice makes the rows, whose cells hold one of the two)."""
        column = self.transcript_column
        if isinstance(records, PlainColumns):
            header = records.header
            named = dict(zip(header, records.columns, strict=True))
            filled = column is not None and "".join(named.get(column, ())).strip()
            if filled or len(set(header)) < len(header):
                return self.keys(records.rows())
            names = "\x1f".join(header) + "\x1e"
            rows = len(records)
            texts = [names + "\x1f".join(values) for values in zip(*records.columns, strict=True)]
            cells, problems = len(header) * rows, 0
        else:
            if not records or (
                column is not None and any(r.cells.get(column, "").strip() for r in records)
            ):
                return [self.key(r.cells, r.problem) for r in records]
            rows = len(records)
            texts = [
                "\x1f".join(r.cells)
                + "\x1e"
                + "\x1f".join(r.cells.values())
                + ("" if r.problem is None else "\x1d" + r.problem)
                for r in records
            ]
            cells = sum(len(r.cells) for r in records)
            problems = sum(r.problem is not None for r in records)
        joined = "\x1c".join(texts)  # between rows: a separator no part of a row holds
        # Each row's joins put 2 * (cells - 1) unit separators in it (a row without cells,
        # which ``key`` writes by repr, makes the count miss too: it has 0, not -2).
        if not (
            joined.count("\x1f") == 2 * (cells - rows)
            and joined.count("\x1e") == rows
            and joined.count("\x1d") == problems
            and joined.count("\x1c") == rows - 1
        ):
            if isinstance(records, PlainColumns):
                records = records.rows()
            return [self.key(r.cells, r.problem) for r in records]
        salted = hashlib.blake2b(b"j", digest_size=KEY_BYTES, key=self.salt)  # _row_text's "j"
        found: list[bytes | None] = []
        for text in joined.encode("utf-8", "surrogatepass").split(b"\x1c"):
            row_hash = salted.copy()
            row_hash.update(text)
            found.append(row_hash.digest())
        return found


def _row_text(cells: dict[str, str], problem: str | None) -> str:
    """One text per row, never the same for two different rows: the names, the values and
    the problem between separators none of them holds (a row that holds one is written
    by ``repr``, which quotes and escapes every string; the first letter keeps the two
    forms apart)."""
    text = "\x1f".join(cells) + "\x1e" + "\x1f".join(cells.values())
    if problem is not None:
        text += "\x1d" + problem
    if (
        text.count("\x1f") == 2 * len(cells) - 2
        and text.count("\x1e") == 1
        and text.count("\x1d") == (problem is not None)
    ):
        return "j" + text
    return "r" + repr((tuple(cells.items()), problem))


def row_keys(mapping: MappingOptions, source: SourceOptions, mapper: RowMapper) -> RowKeys | None:
    """Keys for rows mapped with these options, or None when a key could miss a change."""
    name = f"{getattr(mapper, '__module__', '')}.{getattr(mapper, '__qualname__', '')}"
    if not name.startswith("importer."):
        return None  # a mapper from elsewhere: its code is not in the key
    columns = mapping.columns
    if "transcript_path" in columns.defaults:
        return None  # every row would read a file
    transcript_column = columns.column_of("transcript_path")
    settings = repr((name, dataclasses.replace(mapping, row_mapper=None), source))
    return RowKeys(settings, transcript_column)
