"""Who holds a ledger's lock: the kernel's table of file locks, else the holder's pid file.

The lock is an ``flock`` on the file itself, so any name of the file meets it; the kernel
knows which process holds it by the file's identity (device and inode), whatever name
either process used. Linux lists it in ``/proc/locks``:

    1: FLOCK  ADVISORY  WRITE 9386 08:01:1234567 0 EOF

>>> holder_in("1: FLOCK  ADVISORY  WRITE 9386 08:01:1234567 0 EOF", 8, 1, 1234567)
9386
>>> holder_in("1: POSIX  ADVISORY  WRITE 9386 08:01:1234567 0 EOF", 8, 1, 1234567) is None
True
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PROC_LOCKS = Path("/proc/locks")


def holder_in(table: str, major: int, minor: int, inode: int) -> int | None:
    """The pid holding an exclusive flock on the file (major:minor:inode) in ``table``."""
    wanted = f"{major:02x}:{minor:02x}:{inode}"
    for line in table.splitlines():
        fields = line.split()
        if "->" in fields:  # a process waiting for the lock, not holding it
            continue
        held = len(fields) >= 6 and fields[1] == "FLOCK" and fields[3] == "WRITE"
        if held and fields[5] == wanted and fields[4].isdigit():
            return int(fields[4])
    return None


def lock_holder(path: Path) -> int | None:
    """The pid holding the ledger at ``path`` (by any of its names), when the kernel says."""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        info = os.stat(path)
        table = PROC_LOCKS.read_text(encoding="ascii")
        return holder_in(table, os.major(info.st_dev), os.minor(info.st_dev), info.st_ino)
    return None
