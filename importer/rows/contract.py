"""The AskElephant engagements API contract, as documented, in one place.

Both sides use it: the importer validates rows against it before sending, and the sandbox
enforces it on every request. Every function here is pure: values in, values out.

    >>> check_media_url("http://example.com/a.mp3").code
    'https_required'
    >>> check_transcript("ok") is None
    True
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from importer.rows.urlsafety import is_local_name, is_public_address, parse_ip_literal

PRODUCTION_BASE_URL = "https://app.askelephant.ai/api"

ENGAGEMENT_TYPES = ("CALL", "MEETING")
TITLE_MAX_CHARS = 500
SOURCE_SYSTEM_MAX_CHARS = 100
EXTERNAL_ID_MAX_CHARS = 500
TRANSCRIPT_MAX_CHARS = 900_000
TRANSCRIPT_MAX_BYTES = 950_000

SCOPE_WRITE = "engagements:write"
SCOPE_READ = "engagements:read"
SCOPE_PRIVATE_READ = "engagements:private:read"
EXPAND_SCOPES = {"companies": "companies:read", "contacts": "contacts:read", "owner": "users:read"}
EXPAND_VALUES = (
    "companies",
    "contacts",
    "owner",
    "action_items",
    "signals",
    "transcript",
    "media_url",
    "tags",
)
ALL_SCOPES = (SCOPE_WRITE, SCOPE_READ, SCOPE_PRIVATE_READ, *EXPAND_SCOPES.values())

# \Z, not $: "$" also matches before a trailing newline, which no id may carry.
ENGAGEMENT_ID_PATTERN = re.compile(r"^ngmt_[A-Za-z0-9]+\Z")
ENGAGEMENT_ID_MAX = 128
"""Longest engagement id taken from an answer (an assumption: the documented pattern has no
bound, the sandbox's are 29 characters); a longer one is a bad answer, not ledger bloat."""
CONTACT_ID_PATTERN = re.compile(r"^cnt_[A-Za-z0-9]+\Z")
# Deliberately simple: one @, no spaces, a dot in the domain. RFC 5322 in full accepts
# addresses no CRM export contains, and rejecting them is kinder than a server 422.
EMAIL_PATTERN = re.compile(r"^[^@\s<>(),;:\"]+@[^@\s<>(),;:\"]+\.[^@\s<>(),;:\"]+\Z")

# Audio and video file extensions the sandbox accepts when it decides media type offline.
MEDIA_EXTENSIONS = {
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".wav": "audio/wav",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".opus": "audio/opus",
    ".flac": "audio/flac",
    ".aac": "audio/aac",
    ".wma": "audio/x-ms-wma",
    ".webm": "video/webm",
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/quicktime",
    ".mkv": "video/x-matroska",
    ".avi": "video/x-msvideo",
}


@dataclass(frozen=True)
class FieldProblem:
    """One broken rule: the request field, a stable machine code and a sentence for people."""

    field: str
    code: str
    message: str


def check_text_length(field: str, value: object, max_chars: int) -> FieldProblem | None:
    """A required string of 1..max_chars characters."""
    if not isinstance(value, str):
        return FieldProblem(field, "type", f"{field} must be a string")
    if len(value) == 0 or not value.strip():
        return FieldProblem(field, "required", f"{field} must not be empty")
    if len(value) > max_chars:
        return FieldProblem(
            field,
            "too_long",
            f"{field} is {len(value):,} characters; the API allows at most {max_chars:,}",
        )
    return None


def check_transcript(text: str) -> FieldProblem | None:
    """At most 900,000 characters and 950,000 UTF-8 bytes; CJK and emoji hit bytes first."""
    if len(text) > TRANSCRIPT_MAX_CHARS:
        return FieldProblem(
            "transcript_text",
            "too_long",
            f"transcript is {len(text):,} characters; the API allows at most "
            f"{TRANSCRIPT_MAX_CHARS:,}",
        )
    size = utf8_length(text)
    if size > TRANSCRIPT_MAX_BYTES:
        return FieldProblem(
            "transcript_text",
            "too_large",
            f"transcript is {size:,} bytes in UTF-8; the API allows at most "
            f"{TRANSCRIPT_MAX_BYTES:,} bytes",
        )
    return None


def utf8_length(text: str) -> int:
    """Bytes the text takes in UTF-8 (lone surrogates count as the 3 bytes they would take)."""
    return len(text.encode("utf-8", "surrogatepass"))


def check_engagement_type(value: object) -> FieldProblem | None:
    """Only CALL and MEETING can be created through the public API."""
    if value not in ENGAGEMENT_TYPES:
        return FieldProblem(
            "type", "invalid_choice", f"type must be CALL or MEETING, not {value!r}"
        )
    return None


def check_email(value: str) -> bool:
    """A plausible e-mail address."""
    return bool(EMAIL_PATTERN.match(value))


PLAIN_URL = re.compile(r"https://([A-Za-z0-9.-]+)(?:/[!-?A-~]*)?")
"""``https://host/path`` in visible ASCII, without a port, user or ``@``: a URL whose
verdict is its host's."""


def check_media_url(url: object) -> FieldProblem | None:
    """The documented media URL rules that can be judged without the network.

    https only, a host, and not a private, loopback or link-local address literal nor
    ``localhost``. Whether a *name* resolves to such an address, and the content type,
    need the network and are checked elsewhere.
    """
    plain = PLAIN_URL.fullmatch(url) if isinstance(url, str) else None
    if plain is not None:  # most URLs of an export share a few hosts: judged once each
        return _host_verdict(plain[1])
    return _judged_media_url(url)


@functools.lru_cache(maxsize=4096)
def _host_verdict(host: str) -> FieldProblem | None:
    return _judged_media_url(f"https://{host}/")


def _judged_media_url(url: object) -> FieldProblem | None:
    if not isinstance(url, str) or not url.strip():
        return FieldProblem("media_url", "required", "media_url is required")
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        parts.port  # noqa: B018 - a malformed port raises here
    except ValueError as error:
        return FieldProblem("media_url", "invalid_url", f"media_url is not a valid URL ({error})")
    if parts.scheme.lower() != "https":
        shown = parts.scheme or "no scheme"
        return FieldProblem(
            "media_url", "https_required", f"media_url must use https (found {shown})"
        )
    if not host:
        return FieldProblem("media_url", "invalid_url", "media_url has no host")
    if re.search(r"\s", url.strip()):
        return FieldProblem("media_url", "invalid_url", "media_url contains white space")
    if is_local_name(host):
        return FieldProblem(
            "media_url", "private_address", f"media_url host {host!r} is this machine"
        )
    address = parse_ip_literal(host)
    if address is not None and not is_public_address(address):
        return FieldProblem(
            "media_url",
            "private_address",
            f"media_url host {address} is a private, loopback or link-local address",
        )
    return None


def media_type_from_extension(url: str) -> str | None:
    """The audio or video content type a URL's file extension implies, if any."""
    path = urlsplit(url).path.lower()
    for extension, content_type in MEDIA_EXTENSIONS.items():
        if path.endswith(extension):
            return content_type
    return None


def is_media_content_type(content_type: str | None) -> bool:
    """``audio/*`` or ``video/*``, parameters ignored."""
    if not content_type:
        return False
    main = content_type.split(";", 1)[0].strip().lower()
    return main.startswith("audio/") or main.startswith("video/")
