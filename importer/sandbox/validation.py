"""The documented request rules the sandbox judges offline: create bodies and contact ids.

Each function returns every broken rule as a ``FieldProblem`` (an empty list when the
request is fine); handlers turn a non-empty list into one 422. The rules that need the
network (where a media URL's host points, what it serves) are in ``sandbox.media``.

    >>> [p.field for p in create_problems({"type": "CALL"})]
    ['title', 'source_system', 'external_id', 'media_url', 'run_workflows']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from importer.rows import contract
from importer.rows.contract import FieldProblem
from importer.rows.dates import parse_timestamp

REQUIRED_CREATE_FIELDS = (
    "type",
    "title",
    "source_system",
    "external_id",
    "media_url",
    "run_workflows",
)
TEXT_LIMITS = (
    ("title", contract.TITLE_MAX_CHARS),
    ("source_system", contract.SOURCE_SYSTEM_MAX_CHARS),
    ("external_id", contract.EXTERNAL_ID_MAX_CHARS),
)


def create_problems(body: Mapping[str, Any]) -> list[FieldProblem]:
    """Every documented rule a create body breaks that can be judged offline."""
    found: list[FieldProblem | None] = [
        FieldProblem(name, "required", f"{name} is required")
        for name in REQUIRED_CREATE_FIELDS
        if name not in body
    ]
    if "type" in body:
        found.append(contract.check_engagement_type(body["type"]))
    for name, limit in TEXT_LIMITS:
        if name in body:
            found.append(contract.check_text_length(name, body[name], limit))
    if "media_url" in body:
        found.append(contract.check_media_url(body["media_url"]))
    for name in ("run_workflows", "is_private"):
        if name in body:
            found.append(_check_boolean(name, body[name]))
    if "start_at" in body:
        found.append(_check_start_at(body["start_at"]))
    if "transcript_text" in body:
        found.append(_check_transcript(body["transcript_text"]))
    if "participants" in body:
        found.extend(participant_problems(body["participants"]))
    return [p for p in found if p is not None]


def participant_problems(value: object) -> list[FieldProblem]:
    """Objects with a name and/or a valid email, optional phone, at most one owner."""
    if not isinstance(value, list):
        return [FieldProblem("participants", "type", "participants must be a list of objects")]
    problems: list[FieldProblem] = []
    owners = 0
    for index, item in enumerate(value):
        where = f"participants[{index}]"
        if not isinstance(item, dict):
            problems.append(FieldProblem(where, "type", f"{where} must be an object"))
            continue
        for key in ("name", "email", "phone"):
            if key in item and not isinstance(item[key], str):
                problems.append(FieldProblem(f"{where}.{key}", "type", f"{key} must be a string"))
        name, email = item.get("name"), item.get("email")
        has_name = isinstance(name, str) and bool(name.strip())
        has_email = isinstance(email, str) and bool(email.strip())
        if not has_name and not has_email:
            problems.append(FieldProblem(where, "required", f"{where} needs a name or an email"))
        if has_email and not contract.check_email(str(email)):
            message = f"{email!r} is not a valid e-mail address"
            problems.append(FieldProblem(f"{where}.email", "invalid_email", message))
        if "is_owner" in item:
            problem = _check_boolean(f"{where}.is_owner", item["is_owner"])
            problems.extend([problem] if problem else [])
            owners += item["is_owner"] is True
    if owners > 1:
        message = f"at most one participant may have is_owner true ({owners} do)"
        problems.append(FieldProblem("participants", "multiple_owners", message))
    return problems


def contact_id_problems(value: object, is_known: Callable[[str], bool]) -> list[FieldProblem]:
    """A list of well-formed, known contact ids; unknown ones are named together."""
    if not isinstance(value, list):
        return [FieldProblem("contact_ids", "required", "contact_ids must be a list of strings")]
    problems: list[FieldProblem] = []
    unknown: list[str] = []
    for index, item in enumerate(value):
        where = f"contact_ids[{index}]"
        if not isinstance(item, str):
            problems.append(FieldProblem(where, "type", f"{where} must be a string"))
        elif not contract.CONTACT_ID_PATTERN.match(item):
            message = f"{item!r} is not a contact id (cnt_ and letters or digits)"
            problems.append(FieldProblem(where, "invalid_id", message))
        elif not is_known(item):
            unknown.append(item)
    if unknown:
        message = f"unknown contact ids: {', '.join(unknown)}"
        problems.append(FieldProblem("contact_ids", "unknown_contact", message))
    return problems


def _check_boolean(name: str, value: object) -> FieldProblem | None:
    if isinstance(value, bool):
        return None
    return FieldProblem(name, "type", f"{name} must be true or false, not {value!r}")


def _check_start_at(value: object) -> FieldProblem | None:
    if isinstance(value, str) and parse_timestamp(value) is not None:
        return None
    message = f"start_at must be an ISO 8601 date-time such as 2024-05-01T14:30:00Z, not {value!r}"
    return FieldProblem("start_at", "invalid_datetime", message)


def _check_transcript(value: object) -> FieldProblem | None:
    if not isinstance(value, str):
        return FieldProblem("transcript_text", "type", "transcript_text must be a string")
    return contract.check_transcript(value)
