"""Everything a running sandbox holds, and the guards every API request passes.

One ``SandboxState`` per app: the engagements (``store``), the accepted keys, the faults,
the contacts made known through the admin API, and the stats. It also carries what the
handlers must not take from the machine directly, so tests can inject it: the wall
``clock`` (created_at, processing status), the ``monotonic`` clock (rate limit, outage
window) and ``sleep`` (the simulated media fetch).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from importer.rows import contract
from importer.rows.dates import parse_timestamp
from importer.sandbox import rendering
from importer.sandbox.faults import FaultState
from importer.sandbox.media_check import MediaChecker
from importer.sandbox.params import presented_key
from importer.sandbox.problems import Problem
from importer.sandbox.settings import Faults, SandboxSettings
from importer.sandbox.store import Engagement, EngagementStore

UNKNOWN_CONTACT_PREFIX = "cnt_unknown"

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


def generate_key() -> str:
    """A fresh sandbox API key in the real keys' shape."""
    return f"sk-apik_sandbox.{secrets.token_hex(12)}"


@dataclass
class Stats:
    """What the sandbox answered, for tests and the demo to compare with the importer."""

    requests: defaultdict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    created: Counter[str] = field(default_factory=Counter)
    hits: Counter[str] = field(default_factory=Counter)

    def as_dict(self, engagements: int) -> dict[str, object]:
        """The ``GET /_sandbox/stats`` document."""
        return {
            "requests": {name: dict(by_status) for name, by_status in self.requests.items()},
            "engagements": engagements,
            "created": dict(self.created),
            "hits": dict(self.hits),
        }


class SandboxState:
    """The sandbox's state (engagements, keys, faults, contacts, stats) and its guards."""

    def __init__(
        self,
        settings: SandboxSettings,
        media: MediaChecker,
        *,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.media = media
        self.clock = clock
        self.sleep = sleep
        self.store = EngagementStore(settings.db_path)
        self.faults = FaultState(settings.faults, settings.seed, monotonic)
        self.stats = Stats()
        self.keys: dict[str, frozenset[str]] = {}
        self.added_contacts: set[str] = set()
        self.on_reset: list[Callable[[], None]] = []
        """What other APIs mounted on this state (DevRev) forget on ``reset``."""
        self.restore_keys()

    def restore_keys(self) -> None:
        """Accept exactly the keys the sandbox was started with."""
        self.keys = {api_key.key: api_key.scopes for api_key in self.settings.keys}

    # -- guards --

    def authorize(self, request: Request, scope: str, action: str) -> frozenset[str]:
        """The caller's scopes, after the outage, key, rate-limit and scope checks."""
        if self.faults.outage_active():
            detail = "The sandbox is simulating an outage; try again shortly"
            raise Problem(503, "Service Unavailable", detail, headers={"Retry-After": "1"})
        key = presented_key(request.headers.get("authorization"))
        scopes = self.keys.get(key) if key else None
        if key is None or scopes is None:
            detail = "No API key was sent" if key is None else "The API key is unknown or revoked"
            raise Problem(401, "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})
        wait = self.faults.rate_limited(key)
        if wait is not None:
            detail = f"More than {self.faults.faults.rate_limit:g} requests per second for this key"
            raise Problem(429, "Too Many Requests", detail, headers={"Retry-After": str(wait)})
        require_scope(scopes, scope, action)
        return scopes

    def find(self, request: Request) -> Engagement:
        """The engagement named in the path, or a 404."""
        engagement_id = str(request.path_params["engagement_id"])
        engagement = self.store.get(engagement_id)
        if engagement is None:
            raise Problem(404, "Not Found", f"No engagement with id {engagement_id!r}")
        return engagement

    def is_known_contact(self, contact_id: str) -> bool:
        """Any well-formed id not starting with ``cnt_unknown``, and any added by admin."""
        if contact_id in self.added_contacts:
            return True
        well_formed = bool(contract.CONTACT_ID_PATTERN.match(contact_id))
        return well_formed and not contact_id.startswith(UNKNOWN_CONTACT_PREFIX)

    # -- engagements as of now --

    def render(self, engagement: Engagement, expand: Iterable[str] = ()) -> dict[str, object]:
        """The engagement as the API shows it now; expand keys only when asked for."""
        step = self.settings.processing_seconds
        return rendering.render(engagement, self.clock(), step, expand)

    def admin_view(self, engagement: Engagement) -> dict[str, object]:
        """The full engagement now, with what only the sender knows."""
        return rendering.admin_view(engagement, self.clock(), self.settings.processing_seconds)

    def new_engagement(self, body: Mapping[str, Any]) -> Engagement:
        """A new engagement from a valid create body."""
        now = self.clock()
        start = parse_timestamp(body["start_at"]) if "start_at" in body else None
        return Engagement(
            id=rendering.new_engagement_id(),
            external_id=body["external_id"],
            source_system=body["source_system"],
            title=body["title"],
            engagement_type=body["type"],
            is_private=body.get("is_private", False),
            run_workflows=body["run_workflows"],
            start_at=rendering.format_timestamp(start or now),
            media_url=body["media_url"].strip(),
            created_at=now,
            updated_at=now,
            transcript_text=body.get("transcript_text"),
            participants=list(body.get("participants", [])),
        )

    def reset(self) -> None:
        """Forget engagements, stats, faults, added keys and contacts."""
        self.store.clear()
        self.stats = Stats()
        self.faults.reset(Faults())
        self.restore_keys()
        self.added_contacts.clear()
        for forget in self.on_reset:
            forget()


def require_scope(scopes: frozenset[str], scope: str, action: str) -> None:
    """403 naming the missing scope."""
    if scope not in scopes:
        detail = f"This API key lacks the {scope} scope, needed to {action}"
        raise Problem(403, "Forbidden", detail)
