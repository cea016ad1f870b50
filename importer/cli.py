"""The ``importer`` command: parses options, calls one stage function, maps errors to exits.

Exit codes: 0 every row is in AskElephant (or skipped); 1 finished, but some rows are
invalid, failed or changed; 2 bad usage, manifest, mapping or ledger; 3 aborted
(credential, scope, wrong URL, server unavailable); 70 internal error; 130 interrupted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from importer import __version__, defaults
from importer.config import load_api_key
from importer.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    ChoiceError,
    ImporterError,
)
from importer.events import JsonReporter
from importer.ledger import require_ledger
from importer.options import (
    LOG_FORMAT_KEY,
    api_options,
    check_media_option,
    contacts_reading_options,
    ledger_option,
    manifest_argument,
    on_change_option,
    output_options,
    plan_output_options,
    reading_options,
    recording_options,
    sandbox_options,
    source_options,
    target_option,
    verify_api_options,
)
from importer.pipeline import RunSummary, plan_exit_code
from importer.plan import PlanOptions
from importer.recordings import RecordingOptions
from importer.report import run_summary_text, stop_notice
from importer.runner import (
    ApiChoices,
    OutputChoices,
    import_manifest,
    init_mapping,
    last_settings,
    plan_report,
    reconcile_ledger,
    retry_work,
    status_of,
    verify_ledger,
    write_ledger_reports,
)
from importer.sandbox.server import serve
from importer.sandbox.settings import Faults, SandboxSettings, parse_key, parse_outage
from importer.settings import FILE_CHOICES, ImportSettings, ReadingChoices
from importer.status import status_text
from importer.targets.registry import TargetKind
from importer.terminal import echo


class CommandFailed(click.ClickException):
    """An ImporterError on its way out, with the importer's own exit code."""

    def __init__(self, message: str, exit_code: int, command: str | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]
        self.command = command
        self.as_json = False

    def show(self, file: Any = None) -> None:
        if self.as_json:
            JsonReporter().failed(self.command, self.format_message(), self.exit_code)
            return
        echo(f"error: {self.format_message()}", err=True)


