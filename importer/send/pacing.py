"""A sliding count of events per second: what the pacer sent, and what came back."""

from __future__ import annotations

import enum
import math
import statistics
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass


class RecentRate:
    """Events per second over the last ``span`` seconds (shorter at the very start)."""

    def __init__(self, span: float) -> None:
        self.span = span
        self.times: deque[float] = deque()
        self.first: float | None = None

    def add(self, now: float) -> None:
        if self.first is None:
            self.first = now
        self.times.append(now)
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self.times and self.times[0] <= now - self.span:
            self.times.popleft()

    def per_second(self, now: float) -> float:
        self._trim(now)
        if self.first is None:
            return 0.0
        elapsed = min(self.span, max(now - self.first, self.span / 4))
        return len(self.times) / elapsed


RESET_IS_EPOCH_ABOVE = 1_000_000_000
"""An ``X-RateLimit-Reset`` above this is a Unix time; below, seconds from now."""
LOW_WATER_SHARE = 0.2
"""Spread the requests once fewer than this share of the window's limit remain."""
LOW_WATER_MIN = 10


@dataclass(frozen=True)
class RateHint:
    """What one answer said about the rate window: requests left, seconds until it resets."""

    remaining: int
    reset_seconds: float
    limit: int | None = None


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


class WindowPacer:
    """Departure slots from the last hint; every reserved slot counts against what remains."""

    def __init__(self) -> None:
        self.remaining: int | None = None
        self.reset_at: float | None = None
        self.limit: int | None = None
        self.next_slot = -math.inf
        self.hints = 0
        self.slots: deque[float] = deque()
        """Departures reserved in the future, oldest first."""

    def hinted(self, now: float, hint: RateHint, in_flight: int = 0) -> None:
        """Remember the window an answer describes, less what is already on its way to it
        (``in_flight`` other requests sent, and the slots reserved but not yet left)."""
        self.hints += 1
        while self.slots and self.slots[0] <= now:
            self.slots.popleft()
        self.remaining = max(0, hint.remaining - in_flight - len(self.slots))
        self.reset_at = now + hint.reset_seconds
        self.limit = hint.limit or self.limit

    def reserve(self, now: float) -> float:
        """Seconds the next request should wait; takes its slot."""
        if self.remaining is None or self.reset_at is None or now >= self.reset_at:
            return 0.0
        low_water = max(LOW_WATER_MIN, int((self.limit or 0) * LOW_WATER_SHARE))
        if self.remaining > low_water:
            self.remaining -= 1
            return 0.0
        slot = max(now, self.next_slot)
        if self.remaining <= 0:
            slot = max(slot, self.reset_at)
        else:
            self.next_slot = slot + max(0.0, self.reset_at - slot) / self.remaining
            self.remaining -= 1
        if slot > now:
            self.slots.append(slot)
        return slot - now


class Answer(enum.Enum):
    """What one request's answer says about the server."""

    ACCEPTED = "accepted"
    """Any real answer that is not a 429: a success, a 4xx; the server is up and not refusing."""
    REFUSED = "refused"
    """429: the server refused for rate."""
    FAILED = "failed"
    """5xx, timeout, lost connection: no real answer."""


@dataclass(frozen=True)
class KnownPace:
    """The pace a server took in an earlier run (the ledger remembers it per server and key)."""

    rate: float
    """Requests per second."""
    limited: bool
    """True: a limit the server showed by refusing; False: what it took, refusing nothing."""


