"""Pass one's mapping, on the machine's other cores when the manifest is long.

Mapping and checking a row is most of what pass one costs, and a batch's rows are mapped
without looking at any other batch: so while the main process reads the file, asks the
ledger and fills the index, worker processes map the batches it hands them. Each batch
comes back reduced to what pass one keeps of it (``MappedOutcome``: the index entries,
the spooled rows already serialized, the rejected rows, the keys learned), made by the
same function whether a worker or the main process maps it, so the index, the spool and
every count are the same either way (``tests/test_mapping_pool.py``). Batches come back in
the order they were handed in.

Workers start only once a manifest has passed ``ROWS_BEFORE_WORKERS`` rows (starting one
costs about 0.3 s), never for a media preflight or a mapper the package does not own, and
each ignores Ctrl-C (the main process stops them) and exits by itself if the main process
is killed. A batch a worker could not map (the worker killed, out of memory)
is mapped by the main process, and so is every batch after it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import marshal
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from importer.ledger.manifest_index import records_form, serialized_batch, serialized_records
from importer.ledger.row_cache import KeyedRow
from importer.plan.recordings import prefix_of
from importer.plan.spool_form import plain_rows, rows_of
from importer.read.manifest import Batch, PlainColumns, batch_of, batch_values
from importer.rows.hashes import contacts_hash
from importer.rows.validate import MappedRow
from importer.settings import ROWS_BEFORE_WORKERS

MOST_WORKERS = 3
"""More would wait on the main process, which reads the file and fills the index."""
PARENT_CHECK_SECONDS = 1.0


class MappedOutcome(NamedTuple):
    """A batch's mapped rows, reduced to what pass one keeps of them."""

    valid: list[tuple[str, int, str | None, str | None, str | None]]
    """(external_id, row, payload hash, source id, media URL) of each valid row (the hash
    None in a plan's index entries: ``batch_outcome``)."""
    prefixes: set[str]
    """The external_id prefixes of the valid rows."""
    spooled: tuple[int, int, bytes] | None
    """The mapped rows as the spool keeps them (form, size, bytes: ``serialized_batch``);
    None for a batch of valid rows in a plan's spool, which keeps its records as read
    (``MappingPool`` puts them in: ``spooled_records``)."""
    ids: list[str]
    """The mapped rows' external_ids."""
    importable: bool
    """Whether every mapped row is valid with something to import."""
    mapped: int
    """How many rows were mapped."""
    rejected: list[MappedRow]
    """The rows that are invalid or have nothing to import."""
    learned: list[KeyedRow]
    """What the mapped rows' keys map to (rows without a key teach nothing)."""
    undecodable: list[int]
    """Rows with cells that are not text in the file's encoding."""


def outcome_of(
    mapped: list[MappedRow],
    keys: list[bytes | None] | None,
    compress: bool,
    spool_records: bool = False,
) -> MappedOutcome:
    """What pass one keeps of these mapped rows (``keys``: theirs, in order, if known).

    With ``spool_records`` (a plan's spool), a batch whose rows are all valid is spooled as
    its records as read, not its rows mapped (``spooled`` None): a plan reads such a batch
    back only to show it, or when a row shares its id or recording with another, and maps
    it again then; any other batch it reads back every time."""
    importable = all(r.skip_reason is None and r.valid for r in mapped)
    valid = [
        (r.external_id, r.row_number, r.payload_hash, r.source_id, media_url_of(r))
        for r in mapped
        if r.valid and r.payload is not None
    ]
    return MappedOutcome(
        valid,  # type: ignore[arg-type]
        {prefix_of(i, source or "") for i, _, _, source, _ in valid if i},
        None if spool_records and importable else serialized_batch(plain_rows(mapped), compress),
        [r.external_id for r in mapped if r.external_id],
        importable,
        len(mapped),
        [r for r in mapped if not r.valid or r.skip_reason is not None],
        learned_keys(mapped, keys) if keys is not None else [],
        [r.row_number for r in mapped if r.errors and any(e.rule == "encoding" for e in r.errors)],
    )


def batch_outcome(
    mapper: BatchMapping,
    records: Batch,
    keys: list[bytes | None] | None,
    compress: bool,
    spool_records: bool = False,
) -> MappedOutcome:
    """``outcome_of(mapper(records), ...)``; for a batch whose records a plan's spool keeps,
    made from the rows' index entries alone when every row is plain and no key is learned
    (``BatchMapper.index_entries``: no mapped row is made, no payload hash taken)."""
    entries_of = getattr(mapper, "index_entries", None) if spool_records and keys is None else None
    found = entries_of(records) if entries_of is not None else None
    if found is None:
        return outcome_of(mapper(records), keys, compress, spool_records)
    if found and isinstance(found[0], MappedRow):
        return outcome_of(found, keys, compress, spool_records)
    # Plain rows are valid, with nothing to skip: the batch is importable, nothing rejected.
    return MappedOutcome(
        found,
        {i[: len(i) - len(source)] for i, _, _, source, _ in found},  # prefix_of's, inline
        None,
        [entry[0] for entry in found],
        True,
        len(found),
        [],
        [],
        [],
    )


