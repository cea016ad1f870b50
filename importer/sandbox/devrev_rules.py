"""The sandbox's DevRev face: the published request rules and request reading.

Errors are DevRev's shape (``DevRevError``); a create body is judged by ``create_problem``
against the rules DevRev publishes, and nothing more: no length limit on any text.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from starlette.requests import ClientDisconnect, Request

ENGAGEMENT_TYPES = ("call", "default", "email", "linked_in", "offline")
MEMBERS_MAX = 50
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
PARENT_ID = re.compile(
    r"don:core:[A-Za-z0-9._-]+:devo/[A-Za-z0-9._-]+:(account|opportunity)/([A-Za-z0-9._-]+)\Z"
    r"|(ACC|OPP)-(\d+)\Z"
)
"""A parent DevRev takes: an account or opportunity, full id or display id."""


class DevRevError(Exception):
    """An error answer in DevRev's shape."""

    def __init__(
        self,
        status: int,
        kind: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        self.status, self.kind, self.message = status, kind, message
        self.headers = dict(headers or {})
        self.extra = extra
        """DevRev's other error fields: ``field_name``, ``allowed_values``, ``retry_after``."""
        super().__init__(message)

    def body(self) -> dict[str, Any]:
        """As DevRev answers it."""
        return {"type": self.kind, "message": self.message, **self.extra}


def create_problem(body: Mapping[str, Any]) -> DevRevError | None:
    """The first published rule a create body breaks, said as DevRev would; None: valid."""
    for name in ("title", "parent"):
        value = body.get(name)
        if not isinstance(value, str) or not value.strip():
            return DevRevError(
                400, "missing_required_field", f"{name} is required", field_name=name
            )
    if PARENT_ID.match(body["parent"]) is None:
        return DevRevError(
            400,
            "invalid_field",
            "parent must be an account or an opportunity (a don:core id, ACC-n or OPP-n)",
            field_name="parent",
        )
    scheduled = body.get("scheduled_date")
    if scheduled is not None and (not isinstance(scheduled, str) or parse_date(scheduled) is None):
        return DevRevError(400, "bad_request", "scheduled_date must be an RFC 3339 date-time")
    members = body.get("members")
    if members is not None:
        if not isinstance(members, list) or len(members) > MEMBERS_MAX:
            return DevRevError(
                400, "bad_request", f"members must be a list of at most {MEMBERS_MAX} user ids"
            )
        if not all(isinstance(m, str) and m.strip() for m in members):
            return DevRevError(400, "bad_request", "members must be user ids")
    kind = body.get("engagement_type")
    if kind is not None and kind not in ENGAGEMENT_TYPES:
        return DevRevError(
            400,
            "invalid_enum_value",
            f"engagement_type must be one of {', '.join(ENGAGEMENT_TYPES)}",
            field_name="engagement_type",
            allowed_values=list(ENGAGEMENT_TYPES),
        )
    for name in ("external_ref", "external_url", "description"):
        if name in body and not isinstance(body[name], str):
            return DevRevError(400, "bad_request", f"{name} must be a string")
    return None


def is_opportunity(parent: str) -> bool:
    """The sandbox keeps no opportunities: any well-formed opportunity id is taken."""
    match = PARENT_ID.match(parent)
    return match is not None and (match.group(1) == "opportunity" or match.group(3) == "OPP")


def parse_date(value: str) -> datetime | None:
    text = value.strip()
    if len(text) < 20 or text[10] not in "Tt":
        return None  # RFC 3339 needs the time and an offset
    try:
        moment = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "Zz" else text)
    except ValueError:
        return None
    return moment if moment.tzinfo else None


async def json_object(request: Request) -> dict[str, Any]:
    try:
        raw = await request.body()
    except ClientDisconnect:
        raise DevRevError(499, "client_closed", "the client went away mid-body") from None
    try:
        body = json.loads(raw.decode("utf-8")) if raw else {}
    except (ValueError, UnicodeDecodeError) as error:
        raise DevRevError(400, "bad_request", f"the body is not valid JSON ({error})") from None
    if not isinstance(body, dict):
        raise DevRevError(400, "bad_request", "the body must be a JSON object")
    return body


async def list_query(request: Request, lists: tuple[str, ...]) -> dict[str, Any]:
    """A list call's parameters: the JSON body of a POST, or the query string of a GET
    (``lists`` repeat there; ``limit``, ``cursor`` and ``mode`` are single)."""
    if request.method == "POST":
        return await json_object(request)
    params = request.query_params
    return {
        **{name: params.getlist(name) for name in lists},
        **{name: params.get(name) for name in ("limit", "cursor", "mode")},
    }


def string_list(value: object, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise DevRevError(400, "bad_request", f"{name} must be a list of strings")
    return value


def page_limit(value: object) -> int:
    if value is None or value == "":
        return DEFAULT_LIMIT
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_LIMIT:
        raise DevRevError(400, "bad_request", f"limit must be 1 to {MAX_LIMIT}, not {value!r}")
    return number


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"devrev:{seq}".encode()).decode().rstrip("=")


def decode_cursor(value: object) -> int | None:
    if not value:
        return None
    try:
        text = base64.urlsafe_b64decode(str(value) + "=" * (-len(str(value)) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        text = ""
    label, _, seq = text.partition(":")
    if label != "devrev" or not seq.isdigit():
        raise DevRevError(400, "bad_request", "cursor is not one this server gave out")
    return int(seq)
