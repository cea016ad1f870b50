"""Every setting of the importer, in one place: defaults, the key and base URL, and the
settings each stage takes.

A default a user can change with an option is defined here once (``DEFAULT_*``); the CLI
shows it in ``--help`` and the dataclasses use it when a caller leaves the value out. The
classes are plain values: the stages that use them import them from here, and building
them from a mapping file and a target's field table happens in
``importer.targets.registry``.

``ReadingChoices`` is how a manifest's rows are read and mapped, as a user chose it; it is
what ``retry`` and ``sync-contacts`` must repeat to read rows as the last run did, so a run
records it (``ImportSettings.to_record``) and they rebuild from it.

>>> ReadingChoices.from_record(ReadingChoices(timezone="Europe/Paris").to_record()).timezone
'Europe/Paris'
"""

from __future__ import annotations

import dataclasses
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from importer.errors import ChoiceError, UnreadableFile, UsageError
from importer.events import HumanReporter, JsonReporter, Reporter
from importer.small_files import KEY_FILE_LIMIT, read_small_file

if TYPE_CHECKING:
    from importer.rows.validate import MappingOptions

DEFAULT_BATCH_SIZE = 1000
"""Manifest rows read, validated and planned at a time (memory stays flat)."""
DEFAULT_CONCURRENCY = 8
"""Requests in flight at once (create, verify GETs, media preflight)."""
DEFAULT_MAX_ATTEMPTS = 6
"""Attempts per request before a transient failure is left for a later run."""
DEFAULT_SETTLE_SECONDS = 60.0
"""A target whose create is not idempotent (DevRev): seconds after a create whose answer
was lost before a look-up that does not find it may be believed (a list catches up late);
until then the row is ``in doubt`` and not created again."""
DEFAULT_READ_TIMEOUT = 300.0
"""Seconds to wait for an answer: AskElephant fetches the media during the create."""
DEFAULT_VERIFY_TIMEOUT = 600.0
"""``importer verify --wait``: seconds to poll before giving up."""
DEFAULT_TIMEZONE: str | None = None
"""Zone for start_at values written without an offset: none until chosen (``--timezone``,
``[formats] timezone``), and a file with such values is refused until then."""
DEFAULT_ON_CHANGE = "report"
"""``--on-change``: a row changed since import counts against the exit code."""
DEFAULT_ON_SAME_RECORDING = "warn"
"""``--on-same-recording``: a recording imported before under another id is listed and sent."""

API_KEY_ENV = "ASKELEPHANT_API_KEY"
BASE_URL_ENV = "ASKELEPHANT_BASE_URL"
DEFAULT_LEDGER = Path("state/ledger.db")


def load_api_key(
    key_file: Path | None,
    environ: Mapping[str, str] | None = None,
    env_name: str = API_KEY_ENV,
) -> tuple[str, list[str]]:
    """The API key from ``--api-key-file``, else ``env_name`` (the target's); and any warnings.

    Never from a command-line value: those end up in shell history and ``ps`` output.
    """
    env = os.environ if environ is None else environ
    warnings: list[str] = []
    if key_file is not None:
        try:
            key = read_small_file(key_file, KEY_FILE_LIMIT).decode("utf-8-sig").strip()
            mode = key_file.stat().st_mode
        except UnreadableFile as error:
            raise UsageError(f"--api-key-file {key_file}: {error.reason}") from None
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"--api-key-file {key_file}: cannot be read ({error})") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(
                f"warning: {key_file} can be read by other users; run: chmod 600 {key_file}"
            )
        if not key:
            raise UsageError(f"--api-key-file {key_file} is empty")
        check_key_shape(key, f"the key in {key_file}")
        return key, warnings
    key = env.get(env_name, "").strip()
    if not key:
        raise UsageError(
            f"no API key: pass --api-key-file PATH or set the environment variable {env_name}"
        )
    check_key_shape(key, f"the key in {env_name}")
    return key, warnings


def check_key_shape(key: str, where: str) -> None:
    """One token of printable ASCII, as keys are; the message never quotes the key."""
    if not re.fullmatch(r"[\x21-\x7e]+", key):
        raise UsageError(
            f"{where} contains spaces, line breaks or non-ASCII characters; "
            "an API key is one line of plain characters (sk-apik_...)"
        )


