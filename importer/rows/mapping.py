"""Which manifest column feeds which field, and per-manifest defaults, from a TOML file.

# mapping.toml
[columns]
id = "Activity ID"          # field = "column in the manifest"
start_at = ["Date", "Time"] # or a list: the cells joined with a space, then read
participants = ["Prospect Email", "User Email"]   # every person, in order, each once

[defaults]
type = "CALL"               # used when the column is absent or the cell is blank
source_system = "salesforce"

[formats]
start_at = "%m/%d/%Y %I:%M %p"   # strptime format; or "dayfirst" / "monthfirst"
timezone = "America/New_York"    # the zone of times written without an offset

[values.type]               # a cell's value, as the CRM writes it, to the field's value
Inbound = "CALL"
"Video Meeting" = "MEETING"

[rows]
skip_without_media = true   # a row without a media URL is skipped, not invalid
"""

from __future__ import annotations

import functools
import operator
import sys
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from importer.errors import ManifestError, MappingError, UnreadableFile
from importer.small_files import MAPPING_FILE_LIMIT, read_small_file

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
JOINED_FIELDS = {"id": "|", "start_at": " ", "participants": "\n"}
"""Fields a list of columns may feed, and how their cells are joined: an id from several
columns is ``Meeting ID|Start Time`` (the cells as written), a date and a time are read as
one value, and people from several columns are one list."""


def join_cells(field_name: str, cells: list[str]) -> str:
    """One value from several cells: blank ones left out, except in an id, whose parts keep
    their places (``854 1234 5678|`` never passes for the id ``854 1234 5678``)."""
    parts = [cell.strip() for cell in cells]
    if field_name == "id":
        return JOINED_FIELDS["id"].join(parts) if any(parts) else ""
    return JOINED_FIELDS[field_name].join(part for part in parts if part)


TIMEZONE_KEY = "timezone"
"""``[formats] timezone`` (or ``[defaults] timezone``): the zone of naive times."""


