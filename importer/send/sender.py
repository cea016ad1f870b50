"""What the sender is given and gives back: work items, how to send, and the outcome."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from importer.errors import (
    ApiError,
    FatalError,
    HostUnreachable,
    InDoubt,
    IntegrityProblem,
    NoAnswerInTime,
    OutageTooLong,
    PermanentError,
    RateLimited,
    RemoteDuplicate,
    RunAborted,
    SendingStopped,
    ServerUnavailable,
    TransientError,
    Unreachable,
    UnresolvedReference,
)
from importer.events import Reporter
from importer.ledger import Ledger
from importer.outcomes import Outcome
from importer.plan.planner import judge_answer
from importer.rows.hashes import contacts_hash
from importer.send.pacing import Answer, Pacer
from importer.send.retry import retry_policy
from importer.settings import KnownPace, SendSettings
from importer.targets.base import CreateResult, Target


@dataclass(frozen=True)
class WorkItem:
    """One create to send, with what the ledger and reports need about it."""

    external_id: str
    manifest: str
    row_number: int
    payload: dict[str, Any]
    payload_hash: str
    field_hashes: dict[str, str]
    cells: dict[str, str]
    contact_ids: tuple[str, ...] | None = None
    contacts_only: bool = False
    """The engagement exists; only its contacts need re-applying."""
    engagement_id: str | None = None
    source_id: str | None = None
    """The CRM's id before the prefix (kept in the ledger to notice a changed prefix)."""
    sent_before: bool = False
    """An earlier run left it ``in_flight``: a 200 is most likely that run's own create."""
    timezone: str | None = None
    """The zone the row's time without an offset is read in (recorded in the ledger)."""
    resolved: dict[str, str] = field(default_factory=dict)
    """Reference fields as the target's own ids (DevRev's ``parent``), sent in place of the
    manifest's values; ``payload`` keeps those, so its hash stays the manifest's."""

    @property
    def request(self) -> dict[str, Any]:
        """The create body as sent: the payload with its references resolved."""
        return {**self.payload, **self.resolved} if self.resolved else self.payload


@dataclass
class SendOutcome:
    """Counts by outcome, and why the run stopped early, if it did."""

    counts: Counter[Outcome] = field(default_factory=Counter)
    requests: int = 0
    fatal: ApiError | None = None
    aborted: RunAborted | None = None
    interrupted: bool = False
    pacing: str | None = None
    """What the server's refusals taught (the limit it accepted), when it refused any."""


Item = TypeVar("Item")
T = TypeVar("T")


