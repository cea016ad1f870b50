"""Whether a manifest holds an external_id, or a media URL, on more than one row: known from
a hash of each, taken as pass one reads the rows.

Pass one's index finds repeated ids and shared recordings with SQL, over indexes built once
the whole file is read: about two seconds at a million rows, while the workers that mapped
the rows wait. Nearly every export holds each id and each media URL once, and hashes say so
for 16 bytes a row: equal text hashes alike, so no two equal hashes means no two equal
values. Equal hashes (a value repeated, or two values that happen to hash alike) leave the
question to SQL, as before.

    >>> seen = SeenOnce()
    >>> seen.add([("crm:1", 2, "h1", "1", "https://m/1.mp3"), ("crm:2", 3, "h2", "2", None)])
    >>> seen.ids_once_each(), seen.media_once_each()
    (True, True)
    >>> seen.add([("crm:1", 4, "h3", "1", "https://m/2.mp3")])
    >>> seen.ids_once_each(), seen.media_once_each()
    (False, True)
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

SORTED_PAST = 50_000
"""Hashes past which pyarrow sorts the array (8 MB a million) rather than a set holding them
(about 60 MB a million)."""


class SeenOnce:
    """The hashes of the valid rows' external_ids and media URLs, as pass one keeps them."""

    def __init__(self) -> None:
        self.ids = array("q")
        self.media = array("q")
        self.whole = True
        """False once rows entered the index without being hashed here (rows known by
        their key: their media URLs are not read)."""
        self.ids_ascii = True
        """Whether every external_id hashed here is ASCII, its own NFKC form, so none is a
        lookalike of another (False: one may be). Rows known by their key are not hashed:
        their ids are the ledger's, sent (``Ledger.sends_ids_beyond_ascii`` tells of them)."""

    def add(self, valid: Sequence[tuple[str, int, str | None, str | None, str | None]]) -> None:
        """Valid rows as the index takes them: (external_id, row, hash, source id, media)."""
        ids = [row[0] for row in valid]
        self.ids.extend(map(hash, ids))
        self.media.extend(map(hash, [row[4] for row in valid if row[4] is not None]))
        self.ids_ascii = self.ids_ascii and "".join(ids).isascii()

    def not_hashed(self) -> None:
        """Rows entered the index without passing here: nothing is known from the hashes."""
        self.whole = False

    def ids_once_each(self) -> bool:
        """Every external_id is on one row (False: it may not be)."""
        return self.whole and not _any_equal(self.ids)

    def media_once_each(self) -> bool:
        """Every media URL is on one row (False: it may not be)."""
        return self.whole and not _any_equal(self.media)


def _any_equal(values: array[int]) -> bool:
    if len(values) < SORTED_PAST:
        return len(set(values)) < len(values)
    import pyarrow as pa
    import pyarrow.compute as pc

    # The array's own memory, read in place and sorted in C: a quarter of a second and 16 MB
    # a million (counting distinct values in a hash table took 120 MB).
    hashes = pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])
    ordered = hashes.sort()
    return bool(pc.any(pc.equal(ordered[1:], ordered[:-1])).as_py())
