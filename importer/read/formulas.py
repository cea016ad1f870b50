"""CSV cells that spreadsheets would run as formulas (CSV injection), defused and restored.

Following OWASP: a cell whose first character, after any leading spaces, is ``=``, ``+``,
``-``, ``@``, a tab or a carriage return (or a full-width ``＝ ＋ － ＠``) gets an apostrophe
in front, and every cell of every CSV we write is quoted, so a semicolon-locale spreadsheet
cannot split ``x;=1+1`` into a formula either. A cell that already starts with an apostrophe
before such a character gets one more, so defusing can always be undone exactly.

Undoing it (``restore``) happens only for files the importer wrote, recognised by their
header (``written_by_importer``): a manifest's own ``'+1 follow-up`` is sent as written.

    >>> defuse("=HYPERLINK(1)")
    "'=HYPERLINK(1)"
    >>> restore(defuse("=HYPERLINK(1)"))
    '=HYPERLINK(1)'
    >>> restore(defuse("'=kept"))
    "'=kept"
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
IMPORTER_COLUMNS = ("error_status", "error_message")
"""The last columns of ``errors.csv``: a file ending with them was written by the importer."""


def _runs_as_formula(text: str) -> bool:
    return text.lstrip(" ").startswith(FORMULA_STARTS)


def _needs_apostrophe(text: str) -> bool:
    # An apostrophe already in front of a formula also gets one, so restore() is exact.
    while text.startswith("'"):
        text = text[1:]
    return _runs_as_formula(text)


def defuse(value: Any) -> str:
    """A cell's text, with an apostrophe in front if a spreadsheet would run it."""
    text = "" if value is None else str(value)
    return "'" + text if _needs_apostrophe(text) else text


def restore(text: str) -> str:
    """Undo ``defuse`` (only for cells of files ``written_by_importer``)."""
    if text.startswith("'") and _needs_apostrophe(text[1:]):
        return text[1:]
    return text


def written_by_importer(header: Sequence[str]) -> bool:
    """True for a header the importer wrote (``errors.csv``): its cells were defused."""
    return tuple(name.strip() for name in header[-2:]) == IMPORTER_COLUMNS
