"""Reading an answer from a server we do not trust: bounded in size, in time and in depth.

An engagement is kilobytes; a hostile or broken server can send gigabytes, a gzip bomb, a
body that trickles one byte a second, or JSON nested 200,000 levels deep. Everything read
here is capped before it is held in memory, compressed bodies are inflated only up to the
same cap, and JSON that cannot be parsed for any reason is ``None``, never an exception.

    >>> inflate(b"plain", "", limit=10)
    b'plain'
    >>> parse_json(b"[" * 100_000 + b"]" * 100_000) is None
    True
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import Any

import httpx

from importer.errors import TransientError

MAX_ANSWER_BYTES = 8 * 1024 * 1024
"""The largest answer body read (compressed or not); an engagement is kilobytes."""


class AnswerTooLarge(TransientError):
    """The body passed ``MAX_ANSWER_BYTES``: read no further, keep nothing of it."""


@dataclass(frozen=True)
class Answer:
    """A status, its headers and the whole (bounded, inflated) body."""

    status_code: int
    headers: httpx.Headers
    content: bytes

    def json(self) -> Any:
        """The body as JSON, or None when it is not (or too deep to parse)."""
        return parse_json(self.content)


async def read_answer(response: httpx.Response, limit: int = MAX_ANSWER_BYTES) -> Answer:
    """Read a streamed response's body, refusing more than ``limit`` bytes either way."""
    if response.is_stream_consumed:  # built in memory (httpx.MockTransport): already read
        if len(response.content) > limit:
            raise _too_large(response.status_code, limit)
        return Answer(response.status_code, response.headers, response.content)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        size += len(chunk)
        if size > limit:
            raise _too_large(response.status_code, limit)
        chunks.append(chunk)
    encoding = response.headers.get("content-encoding", "")
    body = inflate(b"".join(chunks), encoding, limit=limit, status=response.status_code)
    return Answer(response.status_code, response.headers, body)


def inflate(raw: bytes, encoding: str, *, limit: int, status: int = 0) -> bytes:
    """Undo gzip or deflate content encoding, never producing more than ``limit`` bytes."""
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
    body = raw
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding not in ("gzip", "x-gzip", "deflate"):
            raise TransientError(
                f"HTTP {status} answer in an encoding the importer does not read ({coding})",
                status=status or None,
            )
        # wbits 47 reads gzip and zlib headers alike; raw deflate needs -15.
        wbits = 47 if coding != "deflate" or body[:1] == b"\x78" else -15
        decompressor = zlib.decompressobj(wbits)
        try:
            body = decompressor.decompress(body, limit + 1)
        except zlib.error:
            raise TransientError(
                f"HTTP {status} answer is not valid {coding} data", status=status or None
            ) from None
        if len(body) > limit:
            raise _too_large(status, limit)
    return body


def parse_json(body: bytes) -> Any:
    """JSON from a server's body, or None: not JSON, not UTF-8, or nested too deeply."""
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def _too_large(status: int, limit: int) -> AnswerTooLarge:
    return AnswerTooLarge(
        f"HTTP {status} answer larger than {limit // (1024 * 1024)} MB; "
        "an engagement is kilobytes, so it was not read",
        status=status or None,
    )