def resolve_base_url(
    base_url: str | None,
    *,
    default: str,
    env_name: str = BASE_URL_ENV,
    environ: Mapping[str, str] | None = None,
) -> str:
    """``--base-url``, else ``env_name`` (the target's variable), else the target's default."""
    env = os.environ if environ is None else environ
    if base_url is not None and not base_url.strip():
        # An empty value is a script's unset variable, not a wish for production.
        raise UsageError("--base-url is empty; give the URL, or leave the option out")
    chosen = base_url or env.get(env_name)
    if chosen is not None and not chosen.strip() and env_name in env and base_url is None:
        chosen = None  # an exported-but-empty variable means "not set"
    return chosen or default


def recordable_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options worth keeping in the runs table: paths and numbers, never a secret."""
    hidden = {"api_key", "api_key_file_contents", "key"}
    return {
        name: str(value.resolve()) if isinstance(value, Path) else value
        for name, value in options.items()
        if name not in hidden and value is not None
    }


@dataclass(frozen=True)
class RetrySettings:
    """How hard to try one request."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    """Requests per row per run, the first included."""
    backoff_base: float = 0.5
    """Seconds; the n-th retry waits up to base * 2**(n-1)."""
    backoff_cap: float = 30.0
    """No back-off wait is longer than this."""
    retry_after_cap: float = 120.0
    """A Retry-After longer than this leaves the row for a later run instead of sleeping."""
    min_rate_limit_wait: float = 0.5
    """Floor for 429 waits, so ``Retry-After: 0`` cannot become a hot loop."""


@dataclass(frozen=True)
class KnownPace:
    """The pace a server took in an earlier run (the ledger remembers it per server and key)."""

    rate: float
    """Requests per second."""
    limited: bool
    """True: a limit the server showed by refusing; False: what it took, refusing nothing."""


@dataclass(frozen=True)
class PacingSettings:
    """The knobs; the defaults are the ones the benchmarks and simulations were run with."""

    rate_cap: float | None = None
    """``--rate``: never more requests per second than this."""
    limit_share: float = 0.15
    """Share of refusals that means a limit, until the stray share is measured (below it)."""
    limit_margin: float = 0.02
    """Then: points above the stray share (plus ``limit_confidence`` deviations of chance)."""
    limit_confidence: float = 2.5
    min_refusals: int = 3
    """Fewer refusals than this in the window never slow anybody."""
    window_seconds: float = 2.0
    """Answers judged for a limit: those of the last seconds (at least ``window_answers``)."""
    window_answers: int = 40
    clear_share: float = 0.5
    """A share of refusals this high means a limit after only ``clear_answers`` answers."""
    clear_answers: int = 10
    beta: float = 0.7
    """A decrease goes to this share of the measured sending rate."""
    recovery_seconds: float = 3.0
    """After a decrease, seconds until the pace is back at the rate the server took."""
    probe_gentleness: float = 0.01
    """Above the rate the server took, the curve climbs this much slower than below it."""
    measure_seconds: float = 1.0
    floor: float = 0.2
    """The pace never drops below this many requests per second."""
    outage_share: float = 0.8
    """Share of failures among the last ``outage_answers`` answers that means an outage."""
    outage_min_failures: int = 5
    outage_answers: int = 20
    outage_horizon: float = 10.0
    """Answers older than this many seconds are not judged for an outage."""
    probe_base: float = 0.5
    """First wait before a probe; it doubles with each failed probe, up to ``probe_cap``."""
    probe_cap: float = 2.0
    outage_budget: float = 31.0
    """Seconds an outage may last before a failed probe gives up the run; also how long the
    server may stay silent (no answer at all) before a second timeout gives up the run."""
    longest_wait: float = 120.0
    """A rate window resetting further away than this is not waited for: the run stops,
    rows not sent left pending (as a ``Retry-After`` past the cap leaves its row)."""
    slow_start: bool = False
    """Without a ``rate_cap`` or a known limit: start at ``start_rate`` (or the known pace)
    and double it every ``doubling_seconds`` until a limit shows, or ``ramp_ceiling``."""
    start_rate: float = 10.0
    start_burst: int = 10
    """The slow start's first requests leave at once (TCP's initial window of 10)."""
    doubling_seconds: float = 1.0
    """At least this fast; faster when answers come back (a window growing per success)."""
    ramp_ceiling: float = 1000.0
    """Once the doubling alone is this fast, no limit showed: the pace is then free."""
    ramp_share: float = 0.65
    """During the slow start: refusals this share of the requests sent in the last
    ``ramp_seconds`` mean the limit is reached (an emptied token bucket refuses most of a
    fast start at once; four stray 429s among the first eight sent were half of them once)."""
    ramp_seconds: float = 0.5
    ramp_refusals: int = 4
    hold_share: float = 0.5
    """When the slow start meets refusals: hold this share of the pace while the limit is
    measured (an emptied token bucket takes exactly its limit)."""
    estimate_gentleness: float = 0.1
    """Above a hold no refusal ended, the curve climbs this much slower than below it."""
    hold_seconds: float = 1.0
    """A hold no refusal ends within this is below the limit: it becomes the curve's base."""
    known_pace: KnownPace | None = None
    """What the server took in the last run: a limit starts the pace there."""


