"""Mapping and validating rows: manifest cells in, a create request or row errors out.

Pure: no network, no disk. Reading a ``transcript_path`` is done by a function the caller
passes in, so tests give a dictionary and the pipeline gives the file system.

    >>> cells = {"id": "7", "type": "call", "title": "Intro", "source_system": "salesforce",
    ...          "media_url": "https://media.example.com/7.mp3", "start_at": "2024-05-01 14:30"}
    >>> row = map_row(cells, 2, MappingOptions(timezone="UTC"))
    >>> row.payload["external_id"], row.payload["type"], row.payload["start_at"]
    ('salesforce:7', 'CALL', '2024-05-01T14:30:00+00:00')
    >>> print(map_row({**cells, "title": " "}, 3, MappingOptions()).errors[0])
    manifest, row 3, column 'title': title must not be empty
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from importer.errors import InvalidCell, TranscriptUnavailable
from importer.rows import contract
from importer.rows.cells import EXCEL_ROUNDED, has_lone_surrogate, hidden_character, printable_text
from importer.rows.dates import DateStyle, parse_start_at
from importer.rows.hashes import payload_hash, text_payload_hash
from importer.rows.mapping import ColumnMapping
from importer.rows.participants import merge_people, parse_participants

TranscriptReader = Callable[[str], str]
"""Reads a transcript_path cell; raises ``TranscriptUnavailable`` with a reason."""
RowMapper = Callable[..., "MappedRow"]
"""``map_row``'s signature: a target's field table turning cells into its create request."""

TRUE_WORDS = {"true", "yes", "y", "1", "t"}
FALSE_WORDS = {"false", "no", "n", "0", "f"}


@dataclass(frozen=True)
class MappingOptions:
    """How rows become requests; fixed for one run."""

    source_system: str | None = None
    """Used when the row has no source_system cell."""
    prefix: str | None = None
    """external_id prefix; None means ``<source_system>:``."""
    timezone: str | None = None
    """Zone for naive start_at values; None: a naive value is invalid (never read as UTC)."""
    run_workflows: bool = False
    columns: ColumnMapping = field(default_factory=ColumnMapping)
    skip_without_media: bool = False
    """A row with a blank media URL is ``skipped`` (nothing to import), not invalid."""
    row_mapper: RowMapper | None = None
    """The target's field table (e.g. DevRev's); None maps rows with ``map_row`` below."""
    dates: DateStyle = field(default_factory=DateStyle)
    """How start_at cells write dates: a format, or day-first / month-first."""


@dataclass(frozen=True)
class RowError:
    """One broken rule in one cell, said so the user can fix the cell."""

    file: str
    row: int
    column: str
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}, row {self.row}, column {self.column!r}: {self.message}"


@dataclass(frozen=True)
class MappedRow:
    """The outcome of mapping one manifest row."""

    file: str
    row_number: int
    cells: dict[str, str]
    external_id: str | None
    payload: dict[str, Any] | None
    errors: tuple[RowError, ...] = ()
    contact_ids: tuple[str, ...] | None = None
    """None: leave contacts alone; empty: clear them."""
    skip_reason: str | None = None
    """Why the row has nothing to import (it is then ``skipped``, never sent)."""
    source_id: str | None = None
    """The CRM's id of the row, before the prefix: what ties it to earlier imports."""

    @property
    def valid(self) -> bool:
        return not self.errors and self.payload is not None

    @functools.cached_property
    def payload_hash(self) -> str | None:
        return payload_hash(self.payload) if self.payload is not None else None

    def error_text(self) -> str:
        return "; ".join(f"{e.column}: {e.message}" for e in self.errors)

    @classmethod
    def plain(
        cls,
        file: str,
        row_number: int,
        cells: dict[str, str],
        payload: dict[str, Any],
        contact_ids: tuple[str, ...] | None,
        source_id: str,
        payload_hash: str | None = None,
    ) -> MappedRow:
        """A valid row, as ``MappedRow(...)`` makes it (its hash taken now, unless given)."""
        return cls.from_fields(
            {
                "file": file,
                "row_number": row_number,
                "cells": cells,
                "external_id": payload["external_id"],
                "payload": payload,
                "errors": (),
                "contact_ids": contact_ids,
                "skip_reason": None,
                "source_id": source_id,
                "payload_hash": payload_hash or text_payload_hash(payload),
            }
        )

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> MappedRow:
        """The row of these fields (``payload_hash`` may be among them, as computing it would
        set it), made without the frozen dataclass's ``object.__setattr__`` per field: a
        microsecond a row, at a million rows."""
        row = object.__new__(cls)
        object.__setattr__(row, "__dict__", fields)
        return row


