"""The commands that import: ``run``, ``plan``, ``retry`` and ``sync-contacts``."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import click

from importer.cli.common import api_key, option_errors
from importer.cli.options import (
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
    target_option,
    yes_option,
)
from importer.events import echo
from importer.outcomes import RunSummary, plan_exit_code
from importer.report.files import run_summary_text, stop_notice
from importer.runner import (
    api_target_factory,
    import_manifest,
    last_settings,
    plan_report,
    retry_work,
    run_each,
)
from importer.settings import (
    ApiChoices,
    ImportSettings,
    OutputChoices,
    ReadingChoices,
    RecordingOptions,
)
from importer.targets.registry import import_settings


def _settings(manifest: Path, reading: ReadingChoices, **choices: Any) -> ImportSettings:
    with option_errors():
        return import_settings(manifest, reading, **choices)


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
    if _interactive(output) and not ctx.params.get("yes"):
        settings = dataclasses.replace(settings, confirm=_ask)
    target = settings.reading.target
    summary = import_manifest(
        settings,
        ledger_path=ledger,
        target_factory=api_target_factory(
            api, target, lambda kind: api_key(api.api_key_file, kind)
        ),
        reporter=output.reporter(),
        command=command,
        options=options,
        target=target,
    )
    if output.log_format != "json":
        _print_summary(summary, settings.manifest, output.quiet)
    return int(summary.exit_code)


def _interactive(output: OutputChoices) -> bool:
    """A person at a terminal, who can answer a question (never cron, JSON logs, --quiet)."""
    if output.log_format != "text" or output.quiet:
        return False
    try:
        return sys.stdin.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _ask(question: str) -> bool:
    return click.confirm(question, default=False, err=True)


def _print_summary(summary: RunSummary, manifest: Path, quiet: bool) -> None:
    if not quiet:
        echo(run_summary_text(summary, manifest))
        if summary.pacing:
            echo(f"Pacing: {summary.pacing}.")
    notice = stop_notice(summary)
    if notice and not (quiet and summary.stop_reason == "interrupted"):
        echo(notice, err=True)


@click.command()
@manifest_argument
@reading_options
@ledger_option
@api_options
@on_change_option
@recording_options
@yes_option
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
    yes: bool,
    check_media: bool,
    dry_run: bool,
    out: Path | None,
    as_json: bool,
    output: OutputChoices,
) -> None:
    """Import MANIFEST (CSV, .xlsx or Parquet): one create per valid row, recorded in the ledger.

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


@click.command()
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


@click.command()
@ledger_option
@target_option
@api_options
@click.option(
    "--include-permanent",
    is_flag=True,
    help="Also re-send rows the server rejected for good (after fixing a scope or media host).",
)
@yes_option
@output_options
@click.pass_context
def retry(
    ctx: click.Context,
    ledger: Path,
    target: str,
    api: ApiChoices,
    include_permanent: bool,
    yes: bool,
    output: OutputChoices,
) -> None:
    """Finish what runs left unfinished: rows that failed transiently, were in flight or pending.

    Each manifest is read again with the options of its last run. Exit 0 only when every
    row is in AskElephant.
    """
    work = retry_work(ledger, include_permanent, target)
    if not work.manifests:
        message, code = work.nothing_to_retry()
        echo(message)
        ctx.exit(code)
    with option_errors():
        runs = work.settings(api.send_settings())
    ctx.exit(run_each(runs, lambda settings: _send(ctx, "retry", settings, ledger, api, output)))


@click.command(name="sync-contacts")
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
    reading, carried = reading.as_imported(
        ReadingChoices.from_record(last_settings(ledger, manifest))
    )
    settings = _settings(manifest, reading, send=api.send_settings(), contacts_only=True)
    code = _send(ctx, "sync-contacts", settings, ledger, api, output, **carried)
    ctx.exit(code)
