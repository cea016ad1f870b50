"""``summary.md``: one page to paste into a chat after an import.

``importer report --out DIR`` writes it beside the CSV files: the counts, what needs
attention grouped by rule, coverage by month of ``start_at`` (rows in the manifests against
rows in AskElephant, so a gap in a backfill shows), throughput of the last runs, and the
exact commands that fix or resume what is left.

Coverage reads every manifest the ledger knows again, mapped as its last run mapped it;
rows are counted once per external_id (a fixed ``errors.csv`` fed back does not count its
rows twice), in a temporary SQLite table, so memory stays flat.
"""

from __future__ import annotations

import datetime as dt
import json
import shlex
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from importer.errors import ImporterError, InvalidCell
from importer.ledger import Ledger
from importer.ledger.queries import PROCESSING_FAILED
from importer.outcomes import Status, format_counts, rows_done
from importer.plan.passes import mapped_batches
from importer.report.attention import top_errors
from importer.rows.dates import parse_start_at
from importer.rows.validate import MappedRow
from importer.settings import DEFAULT_TARGET, DEFAULT_TIMEZONE
from importer.targets.registry import recorded_import_settings

NO_MONTH = "(no valid start_at)"
SHOWN_RUNS = 5


def summary_markdown(
    ledger: Ledger, out_dir: Path, ledger_path: Path, errors_files: dict[str, str]
) -> str:
    """The whole page. ``errors_files``: manifest -> the errors file written for it."""
    counts = {k: v for k, v in ledger.status_counts().items() if v}
    parts = [f"# Import summary: {ledger_path}", ""]
    parts += [
        f"Written {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by `importer report`."
    ]
    parts += ["", "## Counts", "", "```", format_counts(counts, "Rows by status:"), "```"]
    parts += _attention(ledger, counts)
    parts += _coverage(ledger)
    parts += _runs(ledger)
    parts += _next_steps(ledger, counts, out_dir, ledger_path, errors_files)
    return "\n".join(parts) + "\n"


def _attention(ledger: Ledger, counts: dict[str, int]) -> list[str]:
    groups = top_errors(ledger)
    contacts_total, _ = ledger.contacts_failures()
    failed = ledger.processing_counts()
    processing_failed = sum(n for s, n in failed.items() if s.upper() in PROCESSING_FAILED)
    lines = ["", "## Needs attention", ""]
    if not groups and not contacts_total and not processing_failed:
        return [*lines, "Nothing: every row the ledger knows is in AskElephant."]
    if groups:
        lines += ["| rows | rule | first example |", "|---:|---|---|"]
        lines += [f"| {g.count:,} | {_cell(g.rule)} | {_cell(g.example, 120)} |" for g in groups]
    if contacts_total:
        lines += ["", f"- Contacts not applied: {contacts_total:,} engagement(s)."]
    if processing_failed:
        lines += [f"- AskElephant could not process {processing_failed:,} recording(s)."]
    return lines


def _cell(text: str, limit: int = 80) -> str:
    """Text for a Markdown table cell: one line, no pipes, not too long."""
    flat = " ".join(str(text).split()).replace("|", "/")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _runs(ledger: Ledger) -> list[str]:
    runs = ledger.recent_runs(SHOWN_RUNS)
    if not runs:
        return []
    lines = ["", "## Throughput (last runs)", ""]
    lines += ["| run | command | manifest | started | seconds | rows/s | outcome |"]
    lines += ["|---:|---|---|---|---:|---:|---|"]
    for run in runs:
        seconds = run["seconds"] or 0.0
        done = rows_done(json.loads(run["counts"] or "{}"))
        speed = f"{done / seconds:.1f}" if seconds and done else "-"
        manifest = Path(run["manifest"]).name if run["manifest"] else "-"
        lines.append(
            f"| #{run['id']} | {run['command']} | {_cell(manifest, 40)} | "
            f"{(run['started_at'] or '')[:16]} | {seconds:.1f} | {speed} | {run['outcome']} |"
        )
    return lines


# -- coverage by month ---------------------------------------------------------------------


def _coverage(ledger: Ledger) -> list[str]:
    months, unreadable = coverage_by_month(ledger)
    lines = ["", "## Coverage by month of start_at", ""]
    if not months and not unreadable:
        return [*lines, "No manifest to read."]
    if months:
        gaps = _gaps(months)
        if len(gaps) <= MAX_GAP_LINES:  # else the page would no longer paste
            months = {**months, **dict.fromkeys(gaps, (0, 0))}
        lines += ["| month | in manifests | in AskElephant | missing |", "|---|---:|---:|---:|"]
        for month, (rows, imported) in sorted(months.items()):
            lines.append(f"| {month} | {rows:,} | {imported:,} | {rows - imported:,} |")
        if gaps:
            named = ", ".join(gaps[:MAX_GAP_LINES])
            more = f" and {len(gaps) - MAX_GAP_LINES:,} more" if len(gaps) > MAX_GAP_LINES else ""
            lines += ["", f"No row at all in {named}{more}: a gap in the export?"]
    for manifest in unreadable:
        lines.append(f"- {manifest} could not be read again: its rows are not counted.")
    return lines


MAX_GAP_LINES = 24
"""Empty months shown as lines of the coverage table; more are only named."""


def _gaps(months: dict[str, tuple[int, int]]) -> list[str]:
    """Months between the first and the last with no row at all (``2024-03``)."""
    known = sorted(
        m for m in months if len(m) == 7 and m[4] == "-" and m.replace("-", "").isdigit()
    )
    if len(known) < 2:
        return []
    year, month = int(known[0][:4]), int(known[0][5:])
    gaps = []
    while f"{year:04d}-{month:02d}" < known[-1]:
        name = f"{year:04d}-{month:02d}"
        if name not in months:
            gaps.append(name)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return gaps


