"""The ``importer`` command: parses options, calls one stage function, maps errors to exits.

Exit codes: 0 every row is in AskElephant (or skipped); 1 finished, but some rows are
invalid, failed or changed; 2 bad usage, manifest, mapping or ledger; 3 aborted
(credential, scope, wrong URL, server unavailable); 70 internal error; 130 interrupted.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from importer import __version__, defaults
from importer.config import DEFAULT_LEDGER
from importer.errors import EXIT_BROKEN_PIPE, EXIT_INTERNAL, EXIT_INTERRUPTED, ImporterError
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
            from importer.events import JsonReporter

            JsonReporter().failed(self.command, self.format_message(), self.exit_code)
            return
        echo(f"error: {self.format_message()}", err=True)


def _remember_log_format(ctx: click.Context, _: click.Parameter, value: str) -> str:
    """Parsed first, so that even a usage error is told in the chosen format."""
    ctx.meta["importer.log_format"] = value
    return value


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
            if ctx.meta.get("importer.log_format") == "json":
                raise self._told(ctx, CommandFailed("interrupted", EXIT_INTERRUPTED)) from None
            echo("Interrupted.", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            # A reader that stopped reading (`| head`) is no error: end quietly, like cat.
            _quiet_stdout()
            ctx.exit(EXIT_BROKEN_PIPE)
        except click.ClickException as error:
            if ctx.meta.get("importer.log_format") == "json":
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
        failure.as_json = ctx.meta.get("importer.log_format") == "json"
        failure.command = failure.command or ctx.invoked_subcommand
        return failure


def _warn(message: str) -> None:
    """A line on stderr; a JSON notice when the command logs JSON."""
    if click.get_current_context().meta.get("importer.log_format") == "json":
        from importer.events import JsonReporter

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
    """Import call and meeting recordings from a CRM export into AskElephant, exactly once.

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


# -- options shared by several commands, defined once ------------------------------------


