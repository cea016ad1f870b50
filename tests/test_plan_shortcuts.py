"""Pass two's shortcut for batches of new rows: the rows planned when asked for are the
ones planning every batch at once gives, and a plan counting them unseen prints the same."""

from __future__ import annotations

import dataclasses
import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.ledger import Ledger
from importer.ledger.manifest_index import ManifestIndex, SpooledRecord
from importer.outcomes import Action, Status
from importer.pipeline import plan_manifest
from importer.plan.mapping_pool import spooled_records
from importer.plan.passes import BatchMapper, index_manifest, planned_batches
from importer.plan.repeats import SeenOnce
from importer.read.manifest import ManifestRow, PlainColumns, manifest_rows
from importer.report.files import PlanPrinter
from importer.rows.validate import MappingOptions
from importer.settings import ImportSettings, PlanOptions
from tests.factories import row, write_manifest

PLAIN: dict[str, str] = {}
CELLS = st.sampled_from(
    [
        *[PLAIN] * 6,  # most rows plain: batches of them all new
        {"id": "1"},  # repeated, the same or with other values
        {"id": "1", "title": "Other"},
        {"title": " "},  # invalid
        {"media_url": ""},  # skipped
        {"media_url": "https://media.example.com/same.mp3"},  # one recording on two ids
    ]
)
KNOWN = st.lists(
    st.tuples(st.integers(0, 14), st.sampled_from([s.value for s in Status])),
    max_size=3,
)


@st.composite
def manifests(draw: st.DrawFn) -> tuple[list[dict[str, str]], list[tuple[int, str]], int, bool]:
    count = draw(st.integers(0, 14))
    changes = draw(st.lists(CELLS, min_size=count, max_size=count))
    rows = [row(n, **change) for n, change in enumerate(changes)]
    return rows, draw(KNOWN), draw(st.integers(1, 4)), draw(st.booleans())


def _settings(manifest: Path, batch_size: int, only_failed: bool) -> ImportSettings:
    return ImportSettings(
        manifest=manifest,
        mapping=dataclasses.replace(MappingOptions(), skip_without_media=True),
        batch_size=batch_size,
        plan=PlanOptions(only_failed=only_failed),
    )


def _known(ledger: Ledger, known: list[tuple[int, str]], rows: list[dict[str, str]]) -> None:
    for position, status in known:
        if position < len(rows):
            ledger.db.execute(
                "INSERT OR IGNORE INTO engagements (external_id, status, payload_hash) "
                "VALUES (?, ?, 'h')",
                [f"crm:{rows[position]['id']}", status],
            )


@settings(max_examples=100, deadline=None)
@given(manifests())
def test_batches_of_new_rows_plan_as_every_batch_is_planned(
    manifest: tuple[list[dict[str, str]], list[tuple[int, str]], int, bool],
) -> None:
    rows, known, batch_size, only_failed = manifest
    with tempfile.TemporaryDirectory() as folder:
        path = write_manifest(Path(folder) / "m.csv", rows)
        options = _settings(path, batch_size, only_failed)
        with Ledger(Path(folder) / "l.db") as ledger:
            _known(ledger, known, rows)
            index, duplicates, _ = index_manifest(ledger, options)
            fast = list(planned_batches(ledger, options, duplicates, index))
            slow = list(planned_batches(ledger, options, duplicates, index, shortcut=False))
            # Repeats and shared recordings asked of SQL whatever the hashes say.
            with pytest.MonkeyPatch.context() as patch:
                patch.setattr(SeenOnce, "ids_once_each", lambda _: False)
                patch.setattr(SeenOnce, "media_once_each", lambda _: False)
                index, duplicates, _ = index_manifest(ledger, options)
                assert not index.no_recording_elsewhere
                by_sql = list(planned_batches(ledger, options, duplicates, index))
        # A plan's spool (a ledger read only, holding no engagement): the records of batches
        # of valid rows, mapped again when read back.
        with Ledger(Path(folder) / "l.db", readonly=True) as reader:
            index, duplicates, _ = index_manifest(reader, options, spool_records=True)
            held = reader.db.execute("SELECT COUNT(*) FROM engagements").fetchone()[0]
            assert index.spools_records == (held == 0 and not only_failed)
            again = list(planned_batches(reader, options, duplicates, index))
    assert [[vars(p) for p in b.rows] for b in by_sql] == [[vars(p) for p in b.rows] for b in slow]
    assert [(b.settled, b.last_row) for b in fast] == [(b.settled, b.last_row) for b in slow]
    assert [(b.new_rows, b.last_row) for b in again] == [(b.new_rows, b.last_row) for b in fast]
    for shortcut, planned, mapped_again in zip(fast, slow, again, strict=True):
        assert shortcut.rows == planned.rows == mapped_again.rows
        assert [vars(p) for p in shortcut.rows] == [vars(p) for p in planned.rows]
        assert [vars(p) for p in mapped_again.rows] == [vars(p) for p in planned.rows]
        if shortcut.new_rows:
            assert shortcut.new_rows == len(planned.rows)
            assert {p.action for p in planned.rows} == {Action.NEW}


