"""Opening a ledger: checks that the file is ours, the schema, WAL, the run lock, closing."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path

import sqlite_utils

from importer.errors import LedgerError
from importer.ledger.holder import lock_holder
from importer.outcomes import Status

MMAP_BYTES = 2**31
"""How much of the ledger file SQLite may map into memory (address space, not RAM)."""
SCHEMA_VERSION = 2
"""2: engagements keep each row's ``source_id`` (before the prefix) and ``media_url``;
rejects their ``rule``."""
LEGACY_TARGET = "askelephant"
"""The target of ledgers written before ``--target`` existed."""
STATUSES = tuple(Status)


def sql_list(statuses: Iterable[Status]) -> str:
    """Statuses as an SQL list, for ``status IN ...``.

    >>> sql_list([Status.CREATED, Status.EXISTING])
    "('created', 'existing')"
    """
    return "(" + ", ".join(f"'{status}'" for status in statuses) + ")"


# Characters, not bytes: a text that is not ASCII has more bytes than characters in UTF-8.
BEYOND_ASCII = "length(CAST({0} AS BLOB)) != length({0})"
"""SQL: the text in column {0} has a character beyond ASCII (as written in partial indexes)."""
ZONE_PREFIX = "substr(external_id, 1, length(external_id) - length(source_id))"
"""A row's external_id prefix in SQL, as the zone check groups by it (and an index has it)."""
IMPORTED = sql_list([Status.CREATED, Status.EXISTING])
"""Statuses of a row the target holds."""
NOT_SENT = sql_list([Status.PENDING, Status.IN_FLIGHT])
"""Statuses of a row whose create has no answer yet: never sent, or sent and not answered."""
UNFINISHED = sql_list([Status.FAILED, Status.IN_FLIGHT, Status.PENDING])
"""Statuses ``importer retry`` picks up: failed, interrupted, or never sent by a stopped run."""

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; locking is then skipped
    fcntl = None  # type: ignore[assignment]


