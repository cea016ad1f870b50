"""Which manifest column feeds which field, and per-manifest defaults, from a TOML file.

# mapping.toml
[columns]
id = "Activity ID"          # field = "column in the manifest"
start_at = "Call Date"

[defaults]
type = "CALL"               # used when the column is absent or the cell is blank
source_system = "salesforce"

[formats]
start_at = "%m/%d/%Y %I:%M %p"   # strptime format; or "dayfirst" / "monthfirst"

[values.type]               # a cell's value, as the CRM writes it, to the field's value
Inbound = "CALL"
"Video Meeting" = "MEETING"

[rows]
skip_without_media = true   # a row without a media URL is skipped, not invalid
"""

from __future__ import annotations

import functools
import sys
from collections import Counter
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from pathlib import Path

from importer.errors import ManifestError, MappingError, UnreadableFile
from importer.read.small_files import MAPPING_FILE_LIMIT, read_small_file

if sys.version_info >= (3, 11):
    import tomllib as tomllib  # re-exported: mapping_init reads TOML back too
else:  # pragma: no cover
    import tomli as tomllib

FIELDS = (
    "id",
    "type",
    "title",
    "media_url",
    "start_at",
    "is_private",
    "participants",
    "transcript_text",
    "transcript_path",
    "source_system",
    "contact_ids",
)
REQUIRED_FIELDS = ("id", "type", "title", "media_url", "start_at")
SECTIONS = ("columns", "defaults", "formats", "values", "rows")


@dataclass(frozen=True)
class ColumnMapping:
    """Field name to manifest column name, plus default values for fields."""

    columns: dict[str, str] = field(default_factory=lambda: {name: name for name in FIELDS})
    defaults: dict[str, str] = field(default_factory=dict)
    formats: dict[str, str] = field(default_factory=dict)
    """Field to date format: a strptime format, ``dayfirst`` or ``monthfirst``."""
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    """Field to {value as the CRM writes it: value to use}; matched ignoring case."""
    skip_without_media: bool = False
    """``[rows] skip_without_media``: rows with a blank media URL are skipped."""
    fields: tuple[str, ...] = FIELDS
    """The fields the import target's create reads (its field table)."""
    required: tuple[str, ...] = REQUIRED_FIELDS

    def fields_of(self, cells: MappingABC[str, str]) -> dict[str, str]:
        """The row's cells renamed to field names, value maps applied, defaults filling blanks."""
        values: dict[str, str] = {}
        for name, column, folded, default in self._readers:
            value = cells.get(column, "")
            if folded is not None:
                value = folded.get(value.strip().casefold(), value)
            if default is not None and not value.strip():
                value = default
            values[name] = value
        return values

    @functools.cached_property
    def _readers(self) -> tuple[tuple[str, str, dict[str, str] | None, str | None], ...]:
        """Per field, worked out once (``fields_of`` runs for every row): its column, its
        folded value map and its default, if any."""
        return tuple(
            (
                name,
                self.columns.get(name, name),
                self._folded_values.get(name),
                self.defaults.get(name),
            )
            for name in self.fields
        )

    @functools.cached_property
    def _folded_values(self) -> dict[str, dict[str, str]]:
        return {
            name: {source.strip().casefold(): target for source, target in table.items()}
            for name, table in self.values.items()
        }

    def column_of(self, field_name: str) -> str:
        """The manifest column a field is read from (for error messages)."""
        return self.columns.get(field_name, field_name)

    def unused_columns(self, present: list[str]) -> list[str]:
        """Manifest columns no field reads (a typo in the mapping shows up here)."""
        used = {self.column_of(name) for name in self.fields}
        # errors.csv fed back as a manifest brings these along; they are expected.
        expected = {"error_status", "error_message"}
        return [name for name in present if name not in used and name not in expected]

    def check_columns(self, path: Path, present: list[str], source_system_given: bool) -> None:
        """A missing required column is an error for the whole file, and so is a column a
        field reads whose name the header uses twice (which of them is meant?)."""
        counts = Counter(present)  # linear: a header may have 100,000 columns
        for name in self.fields:
            column = self.column_of(name)
            if counts[column] > 1:
                first, second = [i for i, c in enumerate(present, start=1) if c == column][:2]
                raise ManifestError(
                    str(path),
                    f"the header names column {column!r} twice (columns {first} and {second}), "
                    f"and {name} is read from it: rename one of them in the file",
                    column=column,
                )
        required = list(self.required)
        if not source_system_given:
            required.append("source_system")
        missing = [
            self.column_of(name)
            for name in required
            if self.column_of(name) not in present and name not in self.defaults
        ]
        if not missing:
            return
        shown = ", ".join(repr(name) for name in present) or "none"
        hint = ""
        if len(present) == 1 and any(sep in present[0] for sep in ";\t|"):
            hint = " The header looks like one column: pass --delimiter (, ; | or tab)."
        if missing == ["source_system"]:
            hint += " Pass --source-system NAME or add a source_system column."
        raise ManifestError(
            str(path),
            f"required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)} not found; the file has: {shown}.{hint}",
            column=missing[0],
        )


