"""How an engagement looks on the wire: the API document, its ETag, its processing status.

Everything here is pure: the caller passes the time (``now``), so a test can walk an
engagement through QUEUED, PROCESSING and COMPLETED without waiting.

    >>> format_timestamp(0)
    '1970-01-01T00:00:00.000Z'
    >>> etag_matches('W/"abc", "def"', '"abc"')
    True
"""

from __future__ import annotations

import hashlib
import json
import secrets
import string
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone

from importer.rows import contract
from importer.sandbox.store import Engagement


def render(
    engagement: Engagement, now: float, step_seconds: float, expand: Iterable[str] = ()
) -> dict[str, object]:
    """The engagement as the API shows it at ``now``; expand keys only when asked for."""
    status, since = processing_status(engagement, now, step_seconds)
    document: dict[str, object] = {
        "object": "engagement",
        "id": engagement.id,
        "title": engagement.title,
        "engagement_type": engagement.engagement_type,
        "processing_status": status,
        "is_private": engagement.is_private,
        "created_at": format_timestamp(engagement.created_at),
        "updated_at": format_timestamp(max(since, engagement.updated_at)),
        "description": None,
        "data_source": "api",
        "is_internal": False,
        "engagement_at": engagement.start_at,
        "start_at": engagement.start_at,
        "end_at": None,
        "duration_seconds": None,
        "meeting_url": None,
        "owner_user_id": None,
        "host_user_id": None,
        "external_id": engagement.external_id,
        "source_system": engagement.source_system,
    }
    for name in expand:
        document[name] = expanded_value(engagement, name)
    return document


def admin_view(engagement: Engagement, now: float, step_seconds: float) -> dict[str, object]:
    """The full engagement plus what only the sender knows (participants, workflows)."""
    document = render(engagement, now, step_seconds, contract.EXPAND_VALUES)
    document["participants"] = engagement.participants
    document["run_workflows"] = engagement.run_workflows
    return document


def processing_status(engagement: Engagement, now: float, step_seconds: float) -> tuple[str, float]:
    """The status at ``now`` and when it began: QUEUED, PROCESSING, then COMPLETED/FAILED."""
    elapsed = now - engagement.created_at
    if elapsed < step_seconds:
        return "QUEUED", engagement.created_at
    if elapsed < 2 * step_seconds:
        return "PROCESSING", engagement.created_at + step_seconds
    final = "FAILED" if "broken" in engagement.media_url.lower() else "COMPLETED"
    return final, engagement.created_at + 2 * step_seconds


def expanded_value(engagement: Engagement, name: str) -> object:
    """The value of one ``expand`` key; the sandbox knows no companies, users or signals."""
    if name == "transcript":
        return engagement.transcript_text
    if name == "media_url":
        return engagement.media_url
    if name == "contacts":
        return [{"id": contact_id} for contact_id in engagement.contact_ids]
    if name == "owner":
        return None
    return []


def format_timestamp(moment: float | datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z, as the API answers."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, timezone.utc)
    utc = moment.astimezone(timezone.utc)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def etag_of(document: Mapping[str, object]) -> str:
    """A strong ETag for one rendering of an engagement."""
    digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
    return f'"{digest[:32]}"'


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names this ETag (weak or strong) or is ``*``."""
    if not header:
        return False
    candidates = [part.strip().removeprefix("W/") for part in header.split(",")]
    return "*" in candidates or etag in candidates


def new_engagement_id() -> str:
    """``ngmt_`` and 24 random letters and digits."""
    alphabet = string.ascii_letters + string.digits
    return "ngmt_" + "".join(secrets.choice(alphabet) for _ in range(24))
