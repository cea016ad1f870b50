"""The CLI's options, each defined once and stacked as decorators where commands share them.

A group of options reaches its command as one typed value (``option_group``): ``run``
receives a ``ReadingChoices``, an ``ApiChoices`` and an ``OutputChoices``, never a loose
``**options`` dictionary.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from importer.sandbox.settings import Faults, SandboxSettings
from importer.settings import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_CONCURRENCY,
    DEFAULT_LEDGER,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_ON_CHANGE,
    DEFAULT_ON_SAME_RECORDING,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_SETTLE_SECONDS,
    DEFAULT_TARGET,
    DEFAULT_TIMEZONE,
    ApiChoices,
    OutputChoices,
    ReadingChoices,
    RecordingOptions,
)
from importer.targets.registry import TARGETS

Decorator = Callable[[Any], Any]
T = TypeVar("T")

LOG_FORMAT_KEY = "importer.log_format"
"""Where the chosen --log-format waits in ``ctx.meta`` for the error handler."""


def stack(*decorators: Decorator) -> Decorator:
    """The decorators applied as if written one above the other, in this order."""

    def apply(function: Any) -> Any:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


def option_group(name: str, build: Callable[..., T], *options: Decorator) -> Decorator:
    """Stack ``options``; the command gets one argument ``name``: ``build`` of their values."""

    def probe() -> None:
        """Only collects the parameter names the options declare."""

    for option in options:
        option(probe)
    names = [param.name for param in getattr(probe, "__click_params__", [])]

    def apply(function: Any) -> Any:
        @functools.wraps(function)
        def command(*args: Any, **kwargs: Any) -> Any:
            kwargs[name] = build(**{n: kwargs.pop(n) for n in names if n in kwargs})
            return function(*args, **kwargs)

        return stack(*options)(command)

    return apply


def _remember_log_format(ctx: click.Context, _: click.Parameter, value: str) -> str:
    """Parsed first, so that even a usage error is told in the chosen format."""
    ctx.meta[LOG_FORMAT_KEY] = value
    return value


target_option = click.option(
    "--target",
    type=click.Choice(sorted(TARGETS)),
    default=DEFAULT_TARGET,
    show_default=True,
    help="Where engagements go: askelephant, or devrev (DevRev engagements; its own field "
    "table, $DEVREV_API_KEY, $DEVREV_BASE_URL). A ledger belongs to one target.",
)

manifest_argument = click.argument(
    "manifest", type=click.Path(path_type=Path, dir_okay=True, exists=False)
)

_naming = (
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
_timezone = click.option(
    "--timezone",
    default=DEFAULT_TIMEZONE,
    help="Time zone of start_at values without an offset (IANA name, e.g. America/New_York, "
    "or UTC) [default: the mapping's [formats] timezone; a file with such values and no zone "
    "is refused]. A zone name after a time ('2:30 PM EST') must be this zone's.",
)
_run_workflows = click.option(
    "--run-workflows",
    is_flag=True,
    help="Let AskElephant run workflows and recap emails (off for historical imports).",
)
_delimiter = click.option(
    "--delimiter",
    help="CSV cell delimiter: , ; | or tab [default: sniffed from the header line].",
)
_encoding = click.option(
    "--encoding",
    help="CSV text encoding: utf-8, utf-8-sig, utf-16, cp1252 or latin-1 [default: from "
    "the BOM, else utf-8, or utf-16 when the header's bytes say so].",
)
_sheet = click.option("--sheet", help=".xlsx manifests: the sheet to read [default: the first].")
_reading = (
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
    _delimiter,
    _encoding,
    _sheet,
    click.option(
        "--skip-without-media",
        is_flag=True,
        help="Rows with a blank media URL (calls without a recording) are skipped, not invalid "
        "(also [rows] skip_without_media in the mapping).",
    ),
    click.option(
        "--batch-size",
        type=click.IntRange(1, 100_000),
        default=DEFAULT_BATCH_SIZE,
        show_default=True,
        help="Rows read at a time; memory stays bounded by it.",
    ),
)

reading_options = option_group(
    "reading", ReadingChoices, target_option, *_naming, _timezone, _run_workflows, *_reading
)
"""How the manifest is read and mapped: the command gets ``reading: ReadingChoices``."""

contacts_reading_options = option_group(
    "reading", ReadingChoices, target_option, *_naming, *_reading
)
"""``sync-contacts`` creates nothing: time zone and workflows come from the last run."""

source_options = stack(_delimiter, _encoding, _sheet)
"""``init`` reads only the file's first rows: how to read them."""


def _ledger_path(_ctx: click.Context, _param: click.Parameter, value: Path) -> Path:
    """A ledger path the system can look up (a 300-character name is refused here, once)."""
    try:
        value.exists()
    except OSError as error:
        raise click.BadParameter(f"{error.strerror}: {value}") from None
    return value


ledger_option = click.option(
    "--ledger",
    type=click.Path(path_type=Path),
    default=str(DEFAULT_LEDGER),
    show_default=True,
    callback=_ledger_path,
    help="SQLite ledger recording every row's outcome (one per import target).",
)


def _max_attempts(help_text: str) -> Decorator:
    return click.option(
        "--max-attempts",
        type=click.IntRange(1, 100),
        default=DEFAULT_MAX_ATTEMPTS,
        show_default=True,
        help=help_text,
    )


