"""The one exception a cell parser raises: the cell cannot be read as its field.

It is a value error, not an ``ImporterError``: validation turns it into a ``RowError`` for
its row, and an invalid row never stops the valid ones.
"""

from __future__ import annotations


class InvalidCell(ValueError):
    """A cell that cannot be read as its field; the message says why, for the user."""