@dataclass(frozen=True)
class SendSettings:
    """How hard and how fast to send."""

    concurrency: int = DEFAULT_CONCURRENCY
    rate: float | None = None
    retry: RetrySettings = field(default_factory=RetrySettings)
    grace_seconds: float = 5.0
    """After a stop, how long requests already in flight are given to finish."""
    rows_per_slot: int = 4
    """Rows in progress per request slot: the others wait out a Retry-After or a back-off."""
    settle_seconds: float = DEFAULT_SETTLE_SECONDS
    """A target whose create is not idempotent: a row whose create may have been applied is
    created again only after a look-up this long after the attempt finds nothing."""
    outcome_interval: float = 0.05
    """Seconds an outcome may wait to be committed with others (the in-flight mark never
    waits): a crash loses at most these, whose rows stay in_flight and are re-sent safely."""
    slow_start: bool = True
    """Without ``rate`` or a pace the ledger remembers: start gently, and ramp up."""

    @property
    def outage_budget(self) -> float:
        """Seconds an outage is ridden out: ``max_attempts`` shared back-off steps of 1, 2, 4,
        ... s (capped at 30 s), 31 s with the defaults."""
        steps = range(1, self.retry.max_attempts)
        return float(sum(min(30.0, 2.0 ** (n - 1)) for n in steps))

    def pacing(self, known: KnownPace | None = None) -> PacingSettings:
        """The pacer's settings for these options (and the pace the server took last time)."""
        return PacingSettings(
            rate_cap=self.rate,
            outage_budget=self.outage_budget,
            longest_wait=self.retry.retry_after_cap,
            slow_start=self.slow_start,
            known_pace=known,
        )


@dataclass(frozen=True)
class PlanOptions:
    """Choices that change the plan."""

    include_permanent: bool = False
    """Re-send rows the server rejected for good (after fixing a scope or a media host)."""
    only_failed: bool = False
    """``importer retry``: consider only rows a run left unfinished (failed, in flight,
    pending)."""


@dataclass(frozen=True)
class RecordingOptions:
    """``--allow-new-prefix`` and ``--on-same-recording``."""

    allow_new_prefix: bool = False
    allow_new_timezone: bool = False
    """``--allow-new-timezone``: read naive times in a zone other than the ledger's rows'."""
    on_same_recording: str = DEFAULT_ON_SAME_RECORDING
    """``warn``: listed, counted and sent; ``skip``: not sent, recorded ``skipped``."""


@dataclass(frozen=True)
class SourceOptions:
    """How to read the file, where the file itself cannot say."""

    delimiter: str | None = None
    """CSV: the cell delimiter; None sniffs it from the header line."""
    encoding: str | None = None
    """CSV: the text encoding; None takes it from the BOM, else UTF-8."""
    sheet: str | None = None
    """.xlsx: the sheet's name; None is the first sheet."""
    id_column: str | None = None
    """The column ids are read from: numbers there must convert to text exactly."""


