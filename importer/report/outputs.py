"""Report files written whole or not at all.

Each file is written under a temporary name beside its final one and renamed into place
(a rename within one folder is atomic): a report killed, interrupted or refused half-way
leaves the files of the earlier report as they were, never a truncated one under the final
name. The CSV files and ``summary.md`` are renamed together, once all are written.

A final name that exists and is not a regular file (a FIFO, a device, a folder, a
symbolic link) is refused before anything is written: opening a FIFO to write would wait
for a reader forever, and a rename would silently replace a link.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import IO

from importer.errors import UsageError

KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a folder",
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFSOCK: "a socket",
}


def refuse_unless_regular(path: Path) -> None:
    """Raise ``UsageError`` when ``path`` exists and is not a regular file."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as error:
        raise UsageError(f"cannot write {path} ({error.strerror})") from None
    if not stat.S_ISREG(mode):
        kind = KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise UsageError(
            f"{path} is {kind}, not a regular file: the report does not write into it. "
            "Remove it, or pass another --out folder"
        )


class ReportFiles:
    """The files of one report in ``out_dir``; use as a context manager.

    On a clean exit every file opened with ``open`` is renamed into place; on any error
    (a refusal, Ctrl-C) the temporary files are removed and the earlier files stay.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self._written: list[tuple[Path, Path]] = []
        """(temporary, final) of the files to rename at the end."""

    def __enter__(self) -> ReportFiles:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is None:
            for temporary, final in self._written:
                os.replace(temporary, final)
        else:
            for temporary, _ in self._written:
                temporary.unlink(missing_ok=True)

    @contextmanager
    def open(self, name: str) -> Iterator[IO[str]]:
        """A text file to write ``name`` into; it takes the name when the report is done."""
        final = self.out_dir / name
        refuse_unless_regular(final)
        temporary = _temporary_beside(final)
        self._written.append((temporary, final))
        with temporary.open("w", encoding="utf-8", newline="") as handle:
            yield handle

    def copy_at_most(self, source: Path, relative: Path, limit: int) -> bool:
        """Copy ``source`` to ``relative`` (in ``out_dir``) if it holds at most ``limit``
        bytes; False, copying nothing, when it holds more (it is read no further)."""
        final = self.out_dir / relative
        final.parent.mkdir(parents=True, exist_ok=True)
        refuse_unless_regular(final)
        with source.open("rb") as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            return False
        temporary = _temporary_beside(final)
        try:
            temporary.write_bytes(data)
            os.replace(temporary, final)
        finally:
            temporary.unlink(missing_ok=True)
        return True


def _temporary_beside(final: Path) -> Path:
    """A new, empty file in ``final``'s folder, named after it (created exclusively: a name
    another process planted is never reused)."""
    descriptor, name = tempfile.mkstemp(
        dir=final.parent, prefix=f".{final.name}.", suffix=".partial"
    )
    os.close(descriptor)
    return Path(name)