@dataclass(frozen=True)
class ColumnMapping:
    """Field name to manifest column name, plus default values for fields."""

    columns: dict[str, str] = field(default_factory=lambda: {name: name for name in FIELDS})
    joined: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Fields read from several columns (``start_at = ["Date", "Time"]``), joined with
    ``JOINED_FIELDS``'s separator; ``columns`` then names them for messages."""
    timezone: str | None = None
    """``[formats] timezone``: the zone of start_at values written without an offset."""
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
        return {name: values[0] for name, values in self.field_columns([cells]).items()}

    def field_columns(self, rows: Sequence[MappingABC[str, str]]) -> dict[str, list[str]]:
        """``fields_of`` for a batch at once: each field's values, in the rows' order."""

        def cells_of(column: str) -> Sequence[str]:
            try:  # every row has the column, nearly always: taken in C
                return list(map(operator.itemgetter(column), rows))
            except KeyError:
                return [cells.get(column, "") for cells in rows]

        return self._field_columns(cells_of)

    def field_columns_of(
        self, header: Sequence[str], columns: Sequence[Sequence[str]]
    ) -> dict[str, list[str]]:
        """``field_columns`` of the rows ``dict(zip(header, cells))`` of these columns, read
        from the columns themselves (of a name used twice, the last: as such a dict keeps)."""
        where = {name: index for index, name in enumerate(header)}
        blank = [""] * (len(columns[0]) if columns else 0)
        return self._field_columns(
            lambda column: columns[where[column]] if column in where else blank
        )

    def _field_columns(self, cells_of: Callable[[str], Sequence[str]]) -> dict[str, list[str]]:
        """Each field's values, from each column's cells in the rows' order (``cells_of``)."""
        fields: dict[str, list[str]] = {}
        for name, column, folded, default in self._readers:
            if isinstance(column, tuple):
                parts = zip(*map(cells_of, column), strict=True)
                values = [join_cells(name, list(cells)) for cells in parts]
            else:
                values = list(cells_of(column))
            if folded is not None:
                values = [folded.get(value.strip().casefold(), value) for value in values]
            if default is not None:
                values = [value if value.strip() else default for value in values]
            fields[name] = values
        return fields

    @functools.cached_property
    def _readers(
        self,
    ) -> tuple[tuple[str, str | tuple[str, ...], dict[str, str] | None, str | None], ...]:
        """Per field, worked out once (``fields_of`` runs for every row): its column (or
        columns), its folded value map and its default, if any."""
        return tuple(
            (
                name,
                self.joined.get(name) or self.columns.get(name, name),
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
        """The manifest column a field is read from (for error messages); for a field read
        from several columns, their names joined with `` + ``."""
        joined = self.joined.get(field_name)
        return " + ".join(joined) if joined else self.columns.get(field_name, field_name)

    def columns_of(self, field_name: str) -> tuple[str, ...]:
        """Every manifest column a field is read from."""
        return self.joined.get(field_name) or (self.columns.get(field_name, field_name),)

    def value_of(self, field_name: str, cells: MappingABC[str, str]) -> str:
        """The field's cell, or its cells joined (no value map, no default)."""
        columns = self.columns_of(field_name)
        if len(columns) == 1:
            return cells.get(columns[0], "")
        return join_cells(field_name, [cells.get(c, "") for c in columns])

    def parts_of(self, field_name: str, cells: MappingABC[str, str]) -> list[str]:
        """The field's cells one by one (people from several columns are read column by
        column: one cell may be a JSON list)."""
        return [cells.get(column, "") for column in self.columns_of(field_name)]

    def unused_columns(self, present: list[str]) -> list[str]:
        """Manifest columns no field reads (a typo in the mapping shows up here)."""
        used = {column for name in self.fields for column in self.columns_of(name)}
        # errors.csv fed back as a manifest brings these along; they are expected.
        expected = {"error_status", "error_message"}
        return [name for name in present if name not in used and name not in expected]

    def check_columns(self, path: Path, present: list[str], source_system_given: bool) -> None:
        """A missing required column is an error for the whole file, and so is a column a
        field reads whose name the header uses twice (which of them is meant?)."""
        counts = Counter(present)  # linear: a header may have 100,000 columns
        for name in self.fields:
            for column in self.columns_of(name):
                if counts[column] > 1:
                    first, second = [i for i, c in enumerate(present, start=1) if c == column][:2]
                    raise ManifestError(
                        str(path),
                        f"the header names column {column!r} twice (columns {first} and "
                        f"{second}), and {name} is read from it: rename one of them in the file",
                        column=column,
                    )
        required = list(self.required)
        if not source_system_given:
            required.append("source_system")
        names = set(present)
        missing = [
            column
            for name in required
            if name not in self.defaults
            for column in self.columns_of(name)
            if column not in names
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
    joined = _joined_columns(path, data, fields)
    columns.update(_string_table(path, data, "columns", fields, lists=set(joined)))
    columns.update({name: " + ".join(names) for name, names in joined.items()})
    defaults = _string_table(path, data, "defaults", (*fields, TIMEZONE_KEY))
    formats = _string_table(path, data, "formats", (*fields, TIMEZONE_KEY))
    timezone = _timezone(path, formats.pop(TIMEZONE_KEY, None), defaults.pop(TIMEZONE_KEY, None))
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
        joined=joined,
        timezone=timezone,
        defaults=defaults,
        formats=formats,
        values=_value_maps(path, data, fields),
        skip_without_media=_rows_settings(path, data),
        fields=fields,
        required=required,
    )


def _timezone(path: Path, formats: str | None, defaults: str | None) -> str | None:
    """The mapping's zone, from ``[formats]`` or ``[defaults]`` (they must agree)."""
    if formats and defaults and formats != defaults:
        raise MappingError(
            str(path),
            f"[formats] timezone = {formats!r} and [defaults] timezone = {defaults!r} "
            "disagree: keep one",
        )
    zone = formats or defaults
    if zone is None:
        return None
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise MappingError(
            str(path),
            f"[formats] timezone = {zone!r} is not a time zone; use an IANA name such as "
            '"UTC" or "America/New_York"',
        ) from None
    return zone


def _joined_columns(
    path: Path, data: dict[str, object], fields: tuple[str, ...]
) -> dict[str, tuple[str, ...]]:
    """``[columns]`` entries that are lists: fields read from several columns."""
    table = data.get("columns", {})
    if not isinstance(table, dict):
        raise MappingError(str(path), "[columns] must be a table")
    joined: dict[str, tuple[str, ...]] = {}
    for name, value in table.items():
        if not isinstance(value, list):
            continue
        if name not in JOINED_FIELDS or name not in fields:
            raise MappingError(
                str(path),
                f"[columns] {name} is a list, but only {', '.join(JOINED_FIELDS)} can be read "
                "from several columns",
            )
        if not value or not all(isinstance(column, str) and column for column in value):
            raise MappingError(
                str(path), f'[columns] {name} must list column names, e.g. ["Date", "Time"]'
            )
        if len(set(value)) < len(value):
            raise MappingError(str(path), f"[columns] {name} names a column twice")
        joined[name] = tuple(value)
    return joined


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
    path: Path,
    data: dict[str, object],
    section: str,
    fields: tuple[str, ...],
    lists: Collection[str] = (),
) -> dict[str, str]:
    table = data.get(section, {})
    if not isinstance(table, dict):
        raise MappingError(str(path), f"[{section}] must be a table")
    result: dict[str, str] = {}
    for key, value in table.items():
        if key in lists:
            continue  # read by _joined_columns
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
