"""DevRev's field table: which manifest fields make an ``engagements.create``, and their rules.

Pure, like ``importer.rows.validate``: cells in, a request or the row's errors out.

    =================  ==============================================================
    request field      from
    =================  ==============================================================
    title              ``title`` (required, not blank; no length limit is published)
    parent             ``parent`` (required): a DevRev account or opportunity id, sent as
                       it is, or a CRM account id, which the sender turns into the
                       account DevRev holds under that external reference
    scheduled_date     ``start_at``, as RFC 3339 in UTC (blank: left out)
    engagement_type    ``type``: CALL -> call, MEETING -> default, or one of call,
                       default, email, linked_in, offline (blank: left out)
    members            ``members``: up to 50 DevRev user ids, or ``[defaults] members``
                       (blank: left out)
    external_ref       ``id`` with the prefix, exactly as for AskElephant
    external_url       ``external_url`` (a CRM link), else the ``media_url``
    description        ``description``, else an excerpt of the transcript
    =================  ==============================================================

Only limits DevRev publishes are checked here (at most 50 members, the type's values,
``parent`` being an account or opportunity); whatever else DevRev refuses fails the row
with DevRev's own message. See docs/devrev.md.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit

from importer.errors import InvalidCell
from importer.rows.cells import printable_text
from importer.rows.dates import parse_start_at
from importer.rows.validate import (
    MappedRow,
    MappingOptions,
    TranscriptReader,
    begin_row,
    prefixed_external_id,
    read_transcript_field,
)

FIELDS = (
    "id",
    "type",
    "title",
    "parent",
    "start_at",
    "members",
    "external_url",
    "media_url",
    "description",
    "transcript_text",
    "transcript_path",
    "source_system",
)
REQUIRED_FIELDS = ("id", "title", "parent")

ENGAGEMENT_TYPES = ("call", "default", "email", "linked_in", "offline")
TYPE_FROM_ASKELEPHANT = {"CALL": "call", "MEETING": "default"}
MEMBERS_MAX = 50
"""Published: ``members`` holds at most 50 ids."""
TRANSCRIPT_EXCERPT_CHARS = 10_000
"""Our choice, not a DevRev limit: a transcript becomes a description of at most this."""
# DevRev ids: don:identity:<partition>:devo/<org>:devu/<n>, or the display form DEVU-<n>.
MEMBER_ID = re.compile(r"(don:identity:[A-Za-z0-9._:/-]+|DEVU-\d+)\Z", re.IGNORECASE)
# A parent DevRev holds: don:core:<partition>:devo/<org>:account/<id> (or opportunity/<id>),
# or the display forms ACC-<n> and OPP-<n>. Anything else is a CRM's account id.
DEVREV_PARENT_ID = re.compile(
    r"(don:core:[A-Za-z0-9._-]+:devo/[A-Za-z0-9._-]+:(account|opportunity)/[A-Za-z0-9._-]+"
    r"|ACC-\d+|OPP-\d+)\Z"
)
EXCERPT_MARK = " …"


def map_row(
    cells: dict[str, str],
    row_number: int,
    options: MappingOptions,
    *,
    file: str = "manifest",
    read_transcript: TranscriptReader | None = None,
    structural_problem: str | None = None,
) -> MappedRow:
    """Map one row's cells to an ``engagements.create`` body, or to what prevents it."""
    checker, values, undecodable_row = begin_row(
        cells,
        row_number,
        options,
        file,
        structural_problem,
        undecodable="has bytes that are not UTF-8; save the file as UTF-8",
    )

    payload: dict[str, Any] = {}
    title = values["title"].strip()
    if not title:
        checker.fail("title", "required", "title must not be empty")
    payload["title"] = title

    parent = values["parent"].strip()
    if not parent:
        checker.fail(
            "parent",
            "required",
            "is blank; DevRev files every engagement under an account or opportunity "
            '(a column, or [defaults] parent = "...")',
        )
    payload["parent"] = parent

    if values["start_at"].strip():
        try:
            payload["scheduled_date"] = parse_start_at(
                values["start_at"], options.timezone, options.dates
            )
        except InvalidCell as error:
            checker.fail("start_at", "date_time", str(error))

    try:
        engagement_type = parse_engagement_type(values["type"])
    except InvalidCell as error:
        checker.fail("type", "invalid_choice", str(error))
        engagement_type = None
    if engagement_type:
        payload["engagement_type"] = engagement_type

    try:
        members = parse_members(values["members"])
    except InvalidCell as error:
        checker.fail("members", "members", str(error))
    else:
        if members:
            payload["members"] = members

    source_system = values["source_system"].strip() or (options.source_system or "")
    if not source_system and options.prefix is None:
        checker.fail("source_system", "required", "is blank; pass --source-system or fill it")
    external_id = prefixed_external_id(values["id"], source_system, options, checker)
    payload["external_ref"] = external_id

    link_field = "external_url" if values["external_url"].strip() else "media_url"
    external_url = values[link_field].strip()
    if external_url:
        try:
            payload["external_url"] = check_external_url(external_url)
        except InvalidCell as error:
            checker.fail(link_field, "invalid_url", str(error))

    description = values["description"].strip()
    if description:
        payload["description"] = description
    else:
        transcript = read_transcript_field(values, read_transcript, checker)
        if transcript.strip():
            payload["description"] = excerpt(transcript.strip(), TRANSCRIPT_EXCERPT_CHARS)

    errors = tuple(checker.errors)
    return MappedRow(
        file=file,
        row_number=row_number,
        cells={n: printable_text(v) for n, v in cells.items()} if undecodable_row else cells,
        external_id=external_id,
        payload=None if errors else payload,
        errors=errors,
    )


