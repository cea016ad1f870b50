"""Pass one mapped by worker processes gives what the main process alone gives: the same
index, spool, counts, prefixes, rejected rows and keys; and a worker never outlives the
process that started it."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from importer.cli.options import ReadingChoices
from importer.errors import ManifestError
from importer.ledger import Ledger
from importer.ledger.manifest_index import COLUMNS, SpooledRecord
from importer.plan.mapping_pool import (
    MappedOutcome,
    MappingPool,
    batch_outcome,
    outcome_of,
    owned,
)
from importer.plan.passes import BatchMapper, index_manifest
from importer.plan.spool_form import rows_of
from importer.read.manifest import PlainColumns, ReadStats, manifest_rows, read_manifest
from importer.rows import validate
from importer.rows.validate import MappedRow
from importer.settings import ImportSettings
from importer.targets.registry import import_settings
from tests.conftest import Sandbox
from tests.factories import row, run_args, run_cli, with_part_changed, write_manifest
from tests.sandboxes import PROJECT_ROOT


def varied_rows(count: int) -> list[dict[str, str]]:
    """Valid rows, and among them invalid, skipped, repeated and lookalike ones."""
    rows = []
    for n in range(count):
        cells = row(n)
        if n % 11 == 3:
            cells["type"] = "memo"  # invalid
        if n % 13 == 5:
            cells["media_url"] = ""  # skipped (with --skip-without-media) or invalid
        if n % 17 == 7:
            cells["id"] = "rec-1"  # repeated
        if n % 19 == 2:
            cells["participants"] = "Ana Ng, Ben Wu <ben@acme.com>"  # cannot be split
        rows.append(cells)
    return rows


def pass_one(settings: ImportSettings, ledger_path: Path, workers: int, **kinds: Any) -> Any:
    """Everything pass one leaves, read back: the index, the spool, the counts; and how
    many batches workers mapped."""
    rejected: list[MappedRow] = []
    prefixes: set[str] = set()
    stats = ReadStats()
    settings = dataclasses.replace(settings, mapping_workers=workers, rows_before_workers=0)
    by_workers: list[int] = []
    exit_pool = MappingPool.__exit__

    def counted(pool: MappingPool, *args: Any) -> None:
        by_workers.append(pool.by_workers)
        exit_pool(pool, *args)

    with Ledger(ledger_path) as ledger, pytest.MonkeyPatch.context() as patch:
        patch.setattr(MappingPool, "__exit__", counted)
        index, duplicates, seen = index_manifest(
            ledger, settings, stats, rejected.extend, prefixes, **kinds
        )
        entries = sorted(ledger.db.execute(f"SELECT * FROM {index.table}").fetchall())
        spooled = [(record.head, record.body()) for record in index.spooled()]
        keys = sorted(ledger.db.execute("SELECT * FROM row_keys").fetchall())
    assert (sum(by_workers) > 0) == (workers > 0)
    return entries, spooled, duplicates, seen, prefixes, stats, rejected, keys


def test_workers_leave_what_the_main_process_alone_leaves(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", varied_rows(400))
    with manifest.open("ab") as handle:  # a byte that is not UTF-8 in a title
        handle.write(
            b"rec-900,CALL,Caf\xe9,https://media.example.com/900.mp3,2024-03-01Z,,,,,crm,\n"
        )
    settings = dataclasses.replace(
        import_settings(manifest, ReadingChoices(skip_without_media=True)), batch_size=7
    )

    alone = pass_one(settings, tmp_path / "alone.db", workers=0, settle=True)
    with_workers = pass_one(settings, tmp_path / "workers.db", workers=2, settle=True)

    assert with_workers == alone
    entries, spooled, duplicates, seen, prefixes, stats, rejected, keys = alone
    assert len(entries) > 300
    assert seen["rows"] == 401 and len(spooled) == 58 and stats.undecodable_rows == 1
    assert "crm:rec-1" in duplicates and prefixes == {"crm:"} and len(keys) > 300
    assert {r.skip_reason is not None for r in rejected} == {True, False}


def test_workers_spool_a_plans_records_as_the_main_process_does(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", varied_rows(300))
    settings = dataclasses.replace(import_settings(manifest, ReadingChoices()), batch_size=9)

    def spooled(workers: int) -> list[tuple[Any, bool, Any]]:
        options = dataclasses.replace(settings, mapping_workers=workers, rows_before_workers=0)
        with Ledger(tmp_path / "none.db", readonly=True) as ledger:
            index, _, _ = index_manifest(ledger, options, spool_records=True)
            return [(r.head, r.holds_records, read_back(r)) for r in index.spooled()]

    alone, with_workers = spooled(0), spooled(2)

    assert with_workers == alone
    # Batches of valid rows keep their records as read; the others, their rows mapped.
    batches = list(read_manifest(manifest, 9))
    mapper = BatchMapper(manifest, settings.mapping)
    holding = [all(r.valid and r.skip_reason is None for r in mapper(b)) for b in batches]
    assert [holds for _, holds, _ in alone] == holding and 0 < sum(holding) < len(batches)
    for (_, holds, body), batch in zip(alone, batches, strict=True):
        assert body == (batch if holds else [r.row_number for r in batch])


def read_back(record: SpooledRecord) -> Any:
    """A spooled body as rows: records (as rows, or column by column), or rows mapped."""
    body = record.body()
    if record.holds_columns:
        return PlainColumns(*body).rows()
    return manifest_rows(body) if record.holds_records else [r.row_number for r in rows_of(body)]


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_workers_take_and_spool_a_plans_batches_column_by_column(tmp_path: Path, kind: str) -> None:
    """At the default batch size a plan's plain batches go to the workers as columns, are
    spooled so, and come back as the main process alone makes them."""
    rows = [row(n) for n in range(2600)]
    rows[1500]["type"] = "memo"  # its batch is spooled mapped
    manifest = write_manifest(tmp_path / "m.csv", rows)
    if kind == "parquet":
        manifest = tmp_path / "m.parquet"
        pq.write_table(pa.Table.from_pylist(rows), manifest)
    settings = import_settings(manifest, ReadingChoices())

    def spooled(workers: int) -> tuple[list[Any], list[Any], int]:
        options = dataclasses.replace(settings, mapping_workers=workers, rows_before_workers=0)
        by_workers: list[int] = []
        exit_pool = MappingPool.__exit__
        with (
            Ledger(tmp_path / "none.db", readonly=True) as ledger,
            pytest.MonkeyPatch.context() as patch,
        ):
            patch.setattr(
                MappingPool,
                "__exit__",
                lambda pool, *a: by_workers.append(pool.by_workers) or exit_pool(pool, *a),
            )
            index, _, _ = index_manifest(ledger, options, spool_records=True)
            records = list(index.spooled())
            entries = sorted(ledger.db.execute(f"SELECT * FROM {index.table}").fetchall())
        return [(r.head, r.form, read_back(r)) for r in records], entries, sum(by_workers)

    (alone, entries, _), (with_workers, worker_entries, mapped_there) = spooled(0), spooled(2)

    assert with_workers == alone and worker_entries == entries and mapped_there == 3
    assert [form & COLUMNS for _, form, _ in alone] == [COLUMNS, 0, COLUMNS]
    assert [rows for _, _, rows in alone][::2] == [
        b for n, b in enumerate(read_manifest(manifest)) if n != 1
    ]
    assert len(entries) == 2599


def test_workers_map_only_what_the_ledger_does_not_know(sandbox: Sandbox, tmp_path: Path) -> None:
    rows = varied_rows(60)
    manifest = write_manifest(tmp_path / "m.csv", rows)
    ledger = tmp_path / "ledger.db"
    result = run_cli(run_args(manifest, ledger, sandbox, "--skip-without-media"), sandbox.api_key)
    assert result.exit_code in (0, 1), result.output
    rows[4] = row(4, title="Renamed")
    write_manifest(manifest, [*rows, row(70), row(71)])
    settings = dataclasses.replace(
        import_settings(manifest, ReadingChoices(skip_without_media=True)), batch_size=5
    )
    copy = tmp_path / "copy.db"
    copy.write_bytes(ledger.read_bytes())

    alone = pass_one(settings, ledger, workers=0, settle=True)
    with_workers = pass_one(settings, copy, workers=2, settle=True)

    assert with_workers == alone
    assert 0 < alone[3]["settled"] < 60


def test_a_mapper_from_elsewhere_stays_in_the_main_process() -> None:
    assert owned(validate.map_row)
    assert not owned(lambda cells, *args, **kwargs: validate.map_row(cells, *args, **kwargs))
    assert not owned(os.getcwd)


ORPHANED = """
import sys, time
from pathlib import Path
from importer.plan.mapping_pool import MappingPool
from importer.plan.passes import BatchMapper
from importer.read.manifest import ManifestRow
from importer.rows.validate import MappingOptions