def _stack(*decorators: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def apply(function: Any) -> Any:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


manifest_argument = click.argument(
    "manifest", type=click.Path(path_type=Path, dir_okay=True, exists=False)
)

_naming_options = (
    click.option(
        "--mapping",
        type=click.Path(path_type=Path, dir_okay=False),
        help="TOML file renaming columns and setting defaults (see `importer init`).",
    ),
    click.option(
        "--source-system",
        help="source_system for rows without one (e.g. salesforce); also the default prefix.",
    ),
    click.option(
        "--prefix",
        help="external_id prefix [default: '<source_system>:'; pass '' for none].",
    ),
)
_timezone_option = click.option(
    "--timezone",
    default="UTC",
    show_default=True,
    help="Time zone for start_at values without an offset (IANA name, e.g. Europe/Paris).",
)
_run_workflows_option = click.option(
    "--run-workflows",
    is_flag=True,
    help="Let AskElephant run workflows and recap emails (off for historical imports).",
)
_reading_options = (
    click.option(
        "--date-format",
        help="strptime format of start_at cells, e.g. '%m/%d/%Y %I:%M %p' (also [formats] in "
        "the mapping). Without it common formats are recognised.",
    ),
    click.option(
        "--dayfirst",
        is_flag=True,
        help="Numeric dates are day first (05/03/2024 is 5 March) when the file cannot say.",
    ),
    click.option(
        "--monthfirst",
        is_flag=True,
        help="Numeric dates are month first (03/05/2024 is March 5) when the file cannot say.",
    ),
    click.option(
        "--delimiter",
        help="CSV cell delimiter: , ; | or tab [default: sniffed from the header line].",
    ),
    click.option(
        "--encoding",
        help="CSV text encoding: utf-8, utf-8-sig, utf-16, cp1252 or latin-1 [default: from "
        "the BOM, else utf-8].",
    ),
    click.option("--sheet", help=".xlsx manifests: the sheet to read [default: the first]."),
    click.option(
        "--skip-without-media",
        is_flag=True,
        help="Rows with a blank media URL (calls without a recording) are skipped, not invalid "
        "(also [rows] skip_without_media in the mapping).",
    ),
    click.option(
        "--batch-size",
        type=click.IntRange(1, 100_000),
        default=defaults.BATCH_SIZE,
        show_default=True,
        help="Rows read at a time; memory stays bounded by it.",
    ),
)

mapping_options = _stack(
    *_naming_options,
    _timezone_option,
    _run_workflows_option,
    *_reading_options,
)

READING_CHOICES = ("date_format", "dayfirst", "monthfirst", "delimiter", "encoding", "sheet")
"""Reading options a later command over the same manifest keeps from its last run."""

contacts_mapping_options = _stack(*_naming_options, *_reading_options)
"""``sync-contacts`` creates nothing: time zone and workflows come from the manifest's last run."""

ledger_option = click.option(
    "--ledger",
    type=click.Path(path_type=Path),
    default=str(DEFAULT_LEDGER),
    show_default=True,
    help="SQLite ledger recording every row's outcome (one per import target).",
)


def _max_attempts_option(help_text: str) -> Callable[[Any], Any]:
    return click.option(
        "--max-attempts",
        type=click.IntRange(1, 100),
        default=defaults.MAX_ATTEMPTS,
        show_default=True,
        help=help_text,
    )


_api_options = (
    click.option(
        "--base-url",
        help="API base URL [default: $ASKELEPHANT_BASE_URL or https://app.askelephant.ai/api]. "
        "http:// is refused except on a loopback address (the sandbox).",
    ),
    click.option(
        "--api-key-file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="File holding the API key [default: $ASKELEPHANT_API_KEY]. Never on the command line.",
    ),
    click.option(
        "--concurrency",
        type=click.IntRange(1, 256),
        default=defaults.CONCURRENCY,
        show_default=True,
        help="Requests in flight at once.",
    ),
    click.option("--rate", type=click.FloatRange(min=0.01), help="At most this many requests/s."),
    _max_attempts_option("Requests per row before it is left failed (transient) for a later run."),
    click.option(
        "--read-timeout",
        type=click.FloatRange(min=1),
        default=defaults.READ_TIMEOUT,
        show_default=True,
        help="Seconds to wait for an answer; create fetches the media synchronously.",
    ),
)

api_options = _stack(*_api_options)

verify_api_options = _stack(
    *_api_options[:4],
    _max_attempts_option(
        "Requests per engagement read before it is left for the next round or run."
    ),
    *_api_options[5:],
)
"""As ``api_options``; ``verify`` reads engagements, it leaves no row failed."""

output_options = _stack(
    click.option("--no-progress", is_flag=True, help="No progress bar (also off when not a TTY)."),
    click.option(
        "--quiet", "-q", is_flag=True, help="Print only errors; the exit code tells the rest."
    ),
    click.option(
        "--log-format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        is_eager=True,
        callback=_remember_log_format,
        help="json: one event per line on stderr (run, rows, retries, summary).",
    ),
)

plan_output_options = _stack(
    click.option(
        "--out",
        type=click.Path(path_type=Path, dir_okay=False),
        help="Write every row's action and reason to this CSV file.",
    ),
    click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON."),
)

check_media_option = click.option(
    "--check-media",
    is_flag=True,
    help="Before any create, check each distinct media URL: public host, 2xx, audio/video "
    "content type (cached in the ledger for 24 h).",
)

recording_options = _stack(
    click.option(
        "--allow-new-prefix",
        is_flag=True,
        help="Send rows imported before under another external_id prefix (a changed "
        "source_system or --prefix) as new engagements; without it such a run is refused.",
    ),
    click.option(
        "--on-same-recording",
        type=click.Choice(["warn", "skip"]),
        default="warn",
        show_default=True,
        help="A row whose media URL is already imported (or on an earlier row) under another "
        "external_id: warn (list, count and send it) or skip (record it skipped, send nothing).",
    ),
)

on_change_option = click.option(
    "--on-change",
    type=click.Choice(["report", "skip"]),
    default="report",
    show_default=True,
    help="A row changed since import cannot be updated by create: report it (exit 1) or skip.",
)


def _reporter(quiet: bool, no_progress: bool, log_format: str) -> Any:
    from importer.events import HumanReporter, JsonReporter

    if log_format == "json":
        return JsonReporter()
    return HumanReporter(progress=not no_progress, quiet=quiet)


def _import_settings(
    manifest: Path,
    *,
    mapping: Path | None,
    source_system: str | None,
    prefix: str | None,
    timezone: str,
    run_workflows: bool,
    batch_size: int,
    skip_without_media: bool = False,
    date_format: str | None = None,
    dayfirst: bool = False,
    monthfirst: bool = False,
    delimiter: str | None = None,
    encoding: str | None = None,
    sheet: str | None = None,
    on_change: str = "report",
    include_permanent: bool = False,
    only_failed: bool = False,
    contacts_only: bool = False,
    check_media: bool = False,
    concurrency: int = defaults.CONCURRENCY,
    rate: float | None = None,
    max_attempts: int = defaults.MAX_ATTEMPTS,
    allow_new_prefix: bool = False,
    on_same_recording: str = "warn",
) -> Any:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from importer.csv_dialect import delimiter_option, encoding_option
    from importer.manifest import SourceOptions
    from importer.mapping import load_mapping
    from importer.plan import PlanOptions
    from importer.recordings import RecordingOptions
    from importer.retry import RetrySettings
    from importer.send import SendSettings
    from importer.settings import ImportSettings
    from importer.validate import MappingOptions

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(
            f"unknown time zone {timezone!r}; use an IANA name such as UTC or America/New_York",
            param_hint="--timezone",
        ) from None
    columns = load_mapping(mapping)
    if source_system and "source_system" in columns.defaults:
        # The option is the more explicit choice: it wins over the mapping's default.
        columns = dataclasses.replace(
            columns, defaults={**columns.defaults, "source_system": source_system}
        )
    return ImportSettings(
        manifest=manifest,
        source=SourceOptions(
            delimiter=delimiter_option(delimiter), encoding=encoding_option(encoding), sheet=sheet
        ),
        mapping=MappingOptions(
            source_system=source_system,
            prefix=prefix,
            timezone=timezone,
            run_workflows=run_workflows,
            columns=columns,
            skip_without_media=skip_without_media or columns.skip_without_media,
            dates=_date_style(columns, date_format, dayfirst, monthfirst),
        ),
        plan=PlanOptions(include_permanent=include_permanent, only_failed=only_failed),
        send=SendSettings(
            concurrency=concurrency, rate=rate, retry=RetrySettings(max_attempts=max_attempts)
        ),
        on_change=on_change,
        batch_size=batch_size,
        contacts_only=contacts_only,
        check_media=check_media,
        recordings=RecordingOptions(
            allow_new_prefix=allow_new_prefix, on_same_recording=on_same_recording
        ),
    )


def _date_style(columns: Any, date_format: str | None, dayfirst: bool, monthfirst: bool) -> Any:
    """The options win over the mapping's [formats] start_at."""
    from importer.dates import DAYFIRST, MONTHFIRST, ORDERS, DateStyle

    if dayfirst and monthfirst:
        raise click.UsageError("--dayfirst and --monthfirst contradict each other: pick one")
    if date_format is not None and "%" not in date_format:
        raise click.BadParameter(
            f"{date_format!r} has no strptime codes; e.g. '%m/%d/%Y %I:%M %p'",
            param_hint="--date-format",
        )
    given = columns.formats.get("start_at")
    order = DAYFIRST if dayfirst else MONTHFIRST if monthfirst else None
    if date_format or order:
        return DateStyle(format=date_format, order=order)
    if given in ORDERS:
        return DateStyle(order=given)
    return DateStyle(format=given)


def _print_plan(settings: Any, ledger_path: Path, out: Path | None, as_json: bool) -> int:
    from importer.ledger import open_ledger
    from importer.outcomes import Action
    from importer.pipeline import plan_manifest
    from importer.report import PlanPrinter

    with open_ledger(ledger_path, readonly=True) as ledger:
        handle = _open_for_writing(out) if out else None
        try:
            printer = PlanPrinter(
                csv_handle=handle, start_at_column=settings.mapping.columns.column_of("start_at")
            )
            plan_manifest(settings, ledger, printer, on_notice=printer.notices.append)
        finally:
            if handle:
                handle.close()
    echo(
        printer.as_json(str(settings.manifest)) if as_json else printer.text(str(settings.manifest))
    )
    if out:
        echo(f"Wrote {out}", err=True)
    refused = (Action.INVALID, Action.DUPLICATE, Action.PREFIX_CHANGED)
    return 1 if any(printer.counts[action] for action in refused) else 0


def _open_for_writing(path: Path) -> Any:
    from importer.errors import UsageError

    try:
        return path.open("w", encoding="utf-8", newline="")
    except OSError as error:
        raise UsageError(f"cannot write {path} ({error.strerror})") from None


def _print_summary(summary: Any, manifest: Path, quiet: bool) -> None:
    from importer.outcomes import SENT_OUTCOMES
    from importer.report import format_counts

    if quiet:
        if summary.stop_reason and summary.stop_reason != "interrupted":
            echo(f"Stopped: {summary.stop_reason}", err=True)
        return
    rate = sum(summary.counts[k] for k in SENT_OUTCOMES) / max(summary.seconds, 1e-9)
    echo(
        format_counts(
            summary.counts,
            f"Summary for {manifest} ({summary.seconds:.1f} s, {summary.requests:,} "
            f"request{'' if summary.requests == 1 else 's'}, "
            f"{rate:.1f} rows/s):",
        )
    )
    if summary.pacing:
        click.echo(f"Pacing: {summary.pacing}.")
    if summary.stop_reason and summary.stop_reason != "interrupted":
        echo(f"Stopped: {summary.stop_reason}", err=True)
    elif summary.stop_reason == "interrupted":
        echo("Interrupted: run the same command again to resume.", err=True)


def _send(
    command: str,
    settings: Any,
    *,
    ledger: Path,
    base_url: str | None,
    api_key_file: Path | None,
    read_timeout: float,
    quiet: bool,
    no_progress: bool,
    log_format: str,
    options: dict[str, Any],
) -> int:
    from importer.config import resolve_base_url
    from importer.runner import askelephant_factory, import_manifest

    factory = askelephant_factory(
        resolve_base_url(base_url),
        _api_key(api_key_file),
        concurrency=settings.send.concurrency,
        read_timeout=read_timeout,
    )
    reporter = _reporter(quiet, no_progress, log_format)
    summary = import_manifest(
        settings,
        ledger_path=ledger,
        target_factory=factory,
        reporter=reporter,
        command=command,
        options=options,
    )
    if log_format != "json":
        _print_summary(summary, settings.manifest, quiet)
    return int(summary.exit_code)


def _api_key(api_key_file: Path | None) -> str:
    from importer.config import load_api_key

    key, warnings = load_api_key(api_key_file)
    for warning in warnings:
        _warn(warning)
    return key


# -- commands -----------------------------------------------------------------------------


@cli.command()
@manifest_argument
@mapping_options
@ledger_option
@api_options
@on_change_option
@recording_options
@check_media_option
@click.option("--dry-run", is_flag=True, help="Print the plan (as `importer plan`); send nothing.")
@plan_output_options
@output_options
@click.pass_context
def run(ctx: click.Context, manifest: Path, **options: Any) -> None:
    """Import MANIFEST (CSV or Parquet): one create per valid row, recorded in the ledger.

    Running it again resumes: rows already created are skipped, interrupted ones re-sent.
    """
    settings = _import_settings(
        manifest,
        **_mapping_values(options),
        **_pick(options, "on_change", "check_media", "concurrency", "rate", "max_attempts"),
        **_pick(options, "allow_new_prefix", "on_same_recording"),
    )
    if options["dry_run"]:
        ctx.exit(_print_plan(settings, options["ledger"], options["out"], options["as_json"]))
    if options["out"] or options["as_json"]:
        raise click.UsageError("--out and --json print the plan: use them with --dry-run")
    ctx.exit(_send("run", settings, options=options, **_send_options(options)))


@cli.command()
@manifest_argument
@mapping_options
@ledger_option
@recording_options
@check_media_option
@plan_output_options
@click.pass_context
def plan(ctx: click.Context, manifest: Path, **options: Any) -> None:
    """Show what `importer run MANIFEST` would do, sending nothing (a dry-run audit).

    Every row is validated and compared with the ledger: new, already imported, changed
    since import, invalid (with reasons), duplicate, retry. Exit 1 if any row is invalid.
    """
    settings = _import_settings(
        manifest,
        **_mapping_values(options),
        **_pick(options, "check_media", "allow_new_prefix", "on_same_recording"),
    )
    ctx.exit(_print_plan(settings, options["ledger"], options["out"], options["as_json"]))


def _pick(options: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: options[name] for name in names}


@cli.command()
@ledger_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(ledger: Path, as_json: bool) -> None:
    """Show the ledger: rows by status, frequent errors, last runs, changed rows."""
    import json

    from importer.ledger import open_ledger, require_ledger
    from importer.status import ledger_status, status_text

    with open_ledger(require_ledger(ledger), readonly=True) as book:
        data = ledger_status(book)
    echo(json.dumps(data, indent=2) if as_json else status_text(data))


@cli.command()
@ledger_option
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder for success.csv and errors.csv (created if needed).",
)
def report(ledger: Path, out: Path) -> None:
    """Write success.csv and errors.csv from the ledger.

    errors.csv keeps the original manifest columns plus error_status and error_message:
    fix the cells and run it as a manifest.
    """
    from importer.errors import UsageError
    from importer.ledger import open_ledger, require_ledger
    from importer.report import write_reports

    with open_ledger(require_ledger(ledger), readonly=True) as book:
        try:
            written = write_reports(book, out)
        except OSError as error:
            raise UsageError(f"cannot write the reports into {out} ({error.strerror})") from None
    for name, count in written.items():
        echo(f"Wrote {out / name} ({count:,} rows)")