@dataclass(frozen=True)
class PacingSettings:
    """The knobs; the defaults are the ones the benchmarks and simulations were run with."""

    rate_cap: float | None = None
    """``--rate``: never more requests per second than this."""
    limit_share: float = 0.15
    """Share of refusals that means a limit, until the stray share is measured (below it)."""
    limit_margin: float = 0.02
    """Then: points above the stray share (plus ``limit_confidence`` deviations of chance)."""
    limit_confidence: float = 2.5
    min_refusals: int = 3
    """Fewer refusals than this in the window never slow anybody."""
    window_seconds: float = 2.0
    """Answers judged for a limit: those of the last seconds (at least ``window_answers``)."""
    window_answers: int = 40
    clear_share: float = 0.5
    """A share of refusals this high means a limit after only ``clear_answers`` answers."""
    clear_answers: int = 10
    beta: float = 0.7
    """A decrease goes to this share of the measured sending rate."""
    recovery_seconds: float = 3.0
    """After a decrease, seconds until the pace is back at the rate the server took."""
    probe_gentleness: float = 0.01
    """Above the rate the server took, the curve climbs this much slower than below it."""
    measure_seconds: float = 1.0
    floor: float = 0.2
    """The pace never drops below this many requests per second."""
    outage_share: float = 0.8
    """Share of failures among the last ``outage_answers`` answers that means an outage."""
    outage_min_failures: int = 5
    outage_answers: int = 20
    outage_horizon: float = 10.0
    """Answers older than this many seconds are not judged for an outage."""
    probe_base: float = 0.5
    """First wait before a probe; it doubles with each failed probe, up to ``probe_cap``."""
    probe_cap: float = 2.0
    outage_budget: float = 31.0
    """Seconds an outage may last before a failed probe gives up the run."""
    slow_start: bool = False
    """Without a ``rate_cap`` or a known limit: start at ``start_rate`` (or the known pace)
    and double it every ``doubling_seconds`` until a limit shows, or ``ramp_ceiling``."""
    start_rate: float = 10.0
    start_burst: int = 10
    """The slow start's first requests leave at once (TCP's initial window of 10)."""
    doubling_seconds: float = 1.0
    ramp_ceiling: float = 1000.0
    """A ramp this fast is no limit any more: the pace is then free."""
    ramp_share: float = 0.5
    """During the slow start: refusals this share of the requests sent in the last
    ``ramp_seconds`` mean the limit is reached (a token bucket refuses half at once)."""
    ramp_seconds: float = 0.5
    ramp_refusals: int = 4
    hold_share: float = 0.5
    """When the slow start meets refusals: hold this share of the pace while the limit is
    measured (an emptied token bucket takes exactly its limit)."""
    estimate_gentleness: float = 0.1
    """Above a hold no refusal ended, the curve climbs this much slower than below it."""
    hold_seconds: float = 1.0
    """A hold no refusal ends within this is below the limit: it becomes the curve's base."""
    known_pace: KnownPace | None = None
    """What the server took in the last run: a limit starts the pace there."""


@dataclass(frozen=True)
class Gate:
    """The outage guard's verdict for one request."""

    go: bool
    probe: bool = False
    """This request is the one probe of an outage."""
    wait: float | None = None
    """When not ``go``: seconds until asking again, or None to wait for the probe's answer."""


GO = Gate(go=True)