if __name__ == "__main__":
    manifest, options = Path(sys.argv[1]), MappingOptions()
    setup = (BatchMapper, (manifest, options))
    with MappingPool(BatchMapper(manifest, options), setup, 2, 0) as pool:
        pool.submit([ManifestRow(2, {"id": "1"})], None, False)
        list(pool.rest())
        print(*[p.pid for p in pool.executor._processes.values()], flush=True)
        time.sleep(600)
"""


def test_workers_end_when_the_main_process_is_killed(tmp_path: Path) -> None:
    """kill -9 leaves no one to tell the workers: they see their parent gone and exit."""
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])
    script = tmp_path / "orphaned.py"
    script.write_text(ORPHANED)
    main = subprocess.Popen(
        [sys.executable, str(script), str(manifest)], stdout=subprocess.PIPE, text=True
    )
    assert main.stdout is not None
    workers = [int(pid) for pid in main.stdout.readline().split()]
    assert workers and all(alive(pid) for pid in workers)

    main.send_signal(signal.SIGKILL)
    main.wait()
    main.stdout.close()

    deadline = time.monotonic() + 60  # an upper bound, not a measure: each checks every 1 s
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers)


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie, exited but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_ctrl_c_while_workers_map_stops_them_and_says_interrupted(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group: the workers ignore it, the importer stops
    them and says so, with no traceback from any of them."""
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(150_000)])
    plan = subprocess.Popen(
        [sys.executable, "-m", "importer", "plan", str(manifest), "--ledger", str(tmp_path / "l")],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group, signalled as a terminal signals one
    )
    children = Path(f"/proc/{plan.pid}/task/{plan.pid}/children")
    deadline = time.monotonic() + 120  # an upper bound: the workers start after 20,000 rows
    workers: list[int] = []
    while len(workers) < 2 and plan.poll() is None and time.monotonic() < deadline:
        workers = [int(pid) for pid in children.read_text().split()]
        time.sleep(0.02)
    assert len(workers) >= 2, "the plan ended before its workers started"

    os.killpg(plan.pid, signal.SIGINT)
    stdout, stderr = plan.communicate(timeout=60)

    assert plan.returncode == 130 and stderr == "Interrupted.\n" and not stdout, stderr
    deadline = time.monotonic() + 60
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers)


