"""The errors files of ``importer report``: every row that needs attention, fixable and
fed back as a manifest.

``errors.csv`` keeps each row's original cells plus ``error_status`` and ``error_message``;
with several manifests in a ledger, ``errors-<name>.csv`` holds each one's rows with its own
columns. Cells the ledger did not keep are read back from the manifest, and transcript files
are copied beside the files so ``transcript_path`` still resolves when fed back.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from importer.ledger import Ledger
from importer.outcomes import Status
from importer.report import ERROR_EXTRA_COLUMNS, SafeCsvWriter

UNFINISHED_ADVICE = {
    Status.PENDING: "not sent yet: a run stopped before it; run the same command again, or "
    "`importer retry`",
    Status.IN_FLIGHT: "sent, but its answer was lost: `importer retry` re-sends it safely (the API "
    "answers 200 if it was applied)",
}


def error_rows(
    ledger: Ledger, manifest: str | None = None
) -> Iterator[tuple[dict[str, str], str, str]]:
    """Original cells, status and message of every row that needs attention (see
    ``attention_rows``)."""
    for _, cells, status, message in attention_rows(ledger, manifest):
        yield cells, status, message


def attention_rows(
    ledger: Ledger, manifest: str | None = None
) -> Iterator[tuple[str, dict[str, str], str, str]]:
    """Manifest, original cells, status and message of every row that needs attention, in manifest
    order: rows not in AskElephant (rejected, failed, pending, in flight), and imported ones
    whose processing failed or whose contacts could not be applied.

    A rejected row whose external_id was imported or sent since (say from a fixed
    errors.csv) is left out, and so is an older rejection of an id rejected again later:
    a row is never reported both imported and in error, nor twice. Cells the ledger did not
    keep are read from the manifest, as its last run read it.
    """
    cells_of = ManifestCells(ledger)
    for row in ledger.error_records(manifest):
        status, message = row["status"], row["message"] or ""
        if row["kind"] == 1:
            status = f"{Status.FAILED} (transient)" if row["transient"] else Status.FAILED
            if row["http_status"]:
                status += f" HTTP {row['http_status']}"
        elif row["kind"] == 2:
            message = UNFINISHED_ADVICE.get(status, "")
        elif row["kind"] == 3:
            statuses, messages = [], []
            if row["message"]:
                statuses.append(f"processing {row['message']}")
                messages.append(
                    f"AskElephant could not process the recording (processing_status "
                    f"{row['message']}): check the media URL"
                )
            if row["contacts_error"]:
                statuses.append("contacts failed")
                messages.append(row["contacts_error"])
            status, message = "; ".join(statuses), "; ".join(messages)
        if row["cells"]:
            cells = json.loads(row["cells"])
        else:
            cells = cells_of.get(row["manifest"], row["row_number"])
        yield row["manifest"], cells, status, message


class ManifestCells:
    """Cells of rows the ledger did not keep, read from their manifest in one forward pass.

    ``get`` must be asked in manifest order, row numbers rising (as ``error_records``
    yields them); a manifest that is gone or unreadable gives empty cells.
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.manifest: str | None = None
        self.rows: Iterator[Any] = iter(())
        self.current: Any = None

    def get(self, manifest: str, row_number: int) -> dict[str, str]:
        if manifest != self.manifest:
            self.manifest, self.current = manifest, None
            self.rows = self._open(manifest)
        while self.current is None or self.current.row_number < row_number:
            self.current = next(self.rows, None)
            if self.current is None:
                self.rows = iter(())
                return {}
        return dict(self.current.cells) if self.current.row_number == row_number else {}

    def _open(self, manifest: str) -> Iterator[Any]:
        from importer.errors import ImporterError
        from importer.manifest import read_manifest
        from importer.settings import ImportSettings

        try:
            settings = ImportSettings.from_record(
                Path(manifest), self.ledger.last_settings(manifest)
            )
            for batch in read_manifest(Path(manifest), settings.batch_size, settings.source):
                yield from batch
        except (ImporterError, OSError, ValueError):
            return


def write_errors(
    ledger: Ledger, path: Path, transcripts: TranscriptCopies, manifest: str | None = None
) -> int:
    """One errors file (of one manifest, or of all); how many rows it has.

    Two passes keep memory flat: the first only learns the columns.
    """
    columns: list[str] = []
    for cells, _, _ in error_rows(ledger, manifest):
        # A re-fed errors.csv brings the old error columns along: the fresh ones replace them.
        columns += [n for n in cells if n not in columns and n not in ERROR_EXTRA_COLUMNS]
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = SafeCsvWriter(handle)
        writer.writerow([*columns, *ERROR_EXTRA_COLUMNS])
        for row_manifest, cells, status, message in attention_rows(ledger, manifest):
            cells = transcripts.relocate(row_manifest, cells)
            writer.writerow([*(cells.get(name, "") for name in columns), status, message])
            count += 1
    return count


def per_manifest_names(manifests: list[str]) -> dict[str, str]:
    """``errors-<manifest name>.csv`` for each manifest (numbered when two names meet)."""
    names: dict[str, str] = {}
    for manifest in manifests:
        stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(manifest).stem)
        name, n = f"errors-{stem}.csv", 2
        while name in names.values():
            name, n = f"errors-{stem}-{n}.csv", n + 1
        names[manifest] = name
    return names


class TranscriptCopies:
    """Transcript files of error rows, copied beside the errors files.

    A ``transcript_path`` is read relative to (and only inside) its manifest's folder, so an
    errors file fed back from the report folder could not reach it: the file is copied to
    ``transcripts/<manifest>/`` there, and the cell names the copy.
    """

    def __init__(self, ledger: Ledger, out_dir: Path) -> None:
        self.ledger, self.out_dir = ledger, out_dir
        self._columns: dict[str, str | None] = {}

    def relocate(self, manifest: str, cells: dict[str, str]) -> dict[str, str]:
        column = self._column(manifest)
        value = cells.get(column, "").strip() if column else ""
        if not column or not value:
            return cells
        root = Path(manifest).parent.resolve()
        try:
            source = (root / value).resolve()
            copyable = source.is_relative_to(root) and source.is_file()
        except (OSError, ValueError, RuntimeError):
            # A NUL, a name too long, a symlink loop (RuntimeError): the run made each the
            # row's error already; the cell stays as written.
            copyable = False
        if not copyable:
            return cells  # the row's error says so; nothing to copy
        relative = Path("transcripts") / Path(manifest).stem / source.relative_to(root)
        target = self.out_dir / relative
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        except OSError:
            return cells
        return {**cells, column: relative.as_posix()}

    def _column(self, manifest: str) -> str | None:
        if manifest not in self._columns:
            from importer.errors import ImporterError
            from importer.settings import ImportSettings

            try:
                settings = ImportSettings.from_record(
                    Path(manifest), self.ledger.last_settings(manifest)
                )
                self._columns[manifest] = settings.mapping.columns.column_of("transcript_path")
            except (ImporterError, OSError, ValueError, KeyError):
                self._columns[manifest] = None
        return self._columns[manifest]