@dataclass(frozen=True)
class VerifySettings:
    """How to verify."""

    wait: bool = False
    """Poll until every status is terminal, or the timeout passes."""
    timeout: float = DEFAULT_VERIFY_TIMEOUT
    concurrency: int = DEFAULT_CONCURRENCY
    poll_base: float = 1.0
    poll_cap: float = 30.0
    extra_terminal: frozenset[str] = frozenset()
    retry: RetrySettings = field(default_factory=RetrySettings)


@dataclass(frozen=True)
class ApiChoices:
    """Where and how hard to send, as the API options give it (the key is read apart)."""

    base_url: str | None = None
    api_key_file: Path | None = None
    concurrency: int = DEFAULT_CONCURRENCY
    rate: float | None = None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    read_timeout: float = DEFAULT_READ_TIMEOUT
    settle_seconds: float = DEFAULT_SETTLE_SECONDS

    def send_settings(self) -> SendSettings:
        """How hard and how fast the workers send."""
        return SendSettings(
            concurrency=self.concurrency,
            rate=self.rate,
            retry=RetrySettings(max_attempts=self.max_attempts),
            settle_seconds=self.settle_seconds,
        )

    def retry_settings(self) -> RetrySettings:
        """How hard to try each read (``reconcile``)."""
        return RetrySettings(max_attempts=self.max_attempts)

    def verify_settings(self, *, wait: bool, timeout: float) -> VerifySettings:
        """How ``verify`` reads engagements back."""
        return VerifySettings(
            wait=wait,
            timeout=timeout,
            concurrency=self.concurrency,
            retry=RetrySettings(max_attempts=self.max_attempts),
        )


@dataclass(frozen=True)
class OutputChoices:
    """What a command prints while it works."""

    no_progress: bool = False
    quiet: bool = False
    log_format: str = "text"

    def reporter(self) -> Reporter:
        """JSON events, or a progress bar and plain lines."""
        if self.log_format == "json":
            return JsonReporter()
        return HumanReporter(progress=not self.no_progress, quiet=self.quiet)


DEFAULT_TARGET = "askelephant"
"""``--target``: where rows are imported."""

FILE_CHOICES = ("date_format", "dayfirst", "monthfirst", "delimiter", "encoding", "sheet")
"""How the file is read: a later command over the same manifest keeps these from its last
run unless told again (dates must read as they were imported)."""

RECORD_VERSION = 1
"""The version of the stored form; ``from_record`` reads every version ever written."""