class WorkerPool(Generic[Item]):
    """``size`` workers calling ``handle`` on each item put, until ``close``."""

    def __init__(
        self,
        handle: Callable[[Item], Awaitable[None]],
        stop: asyncio.Event,
        *,
        size: int,
        grace_seconds: float,
    ) -> None:
        self.handle, self.stop, self.size, self.grace_seconds = handle, stop, size, grace_seconds
        self._queue: asyncio.Queue[Item | None] = asyncio.Queue(size)
        self._workers: set[asyncio.Task[None]] = set()
        self._crash: Exception | None = None
        """An unexpected error in a worker: re-raised once the others have stopped."""

    def start(self) -> None:
        """Start the workers."""
        self._workers = {asyncio.create_task(self._worker()) for _ in range(self.size)}

    async def put(self, item: Item | None) -> None:
        """Queue an item; once stopping, waiting work is dropped (it stays pending)."""
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except asyncio.QueueFull:
                if all(worker.done() for worker in self._workers):
                    return  # nobody left to take it: the row stays pending
                if self.stop.is_set():
                    with contextlib.suppress(asyncio.QueueEmpty):
                        self._queue.get_nowait()
                    continue
                await asyncio.sleep(0.005)  # workers are busy; a stop must not wait on them

    async def close(self) -> None:
        """No more items: wait for the workers; after a stop, give them a grace period."""
        for _ in self._workers:
            await self.put(None)
        stopped = asyncio.ensure_future(self.stop.wait())
        pending: set[Any] = set(self._workers)
        try:
            while pending and not stopped.done():
                _, pending = await asyncio.wait(
                    pending | {stopped}, return_when=asyncio.FIRST_COMPLETED
                )
                pending.discard(stopped)
            if pending:
                _, pending = await asyncio.wait(pending, timeout=self.grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            stopped.cancel()
        if self._crash is not None:
            raise self._crash

    async def _worker(self) -> None:
        """Take items until the end; an unexpected error stops the whole run, not one worker."""
        try:
            while True:
                item = await self._queue.get()
                if item is None:
                    return
                if self.stop.is_set():
                    continue
                await self.handle(item)
        except Exception as error:
            self._crash = self._crash or error
            self.stop.set()


@dataclass
class _CreateState:
    """One row's creates in this run: how many left, and when the last unsure one did."""

    creates: int = 0
    unsure_at: float | None = None
    """The sender's clock when a create got no clear answer (it may have been applied)."""
    reached: bool = False
    """Some create reached the server (it did more than fail to connect): it may have been
    applied, so the row stays in flight when the run stops."""


def counted(n: int, noun: str) -> str:
    """``1 attempt``, ``2 attempts``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


class PacedRequests:
    """Sends requests through the pacer; the sender sets up the state it uses."""

    pacer: Pacer
    slots: asyncio.Semaphore
    _departures: asyncio.Lock
    """Held by the request waiting for the next departure slot (first come, first served)."""
    clock: Callable[[], float]
    stop_event: asyncio.Event
    outcome: SendOutcome
    _changed: asyncio.Event
    """Set (and replaced) when a probe's answer may let waiting requests go."""
    _sleep: Callable[[float], Awaitable[Any]]
    base_url: str
    reached_server: bool
    """Some request of this run got an answer, or may have: until then an unreachable host
    is a wrong URL or no network (``HostUnreachable``), not an outage."""

    async def _call(
        self,
        request: Callable[[], Awaitable[Any]],
        before: Callable[[], None] | None = None,
        whose: object = None,
    ) -> Any:
        """One request, in a slot, through the pacer; its answer reported to the pacer.

        A failed outage probe is the outage's failure, not the row's: the same call waits for
        the next probe (or for the guard to close) instead of spending one of the row's
        attempts, until the outage budget is spent. ``whose`` names the row, so that its
        retries count once when the guard judges an outage.
        """
        async with self.slots:
            while True:
                probe = await self._gate()
                sent_at: float | None = None
                try:
                    await self._departure(probe)
                    if self.stop_event.is_set():
                        raise SendingStopped()
                    if self.pacer.outage.is_open and not probe:
                        continue  # the guard opened while this request waited for its slot
                    if before is not None:
                        before()
                    self.outcome.requests += 1
                    sent_at = self.clock()
                    self.pacer.sent(sent_at)
                    result = await request()
                except RateLimited:
                    self.reached_server = True
                    self._answered(sent_at, Answer.REFUSED, probe, whose)
                    raise
                except ServerUnavailable as error:
                    silent = isinstance(error, NoAnswerInTime)
                    self._answered(sent_at, Answer.FAILED, probe, whose, heard=not silent)
                    if isinstance(error, Unreachable) and not self.reached_server:
                        raise HostUnreachable(error, self.base_url) from None
                    self.reached_server = self.reached_server or not isinstance(error, Unreachable)
                    if self.pacer.outage.gave_up:
                        raise OutageTooLong(error) from None
                    if probe:
                        continue
                    raise
                except ApiError:
                    self.reached_server = True
                    self._answered(sent_at, Answer.ACCEPTED, probe, whose)
                    raise
                except BaseException:
                    self.pacer.abandoned(probe)
                    self._notify()
                    raise
                self.reached_server = True
                self._answered(sent_at, Answer.ACCEPTED, probe, whose)
                return result

    async def _departure(self, probe: bool) -> None:
        """Wait for this request's departure slot. One request at a time holds a slot ahead,
        so that a pace that rises (the slow start) or drops applies to the next one at once;
        a slot reserved before the slow start met the limit is asked for again."""
        async with self._departures:
            while True:
                reserved_at = self.clock()
                delay = self.pacer.reserve(reserved_at)
                if self.pacer.waits_too_long(delay):
                    self._window_too_far(delay)
                    raise SendingStopped()
                if delay <= 0:
                    return
                await self._sleep(delay)
                if probe or self.stop_event.is_set() or not self.pacer.slowed_since(reserved_at):
                    return

    async def _gate(self) -> bool:
        """Wait until the outage guard lets this request go; True when it is the probe."""
        while True:
            if self.stop_event.is_set():
                raise SendingStopped()
            gate = self.pacer.gate(self.clock())
            if gate.go:
                return gate.probe
            if gate.wait is not None:
                await self._sleep(gate.wait)
            else:
                await self._wait_for_change()

    async def _wait_for_change(self) -> None:
        """Until the probe's answer (or a stop), at most a few seconds."""
        waits = [
            asyncio.ensure_future(self._changed.wait()),
            asyncio.ensure_future(self.stop_event.wait()),
        ]
        try:
            await asyncio.wait(waits, timeout=5.0, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    def _answered(
        self,
        sent_at: float | None,
        answer: Answer,
        probe: bool,
        whose: object = None,
        *,
        heard: bool = True,
    ) -> None:
        if sent_at is None:  # nothing left
            self.pacer.abandoned(probe)
        else:
            now = self.clock()
            self.pacer.answered(now, sent_at, answer, probe=probe, whose=whose, heard=heard)
        if probe:
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _window_too_far(self, delay: float) -> None:
        """The server's rate window resets past the longest wait: stop, rows left pending."""
        if self.outcome.aborted is None:
            self.outcome.aborted = RunAborted(
                f"the server's rate limit window (X-RateLimit-Remaining: 0) resets in "
                f"{delay:,.0f} s, past the {self.pacer.settings.longest_wait:.0f} s the importer "
                "waits; rows not yet sent are still pending: run the same command again after "
                "the reset"
            )
        self.stop_event.set()

    def _unavailable(self, error: ApiError) -> RunAborted:
        outage = self.pacer.outage
        if not outage.is_open:  # a silent server: timeouts, never an answer
            silence = self.clock() - (outage.last_heard or 0.0)
            return RunAborted(
                f"the server gave no answer at all for {silence:,.0f} s ({error}). Rows not yet "
                "sent are still pending, and rows in flight may or may not have been applied: "
                "run the same command again later to resume"
            )
        return RunAborted(
            f"the server is unavailable ({error}); gave up after "
            f"{self.clock() - outage.opened_at:.0f} s of outage "
            f"and {counted(outage.probes, 'probe')}. "
            "Rows not yet sent are still pending, and rows in flight may or may not have "
            "been applied: run the same command again later to resume (re-sending both is safe)"
        )


class Sender(PacedRequests):
    """Runs the workers for one run."""

    def __init__(
        self,
        target: Target,
        ledger: Ledger,
        run_id: int,
        settings: SendSettings,
        reporter: Reporter,
        *,
        sleep: Callable[[float], Awaitable[Any]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """``sleep`` and ``clock`` are for tests, which pass a fake pair; ``wall_clock``
        dates the ledger's ``sent_at`` (doubts left by an earlier run settle by it)."""
        self.target, self.ledger, self.run_id = target, ledger, run_id
        self.wall_clock = wall_clock
        self.settings, self.reporter = settings, reporter
        self.stop_event = asyncio.Event()
        self._sleep = sleep or self._interruptible_sleep
        self.rng = rng or random.Random()
        self.clock = clock
        self.server = target.pace_key
        """Where the ledger keeps this server's pace (base URL and key fingerprint)."""
        self.pacer = Pacer(settings.pacing(self._known_pace()))
        target.on_rate_hint = lambda hint: self.pacer.hinted(self.clock(), hint)
        self.slots = asyncio.Semaphore(settings.concurrency)
        self._departures = asyncio.Lock()
        self.base_url = target.base_url
        self.reached_server = False
        self._changed = asyncio.Event()
        """Set (and replaced) when a probe's answer may let waiting requests go."""
        self.outcome = SendOutcome()
        self._grouping = contextlib.ExitStack()
        self._flusher: asyncio.Task[None] | None = None
        self._pool = WorkerPool(
            self._handle,
            self.stop_event,
            size=settings.concurrency * max(1, settings.rows_per_slot),
            grace_seconds=settings.grace_seconds,
        )

    # -- control -------------------------------------------------------------------------

    def interrupt(self) -> None:
        """Ctrl-C or SIGTERM: send nothing new, let in-flight requests finish."""
        if not self.stop_event.is_set():
            self.outcome.interrupted = True
            self.reporter.notice("Stopping: no new requests; waiting for those in flight...")
            self.stop_event.set()

    def _abort(self, error: ApiError | RunAborted) -> None:
        if isinstance(error, RunAborted):
            self.outcome.aborted = self.outcome.aborted or error
        elif self.outcome.fatal is None:
            self.outcome.fatal = error
        self.stop_event.set()

    async def _interruptible_sleep(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.stop_event.wait(), timeout=max(0.0, seconds))

    # -- the run -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the workers; then ``put`` each item, and ``finish``."""
        self._grouping.enter_context(self.ledger.grouped_outcomes(self.settings.outcome_interval))
        self._flusher = asyncio.create_task(self._flush_outcomes())
        self._pool.start()

    async def _flush_outcomes(self) -> None:
        """Commit grouped outcomes that wait, even while no other write comes to take them."""
        while True:
            await asyncio.sleep(self.settings.outcome_interval)
            self.ledger.flush_outcomes_if_due()

    async def put(self, item: WorkItem) -> bool:
        """Queue one item for the workers; False, queueing nothing, once the run is stopping."""
        if self.stop_event.is_set():
            return False
        await self._pool.put(item)
        return True

    async def finish(self) -> SendOutcome:
        """No more items: the workers drain the queue (or stop), then the counts."""
        try:
            await self._pool.close()
        finally:
            if self._flusher is not None:
                self._flusher.cancel()
            self._grouping.close()  # commits the last group
        self.outcome.pacing = self.pacer.limit_summary()
        pace = self.pacer.pace_to_remember()
        if pace is not None and self.server is not None:
            self.ledger.remember_server_pace(self.server, pace.rate, pace.limited)
        return self.outcome

    def _known_pace(self) -> KnownPace | None:
        known = self.ledger.server_pace(self.server) if self.server is not None else None
        return KnownPace(*known) if known is not None else None

    async def _handle(self, item: WorkItem) -> None:
        if item.contacts_only:
            await self._sync_contacts(item, item.engagement_id or "")
        else:
            await self._send(item)

    def _mark_in_flight(self, item: WorkItem) -> None:
        self.ledger.mark_in_flight(
            item.external_id,
            item.manifest,
            item.row_number,
            item.payload_hash,
            self.run_id,
            source_id=item.source_id,
            media_url=item.payload.get("media_url"),
            cells=item.cells,
            timezone=item.timezone,
        )

    async def _send(self, item: WorkItem) -> None:
        sent = 0
        state = _CreateState()

        def before() -> None:
            nonlocal sent
            if sent == 0:  # committed before the first request leaves
                self._mark_in_flight(item)
            sent += 1
            self.ledger.count_attempt(item.external_id)

        try:
            result = None
            async for attempt in self._policy(item):
                with attempt:
                    result = await self._call(
                        lambda: self._create_once(item, state), before, item.external_id
                    )
            assert result is not None
        except SendingStopped:
            if sent and not state.reached:
                self.ledger.return_to_pending(item.external_id)
            return  # never sent: still pending; otherwise in_flight (it may have been applied)
        except FatalError as error:
            if sent == 1 or not state.reached:  # refused outright, or never connected
                self.ledger.return_to_pending(item.external_id)
            self._abort(error)  # otherwise in_flight: an earlier attempt may have been applied
            return
        except OutageTooLong as outage:
            # Left in_flight when an attempt may have been applied (the re-send is safe);
            # pending when every attempt failed to connect.
            if not state.reached:
                self.ledger.return_to_pending(item.external_id)
            self._abort(self._unavailable(outage.error))
            return
        except InDoubt as error:
            self._doubt(item, error)
            return
        except PermanentError as error:
            self._fail(item, error, transient=False)
            return
        except RateLimited as error:
            wait, cap = error.retry_after or 0, self.settings.retry.retry_after_cap
            if wait > cap:
                why = f"Retry-After {wait:.0f}s is past the {cap:.0f}s cap"
            else:
                why = f"still rate limited after {counted(sent, 'attempt')}"
            error.args = (f"{error} ({why}; left for a later run)",)
            if state.unsure_at is not None:  # an earlier create may have been applied
                self._doubt(item, error)
            else:
                self._fail(item, error, transient=True)
            return
        except TransientError as error:
            # This row's bad luck (an outage is the pacer's business): a later run retries it,
            # after a look-up when its create may have been applied (not idempotent).
            if state.unsure_at is not None:
                self._doubt(item, error)
            else:
                self._fail(item, error, transient=True)
            return
        await self._record(item, result, sent)

    async def _create_once(self, item: WorkItem, state: _CreateState) -> CreateResult:
        """One create; after an unsure one (not idempotent), a look-up first.

        Found: that is the engagement. Not found within ``settle_seconds`` of the unsure
        attempt: ``InDoubt`` (a list may show it late), never a second create.
        """
        if state.unsure_at is not None:
            found = await self.target.lookup([item.external_id])
            remote = (found or {}).get(item.external_id, [])
            if len(remote) > 1:
                raise RemoteDuplicate(item.external_id, [r.engagement_id for r in remote])
            if remote:
                return CreateResult(remote[0].engagement_id, False, 200, remote[0].body, "lookup")
            waited = self.clock() - state.unsure_at
            if waited < self.settings.settle_seconds:
                raise InDoubt(item.external_id, waited, self.settings.settle_seconds)
        if state.creates:
            self.ledger.note_sent_again(item.external_id)
        state.creates += 1
        try:
            return await self.target.create(item.request)
        except Unreachable:
            raise  # no connection was made: this attempt cannot have been applied
        except RateLimited:
            state.reached = True
            raise  # refused before anything was done
        except TransientError:
            state.reached = True
            if not self.target.creates_idempotently:
                state.unsure_at = self.clock()
            raise
        except BaseException:
            state.reached = True
            raise

    async def _looked_up(
        self, first: WorkItem, call: Callable[[], Awaitable[T]], what: str
    ) -> tuple[bool, T | None]:
        """A batch's look-up under the retry policy: (True, the answer), or (False, None)
        once the run stops, having said why; the batch's rows are then not created."""
        try:
            async for attempt in self._policy(first):
                with attempt:
                    return True, await self._call(call)
        except SendingStopped:
            return False, None
        except FatalError as error:
            self._abort(error)
        except OutageTooLong as outage:
            self._abort(self._unavailable(outage.error))
        except ApiError as error:
            self._abort(
                RunAborted(
                    f"could not look up {what} ({error}); nothing was created for them: run "
                    "the same command again to resume"
                )
            )
        return False, None

    def _doubt(self, item: WorkItem, error: ApiError) -> None:
        """Left in flight, counted and listed: a later run looks it up before any re-create."""
        message = error.describe()
        if not isinstance(error, InDoubt):
            message = (
                f"in doubt: {message}; an earlier create may have been applied: a later run "
                "looks it up (after --settle-seconds) before any re-create"
            )
        self.ledger.record_doubt(item.external_id, message)
        self.outcome.counts[Outcome.IN_DOUBT] += 1
        self.reporter.row_done(item.external_id, item.row_number, Outcome.IN_DOUBT, message)

    async def look_up(self, items: list[WorkItem]) -> list[WorkItem]:
        """Before creating: what the target already holds for these rows; the rest to send.

        A row found once is recorded as ``existing`` (found by ``lookup``), one found several
        times is failed for a person to resolve, never picked. A target whose create is
        idempotent (AskElephant) answers None: every row is sent. If the lookup cannot be
        made, the run stops: creating without it could make duplicates.
        """
        if not items or self.stop_event.is_set() or self.target.creates_idempotently:
            return items
        kept = []
        for item in items:
            made = await self._made_before(item) if item.engagement_id else False
            if made is None:
                return []  # the run is stopping
            if made:
                self._fail(item, self._made_problem(item), transient=False)
            else:
                kept.append(item)
        items = kept
        if not items:
            return items
        external_ids = [item.external_id for item in items]
        looked, found = await self._looked_up(
            items[0],
            lambda: self.target.lookup(external_ids),
            f"{len(items)} row(s) before creating them",
        )
        if not looked:
            return []
        if found is None:
            return items
        to_send = []
        doubted = [item.external_id for item in items if item.sent_before]
        sent_times = self.ledger.sent_times(doubted) if doubted else {}
        for item in items:
            remote = found.get(item.external_id, [])
            sent_at = sent_times.get(item.external_id)
            if not remote and sent_at is not None:
                waited = self.wall_clock() - sent_at
                if waited < self.settings.settle_seconds:  # an earlier run's create may show
                    self._doubt(
                        item, InDoubt(item.external_id, waited, self.settings.settle_seconds)
                    )
                    continue
            if not remote:
                to_send.append(item)
                continue
            self._mark_in_flight(item)
            if len(remote) > 1:
                duplicate = RemoteDuplicate(item.external_id, [r.engagement_id for r in remote])
                self._fail(item, duplicate, transient=False)
                continue
            result = CreateResult(remote[0].engagement_id, False, 200, remote[0].body, "lookup")
            await self._record(item, result)
        return to_send

    async def resolve_references(self, items: list[WorkItem]) -> list[WorkItem]:
        """Before creating: each row's reference (DevRev's ``parent``) as the target's own id.

        A value that already is the target's id is sent as it is. The others (CRM account
        ids) are looked up together, each distinct value once per run (the ledger keeps the
        answers); a value held by no object, or by several, fails its row alone and nothing
        is sent for it. If the lookup cannot be made, the run stops: nothing is created.
        """
        references = self.target.references
        if references is None or not items or self.stop_event.is_set():
            return items
        field_name = references.field
        values = [str(item.payload.get(field_name) or "") for item in items]
        foreign = [v for v in dict.fromkeys(values) if v and not references.is_native(v)]
        if not foreign:
            return items
        known = self.ledger.reference_answers(self.run_id, field_name, foreign)
        missing = [value for value in foreign if value not in known]
        if missing:
            looked, found = await self._looked_up(
                items[0],
                lambda: self.target.find_references(missing),
                f"the {references.noun}s of {len(items)} row(s)",
            )
            if not looked:
                return []
            assert found is not None
            answers = {value: found.get(value, []) for value in missing}
            self.ledger.record_reference_answers(self.run_id, field_name, answers)
            known.update(answers)
        ready = []
        for item, value in zip(items, values, strict=True):
            if not value or references.is_native(value):
                ready.append(item)
                continue
            ids = known.get(value, [])
            if len(ids) == 1:
                ready.append(dataclasses.replace(item, resolved={field_name: ids[0]}))
                continue
            unresolved = UnresolvedReference(field_name, references.noun, value, ids)
            self._fail(item, unresolved, transient=True)  # a later run looks it up again
        return ready

    async def _made_before(self, item: WorkItem) -> bool | None:
        """Whether the engagement a refused answer named for this row still exists (then the
        row is never created again); None when the run is stopping."""
        engagement_id = item.engagement_id or ""
        try:
            async for attempt in self._policy(item):
                with attempt:
                    await self._call(lambda: self.target.get(engagement_id))
        except SendingStopped:
            return None
        except FatalError as error:
            self._abort(error)
            return None
        except OutageTooLong as outage:
            self._abort(self._unavailable(outage.error))
            return None
        except PermanentError:
            return False  # 404: gone, so the row may be created
        except ApiError as error:
            self._abort(
                RunAborted(
                    f"could not read engagement {engagement_id} before re-creating row "
                    f"{item.row_number} ({error}): run the same command again to resume"
                )
            )
            return None
        return True

    def _made_problem(self, item: WorkItem) -> IntegrityProblem:
        return IntegrityProblem(
            f"integrity problem: engagement {item.engagement_id}, made by an earlier create of "
            f"this row whose answer was refused, still exists; the row is not created again: "
            f"check it in {self.target.label} (delete it to have the row created)",
            engagement_id=item.engagement_id,
        )

    async def _record(self, item: WorkItem, result: CreateResult, attempts: int = 1) -> None:
        """Record an engagement the target holds for the row, after the integrity check.

        ``attempts``: creates this run sent for the row (more than one: an earlier one may
        have been applied, its answer lost).
        """
        holder = self.ledger.engagement_holder(result.engagement_id, item.external_id)
        if holder is not None:
            problem = IntegrityProblem(
                f"integrity problem: HTTP {result.http_status} named engagement "
                f"{result.engagement_id}, already recorded for external_id {holder!r}; "
                f"nothing was recorded for this row: check both in {self.target.label}",
                status=result.http_status,
            )
            self._fail(item, problem, transient=False)
            return
        status = Outcome.CREATED if result.created else Outcome.EXISTING
        if status == Outcome.EXISTING and attempts > 1:
            # Our own earlier attempt was applied and its answer lost, most likely: say so,
            # or a first import reads as if someone had imported before.
            status = Outcome.EXISTING_OWN
        elif status == Outcome.EXISTING and item.sent_before:
            # An earlier run died mid-request: its create was applied, the answer lost.
            status = Outcome.EXISTING_EARLIER
        held = judge_answer(
            item.payload,
            item.payload_hash,
            item.field_hashes,
            created=result.created,
            answer=result.body,
        )
        # Held with other values: the row is counted (and kept for status and errors.csv)
        # once, as changed, not also as existing.
        difference = None
        if held.changed:
            status = Outcome.CHANGED
            difference = (
                f"{self.target.label} already held this engagement with other values: "
                f"{held.difference}; create cannot update it"
            )
        self.ledger.record_success(
            item.external_id,
            created=result.created,
            engagement_id=result.engagement_id,
            http_status=result.http_status,
            payload_hash=held.payload_hash,
            field_hashes=held.field_hashes,
            found_by=result.found_by,
            changed=(held.changed, difference),
        )
        self.outcome.counts[status] += 1
        self.reporter.row_done(
            item.external_id, item.row_number, status, difference or result.engagement_id
        )
        if item.contact_ids is not None:
            await self._sync_contacts(item, result.engagement_id)

    def _policy(self, item: WorkItem) -> Any:
        def announce(error: BaseException, wait: float, attempt: int) -> None:
            self.reporter.retrying(item.external_id, item.row_number, str(error), wait, attempt)

        return retry_policy(
            self.settings.retry, sleep=self._sleep, rng=self.rng, before_sleep=announce
        )

    def _fail(self, item: WorkItem, error: ApiError, *, transient: bool) -> None:
        made = error.engagement_id if isinstance(error, IntegrityProblem) else None
        self.ledger.record_failure(
            item.external_id,
            message=error.describe(),
            transient=transient,
            http_status=error.status,
            detail=error.detail,
            field_errors=error.field_errors,
            request_id=error.request_id,
            cells=item.cells,
            engagement_id=made,
        )
        self.outcome.counts[Outcome.FAILED] += 1
        self.reporter.row_done(item.external_id, item.row_number, Outcome.FAILED, error.describe())

    async def _sync_contacts(self, item: WorkItem, engagement_id: str) -> None:
        """Apply the row's contact set with Replace engagement contacts."""
        assert item.contact_ids is not None
        try:
            async for attempt in self._policy(item):
                with attempt:
                    await self._call(
                        functools.partial(
                            self.target.replace_contacts, engagement_id, item.contact_ids
                        )
                    )
        except SendingStopped:
            return
        except FatalError as error:
            self._abort(error)
            return
        except OutageTooLong as outage:
            self._abort(self._unavailable(outage.error))
            return
        except ApiError as error:
            self.ledger.record_contacts_failure(item.external_id, error.describe())
            self.outcome.counts[Outcome.CONTACTS_FAILED] += 1
            self.reporter.row_done(
                item.external_id, item.row_number, Outcome.CONTACTS_FAILED, error.describe()
            )
            return
        self.ledger.record_contacts(item.external_id, contacts_hash(item.contact_ids))
        self.outcome.counts[Outcome.CONTACTS_APPLIED] += 1
