"""Cached ``--check-media`` results, per URL (in memory only for a read-only ledger)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from importer.ledger.db import LedgerDB, now_iso


class MediaCache(LedgerDB):
    """The ``media_checks`` table."""

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        super().__init__(path, readonly=readonly)
        self._media_memory: dict[str, dict[str, Any]] = {}

    def media_check(self, url: str) -> dict[str, Any] | None:
        """The cached preflight result for a media URL, if any."""
        if url in self._media_memory:
            return self._media_memory[url]
        rows = list(self.db.query("SELECT * FROM media_checks WHERE url = ?", [url]))
        return rows[0] if rows else None

    def media_failures(self, urls: Iterable[str]) -> dict[str, str]:
        """Of these URLs, the ones whose preflight failed, with the reason."""
        failures = {}
        for url in dict.fromkeys(urls):
            result = self.media_check(url)
            if result is not None and not result["ok"]:
                failures[url] = result["detail"]
        return failures

    def record_media_check(self, url: str, ok: bool, detail: str) -> None:
        """Cache a preflight result with its time (in memory for a read-only ledger)."""
        if self.readonly:
            self._media_memory[url] = {
                "url": url,
                "ok": int(ok),
                "detail": detail,
                "checked_at": now_iso(),
            }
            return
        with self.db.conn:
            self.db.execute(
                "INSERT OR REPLACE INTO media_checks VALUES (?, ?, ?, ?)",
                [url, int(ok), detail, now_iso()],
            )
