"""CSV cells that spreadsheets would run as formulas (CSV injection), defused and restored.

Report files prefix such cells with an apostrophe; reading a manifest removes it again, so
an ``errors.csv`` that was fixed and fed back imports the original text.

    >>> defuse("=HYPERLINK(1)")
    "'=HYPERLINK(1)"
    >>> restore(defuse("=HYPERLINK(1)"))
    '=HYPERLINK(1)'
"""

from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def defuse(value: Any) -> str:
    """A cell's text, with an apostrophe in front if a spreadsheet would run it."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def restore(text: str) -> str:
    """Undo ``defuse``: an apostrophe followed by a formula character is dropped."""
    if text.startswith("'") and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text