def test_rows_read_before_a_fault_in_the_file_are_kept_with_workers_too(tmp_path: Path) -> None:
    """A sheet damaged at row 1,200 stops pass one there; the rejects of the rows before
    are all recorded, workers or none."""
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Calls")
    rows = varied_rows(1_300)
    sheet.append(list(rows[0]))
    for cells in rows:
        sheet.append(list(cells.values()))
    book.save(tmp_path / "whole.xlsx")
    manifest = with_part_changed(
        tmp_path / "whole.xlsx",
        tmp_path / "m.xlsx",
        "xl/worksheets/sheet1.xml",
        lambda xml: xml.replace(b'<row r="1200"', b'<row r="1200"><junk'),
    )
    settings = dataclasses.replace(import_settings(manifest, ReadingChoices()), batch_size=7)
    rejected: dict[int, list[int]] = {}
    for workers in (0, 2):
        noted: list[MappedRow] = []
        with Ledger(tmp_path / f"{workers}.db") as ledger, pytest.raises(ManifestError):
            index_manifest(
                ledger,
                dataclasses.replace(settings, mapping_workers=workers, rows_before_workers=0),
                None,
                noted.extend,
            )
        rejected[workers] = [r.row_number for r in noted]
    assert rejected[2] == rejected[0] and len(rejected[0]) > 100


def test_batches_a_dead_worker_had_are_mapped_here(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", varied_rows(200))
    options = import_settings(manifest, ReadingChoices()).mapping
    batches = list(read_manifest(manifest, 9))
    mapper = BatchMapper(manifest, options)

    with MappingPool(mapper, (BatchMapper, (manifest, options)), 2, 0) as pool:
        pool.submit(batches[0], None, False)
        outcomes = list(pool.rest())
        assert pool.executor is not None and pool.by_workers == 1
        for worker in list(pool.executor._processes):
            os.kill(worker, signal.SIGKILL)
        for batch in batches[1:]:
            pool.submit(batch, None, False)
        outcomes += pool.rest()

    expected = [outcome_of(mapper(batch), None, False) for batch in batches]
    assert [comparable(o) for o in outcomes] == [comparable(o) for o in expected]


def comparable(outcome: MappedOutcome) -> tuple[Any, ...]:
    """The outcome with its spooled rows read back (marshal's bytes may differ by process)."""
    return (*outcome._replace(spooled=(0, 0, b"")), SpooledRecord(None, *outcome.spooled).body())


def test_a_plans_batch_of_plain_rows_has_the_outcome_its_mapped_rows_give(tmp_path: Path) -> None:
    """Made from index entries alone (no mapped row, no payload hash): the same index less
    the hashes, prefixes, ids and counts; a batch with a row not plain, and one whose keys
    are learned, from mapped rows."""
    manifest = write_manifest(tmp_path / "m.csv", varied_rows(60))
    options = import_settings(manifest, ReadingChoices()).mapping
    mapper = BatchMapper(manifest, options)
    made: list[int] = []
    call = BatchMapper.__call__
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(BatchMapper, "__call__", lambda self, b: made.append(len(b)) or call(self, b))
        batches = list(read_manifest(manifest, 3))
        for batch in batches:
            for keys in (None, [b"k"] * len(batch)):
                expected = outcome_of(call(mapper, batch), keys, False, True)
                found = batch_outcome(mapper, batch, keys, False, True)
                # Only a batch of plain rows alone, whose keys are not learned, is unhashed.
                entries = mapper.index_entries(batch) if keys is None else None
                if entries and type(entries[0]) is tuple:
                    unhashed = [(*v[:2], None, *v[3:]) for v in expected.valid]
                    expected = expected._replace(valid=unhashed)
                assert found == expected
    plain = [b for b in batches if outcome_of(call(mapper, b), None, False, True).importable]
    assert 0 < len(plain) < len(batches)
    entries = [mapper.index_entries(b) for b in plain]  # the entries alone: no mapped row made
    assert any(found and type(found[0]) is tuple for found in entries)
    assert len(made) == len(batches)  # mapped rows only where keys are learned
