"""One HTTP request, with httpx's failures turned into our errors; shared by every target.

The key is scrubbed from every message: a socket or TLS reason may quote a header. The
answer is read whole but bounded (``importer.targets.http``), within an overall deadline.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import functools
import hashlib
import ipaddress
import json
import math
import os
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from importer import __version__
from importer.errors import (
    AnswerTooLarge,
    ApiError,
    FatalError,
    NoAnswerInTime,
    PermanentError,
    RateLimited,
    ServerUnavailable,
    TransientError,
    Unreachable,
    UsageError,
)
from importer.rows import contract
from importer.settings import DEFAULT_READ_TIMEOUT
from importer.targets.sockets import keep_sockets


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` names this machine (the sandbox): plain http and no proxy for it.

    >>> is_loopback("127.0.0.2"), is_loopback("[::1]"), is_loopback("localhost"), is_loopback("a.b")
    (True, True, True, False)
    """
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def proxy_for(base_url: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The proxy requests to ``base_url`` go through (from the environment), shown without
    its credentials; None for a direct connection, and always for a loopback URL.

    >>> proxy_for("https://api.devrev.ai", {"HTTPS_PROXY": "http://u:p@proxy:3128"})
    'http://proxy:3128'
    >>> proxy_for("http://127.0.0.1:8080", {"ALL_PROXY": "http://proxy:3128"}) is None
    True
    """
    env = os.environ if environ is None else environ
    found: dict[str, str] = {}
    for name, value in env.items():
        named = name.lower() in PROXY_VARIABLES and value.strip()
        if named and (name.lower() not in found or name.islower()):  # lowercase wins, as curl
            found[name.lower()] = value.strip()
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if is_loopback(host):
        return None
    proxy = found.get(f"{parts.scheme}_proxy") or found.get("all_proxy")
    if proxy is None or _bypassed(host, found.get("no_proxy", "")):
        return None
    shown = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    port = f":{shown.port}" if shown.port else ""
    return f"{shown.scheme}://{shown.hostname}{port}"


def _bypassed(host: str, no_proxy: str) -> bool:
    """Whether ``NO_PROXY`` names ``host`` (or a domain of it, or ``*``)."""
    for entry in (e.strip().lower().lstrip(".") for e in no_proxy.split(",")):
        if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
            return True
    return False


def pace_key(base_url: str, api_key: str) -> str:
    """The server and key a learned pace belongs to, never the key: a truncated SHA-256."""
    fingerprint = hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{base_url} key:{fingerprint}"


def open_client(
    base_url: str,
    api_key: str,
    *,
    timeout: httpx.Timeout,
    max_connections: int,
    transport: httpx.AsyncBaseTransport | None,
    extra_headers: dict[str, str] | None = None,
) -> httpx.AsyncClient:
    """The connection pool a target speaks through: the key only in its headers, no redirects.

    A loopback URL never goes through a proxy from the environment (``HTTP_PROXY``,
    ``ALL_PROXY``): the key would pass a third party in clear text.
    """
    trust_env = not is_loopback(urlsplit(base_url).hostname)
    limits = httpx.Limits(
        max_connections=max_connections, max_keepalive_connections=max_connections
    )
    if transport is None:
        # What httpx would build itself, with the cheaper closed-connection check.
        transport = httpx.AsyncHTTPTransport(trust_env=trust_env, limits=limits)
        keep_sockets(transport)
    return httpx.AsyncClient(
        trust_env=trust_env,
        base_url=base_url,
        headers={
            "Authorization": f"Bearer {api_key}",
            "User-Agent": f"engagement-importer/{__version__}",
            "Accept": "application/json",
            **(extra_headers or {}),
        },
        timeout=timeout,
        limits=limits,
        transport=transport,
        follow_redirects=False,
    )


async def send_request(
    client: httpx.AsyncClient,
    api_key: str,
    method: str,
    path: str,
    *,
    json_body: Any = None,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    deadline: float | None = None,
    on_hint: HintListener | None = None,
) -> Answer:
    """Send one request and read its bounded answer, all within ``deadline`` seconds.

    No answer at all (or none in time) becomes ``ServerUnavailable``: maybe applied. An
    answer's ``X-RateLimit-*`` headers are reported to ``on_hint``; the pacer decides.
    """
    content = None
    if json_body is not None:
        content = json.dumps(json_body, ensure_ascii=False).encode("utf-8", "surrogatepass")
        headers = {**(headers or {}), "Content-Type": "application/json"}

    async def exchange() -> Answer:
        async with client.stream(
            method, path, content=content, headers=headers, params=params
        ) as response:
            return await read_answer(response)

    try:
        answer = await asyncio.wait_for(exchange(), timeout=deadline)
    except asyncio.TimeoutError:
        # A per-read timeout never fires for a body trickling one byte a second.
        raise NoAnswerInTime(
            f"no answer in time (the whole answer took over {deadline:g} s); "
            "the request may have been applied"
        ) from None
    except httpx.TimeoutException as error:
        raise NoAnswerInTime(
            f"no answer in time ({type(error).__name__}); the request may have been applied"
        ) from None
    except httpx.LocalProtocolError as error:
        # Raised before anything is sent, e.g. for a header value h11 refuses: its text
        # would quote the Authorization header, so it is never shown.
        raise FatalError(
            f"the request could not be formed ({type(error).__name__}); "
            "check that the API key is one line of plain characters"
        ) from None
    except httpx.TransportError as error:
        # The socket's or TLS library's words help (e.g. https to an http port); the key
        # is scrubbed from them all the same.
        reason = scrub(str(error).strip(), api_key)[:200]  # scrubbed before cut
        hint = ""
        if "SSL" in reason or "TLS" in reason:
            hint = "; does the server speak https? (the sandbox speaks plain http)"
        elif "Receive buffer too long" in reason:  # h11's limit on an answer's head
            hint = "; the answer's headers are over 100 KB, more than any API sends"
        elif isinstance(error, httpx.ConnectError) and _names_resolution(reason):
            hint = "; the host name does not resolve (a typo in the URL, or no network?)"
        said = f"connection failed ({type(error).__name__}{': ' + reason if reason else ''}{hint})"
        if isinstance(error, httpx.ConnectError):  # no connection: the request never left
            raise Unreachable(said, host=client.base_url.host or str(client.base_url)) from None
        raise ServerUnavailable(said) from None
    except httpx.HTTPError as error:
        # E.g. a body that cannot be decoded: the request may have been applied.
        raise TransientError(f"the answer could not be read ({type(error).__name__})") from None
    if on_hint is not None and (window := rate_hint(answer.headers, time.time())) is not None:
        on_hint(window)
    return answer


KEY_RUN = 12
"""A run of this many of the key's characters (in its order) is scrubbed as the key: a cut
text, or a server that echoes part of the key, must not show most of it."""


def _names_resolution(reason: str) -> bool:
    """The resolver's words for a name it cannot find (glibc, musl, macOS, Windows)."""
    words = (
        "name or service not known",
        "nodename nor servname",
        "name resolution",
        "getaddrinfo",
        "no address associated",
    )
    return any(word in reason.lower() for word in words)


def scrub(text: str, api_key: str) -> str:
    """The text with the key, and every run of ``KEY_RUN`` or more of its characters, replaced.

    >>> scrub("to https://x/?k=sk-apik_ABCDEFGHIJKL", "sk-apik_ABCDEFGHIJKLMNOP")
    'to https://x/?k=[API key]'
    """
    if not api_key or len(text) < min(len(api_key), KEY_RUN):
        return text  # too short to hold the key or a run of it
    if not any(block in text for block in _key_blocks(api_key)):
        return text  # most texts: a handful of searches instead of one per run
    text = text.replace(api_key, "[API key]")
    spans: list[tuple[int, int]] = []
    for start in range(len(api_key) - KEY_RUN + 1):
        piece = api_key[start : start + KEY_RUN]
        found = text.find(piece)
        while found >= 0:
            spans.append((found, found + KEY_RUN))
            found = text.find(piece, found + 1)
    if not spans:
        return text
    kept: list[str] = []
    position = 0
    for begin, end in _merged(spans):
        kept += [text[position:begin], "[API key]"]
        position = end
    return "".join([*kept, text[position:]])


@functools.lru_cache(maxsize=4)
def _key_blocks(api_key: str) -> tuple[str, ...]:
    """The key cut into blocks of half a run: every run of ``KEY_RUN`` of its characters
    holds one of them whole, so a text without any holds no run (nor the key)."""
    size = KEY_RUN // 2
    if len(api_key) < KEY_RUN:
        return (api_key,)
    return tuple(api_key[i : i + size] for i in range(0, len(api_key) - size + 1, size))


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping or touching spans joined, in order."""
    merged: list[tuple[int, int]] = []
    for begin, end in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((begin, end))
    return merged


def scrub_value(value: Any, api_key: str) -> Any:
    """``value`` (JSON from a server) with the key replaced in every string."""
    if isinstance(value, str):
        return scrub(value, api_key)
    if isinstance(value, list):
        return [scrub_value(item, api_key) for item in value]
    if isinstance(value, dict):
        return {scrub(str(k), api_key): scrub_value(v, api_key) for k, v in value.items()}
    return value


def scrub_error(error: ApiError, api_key: str) -> ApiError:
    """The server's words in ``error`` (message, detail, field errors, request id), scrubbed.

    A hostile or careless server may echo the Authorization header in any of them.
    """
    error.args = tuple(scrub(str(arg), api_key) for arg in error.args)
    error.detail = scrub(error.detail, api_key) if error.detail else error.detail
    error.field_errors = scrub_value(error.field_errors, api_key)
    error.request_id = scrub(error.request_id, api_key) if error.request_id else None
    return error


MAX_ANSWER_BYTES = 8 * 1024 * 1024
"""The largest answer body read (compressed or not); an engagement is kilobytes."""


@dataclass(frozen=True)
class Answer:
    """A status, its headers and the whole (bounded, inflated) body."""

    status_code: int
    headers: httpx.Headers
    content: bytes

    def json(self) -> Any:
        """The body as JSON, or None when it is not (or too deep to parse)."""
        return parse_json(self.content)

    def scrubbed_json(self, api_key: str) -> Any:
        """``json()`` with the key replaced in every string (``scrub_value``).

        The walk through every string is skipped when the body cannot hold a run of the
        key: no escape, no NUL (so UTF-8), and none of the key's blocks in its bytes; the
        strings JSON gives are then pieces of the body, each too without a block.
        """
        value = self.json()
        body = self.content
        if b"\\" in body or b"\x00" in body:
            return scrub_value(value, api_key)
        try:
            blocks = [block.encode("utf-8") for block in _key_blocks(api_key)]
        except UnicodeEncodeError:
            return scrub_value(value, api_key)
        if any(block in body for block in blocks):
            return scrub_value(value, api_key)
        return value


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


FATAL_ADVICE = {
    401: "the API key was refused: check --api-key-file or ASKELEPHANT_API_KEY",
    403: "the API key lacks the scope this needs",
    404: "the API answered 404 for the endpoint itself: check --base-url "
    "(it should end in /api, e.g. https://app.askelephant.ai/api)",
}


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:  # "NaN" and "inf" say nothing usable: as if there were no header
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    current = now or dt.datetime.now(dt.timezone.utc)
    return max(0.0, (when - current).total_seconds())


def parse_problem(body: bytes) -> dict[str, Any]:
    """The problem+json fields of an error body; empty when the body is not JSON."""
    try:
        data = json.loads(body) if body else {}
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}  # RecursionError: JSON nested deeper than Python's stack
    return data if isinstance(data, dict) else {}


def classify(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    operation: str,
    scope: str = contract.SCOPE_WRITE,
    api_key: str = "",
) -> ApiError | None:
    """None for a good answer, else the error that says what to do about it.

    ``operation`` is ``create``, ``get`` or ``replace_contacts``: a 404 means a wrong base
    URL on create, but only a missing engagement on get. Text cut short here (a redirect's
    Location) is scrubbed of ``api_key`` first; the caller scrubs the rest.
    """
    if 200 <= status < 300:
        if status == 204 or (operation == "replace_contacts" and not body):
            return None
        engagement = parse_problem(body)
        engagement_id = str(engagement.get("id", ""))
        too_long = len(engagement_id) > contract.ENGAGEMENT_ID_MAX
        if too_long or not contract.ENGAGEMENT_ID_PATTERN.match(engagement_id):
            return TransientError(f"HTTP {status} but the body is not an engagement", status=status)
        return None
    if status == 304:
        return None
    if 300 <= status < 400:
        return _redirect(status, headers, api_key)
    problem = parse_problem(body)
    detail = problem.get("detail") or problem.get("title") or problem.get("message")
    raw_errors = problem.get("errors")
    errors: list[Any] = raw_errors if isinstance(raw_errors, list) else []
    fields: dict[str, Any] = {
        "status": status,
        "detail": str(detail) if detail else None,
        "field_errors": [e for e in errors if isinstance(e, dict)],
        "request_id": _request_id(problem, headers),
    }
    said = f": {detail}" if detail else ""
    if status == 429:
        retry_after = parse_retry_after(headers.get("retry-after"))
        return RateLimited(f"HTTP 429 rate limited{said}", retry_after=retry_after, **fields)
    if status in (500, 502, 503, 504):
        return ServerUnavailable(f"HTTP {status} server error{said}", **fields)
    if status == 409:
        return TransientError(f"HTTP 409 conflict: still being processed{said}", **fields)
    if status == 401:
        return FatalError(f"HTTP 401: {FATAL_ADVICE[401]}{said}", **fields)
    if status == 403:
        return FatalError(f"HTTP 403: the API key lacks the {scope} scope{said}", **fields)
    if status == 404 and operation == "create":
        return FatalError(f"HTTP 404: {FATAL_ADVICE[404]}{said}", **fields)
    if status in (400, 404, 422) or 400 <= status < 500:
        return PermanentError(f"HTTP {status}{said}", **fields)
    return ServerUnavailable(f"HTTP {status} unexpected answer{said}", **fields)


def _redirect(status: int, headers: Mapping[str, str], api_key: str) -> FatalError:
    """A redirect is never followed (it could take the key elsewhere): the URL is wrong.

    Every answer would be the same, so the run stops at once, rows left pending.
    """
    location = scrub(headers.get("location") or "", api_key)
    to = f" to {location[:200]}" if location else ""
    return FatalError(
        f"HTTP {status}: the API answered with a redirect{to}, which the importer does not "
        "follow (it could carry the API key elsewhere): check --base-url",
        status=status,
    )


def _request_id(problem: dict[str, Any], headers: Mapping[str, str]) -> str | None:
    value = problem.get("request_id") or headers.get("x-request-id")
    return str(value) if value else None


RESET_IS_EPOCH_ABOVE = 1_000_000_000
"""An ``X-RateLimit-Reset`` above this is a Unix time; below, seconds from now."""


@dataclass(frozen=True)
class RateHint:
    """What one answer said about the rate window: requests left, seconds until it resets."""

    remaining: int
    reset_seconds: float
    limit: int | None = None


HintListener = Callable[[RateHint], None]
"""Told each answer's ``X-RateLimit-*`` hint: the sender's pacer (``Pacer.hinted``)."""


def reset_seconds(value: str | None, wall_now: float) -> float | None:
    """Seconds until the window resets: a Unix time or a number of seconds, either way."""
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    if number > RESET_IS_EPOCH_ABOVE:
        number -= wall_now
    return max(0.0, number)


def rate_hint(headers: Mapping[str, str], wall_now: float) -> RateHint | None:
    """The hint an answer's headers carry, or None without both Remaining and Reset."""
    remaining = _integer(headers.get("x-ratelimit-remaining"))
    wait = reset_seconds(headers.get("x-ratelimit-reset"), wall_now)
    if remaining is None or wait is None:
        return None
    return RateHint(max(0, remaining), wait, _integer(headers.get("x-ratelimit-limit")))


def _integer(value: str | None) -> int | None:
    try:
        number = float(value) if value is not None else math.nan
    except ValueError:
        return None
    return int(number) if math.isfinite(number) else None


def check_base_url(base_url: str, example: str = contract.PRODUCTION_BASE_URL) -> str:
    """Refuse a base URL that would send the key in clear text, or is not a URL at all.

    A URL with user information (``user:password@``) is refused without being quoted: the
    password would be printed, logged and recorded, and sent instead of the key.
    """
    authority = base_url.strip().partition("://")[2]
    for end in "/?#":
        authority = authority.partition(end)[0]
    if "@" in authority:
        raise UsageError(
            "--base-url carries a user name or password (user:password@host), which the "
            "importer never sends, prints or records; give the URL without it (the API key "
            "authenticates)"
        )
    try:
        parts = urlsplit(base_url.strip())
        parts.port  # noqa: B018 - a malformed port raises here
    except ValueError as error:
        raise UsageError(f"--base-url {base_url!r} is not a valid URL ({error})") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UsageError(f"--base-url {base_url!r} is not an http(s) URL, e.g. {example}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise UsageError(
            f"--base-url {base_url!r} uses http: the API key would travel in clear text. "
            "Use https (plain http is allowed only for a loopback address such as the sandbox)."
        )
    return base_url.strip().rstrip("/")


def build_timeout(read_timeout: float = DEFAULT_READ_TIMEOUT) -> httpx.Timeout:
    """Connect fast, but give the server time to fetch the media during create.

    The read timeout is also each request's overall deadline (see ``AskElephantTarget``).
    """
    return httpx.Timeout(connect=10.0, read=read_timeout, write=60.0, pool=None)
