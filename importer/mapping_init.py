"""``importer init``: guess a mapping file from a CRM export's column names.

Exports name the same thing many ways ("Recording URL", "Call Recording", "Media Link");
this module knows the common ones and writes a commented TOML file the user can correct.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from importer.mapping import FIELDS, REQUIRED_FIELDS

SYNONYMS: dict[str, tuple[str, ...]] = {
    "id": (
        "id",
        "activity id",
        "call id",
        "record id",
        "recording id",
        "meeting id",
        "engagement id",
        "task id",
        "event id",
        "external id",
        "uuid",
    ),
    "type": ("type", "activity type", "call type", "engagement type", "kind", "category"),
    "title": (
        "title",
        "subject",
        "name",
        "call subject",
        "meeting title",
        "topic",
        "activity subject",
        "description",
    ),
    "media_url": (
        "media url",
        "recording url",
        "recording link",
        "call recording",
        "recording",
        "audio url",
        "video url",
        "media link",
        "media",
        "file url",
    ),
    "start_at": (
        "start at",
        "start",
        "start time",
        "call date",
        "date",
        "activity date",
        "start date time",
        "started at",
        "meeting date",
        "created date",
        "timestamp",
    ),
    "is_private": ("is private", "private", "confidential", "visibility private"),
    "participants": ("participants", "attendees", "invitees", "contacts", "people", "guests"),
    "transcript_text": ("transcript text", "transcript", "notes transcript"),
    "transcript_path": ("transcript path", "transcript file", "transcript filename"),
    "source_system": ("source system", "source", "system", "crm"),
    "contact_ids": ("contact ids", "askelephant contact ids"),
}


def normalise(name: str) -> str:
    """'Recording_URL ' -> 'recording url': case, separators and spaces folded."""
    return re.sub(r"[\s_\-./]+", " ", name.strip().lower()).strip()


@dataclass(frozen=True)
class MappingGuess:
    """Which column each field comes from, and what was left unmatched."""

    columns: dict[str, str]
    unmapped_fields: list[str]
    unused_columns: list[str]


def guess_mapping(headers: list[str]) -> MappingGuess:
    """Match headers to fields, best synonym first; each column is used at most once."""
    by_name = {normalise(h): h for h in headers}
    used: set[str] = set()
    columns: dict[str, str] = {}
    for field in FIELDS:
        for synonym in SYNONYMS[field]:
            header = by_name.get(synonym)
            if header is not None and header not in used:
                columns[field] = header
                used.add(header)
                break
    unmapped = [f for f in FIELDS if f not in columns]
    unused = [h for h in headers if h not in used]
    return MappingGuess(columns, unmapped, unused)


def render_mapping(guess: MappingGuess, manifest: str) -> str:
    """The guess as a commented TOML mapping file."""
    lines = [
        f"# Mapping for {manifest}, guessed by `importer init`: check every line.",
        '# [columns]: field = "column in the manifest".',
        "[columns]",
    ]
    for field in FIELDS:
        if field in guess.columns:
            lines.append(f"{field} = {_toml_string(guess.columns[field])}")
        else:
            need = "required" if field in REQUIRED_FIELDS else "optional"
            lines.append(f'# {field} = "..."   # not found ({need})')
    lines += [
        "",
        "# [defaults]: used when a column is absent or a cell is blank.",
        "[defaults]",
    ]
    if "type" not in guess.columns:
        lines.append('type = "CALL"            # or "MEETING"')
    if "source_system" not in guess.columns:
        lines.append('# source_system = "salesforce"   # or pass --source-system')
    if guess.unused_columns:
        lines += ["", "# Columns not used: " + ", ".join(guess.unused_columns)]
    return "\n".join(lines) + "\n"


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