@settings(max_examples=40, deadline=None)
@given(manifests(), st.booleans(), st.sampled_from([0, 1, 5]))
def test_a_plan_counting_new_rows_unseen_prints_the_same(
    manifest: tuple[list[dict[str, str]], list[tuple[int, str]], int, bool],
    with_csv: bool,
    examples: int,
) -> None:
    rows, known, batch_size, only_failed = manifest
    with tempfile.TemporaryDirectory() as folder:
        path = write_manifest(Path(folder) / "m.csv", rows)
        options = _settings(path, batch_size, only_failed)
        printed = []
        for counting, spool_records in ((False, False), (True, False), (True, True)):
            with Ledger(Path(folder) / f"{counting}{spool_records}.db") as ledger:
                _known(ledger, known, rows)
                csv = io.StringIO()
                printer = PlanPrinter(examples, csv_handle=csv if with_csv else None)
                counts = plan_manifest(
                    options,
                    ledger,
                    printer,
                    on_notice=printer.notices.append,
                    on_new_rows=printer.count_new if counting else None,
                    spool_records=spool_records,
                )
            printed.append((counts, printer.counts, printer.text(str(path)), csv.getvalue()))
    assert printed[0] == printed[1] == printed[2]


def test_a_plan_of_new_rows_reads_back_only_the_first_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_manifest(tmp_path / "m.csv", [row(n) for n in range(40)])
    options = _settings(path, 4, False)
    read_back = []
    body = SpooledRecord.body
    monkeypatch.setattr(SpooledRecord, "body", lambda r: read_back.append(r.head) or body(r))
    with Ledger(tmp_path / "l.db") as ledger:
        index, duplicates, _ = index_manifest(ledger, options)
        batches = list(planned_batches(ledger, options, duplicates, index))
        printer = PlanPrinter()
        counts = plan_manifest(options, ledger, printer, on_new_rows=printer.count_new)
    assert [b.new_rows for b in batches] == [4] * 10
    assert counts == {Action.NEW: 40} and printer.counts == counts
    assert len(printer.samples[Action.NEW]) == 5 and len(printer.previews) == 3
    # Three shown to be sent are in the first batch; five examples, in the first two.
    assert [last_row for *_, last_row, _ in read_back] == [5, 9]


def _temp_indexes(ledger: Ledger) -> set[str]:
    found = ledger.db.execute("SELECT name FROM temp.sqlite_master WHERE type = 'index'")
    return {name for (name,) in found}


@pytest.mark.parametrize("shared", [False, True])
def test_a_plan_of_ids_and_recordings_each_on_one_row_asks_sql_nothing_of_them(
    tmp_path: Path, shared: bool
) -> None:
    rows = [row(n) for n in range(30)]
    if shared:  # one recording on two ids: SQL finds it (rows 4 and 21)
        rows[19]["media_url"] = rows[2]["media_url"]
    path = write_manifest(tmp_path / "m.csv", rows)
    options = _settings(path, 4, False)
    with Ledger(tmp_path / "l.db", readonly=True) as ledger:
        printer = PlanPrinter()
        counts = plan_manifest(options, ledger, printer, on_new_rows=printer.count_new)
        indexes = _temp_indexes(ledger)
    if shared:
        assert "manifest_index_media" in indexes and counts[Action.SAME_RECORDING] == 1
    else:
        assert not indexes & {"manifest_index_id", "manifest_index_media"}
        assert counts == {Action.NEW: 30}


