"""The AskElephant public API (v2) as a ``Target``: httpx underneath, our errors on top."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from importer.errors import IntegrityProblem, TransientError
from importer.rows import contract
from importer.settings import DEFAULT_CONCURRENCY, DEFAULT_READ_TIMEOUT
from importer.targets.base import CreateResult, GetResult, Lookup, References
from importer.targets.http import (
    Answer,
    HintListener,
    build_timeout,
    check_base_url,
    classify,
    open_client,
    pace_key,
    scrub,
    scrub_error,
    send_request,
)


class AskElephantTarget:
    """Speaks AskElephant's engagements API; the key lives only in the client's headers.

    Every answer is treated as hostile: the whole exchange must end within the read
    timeout (a body trickling a byte a second does not reset it), bodies are bounded
    (``importer.targets.http``), and the key is scrubbed from everything the server
    says before anyone prints or stores it.
    """

    label = "AskElephant"
    creates_idempotently = True
    references: References | None = None

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: httpx.Timeout | None = None,
        max_connections: int = DEFAULT_CONCURRENCY,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = check_base_url(base_url)
        self._key = api_key
        self.pace_key = pace_key(self.base_url, api_key)
        self.on_rate_hint: HintListener | None = None
        timeout = timeout or build_timeout()
        self._deadline = timeout.read or DEFAULT_READ_TIMEOUT
        self._client = open_client(
            self.base_url,
            api_key,
            timeout=timeout,
            max_connections=max_connections,
            transport=transport,
            # Compressed answers are inflated by hand, up to a cap; ask for none.
            extra_headers={"Accept-Encoding": "identity"},
        )

    async def create(self, payload: dict[str, Any]) -> CreateResult:
        """POST /v2/engagements: 201 created, 200 already there."""
        response = await self._send("POST", "/v2/engagements", json_body=payload)
        self._raise_for(response, "create", contract.SCOPE_WRITE)
        body = response.scrubbed_json(self._key)
        named = body.get("external_id", payload["external_id"])
        if named != payload["external_id"]:
            raise IntegrityProblem(
                f"integrity problem: HTTP {response.status_code} answered for external_id "
                f"{str(named)[:200]!r}, not the {payload['external_id']!r} sent; "
                "nothing was recorded for this row (engagement "
                f"{str(body['id'])[:100]}): check it in AskElephant",
                status=response.status_code,
            )
        return CreateResult(
            engagement_id=body["id"],
            created=response.status_code == 201,
            http_status=response.status_code,
            body=body,
        )

    async def get(
        self, engagement_id: str, *, etag: str | None = None, expand: Sequence[str] = ()
    ) -> GetResult:
        """GET /v2/engagements/{id}, conditional on ``etag``."""
        headers = {"If-None-Match": etag} if etag else {}
        params = {"expand": ",".join(expand)} if expand else None
        response = await self._send(
            "GET",
            f"/v2/engagements/{quote(engagement_id, safe='')}",
            headers=headers,
            params=params,
        )
        self._raise_for(response, "get", contract.SCOPE_READ)
        body = None if response.status_code == 304 else response.scrubbed_json(self._key)
        new_etag = usable_etag(response.headers.get("etag"))
        return GetResult(
            response.status_code, body, scrub(new_etag, self._key) if new_etag else etag
        )

    @property
    def is_production(self) -> bool:
        """Whether this is AskElephant's production API."""
        return urlsplit(self.base_url).hostname == urlsplit(contract.PRODUCTION_BASE_URL).hostname

    async def check_access(self) -> None:
        """One cheap authenticated GET (an engagement id that cannot exist): raises the
        API's error; 404 means the key was accepted."""
        response = await self._send("GET", access_check_path())
        if response.status_code != 404:
            self._raise_for(response, "get", contract.SCOPE_READ)

    async def lookup(self, external_ids: Sequence[str]) -> Lookup | None:
        """Not needed: create is idempotent on external_id (a known id answers 200)."""
        return None

    async def find_references(self, values: Sequence[str]) -> dict[str, list[str]]:
        """Nothing to resolve: every AskElephant field is sent as the manifest gives it."""
        return {}

    async def replace_contacts(
        self, engagement_id: str, contact_ids: Sequence[str]
    ) -> dict[str, Any]:
        """PUT /v2/engagements/{id}/contacts with exactly these contact ids."""
        response = await self._send(
            "PUT",
            f"/v2/engagements/{quote(engagement_id, safe='')}/contacts",
            json_body={"contact_ids": list(contact_ids)},
        )
        self._raise_for(response, "replace_contacts", contract.SCOPE_WRITE)
        body = response.scrubbed_json(self._key)
        return body if isinstance(body, dict) else {}

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> Answer:
        return await send_request(
            self._client,
            self._key,
            method,
            path,
            json_body=json_body,
            headers=headers,
            params=params,
            deadline=self._deadline,
            on_hint=self.on_rate_hint,
        )

    def _raise_for(self, response: Answer, operation: str, scope: str) -> None:
        error = classify(
            response.status_code,
            response.headers,
            response.content,
            operation=operation,
            scope=scope,
            api_key=self._key,
        )
        if error is not None:
            raise scrub_error(error, self._key)
        if response.status_code != 304 and not isinstance(response.json(), dict):
            raise TransientError(f"HTTP {response.status_code} but the body is not JSON")


ETAG_MAX = 256
"""Longest ETag kept to send back: a server cannot grow the ledger through it."""


def usable_etag(value: str | None) -> str | None:
    """The ETag to keep, if it is one (short, printable ASCII); else None (no condition).

    >>> usable_etag('W/"abc"'), usable_etag("\\x01" * 5), usable_etag("x" * 300)
    ('W/"abc"', None, None)
    """
    if value is None or len(value) > ETAG_MAX or not value.isascii() or not value.isprintable():
        return None
    return value


ACCESS_CHECK_ID = "engagement-importer-access-check"
"""An engagement id no workspace holds: the check's GET answers 404 to a valid key."""


def access_check_path() -> str:
    """The path the check reads: an engagement id that cannot exist."""
    return f"/v2/engagements/{quote(ACCESS_CHECK_ID, safe='')}"