class RateGovernor:
    """The shared pace: unlimited (or ``--rate``) until refusals show a real limit."""

    def __init__(self, settings: PacingSettings) -> None:
        self.settings = settings
        self.cap = settings.rate_cap
        self.next_slot = -math.inf
        self.sent_rate = RecentRate(settings.measure_seconds)
        self.accepted_rate = RecentRate(settings.measure_seconds)
        self.refused_rate = RecentRate(settings.measure_seconds)
        self.window: deque[tuple[float, bool]] = deque()
        self.window_refusals = 0
        self.w_max: float | None = None
        """The rate the server accepted at the last decrease (None: no limit seen yet)."""
        self.decreased_at = -math.inf
        """The origin of the cubic curve (before the decrease when it was not a full one)."""
        self.last_decrease = -math.inf
        self._k = settings.recovery_seconds
        self._c = (1 - settings.beta) / settings.recovery_seconds**3
        self.accepted_at_limit: list[float] = []
        """What the server was measured accepting at each decrease."""
        self.refused = 0
        self.answered = 0
        self.in_flight = 0
        """Requests sent, not answered: successes of slow creates come after the refusals."""
        self.below_limit = [0, 0]
        """Answers and refusals to requests sent well below the last limit: the stray share."""
        self.started_at: float | None = None
        self.ramp_from: float | None = None
        """The slow start's first pace; None once it is over (or when there is none)."""
        self.estimated = False
        """The last limit is a hold no refusal ended: probe above it as fast as below."""
        self.hold_from: float | None = None
        self.hold_rate = 0.0
        self.ramp_refused: deque[float] = deque()
        """During the slow start: when the recent refused requests were sent."""
        self.peak_sent = 0.0
        self.burst_left = settings.start_burst
        """The fastest pace measured: what a server with no limit showed it takes."""
        known = settings.known_pace
        if known is not None and known.limited:
            self.w_max = max(settings.floor, known.rate)
        elif settings.slow_start and self.cap is None:
            self.ramp_from = max(settings.start_rate, known.rate if known is not None else 0.0)

    def _begin(self, now: float) -> None:
        """The first request: a known limit's curve and the slow start's clock start here."""
        self.started_at = now
        if self.w_max is not None:
            self.decreased_at = now - self._k  # at the known limit, probing gently above it

    def _ramp(self, now: float) -> float | None:
        """The slow start's pace now; None when there is none (or no more)."""
        if self.ramp_from is None or self.started_at is None:
            return None
        elapsed = max(0.0, now - self.started_at)
        rate = self.ramp_from * 2 ** (elapsed / self.settings.doubling_seconds)
        if rate >= self.settings.ramp_ceiling:
            self.ramp_from = None
            return None
        return rate

    def rate(self, now: float) -> float | None:
        """Requests per second allowed now; None means no limit."""
        if self.started_at is None:
            self._begin(now)
        if self.hold_from is not None and now - self.hold_from >= self.settings.hold_seconds:
            self._hold_was_below_the_limit(now)
        if self.w_max is None:
            pace = self.hold_rate if self.hold_from is not None else self._ramp(now)
            if pace is None:
                return self.cap
            return pace if self.cap is None else min(pace, self.cap)
        t = now - self.decreased_at - self._k
        c = self._c if t < 0 else self._c * self.settings.probe_gentleness
        if t >= 0 and self.estimated:
            c = self._c * self.settings.estimate_gentleness
        rate = max(self.settings.floor, self.w_max * (1 + c * t**3))
        return rate if self.cap is None else min(rate, self.cap)

    def reserve(self, now: float) -> float:
        """Reserve the next departure slot; seconds to wait for it."""
        rate = self.rate(now)
        if rate is None:
            return 0.0
        if self.ramp_from is not None and self.burst_left > 0:
            self.burst_left -= 1
            return 0.0
        slot = max(now, self.next_slot)
        if self.ramp_from is not None:
            # Slots reserved ahead take the pace of their own time: the ramp's, not the start's.
            rate = self.rate(slot) or rate
        self.next_slot = slot + 1.0 / rate
        return slot - now

    def sent(self, now: float) -> None:
        """A request left."""
        self.sent_rate.add(now)
        self.in_flight += 1
        self.peak_sent = max(self.peak_sent, self.sent_rate.per_second(now))

    def answered_with(self, now: float, sent_at: float, answer: Answer) -> None:
        """One answer (FAILED answers are ignored here: they are the outage guard's)."""
        self.in_flight = max(0, self.in_flight - 1)
        if answer is Answer.FAILED:
            return
        self.answered += 1
        refused = answer is Answer.REFUSED
        if refused:
            self.refused += 1
            self.refused_rate.add(now)
        else:
            self.accepted_rate.add(now)
        if sent_at <= self.last_decrease:
            return  # sent before the last decrease: old news, once per window
        if refused and self.ramp_from is not None:
            self.ramp_refused.append(sent_at)
        pace = self.rate(sent_at)
        settled = sent_at >= self.last_decrease + self.settings.measure_seconds / 2
        if settled and self.w_max is not None and pace is not None and pace <= 0.95 * self.w_max:
            self.below_limit[0] += 1
            self.below_limit[1] += refused
        self.window.append((now, refused))
        self.window_refusals += refused
        settings = self.settings
        while len(self.window) > settings.window_answers and (
            self.window[0][0] < now - settings.window_seconds
        ):
            _, was_refused = self.window.popleft()
            self.window_refusals -= was_refused
        if not refused:
            return
        if self.hold_from is not None:
            if now - self.hold_from >= self.settings.measure_seconds / 2:
                self._decrease(now)  # measured while the bucket is empty: its limit
        elif self._ramp_hit_the_limit(now):
            pace = self._ramp(now) or self.sent_rate.per_second(now)
            self.ramp_from = None
            self.hold_from = now
            self.hold_rate = max(self.settings.floor, self.settings.hold_share * pace)
        elif self._limit_shows():
            self._decrease(now)

    def _limit_shows(self) -> bool:
        settings, answers = self.settings, len(self.window)
        if answers >= settings.clear_answers and self.window_refusals >= (
            settings.clear_share * answers
        ):
            return True
        return (
            answers >= settings.window_answers
            and self.window_refusals >= settings.min_refusals
            and self.window_refusals >= self._refusals_meaning_a_limit(answers)
        )

    def _ramp_hit_the_limit(self, now: float) -> bool:
        """During the slow start: since the first recent refusal, refusals are a large share
        of what was *sent* (strays come back before successes, but stay a small share of
        what leaves; an emptied token bucket refuses about half at once)."""
        refused = self.ramp_refused
        while refused and refused[0] <= now - self.settings.ramp_seconds:
            refused.popleft()
        if self.ramp_from is None or len(refused) < self.settings.ramp_refusals:
            return False
        sent = sum(1 for t in self.sent_rate.times if t >= refused[0])
        return len(refused) >= self.settings.ramp_share * sent

    def _hold_was_below_the_limit(self, now: float) -> None:
        """No refusal ended the hold: the server takes at least its pace; probe above it."""
        self.w_max = self.hold_rate
        self.decreased_at = now - self._k
        self.estimated = True
        self.hold_from = None

    def _refusals_meaning_a_limit(self, answers: int) -> float:
        """How many refusals among ``answers`` mean a real limit: more than strays give even
        by bad luck (5% of strays: 7 of 40). A thinner test takes noise for a limit, and
        each decrease lowers the next one's measure: the pace ratchets down."""
        seen, refused = self.below_limit
        if seen < self.settings.window_answers:
            # No stray share known yet: successes still on their way count as answers, or
            # the first refusals (back at once) look like more than they are.
            return self.settings.limit_share * (answers + self.in_flight)
        stray = (refused + 1) / (seen + 2)
        noise = self.settings.limit_confidence * math.sqrt(answers * stray * (1 - stray))
        return answers * (stray + self.settings.limit_margin) + noise

    def _decrease(self, now: float) -> None:
        sent = self.sent_rate.per_second(now)
        accepted = self._taken_since_refusals_began(now)
        current = self.rate(now)
        if current is not None:
            sent = min(sent, current)
        self.accepted_at_limit.append(accepted)
        self.ramp_from = self.hold_from = None
        self.estimated = False
        self.ramp_refused.clear()
        cap = self.cap if self.cap is not None else math.inf
        self.w_max = min(cap, max(self.settings.floor, accepted))
        target = min(self.w_max, max(self.settings.floor, self.settings.beta * min(sent, accepted)))
        # Put the curve's origin where it passes through ``target`` now, so that it is back
        # at w_max after K = recovery_seconds (sooner when the decrease was a smaller one).
        drop = max(0.0, 1 - target / self.w_max)
        self.decreased_at = now - (self._k - (drop / self._c) ** (1 / 3))
        self.last_decrease = now
        self.window.clear()
        self.window_refusals = 0

    def _taken_since_refusals_began(self, now: float) -> float:
        """Requests per second the server took (sent, not refused) since the refusals began
        and the last decrease: not from the successes, which slow creates answer late. Once a
        token bucket refuses, it takes exactly its limit (bursts came before)."""
        first_refusal = next((t for t, refused in self.window if refused), now)
        began = max(first_refusal, self.last_decrease)
        measure = self.settings.measure_seconds
        span = min(measure, max(now - began, measure / 2))

        def since(times: deque[float]) -> int:
            return sum(1 for t in times if t > now - span)

        taken = since(self.sent_rate.times) - since(self.refused_rate.times)
        if taken <= 0:
            taken = since(self.accepted_rate.times)
        return max(0, taken) / span

    def pace_to_remember(self) -> KnownPace | None:
        """What this run showed the server takes, for the next run to start from."""
        learned = self.learned_limit
        if learned is not None:
            return KnownPace(learned, limited=True)
        known = self.settings.known_pace
        if known is not None and known.limited:
            return known  # started there and nothing refused: the limit still stands
        return KnownPace(self.peak_sent, limited=False) if self.peak_sent > 0 else None

    @property
    def learned_limit(self) -> float | None:
        """About how many requests per second the server accepted when it refused (median)."""
        if not self.accepted_at_limit:
            return None
        return statistics.median(self.accepted_at_limit)


