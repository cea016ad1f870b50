"""A file's fingerprint: its size, its modification time and a hash of all its bytes.

Whether a manifest is unchanged since the ledger kept its index: every byte is hashed, so
a file rewritten with the same size and time is never taken for the old one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

CHUNK = 1024 * 1024


def file_fingerprint(path: Path) -> str | None:
    """``size:mtime_ns:blake2b`` of the file as it is now; None while it is being written."""
    before = path.stat()
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    after = path.stat()
    if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
        return None
    return f"{after.st_size}:{after.st_mtime_ns}:{digest.hexdigest()}"