def load_mapping(
    path: Path | None,
    fields: tuple[str, ...] = FIELDS,
    required: tuple[str, ...] = REQUIRED_FIELDS,
) -> ColumnMapping:
    """Read a TOML mapping file; no file means the default column names."""
    if path is None:
        return ColumnMapping(
            columns={name: name for name in fields}, fields=fields, required=required
        )
    try:
        data = tomllib.loads(read_small_file(path, MAPPING_FILE_LIMIT).decode("utf-8"))
    except UnreadableFile as error:
        raise MappingError(str(path), error.reason) from None
    except (OSError, UnicodeDecodeError) as error:
        raise MappingError(str(path), f"cannot be read ({error})") from error
    except tomllib.TOMLDecodeError as error:
        raise MappingError(str(path), f"is not valid TOML ({error})") from error
    unknown_sections = sorted(set(data) - set(SECTIONS))
    if unknown_sections:
        raise MappingError(
            str(path),
            f"unknown section(s) {', '.join(unknown_sections)}; "
            f"use {', '.join(f'[{name}]' for name in SECTIONS)}",
        )
    columns = {name: name for name in fields}
    columns.update(_string_table(path, data, "columns", fields))
    defaults = _string_table(path, data, "defaults", fields)
    formats = _string_table(path, data, "formats", fields)
    for name, form in formats.items():
        if name != "start_at":
            raise MappingError(str(path), f"[formats] {name}: only start_at has a date format")
        if "%" not in form and form not in ("dayfirst", "monthfirst"):
            raise MappingError(
                str(path),
                f"[formats] {name} = {form!r} is not a date format; use strptime codes "
                '(e.g. "%m/%d/%Y %I:%M %p"), "dayfirst" or "monthfirst"',
            )
    return ColumnMapping(
        columns=columns,
        defaults=defaults,
        formats=formats,
        values=_value_maps(path, data, fields),
        skip_without_media=_rows_settings(path, data),
        fields=fields,
        required=required,
    )


def _value_maps(
    path: Path, data: dict[str, object], fields: tuple[str, ...]
) -> dict[str, dict[str, str]]:
    tables = data.get("values", {})
    if not isinstance(tables, dict):
        raise MappingError(str(path), "[values] must hold tables such as [values.type]")
    result: dict[str, dict[str, str]] = {}
    for name, table in tables.items():
        if name not in fields:
            raise MappingError(
                str(path), f"[values.{name}] names unknown field; fields: {', '.join(fields)}"
            )
        if not isinstance(table, dict):
            raise MappingError(
                str(path), f'[values.{name}] must be a table: "value in the file" = "value"'
            )
        result[name] = {}
        for source, target in table.items():
            if isinstance(target, bool):
                target = "true" if target else "false"
            if not isinstance(target, str | int | float):
                raise MappingError(str(path), f"[values.{name}] {source!r} must map to a string")
            result[name][source] = str(target)
    return result


def _rows_settings(path: Path, data: dict[str, object]) -> bool:
    table = data.get("rows", {})
    if not isinstance(table, dict):
        raise MappingError(str(path), "[rows] must be a table")
    unknown = sorted(set(table) - {"skip_without_media"})
    if unknown:
        raise MappingError(
            str(path),
            f"[rows] has unknown setting(s) {', '.join(unknown)}; known: skip_without_media",
        )
    skip = table.get("skip_without_media", False)
    if not isinstance(skip, bool):
        raise MappingError(str(path), "[rows] skip_without_media must be true or false")
    return skip


def _string_table(
    path: Path, data: dict[str, object], section: str, fields: tuple[str, ...]
) -> dict[str, str]:
    table = data.get(section, {})
    if not isinstance(table, dict):
        raise MappingError(str(path), f"[{section}] must be a table")
    result: dict[str, str] = {}
    for key, value in table.items():
        if key not in fields:
            raise MappingError(
                str(path), f"[{section}] names unknown field {key!r}; fields: {', '.join(fields)}"
            )
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, str | int | float):
            raise MappingError(str(path), f"[{section}] {key} must be a string")
        result[key] = str(value)
    return result