def spooled_records(records: Batch, compress: bool) -> tuple[int, int, bytes]:
    """A batch's records as a plan's spool keeps them (column by column for ``PlainColumns``,
    form ``COLUMNS``): pass two maps again the few batches it reads back, and pass one
    spools half the bytes."""
    form, size, data = serialized_batch(batch_values(records), compress)  # pickled if need be
    return form | records_form(isinstance(records, PlainColumns)), size, data


def learned_keys(mapped: list[MappedRow], keys: list[bytes | None]) -> list[KeyedRow]:
    """What the keys of these rows (``keys``, in order) map to: valid rows only."""
    return [
        KeyedRow(
            key,
            row.external_id,
            row.payload_hash,
            contacts_hash(row.contact_ids) if row.contact_ids is not None else None,
            row.source_id,
            media_url_of(row),
        )
        for row, key in zip(mapped, keys, strict=True)
        if key is not None and row.valid and row.external_id and row.payload_hash
    ]


def media_url_of(row: MappedRow) -> str | None:
    """The media URL the row's request carries (DevRev's carries none to preflight)."""
    return row.payload.get("media_url") if row.payload else None


def owned(mapper: Callable[..., Any]) -> bool:
    """Whether a worker can make this row mapper itself: a function of the package's own,
    which a worker imports by name (a closure or one from elsewhere stays here)."""
    module, name = getattr(mapper, "__module__", ""), getattr(mapper, "__qualname__", "<")
    return module.startswith("importer.") and "<" not in name and "." not in name


BatchMapping = Callable[[Batch], list[MappedRow]]


class MappingPool:
    """Maps batches and reduces them (``batch_outcome``), in the main process until
    ``rows_before_workers`` rows were handed in, then (``workers`` > 0) in worker processes,
    each mapping with ``worker_setup``'s mapper (a class or function the package owns, and
    its arguments: a worker makes its own); ``ready`` and ``rest`` give the outcomes in the
    order of ``submit``."""

    def __init__(
        self,
        mapper: BatchMapping,
        worker_setup: tuple[Callable[..., BatchMapping], tuple[Any, ...]] | None,
        workers: int,
        rows_before_workers: int = ROWS_BEFORE_WORKERS,
    ) -> None:
        self.mapper = mapper
        self.worker_setup = worker_setup
        self.workers = workers if worker_setup is not None else 0
        self.rows_before_workers = rows_before_workers
        self.rows = 0
        self.pending: deque[_Pending] = deque()
        self.executor: concurrent.futures.ProcessPoolExecutor | None = None
        self.by_workers = 0
        """Batches whose outcome a worker made."""

    def __enter__(self) -> MappingPool:
        return self

    def __exit__(self, *_: object) -> None:
        self._stop_workers(wait=True)

    def _stop_workers(self, wait: bool) -> None:
        """No worker from now on; without ``wait`` (the pool failed), each is killed."""
        self.workers = 0
        if self.executor is None:
            return
        # The pool's own list: one started by a submit just as another worker died is left
        # waiting for work by the pool's clean-up, which then waits for it for ever.
        workers = list((self.executor._processes or {}).values())
        # On a stop: nothing waits for batches no one will read.
        self.executor.shutdown(wait=wait, cancel_futures=True)
        self.executor = None
        if not wait:
            for worker in workers:
                worker.kill()

    def submit(
        self,
        records: Batch,
        keys: list[bytes | None] | None,
        compress: bool,
        *,
        spool_records: bool = False,
    ) -> None:
        """Hand in a batch (its records' keys, if known; ``compress``: its spooled form;
        ``spool_records``: the spool keeps its records, not its rows mapped); its outcome
        comes in turn."""
        self.rows += len(records)
        if self.executor is None and self.workers and self.rows > self.rows_before_workers:
            assert self.worker_setup is not None
            self.executor = concurrent.futures.ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(*self.worker_setup, os.getpid()),
            )
        pending = _Pending(None, records, keys, compress, spool_records, None)
        if self.executor is not None and records:  # a batch all settled has nothing to map
            try:
                # Plain values both ways, in marshal's form: several times cheaper than
                # pickling them, and the main process's time is what the workers wait on.
                rows = marshal.dumps(batch_values(records))
                columns = isinstance(records, PlainColumns)
                batch = marshal.dumps((rows, columns, keys, compress, spool_records))
            except ValueError:
                batch = None  # a cell that is not plain text: mapped here
            if batch is not None:
                try:
                    with _stops_held():  # a submit may start a worker
                        future = self.executor.submit(_map_in_worker, batch)
                    sent = rows if spool_records else None
                    pending = pending._replace(future=future, sent=sent)
                except Exception:  # the pool is broken (a worker died): mapped here from now
                    self._stop_workers(wait=False)
        self.pending.append(pending)

    def ready(self) -> Iterator[MappedOutcome]:
        """The outcomes of the earliest batches, keeping the workers busy: all of them
        when no worker runs."""
        while self.pending and (
            len(self.pending) > 2 * self.workers
            or self.executor is None
            or self.pending[0].future is None
            or self.pending[0].future.done()
        ):
            yield self._outcome(self.pending.popleft())

    def rest(self) -> Iterator[MappedOutcome]:
        """Every outcome still to come, in turn."""
        while self.pending:
            yield self._outcome(self.pending.popleft())

    def _outcome(self, pending: _Pending) -> MappedOutcome:
        """A batch's outcome: as its worker sent it; or made here, if it was never sent, or
        its worker died (killed, out of memory) or failed: mapping it here again gives the
        outcome, or raises the error as pass one without workers would."""
        if pending.future is not None:
            try:
                outcome = _received(pending.future.result())
            except Exception:
                self._stop_workers(wait=False)  # the batches still out are mapped here
            else:
                self.by_workers += 1
                return self._records_put_in(outcome, pending)
        outcome = batch_outcome(
            self.mapper, pending.records, pending.keys, pending.compress, pending.spool_records
        )
        return self._records_put_in(outcome, pending)

    @staticmethod
    def _records_put_in(outcome: MappedOutcome, pending: _Pending) -> MappedOutcome:
        """The outcome, its records as the spool keeps them if they are to be spooled: the
        bytes sent to the worker, compressed here (a worker never loads the codec)."""
        if outcome.spooled is not None:
            return outcome
        if pending.sent is not None:
            columns = isinstance(pending.records, PlainColumns)
            spooled = serialized_records(pending.sent, pending.compress, columns)
            return outcome._replace(spooled=spooled)
        return outcome._replace(spooled=spooled_records(pending.records, pending.compress))


