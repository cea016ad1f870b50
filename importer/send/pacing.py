"""A sliding count of events per second: what the pacer sent, and what came back."""

from __future__ import annotations

import enum
import math
import statistics
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass

from importer.settings import KnownPace, PacingSettings
from importer.targets.http import RateHint


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


LOW_WATER_SHARE = 0.2
"""Spread the requests once fewer than this share of the window's limit remain."""
LOW_WATER_MIN = 10


class WindowPacer:
    """Departure slots from the last hint; every reserved slot counts against what remains."""

    def __init__(self) -> None:
        self.remaining: int | None = None
        self.reset_at: float | None = None
        self.limit: int | None = None
        self.next_slot = -math.inf
        self.slots: deque[float] = deque()
        """Departures reserved in the future, oldest first."""

    def hinted(self, now: float, hint: RateHint, in_flight: int = 0) -> None:
        """Remember the window an answer describes, less what is already on its way to it
        (``in_flight`` other requests sent, and the slots reserved but not yet left)."""
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
class Gate:
    """The outage guard's verdict for one request."""

    go: bool
    probe: bool = False
    """This request is the one probe of an outage."""
    wait: float | None = None
    """When not ``go``: seconds until asking again, or None to wait for the probe's answer."""


GO = Gate(go=True)

RTT_WEIGHT = 0.125
"""Weight of each new round trip in the smoothed one (TCP's 1/8)."""
STRAY_MARGIN = 0.02
"""Refusals to requests sent at most this share above the last limit measure the stray share:
a token bucket empties too slowly there to refuse (``below_limit``)."""
LONG_MEASURE_SECONDS = 2.0
"""A limit measured from one empty bucket to the next, when they are this far apart: more
exact than the second after the refusals began (a few requests either way)."""
PACED_BURST_SECONDS = 0.25
BURST_SECONDS = 1.0
"""A token bucket commonly lets a second of its rate through at once: what the slow start
took before the first refusals is that burst plus the limit over the time it took."""


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
        """Answers and refusals to requests sent at the last limit or below: the stray share."""
        self.held = [0, 0]
        """The same during the slow start's hold: the stray share if no refusal ends it."""
        self.started_at: float | None = None
        self.ramp_from: float | None = None
        """The slow start's first pace; None once it is over (or when there is none)."""
        self.round_trip: float | None = None
        """The smoothed time from a request to its accepted answer."""
        self.sent_count = 0
        self.measured_long: float | None = None
        """The last limit measured from one empty bucket to the next: the best there is."""
        self.emptied: tuple[float, int] | None = None
        """When the server's bucket was last seen empty (the slow start's end, a decrease),
        and how many requests it had taken by then."""
        self.estimated = False
        """The last limit is a hold no refusal ended: probe above it as fast as below."""
        self.hold_from: float | None = None
        self.hold_rate = 0.0
        self.ramp_refused: deque[float] = deque()
        """During the slow start: when the recent refused requests were sent."""
        self.peak_sent = 0.0
        """The fastest pace measured: what a server with no limit showed it takes."""
        known = settings.known_pace
        if known is not None and known.limited:
            self.w_max = max(settings.floor, known.rate)
        elif settings.slow_start and self.cap is None:
            self.ramp_from = max(settings.start_rate, known.rate if known is not None else 0.0)
        self.burst_left = settings.start_burst
        """The first requests leave at once (TCP's initial window; at a known limit, a quarter
        second of it, which a rested bucket takes). Never with ``--rate``: no second may see
        more than it."""
        if self.cap is not None:
            self.burst_left = 0
        elif self.w_max is not None:
            self.burst_left = min(self.burst_left, math.floor(self.w_max * PACED_BURST_SECONDS))

    def _begin(self, now: float) -> None:
        """The first request: a known limit's curve and the slow start's clock start here."""
        self.started_at = now
        if self.w_max is not None:
            self.decreased_at = now - self._k  # at the known limit, probing gently above it
            # A rested bucket holds about a second of its limit: what it takes beyond that
            # until it first refuses is its limit.
            self.emptied = (now, round(self.w_max * BURST_SECONDS))

    def _ramp(self, now: float) -> float | None:
        """The slow start's pace now; None when there is none (or no more)."""
        if self.ramp_from is None or self.started_at is None:
            return None
        elapsed = max(0.0, now - self.started_at)
        rate = self.ramp_from * 2 ** (elapsed / self.settings.doubling_seconds)
        if rate >= self.settings.ramp_ceiling:
            self.ramp_from = None
            return None
        if self.round_trip:
            # A window, as TCP's: two more requests in flight per success (three times as
            # many per round trip; TCP's one more, twice as many, lost 0.3 s more at 500 ms);
            # whichever is faster (a slow server's round trip is long). Past what the slots
            # allow, it paces nothing, but the ramp still watches for a limit.
            window = self.settings.start_burst + 2 * (self.answered - self.refused)
            rate = max(rate, window / self.round_trip)
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
        if self.burst_left > 0:
            self.burst_left -= 1
            if rate is not None:  # then the pace, from the first slot after the burst
                self.next_slot = max(self.next_slot, now + 1.0 / rate)
            return 0.0
        if rate is None:
            return 0.0
        slot = max(now, self.next_slot)
        self.next_slot = slot + 1.0 / rate
        return slot - now

    def sent(self, now: float) -> None:
        """A request left."""
        self.sent_rate.add(now)
        self.sent_count += 1
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
            trip = now - sent_at
            smooth = self.round_trip
            self.round_trip = trip if smooth is None else smooth + RTT_WEIGHT * (trip - smooth)
        if sent_at <= self.last_decrease:
            return  # sent before the last decrease: old news, once per window
        if refused and self.ramp_from is not None:
            self.ramp_refused.append(sent_at)
        pace = self.rate(sent_at)
        settled = sent_at >= self.last_decrease + self.settings.measure_seconds / 2
        if settled and self.w_max is not None and pace is not None:
            if pace <= (1 + STRAY_MARGIN) * self.w_max:
                self.below_limit[0] += 1
                self.below_limit[1] += refused
        elif self.hold_from is not None and sent_at >= self.hold_from:
            self.held[0] += 1
            self.held[1] += refused
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
            self.emptied = (now, self.sent_count - self.refused)
            hold = min(self.settings.hold_share * pace, self._taken_per_second(now))
            self.hold_rate = max(self.settings.floor, hold)
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

    def _taken_per_second(self, now: float) -> float:
        """What the server took since the first request, less the burst a token bucket lets
        through: its limit when that burst is a second of it (sent, not refused: the
        successes of slow creates are still on their way)."""
        elapsed = now - (self.started_at if self.started_at is not None else now)
        return max(0, self.sent_count - self.refused) / (elapsed + BURST_SECONDS)

    def _hold_was_below_the_limit(self, now: float) -> None:
        """No refusal ended the hold: the server takes at least its pace; probe above it."""
        self.w_max = self.hold_rate
        self.below_limit = list(self.held)
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
        taken = self.sent_count - self.refused
        if self.emptied is not None and now - self.emptied[0] >= LONG_MEASURE_SECONDS:
            # Empty then and now, never full between: it took its limit all along.
            since, taken_then = self.emptied
            accepted = min(accepted, (taken - taken_then) / (now - since))
            self.measured_long = accepted
        self.emptied = (now, taken)
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
        """About how many requests per second the server accepted when it refused: the last
        measure from one empty bucket to the next, else the median of the short ones; before
        any, the pace the slow start held when it met the limit."""
        if not self.accepted_at_limit:
            if self.hold_from is not None or self.estimated:
                return self.hold_rate
            return None
        if self.measured_long is not None:
            return self.measured_long
        return statistics.median(self.accepted_at_limit)