def test_a_ledger_holding_media_urls_is_asked_for_recordings(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "m.csv", [row(n) for n in range(6)])
    options = _settings(path, 4, False)
    with Ledger(tmp_path / "l.db") as ledger:  # row 3's recording, imported under another id
        ledger.db.execute(
            "INSERT INTO engagements (external_id, status, payload_hash, media_url) "
            f"VALUES ('crm:old', '{Status.CREATED}', 'h', ?)",
            [row(1)["media_url"]],
        )
        index, _, _ = index_manifest(ledger, options)
        assert not index.no_recording_elsewhere
        printer = PlanPrinter()
        counts = plan_manifest(options, ledger, printer)
    assert counts[Action.SAME_RECORDING] == 1 and counts[Action.NEW] == 5


def test_hashes_say_a_repeat_among_many() -> None:
    seen = SeenOnce()
    many = [(f"crm:{n}", n, "h", str(n), f"https://m/{n}.mp3") for n in range(60_000)]
    seen.add(many)
    assert seen.ids_once_each() and seen.media_once_each()
    seen.add([("crm:7", 9, "h", "7", "https://m/8.mp3")])
    assert not seen.ids_once_each() and not seen.media_once_each()
    seen = SeenOnce()
    seen.add(many[:3])
    seen.not_hashed()
    assert not seen.ids_once_each() and not seen.media_once_each()


