"""Reporting: the run summary, the plan, and the success/error files.

Every CSV written here is safe to open in a spreadsheet: every cell is quoted, and a cell
that starts (after any spaces) with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
gets a leading apostrophe, so it is shown as text instead of being run as a formula (CSV
injection; see ``importer.read.formulas``).
"""

from __future__ import annotations

import codecs
import csv
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from importer.errors import ImporterError
from importer.ledger import Ledger
from importer.outcomes import SENDING_ACTIONS, Action, Outcome, Status, format_counts, rows_done
from importer.plan.planner import EXAMPLES_PER_ACTION, PlannedRow
from importer.read.formulas import IMPORTER_COLUMNS, defuse
from importer.read.manifest import read_manifest
from importer.report.outputs import ReportFiles
from importer.report.preview import (
    PREVIEW_ROWS,
    field_value,
    people,
    preview_lines,
    request_json,
    start_both_ways,
)
from importer.report.summary import summary_markdown
from importer.rows import contract
from importer.targets.registry import recorded_import_settings

if TYPE_CHECKING:
    from importer.outcomes import RunSummary
    from importer.report.outputs import ReportFiles

PLAN_COLUMNS = [
    "row",
    "external_id",
    "action",
    "reason",
    "start_at_cell",
    "start_at_sent",
    "title",
    "type",
    "start_at_local",
    "participants",
    "request",
]
"""``plan --out``: each row's action, the fields a person checks first, and (``request``)
every field of the create as it will be sent, as JSON."""
SUCCESS_COLUMNS = [
    "manifest",
    "row",
    "external_id",
    "engagement_id",
    "outcome",
    "when",
    "processing_status",
    "found_by",
]
ERROR_EXTRA_COLUMNS = list(IMPORTER_COLUMNS)
SKIPPED_COLUMNS = ["manifest", "row", "external_id", "reason"]


class SafeCsvWriter:
    """csv.writer that quotes every cell and neutralises formula-like ones."""

    def __init__(self, handle: IO[str]) -> None:
        # Quoted, a cell cannot be split at a semicolon by a spreadsheet in such a locale.
        self._writer = csv.writer(handle, quoting=csv.QUOTE_ALL)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([defuse(cell) for cell in row])


class PlanPrinter:
    """Collects planned rows: counts, the first few of each action, and optional CSV."""

    def __init__(
        self,
        examples: int = EXAMPLES_PER_ACTION,
        csv_handle: IO[str] | None = None,
        start_at_column: str | tuple[str, ...] = "start_at",
        timezone: str = "UTC",
    ) -> None:
        self.examples = examples
        self.start_at_columns = (
            (start_at_column,) if isinstance(start_at_column, str) else start_at_column
        )
        """The column(s) start_at is read from: a date and a time column are shown joined."""
        self.timezone = timezone
        self.previews: list[PlannedRow] = []
        """The first rows to send, shown as their requests will carry them."""
        self.notices: list[str] = []
        """File-level notes (how dates were read, a skipped footer), shown before the rows."""
        self.counts: Counter[Action] = Counter()
        self.samples: dict[Action, list[PlannedRow]] = {}
        self.writer = SafeCsvWriter(csv_handle) if csv_handle else None
        if self.writer:
            self.writer.writerow(PLAN_COLUMNS)

    def __call__(self, planned: PlannedRow) -> None:
        action = planned.action
        self.counts[action] += 1
        bucket = self.samples.setdefault(action, [])
        if len(bucket) < self.examples:
            bucket.append(planned)
        if planned.sends and planned.row.payload and len(self.previews) < PREVIEW_ROWS:
            self.previews.append(planned)
        if self.writer:
            row = planned.row
            payload = row.payload or {}
            sent = field_value(payload, "start_at") or ""
            self.writer.writerow(
                [
                    row.row_number,
                    row.external_id or "",
                    action,
                    planned.reason,
                    self._start_at_cell(row.cells),
                    sent,
                    field_value(payload, "title") or "",
                    field_value(payload, "type") or "",
                    start_both_ways(sent, self.timezone) if sent else "",
                    people(field_value(payload, "participants")),
                    request_json(row.payload),
                ]
            )

    def count_new(self, rows: int) -> bool:
        """Counts so many ``new`` rows without seeing them, when none of them would be shown
        (False: it wants to see them, given one by one)."""
        if self.writer or len(self.previews) < PREVIEW_ROWS:
            return False
        if len(self.samples.get(Action.NEW, ())) < self.examples:
            return False
        self.counts[Action.NEW] += rows
        return True

    def count_settled(self, rows: int) -> None:
        """Counts so many ``already imported`` rows known by their key, not shown: the plan
        gives the first ``EXAMPLES_PER_ACTION`` of each batch one by one."""
        self.counts[Action.IMPORTED] += rows

    @property
    def every_row(self) -> bool:
        """Whether each row must be seen with its request (a CSV of every row is written),
        or more examples of an action are shown than a batch keeps of its settled rows."""
        return self.writer is not None or self.examples > EXAMPLES_PER_ACTION

    def _start_at_cell(self, cells: dict[str, str]) -> str:
        if len(self.start_at_columns) == 1:
            return cells.get(self.start_at_columns[0], "")
        return " ".join(v for c in self.start_at_columns if (v := cells.get(c, "").strip()))

    def text(self, manifest: str) -> str:
        """The human summary: a table of actions, then examples of each."""
        parts = [*self.notices]
        parts.append(format_counts(self.counts, f"Plan for {manifest} (nothing was sent):"))
        if self.previews:
            to_send = sum(n for a, n in self.counts.items() if a in SENDING_ACTIONS)
            parts.append(
                f"\nAs they will be sent (first {len(self.previews)} of {to_send:,} to send):"
            )
            for planned in self.previews:
                row = planned.row
                assert row.payload is not None
                parts.append(f"  row {row.row_number} {row.external_id}")
                parts += [f"    {line}" for line in preview_lines(row.payload, self.timezone)]
        for action in Action:
            rows = self.samples.get(action)
            if not rows:
                continue
            parts.append(f"\n{action} (first {len(rows)} of {self.counts[action]:,}):")
            for planned in rows:
                reason = f": {planned.reason}" if planned.reason else ""
                parts.append(
                    f"  row {planned.row.row_number} {planned.row.external_id or '(no id)'}{reason}"
                )
        return "\n".join(parts)

    def as_json(self, manifest: str) -> str:
        """The machine summary."""
        return json.dumps(
            {
                "manifest": manifest,
                "notices": self.notices,
                "counts": dict(self.counts),
                "to_send": [
                    {
                        "row": p.row.row_number,
                        "request": p.row.payload,
                        "start_at_local": start_both_ways(
                            str(field_value(p.row.payload or {}, "start_at") or ""), self.timezone
                        ),
                    }
                    for p in self.previews
                ],
                "examples": {
                    action: [
                        {
                            "row": p.row.row_number,
                            "external_id": p.row.external_id,
                            "reason": p.reason,
                        }
                        for p in rows
                    ]
                    for action, rows in self.samples.items()
                },
            },
            indent=2,
        )


