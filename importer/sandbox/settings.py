"""How a sandbox server is configured: one typed settings object, built by the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field

from importer.errors import ChoiceError
from importer.rows import contract


@dataclass(frozen=True)
class ApiKey:
    """A key the sandbox accepts and the scopes it carries."""

    key: str
    scopes: frozenset[str] = frozenset(contract.ALL_SCOPES)


@dataclass
class Faults:
    """Bad-day behaviour; changeable while running through ``POST /_sandbox/faults``."""

    latency_ms: int = 0
    """Delay added to every create (the synchronous media fetch), with +/-50% jitter."""
    rate_limit: float | None = None
    """Requests per second allowed per key; beyond it, 429 with Retry-After."""
    fail_rate: float = 0.0
    """Share of creates answered 500 before anything is stored."""
    drop_after_commit_rate: float = 0.0
    """Share of creates stored and then answered by closing the connection."""
    stray_429_rate: float = 0.0
    """Share of creates answered 429 (Retry-After: 1) whatever the pace: a flaky gateway,
    not a rate limit."""
    outage_start: float | None = None
    """Seconds after start (or after the faults were set) when 503s begin."""
    outage_seconds: float = 0.0
    """How long every API request answers 503."""
    list_page_size: int | None = None
    """DevRev ``engagements.list`` answers at most this many per page, whatever ``limit``
    asks (a server paging small), so every lookup follows ``next_cursor``."""
    list_delay_seconds: float = 0.0
    """DevRev ``engagements.list`` shows an engagement only this long after its create (an
    eventually consistent list): a look-up right after a lost answer does not find it."""


@dataclass
class SandboxSettings:
    """Everything ``importer sandbox`` can be told."""

    host: str = "127.0.0.1"
    port: int = 8765
    db_path: str | None = None
    """SQLite file that keeps engagements across restarts; None keeps them in memory."""
    keys: list[ApiKey] = field(default_factory=list)
    """Accepted keys; empty means one generated key with every scope."""
    media_check: str = "extension"
    """``extension`` decides the content type from the URL; ``fetch`` really fetches it."""
    seed: int | None = None
    """Makes every random fault reproducible."""
    processing_seconds: float = 2.0
    """How long an engagement stays in each non-terminal processing_status."""
    faults: Faults = field(default_factory=Faults)
    devrev_accounts: list[str] = field(default_factory=list)
    """DevRev accounts, one per CRM account id given (its external_refs); a reset keeps them."""


def parse_key(value: str) -> ApiKey:
    """``--key KEY[:SCOPE,SCOPE]``: a key, with every scope unless some are named."""
    key, _, scopes = value.partition(":")
    named = [s for s in scopes.split(",") if s] if scopes else None
    return ApiKey(key, frozenset(named) if named is not None else frozenset(contract.ALL_SCOPES))


def parse_outage(value: str | None) -> tuple[float | None, float]:
    """``--outage START:SECONDS``: when the 503s start, and for how long."""
    if not value:
        return None, 0.0
    try:
        start_text, seconds_text = value.split(":", 1)
        return float(start_text), float(seconds_text)
    except ValueError:
        raise ChoiceError("expected START:SECONDS, e.g. 30:20", "--outage") from None