def begin_row(
    cells: dict[str, str],
    row_number: int,
    options: MappingOptions,
    file: str,
    structural_problem: str | None,
    undecodable: str = "has bytes that are not UTF-8; save the file as UTF-8 or pass --encoding",
) -> tuple[RowChecker, dict[str, str], bool]:
    """The checker, the field values, and whether some cell is undecodable: how every
    target's mapping starts a row.

    A row of the wrong shape fails on its id; an undecodable cell fails with ``undecodable``
    and counts as blank, so it is not reported twice.
    """
    checker = RowChecker(file, row_number, options.columns)
    values = options.columns.fields_of(cells)
    if structural_problem:
        checker.fail("id", "row_shape", f"the row {structural_problem}")
    # Undecodable bytes arrive as lone surrogates; no other lone surrogate is text either.
    # One search over the whole row first: almost every row has none.
    undecodable_row = has_lone_surrogate("".join(cells.values()))
    if undecodable_row:
        for name, value in values.items():
            if has_lone_surrogate(value):
                checker.fail(name, "encoding", undecodable)
                checker.silenced.add(name)
                values[name] = ""
    return checker, values, undecodable_row


def map_row(
    cells: dict[str, str],
    row_number: int,
    options: MappingOptions,
    *,
    file: str = "manifest",
    read_transcript: TranscriptReader | None = None,
    structural_problem: str | None = None,
) -> MappedRow:
    """Map one row's cells to a create request, or to the errors that prevent it."""
    checker, values, undecodable_row = begin_row(
        cells, row_number, options, file, structural_problem
    )
    source_system = values["source_system"].strip() or (options.source_system or "")
    if not source_system:
        checker.fail("source_system", "required", "is blank; pass --source-system or fill it")
    else:
        checker.contract(
            contract.check_text_length(
                "source_system", source_system, contract.SOURCE_SYSTEM_MAX_CHARS
            )
        )

    external_id = prefixed_external_id(values["id"], source_system, options, checker)

    engagement_type = values["type"].strip().upper()
    if engagement_type not in contract.ENGAGEMENT_TYPES:
        shown = values["type"].strip() or "blank"
        checker.fail("type", "invalid_choice", f"must be CALL or MEETING, not {shown!r}")

    title = values["title"].strip()
    checker.contract(contract.check_text_length("title", title, contract.TITLE_MAX_CHARS))

    media_url = values["media_url"].strip()
    skip_reason = None
    if not media_url and options.skip_without_media:
        skip_reason = "no media URL (a call without a recording): nothing to import"
    else:
        checker.contract(contract.check_media_url(media_url))
    if media_url and _has_credentials(media_url):
        checker.fail(
            "media_url", "credentials", "contains a user name or password; use a signed URL instead"
        )
    # Control and format characters are never printable: the C-level test spares almost
    # every row the per-character look-up.
    invisible = (
        None
        if media_url.isprintable()
        else next((ch for ch in media_url if unicodedata.category(ch) in ("Cc", "Cf")), None)
    )
    if invisible is not None:
        checker.fail(
            "media_url",
            "invisible_character",
            f"contains an invisible character (U+{ord(invisible):04X}); retype or re-copy the URL",
        )

    start_at = ""
    try:
        start_at = parse_start_at(values["start_at"], options.timezone, options.dates)
    except InvalidCell as error:
        checker.fail("start_at", "date_time", str(error))

    is_private = parse_boolean(values["is_private"])
    if is_private is NOT_A_BOOLEAN:
        shown = values["is_private"].strip().lower()
        checker.fail("is_private", "boolean", f"must be true or false, not {shown!r}")

    try:
        participants = participants_of(cells, values["participants"], options)
    except InvalidCell as error:
        checker.fail("participants", "participants", str(error))
        participants = []
    transcript = read_transcript_field(values, read_transcript, checker)

    try:
        contact_ids = parse_contact_ids(values["contact_ids"])
    except InvalidCell as error:
        checker.fail("contact_ids", "contact_ids", str(error))
        contact_ids = None

    errors = tuple(checker.errors)
    payload = request_payload(
        source_system,
        external_id,
        engagement_type,
        title,
        media_url,
        options.run_workflows,
        start_at,
        is_private,
        participants,
        transcript,
    )
    return MappedRow(
        file=file,
        row_number=row_number,
        cells={n: printable_text(v) for n, v in cells.items()} if undecodable_row else cells,
        external_id=external_id,
        payload=None if errors or skip_reason else payload,
        errors=errors,
        contact_ids=contact_ids,
        skip_reason=skip_reason,
        source_id=values["id"].strip() or None,
    )


