"""Pass two looks up recording matches only for rows whose media URL is on another id:
the shortcut finds what looking up every row finds, before and after a run sends rows."""

from __future__ import annotations

import tempfile
from pathlib import Path
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from importer.ledger import Ledger
from importer.ledger.manifest_index import ManifestIndex
from importer.outcomes import Status

MEDIA = st.sampled_from([None, "m1", "m2", "m3", "m4", "m5", "m6"])
IDS = st.sampled_from([f"crm:{n}" for n in range(8)] + [f"old:{n}" for n in range(4)])
STATUSES = st.sampled_from(list(Status))
INDEX_ROWS = st.lists(st.tuples(IDS, MEDIA), max_size=12)
LEDGER_ROWS = st.lists(st.tuples(IDS, MEDIA, STATUSES), max_size=6, unique_by=lambda r: r[0])
SENT = st.lists(st.tuples(st.integers(0, 11), STATUSES), max_size=4)


def _engagement(ledger: Ledger, external_id: str, media: str | None, status: str) -> None:
    source_id = external_id.split(":")[1]
    ledger.db.execute(
        "INSERT INTO engagements (external_id, status, source_id, media_url, completed_at) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (external_id) DO UPDATE SET status = excluded.status,"
        " media_url = COALESCE(media_url, excluded.media_url)",
        [external_id, status, source_id, media, f"2024-01-01T00:00:{len(source_id):02d}"],
    )


@settings(max_examples=200, deadline=None)
@given(INDEX_ROWS, LEDGER_ROWS, SENT, st.integers(1, 5), st.sampled_from([0, 2, 5]))
def test_the_shortcut_finds_the_matches_every_row_finds(
    index_rows: list[tuple[str, str | None]],
    ledger_rows: list[tuple[str, str | None, str]],
    sent: list[tuple[int, str]],
    batch: int,
    one_by_one: int,
) -> None:
    # The candidates are listed once that many rows were looked up one by one: at pass
    # two's first batch, or after rows were sent.
    with (
        mock.patch("importer.ledger.manifest_index.LOOKUPS_BEFORE_CANDIDATES", one_by_one),
        tempfile.TemporaryDirectory() as folder,
        Ledger(Path(folder) / "l.db") as ledger,
    ):
        for external_id, media, status in ledger_rows:
            _engagement(ledger, external_id, media, status)
        index = ManifestIndex(ledger)
        index.start()
        index.add([(i, n + 2, "h", i.split(":")[1], m) for n, (i, m) in enumerate(index_rows)])
        list(index.repeated())
        ids = [i for i, _ in index_rows]
        batches = [ids[start : start + batch] for start in range(0, len(ids), batch)] or [[]]
        for number, chunk in enumerate(batches):
            shortcut = index.recording_matches(chunk)
            assert shortcut == index.recording_matches(chunk, every_row=True)
            if number == 0:
                # A run sends rows of this manifest, and the ledger learns their media URLs.
                for position, status in sent:
                    if position < len(index_rows):
                        _engagement(ledger, *index_rows[position], status)
