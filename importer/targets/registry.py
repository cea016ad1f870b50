"""The import targets by name: field table, defaults for URL and key, and how to build one.

Also where an import's settings are built: the reading choices applied to the target's
field table and the mapping file (``import_settings``), or rebuilt as a recorded run read
its manifest (``recorded_import_settings``).

Everything that differs between vendors is here or in the target classes, so the
pipeline and the CLI never branch on a vendor:

    >>> TARGETS["devrev"].default_base_url
    'https://api.devrev.ai'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from importer.errors import ChoiceError
from importer.read.csv_dialect import delimiter_option, encoding_option
from importer.rows import contract, mapping, validate
from importer.rows.dates import DAYFIRST, MONTHFIRST, ORDERS, DateStyle
from importer.rows.mapping import ColumnMapping, load_mapping
from importer.rows.validate import MappingOptions, RowMapper
from importer.settings import (
    DEFAULT_ON_CHANGE,
    DEFAULT_ON_SAME_RECORDING,
    ImportSettings,
    PlanOptions,
    ReadingChoices,
    RecordingOptions,
    SendSettings,
    SourceOptions,
)
from importer.targets import devrev_fields
from importer.targets.askelephant import AskElephantTarget
from importer.targets.base import Target
from importer.targets.devrev import DEFAULT_BASE_URL as DEVREV_BASE_URL
from importer.targets.devrev import DevRevTarget
from importer.targets.http import build_timeout

TargetBuilder = Callable[[str, str, int, float], Target]
"""(base_url, api_key, concurrency, read_timeout) -> a target, its URL already checked."""


@dataclass(frozen=True)
class TargetKind:
    """One import target: what its create needs from a row, where it lives, its key."""

    name: str
    label: str
    """How messages name it (``AskElephant``, ``DevRev``)."""
    default_base_url: str
    base_url_env: str
    api_key_env: str
    fields: tuple[str, ...]
    """The mapping's field table: the fields a manifest column can feed."""
    required: tuple[str, ...]
    row_mapper: RowMapper
    build: TargetBuilder


def _builder(target_class: Callable[..., Target]) -> TargetBuilder:
    """Build ``target_class`` from the four settings every target takes."""

    def build(base_url: str, api_key: str, concurrency: int, read_timeout: float) -> Target:
        return target_class(
            base_url,
            api_key,
            timeout=build_timeout(read_timeout),
            max_connections=max(concurrency, 1),
        )

    return build


TARGETS: dict[str, TargetKind] = {
    "askelephant": TargetKind(
        name="askelephant",
        label="AskElephant",
        default_base_url=contract.PRODUCTION_BASE_URL,
        base_url_env="ASKELEPHANT_BASE_URL",
        api_key_env="ASKELEPHANT_API_KEY",
        fields=mapping.FIELDS,
        required=mapping.REQUIRED_FIELDS,
        row_mapper=validate.map_row,
        build=_builder(AskElephantTarget),
    ),
    "devrev": TargetKind(
        name="devrev",
        label="DevRev",
        default_base_url=DEVREV_BASE_URL,
        base_url_env="DEVREV_BASE_URL",
        api_key_env="DEVREV_API_KEY",
        fields=devrev_fields.FIELDS,
        required=devrev_fields.REQUIRED_FIELDS,
        row_mapper=devrev_fields.map_row,
        build=_builder(DevRevTarget),
    ),
}


def target_kind(name: str) -> TargetKind:
    """The target called ``name`` (the CLI's choice list guarantees it exists)."""
    return TARGETS[name]


def import_settings(
    manifest: Path,
    reading: ReadingChoices,
    *,
    send: SendSettings | None = None,
    plan: PlanOptions | None = None,
    on_change: str = DEFAULT_ON_CHANGE,
    contacts_only: bool = False,
    check_media: bool = False,
    recordings: RecordingOptions | None = None,
) -> ImportSettings:
    """Settings from the choices: the mapping file is read, every choice checked."""
    reading.check()
    if reading.target not in TARGETS:
        raise ChoiceError(
            f"unknown target {reading.target!r}; use one of {', '.join(sorted(TARGETS))}",
            "--target",
        )
    kind = target_kind(reading.target)
    columns = load_mapping(reading.mapping, kind.fields, kind.required)
    if reading.source_system and "source_system" in columns.defaults:
        # The option is the more explicit choice: it wins over the mapping's default.
        columns = dataclasses.replace(
            columns, defaults={**columns.defaults, "source_system": reading.source_system}
        )
    return ImportSettings(
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
            dates=date_style(reading, columns),
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


def recorded_import_settings(
    manifest: Path,
    record: Mapping[str, Any],
    *,
    send: SendSettings | None = None,
    plan: PlanOptions | None = None,
    contacts_only: bool = False,
) -> ImportSettings:
    """Settings that read ``manifest`` as the recorded run did (``retry``)."""
    return import_settings(
        manifest,
        ReadingChoices.from_record(record),
        send=send,
        plan=plan,
        contacts_only=contacts_only,
        recordings=RecordingOptions(
            allow_new_prefix=bool(record.get("allow_new_prefix")),
            on_same_recording=record.get("on_same_recording") or DEFAULT_ON_SAME_RECORDING,
        ),
    )


def date_style(reading: ReadingChoices, columns: ColumnMapping) -> DateStyle:
    """The options win over the mapping's [formats] start_at."""
    given = columns.formats.get("start_at")
    order = DAYFIRST if reading.dayfirst else MONTHFIRST if reading.monthfirst else None
    if reading.date_format or order:
        return DateStyle(format=reading.date_format, order=order)
    if given in ORDERS:
        return DateStyle(order=given)
    return DateStyle(format=given)