NOT_A_BOOLEAN: Any = object()
"""``parse_boolean``'s answer for a word that is neither true nor false."""


def parse_boolean(text: str) -> bool | None:
    """``yes``/``no`` and the like; None for a blank cell (the field is left out), else
    ``NOT_A_BOOLEAN``."""
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None if not word else NOT_A_BOOLEAN


def participants_of(
    cells: dict[str, str], value: str, options: MappingOptions
) -> list[dict[str, Any]]:
    """The row's people: its participants cell (``value``), or one list of them from the
    several columns the mapping names, each person once."""
    if "participants" in options.columns.joined:
        parts = options.columns.parts_of("participants", cells)
        return merge_people([parse_participants(part) for part in parts])
    return parse_participants(value)


def request_payload(
    source_system: str,
    external_id: str | None,
    engagement_type: str,
    title: str,
    media_url: str,
    run_workflows: bool,
    start_at: str,
    is_private: bool | None,
    participants: list[dict[str, Any]],
    transcript: str,
) -> dict[str, Any]:
    """A row's create request, its keys always in this order (a preview and ``--out``
    list them so); optional fields only when the row has them."""
    payload: dict[str, Any] = {
        "source_system": source_system,
        "external_id": external_id,
        "type": engagement_type,
        "title": title,
        "media_url": media_url,
        "run_workflows": run_workflows,
        "start_at": start_at,
    }
    if is_private is not None:
        payload["is_private"] = is_private
    if participants:
        payload["participants"] = participants
    if transcript:
        payload["transcript_text"] = transcript
    return payload


class RowChecker:
    """Collects a row's errors, naming the manifest column rather than the API field."""

    def __init__(self, file: str, row: int, columns: ColumnMapping) -> None:
        self.file, self.row, self.columns = file, row, columns
        self.errors: list[RowError] = []
        self.silenced: set[str] = set()
        """Fields already reported as undecodable: their blanked value says nothing more."""

    def fail(self, field_name: str, rule: str, message: str) -> None:
        if field_name in self.silenced:
            return
        column = self.columns.column_of(field_name)
        self.errors.append(RowError(self.file, self.row, column, rule, message))

    def contract(self, problem: contract.FieldProblem | None) -> None:
        if problem is not None:
            field_name = "id" if problem.field == "external_id" else problem.field
            self.fail(field_name, problem.code, problem.message)