def now_iso() -> str:
    """The current UTC time as ISO 8601 text (what every timestamp column holds)."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def require_ledger(path: Path) -> Path:
    """The path of a ledger that must already exist (status, report, retry, verify)."""
    if not path.exists():
        raise LedgerError(
            f"no ledger at {path}: nothing has been imported with it yet "
            "(check --ledger, or run `importer run` first)"
        )
    if path.is_file() and path.stat().st_size == 0:
        raise LedgerError(
            f"ledger {path} is empty (0 bytes): nothing has been imported with it yet; it was "
            "left untouched (check --ledger, or run `importer run` first)"
        )
    return path


def _connect_read_only(path: Path, *, settled: bool) -> sqlite3.Connection:
    """Open for reading only; also where no file can be created (a read-only folder).

    A WAL ledger read normally needs its ``-shm`` file, and leaves it (and an empty
    ``-wal``) behind, since a reader may not delete them. A ledger that is ``settled``
    (closed cleanly, no ``-wal`` left, and no importer writing it: the caller holds a
    shared lock) is read as immutable: no side file is created, and nothing can be written.
    """
    if settled:
        return sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        wal = path.with_name(path.name + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise  # changes not yet in the file itself: reading without them would mislead
        conn.close()
    return sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)


def _is_empty_file(path: Path) -> bool:
    """A file of 0 bytes (``touch``, a failed copy): SQLite reads it as a database with
    no tables yet."""
    try:
        return path.is_file() and path.stat().st_size == 0
    except OSError:
        return False


def refuse_hard_links(path: Path) -> None:
    """Refuse a ledger file that has more than one name (a hard link).

    SQLite finds a ledger's ``-wal`` by the name it was opened by: through another name, a
    run left unfinished by a kill looks stale, and a write then damages the file for
    every name. A symlink is fine: it resolves to the one name.
    """
    try:
        links = path.stat().st_nlink if path.is_file() else 1
    except OSError:
        return  # a missing or unreadable file is refused later, with its own reason
    if links > 1:
        raise LedgerError(
            f"ledger {path} has {links} hard links (names): SQLite keeps a ledger's "
            "unfinished writes beside one name, so another name could read a stale "
            "ledger and damage it; it was left untouched: keep one name (remove the other "
            "links, or copy the file) and pass that with --ledger"
        )


def _read_schema_version(db: sqlite_utils.Database) -> int:
    """The schema version the ledger was written with; 0 when it says none."""
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError:
        return 0  # no meta table yet (a new ledger): ours to create
    try:
        return int(row[0]) if row else 0
    except (TypeError, ValueError):
        return 0


class LedgerDB:
    """The open SQLite connection of one ledger file; the concern modules build on it."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        self._lock_fd: int | None = None
        """The ledger file itself, flock'ed by ``exclusive``; closed after SQLite's connection."""
        self._read_lock_fd: int | None = None
        """A reader's shared flock, held while it reads a settled ledger as immutable."""
        refuse_hard_links(path)
        if readonly and (not path.exists() or _is_empty_file(path)):
            # Nothing recorded yet: read as an empty ledger, and leave the file as it is.
            self.db = sqlite_utils.Database(memory=True)
        else:
            try:
                self.db = self._connect(path, readonly)
            except LedgerError:
                self._release_read_lock()
                raise
        try:
            self._check_is_ours()
            self._check_schema_version()
        except LedgerError:
            self.close()
            raise
        if path.exists() and not (readonly and _is_empty_file(path)):
            self._check_undamaged()
        if not readonly:
            self._use_wal()
        if not readonly or not path.exists() or _is_empty_file(path):
            self._create_tables()

    def _connect(self, path: Path, readonly: bool) -> sqlite_utils.Database:
        if path.is_dir():
            raise LedgerError(f"ledger {path} is a folder; pass a file path to --ledger")
        if path.exists() and not path.is_file():
            raise LedgerError(
                f"ledger {path} is not a regular file (a device, pipe or socket); "
                "pass a file path to --ledger"
            )
        if not readonly:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise LedgerError(
                    f"cannot create the ledger folder {path.parent} ({error.strerror})"
                ) from error
            if not os.access(path.parent, os.W_OK) or (
                path.exists() and not os.access(path, os.W_OK)
            ):
                raise LedgerError(
                    f"ledger {path} is not writable; choose another location with --ledger"
                )
        try:
            if readonly:
                conn = _connect_read_only(path, settled=self._hold_for_reading())
            else:
                conn = sqlite3.connect(str(path), timeout=30)
            db = sqlite_utils.Database(conn)
            db.execute("PRAGMA busy_timeout=30000")
            # Pages read through the OS's mapping, not a read() each: a re-sync's row-key
            # look-ups into a million-row ledger cost 30% less.
            db.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        except sqlite3.OperationalError as error:
            if path.exists():
                raise LedgerError(self._not_a_ledger(error)) from error
            raise LedgerError(
                f"cannot create the ledger {path} ({error}); choose another location with --ledger"
            ) from error
        except sqlite3.DatabaseError as error:
            raise LedgerError(self._not_a_ledger(error)) from error
        return db

    def _hold_for_reading(self) -> bool:
        """Whether the ledger can be read as immutable: no writer, nothing left in a WAL.

        A shared flock, held until ``close``, keeps a run (which takes it exclusively) from
        starting meanwhile; when a run holds the ledger, it is read as SQLite reads a WAL.
        """
        wal = self.path.with_name(self.path.name + "-wal")
        if fcntl is None or wal.exists():
            return False
        try:
            handle = os.open(self.path, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            os.close(handle)
            return False
        if wal.exists():  # a writer opened it between the first look and the lock
            os.close(handle)
            return False
        self._read_lock_fd = handle
        return True

    def _check_schema_version(self) -> None:
        """Refuse a ledger written by a newer importer before anything is read or written.

        Its tables may hold columns and meanings this version does not know: writing it
        could fail half-way (a NOT NULL column) or mislead the newer version later.
        """
        found = _read_schema_version(self.db)
        if found > SCHEMA_VERSION:
            raise LedgerError(
                f"the ledger {self.path} was written by a newer importer (schema version "
                f"{found}; this one reads up to {SCHEMA_VERSION}); it was left untouched: "
                "upgrade the importer, or pass another --ledger"
            )

    def _use_wal(self) -> None:
        """WAL journaling, switched on only once the file is known to be ours (or new)."""
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.OperationalError as error:
            raise LedgerError(f"cannot write the ledger {self.path} ({error})") from error
        except sqlite3.DatabaseError as error:
            raise LedgerError(self._not_a_ledger(error)) from error

    def _not_a_ledger(self, error: Exception) -> str:
        return (
            f"{self.path} is not a usable importer ledger ({error}); it was left untouched: "
            "move it away or pass another file with --ledger"
        )

    def _check_undamaged(self) -> None:
        """Refuse a damaged ledger before anything is written to it (SQLite's quick_check).

        Writing to a file with a bad page can only make it worse; the user's backup, or
        a fresh ledger, is the way out. Linear in the file's size, and read-only.
        """
        try:
            found = [r[0] for r in self.db.execute("PRAGMA quick_check(3)").fetchall()]
        except sqlite3.DatabaseError as error:
            found = [str(error)]
        if found != ["ok"]:
            self.close()
            raise LedgerError(
                f"{self.path} is damaged (SQLite's check says: {'; '.join(found)[:300]}); "
                "it was left untouched: restore it from a backup, or pass another --ledger"
            )

    def _check_is_ours(self) -> None:
        try:
            tables = set(self.db.table_names())
        except sqlite3.DatabaseError as error:
            raise LedgerError(self._not_a_ledger(error)) from error
        if tables and "meta" not in tables:
            raise LedgerError(
                f"{self.path} is a SQLite file of something else (tables: "
                f"{', '.join(sorted(tables)[:5])}); it was left untouched: pass another --ledger"
            )

    def _create_tables(self) -> None:
        try:
            with self.db.conn:
                self.db.table("meta").create(
                    {"key": str, "value": str}, pk="key", if_not_exists=True
                )
                self.db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                    [str(SCHEMA_VERSION)],
                )
                self.db.table("engagements").create(
                    {
                        "external_id": str,
                        "manifest": str,
                        "row_number": int,
                        "status": str,
                        "transient": int,
                        "payload_hash": str,
                        "sent_hash": str,
                        "field_hashes": str,
                        "http_status": int,
                        "engagement_id": str,
                        "attempts": int,
                        "error_message": str,
                        "error_detail": str,
                        "error_errors": str,
                        "request_id": str,
                        "cells": str,
                        "contacts_hash": str,
                        "contacts_applied_at": str,
                        "contacts_error": str,
                        "processing_status": str,
                        "processing_seen_at": str,
                        "etag": str,
                        "changed_fields": str,
                        "found_by": str,
                        "source_id": str,
                        "media_url": str,
                        "timezone": str,
                        "run_id": int,
                        "first_seen_at": str,
                        "sent_at": str,
                        "completed_at": str,
                        "updated_at": str,
                    },
                    pk="external_id",
                    if_not_exists=True,
                    defaults={"attempts": 0, "transient": 0},
                )
                self.db.table("engagements").create_index(["status"], if_not_exists=True)
                self.db.execute(
                    "CREATE INDEX IF NOT EXISTS engagements_engagement_id "
                    "ON engagements (engagement_id)"
                )
                self.db.table("rejects").create(
                    {
                        "manifest": str,
                        "row_number": int,
                        "external_id": str,
                        "status": str,
                        "reason": str,
                        "cells": str,
                        "run_id": int,
                        "updated_at": str,
                        "rule": str,
                    },
                    pk=("manifest", "row_number"),
                    if_not_exists=True,
                )
                self.db.execute(
                    "CREATE INDEX IF NOT EXISTS rejects_external_id ON rejects (external_id)"
                )
                self.db.table("runs").create(
                    {
                        "id": int,
                        "command": str,
                        "manifest": str,
                        "options": str,
                        "pid": int,
                        "started_at": str,
                        "ended_at": str,
                        "seconds": float,
                        "outcome": str,
                        "exit_code": int,
                        "counts": str,
                        "settings": str,
                    },
                    pk="id",
                    if_not_exists=True,
                )
                if "settings" not in self.db.table("runs").columns_dict:
                    self.db.table("runs").add_column("settings", str)  # older ledgers
                self.db.table("media_checks").create(
                    {"url": str, "ok": int, "detail": str, "checked_at": str},
                    pk="url",
                    if_not_exists=True,
                )
                self._migrate()
        except sqlite3.OperationalError as error:
            raise LedgerError(f"cannot write the ledger {self.path} ({error})") from error
        except sqlite3.DatabaseError as error:
            raise LedgerError(self._not_a_ledger(error)) from error

    def _migrate(self) -> None:
        """Bring a ledger written by an earlier version up to ``SCHEMA_VERSION``.

        Columns are added empty: a row imported before learns its ``source_id`` and
        ``media_url`` when a later run sees it, unchanged, in its manifest.
        """
        engagements = self.db.table("engagements")
        for column in ("found_by", "source_id", "media_url", "timezone"):
            if column not in engagements.columns_dict:
                engagements.add_column(column, str)
        if "rule" not in self.db.table("rejects").columns_dict:
            self.db.table("rejects").add_column("rule", str)
        self.db.execute(
            "CREATE INDEX IF NOT EXISTS engagements_media_url ON engagements (media_url)"
        )
        # The lookalike check reads the few ids beyond ASCII from here, not every row.
        self.db.execute(
            "CREATE INDEX IF NOT EXISTS engagements_beyond_ascii ON engagements "
            f"(external_id, status) WHERE {BEYOND_ASCII.format('external_id')}"
        )
        # The zone check before a run's first request reads this, not every row it holds.
        self.db.execute(
            "CREATE INDEX IF NOT EXISTS engagements_zone_read ON engagements "
            f"({ZONE_PREFIX}, timezone, sent_at, external_id) "
            "WHERE timezone IS NOT NULL AND source_id IS NOT NULL"
        )
        self.db.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version' AND CAST(value AS INTEGER) < ?",
            [str(SCHEMA_VERSION), SCHEMA_VERSION],
        )

    def claim_target(self, target: str) -> None:
        """Bind the ledger to one import target; a ledger of another target is refused.

        Engagement ids and outcomes of one target mean nothing to another: reusing the
        ledger would skip every row as already imported. A ledger from before targets
        existed, with rows in it, is AskElephant's.
        """
        row = self.db.execute("SELECT value FROM meta WHERE key = 'target'").fetchone()
        recorded = row[0] if row else None
        if recorded is None and self.db.execute("SELECT 1 FROM engagements LIMIT 1").fetchone():
            recorded = LEGACY_TARGET
        if recorded is None:
            if not self.readonly:
                with self.db.conn:
                    self.db.execute("INSERT OR REPLACE INTO meta VALUES ('target', ?)", [target])
            return
        if recorded != target:
            raise LedgerError(
                f"the ledger {self.path} records an import into {recorded}, not {target}: "
                f"pass --target {recorded}, or another --ledger for {target}"
            )

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold the ledger for one command that writes; a second one is refused, not queued.

        The lock belongs to the file itself (an ``flock`` on it), not to the name it was
        opened by: a symlink or a hard link to a ledger in use meets the same lock. It is
        released by ``close``, after SQLite's connection: closing another descriptor of the
        file earlier would drop SQLite's own locks on it (POSIX locks are per process).
        """
        if fcntl is None or self.readonly:
            yield
            return
        try:
            handle = os.open(self.path, os.O_RDONLY)
        except OSError as error:
            raise LedgerError(f"cannot open the ledger {self.path} ({error.strerror})") from error
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            holder = self._holder()
            raise LedgerError(
                f"another importer run ({holder}) is using the ledger {self.path}; "
                "wait for it to finish, or pass a different --ledger"
            ) from None
        self._lock_fd = handle
        self._note_holder()
        yield

    def _holder_path(self) -> Path:
        """Where the holder's pid is noted: beside the real file, named by its identity.

        A symlink finds it; a hard link in another folder says "another process".
        """
        info = os.stat(self.path)
        real = self.path.resolve()
        return real.with_name(f".{real.name}.{info.st_dev}-{info.st_ino}.pid")

    def _note_holder(self) -> None:
        with contextlib.suppress(OSError):
            self._holder_path().write_text(str(os.getpid()), encoding="ascii")

    def _holder(self) -> str:
        pid = lock_holder(self.path)  # the kernel knows, by whichever name it was taken
        if pid is not None:
            return f"pid {pid}"
        try:
            return "pid " + self._holder_path().read_text(encoding="ascii").strip()
        except OSError:
            return "another process"

    def close(self) -> None:
        """Checkpoint and close the database, then release the lock (``exclusive``)."""
        with contextlib.suppress(sqlite3.Error):
            self.db.conn.close()
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                self._holder_path().unlink()
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
        self._release_read_lock()

    def _release_read_lock(self) -> None:
        if self._read_lock_fd is not None:
            os.close(self._read_lock_fd)
            self._read_lock_fd = None