@cli.command()
@ledger_option
@api_options
@click.option(
    "--include-permanent",
    is_flag=True,
    help="Also re-send rows the server rejected for good (after fixing a scope or media host).",
)
@output_options
@click.pass_context
def retry(ctx: click.Context, **options: Any) -> None:
    """Finish what runs left unfinished: rows that failed transiently, were in flight or pending.

    Each manifest is read again with the options of its last run. Exit 0 only when every
    row is in AskElephant.
    """
    from importer.ledger import open_ledger, require_ledger

    with open_ledger(require_ledger(options["ledger"]), readonly=True) as book:
        manifests = book.failed_manifests(options["include_permanent"])
        recorded = {m: book.last_options(m) for m in manifests}
        missing = book.rows_not_in()
    if not manifests:
        # Exit 0 says every row is in AskElephant: only when it is true.
        if missing:
            echo(
                f"Nothing to retry, but {missing:,} row(s) are not in AskElephant: "
                "`importer status` says why (--include-permanent re-sends rejected rows)."
            )
            ctx.exit(1)
        echo("No failed rows to retry.")
        ctx.exit(0)
    worst = 0
    for manifest in manifests:
        last = recorded[manifest]
        settings = _import_settings(
            Path(manifest),
            mapping=Path(last["mapping"]) if last.get("mapping") else None,
            source_system=last.get("source_system"),
            prefix=last.get("prefix"),
            timezone=last.get("timezone", "UTC"),
            run_workflows=bool(last.get("run_workflows")),
            batch_size=int(last.get("batch_size", defaults.BATCH_SIZE)),
            skip_without_media=bool(last.get("skip_without_media")),
            date_format=last.get("date_format"),
            delimiter=last.get("delimiter"),
            encoding=last.get("encoding"),
            sheet=last.get("sheet"),
            dayfirst=bool(last.get("dayfirst")),
            monthfirst=bool(last.get("monthfirst")),
            allow_new_prefix=bool(last.get("allow_new_prefix")),
            on_same_recording=last.get("on_same_recording") or "warn",
            include_permanent=options["include_permanent"],
            only_failed=True,
            **_pick(options, "concurrency", "rate", "max_attempts"),
        )
        code = _send("retry", settings, options=options, **_send_options(options))
        worst = max(worst, code)
        if code >= 2:
            break
    ctx.exit(worst)


