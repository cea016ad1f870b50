"""The interface every API target implements, so the pipeline never names a vendor."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from importer.targets.http import RateHint


@dataclass(frozen=True)
class CreateResult:
    """A create that the server accepted: new (``created``) or already there."""

    engagement_id: str
    created: bool
    http_status: int
    body: dict[str, Any]
    found_by: str = "create"
    """Which check found the engagement: ``create`` (its answer) or ``lookup`` (a list)."""


@dataclass(frozen=True)
class RemoteEngagement:
    """One engagement a lookup found on the server under an external id."""

    engagement_id: str
    external_id: str
    body: dict[str, Any]


Lookup = dict[str, list[RemoteEngagement]]
"""external_id -> every engagement the server holds under it (several: a remote duplicate)."""


@dataclass(frozen=True)
class GetResult:
    """An engagement read back; ``not_modified`` when the ETag still matched."""

    http_status: int
    body: dict[str, Any] | None
    etag: str | None

    @property
    def not_modified(self) -> bool:
        return self.http_status == 304


@dataclass(frozen=True)
class References:
    """A create field whose manifest value may be another system's id for a target object.

    DevRev's ``parent``: a DevRev account id is sent as it is (``is_native``); a CRM's
    account id is found by its external reference (``Target.find_references``) first.
    """

    field: str
    noun: str
    """What the value names, in messages (``account``)."""
    is_native: Callable[[str], bool]
    """True for a value that already is the target's id: sent as it is."""


class Target(Protocol):
    """Create, read back and re-link contacts; errors are ``importer.errors.ApiError``."""

    label: str
    """The target's name in messages (``AskElephant``, ``DevRev``)."""
    base_url: str
    """Where requests go, already checked (https, or http on loopback)."""
    creates_idempotently: bool
    """True when create answers the existing engagement for a known id (no lookup needed)."""
    on_rate_hint: Callable[[RateHint], None] | None
    """Told each answer's ``X-RateLimit-*`` hint; the sender sets it to its pacer's."""
    references: References | None
    """A payload field to resolve before creating (DevRev's ``parent``); None: nothing."""

    @property
    def pace_key(self) -> str | None:
        """Where the ledger keeps the pace this server took: the base URL and a fingerprint
        of the key, never the key (None: not remembered)."""
        ...

    @property
    def is_production(self) -> bool:
        """Whether the base URL is the vendor's production API (a big run asks first)."""
        ...

    async def check_access(self) -> None:
        """One cheap authenticated request; raises the API's error for a refused key."""
        ...

    async def create(self, payload: dict[str, Any]) -> CreateResult:
        """Create an engagement; a target without idempotency looks up after an unsure answer."""
        ...

    async def get(
        self, engagement_id: str, *, etag: str | None = None, expand: Sequence[str] = ()
    ) -> GetResult:
        """Read one engagement, conditionally on ``etag``."""
        ...

    async def lookup(self, external_ids: Sequence[str]) -> Lookup | None:
        """The engagements the server holds under these ids; None when create is idempotent.

        A target whose create is not idempotent (DevRev) is looked up before every create;
        one whose create answers ``200`` for a known id (AskElephant) needs no lookup.
        """
        ...

    async def find_references(self, values: Sequence[str]) -> dict[str, list[str]]:
        """For ``references``: each value's target ids (none, one, or several: ambiguous)."""
        ...

    async def replace_contacts(
        self, engagement_id: str, contact_ids: Sequence[str]
    ) -> dict[str, Any]:
        """Replace the engagement's contacts with exactly ``contact_ids``."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
