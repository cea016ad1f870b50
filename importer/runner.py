"""Runs a command end to end: ledger lock, run record, target, reporter, summary.

The CLI gathers options into settings and calls one function here; everything that
opens files or sockets for a command starts and ends in this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

from importer.errors import (
    EXIT_ABORTED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_ROWS_FAILED,
    EXIT_USAGE,
    ImporterError,
    LedgerFull,
    UsageError,
    is_disk_full,
)
from importer.events import Reporter
from importer.ledger import open_ledger, require_ledger
from importer.outcomes import RunSummary
from importer.pipeline import plan_manifest, run_import
from importer.read.csv_dialect import delimiter_option, encoding_option
from importer.report.files import PlanPrinter, write_reports
from importer.report.reconcile import ReconcileResult, Scope, reconcile, reconcile_scope
from importer.report.status import ledger_status
from importer.report.verify import VerifyResult, verify
from importer.rows.init import propose_mapping, render_mapping, summary_lines, zone_question
from importer.send.stopping import run_until_stopped, stop_on_signals
from importer.settings import (
    DEFAULT_CONCURRENCY,
    DEFAULT_TARGET,
    ApiChoices,
    ImportSettings,
    PlanOptions,
    ReadingChoices,
    RetrySettings,
    SendSettings,
    SourceOptions,
    VerifySettings,
    recordable_options,
    resolve_base_url,
)
from importer.targets.base import Target
from importer.targets.http import check_base_url
from importer.targets.registry import TargetKind, recorded_import_settings, target_kind

TargetFactory = Callable[[], Target]
T = TypeVar("T")


@dataclass
class RetryWork:
    """What ``importer retry`` has to do: manifests to read again, with their settings."""

    manifests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """(manifest, the stored settings of its last run)."""
    missing: int = 0
    """Rows not in AskElephant, retried or not."""
    include_permanent: bool = False

    def nothing_to_retry(self) -> tuple[str, int]:
        """With no manifest to read again: what to say, and the exit code.

        Exit 0 says every row is in AskElephant: only when it is true.
        """
        if self.missing:
            return (
                f"Nothing to retry, but {self.missing:,} row(s) are not in AskElephant: "
                "`importer status` says why (--include-permanent re-sends rejected rows).",
                EXIT_ROWS_FAILED,
            )
        return "No failed rows to retry.", EXIT_OK

    def settings(self, send: SendSettings) -> list[ImportSettings]:
        """Each manifest's settings: as its last run read it, only the unfinished rows."""
        plan = PlanOptions(include_permanent=self.include_permanent, only_failed=True)
        return [
            recorded_import_settings(Path(manifest), record, send=send, plan=plan)
            for manifest, record in self.manifests
        ]


def run_each(runs: list[ImportSettings], run_one: Callable[[ImportSettings], int]) -> int:
    """Run each import in turn; the worst exit code. A fatal one (2 or more) stops the rest."""
    worst = EXIT_OK
    for settings in runs:
        code = run_one(settings)
        worst = max(worst, code)
        if code >= 2:
            break
    return worst


def api_target_factory(
    api: ApiChoices, target: str, api_key: Callable[[TargetKind], str]
) -> TargetFactory:
    """The target the API choices point at: the URL, then the key, checked now.

    The base URL and the key come from the target's own variables when not given.
    """
    kind = target_kind(target)
    return target_factory(
        kind,
        resolved_base_url(api, target),
        api_key(kind),
        concurrency=api.concurrency,
        read_timeout=api.read_timeout,
    )


def resolved_base_url(api: ApiChoices, target: str) -> str:
    """``--base-url``, else the target's variable, else its default."""
    kind = target_kind(target)
    return resolve_base_url(api.base_url, env_name=kind.base_url_env, default=kind.default_base_url)


def base_url_given(api: ApiChoices, target: str) -> bool:
    """Whether ``--base-url`` or the target's variable names a base URL."""
    kind = target_kind(target)
    return bool(api.base_url or os.environ.get(kind.base_url_env, "").strip())


def target_factory(
    kind: TargetKind, base_url: str, api_key: str, *, concurrency: int, read_timeout: float
) -> TargetFactory:
    """A factory for any target; the base URL is checked up front, before any work."""
    checked = check_base_url(base_url, example=kind.default_base_url)
    return lambda: kind.build(checked, api_key, concurrency, read_timeout)


