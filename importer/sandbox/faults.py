"""Bad-day behaviour: what each create suffers, the per-key rate limit, the outage window.

Every random decision comes from one ``random.Random(seed)``, drawn in a fixed order per
create, so a seeded run sees the same faults in the same order of creates.

    >>> state = FaultState(Faults(fail_rate=1.0), seed=7)
    >>> state.plan_create().fail
    True
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace

from importer.rows.contract import FieldProblem
from importer.sandbox.settings import Faults

Clock = Callable[[], float]


class FaultsInvalid(ValueError):
    """Fault settings sent to the admin endpoint that cannot be used."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))


@dataclass(frozen=True)
class CreatePlan:
    """What happens to one create of a new external_id."""

    latency_seconds: float
    fail: bool
    """Answer 500 before storing."""
    drop: bool
    """Store, then close the connection without an answer."""
    refuse: bool = False
    """Answer 429 (Retry-After: 1) before anything else, whatever the pace."""


class TokenBucket:
    """Per-key token buckets: ``rate`` requests a second, bursts of up to max(1, rate)."""

    def __init__(self, rate: float, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> int | None:
        """None if the request may go ahead, else the whole seconds to wait (at least 1)."""
        now = self._clock()
        tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return None
        self._buckets[key] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self.rate))

    def tokens(self, key: str) -> float:
        """Requests a key could make right now (the full burst for a key never seen)."""
        now = self._clock()
        tokens, last = self._buckets.get(key, (self.capacity, now))
        return min(self.capacity, tokens + (now - last) * self.rate)


class FaultState:
    """The current faults and everything they need to decide: RNG, buckets, outage clock."""

    def __init__(self, faults: Faults, seed: int | None, clock: Clock = time.monotonic) -> None:
        self._seed = seed
        self._clock = clock
        self.reset(faults)

    def reset(self, faults: Faults) -> None:
        """Start over with these faults: fresh RNG, empty buckets, outage clock from now."""
        self.faults = replace(faults)
        self._random = random.Random(self._seed)
        self._anchor = self._clock()
        self._limiter = self._new_limiter()

    def update(self, changes: Mapping[str, object]) -> Faults:
        """Change some fault fields at run time; an outage given here counts from now."""
        self.faults = apply_changes(self.faults, changes)
        if "rate_limit" in changes:
            self._limiter = self._new_limiter()
        if "outage_start" in changes or "outage_seconds" in changes:
            self._anchor = self._clock()
        return self.faults

    def as_dict(self) -> dict[str, object]:
        """The current faults as JSON-ready values."""
        return asdict(self.faults)

    def plan_create(self) -> CreatePlan:
        """Draw this create's latency, failure and drop (always three draws, in this order),
        then, only when stray 429s are asked for, a fourth for the refusal."""
        jitter, fail_draw, drop_draw = (self._random.random() for _ in range(3))
        latency = self.faults.latency_ms / 1000.0 * (0.5 + jitter)
        refuse = bool(self.faults.stray_429_rate) and (
            self._random.random() < self.faults.stray_429_rate
        )
        return CreatePlan(
            latency_seconds=latency,
            fail=fail_draw < self.faults.fail_rate,
            drop=drop_draw < self.faults.drop_after_commit_rate,
            refuse=refuse,
        )

    def outage_active(self) -> bool:
        """True inside the outage window."""
        start = self.faults.outage_start
        if start is None or self.faults.outage_seconds <= 0:
            return False
        elapsed = self._clock() - self._anchor
        return start <= elapsed < start + self.faults.outage_seconds

    def rate_limited(self, key: str) -> int | None:
        """None if this key may make a request now, else the Retry-After in seconds."""
        return self._limiter.take(key) if self._limiter is not None else None

    def _new_limiter(self) -> TokenBucket | None:
        rate = self.faults.rate_limit
        return TokenBucket(rate, self._clock) if rate else None


def apply_changes(faults: Faults, changes: Mapping[str, object]) -> Faults:
    """A copy of faults with the changes applied, after checking every field and value."""
    known = {f.name for f in fields(Faults)}
    problems = [
        FieldProblem(name, "unknown_field", f"{name} is not a fault setting")
        for name in changes
        if name not in known
    ]
    for name, value in changes.items():
        if name in known:
            problem = _check_fault_value(name, value)
            if problem is not None:
                problems.append(problem)
    if problems:
        raise FaultsInvalid(problems)
    values = {name: _coerce(name, value) for name, value in changes.items()}
    return replace(faults, **values)  # type: ignore[arg-type]


_RATES = ("fail_rate", "drop_after_commit_rate", "stray_429_rate")
_OPTIONAL = ("rate_limit", "outage_start", "list_page_size")


def _check_fault_value(name: str, value: object) -> FieldProblem | None:
    if value is None and name in _OPTIONAL:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return FieldProblem(name, "type", f"{name} must be a number")
    if name in _RATES and not 0.0 <= value <= 1.0:
        return FieldProblem(name, "out_of_range", f"{name} must be between 0 and 1")
    if name == "list_page_size" and (not isinstance(value, int) or value < 1):
        return FieldProblem(name, "out_of_range", "list_page_size must be a whole number >= 1")
    if name == "rate_limit" and value <= 0:
        return FieldProblem(name, "out_of_range", "rate_limit must be above 0 (or null for none)")
    if value < 0:
        return FieldProblem(name, "out_of_range", f"{name} must not be negative")
    return None


def _coerce(name: str, value: object) -> object:
    if name == "latency_ms" and isinstance(value, float):
        return round(value)
    return value
