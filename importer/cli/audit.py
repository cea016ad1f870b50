"""The commands that read back: ``status``, ``report``, ``verify`` and ``reconcile``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from importer.cli.common import api_key, warn
from importer.cli.options import ledger_option, output_options, target_option, verify_api_options
from importer.events import echo
from importer.ledger import require_ledger
from importer.report.files import SUMMARY_FILE
from importer.report.status import status_text
from importer.runner import (
    api_target_factory,
    reconcile_ledger,
    status_of,
    verify_ledger,
    write_ledger_reports,
)
from importer.settings import DEFAULT_VERIFY_TIMEOUT, ApiChoices, OutputChoices


@click.command()
@ledger_option
@target_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(ledger: Path, target: str, as_json: bool) -> None:
    """Show the ledger: rows by status, frequent errors, last runs, changed rows."""
    data = status_of(ledger, target)
    echo(json.dumps(data, indent=2) if as_json else status_text(data))


@click.command()
@ledger_option
@target_option
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Folder for success.csv, errors.csv, skipped.csv and summary.md (created if needed).",
)
def report(ledger: Path, target: str, out: Path) -> None:
    """Write success.csv, errors.csv, skipped.csv and summary.md from the ledger.

    errors.csv keeps the original manifest columns plus error_status and error_message:
    fix the cells and run it as a manifest (with several manifests, errors-<name>.csv has
    each one's rows). summary.md is one page to paste: counts, what needs attention,
    coverage by month, throughput, the commands that fix or resume the rest.
    """
    for name, count in write_ledger_reports(ledger, out, target).items():
        echo(f"Wrote {out / name} ({count:,} rows)")
    echo(f"Wrote {out / SUMMARY_FILE}")


@click.command()
@ledger_option
@target_option
@verify_api_options
@click.option("--wait", is_flag=True, help="Poll until every processing_status is terminal.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=DEFAULT_VERIFY_TIMEOUT,
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

    Exit 1 if any engagement failed processing, could not be read (run it again later),
    or, with --wait, is still processing at the timeout.
    """
    require_ledger(ledger)
    result = verify_ledger(
        ledger,
        api_target_factory(api, target, lambda kind: api_key(api.api_key_file, kind)),
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
            warn(f"Still processing after {timeout:.0f} s.")
    ctx.exit(result.exit_code)


@click.command()
@ledger_option
@target_option
@verify_api_options
@click.option(
    "--manifest",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Also look up every external id this manifest yields, invalid and duplicate rows "
    "included (DevRev; default: the last run's manifest, when it is still there).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.pass_context
def reconcile(
    ctx: click.Context,
    ledger: Path,
    target: str,
    api: ApiChoices,
    manifest: Path | None,
    as_json: bool,
) -> None:
    """Compare the ledger with the target: rows missing remotely, remote rows the ledger does
    not know, remote duplicates, mismatched ids. Changes neither side.

    Exit 1 when anything disagrees.
    """
    require_ledger(ledger)
    result = reconcile_ledger(
        ledger,
        api_target_factory(api, target, lambda kind: api_key(api.api_key_file, kind)),
        concurrency=api.concurrency,
        retry=api.retry_settings(),
        target=target,
        manifest=manifest,
    )
    echo(json.dumps(result.as_dict(), indent=2) if as_json else "\n".join(result.lines()))
    ctx.exit(result.exit_code)