def import_manifest(
    settings: ImportSettings,
    *,
    ledger_path: Path,
    target_factory: TargetFactory,
    reporter: Reporter,
    command: str,
    options: dict[str, Any],
    target: str = DEFAULT_TARGET,
) -> RunSummary:
    """``importer run`` and ``importer retry``: one locked, recorded run of the pipeline.

    Ctrl-C and SIGTERM request a clean stop from here on, planning included.
    """
    with stop_on_signals(), open_ledger(ledger_path, exclusive=True) as ledger:
        ledger.claim_target(target)
        recorded = recordable_options(options)
        run_id = ledger.start_run(
            command, str(settings.manifest.resolve()), recorded, settings.to_record()
        )
        reporter.run_started(command, recorded, str(settings.manifest))
        started = time.monotonic()
        outcome, exit_code, counts = "error", 2, {}
        try:
            summary = asyncio.run(
                _with_target(
                    target_factory,
                    lambda target: run_import(settings, ledger, target, reporter, run_id),
                )
            )
            counts, exit_code = dict(summary.counts), summary.exit_code
            outcome = run_outcome(summary)
        except KeyboardInterrupt:
            outcome, exit_code = "interrupted", EXIT_INTERRUPTED
            raise
        except ImporterError as error:
            exit_code = error.exit_code
            raise
        except sqlite3.OperationalError as error:
            if not is_disk_full(error):
                raise
            outcome, exit_code = "stopped", EXIT_ABORTED
            raise LedgerFull(ledger_path, str(error)) from None
        finally:
            # On a full disk this may fail too: the next run then marks this one stopped.
            with contextlib.suppress(sqlite3.OperationalError):
                ledger.finish_run(run_id, outcome, exit_code, counts, time.monotonic() - started)
        reporter.run_finished({"run_id": run_id, **summary.as_dict()})
        return summary


def run_outcome(summary: RunSummary) -> str:
    """For the runs table: ok, rows need attention, aborted or interrupted."""
    if summary.exit_code == EXIT_INTERRUPTED:
        return "interrupted"
    if summary.stop_reason:
        return "aborted"
    return "ok" if summary.exit_code == 0 else "rows need attention"


async def _with_target(target_factory: TargetFactory, use: Callable[[Target], Awaitable[T]]) -> T:
    """Open a target, use it, close its connections whatever happens."""
    target = target_factory()
    try:
        return await use(target)
    finally:
        await target.aclose()


def verify_ledger(
    ledger_path: Path,
    target_factory: TargetFactory,
    settings: VerifySettings,
    reporter: Reporter,
    target: str = DEFAULT_TARGET,
) -> VerifyResult:
    """``importer verify``: GET every imported engagement, record processing_status.

    Ctrl-C and SIGTERM stop it cleanly from here on (exit 130): every status read so far
    stays recorded, the rest is read by the next ``verify``.
    """
    with stop_on_signals(), open_ledger(ledger_path, exclusive=True) as ledger:
        ledger.claim_target(target)
        return run_until_stopped(
            _with_target(target_factory, lambda target: verify(ledger, target, settings, reporter))
        )


def reconcile_ledger(
    ledger_path: Path,
    target_factory: TargetFactory,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    retry: RetrySettings | None = None,
    target: str = DEFAULT_TARGET,
    manifest: Path | None = None,
) -> ReconcileResult:
    """``importer reconcile``: compare the ledger with the target; changes neither.

    A target that looks up by external id is also asked about the rejected rows' refs and
    the manifest's (``manifest``, else the last run's): ``importer.report.reconcile``.
    Ctrl-C and SIGTERM stop it cleanly (exit 130), as every command that talks to a target.
    """
    with stop_on_signals(), open_ledger(ledger_path, readonly=True) as ledger:
        ledger.claim_target(target)
        scopes: list[Scope] = []

        def beyond_the_ledger() -> list[str]:
            # Read only for a target that looks up by external id: AskElephant never needs it.
            scopes.append(reconcile_scope(ledger, manifest))
            return scopes[-1].refs

        result = run_until_stopped(
            _with_target(
                target_factory,
                lambda remote: reconcile(
                    ledger,
                    remote,
                    concurrency=concurrency,
                    retry=retry,
                    extra_refs=beyond_the_ledger,
                ),
            )
        )
        result.note = scopes[-1].note if scopes else None
        return result


def plan_report(settings: ImportSettings, ledger_path: Path, out: Path | None) -> PlanPrinter:
    """``importer plan``: every row's action (and a CSV of them), sending and writing nothing."""
    with open_ledger(ledger_path, readonly=True) as ledger:
        ledger.claim_target(settings.reading.target)
        handle = open_for_writing(out) if out else None
        try:
            printer = PlanPrinter(
                csv_handle=handle,
                start_at_column=settings.mapping.columns.columns_of("start_at"),
                timezone=settings.mapping.timezone or "UTC",
            )
            plan_manifest(
                settings,
                ledger,
                printer,
                on_notice=printer.notices.append,
                on_new_rows=printer.count_new,
                on_settled_rows=None if printer.every_row else printer.count_settled,
                spool_records=handle is None,  # without a CSV of every row, few are seen
            )
        finally:
            if handle:
                handle.close()
    return printer


