"""Small input files (the key file, the mapping): regular files of bounded size, or refused.

A FIFO would block the read forever, ``/dev/zero`` never ends, and a key file of 50 MB
costs minutes and gigabytes before it is found to be no key. So the file is opened without
blocking, its kind and size checked, and no more than the bound is ever read.

It sits on the ground floor beside ``settings`` (the key file) so that ``rows.mapping``
(the mapping file) can use it without reaching up to the settings.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from importer.errors import UnreadableFile

KEY_FILE_LIMIT = 64 * 1024
"""The largest ``--api-key-file``: a key is about a hundred characters."""


MAPPING_FILE_LIMIT = 1024 * 1024
"""The largest ``--mapping``: a mapping is a few dozen lines."""


def read_small_file(path: Path, limit: int) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them; else refused."""
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO opens without a writer
    except FileNotFoundError:
        raise UnreadableFile("no such file") from None
    except OSError as error:
        raise UnreadableFile(f"cannot be read ({error.strerror})") from None
    with os.fdopen(handle, "rb") as opened:
        mode = os.fstat(handle).st_mode
        if not stat.S_ISREG(mode):
            raise UnreadableFile(
                f"is not a regular file (it is {_kind(mode)}); pass the path of a plain file"
            )
        data = opened.read(limit + 1)
    if len(data) > limit:
        raise UnreadableFile(f"is larger than {limit // 1024} KB, far more than it can hold")
    return data


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a plain file"
