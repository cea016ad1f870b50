"""The ``importer`` command: parses options, calls one stage function, maps errors to exits."""

from __future__ import annotations

import sys

import click

from importer import __version__
from importer.errors import EXIT_USAGE, ImporterError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="importer")
def cli() -> None:
    """Import call and meeting recordings from a CRM export into AskElephant, exactly once."""


def _parse_key(value: str) -> tuple[str, list[str] | None]:
    key, _, scopes = value.partition(":")
    return key, [s for s in scopes.split(",") if s] if scopes else None


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port (0 picks a free one).")
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
@click.option("--latency-ms", type=int, default=0, show_default=True, help="Delay per create, +/-50% jitter.")
@click.option("--rate-limit", type=float, help="Requests per second per key; beyond it 429.")
@click.option("--fail-rate", type=float, default=0.0, show_default=True, help="Share of creates answered 500.")
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
            raise click.BadParameter("expected START:SECONDS, e.g. 30:20", param_hint="--outage")
    api_keys = []
    for value in keys:
        key, scopes = _parse_key(value)
        api_keys.append(ApiKey(key, frozenset(scopes) if scopes is not None else frozenset(contract.ALL_SCOPES)))
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
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as error:
        error.show()
        sys.exit(EXIT_USAGE if error.exit_code == 1 else error.exit_code)
    except ImporterError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(error.exit_code)