_api = (
    click.option(
        "--base-url",
        help="API base URL [default: $ASKELEPHANT_BASE_URL, else (retry, verify, reconcile, "
        "sync-contacts) the ledger's last run's, else https://app.askelephant.ai/api; with "
        "--target devrev: $DEVREV_BASE_URL... or https://api.devrev.ai]. "
        "http:// is refused except on a loopback address (the sandbox).",
    ),
    click.option(
        "--api-key-file",
        type=click.Path(path_type=Path, dir_okay=False),
        help="File holding the API key [default: $ASKELEPHANT_API_KEY, or $DEVREV_API_KEY with "
        "--target devrev]. Never on the command line.",
    ),
    click.option(
        "--concurrency",
        type=click.IntRange(1, 256),
        default=DEFAULT_CONCURRENCY,
        show_default=True,
        help="Requests in flight at once.",
    ),
    click.option("--rate", type=click.FloatRange(min=0.01), help="At most this many requests/s."),
    _max_attempts("Requests per row before it is left failed (transient) for a later run."),
    click.option(
        "--read-timeout",
        type=click.FloatRange(min=1),
        default=DEFAULT_READ_TIMEOUT,
        show_default=True,
        help="Seconds to wait for an answer; create fetches the media synchronously.",
    ),
    click.option(
        "--settle-seconds",
        type=click.FloatRange(min=0),
        default=DEFAULT_SETTLE_SECONDS,
        show_default=True,
        help="DevRev (create not idempotent): a row whose create may have been applied is "
        "created again only if a look-up this long after it still finds nothing; until then "
        "it is 'in doubt' and a later run settles it.",
    ),
)

api_options = option_group("api", ApiChoices, *_api)
"""Where and how hard to send: the command gets ``api: ApiChoices``."""

verify_api_options = option_group(
    "api",
    ApiChoices,
    *_api[:4],
    _max_attempts("Requests per engagement read before it is left for the next round or run."),
    _api[5],
)
"""As ``api_options``; ``verify`` reads engagements, it leaves no row failed."""

output_options = option_group(
    "output",
    OutputChoices,
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
"""What the command prints: the command gets ``output: OutputChoices``."""

plan_output_options = stack(
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

yes_option = click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="Do not ask before sending more than 1,000 new rows to production from a terminal.",
)

recording_options = option_group(
    "recordings",
    RecordingOptions,
    click.option(
        "--allow-new-prefix",
        is_flag=True,
        help="Send rows imported before under another external_id prefix (a changed "
        "source_system or --prefix) as new engagements; without it such a run is refused.",
    ),
    click.option(
        "--allow-new-timezone",
        is_flag=True,
        help="Read times without an offset in a zone other than the one this ledger's rows "
        "of the same source were read in; without it such a run is refused.",
    ),
    click.option(
        "--on-same-recording",
        type=click.Choice(["warn", "skip"]),
        default=DEFAULT_ON_SAME_RECORDING,
        show_default=True,
        help="A row whose media URL is already imported (or on an earlier row) under another "
        "external_id: warn (list, count and send it) or skip (record it skipped, send nothing).",
    ),
)
"""What to do about a changed prefix or zone, or a recording imported before:
``RecordingOptions``."""

on_change_option = click.option(
    "--on-change",
    type=click.Choice(["report", "skip"]),
    default=DEFAULT_ON_CHANGE,
    show_default=True,
    help="A row changed since import cannot be updated by create: report it (exit 1) or skip.",
)

_SANDBOX, _FAULTS = SandboxSettings(), Faults()
"""The sandbox's defaults, defined once in ``importer.sandbox.settings``."""

sandbox_options = stack(
    click.option("--host", default=_SANDBOX.host, show_default=True, help="Address to bind."),
    click.option(
        "--port",
        default=_SANDBOX.port,
        show_default=True,
        type=int,
        help="Port (0 picks a free one).",
    ),
    click.option(
        "--db",
        "db_path",
        type=click.Path(dir_okay=False),
        help="SQLite file that keeps engagements across restarts (default: in memory).",
    ),
    click.option(
        "--key",
        "keys",
        multiple=True,
        metavar="KEY[:SCOPE,SCOPE]",
        help="Accept this API key, with these scopes (default all). Repeatable. "
        "Without it one key with every scope is generated and printed.",
    ),
    click.option(
        "--media-check",
        type=click.Choice(["extension", "fetch"]),
        default=_SANDBOX.media_check,
        show_default=True,
        help="Decide audio/video from the URL's extension (offline), or really fetch the URL.",
    ),
    click.option("--seed", type=int, help="Seed for every random fault, for reproducible runs."),
    click.option(
        "--processing-seconds",
        type=float,
        default=_SANDBOX.processing_seconds,
        show_default=True,
        help="Seconds an engagement spends in QUEUED and then in PROCESSING.",
    ),
    click.option(
        "--latency-ms",
        type=int,
        default=_FAULTS.latency_ms,
        show_default=True,
        help="Delay per create, +/-50% jitter.",
    ),
    click.option("--rate-limit", type=float, help="Requests per second per key; beyond it 429."),
    click.option(
        "--fail-rate",
        type=float,
        default=_FAULTS.fail_rate,
        show_default=True,
        help="Share of creates answered 500.",
    ),
    click.option(
        "--drop-after-commit-rate",
        type=float,
        default=_FAULTS.drop_after_commit_rate,
        show_default=True,
        help="Share of creates stored, then answered by closing the connection.",
    ),
    click.option(
        "--stray-429-rate",
        type=float,
        default=_FAULTS.stray_429_rate,
        show_default=True,
        help="Share of creates answered 429 (Retry-After: 1) whatever the pace.",
    ),
    click.option(
        "--outage",
        metavar="START:SECONDS",
        help="Answer 503 for SECONDS, starting START seconds after start-up.",
    ),
    click.option(
        "--devrev-account",
        "devrev_accounts",
        multiple=True,
        metavar="EXTERNAL_REF",
        help="A DevRev account synced from this CRM account id (accounts.list finds it by "
        "external_refs). Repeatable; the same id twice makes two accounts.",
    ),
)
