"""The tools around an import: ``init`` (a mapping file) and ``sandbox`` (a local server)."""

from __future__ import annotations

import sys
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from importer.cli.common import option_errors
from importer.cli.options import manifest_argument, sandbox_options, source_options, target_option
from importer.events import echo
from importer.runner import InitAnswers, init_mapping
from importer.sandbox.settings import Faults, SandboxSettings, parse_key, parse_outage


@click.command()
@manifest_argument
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default="mapping.toml",
    show_default=True,
    help="Where to write the mapping file.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option(
    "--timezone",
    help="The zone of times without an offset (IANA name, e.g. America/New_York, or UTC), "
    "written as [formats] timezone. Without it init asks at a terminal, and elsewhere "
    "leaves the question in the file (plan and run refuse such times until it is answered).",
)
@click.option(
    "--source-system",
    help="source_system of every row (e.g. sheets), written as [defaults] source_system when "
    "no column holds it.",
)
@click.option("--dayfirst", is_flag=True, help="Numeric dates are day first: [formats].")
@click.option("--monthfirst", is_flag=True, help="Numeric dates are month first: [formats].")
@target_option
@source_options
@click.pass_context
def init(
    ctx: click.Context,
    manifest: Path,
    out: Path,
    force: bool,
    timezone: str | None,
    source_system: str | None,
    dayfirst: bool,
    monthfirst: bool,
    target: str,
    delimiter: str | None,
    encoding: str | None,
    sheet: str | None,
) -> None:
    """Write a commented mapping file for MANIFEST from its headers and first rows.

    Knows the headers of Salesforce, HubSpot, Gong, Zoom, Chorus, Outreach, Salesloft,
    Dialpad, Aircall, RingCentral and dialer exports, maps a column only when its values
    fit the field, proposes value maps and fields read from several columns (a Date with a
    Time, every column of people), asks the time zone of times without an offset, and
    prints what it mapped, guessed and could not find. Exit 2 when no column can be the id.
    With --target devrev, the fields are DevRev's, the CRM's account column among them.
    """
    if dayfirst and monthfirst:
        raise click.UsageError("--dayfirst and --monthfirst contradict each other: pick one")
    answers = InitAnswers(
        timezone=timezone,
        date_order="dayfirst" if dayfirst else "monthfirst" if monthfirst else None,
        source_system=source_system,
        ask=_ask_zone if _at_terminal() else None,
    )
    lines, code = init_mapping(
        manifest, out, delimiter, encoding, sheet, force=force, answers=answers, target=target
    )
    for line in lines:
        echo(line)
    ctx.exit(code)


def _at_terminal() -> bool:
    """A person who can answer (never a script or cron: init must not wait for them)."""
    try:
        return sys.stdin.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _ask_zone(question: str) -> str:
    def zone(value: str) -> str:
        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise click.BadParameter(f"{value!r} is not a time zone") from None
        return value.strip()

    answer: str = click.prompt(question, err=True, value_proc=zone)
    return answer


@click.command()
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
    stray_429_rate: float,
    outage: str | None,
    devrev_accounts: tuple[str, ...],
) -> None:
    """Run a local server that speaks the AskElephant engagements API, for rehearsals and tests."""
    with option_errors():
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
            stray_429_rate=stray_429_rate,
            outage_start=outage_start,
            outage_seconds=outage_seconds,
        ),
        devrev_accounts=list(devrev_accounts),
    )
    from importer.sandbox.server import serve  # uvicorn and starlette: only this command

    serve(settings)