def prefixed_external_id(
    raw_id: str, source_system: str, options: MappingOptions, checker: RowChecker
) -> str | None:
    """The row's id with its source prefix, checked (both targets' field tables use it);
    None, with the problem on ``checker``, when it cannot be sent."""
    row_id = raw_id.strip()
    if not row_id:
        checker.fail("id", "required", "is blank; every row needs the CRM's id")
        return None
    hidden = hidden_character(row_id)
    if hidden is not None:
        checker.fail(
            "id",
            "invisible_character",
            f"contains a control or invisible character (U+{ord(row_id[hidden]):04X} at "
            f"position {hidden + 1}); an id must be plain visible text",
        )
        return None
    rounded = EXCEL_ROUNDED.fullmatch(row_id)
    if rounded is not None:
        checker.fail(
            "id",
            "rounded_id",
            f"{row_id!r} is a number Excel rounded to {len(rounded.group(1)) + 1} digits and "
            "wrote in scientific notation: the CRM's id is lost. Export the id column as text "
            "(Excel: format it as Text before saving) and try again",
        )
        return None
    prefix = options.prefix if options.prefix is not None else f"{source_system}:"
    hidden = hidden_character(prefix)
    if hidden is not None:  # the prefix comes from source_system (or --prefix)
        checker.fail(
            "source_system" if options.prefix is None else "id",
            "invisible_character",
            f"the external_id prefix {prefix!r} contains a control or invisible character "
            f"(U+{ord(prefix[hidden]):04X}); an id must be plain visible text",
        )
        return None
    external_id = prefix + row_id
    problem = contract.check_text_length("external_id", external_id, contract.EXTERNAL_ID_MAX_CHARS)
    if problem is not None:
        checker.fail(
            "id",
            problem.code,
            f"external_id {problem.message.split(' ', 1)[1]}"
            if problem.code == "too_long"
            else problem.message,
        )
        return None
    return external_id


def _has_credentials(url: str) -> bool:
    from urllib.parse import urlsplit

    if "@" not in url:
        return False  # a user name or password is always followed by "@": no second parse
    try:
        parts = urlsplit(url)
        return parts.username is not None or parts.password is not None
    except ValueError:
        return False


def parse_contact_ids(text: str) -> tuple[str, ...] | None:
    """Blank: None (leave alone); ``[]``: clear; else ``cnt_`` ids."""
    value = text.strip()
    if not value:
        return None
    if value.startswith("["):
        try:
            items = json.loads(value)
        except (ValueError, RecursionError):
            raise InvalidCell("is not a valid JSON list") from None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise InvalidCell("must be a JSON list of contact id strings")
    else:
        items = [part.strip() for part in re.split(r"[,;\s]+", value) if part.strip()]
    bad = [item for item in items if not contract.CONTACT_ID_PATTERN.match(item)]
    if bad:
        raise InvalidCell(f"{bad[0]!r} is not a contact id (cnt_...)")
    return tuple(dict.fromkeys(items))


def read_transcript_field(
    values: dict[str, str], read_transcript: TranscriptReader | None, checker: RowChecker
) -> str:
    """The transcript, inline or from its file, checked against the API's limits; the
    problem goes on ``checker``."""
    inline, path = values["transcript_text"], values["transcript_path"].strip()
    if inline.strip() and path:
        checker.fail(
            "transcript_path",
            "ambiguous",
            "both transcript_text and transcript_path are set; keep one",
        )
        return ""
    field_name = "transcript_text"
    text = inline
    if path:
        field_name = "transcript_path"
        if read_transcript is None:
            checker.fail(field_name, "unavailable", "transcript files cannot be read here")
            return ""
        try:
            text = read_transcript(path)
        except TranscriptUnavailable as error:
            checker.fail(field_name, "unreadable", str(error))
            return ""
    if not text.strip():
        return ""
    problem = contract.check_transcript(text)
    if problem is not None:
        checker.fail(field_name, problem.code, problem.message)
        return ""
    return text
