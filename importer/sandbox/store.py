"""Where the sandbox keeps engagements: in memory, optionally mirrored to a SQLite file.

Memory is the working copy and answers every read; with a ``db_path`` every write also
goes to SQLite (committed before the answer), so engagements survive a restart or a
``kill -9``. External ids are claimed atomically: between a create's claim and its commit
(the simulated media fetch) a second create of the same id sees it as busy, never as free.

    >>> store = EngagementStore()
    >>> store.claim("crm:1") is None
    True
    >>> store.claim("crm:1")
    Traceback (most recent call last):
    ...
    importer.sandbox.store.ExternalIdBusy: crm:1
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field


class ExternalIdBusy(Exception):
    """Another create of this external_id is still being processed."""


@dataclass
class Engagement:
    """One stored engagement: what was sent, plus the server's own fields."""

    id: str
    external_id: str
    source_system: str
    title: str
    engagement_type: str
    is_private: bool
    run_workflows: bool
    start_at: str
    media_url: str
    created_at: float
    """Seconds since the epoch; processing_status is computed from it."""
    updated_at: float
    """Last change made through the API (contacts); status changes are added on read."""
    transcript_text: str | None = None
    participants: list[dict[str, object]] = field(default_factory=list)
    contact_ids: list[str] = field(default_factory=list)
    seq: int = 0
    """Insertion order, which list pagination follows."""


class EngagementStore:
    """Engagements by id and by external_id, with an atomic claim on external ids."""

    def __init__(self, db_path: str | None = None) -> None:
        self._lock = threading.Lock()
        self._by_id: dict[str, Engagement] = {}
        self._by_external_id: dict[str, Engagement] = {}
        self._claimed: set[str] = set()
        self._seq = 0
        self._db: sqlite3.Connection | None = None
        if db_path is not None:
            self._db = _open(db_path)
            for (body,) in self._db.execute("SELECT body FROM engagements ORDER BY seq"):
                self._remember(Engagement(**json.loads(body)))

    def claim(self, external_id: str) -> Engagement | None:
        """The engagement already holding external_id, or None after reserving it for us.

        Raises ExternalIdBusy while another caller holds the reservation. The caller must
        end a reservation with ``commit`` or ``release``.
        """
        with self._lock:
            existing = self._by_external_id.get(external_id)
            if existing is not None:
                return existing
            if external_id in self._claimed:
                raise ExternalIdBusy(external_id)
            self._claimed.add(external_id)
            return None

    def release(self, external_id: str) -> None:
        """Give up a reservation without storing anything."""
        with self._lock:
            self._claimed.discard(external_id)

    def commit(self, engagement: Engagement) -> Engagement:
        """Store a new engagement (durably first, when there is a file) and end its claim."""
        with self._lock:
            engagement.seq = self._seq + 1
            if self._db is not None:
                with self._db:
                    self._db.execute(
                        "INSERT INTO engagements (seq, id, external_id, body) VALUES (?, ?, ?, ?)",
                        (engagement.seq, engagement.id, engagement.external_id, _dump(engagement)),
                    )
            self._remember(engagement)
            self._claimed.discard(engagement.external_id)
            return engagement

    def replace_contacts(self, engagement_id: str, contact_ids: list[str], now: float) -> None:
        """Set the engagement's contacts and bump its updated_at."""
        with self._lock:
            engagement = self._by_id[engagement_id]
            engagement.contact_ids = list(contact_ids)
            engagement.updated_at = max(now, engagement.updated_at)
            if self._db is not None:
                with self._db:
                    self._db.execute(
                        "UPDATE engagements SET body = ? WHERE id = ?",
                        (_dump(engagement), engagement.id),
                    )

    def get(self, engagement_id: str) -> Engagement | None:
        """The engagement with this id, if any."""
        return self._by_id.get(engagement_id)

    def after(self, seq: int) -> Iterator[Engagement]:
        """Engagements inserted after position seq, oldest first."""
        return (e for e in list(self._by_id.values()) if e.seq > seq)

    def all(self) -> list[Engagement]:
        """Every engagement, oldest first."""
        return list(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def clear(self) -> None:
        """Forget every engagement and reservation (the file too)."""
        with self._lock:
            if self._db is not None:
                with self._db:
                    self._db.execute("DELETE FROM engagements")
            self._by_id.clear()
            self._by_external_id.clear()
            self._claimed.clear()
            self._seq = 0

    def close(self) -> None:
        """Close the SQLite file, if any."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def _remember(self, engagement: Engagement) -> None:
        self._by_id[engagement.id] = engagement
        self._by_external_id[engagement.external_id] = engagement
        self._seq = max(self._seq, engagement.seq)


def _open(path: str) -> sqlite3.Connection:
    # check_same_thread off: the lock above serialises access, and uvicorn may hand a
    # request to a worker thread.
    db = sqlite3.connect(path, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS engagements ("
        " seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
        " external_id TEXT NOT NULL UNIQUE, body TEXT NOT NULL)"
    )
    db.commit()
    return db


def _dump(engagement: Engagement) -> str:
    return json.dumps(asdict(engagement), ensure_ascii=False)