class OutageGuard:
    """Closed while the server answers; open (one probe at a time) while it does not."""

    def __init__(self, settings: PacingSettings) -> None:
        self.settings = settings
        self.recent: deque[tuple[float, bool, object]] = deque()
        """(when, failed, whose): the answers judged; ``whose`` is the row (None: unknown)."""
        self.last_heard: float | None = None
        """When the server last answered anything (or the first request left)."""
        self.timeouts_since_heard = 0
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

    def sent(self, now: float) -> None:
        """A request left: the silence of a server that never answers counts from the first."""
        if self.last_heard is None:
            self.last_heard = now

    def timed_out(self, now: float) -> None:
        """A request got no answer at all within the read timeout.

        One timeout may be one slow row; a second with nothing heard in between, after the
        outage budget of silence, means a silent server: the run gives up (rows pending)
        instead of waiting a read timeout per attempt per row.
        """
        self.timeouts_since_heard += 1
        silence = now - (self.last_heard if self.last_heard is not None else now)
        if self.timeouts_since_heard >= 2 and silence >= self.settings.outage_budget:
            self.gave_up = True

    def answered_with(
        self, now: float, sent_at: float, answer: Answer, probe: bool, whose: object = None
    ) -> None:
        """One answer; a FAILED probe re-arms the back-off, any other answer to a fresh request
        closes the guard. Failures are counted by row (``whose``): one row that always fails
        is that row's problem, not an outage, however few rows there are."""
        if self.is_open:
            if answer is Answer.FAILED:
                if probe:
                    self._probe_failed(now)
                return
            if probe or sent_at >= self.opened_at:
                self._close()
            return
        self.recent.append((now, answer is Answer.FAILED, whose))
        settings = self.settings
        while len(self.recent) > settings.outage_answers or (
            self.recent and self.recent[0][0] < now - settings.outage_horizon
        ):
            self.recent.popleft()
        if answer is Answer.FAILED:
            failures = _rows(entry for entry in self.recent if entry[1])
            answers = _rows(self.recent)
            if (
                failures >= settings.outage_min_failures
                and failures >= settings.outage_share * answers
            ):
                self._open(now)

    def heard(self, now: float) -> None:
        """The server answered something (any status): it is not silent."""
        self.last_heard = now
        self.timeouts_since_heard = 0

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


