"""What a create request will carry, said for people before it is sent (``importer plan``).

The API has no update: a row that lands under the wrong instant, without one of its people
or with a person's name as its title stays wrong. So the plan shows a few requests as they
will be sent, the start both in the run's zone and in UTC, and ``plan --out`` carries every
field of every request.

    >>> print(start_both_ways("2024-03-05T13:30:00+00:00", "Europe/Paris"))
    2024-03-05 14:30 Europe/Paris = 2024-03-05 13:30 UTC
    >>> people([{"name": "Ana Ng", "email": "ana@acme.com"}, {"email": "lee@acme.com"}])
    'Ana Ng <ana@acme.com>, lee@acme.com'
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PREVIEW_ROWS = 3
"""Requests the plan shows in full."""
PREVIEW_FIELDS = {
    "title": ("title",),
    "type": ("type", "engagement_type"),
    "start_at": ("start_at", "scheduled_date"),
    "participants": ("participants", "members"),
}
"""What a person checks first (what the row is called, what it is, when, who was there),
and the request fields that carry it: AskElephant's, then DevRev's."""


def start_both_ways(start_at: str, timezone: str) -> str:
    """``2024-03-05 14:30 Europe/Paris = 2024-03-05 13:30 UTC`` (only UTC when it is UTC)."""
    try:
        instant = dt.datetime.fromisoformat(start_at.replace("Z", "+00:00"))
    except ValueError:
        return start_at
    utc = instant.astimezone(dt.timezone.utc)
    utc_text = f"{utc:%Y-%m-%d %H:%M} UTC"
    if timezone.upper() == "UTC":
        return utc_text
    try:
        local = utc.astimezone(ZoneInfo(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        return utc_text
    return f"{local:%Y-%m-%d %H:%M} {timezone} = {utc_text}"


def people(participants: Any) -> str:
    """Each participant as ``Name <email>``, ``Name`` or ``email``, comma-separated."""
    if not isinstance(participants, list):
        return ""
    said = []
    for person in participants:
        if not isinstance(person, dict):
            said.append(str(person))
            continue
        name, email = person.get("name") or "", person.get("email") or ""
        said.append(f"{name} <{email}>" if name and email else name or email)
    return ", ".join(said)


def field_value(payload: dict[str, Any], name: str) -> Any:
    """The request's value for one of ``PREVIEW_FIELDS``, whichever target's field holds it."""
    return next((payload[c] for c in PREVIEW_FIELDS[name] if c in payload), None)


def preview_lines(payload: dict[str, Any], timezone: str) -> list[str]:
    """The fields a person checks first, one line each, as the request will carry them."""
    lines = []
    for name in PREVIEW_FIELDS:
        value = field_value(payload, name)
        if name == "start_at":
            shown = start_both_ways(str(value), timezone) if value else "(none)"
        elif name == "participants":
            shown = people(value) or "(none)"
        else:
            shown = str(value) if value not in (None, "") else "(blank)"
        lines.append(f"{name:<12}  {shown}")
    return lines


def request_json(payload: dict[str, Any] | None) -> str:
    """Every field of the request, as sent (a ``plan --out`` cell)."""
    return json.dumps(payload, ensure_ascii=False, sort_keys=True) if payload else ""