def success_rows(ledger: Ledger) -> Iterator[list[Any]]:
    """One row per engagement imported: manifest row, ids, created or existing, when, and
    which check found it (``create``, or ``lookup`` for a target without idempotent creates)."""
    for row in ledger.imported_rows():
        yield [
            row["manifest"],
            row["row_number"],
            row["external_id"],
            row["engagement_id"],
            row["status"],
            row["completed_at"],
            row["processing_status"] or "",
            row.get("found_by") or "",  # absent from ledgers older than found_by
        ]


def write_reports(ledger: Ledger, out_dir: Path) -> dict[str, int]:
    """Write success.csv, errors.csv (and one errors file per manifest when there are
    several), skipped.csv and summary.md; return how many rows each CSV file has.

    The files take their names together at the end (see ``importer.report.outputs``)."""

    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"success.csv": 0, "errors.csv": 0, "skipped.csv": 0}
    with ReportFiles(out_dir) as files:
        with files.open("success.csv") as handle:
            writer = SafeCsvWriter(handle)
            writer.writerow(SUCCESS_COLUMNS)
            for values in success_rows(ledger):
                writer.writerow(values)
                written["success.csv"] += 1
        transcripts = TranscriptCopies(ledger, files)
        written["errors.csv"] = write_errors(ledger, files, "errors.csv", transcripts)
        manifests = ledger.error_manifests()
        errors_files = dict.fromkeys(manifests, "errors.csv")
        if len(manifests) > 1:
            # One mapping reads each back: a file per manifest, with that manifest's columns.
            errors_files = per_manifest_names(manifests)
            for manifest, name in errors_files.items():
                written[name] = write_errors(ledger, files, name, transcripts, manifest)
        with files.open("skipped.csv") as handle:
            writer = SafeCsvWriter(handle)
            writer.writerow(SKIPPED_COLUMNS)
            for record in ledger.skipped_records():
                writer.writerow(
                    [
                        record["manifest"],
                        record["row_number"],
                        record["external_id"] or "",
                        record["reason"],
                    ]
                )
                written["skipped.csv"] += 1

        with files.open(SUMMARY_FILE) as handle:
            handle.write(summary_markdown(ledger, out_dir, ledger.path, errors_files))
    return written


SUMMARY_FILE = "summary.md"