@cli.command(name="sync-contacts")
@manifest_argument
@contacts_mapping_options
@ledger_option
@api_options
@output_options
@click.pass_context
def sync_contacts(ctx: click.Context, manifest: Path, **options: Any) -> None:
    """Apply the manifest's contact_ids to engagements already imported; create nothing.

    A blank cell leaves contacts alone, [] clears them; a set is re-applied only when it
    differs from the one last applied.
    """
    from importer.ledger import open_ledger

    recorded: dict[str, Any] = {}
    if options["ledger"].exists():
        with open_ledger(options["ledger"], readonly=True) as book:
            recorded = book.last_options(str(manifest.resolve()))
    # The rows must hash as they were imported, so they are read as the last run read them.
    options = {
        **options,
        "timezone": recorded.get("timezone", "UTC"),
        "run_workflows": bool(recorded.get("run_workflows")),
        # How the file was read, unless said again: dates must read as they were imported.
        **{
            name: recorded[name]
            for name in READING_CHOICES
            if not options.get(name) and recorded.get(name)
        },
    }
    settings = _import_settings(
        manifest,
        **_mapping_values(options),
        **_pick(options, "concurrency", "rate", "max_attempts"),
        contacts_only=True,
    )
    ctx.exit(_send("sync-contacts", settings, options=options, **_send_options(options)))