class ImporterGroup(click.Group):
    """Turns our exceptions into a message and an exit code: never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CommandFailed as failure:
            raise self._told(ctx, failure) from None
        except ImporterError as error:
            raise self._told(ctx, CommandFailed(str(error), error.exit_code)) from None
        except KeyboardInterrupt:
            if ctx.meta.get(LOG_FORMAT_KEY) == "json":
                raise self._told(ctx, CommandFailed("interrupted", EXIT_INTERRUPTED)) from None
            echo("Interrupted.", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            # A reader that stopped reading (`| head`) is no error: end quietly, like cat.
            _quiet_stdout()
            ctx.exit(EXIT_BROKEN_PIPE)
        except click.ClickException as error:
            if ctx.meta.get(LOG_FORMAT_KEY) == "json":
                raise self._told(
                    ctx, CommandFailed(error.format_message(), error.exit_code)
                ) from None
            raise
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as error:
            if os.environ.get("IMPORTER_DEBUG"):
                raise
            raise self._told(
                ctx,
                CommandFailed(
                    f"internal error ({type(error).__name__}: {error}). This is a bug: please "
                    "report it; IMPORTER_DEBUG=1 shows the traceback",
                    EXIT_INTERNAL,
                ),
            ) from None

    @staticmethod
    def _told(ctx: click.Context, failure: CommandFailed) -> CommandFailed:
        """The failure, told as JSON events when the command logs JSON."""
        failure.as_json = ctx.meta.get(LOG_FORMAT_KEY) == "json"
        failure.command = failure.command or ctx.invoked_subcommand
        return failure


def _warn(message: str) -> None:
    """A line on stderr; a JSON notice when the command logs JSON."""
    if click.get_current_context().meta.get(LOG_FORMAT_KEY) == "json":
        JsonReporter().notice(message)
    else:
        echo(message, err=True)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so Python's own flush at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


@click.group(
    cls=ImporterGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="importer")
def cli() -> None:
    """Import call and meeting recordings from a CRM export into AskElephant (or DevRev
    engagements with --target devrev), exactly once.

    \b
    Exit codes:
      0   every row is in AskElephant (or skipped: nothing to import)
      1   the run finished, but some rows are invalid, failed or changed
      2   bad usage, manifest, mapping or ledger
      3   aborted: bad key, missing scope, wrong URL, server unavailable
      70  internal error (a bug: please report it)
      130 interrupted (Ctrl-C, SIGTERM); run again to resume
      141 stdout closed early (piped into head): nothing else went wrong
    """


# -- from options to a stage call -----------------------------------------------------


@contextlib.contextmanager
def _option_errors() -> Iterator[None]:
    """A choice that cannot work is told as click tells a bad option."""
    try:
        yield
    except ChoiceError as error:
        if error.option:
            raise click.BadParameter(str(error), param_hint=error.option) from None
        raise click.UsageError(str(error)) from None


def _settings(manifest: Path, reading: ReadingChoices, **choices: Any) -> ImportSettings:
    with _option_errors():
        return ImportSettings.build(manifest, reading, **choices)


def _api_key(api_key_file: Path | None, kind: TargetKind) -> str:
    key, warnings = load_api_key(api_key_file, env_name=kind.api_key_env)
    for warning in warnings:
        _warn(warning)
    return key


def _show_plan(settings: ImportSettings, ledger: Path, out: Path | None, as_json: bool) -> int:
    printer = plan_report(settings, ledger, out)
    manifest = str(settings.manifest)
    echo(printer.as_json(manifest) if as_json else printer.text(manifest))
    if out:
        echo(f"Wrote {out}", err=True)
    return plan_exit_code(printer.counts)


def _send(
    ctx: click.Context,
    command: str,
    settings: ImportSettings,
    ledger: Path,
    api: ApiChoices,
    output: OutputChoices,
    **recorded: Any,
) -> int:
    """One recorded run; ``recorded`` amends the options kept in the runs table."""
    options = {k: v for k, v in ctx.params.items() if k != "manifest"} | recorded
    target = settings.reading.target
    summary = import_manifest(
        settings,
        ledger_path=ledger,
        target_factory=api.target_factory(target, lambda kind: _api_key(api.api_key_file, kind)),
        reporter=output.reporter(),
        command=command,
        options=options,
        target=target,
    )
    if output.log_format != "json":
        _print_summary(summary, settings.manifest, output.quiet)
    return int(summary.exit_code)


def _print_summary(summary: RunSummary, manifest: Path, quiet: bool) -> None:
    if not quiet:
        echo(run_summary_text(summary, manifest))
        if summary.pacing:
            echo(f"Pacing: {summary.pacing}.")
    notice = stop_notice(summary)
    if notice and not (quiet and summary.stop_reason == "interrupted"):
        echo(notice, err=True)


# -- commands -----------------------------------------------------------------------------


@cli.command()
@manifest_argument
@reading_options
@ledger_option
@api_options
@on_change_option
@recording_options
@check_media_option
@click.option("--dry-run", is_flag=True, help="Print the plan (as `importer plan`); send nothing.")
@plan_output_options
@output_options
@click.pass_context
def run(
    ctx: click.Context,
    manifest: Path,
    reading: ReadingChoices,
    ledger: Path,
    api: ApiChoices,
    on_change: str,
    recordings: RecordingOptions,
    check_media: bool,
    dry_run: bool,
    out: Path | None,
    as_json: bool,
    output: OutputChoices,
) -> None:
    """Import MANIFEST (CSV or Parquet): one create per valid row, recorded in the ledger.

    Running it again resumes: rows already created are skipped, interrupted ones re-sent.
    """
    settings = _settings(
        manifest,
        reading,
        send=api.send_settings(),
        on_change=on_change,
        check_media=check_media,
        recordings=recordings,
    )
    if dry_run:
        ctx.exit(_show_plan(settings, ledger, out, as_json))
    if out or as_json:
        raise click.UsageError("--out and --json print the plan: use them with --dry-run")
    ctx.exit(_send(ctx, "run", settings, ledger, api, output))


@cli.command()
@manifest_argument
@reading_options
@ledger_option
@recording_options
@check_media_option
@plan_output_options
@click.pass_context
def plan(
    ctx: click.Context,
    manifest: Path,
    reading: ReadingChoices,
    ledger: Path,
    recordings: RecordingOptions,
    check_media: bool,
    out: Path | None,
    as_json: bool,
) -> None:
    """Show what `importer run MANIFEST` would do, sending nothing (a dry-run audit).

    Every row is validated and compared with the ledger: new, already imported, changed
    since import, invalid (with reasons), duplicate, retry. Exit 1 if any row is invalid.
    """
    settings = _settings(manifest, reading, check_media=check_media, recordings=recordings)
    ctx.exit(_show_plan(settings, ledger, out, as_json))


@cli.command()
@ledger_option
@target_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(ledger: Path, target: str, as_json: bool) -> None:
    """Show the ledger: rows by status, frequent errors, last runs, changed rows."""
    data = status_of(ledger, target)
    echo(json.dumps(data, indent=2) if as_json else status_text(data))


@cli.command()
@ledger_option
@target_option
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder for success.csv and errors.csv (created if needed).",
)
def report(ledger: Path, target: str, out: Path) -> None:
    """Write success.csv and errors.csv from the ledger.

    errors.csv keeps the original manifest columns plus error_status and error_message:
    fix the cells and run it as a manifest.
    """
    for name, count in write_ledger_reports(ledger, out, target).items():
        echo(f"Wrote {out / name} ({count:,} rows)")


@cli.command()
@ledger_option
@target_option
@api_options
@click.option(
    "--include-permanent",
    is_flag=True,
    help="Also re-send rows the server rejected for good (after fixing a scope or media host).",
)
@output_options
@click.pass_context
def retry(
    ctx: click.Context,
    ledger: Path,
    target: str,
    api: ApiChoices,
    include_permanent: bool,
    output: OutputChoices,
) -> None:
    """Finish what runs left unfinished: rows that failed transiently, were in flight or pending.

    Each manifest is read again with the options of its last run. Exit 0 only when every
    row is in AskElephant.
    """
    work = retry_work(ledger, include_permanent, target)
    if not work.manifests:
        # Exit 0 says every row is in AskElephant: only when it is true.
        if work.missing:
            echo(
                f"Nothing to retry, but {work.missing:,} row(s) are not in AskElephant: "
                "`importer status` says why (--include-permanent re-sends rejected rows)."
            )
            ctx.exit(1)
        echo("No failed rows to retry.")
        ctx.exit(0)
    worst = 0
    for manifest, record in work.manifests:
        with _option_errors():
            settings = ImportSettings.from_record(
                Path(manifest),
                record,
                send=api.send_settings(),
                plan=PlanOptions(include_permanent=include_permanent, only_failed=True),
            )
        code = _send(ctx, "retry", settings, ledger, api, output)
        worst = max(worst, code)
        if code >= 2:
            break
    ctx.exit(worst)


@cli.command(name="sync-contacts")
@manifest_argument
@contacts_reading_options
@ledger_option
@api_options
@output_options
@click.pass_context
def sync_contacts(
    ctx: click.Context,
    manifest: Path,
    reading: ReadingChoices,
    ledger: Path,
    api: ApiChoices,
    output: OutputChoices,
) -> None:
    """Apply the manifest's contact_ids to engagements already imported; create nothing.

    A blank cell leaves contacts alone, [] clears them; a set is re-applied only when it
    differs from the one last applied.
    """
    # The rows must hash as they were imported, so they are read as the last run read them.
    last = ReadingChoices.from_record(last_settings(ledger, manifest))
    # How the file was read, unless said again: dates must read as they were imported.
    kept = {
        name: getattr(last, name)
        for name in FILE_CHOICES
        if not getattr(reading, name) and getattr(last, name)
    }
    reading = dataclasses.replace(
        reading, timezone=last.timezone, run_workflows=last.run_workflows, **kept
    )
    settings = _settings(manifest, reading, send=api.send_settings(), contacts_only=True)
    code = _send(
        ctx,
        "sync-contacts",
        settings,
        ledger,
        api,
        output,
        timezone=last.timezone,
        run_workflows=last.run_workflows,
        **kept,
    )
    ctx.exit(code)


@cli.command()
@ledger_option
@target_option
@verify_api_options
@click.option("--wait", is_flag=True, help="Poll until every processing_status is terminal.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=defaults.VERIFY_TIMEOUT,
    show_default=True,
    help="With --wait: give up after this many seconds.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@output_options
@click.pass_context
def verify(
    ctx: click.Context,
    ledger: Path,
    target: str,
    api: ApiChoices,
    wait: bool,
    timeout: float,
    as_json: bool,
    output: OutputChoices,
) -> None:
    """Read every imported engagement back and record its processing_status.

    Exit 1 if any engagement failed processing (or, with --wait, is still processing at
    the timeout).
    """
    require_ledger(ledger)
    result = verify_ledger(
        ledger,
        api.target_factory(target, lambda kind: _api_key(api.api_key_file, kind)),
        api.verify_settings(wait=wait, timeout=timeout),
        output.reporter(),
        target,
    )
    if as_json:
        echo(json.dumps(result.as_dict(), indent=2))
    elif not output.quiet:
        for line in result.lines():
            echo(line)
        if result.timed_out:
            _warn(f"Still processing after {timeout:.0f} s.")
    ctx.exit(result.exit_code)


@cli.command()
@ledger_option
@target_option
@verify_api_options
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.pass_context
def reconcile(
    ctx: click.Context, ledger: Path, target: str, api: ApiChoices, as_json: bool
) -> None:
    """Compare the ledger with the target: rows missing remotely, remote rows the ledger does
    not know, remote duplicates, mismatched ids. Changes neither side.

    Exit 1 when anything disagrees.
    """
    require_ledger(ledger)
    result = reconcile_ledger(
        ledger,
        api.target_factory(target, lambda kind: _api_key(api.api_key_file, kind)),
        concurrency=api.concurrency,
        retry=api.retry_settings(),
        target=target,
    )
    echo(json.dumps(result.as_dict(), indent=2) if as_json else "\n".join(result.lines()))
    ctx.exit(0 if result.agrees else 1)


@cli.command()
@manifest_argument
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default="mapping.toml",
    show_default=True,
    help="Where to write the mapping file.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@source_options
def init(
    manifest: Path,
    out: Path,
    force: bool,
    delimiter: str | None,
    encoding: str | None,
    sheet: str | None,
) -> None:
    """Write a commented mapping file for MANIFEST from its headers and first rows.

    Knows the headers of Salesforce, HubSpot, Gong, Zoom, Chorus, Outreach, Salesloft,
    Dialpad and dialer exports, maps a column only when its values fit the field,
    proposes value maps, and prints what it mapped, guessed and could not find.
    """
    for line in init_mapping(manifest, out, delimiter, encoding, sheet, force=force):
        echo(line)


@cli.command()
@sandbox_options
def sandbox(
    host: str,
    port: int,
    db_path: str | None,
    keys: tuple[str, ...],
    media_check: str,
    seed: int | None,
    processing_seconds: float,
    latency_ms: int,
    rate_limit: float | None,
    fail_rate: float,
    drop_after_commit_rate: float,
    outage: str | None,
) -> None:
    """Run a local server that speaks the AskElephant engagements API, for rehearsals and tests."""
    with _option_errors():
        outage_start, outage_seconds = parse_outage(outage)
    settings = SandboxSettings(
        host=host,
        port=port,
        db_path=db_path,
        keys=[parse_key(value) for value in keys],
        media_check=media_check,
        seed=seed,
        processing_seconds=processing_seconds,
        faults=Faults(
            latency_ms=latency_ms,
            rate_limit=rate_limit,
            fail_rate=fail_rate,
            drop_after_commit_rate=drop_after_commit_rate,
            outage_start=outage_start,
            outage_seconds=outage_seconds,
        ),
    )
    serve(settings)


def main() -> None:
    """Console entry point: the only place the importer exits."""
    sys.exit(cli.main(standalone_mode=True) or 0)
