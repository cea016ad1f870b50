"""The spool reads its batches back with the cycle collector paused, and always resumes it."""

from __future__ import annotations

import gc
import zlib
from pathlib import Path

import pytest

from importer.ledger import Ledger
from importer.ledger.manifest_index import ManifestIndex
from importer.rows.validate import MappingOptions, map_row
from tests.factories import row


def test_spooled_batches_come_back_whole_and_the_collector_runs_again(tmp_path: Path) -> None:
    batch = [map_row(row(n), n + 2, MappingOptions()) for n in range(3)]
    with Ledger(tmp_path / "ledger.db") as ledger:
        index = ManifestIndex(ledger)
        index.start()
        index.spool(batch)
        assert list(index.spooled()) == [batch]
    assert gc.isenabled()


def test_a_broken_spool_record_leaves_the_collector_on(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.db") as ledger:
        index = ManifestIndex(ledger)
        index.start()
        ledger.db.execute("INSERT INTO temp.manifest_spool (rows) VALUES (?)", [b"not zlib"])
        with pytest.raises(zlib.error):
            list(index.spooled())
    assert gc.isenabled()


def test_an_invisible_character_in_a_media_url_is_still_found() -> None:
    for invisible in ("\u200b", "\ufeff", "\x7f", "\u00ad"):
        cells = row(1, media_url=f"https://media.example.com/a{invisible}.mp3")
        mapped = map_row(cells, 2, MappingOptions())
        assert [e.rule for e in mapped.errors] == ["invisible_character"], invisible


def test_a_user_name_or_password_in_a_media_url_is_still_refused() -> None:
    for url in ("https://ana@media.example.com/a.mp3", "https://ana:pw@media.example.com/a.mp3"):
        mapped = map_row(row(1, media_url=url), 2, MappingOptions())
        assert "credentials" in [e.rule for e in mapped.errors], url
