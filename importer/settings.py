"""What one import is asked to do: the manifest, mapping, planning and sending choices.

``ReadingChoices`` is how a manifest's rows are read and mapped, as a user chose it; it is
what ``retry`` and ``sync-contacts`` must repeat to read rows as the last run did, so a run
records it (``ImportSettings.to_record``) and they rebuild from it (``from_record``).

>>> ReadingChoices.from_record(ReadingChoices(timezone="Europe/Paris").to_record()).timezone
'Europe/Paris'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from importer import defaults
from importer.errors import ChoiceError
from importer.plan.planner import PlanOptions
from importer.plan.recordings import RecordingOptions
from importer.read.csv_dialect import delimiter_option, encoding_option
from importer.read.manifest import SourceOptions
from importer.rows.dates import DAYFIRST, MONTHFIRST, ORDERS, DateStyle
from importer.rows.mapping import ColumnMapping, load_mapping
from importer.rows.validate import MappingOptions
from importer.send.sender import SendSettings
from importer.targets.registry import DEFAULT_TARGET, TARGETS, target_kind

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
    timezone: str = defaults.TIMEZONE
    run_workflows: bool = False
    batch_size: int = defaults.BATCH_SIZE
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
            timezone=record.get("timezone") or defaults.TIMEZONE,
            run_workflows=bool(record.get("run_workflows")),
            batch_size=int(record.get("batch_size") or defaults.BATCH_SIZE),
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
        if self.target not in TARGETS:
            raise ChoiceError(
                f"unknown target {self.target!r}; use one of {', '.join(sorted(TARGETS))}",
                "--target",
            )
        try:
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

    def date_style(self, columns: ColumnMapping) -> DateStyle:
        """The options win over the mapping's [formats] start_at."""
        given = columns.formats.get("start_at")
        order = DAYFIRST if self.dayfirst else MONTHFIRST if self.monthfirst else None
        if self.date_format or order:
            return DateStyle(format=self.date_format, order=order)
        if given in ORDERS:
            return DateStyle(order=given)
        return DateStyle(format=given)


@dataclass(frozen=True)
class ImportSettings:
    """One import: which manifest, how rows map, how to plan and how to send."""

    manifest: Path
    mapping: MappingOptions = field(default_factory=MappingOptions)
    source: SourceOptions = field(default_factory=SourceOptions)
    """How to read the file: delimiter, encoding, sheet."""
    plan: PlanOptions = field(default_factory=PlanOptions)
    send: SendSettings = field(default_factory=SendSettings)
    on_change: str = defaults.ON_CHANGE
    """``report``: a changed row counts against the exit code; ``skip``: it does not."""
    batch_size: int = defaults.BATCH_SIZE
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

    @classmethod
    def build(
        cls,
        manifest: Path,
        reading: ReadingChoices,
        *,
        send: SendSettings | None = None,
        plan: PlanOptions | None = None,
        on_change: str = defaults.ON_CHANGE,
        contacts_only: bool = False,
        check_media: bool = False,
        recordings: RecordingOptions | None = None,
    ) -> ImportSettings:
        """Settings from the choices: the mapping file is read, every choice checked."""
        reading.check()
        kind = target_kind(reading.target)
        columns = load_mapping(reading.mapping, kind.fields, kind.required)
        if reading.source_system and "source_system" in columns.defaults:
            # The option is the more explicit choice: it wins over the mapping's default.
            columns = dataclasses.replace(
                columns, defaults={**columns.defaults, "source_system": reading.source_system}
            )
        return cls(
            manifest=manifest,
            source=SourceOptions(
                delimiter=delimiter_option(reading.delimiter),
                encoding=encoding_option(reading.encoding),
                sheet=reading.sheet,
            ),
            mapping=MappingOptions(
                source_system=reading.source_system,
                prefix=reading.prefix,
                timezone=reading.timezone,
                run_workflows=reading.run_workflows,
                columns=columns,
                skip_without_media=reading.skip_without_media or columns.skip_without_media,
                dates=reading.date_style(columns),
                row_mapper=kind.row_mapper,
            ),
            plan=plan or PlanOptions(),
            send=send or SendSettings(),
            on_change=on_change,
            batch_size=reading.batch_size,
            contacts_only=contacts_only,
            check_media=check_media,
            reading=reading,
            recordings=recordings or RecordingOptions(),
        )

    def to_record(self) -> dict[str, Any]:
        """The stored form of how this import reads its manifest (the runs table keeps it)."""
        return {
            "version": RECORD_VERSION,
            **self.reading.to_record(),
            "allow_new_prefix": self.recordings.allow_new_prefix,
            "on_same_recording": self.recordings.on_same_recording,
        }

    @classmethod
    def from_record(
        cls,
        manifest: Path,
        record: Mapping[str, Any],
        *,
        send: SendSettings | None = None,
        plan: PlanOptions | None = None,
        contacts_only: bool = False,
    ) -> ImportSettings:
        """Settings that read ``manifest`` as the recorded run did (``retry``)."""
        return cls.build(
            manifest,
            ReadingChoices.from_record(record),
            send=send,
            plan=plan,
            contacts_only=contacts_only,
            recordings=RecordingOptions(
                allow_new_prefix=bool(record.get("allow_new_prefix")),
                on_same_recording=record.get("on_same_recording") or defaults.ON_SAME_RECORDING,
            ),
        )
