"""The spool gives back what it was given, reads its batches back with the cycle collector
paused, and always resumes it; pass two's rows are pass one's, field by field."""

from __future__ import annotations

import dataclasses
import gc
import marshal
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.ledger import Ledger
from importer.ledger.manifest_index import (
    COMPRESSED,
    MARSHALLED,
    RAW_SPOOL_BYTES,
    ManifestIndex,
)
from importer.plan.passes import with_media_failure
from importer.plan.spool_form import plain_rows, rows_of
from importer.rows.validate import MappedRow, MappingOptions, RowError, map_row
from tests.factories import row


def test_spooled_batches_come_back_whole_and_the_collector_runs_again(tmp_path: Path) -> None:
    batch = [map_row(row(n), n + 2, MappingOptions()) for n in range(3)]
    with Ledger(tmp_path / "ledger.db") as ledger:
        index = ManifestIndex(ledger)
        index.start()
        index.spool(batch)
        assert [record.body() for record in index.spooled()] == [batch]
    assert gc.isenabled()


def test_a_broken_spool_record_leaves_the_collector_on(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.db") as ledger:
        index = ManifestIndex(ledger)
        index.start()
        ledger.db.execute(
            "INSERT INTO temp.manifest_spool (head, form, size, rows) VALUES (?, ?, 100, ?)",
            [b"\x00" + marshal.dumps(None), MARSHALLED | COMPRESSED, b"not lz4"],
        )
        with pytest.raises(OSError):
            [record.body() for record in index.spooled()]
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


class Unmarshallable(str):
    """A value marshal refuses (a subclass of text): the spool pickles its batch instead."""


@pytest.mark.parametrize(
    "batch",
    [
        [("a", 1, {"k": [1.5, -0.0, True, None, "\udcff"]}, (), 2**70)],
        [("a", Unmarshallable("b"))],
        [],
    ],
)
@pytest.mark.parametrize("raw_bytes", [RAW_SPOOL_BYTES, 0])  # kept as they are; compressed
def test_the_spool_gives_back_what_it_was_given(
    tmp_path: Path, batch: list[Any], raw_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("importer.ledger.manifest_index.RAW_SPOOL_BYTES", raw_bytes)
    with Ledger(tmp_path / "ledger.db") as ledger:
        index = ManifestIndex(ledger)
        index.start()
        index.spool(batch, head=(["a", Unmarshallable("b")], True, 2))
        index.spool([math.inf])
        first, second = list(index.spooled())
        back = first.body()
    assert back == batch and [type(v) for v in back] == [type(v) for v in batch]
    assert first.head == (["a", "b"], True, 2) and type(first.head[0][1]) is Unmarshallable
    assert second.body() == [math.inf] and second.head is None
    assert bool(second.form & COMPRESSED) == (raw_bytes == 0)


def _mapped(n: int, cells: dict[str, str], contact_ids: tuple[str, ...] | None) -> MappedRow:
    mapped = map_row(cells, n, MappingOptions(timezone="UTC"))
    return dataclasses.replace(mapped, contact_ids=contact_ids)


texts = st.text(max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.dictionaries(st.sampled_from(["id", "title", "media_url", "start_at"]), texts),
            st.none() | st.tuples(texts),
            st.booleans(),
            st.booleans(),
        ),
        max_size=6,
    )
)
def test_rows_come_back_from_their_plain_form_equal_field_by_field(
    rows: list[tuple[dict[str, str], tuple[str, ...] | None, bool, bool]],
) -> None:
    batch = []
    for n, (changes, contact_ids, failing, hashed) in enumerate(rows):
        mapped = _mapped(n + 2, row(n, **changes), contact_ids)
        if failing:
            mapped = with_media_failure(mapped, "404", "media_url")
        if hashed:
            assert mapped.payload_hash is None or mapped.payload_hash
        batch.append(mapped)
    back = rows_of(plain_rows(batch))
    assert back == batch
    for before, after in zip(batch, back, strict=True):
        assert type(after) is MappedRow
        assert all(type(e) is RowError for e in after.errors)
        assert after.payload_hash == before.payload_hash
        assert after.valid == before.valid and after.error_text() == before.error_text()
        assert vars(after) == {**vars(before), "payload_hash": before.payload_hash}
    assert gc.isenabled()
