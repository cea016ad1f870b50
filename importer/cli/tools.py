"""The tools around an import: ``init`` (a mapping file) and ``sandbox`` (a local server)."""

from __future__ import annotations

from pathlib import Path

import click

from importer.cli.common import option_errors
from importer.cli.options import (
    manifest_argument,
    sandbox_options,
    source_options,
    target_option,
)
from importer.events import echo
from importer.runner import init_mapping
from importer.sandbox.server import serve
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
@target_option
@source_options
def init(
    manifest: Path,
    out: Path,
    force: bool,
    target: str,
    delimiter: str | None,
    encoding: str | None,
    sheet: str | None,
) -> None:
    """Write a commented mapping file for MANIFEST from its headers and first rows.

    Knows the headers of Salesforce, HubSpot, Gong, Zoom, Chorus, Outreach, Salesloft,
    Dialpad and dialer exports, maps a column only when its values fit the field,
    proposes value maps, and prints what it mapped, guessed and could not find. With
    --target devrev, the fields are DevRev's, the CRM's account column among them.
    """
    lines = init_mapping(manifest, out, delimiter, encoding, sheet, force=force, target=target)
    for line in lines:
        echo(line)


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
    serve(settings)
