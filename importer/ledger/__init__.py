"""The ledger: a SQLite file that records every row's outcome, so runs resume exactly.

Tables:

- ``engagements``: one row per ``external_id`` that was planned for sending: status
  (``pending``, ``in_flight``, ``created``, ``existing``, ``failed``), payload hash, engagement
  id, attempts, the last error, contact and verification state.
- ``rejects``: manifest rows that were never sendable (``invalid`` or ``duplicate``), keyed
  by manifest and row number, with their original cells so ``errors.csv`` can be fixed and
  fed back; and rows with nothing to import (``skipped``), listed in ``skipped.csv``.
- ``runs``: each run's command, options (never the API key), times, counts and outcome, and
  its settings' stored form (``ImportSettings.to_record``), which ``retry`` reads back.
- ``media_checks``: cached ``--check-media`` results per URL.
- ``reference_lookups`` (made when first needed): what the target answered, per run, for
  a manifest value that names one of its objects by external reference (DevRev's
  ``parent``: the accounts a CRM account id matched), so each is asked about once a run.
- ``row_keys`` and ``server_paces``: what makes a re-sync cheap (``row_cache``).

A row is marked ``in_flight`` (and committed) before its request leaves, so a process that
dies mid-request leaves evidence, and the next run re-sends it; the API's idempotency on
``external_id`` turns that re-send into a harmless ``200``.

The package, by concern:

- ``db``: opening, schema, the run lock, ``open_ledger`` (a context manager);
- ``runs``: the runs table; ``rows``: the send write-path; ``rejects``: rows never sent;
- ``queries``: named read queries for planning, ``status``, ``report`` and ``verify``;
- ``media_cache``: cached media preflight results;
- ``lookalikes``: ids equal under Unicode NFKC but different as text.
- ``references``: reference lookups (DevRev parents) per run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from importer.ledger.db import STATUSES, now_iso, require_ledger
from importer.ledger.lookalikes import Lookalikes
from importer.ledger.media_cache import MediaCache
from importer.ledger.queries import Queries
from importer.ledger.references import ReferenceLookups
from importer.ledger.rejects import Rejects
from importer.ledger.row_cache import RowCache
from importer.ledger.rows import Rows
from importer.ledger.runs import Runs
from importer.outcomes import FINAL_SUCCESS, LedgerFact, Reject

__all__ = [
    "FINAL_SUCCESS",
    "STATUSES",
    "Ledger",
    "LedgerFact",
    "Reject",
    "now_iso",
    "open_ledger",
    "require_ledger",
]


class Ledger(Runs, Rows, Rejects, Queries, MediaCache, Lookalikes, ReferenceLookups, RowCache):
    """One ledger file, opened for a command. Not shared between threads.

    Use it as a context manager (or through ``open_ledger``) so it is always closed.
    """

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@contextmanager
def open_ledger(path: Path, *, readonly: bool = False, exclusive: bool = False) -> Iterator[Ledger]:
    """The ledger at ``path``, closed on the way out; ``exclusive`` also holds the run lock."""
    with Ledger(path, readonly=readonly) as ledger:
        if exclusive:
            with ledger.exclusive():
                yield ledger
        else:
            yield ledger