def _rows(entries: Iterable[tuple[float, bool, object]]) -> int:
    """Answers counted by row: a row's retries are one; answers of no known row each one."""
    unknown = 0
    rows: set[object] = set()
    for _, _, whose in entries:
        if whose is None:
            unknown += 1
        else:
            rows.add(whose)
    return unknown + len(rows)


CLEAN_STRETCH_SECONDS = 5
"""Seconds in a row without a refusal that show a pace the server takes (a token bucket's
burst lasts about one second)."""


class PaceRecord:
    """Requests by the second they left, and what came of them: what the run summary may
    advise. The governor's learned limit counts a token bucket's first burst as pace (it
    once advised --rate 72 against 30/s); the advice never goes above what the server took
    without refusing."""

    def __init__(self) -> None:
        self.sent: Counter[int] = Counter()
        self.accepted: Counter[int] = Counter()
        self.refused: Counter[int] = Counter()

    def add_sent(self, at: float) -> None:
        self.sent[math.floor(at)] += 1

    def add_answer(self, sent_at: float, answer: Answer) -> None:
        if answer is Answer.REFUSED:
            self.refused[math.floor(sent_at)] += 1
        elif answer is Answer.ACCEPTED:
            self.accepted[math.floor(sent_at)] += 1

    def taken_while_refusing(self) -> float | None:
        """Requests per second accepted from the first refusal to the last: a saturated
        bucket takes its limit, whatever was sent (None before a few seconds of it)."""
        if not self.refused:
            return None
        first, last = min(self.refused), max(self.refused)
        if last - first + 1 < CLEAN_STRETCH_SECONDS:
            return None
        taken = sum(n for second, n in self.accepted.items() if first <= second <= last)
        return taken / (last - first + 1)

    def clean_pace(self) -> float | None:
        """The highest pace sent for ``CLEAN_STRETCH_SECONDS`` in a row, after the first
        refusal, with none of it refused (None when no such stretch was run)."""
        if not self.refused:
            return None
        start, end = min(self.refused), max(self.sent)
        best: float | None = None
        stretch: list[int] = []
        for second in range(start, end + 1):
            if self.refused[second] or not self.sent[second]:
                stretch = []
                continue
            stretch.append(self.sent[second])
            if len(stretch) >= CLEAN_STRETCH_SECONDS:
                pace = sum(stretch[-CLEAN_STRETCH_SECONDS:]) / CLEAN_STRETCH_SECONDS
                best = pace if best is None else max(best, pace)
        return best


class Pacer:
    """The rate governor and the outage guard of one run, fed the same answers."""

    def __init__(self, settings: PacingSettings | None = None) -> None:
        self.settings = settings or PacingSettings()
        self.rate = RateGovernor(self.settings)
        self.outage = OutageGuard(self.settings)
        self.window = WindowPacer()
        self.record = PaceRecord()

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
        self.outage.sent(now)
        self.record.add_sent(now)

    def answered(
        self,
        now: float,
        sent_at: float,
        answer: Answer,
        *,
        probe: bool,
        whose: object = None,
        heard: bool = True,
    ) -> None:
        """One request's answer, for both; ``heard`` is False for a timeout (no answer)."""
        self.record.add_answer(sent_at, answer)
        self.rate.answered_with(now, sent_at, answer)
        self.outage.answered_with(now, sent_at, answer, probe, whose)
        if heard:
            self.outage.heard(now)
        else:
            self.outage.timed_out(now)

    def waits_too_long(self, delay: float) -> bool:
        """Whether a departure this far away is past what the run waits for (``longest_wait``)."""
        return delay > self.settings.longest_wait

    def abandoned(self, probe: bool) -> None:
        """A request that ended without an answer (cancelled)."""
        self.outage.abandoned(probe)

    def pace_to_remember(self) -> KnownPace | None:
        """What this run showed the server takes, for the next run to start from."""
        return self.rate.pace_to_remember()

    def slowed_since(self, reserved_at: float) -> bool:
        """Whether the slow start met the limit after a slot was reserved at ``reserved_at``: a
        request still waiting for it asks again, rather than leave at the ramp's pace.

        Only the ramp's end: after an ordinary decrease, slots reserved earlier keep their
        place (re-asking there starved slow creates and read their refusals as a higher limit).
        """
        hold_from = self.rate.hold_from
        return hold_from is not None and hold_from > reserved_at

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
        # A token bucket lets bursts through, so what was measured is above the steady
        # limit: the advice takes the lowest measure, and keeps 5% under it.
        measures = [learned, self.record.taken_while_refusing(), self.record.clean_pace()]
        taken = min(m for m in measures if m is not None)
        advice = max(1, math.floor(0.95 * taken))
        return (
            f"the server accepted about {max(1, round(taken))} requests/s "
            f"({refused:,} requests, {share:.1%}, refused with 429); "
            f"next time pass --rate {advice}"
        )