@cli.command()
@ledger_option
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
def verify(ctx: click.Context, **options: Any) -> None:
    """Read every imported engagement back and record its processing_status.

    Exit 1 if any engagement failed processing (or, with --wait, is still processing at
    the timeout).
    """
    import json

    from importer.config import resolve_base_url
    from importer.ledger import require_ledger
    from importer.retry import RetrySettings
    from importer.runner import askelephant_factory, verify_ledger
    from importer.verify import VerifySettings

    require_ledger(options["ledger"])
    factory = askelephant_factory(
        resolve_base_url(options["base_url"]),
        _api_key(options["api_key_file"]),
        concurrency=options["concurrency"],
        read_timeout=options["read_timeout"],
    )
    result = verify_ledger(
        options["ledger"],
        factory,
        VerifySettings(
            wait=options["wait"],
            timeout=options["timeout"],
            concurrency=options["concurrency"],
            retry=RetrySettings(max_attempts=options["max_attempts"]),
        ),
        _reporter(options["quiet"], options["no_progress"], options["log_format"]),
    )
    summary = {
        "processing_status": dict(result.counts),
        "failed": [{"external_id": e, "processing_status": s} for e, s in result.failed],
        "rounds": result.rounds,
        "timed_out": result.timed_out,
    }
    if options["as_json"]:
        echo(json.dumps(summary, indent=2))
    elif not options["quiet"]:
        from importer.report import format_counts

        echo(format_counts(result.counts, "Processing status:"))
        for external_id, status_value in result.failed[:10]:
            echo(f"  failed: {external_id} ({status_value})")
        if result.timed_out:
            _warn(f"Still processing after {options['timeout']:.0f} s.")
    ctx.exit(1 if result.failed or result.timed_out else 0)


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
@click.option("--delimiter", help="CSV cell delimiter: , ; | or tab [default: sniffed].")
@click.option("--encoding", help="CSV text encoding [default: from the BOM, else utf-8].")
@click.option("--sheet", help=".xlsx manifests: the sheet to read [default: the first].")
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
    from importer.csv_dialect import delimiter_option, encoding_option
    from importer.errors import UsageError
    from importer.manifest import SourceOptions
    from importer.mapping_init import propose_mapping, render_mapping, summary_lines

    if out.exists() and not force:
        raise UsageError(f"{out} exists; pass --force to overwrite it")
    source = SourceOptions(
        delimiter=delimiter_option(delimiter), encoding=encoding_option(encoding), sheet=sheet
    )
    guess = propose_mapping(manifest, source)
    try:
        out.write_text(render_mapping(guess, str(manifest)), encoding="utf-8")
    except OSError as error:
        raise UsageError(f"cannot write {out} ({error.strerror})") from None
    for line in summary_lines(guess, str(out)):
        echo(line)