def test_a_plans_batches_with_a_row_not_valid_are_spooled_mapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pass two reads back every batch with an invalid row: it keeps them mapped, and maps
    again only batches of valid rows it reads back (here the first two, for examples)."""
    rows = [row(n, type="memo") if n % 4 == 1 and n >= 8 else row(n) for n in range(40)]
    path = write_manifest(tmp_path / "m.csv", rows)
    options = _settings(path, 4, False)
    mapped: list[int] = []
    for name in ("__call__", "index_entries"):  # mapped rows, or index entries alone
        method = getattr(BatchMapper, name)
        monkeypatch.setattr(
            BatchMapper,
            name,
            lambda self, batch, method=method: (
                mapped.extend(
                    batch.numbers
                    if isinstance(batch, PlainColumns)
                    else [r.row_number for r in batch]
                )
                or method(self, batch)
            ),
        )
    with Ledger(tmp_path / "l.db", readonly=True) as ledger:
        printer = PlanPrinter()
        counts = plan_manifest(
            options, ledger, printer, on_new_rows=printer.count_new, spool_records=True
        )
    assert counts == {Action.NEW: 32, Action.INVALID: 8}
    assert sorted(mapped) == sorted([*range(2, 42), *range(2, 10)])


def test_a_batch_naming_transcript_files_is_spooled_mapped(tmp_path: Path) -> None:
    """Its files are read once, in pass one, whatever pass two reads back."""
    (tmp_path / "t.txt").write_text("Hello", encoding="utf-8")
    rows = [row(n) for n in range(6)]
    rows[3]["transcript_path"] = "t.txt"
    path = write_manifest(tmp_path / "m.csv", rows)
    with Ledger(tmp_path / "l.db", readonly=True) as ledger:
        index, _, _ = index_manifest(ledger, _settings(path, 2, False), spool_records=True)
        kinds = [record.holds_records for record in index.spooled()]
    assert index.spools_records and kinds == [True, False, True]


def test_ascii_ids_and_a_ledger_without_one_beyond_ascii_are_not_searched_for_lookalikes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    searched: list[int] = []
    search = Ledger.lookalike_ids
    monkeypatch.setattr(
        Ledger, "lookalike_ids", lambda self, *a: searched.append(1) or search(self, *a)
    )
    for ids in (["1", "2"], ["1", "\uff11"]):
        path = write_manifest(tmp_path / "m.csv", [row(n, id=value) for n, value in enumerate(ids)])
        with Ledger(tmp_path / "l.db", readonly=True) as ledger:
            _, duplicates, _ = index_manifest(ledger, _settings(path, 10, False))
        assert len(duplicates) == len(searched) * 2
    assert searched == [1]


def test_a_plans_index_rows_are_inserted_only_when_a_query_reads_them(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "m.csv", [row(n) for n in range(7)])
    with Ledger(tmp_path / "l.db", readonly=True) as ledger:
        index, duplicates, _ = index_manifest(ledger, _settings(path, 3, False), spool_records=True)
        count = "SELECT COUNT(*), MIN(row_number), MAX(row_number) FROM temp.manifest_index"
        assert not duplicates and ledger.db.execute(count).fetchone() == (0, None, None)
        assert index.table == "temp.manifest_index"  # asked for: the rows are in it now
        assert ledger.db.execute(count).fetchone() == (7, 2, 8)
        assert not list(index.repeated())


def test_a_batch_names_a_transcript_file_only_in_a_cell_not_blank(tmp_path: Path) -> None:
    mapper = BatchMapper(tmp_path / "m.csv", MappingOptions(timezone="UTC"))
    blank = [ManifestRow(2, {"transcript_path": " \t"}), ManifestRow(3, {"id": "7"})]
    assert not mapper.reads_files(blank) and not mapper.reads_files([])
    assert mapper.reads_files([*blank, ManifestRow(4, {"transcript_path": " t.txt "})])
    columns = PlainColumns(["id", "transcript_path"], [2, 3], [["7", "8"], [" ", ""]])
    assert not mapper.reads_files(columns)
    assert mapper.reads_files(PlainColumns(["transcript_path"], [2], [["t.txt"]]))
    assert not mapper.reads_files(PlainColumns(["id"], [2], [["7"]]))


def test_rows_kept_aside_go_in_first_when_marshal_refuses_a_later_batch(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db", readonly=True) as ledger:
        index = ManifestIndex(ledger)
        index.start()
        index.defers_rows = True
        index.add([("crm:1", 2, "h1", "1", "https://m/1.mp3")])
        index.add([(Text("crm:2"), 3, "h2", "2", "https://m/2.mp3")])
        index.add([("crm:3", 4, "h3", "3", "https://m/3.mp3")])
        rows = "SELECT external_id FROM temp.manifest_index ORDER BY rowid"
        assert [r[0] for r in ledger.db.execute(rows)] == ["crm:1", "crm:2", "crm:3"]
        assert ledger.db.execute("SELECT COUNT(*) FROM temp.manifest_rows_aside").fetchone() == (0,)


def test_a_default_transcript_file_is_read_once_too(tmp_path: Path) -> None:
    (tmp_path / "t.txt").write_text("Hello", encoding="utf-8")
    path = write_manifest(tmp_path / "m.csv", [row(n) for n in range(4)])
    options = _settings(path, 2, False)
    columns = dataclasses.replace(options.mapping.columns, defaults={"transcript_path": "t.txt"})
    options = dataclasses.replace(
        options, mapping=dataclasses.replace(options.mapping, columns=columns)
    )
    with Ledger(tmp_path / "l.db", readonly=True) as ledger:
        index, _, _ = index_manifest(ledger, options, spool_records=True)
        kinds = [record.holds_records for record in index.spooled()]
    assert kinds == [False, False]


class Text(str):
    """Text marshal refuses (a str subclass)."""


def test_records_with_a_cell_marshal_refuses_are_spooled_pickled() -> None:
    records = [ManifestRow(2, {"id": Text("x")}, None), ManifestRow(3, {"id": "y"}, None)]
    spooled = SpooledRecord(None, *spooled_records(records, compress=False))
    assert spooled.holds_records and manifest_rows(spooled.body()) == records


def test_a_plans_repeated_ids_are_hashed_from_the_batches_holding_them_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Index entries carry no payload hash: for ids on several rows, pass one maps again
    the batches holding them (rows 6 and 34: batches 2 and 9), and tells a repeat of the
    same payload from one that differs."""
    rows = [row(n) for n in range(40)]
    rows[4] = rows[32] = row(4)  # the same row twice
    rows[5], rows[33] = row(5), row(5, title="Another title")  # one id, payloads differ
    path = write_manifest(tmp_path / "m.csv", rows)
    mapped: list[int] = []
    call = BatchMapper.__call__
    monkeypatch.setattr(
        BatchMapper, "__call__", lambda self, b: mapped.append(len(b)) or call(self, b)
    )
    with Ledger(tmp_path / "l.db", readonly=True) as ledger:
        _, duplicates, _ = index_manifest(ledger, _settings(path, 4, False), spool_records=True)
        hashes = ledger.db.execute(
            "SELECT row_number, payload_hash FROM temp.manifest_index WHERE payload_hash "
            "IS NOT NULL ORDER BY row_number"
        ).fetchall()
    assert mapped == [4, 4]  # batches 2 and 9 (rows 6-9 and 34-37), once each
    assert [number for number, _ in hashes] == [6, 7, 34, 35]
    assert hashes[0][1] == hashes[2][1] != hashes[1][1] != hashes[3][1]
    assert {i: (d.first_row, d.conflicting) for i, d in duplicates.items()} == {
        "crm:rec-4": (6, False),
        "crm:rec-5": (7, True),
    }