def is_devrev_parent(value: str) -> bool:
    """Whether ``value`` is already a DevRev account or opportunity id (sent as it is)."""
    return DEVREV_PARENT_ID.match(value.strip()) is not None


def parse_engagement_type(text: str) -> str | None:
    """CALL -> call, MEETING -> default, or a DevRev type as it is; blank -> None."""
    value = text.strip()
    if not value:
        return None
    if value.upper() in TYPE_FROM_ASKELEPHANT:
        return TYPE_FROM_ASKELEPHANT[value.upper()]
    if value.lower() in ENGAGEMENT_TYPES:
        return value.lower()
    raise InvalidCell(
        f"must be CALL, MEETING or one of {', '.join(ENGAGEMENT_TYPES)}, not {value!r}"
    )


def parse_members(text: str) -> list[str]:
    """Up to 50 DevRev user ids, separated by commas, semicolons or spaces; repeats dropped.

    Blank: none (``members`` is optional)."""
    items = [part for part in re.split(r"[,;\s]+", text.strip()) if part]
    bad = [item for item in items if not MEMBER_ID.match(item)]
    if bad:
        raise InvalidCell(f"{bad[0]!r} is not a DevRev user id (don:identity:... or DEVU-123)")
    unique = list(dict.fromkeys(items))
    if len(unique) > MEMBERS_MAX:
        raise InvalidCell(f"has {len(unique)} members; DevRev takes at most {MEMBERS_MAX}")
    return unique


def check_external_url(url: str) -> str:
    """An absolute link back to the source (https, http or an app's own scheme)."""
    if any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") for ch in url):
        raise InvalidCell("contains white space or an invisible character")
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise InvalidCell(f"is not a valid URL ({error})") from None
    if not parts.scheme or not (parts.netloc or parts.path):
        raise InvalidCell(f"{url[:80]!r} is not an absolute URL (e.g. https://crm.example/...)")
    if parts.username is not None or parts.password is not None:
        raise InvalidCell("contains a user name or password")
    return url


def excerpt(text: str, max_chars: int) -> str:
    """The text, or its beginning cut at a word boundary with a mark, within max_chars."""
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars - len(EXCERPT_MARK)]
    space = cut.rfind(" ")
    if space > max_chars // 2:
        cut = cut[:space]
    return cut.rstrip() + EXCERPT_MARK