class OutageGuard:
    """Closed while the server answers; open (one probe at a time) while it does not."""

    def __init__(self, settings: PacingSettings) -> None:
        self.settings = settings
        self.recent: deque[tuple[float, bool]] = deque()
        self.is_open = False
        self.opened_at = -math.inf
        self.failed_probes = 0
        self.next_probe_at = 0.0
        self.probe_out = False
        self.gave_up = False
        self.probes = 0

    def gate(self, now: float) -> Gate:
        """May a request go now?"""
        if not self.is_open:
            return GO
        if self.probe_out:
            return Gate(go=False)
        if now < self.next_probe_at:
            return Gate(go=False, wait=self.next_probe_at - now)
        self.probe_out = True
        self.probes += 1
        return Gate(go=True, probe=True)

    def answered_with(self, now: float, sent_at: float, answer: Answer, probe: bool) -> None:
        """One answer; a FAILED probe re-arms the back-off, any other answer to a fresh request
        closes the guard."""
        if self.is_open:
            if answer is Answer.FAILED:
                if probe:
                    self._probe_failed(now)
                return
            if probe or sent_at >= self.opened_at:
                self._close()
            return
        self.recent.append((now, answer is Answer.FAILED))
        settings = self.settings
        while len(self.recent) > settings.outage_answers or (
            self.recent and self.recent[0][0] < now - settings.outage_horizon
        ):
            self.recent.popleft()
        if answer is Answer.FAILED:
            failures = sum(failed for _, failed in self.recent)
            if failures >= settings.outage_min_failures and failures >= settings.outage_share * len(
                self.recent
            ):
                self._open(now)

    def abandoned(self, probe: bool) -> None:
        """A request that ended without an answer either way (cancelled): free the probe."""
        if probe and self.probe_out:
            self.probe_out = False

    def _open(self, now: float) -> None:
        self.is_open = True
        self.opened_at = now
        self.failed_probes = 0
        self.probe_out = False
        self.next_probe_at = now + self.settings.probe_base

    def _probe_failed(self, now: float) -> None:
        self.probe_out = False
        self.failed_probes += 1
        if now - self.opened_at >= self.settings.outage_budget:
            self.gave_up = True
        step = self.settings.probe_base * 2**self.failed_probes
        self.next_probe_at = now + min(self.settings.probe_cap, step)

    def _close(self) -> None:
        self.is_open = False
        self.probe_out = False
        self.recent.clear()


