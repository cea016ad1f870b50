"""Grouped outcome writes: the in-flight mark still commits at once; outcomes wait for a group.

What another process (or the next run, after a crash) sees is read through a second,
independent connection to the same file: only committed data.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from importer.ledger import Ledger


def on_disk(path: Path) -> dict[str, str]:
    """Statuses as a crash would leave them: committed rows only."""
    with sqlite3.connect(path) as other:
        return dict(other.execute("SELECT external_id, status FROM engagements").fetchall())


def succeed(ledger: Ledger, external_id: str) -> None:
    ledger.record_success(
        external_id,
        created=True,
        engagement_id="ngmt_" + external_id,
        http_status=201,
        payload_hash="h",
        field_hashes={"title": "0" * 16},
    )


def test_outcomes_wait_for_their_group_but_the_in_flight_mark_never_does(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with Ledger(path) as ledger, ledger.grouped_outcomes(interval=3600.0):
        ledger.mark_in_flight("a", "m.csv", 2, "h", 1)
        assert on_disk(path) == {"a": "in_flight"}  # committed before the request leaves
        succeed(ledger, "a")
        ledger.count_attempt("a")
        # A crash now loses the outcome: the row is in_flight on disk, and is re-sent.
        assert on_disk(path) == {"a": "in_flight"}
        ledger.mark_in_flight("b", "m.csv", 3, "h", 1)
        # The next mark's commit takes the waiting outcome with it.
        assert on_disk(path) == {"a": "created", "b": "in_flight"}
        succeed(ledger, "b")
        ledger.flush_outcomes()
        assert on_disk(path) == {"a": "created", "b": "created"}


def test_a_group_is_committed_once_its_interval_has_passed(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with Ledger(path) as ledger, ledger.grouped_outcomes(interval=0.0):
        ledger.mark_in_flight("a", "m.csv", 2, "h", 1)
        ledger.mark_in_flight("b", "m.csv", 3, "h", 1)
        succeed(ledger, "a")  # the first of a group starts it
        succeed(ledger, "b")  # a zero interval is over at once: both committed
        assert on_disk(path) == {"a": "created", "b": "created"}


def test_leaving_the_group_commits_what_waits(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with Ledger(path) as ledger:
        with ledger.grouped_outcomes(interval=3600.0):
            ledger.mark_in_flight("a", "m.csv", 2, "h", 1)
            succeed(ledger, "a")
        assert on_disk(path) == {"a": "created"}
        ledger.mark_in_flight("b", "m.csv", 3, "h", 1)
        succeed(ledger, "b")  # outside a group: committed at once, as before
        assert on_disk(path) == {"a": "created", "b": "created"}