def open_for_writing(path: Path) -> IO[str]:
    """A text file to write a report into; a usage error when it cannot be."""
    try:
        return path.open("w", encoding="utf-8", newline="")
    except OSError as error:
        raise UsageError(f"cannot write {path} ({error.strerror})") from None


def retry_work(
    ledger_path: Path, include_permanent: bool, target: str = DEFAULT_TARGET
) -> RetryWork:
    """The manifests with rows left unfinished, and the settings to read each again."""
    with open_ledger(require_ledger(ledger_path), readonly=True) as book:
        book.claim_target(target)
        manifests = book.failed_manifests(include_permanent)
        return RetryWork(
            [(m, book.last_settings(m)) for m in manifests], book.rows_not_in(), include_permanent
        )


@dataclass(frozen=True)
class LastDestination:
    """Where the ledger's last run sent: what retry, verify and reconcile default to."""

    run_id: int
    target: str | None
    base_url: str | None


def last_destination(ledger_path: Path) -> LastDestination | None:
    """The last run's target and base URL; None without a ledger or a run."""
    if not ledger_path.exists():
        return None
    with open_ledger(ledger_path, readonly=True) as book:
        found = book.last_destination()
    return LastDestination(*found) if found else None


def last_settings(ledger_path: Path, manifest: Path) -> dict[str, Any]:
    """The stored settings of the manifest's last run; empty without a ledger or a run."""
    if not ledger_path.exists():
        return {}
    with open_ledger(ledger_path, readonly=True) as book:
        return book.last_settings(str(manifest.resolve()))


def status_of(ledger_path: Path, target: str = DEFAULT_TARGET) -> dict[str, Any]:
    """``importer status``: what the ledger says, as plain data."""
    with open_ledger(require_ledger(ledger_path), readonly=True) as book:
        book.claim_target(target)
        return ledger_status(book)


def write_ledger_reports(
    ledger_path: Path, out: Path, target: str = DEFAULT_TARGET
) -> dict[str, int]:
    """``importer report``: success.csv and errors.csv (and skipped.csv) into ``out``."""
    with open_ledger(require_ledger(ledger_path), readonly=True) as book:
        book.claim_target(target)
        try:
            return write_reports(book, out)
        except OSError as error:
            raise UsageError(f"cannot write the reports into {out} ({error.strerror})") from None


@dataclass(frozen=True)
class InitAnswers:
    """``importer init``'s questions, answered by options (scripts) or by a person."""

    timezone: str | None = None
    """``--timezone``: the zone of times without an offset."""
    date_order: str | None = None
    """``--dayfirst`` / ``--monthfirst``."""
    source_system: str | None = None
    """``--source-system``: written as ``[defaults] source_system`` when no column holds it."""
    ask: Callable[[str], str] | None = None
    """Asks a question at a terminal; None (no terminal): never waits for an answer."""


def init_mapping(
    manifest: Path,
    out: Path,
    delimiter: str | None,
    encoding: str | None,
    sheet: str | None,
    *,
    force: bool,
    answers: InitAnswers | None = None,
    target: str = DEFAULT_TARGET,
) -> tuple[list[str], int]:
    """``importer init``: write a mapping guessed from the manifest; what was found, said,
    and the exit code (2 when no column can be the id).

    ``target`` picks the field table: DevRev's also proposes the CRM's account column."""
    answers = answers or InitAnswers()
    if out.exists() and not force:
        raise UsageError(f"{out} exists; pass --force to overwrite it")
    ReadingChoices(timezone=answers.timezone).check()
    source = SourceOptions(
        delimiter=delimiter_option(delimiter), encoding=encoding_option(encoding), sheet=sheet
    )
    kind = target_kind(target)
    guess = dataclasses.replace(
        propose_mapping(manifest, source, kind.fields, kind.required),
        date_order=answers.date_order,
    )
    if answers.source_system and "source_system" not in guess.columns:
        guess = dataclasses.replace(
            guess,
            defaults={**guess.defaults, "source_system": answers.source_system},
            unmapped_fields=[f for f in guess.unmapped_fields if f != "source_system"],
        )
    zone = answers.timezone
    if zone is None and guess.naive and answers.ask is not None:
        zone = answers.ask(zone_question(guess))
        ReadingChoices(timezone=zone).check()
    guess = dataclasses.replace(guess, timezone=zone)
    try:
        out.write_text(render_mapping(guess, str(manifest)), encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot write {out} ({error.strerror})") from None
    return summary_lines(guess, str(out)), 0 if "id" in guess.columns else EXIT_USAGE
