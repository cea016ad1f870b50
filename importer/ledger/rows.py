"""The send write-path: each engagement row from in_flight to its outcome.

The in-flight mark commits at once: a row is ``in_flight`` on disk before its request
leaves. Outcome writes commit at once too, except inside ``grouped_outcomes`` (a run's
sending), where they are committed together at most ``interval`` seconds after the first
of a group, or with the next in-flight mark. A crash can then lose only outcomes of that
last interval: their rows are still ``in_flight`` on disk, and the next run re-sends them,
safely (a known ``external_id`` answers ``200``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from importer.ledger.db import LedgerDB, now_iso
from importer.outcomes import Status


class Rows(LedgerDB):
    """Writes to the ``engagements`` table while sending, and after (contacts, verify)."""

    _group_interval: float | None = None
    """Inside ``grouped_outcomes``: seconds an outcome may wait for its commit."""
    _group_started: float | None = None
    """When the oldest uncommitted outcome was written."""

    @contextmanager
    def grouped_outcomes(self, interval: float = 0.05) -> Iterator[None]:
        """Outcome writes inside are committed in groups (see the module docstring)."""
        self._group_interval = interval
        try:
            yield
        finally:
            self._group_interval = None
            self.flush_outcomes()

    def flush_outcomes(self) -> None:
        """Commit the outcomes written so far."""
        if self.db.conn.in_transaction:
            self.db.conn.commit()
        self._group_started = None

    def flush_outcomes_if_due(self) -> None:
        """Commit the group if its oldest outcome has waited ``interval`` seconds."""
        started, interval = self._group_started, self._group_interval
        if started is not None and interval is not None and time.monotonic() - started >= interval:
            self.flush_outcomes()

    @contextmanager
    def _outcome_write(self) -> Iterator[None]:
        """Commit now, or, while grouping, with the group."""
        if self._group_interval is None:
            with self.db.conn:
                yield
            return
        if not self.db.conn.in_transaction:
            self.db.conn.execute("BEGIN")  # else sqlite-utils commits each write at once
        yield
        if self._group_started is None:
            self._group_started = time.monotonic()
        else:
            self.flush_outcomes_if_due()

    def mark_in_flight(
        self,
        external_id: str,
        manifest: str,
        row_number: int,
        payload_hash: str,
        run_id: int,
        *,
        source_id: str | None = None,
        media_url: str | None = None,
        cells: dict[str, str] | None = None,
        timezone: str | None = None,
    ) -> None:
        """Committed before the request leaves: a crash then leaves evidence to resend.

        The row's source id and media URL tie it to later imports of the same recording;
        its cells let ``errors.csv`` list it while its answer is unknown; ``timezone`` is
        the zone its time without an offset was read in (a later run must not differ).
        """
        stamp = now_iso()
        cells_json = json.dumps(cells, ensure_ascii=False) if cells is not None else None
        with self.db.conn:
            self.db.execute(
                "INSERT INTO engagements (external_id, manifest, row_number, status, transient, "
                "payload_hash, attempts, run_id, first_seen_at, sent_at, updated_at, "
                "source_id, media_url, cells, timezone) "
                f"VALUES (?, ?, ?, '{Status.IN_FLIGHT}', 0, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(external_id) DO UPDATE SET manifest = excluded.manifest, "
                f"row_number = excluded.row_number, status = '{Status.IN_FLIGHT}', transient = 0, "
                "payload_hash = excluded.payload_hash, run_id = excluded.run_id, "
                "sent_at = excluded.sent_at, updated_at = excluded.updated_at, "
                "source_id = COALESCE(excluded.source_id, source_id), "
                "media_url = COALESCE(excluded.media_url, media_url), "
                "cells = COALESCE(excluded.cells, cells), "
                "timezone = COALESCE(excluded.timezone, timezone)",
                [
                    external_id,
                    manifest,
                    row_number,
                    payload_hash,
                    run_id,
                    stamp,
                    stamp,
                    stamp,
                    source_id,
                    media_url,
                    cells_json,
                    timezone,
                ],
            )

    def note_recordings(self, rows: list[tuple[str, str | None, str | None]]) -> None:
        """(external_id, source_id, media_url) of imported rows a run saw unchanged: a
        ledger from before version 2 learns them, so later imports can be checked."""
        if not rows:
            return
        with self.db.conn:
            self.db.conn.executemany(
                "UPDATE engagements SET source_id = ?, media_url = ? "
                "WHERE external_id = ? AND (source_id IS NULL OR media_url IS NULL)",
                [(source_id, media_url, external_id) for external_id, source_id, media_url in rows],
            )
        self._group_started = None  # that commit took any grouped outcomes with it

    def note_sent_again(self, external_id: str) -> None:
        """A retry is leaving: ``sent_at`` becomes now, committed at once, so a crash leaves
        the time the last attempt was sent (a doubt settles from it)."""
        with self.db.conn:
            self.db.execute(
                "UPDATE engagements SET sent_at = ? WHERE external_id = ?",
                [now_iso(), external_id],
            )

    def record_doubt(self, external_id: str, message: str) -> None:
        """The create may have been applied and is not found yet: the row stays in flight
        (a later run looks it up again before any re-create), with the reason kept."""
        with self._outcome_write():
            self.db.execute(
                f"UPDATE engagements SET status = '{Status.IN_FLIGHT}', error_message = ?, "
                "updated_at = ? WHERE external_id = ?",
                [message, now_iso(), external_id],
            )

    def sent_times(self, external_ids: list[str]) -> dict[str, float]:
        """When the last attempt of each of these rows was sent (seconds since the epoch)."""
        times: dict[str, float] = {}
        for start in range(0, len(external_ids), 500):  # within SQLite's bound on parameters
            chunk = external_ids[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            for external_id, sent_at in self.db.execute(
                f"SELECT external_id, sent_at FROM engagements WHERE external_id IN ({marks}) "
                "AND sent_at IS NOT NULL",
                chunk,
            ).fetchall():
                with contextlib.suppress(ValueError):
                    times[external_id] = dt.datetime.fromisoformat(sent_at).timestamp()
        return times

    def count_attempt(self, external_id: str) -> None:
        """One more request sent for this row (retries included)."""
        with self._outcome_write():
            self.db.execute(
                "UPDATE engagements SET attempts = attempts + 1 WHERE external_id = ?",
                [external_id],
            )

    def record_success(
        self,
        external_id: str,
        *,
        created: bool,
        engagement_id: str,
        http_status: int,
        payload_hash: str,
        field_hashes: dict[str, str],
        found_by: str = "create",
        changed: tuple[tuple[str, ...], str | None] = ((), None),
    ) -> None:
        """201 is ``created``, 200 is ``existing``; the engagement id is kept either way.

        ``found_by`` is the check that found the engagement: ``create`` (its answer) or
        ``lookup`` (a search by external id before or after an unsure create).
        ``changed``: the fields a 200 held with other values, and that said for people
        (kept in ``error_message``, so errors.csv lists the row until the two agree).
        """
        stamp = now_iso()
        fields, difference = changed
        with self._outcome_write():
            self.db.execute(
                "UPDATE engagements SET status = ?, transient = 0, http_status = ?, "
                "engagement_id = ?, sent_hash = ?, payload_hash = ?, field_hashes = ?, "
                "error_message = ?, error_detail = NULL, error_errors = NULL, "
                "request_id = NULL, cells = NULL, changed_fields = ?, found_by = ?, "
                "completed_at = ?, updated_at = ? "
                "WHERE external_id = ?",
                [
                    Status.CREATED if created else Status.EXISTING,
                    http_status,
                    engagement_id,
                    payload_hash,
                    payload_hash,
                    json.dumps(field_hashes),
                    difference,
                    ", ".join(fields) or None,
                    found_by,
                    stamp,
                    stamp,
                    external_id,
                ],
            )

    def engagement_holder(self, engagement_id: str, external_id: str) -> str | None:
        """Another external_id already recorded with ``engagement_id``, if any."""
        found = self.db.execute(
            "SELECT external_id FROM engagements WHERE engagement_id = ? AND external_id != ? "
            "LIMIT 1",
            [engagement_id, external_id],
        ).fetchone()
        return str(found[0]) if found else None

    def record_failure(
        self,
        external_id: str,
        *,
        message: str,
        transient: bool,
        http_status: int | None,
        detail: str | None,
        field_errors: list[dict[str, Any]],
        request_id: str | None,
        cells: dict[str, str],
        engagement_id: str | None = None,
    ) -> None:
        """A failed row keeps the server's words and its cells, for errors.csv.

        ``engagement_id``: one the refused answer named (made anyway); kept, so the row is
        never created again while that engagement exists."""
        stamp = now_iso()
        with self._outcome_write():
            self.db.execute(
                f"UPDATE engagements SET status = '{Status.FAILED}', transient = ?, "
                "http_status = ?, error_message = ?, error_detail = ?, error_errors = ?, "
                "request_id = ?, cells = ?, engagement_id = COALESCE(?, engagement_id), "
                "updated_at = ? WHERE external_id = ?",
                [
                    int(transient),
                    http_status,
                    message,
                    detail,
                    json.dumps(field_errors) if field_errors else None,
                    request_id,
                    json.dumps(cells, ensure_ascii=False),
                    engagement_id,
                    stamp,
                    external_id,
                ],
            )

    def return_to_pending(self, external_id: str) -> None:
        """The request was never sent (the run stopped first): nothing to resolve later."""
        with self.db.conn:
            self.db.execute(
                f"UPDATE engagements SET status = '{Status.PENDING}', updated_at = ? "
                f"WHERE external_id = ? AND status = '{Status.IN_FLIGHT}'",
                [now_iso(), external_id],
            )

    def note_changes(self, changed: dict[str, list[str]], unchanged: list[str]) -> None:
        """Remember which imported rows differ from the manifest now (for ``status``)."""
        with self.db.conn:
            self.db.conn.executemany(
                "UPDATE engagements SET changed_fields = ? WHERE external_id = ?",
                [(", ".join(fields), eid) for eid, fields in changed.items()],
            )
            self.db.conn.executemany(
                "UPDATE engagements SET changed_fields = NULL "
                "WHERE external_id = ? AND changed_fields IS NOT NULL",
                [(eid,) for eid in unchanged],
            )

    def record_contacts(self, external_id: str, contacts_hash: str) -> None:
        """The contact set now applied to the engagement."""
        stamp = now_iso()
        with self._outcome_write():
            self.db.execute(
                "UPDATE engagements SET contacts_hash = ?, contacts_applied_at = ?, "
                "contacts_error = NULL, "
                "updated_at = ? WHERE external_id = ?",
                [contacts_hash, stamp, stamp, external_id],
            )

    def record_contacts_failure(self, external_id: str, message: str) -> None:
        """Replace contacts failed: kept for ``status``; the next run tries again."""
        with self._outcome_write():
            self.db.execute(
                "UPDATE engagements SET contacts_error = ?, updated_at = ? WHERE external_id = ?",
                [message, now_iso(), external_id],
            )

    def record_processing(self, external_id: str, processing_status: str, etag: str | None) -> None:
        """What ``verify`` saw, and when."""
        stamp = now_iso()
        with self.db.conn:
            self.db.execute(
                "UPDATE engagements SET processing_status = ?, etag = COALESCE(?, etag), "
                "processing_seen_at = ? WHERE external_id = ?",
                [processing_status, etag, stamp, external_id],
            )