class Pacer:
    """The rate governor and the outage guard of one run, fed the same answers."""

    def __init__(self, settings: PacingSettings | None = None) -> None:
        self.settings = settings or PacingSettings()
        self.rate = RateGovernor(self.settings)
        self.outage = OutageGuard(self.settings)
        self.window = WindowPacer()

    def gate(self, now: float) -> Gate:
        """The outage guard's verdict (ask again before the request leaves)."""
        return self.outage.gate(now)

    def reserve(self, now: float) -> float:
        """Seconds until this request's departure slot (reserved): the later of both paces."""
        return max(self.rate.reserve(now), self.window.reserve(now))

    def hinted(self, now: float, hint: RateHint) -> None:
        """An answer's ``X-RateLimit-*`` hint, reported by the target."""
        self.window.hinted(now, hint, in_flight=max(0, self.rate.in_flight - 1))

    def sent(self, now: float) -> None:
        """A request left."""
        self.rate.sent(now)

    def answered(self, now: float, sent_at: float, answer: Answer, *, probe: bool) -> None:
        """One request's answer, for both."""
        self.rate.answered_with(now, sent_at, answer)
        self.outage.answered_with(now, sent_at, answer, probe)

    def abandoned(self, probe: bool) -> None:
        """A request that ended without an answer (cancelled)."""
        self.outage.abandoned(probe)

    def pace_to_remember(self) -> KnownPace | None:
        """What this run showed the server takes, for the next run to start from."""
        return self.rate.pace_to_remember()

    def slowed_since(self, reserved_at: float) -> bool:
        """Whether the pace dropped after a slot was reserved at ``reserved_at``: a request
        still waiting for it asks again, rather than leave at the pace that was refused."""
        rate = self.rate
        dropped = max(rate.last_decrease, rate.hold_from if rate.hold_from is not None else -1)
        return dropped > reserved_at

    def limit_summary(self) -> str | None:
        """One line for the run summary when the server refused anything, else None."""
        refused = self.rate.refused
        if not refused:
            return None
        share = refused / max(1, self.rate.answered)
        learned = self.rate.learned_limit
        if learned is None:
            return (
                f"{refused:,} requests ({share:.1%}) were refused with 429, scattered: "
                "no rate limit showed, the pace was kept"
            )
        accepted = max(1, round(learned))
        # A token bucket lets bursts through, so what was measured is a little above the
        # steady limit: the advice keeps 5% under it, so that nothing is refused.
        advice = max(1, math.floor(0.95 * learned))
        return (
            f"the server accepted about {accepted} requests/s "
            f"({refused:,} requests, {share:.1%}, refused with 429); "
            f"next time pass --rate {advice}"
        )