@dataclass(frozen=True)
class ReadingChoices:
    """How a manifest's rows are read and mapped, as given (a file path, names, flags).

    The stored form uses these field names, frozen: they are also the option names that
    ledgers written before the stored form recorded, so those read back the same way.
    """

    target: str = DEFAULT_TARGET
    """The import target, whose field table maps the rows (``--target``)."""
    mapping: Path | None = None
    """The TOML mapping file; None uses the default column names."""
    source_system: str | None = None
    prefix: str | None = None
    timezone: str | None = DEFAULT_TIMEZONE
    """``--timezone``; None: the mapping's ``[formats] timezone``, else not chosen."""
    run_workflows: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE
    skip_without_media: bool = False
    date_format: str | None = None
    dayfirst: bool = False
    monthfirst: bool = False
    delimiter: str | None = None
    encoding: str | None = None
    sheet: str | None = None

    def to_record(self) -> dict[str, Any]:
        """Plain JSON values; the mapping file as an absolute path."""
        record = {f.name: getattr(self, f.name) for f in fields(self)}
        record["mapping"] = str(self.mapping.resolve()) if self.mapping else None
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ReadingChoices:
        """The choices of a stored record (or of an older ledger's recorded options)."""
        return cls(
            target=record.get("target") or DEFAULT_TARGET,
            mapping=Path(record["mapping"]) if record.get("mapping") else None,
            source_system=record.get("source_system"),
            prefix=record.get("prefix"),
            timezone=record.get("timezone") or DEFAULT_TIMEZONE,
            run_workflows=bool(record.get("run_workflows")),
            batch_size=int(record.get("batch_size") or DEFAULT_BATCH_SIZE),
            skip_without_media=bool(record.get("skip_without_media")),
            date_format=record.get("date_format"),
            dayfirst=bool(record.get("dayfirst")),
            monthfirst=bool(record.get("monthfirst")),
            delimiter=record.get("delimiter"),
            encoding=record.get("encoding"),
            sheet=record.get("sheet"),
        )

    def check(self) -> None:
        """Refuse contradictory or unknown choices before any file is read."""
        try:
            if self.timezone is not None:
                ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ChoiceError(
                f"unknown time zone {self.timezone!r}; use an IANA name such as UTC or "
                "America/New_York",
                "--timezone",
            ) from None
        if self.dayfirst and self.monthfirst:
            raise ChoiceError("--dayfirst and --monthfirst contradict each other: pick one")
        if self.date_format is not None and "%" not in self.date_format:
            raise ChoiceError(
                f"{self.date_format!r} has no strptime codes; e.g. '%m/%d/%Y %I:%M %p'",
                "--date-format",
            )

    def as_imported(self, last: ReadingChoices) -> tuple[ReadingChoices, dict[str, Any]]:
        """These choices read as the last run read the file (``importer sync-contacts``).

        The rows must hash as they were imported: the time zone and workflows come from
        ``last``, and so does how the file was read, unless given again. Also returns the
        carried-over values, to record with the run.
        """
        kept = {
            name: getattr(last, name)
            for name in FILE_CHOICES
            if not getattr(self, name) and getattr(last, name)
        }
        carried = {"timezone": last.timezone, "run_workflows": last.run_workflows, **kept}
        return dataclasses.replace(self, **carried), carried


ROWS_BEFORE_WORKERS = 20_000
"""Rows read before pass one's mapping workers start (one costs about 0.3 s to start): a
shorter manifest is mapped by the main process alone."""


@dataclass(frozen=True)
class ImportSettings:
    """One import: which manifest, how rows map, how to plan and how to send."""

    manifest: Path
    mapping: MappingOptions
    """How rows become requests (built by ``targets.registry.import_settings``)."""
    source: SourceOptions = field(default_factory=SourceOptions)
    """How to read the file: delimiter, encoding, sheet."""
    plan: PlanOptions = field(default_factory=PlanOptions)
    send: SendSettings = field(default_factory=SendSettings)
    on_change: str = DEFAULT_ON_CHANGE
    """``report``: a changed row counts against the exit code; ``skip``: it does not."""
    batch_size: int = DEFAULT_BATCH_SIZE
    contacts_only: bool = False
    """``importer sync-contacts``: apply contact sets; create nothing."""
    check_media: bool = False
    """Preflight every distinct media URL before planning (``--check-media``)."""
    media_client: Any = None
    """httpx.AsyncClient for the preflight (tests inject one); None builds one."""
    media_resolver: Any = None
    """Host resolver for the preflight (tests inject one); None uses the system's."""
    recordings: RecordingOptions = field(default_factory=RecordingOptions)
    """``--allow-new-prefix`` and ``--on-same-recording``."""
    reading: ReadingChoices = field(default_factory=ReadingChoices)
    """The choices ``mapping``, ``source`` and ``batch_size`` were built from."""
    confirm: Callable[[str], bool] | None = None
    """Asks yes or no before a big production run (a terminal without ``--yes``); None:
    never asks."""
    mapping_workers: int | None = None
    """Worker processes mapping pass one's batches (None: the other cores; 0: none)."""
    rows_before_workers: int = ROWS_BEFORE_WORKERS
    """Rows pass one maps itself before workers start (tests start them at once)."""

    def to_record(self) -> dict[str, Any]:
        """The stored form of how this import reads its manifest (the runs table keeps it)."""
        return {
            "version": RECORD_VERSION,
            **self.reading.to_record(),
            "allow_new_prefix": self.recordings.allow_new_prefix,
            "allow_new_timezone": self.recordings.allow_new_timezone,
            "on_same_recording": self.recordings.on_same_recording,
        }