class _Pending(NamedTuple):
    """A batch handed in: what was sent to a worker (None: to be mapped here), and what to
    map it here from, if need be."""

    future: concurrent.futures.Future[bytes] | None
    records: Batch
    keys: list[bytes | None] | None
    compress: bool
    spool_records: bool
    sent: bytes | None
    """With ``spool_records``, the records as sent to the worker (marshalled), which the
    spool keeps if they are all valid."""


STOPS = {signal.SIGINT, signal.SIGTERM}


@contextlib.contextmanager
def _stops_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM held back (not lost) in this thread meanwhile: a worker started
    now starts with them held, so one that reaches the whole process group while the
    worker's Python is still starting is not a fatal error printed there; once the worker
    ignores Ctrl-C, it lets them through (a SIGTERM held ends it then, quietly)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def worker_count() -> int:
    """Workers for a long manifest: one a core this process may run on (the reader mostly
    waits on them), at most ``MOST_WORKERS``, at least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(MOST_WORKERS, cores or 1))


_worker_mapper: BatchMapping | None = None


def _start_worker(
    make_mapper: Callable[..., BatchMapping], arguments: tuple[Any, ...], parent: int
) -> None:
    """A worker's setup: its own mapper; stops only when told, or when the parent is gone."""
    global _worker_mapper
    # Ctrl-C reaches the whole process group: the main process stops the workers. SIGTERM
    # stays fatal: the pool ends its workers with it when one of them dies.
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # one held since the start is dropped here
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)
    gc.set_threshold(10_000, 10, 10)  # as the console script does: the rows hold no cycles
    _worker_mapper = make_mapper(*arguments)
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()


def _exit_when_orphaned(parent: int) -> None:
    # A main process killed outright leaves its workers waiting on a queue for ever.
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)


def _map_in_worker(batch: bytes) -> bytes:
    assert _worker_mapper is not None
    rows, columns, keys, compress, spool_records = marshal.loads(batch)
    records = batch_of(marshal.loads(rows), columns)
    # A plan's spool keeps the records the main process sent: it spools them itself.
    outcome = batch_outcome(_worker_mapper, records, keys, compress, spool_records)
    # A NamedTuple is not marshal's: its fields go as a plain tuple, rows and keys as theirs.
    rejected, learned = plain_rows(outcome.rejected), [tuple(k) for k in outcome.learned]
    return marshal.dumps((*outcome[:6], rejected, learned, outcome.undecodable))


def _received(outcome: bytes | MappedOutcome) -> MappedOutcome:
    """An outcome as a worker sent it (marshalled plain values), or as made here."""
    if isinstance(outcome, MappedOutcome):
        return outcome
    made = MappedOutcome(*marshal.loads(outcome))
    return made._replace(
        rejected=rows_of(made.rejected),  # type: ignore[arg-type]
        learned=list(map(KeyedRow._make, made.learned)),
    )