def coverage_by_month(ledger: Ledger) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """Month -> (rows in the manifests, rows of them in AskElephant); manifests unreadable.

    A row counts once per external_id, in the month of its first manifest row.
    """
    ledger.start_coverage()
    without_id: Counter[str] = Counter()
    unreadable = []
    for manifest in ledger.known_manifests():
        try:
            for batch in _mapped(ledger, manifest):
                facts = ledger.facts_for(r.external_id for r, _ in batch if r.external_id)
                rows = []
                for row, month in batch:
                    if row.external_id is None:
                        without_id[month] += 1
                        continue
                    fact = facts.get(row.external_id)
                    imported = fact is not None and fact.status in (
                        Status.CREATED,
                        Status.EXISTING,
                    )
                    rows.append((row.external_id, month, int(imported)))
                ledger.add_coverage(rows)
        except (ImporterError, OSError, ValueError):
            unreadable.append(manifest)
    months: dict[str, tuple[int, int]] = {month: (n, 0) for month, n in without_id.items()}
    for month, (n, in_target) in ledger.coverage_counts().items():
        total, done = months.get(month, (0, 0))
        months[month] = (total + n, done + in_target)
    return months, unreadable


def _mapped(ledger: Ledger, manifest: str) -> Iterator[list[tuple[MappedRow, str]]]:
    """The manifest's rows mapped as its last run mapped them, each with its month."""
    settings = recorded_import_settings(Path(manifest), ledger.last_settings(manifest))
    options = settings.mapping
    column = options.columns.column_of("start_at")
    for batch in mapped_batches(
        Path(manifest), options, settings.batch_size, None, settings.source
    ):
        yield [(row, _month(row, row.cells.get(column, ""), options)) for row in batch]


def _month(row: MappedRow, cell: str, options: Any) -> str:
    """``2024-03`` of the row's start_at as sent, or as its cell reads for an invalid row."""
    value = (row.payload or {}).get("start_at")
    if not value and cell.strip():
        try:
            value = parse_start_at(cell, options.timezone, options.dates)
        except (InvalidCell, ValueError):
            value = None
    return str(value)[:7] if value else NO_MONTH


# -- next steps ----------------------------------------------------------------------------


def _next_steps(
    ledger: Ledger,
    counts: dict[str, int],
    out_dir: Path,
    ledger_path: Path,
    errors_files: dict[str, str],
) -> list[str]:
    at = f"{_where(ledger)}--ledger {shlex.quote(str(ledger_path))}"
    steps: list[str] = []
    split = ledger.failed_split()
    unfinished = counts.get(Status.PENDING, 0) + counts.get(Status.IN_FLIGHT, 0)
    if unfinished or split["transient"]:
        what = _join(
            (counts.get(Status.PENDING, 0), "pending"),
            (counts.get(Status.IN_FLIGHT, 0), "in flight"),
            (split["transient"], "failed transiently"),
        )
        steps.append(f"importer retry {at}    # resumes {what}")
    rejected = counts.get(Status.INVALID, 0) + counts.get(Status.DUPLICATE, 0)
    if rejected or split["permanent"]:
        for manifest, name in errors_files.items():
            options = rerun_options(ledger.last_settings(manifest))
            errors = shlex.quote(str(out_dir / name))
            steps.append(
                f"importer run {errors}{options} {at}    # after fixing the cells "
                f"(rows of {Path(manifest).name})"
            )
    if split["permanent"]:
        steps.append(
            f"importer retry --include-permanent {at}    # only after fixing a scope or media host"
        )
    not_verified = ledger.processing_counts().get("not verified", 0)
    if not_verified:
        steps.append(f"importer verify --wait {at}    # {not_verified:,} not verified yet")
    lines = ["", "## Next steps", ""]
    if not steps:
        return [*lines, "None: nothing is left to fix or resume."]
    return [*lines, "```console", *steps, "```"]


def _where(ledger: Ledger) -> str:
    """``--base-url URL --api-key-file FILE`` as the last run gave them (never the key):
    a rehearsal's next steps must not resume against production."""
    runs = ledger.recent_runs(1)
    try:
        options = json.loads(runs[0]["options"] or "{}") if runs else {}
    except (TypeError, ValueError):
        options = {}
    parts = [
        f"--{name.replace('_', '-')} {shlex.quote(str(options[name]))} "
        for name in ("base_url", "api_key_file")
        if isinstance(options, dict) and options.get(name)
    ]
    return "".join(parts)


def rerun_options(record: dict[str, Any]) -> str:
    """The options that read an errors file as its manifest's last run read the manifest.

    How the file itself was read (delimiter, encoding, sheet) is left out: the errors file
    is a UTF-8 CSV whatever the manifest was.
    """
    parts: list[str] = []
    for option in ("target", "mapping", "source_system", "prefix", "timezone", "date_format"):
        value = record.get(option)
        if value is None or (option, value) in (
            ("target", DEFAULT_TARGET),
            ("timezone", DEFAULT_TIMEZONE),
        ):
            continue
        parts.append(f"--{option.replace('_', '-')} {shlex.quote(str(value))}")
    for flag in ("run_workflows", "dayfirst", "monthfirst", "skip_without_media"):
        if record.get(flag):
            parts.append(f"--{flag.replace('_', '-')}")
    return "".join(f" {part}" for part in parts)


def _join(*parts: tuple[int, str]) -> str:
    return ", ".join(f"{n:,} {what}" for n, what in parts if n)
