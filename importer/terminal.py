"""Text for a terminal: control characters from data are shown escaped, never obeyed.

Manifest cells, ids and server answers can hold ESC sequences (which recolour, retitle or
clear a terminal), carriage returns (which overwrite a line) or bidi overrides (which
reorder what is shown). Everything the CLI prints passes through ``for_terminal``.

    >>> for_terminal("id\\x1b[2J")
    'id\\\\u001b[2J'
    >>> for_terminal("a\\nb", lines=False)
    'a\\\\u000ab'
"""

from __future__ import annotations

import re
from typing import Any

import click

# C0 controls but tab and newline, DEL, C1 controls, bidi embeddings, overrides, isolates.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_OR_NEWLINE = re.compile(f"{_CONTROL.pattern[:-1]}\n\t]")


def _escape(match: re.Match[str]) -> str:
    # The JSON spelling: readable, and a --json document stays valid JSON meaning the same.
    return f"\\u{ord(match.group()):04x}"


def for_terminal(text: str, *, lines: bool = True) -> str:
    """``text`` with control characters escaped; ``lines=False`` escapes newlines too."""
    return (_CONTROL if lines else _CONTROL_OR_NEWLINE).sub(_escape, text)


def echo(message: Any = None, *, err: bool = False) -> None:
    """``click.echo`` for text that may quote data: control characters escaped."""
    click.echo(None if message is None else for_terminal(str(message)), err=err)
