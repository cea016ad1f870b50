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