def run_summary_text(summary: RunSummary, manifest: Path) -> str:
    """A run's counts for people, with its time, requests and pace.

    Each row is counted once, so the counts add up to the manifest's rows: a ``same
    recording`` row was sent, and counted by its outcome; the flag is a sentence below.
    The pace counts what this run sent, not rows an earlier run refused."""
    rate = rows_done({str(k): n for k, n in summary.sent.items()}) / max(summary.seconds, 1e-9)
    counts = Counter(summary.counts)
    same = counts.pop(Action.SAME_RECORDING, 0)
    # A contact set is applied to a row counted above (created, already imported...).
    contacts = [(counts.pop(o, 0), o) for o in (Outcome.CONTACTS_APPLIED, Outcome.CONTACTS_FAILED)]
    text = format_counts(
        counts,
        f"Summary for {manifest} ({summary.seconds:.1f} s, {summary.requests:,} "
        f"request{'' if summary.requests == 1 else 's'}, "
        f"{rate:.1f} rows/s):",
    )
    if any(n for n, _ in contacts):
        said = ", ".join(f"{n:,} {str(o).replace('_', ' ')}" for n, o in contacts if n)
        text += f"\nContact sets: {said} (rows counted above)."
    if same:
        text += (
            f"\n{same:,} of the rows sent are the same recording as another row (listed "
            "above; --on-same-recording skip would not send them)."
        )
    return text


def stop_notice(summary: RunSummary) -> str | None:
    """Why a run stopped early, and what to do (None when it did not)."""
    if summary.stop_reason == "interrupted":
        return "Interrupted: run the same command again to resume."
    if summary.stop_reason:
        return f"Stopped: {summary.stop_reason}"
    return None


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
        elif row["kind"] == 4:
            status = Action.CHANGED
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

        try:
            settings = recorded_import_settings(Path(manifest), self.ledger.last_settings(manifest))
            for batch in read_manifest(Path(manifest), settings.batch_size, settings.source):
                yield from batch
        except (ImporterError, OSError, ValueError):
            return


def write_errors(
    ledger: Ledger,
    files: ReportFiles,
    name: str,
    transcripts: TranscriptCopies,
    manifest: str | None = None,
) -> int:
    """One errors file (of one manifest, or of all); how many rows it has.

    Two passes keep memory flat: the first only learns the columns.
    """
    columns: list[str] = []
    for cells, _, _ in error_rows(ledger, manifest):
        # A re-fed errors.csv brings the old error columns along: the fresh ones replace them.
        columns += [n for n in cells if n not in columns and n not in ERROR_EXTRA_COLUMNS]
    if not columns:  # no row: the header still reads back with the manifest's mapping
        columns = [n for n in manifest_columns(ledger, manifest) if n not in ERROR_EXTRA_COLUMNS]
    count = 0
    with files.open(name) as handle:
        writer = SafeCsvWriter(handle)
        writer.writerow([*columns, *ERROR_EXTRA_COLUMNS])
        for row_manifest, cells, status, message in attention_rows(ledger, manifest):
            cells = transcripts.relocate(row_manifest, cells)
            writer.writerow([*(cells.get(name, "") for name in columns), status, message])
            count += 1
    return count


def manifest_columns(ledger: Ledger, manifest: str | None = None) -> list[str]:
    """The columns of ``manifest`` (else of every manifest the ledger knows), in order, as
    its last run read it; a manifest gone or unreadable adds none."""
    from importer.errors import ImporterError
    from importer.read.manifest import read_columns

    columns: list[str] = []
    for name in [manifest] if manifest is not None else ledger.known_manifests():
        try:
            settings = recorded_import_settings(Path(name), ledger.last_settings(name))
            found = read_columns(Path(name), settings.source)
        except (ImporterError, OSError, ValueError):
            continue
        columns += [column for column in found if column not in columns]
    return columns


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


TRANSCRIPT_COPY_LIMIT = contract.TRANSCRIPT_MAX_BYTES + len(codecs.BOM_UTF8)
"""Bytes of the largest transcript file the API could take (a UTF-8 BOM is not sent)."""


class TranscriptCopies:
    """Transcript files of error rows, copied beside the errors files.

    A ``transcript_path`` is read relative to (and only inside) its manifest's folder, so an
    errors file fed back from the report folder could not reach it: the file is copied to
    ``transcripts/<manifest>/`` there, and the cell names the copy. A file over the API's
    transcript limit is not copied (its row's error says so): it is read no further.
    """

    def __init__(self, ledger: Ledger, files: ReportFiles) -> None:
        self.ledger, self.files = ledger, files
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
        try:
            if not self.files.copy_at_most(source, relative, TRANSCRIPT_COPY_LIMIT):
                return cells  # too large to send: the row's error says so
        except OSError:
            return cells
        return {**cells, column: relative.as_posix()}

    def _column(self, manifest: str) -> str | None:
        if manifest not in self._columns:
            try:
                settings = recorded_import_settings(
                    Path(manifest), self.ledger.last_settings(manifest)
                )
                self._columns[manifest] = settings.mapping.columns.column_of("transcript_path")
            except (ImporterError, OSError, ValueError, KeyError):
                self._columns[manifest] = None
        return self._columns[manifest]