def _mapping_values(options: dict[str, Any]) -> dict[str, Any]:
    return _pick(
        options,
        "mapping",
        "source_system",
        "prefix",
        "timezone",
        "run_workflows",
        "batch_size",
        "skip_without_media",
        "date_format",
        "dayfirst",
        "monthfirst",
        "delimiter",
        "encoding",
        "sheet",
    )


def _send_options(options: dict[str, Any]) -> dict[str, Any]:
    return _pick(
        options,
        "ledger",
        "base_url",
        "api_key_file",
        "read_timeout",
        "quiet",
        "no_progress",
        "log_format",
    )


def _parse_key(value: str) -> tuple[str, list[str] | None]:
    key, _, scopes = value.partition(":")
    return key, [s for s in scopes.split(",") if s] if scopes else None


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port", default=8765, show_default=True, type=int, help="Port (0 picks a free one)."
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False),
    help="SQLite file that keeps engagements across restarts (default: in memory).",
)
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="KEY[:SCOPE,SCOPE]",
    help="Accept this API key, with these scopes (default all). Repeatable. "
    "Without it one key with every scope is generated and printed.",
)
@click.option(
    "--media-check",
    type=click.Choice(["extension", "fetch"]),
    default="extension",
    show_default=True,
    help="Decide audio/video from the URL's extension (offline), or really fetch the URL.",
)
@click.option("--seed", type=int, help="Seed for every random fault, for reproducible runs.")
@click.option(
    "--processing-seconds",
    type=float,
    default=2.0,
    show_default=True,
    help="Seconds an engagement spends in QUEUED and then in PROCESSING.",
)
@click.option(
    "--latency-ms", type=int, default=0, show_default=True, help="Delay per create, +/-50% jitter."
)
@click.option("--rate-limit", type=float, help="Requests per second per key; beyond it 429.")
@click.option(
    "--fail-rate", type=float, default=0.0, show_default=True, help="Share of creates answered 500."
)
@click.option(
    "--drop-after-commit-rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of creates stored, then answered by closing the connection.",
)
@click.option(
    "--outage",
    metavar="START:SECONDS",
    help="Answer 503 for SECONDS, starting START seconds after start-up.",
)
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
    from importer import contract
    from importer.sandbox.server import serve
    from importer.sandbox.settings import ApiKey, Faults, SandboxSettings

    outage_start, outage_seconds = None, 0.0
    if outage:
        try:
            start_text, seconds_text = outage.split(":", 1)
            outage_start, outage_seconds = float(start_text), float(seconds_text)
        except ValueError:
            raise click.BadParameter(
                "expected START:SECONDS, e.g. 30:20", param_hint="--outage"
            ) from None
    api_keys = []
    for value in keys:
        key, scopes = _parse_key(value)
        api_keys.append(
            ApiKey(key, frozenset(scopes) if scopes is not None else frozenset(contract.ALL_SCOPES))
        )
    settings = SandboxSettings(
        host=host,
        port=port,
        db_path=db_path,
        keys=api_keys,
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
