"""Reading a request: the API key, the JSON body, and the list parameters.

Each reader answers the value or raises the ``Problem`` (400, or 499 for a client that
went away) the handler would send.

    >>> presented_key("Bearer sk-apik_x.1")
    'sk-apik_x.1'
    >>> decode_cursor(encode_cursor(42))
    42
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from starlette.requests import ClientDisconnect, Request

from importer.rows import contract
from importer.rows.contract import FieldProblem
from importer.sandbox.problems import CLIENT_CLOSED, Problem

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def presented_key(header: str | None) -> str | None:
    """The key from ``Authorization: Bearer KEY`` or a bare ``Authorization: KEY``."""
    if not header or not header.strip():
        return None
    scheme, _, rest = header.strip().partition(" ")
    return rest.strip() if scheme.lower() == "bearer" and rest.strip() else header.strip()


async def json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400."""
    try:
        raw = await request.body()
    except ClientDisconnect:
        # The client went away mid-body (e.g. killed): nobody reads the answer, but the
        # stats should say what happened rather than count a server error.
        detail = "The client closed the connection before sending the whole body"
        raise Problem(CLIENT_CLOSED, "Client Closed Request", detail) from None
    try:
        # JSON on the wire is UTF-8 (RFC 8259); json.loads alone would also take UTF-16/32.
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise Problem(400, "Bad Request", f"The body is not valid JSON ({error})") from None
    if not isinstance(body, dict):
        raise Problem(400, "Bad Request", "The body must be a JSON object")
    return body


def parse_expand(value: str | None) -> list[str]:
    """The ``expand`` names, in order, without repeats; 400 for an unknown one."""
    names = list(dict.fromkeys(n.strip() for n in (value or "").split(",") if n.strip()))
    unknown = [n for n in names if n not in contract.EXPAND_VALUES]
    if unknown:
        allowed = ", ".join(contract.EXPAND_VALUES)
        message = f"unknown expand value(s) {', '.join(unknown)}; allowed: {allowed}"
        raise Problem(400, "Bad Request", message, [FieldProblem("expand", "invalid", message)])
    return names


def parse_limit(value: str | None) -> int:
    """The page size: 1..100, default 20; 400 otherwise."""
    if value is None:
        return DEFAULT_PAGE_SIZE
    if value.strip().isdigit() and 1 <= int(value) <= MAX_PAGE_SIZE:
        return int(value)
    message = f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}, not {value!r}"
    raise Problem(400, "Bad Request", message, [FieldProblem("limit", "invalid", message)])


def encode_cursor(seq: int) -> str:
    """An opaque cursor for 'after this position'."""
    return base64.urlsafe_b64encode(f"after:{seq}".encode()).decode().rstrip("=")


def decode_cursor(value: str | None) -> int:
    """The position a cursor stands for (0 for none); 400 for a cursor we never gave."""
    if not value:
        return 0
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
        label, _, seq = text.partition(":")
        if label == "after" and seq.isdigit():
            return int(seq)
    except (binascii.Error, UnicodeDecodeError):
        pass
    message = "cursor is not one this server gave out"
    raise Problem(400, "Bad Request", message, [FieldProblem("cursor", "invalid", message)])
