"""The one exception a cell parser raises: the cell cannot be read as its field.

It is a value error, not an ``ImporterError``: validation turns it into a ``RowError`` for
its row, and an invalid row never stops the valid ones.
"""

from __future__ import annotations

import re

# Undecodable bytes arrive as lone surrogates (surrogateescape); no other text holds one.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")


# Blank-looking characters Unicode counts as printable (letters, marks, a symbol): the Hangul
# fillers, the combining grapheme joiner, variation selectors, Khmer inherent vowels, the
# Mongolian variation selectors and the braille blank.
BLANK_LOOKING = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u2800\u3164\ufe00-\ufe0f\uffa0"
    "\U000e0100-\U000e01ef]"
)


def hidden_character(text: str) -> int | None:
    """Where (0-based) ``text`` has its first character that is not plain visible text.

    Not plain: what Python does not print (controls, format characters such as the tag
    characters U+E0000-E007F, every space but U+0020, private-use and unassigned code
    points) and the blank-looking printable ones above. Two C-level scans spare almost
    every id the per-character look-up.
    """
    if text.isprintable() and BLANK_LOOKING.search(text) is None:
        return None
    return next(
        position
        for position, character in enumerate(text)
        if not character.isprintable() or BLANK_LOOKING.match(character)
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
