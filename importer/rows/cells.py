"""The one exception a cell parser raises: the cell cannot be read as its field.

It is a value error, not an ``ImporterError``: validation turns it into a ``RowError`` for
its row, and an invalid row never stops the valid ones.
"""

from __future__ import annotations

import re

# Undecodable bytes arrive as lone surrogates (surrogateescape); no other text holds one.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


# Control characters (C0, DEL, C1), line and paragraph separators, and the invisible
# format characters: soft hyphen, bidi marks and overrides, zero-width ones, the BOM.
INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e"
    "\u2060-\u206f\ufeff\ufff9-\ufffb]"
)


# How Excel writes a long number it has rounded (General format): 7.78234E+18.
EXCEL_ROUNDED = re.compile(r"\d\.(\d+)E\+\d{2}")


def has_lone_surrogate(text: str) -> bool:
    """True for text UTF-8 cannot encode (e.g. a JSON ``\\ud83d`` escape with no partner)."""
    return LONE_SURROGATE.search(text) is not None


def printable_text(text: str) -> str:
    """The cell as valid Unicode: undecodable bytes shown as U+FFFD, for ledger and reports."""
    if not has_lone_surrogate(text):
        return text
    return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text)
