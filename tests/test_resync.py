"""Re-sync at the speed of reading: rows imported unchanged are known by their key.

A row's key hashes its cells with everything that maps them; the ledger keeps what each key
mapped to, and a run maps only the rows that are not imported unchanged. Every test here
checks that a change, wherever it is, still reaches the plan.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import sqlite3
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from pytest import MonkeyPatch

from importer.cli.options import ReadingChoices
from importer.ledger import Ledger
from importer.ledger.manifest_index import ManifestIndex
from importer.ledger.row_cache import KeyedRow
from importer.plan import passes
from importer.plan.passes import index_manifest
from importer.read.manifest import ManifestRow, PlainColumns
from importer.rows.row_keys import row_keys
from importer.rows.validate import MappingOptions, map_row
from importer.settings import SourceOptions
from importer.targets.registry import import_settings
from tests.audit_support import requests_but_key_checks
from tests.conftest import Sandbox
from tests.factories import row, run_args, run_cli, status_counts, write_manifest


def known_unchanged(output: str) -> int:
    """The run's word on how many rows it did not check again (0 when it says nothing)."""
    found = re.search(r"([\d,]+) of them imported unchanged before", output)
    return int(found.group(1).replace(",", "")) if found else 0


KEPT = "Unchanged since a run kept its index"


def touched(path: Path) -> Path:
    """The same bytes, a later modification time: the kept index no longer fits."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    return path


def import_once(sandbox: Sandbox, manifest: Path, ledger: Path, *extra: str) -> str:
    result = run_cli(run_args(manifest, ledger, sandbox, *extra), sandbox.api_key)
    assert result.exit_code == 0, result.output
    return result.output


def test_an_unchanged_manifest_is_not_indexed_again(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(6)])
    ledger = tmp_path / "ledger.db"
    assert KEPT not in import_once(sandbox, manifest, ledger)
    before = requests_but_key_checks(sandbox)

    output = import_once(sandbox, manifest, ledger)

    assert KEPT in output
    assert "Skipping 6 already imported" in output
    assert requests_but_key_checks(sandbox) == before


def test_a_resumed_run_of_an_unchanged_manifest_sends_what_is_left(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(6)])
    ledger = tmp_path / "ledger.db"
    import_once(sandbox, manifest, ledger)
    with contextlib.closing(sqlite3.connect(ledger)) as db, db:  # as if never sent
        db.execute("DELETE FROM engagements WHERE external_id IN ('crm:rec-1', 'crm:rec-4')")

    output = import_once(sandbox, manifest, ledger)

    assert KEPT in output
    assert "Skipping 4 already imported" in output
    assert status_counts(ledger) == {"created": 4, "existing": 2}


def test_a_rewritten_manifest_is_read_again_rows_known_by_their_key(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(6)])
    ledger = tmp_path / "ledger.db"
    import_once(sandbox, manifest, ledger)

    output = import_once(sandbox, touched(manifest), ledger)

    assert KEPT not in output
    assert known_unchanged(output) == 6


def test_the_same_size_and_time_with_other_bytes_is_a_changed_manifest(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(3)])
    ledger = tmp_path / "ledger.db"
    import_once(sandbox, manifest, ledger)
    stat = manifest.stat()
    manifest.write_bytes(manifest.read_bytes().replace(b"Call number 1", b"Call number 9"))
    os.utime(manifest, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert manifest.stat().st_size == stat.st_size

    result = run_cli(run_args(manifest, ledger, sandbox), sandbox.api_key)

    assert KEPT not in result.output
    assert "changed since import" in result.output


def test_new_rows_are_sent_and_old_ones_not_checked_again(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    import_once(sandbox, write_manifest(tmp_path / "m.csv", [row(n) for n in range(4)]), ledger)

    output = import_once(
        sandbox, write_manifest(tmp_path / "m.csv", [row(n) for n in range(7)]), ledger
    )

    assert known_unchanged(output) == 4
    assert status_counts(ledger) == {"created": 7}


def test_a_changed_cell_is_checked_and_said_changed(sandbox: Sandbox, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    import_once(sandbox, write_manifest(tmp_path / "m.csv", [row(n) for n in range(3)]), ledger)
    rows = [row(0), row(1, title="Renamed call"), row(2)]

    result = run_cli(
        run_args(write_manifest(tmp_path / "m.csv", rows), ledger, sandbox), sandbox.api_key
    )

    assert known_unchanged(result.output) == 2
    assert "changed since import" in result.output
    assert "title" in result.output


def test_other_mapping_settings_check_every_row_again(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(3)])
    ledger = tmp_path / "ledger.db"
    import_once(sandbox, manifest, ledger)

    output = import_once(sandbox, manifest, ledger, "--timezone", "Europe/Paris")

    assert known_unchanged(output) == 0
    assert "Skipping 3 already imported" in output


def test_a_transcript_file_is_read_again_whatever_its_cell(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    (tmp_path / "t.txt").write_text("First words.", encoding="utf-8")
    manifest = write_manifest(tmp_path / "m.csv", [row(0, transcript_path="t.txt"), row(1)])
    ledger = tmp_path / "ledger.db"
    import_once(sandbox, manifest, ledger)
    (tmp_path / "t.txt").write_text("Other words.", encoding="utf-8")

    kept = run_cli(run_args(manifest, ledger, sandbox), sandbox.api_key)
    keyed = run_cli(run_args(touched(manifest), ledger, sandbox), sandbox.api_key)

    assert KEPT in kept.output and "changed since import" in kept.output
    assert known_unchanged(keyed.output) == 1
    assert "changed since import" in keyed.output


def test_a_known_row_repeated_with_other_values_is_a_duplicate(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.db"
    import_once(sandbox, write_manifest(tmp_path / "m.csv", [row(0), row(1)]), ledger)
    rows = [row(0), row(1), row(0, title="Another call, same id")]

    result = run_cli(
        run_args(write_manifest(tmp_path / "m.csv", rows), ledger, sandbox), sandbox.api_key
    )

    assert "crm:rec-0 is also on row 4 with different values" in result.output
    assert "crm:rec-0 is also on row 2 with different values" in result.output


def test_ids_repeated_in_an_unchanged_manifest_are_judged_as_before(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    rows = [row(0), row(1), row(0, title="Another call, same id"), row(2), row(2), row(3)]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    ledger = tmp_path / "ledger.db"
    first = run_cli(run_args(manifest, ledger, sandbox), sandbox.api_key)

    again = run_cli(run_args(manifest, ledger, sandbox), sandbox.api_key)

    assert KEPT in again.output
    assert "crm:rec-0 is also on row 4 with different values" in again.output
    assert "crm:rec-0 is also on row 2 with different values" in again.output
    assert again.exit_code == first.exit_code == 1
    assert status_counts(ledger) == {"created": 3}


def test_contacts_not_yet_applied_keep_the_row_checked(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(0, contact_ids="cnt_1"), row(1)])
    ledger = tmp_path / "ledger.db"
    import_once(sandbox, manifest, ledger)
    with sqlite3.connect(ledger) as db:  # as if the contact set had failed to apply
        db.execute("UPDATE engagements SET contacts_hash = NULL")

    output = run_cli(run_args(touched(manifest), ledger, sandbox), sandbox.api_key).output

    assert known_unchanged(output) == 1


def test_keys_tell_every_different_row_apart() -> None:
    options = MappingOptions(row_mapper=map_row)
    keys = row_keys(options, SourceOptions(), map_row)
    assert keys is not None
    base = {"id": "a\x1fb", "title": "c"}

    assert keys.key(base, None) == keys.key(dict(base), None)
    assert keys.key(base, None) != keys.key({"id": "a", "title": "b\x1fc"}, None)
    assert keys.key(base, None) != keys.key({"title": "c", "id": "a\x1fb"}, None)
    assert keys.key(base, None) != keys.key(base, "has 3 cells but the header has 2 columns")
    other = row_keys(MappingOptions(row_mapper=map_row, prefix="x:"), SourceOptions(), map_row)
    assert other is not None and other.key(base, None) != keys.key(base, None)
    assert keys.key({**base, "transcript_path": "t.txt"}, None) is None


def test_a_manifest_kept_again_replaces_its_index_table(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.db") as ledger:
        index = ManifestIndex(ledger)
        index.start()
        index.add([("crm:a", 2, "h", "a", None)])
        first = ledger.keep_manifest("m.csv", "before", {"rows": 1})
        index.start()
        index.add([("crm:b", 2, "h", "b", None)])
        second = ledger.keep_manifest("m.csv", "after", {"rows": 1})

        assert first and second and first != second
        assert first not in ledger.db.table_names()
        assert ledger.kept_manifest("m.csv", "before") is None
        assert (ledger.kept_manifest("m.csv", "after") or {}).get("index_table") == second
        assert ledger.db.execute(f"SELECT external_id FROM {second}").fetchall() == [("crm:b",)]


def test_an_index_kept_by_the_earlier_version_is_not_used(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.db") as ledger:  # one shared table, no index_table
        ledger.db.execute(
            "INSERT INTO kept_manifests VALUES ('m.csv', 'fp', '{\"rows\": 1}', NULL)"
        )
        assert ledger.kept_manifest("m.csv", "fp") is None


separators = st.text(alphabet="ab\x1d\x1e\x1f", max_size=3)
KEYS = row_keys(MappingOptions(row_mapper=map_row), SourceOptions(), map_row)
"""Made once: a key's salt hashes the rules' source code."""
rows_with_problems = st.tuples(
    st.dictionaries(separators, separators, min_size=1, max_size=3), st.none() | separators
)


def shifted(row: tuple[dict[str, str], str | None], at: int) -> tuple[dict[str, str], str | None]:
    """The same characters in the same order with one moved across a boundary between two
    parts (names, then values, then the problem): a row written alike, if anything is."""
    cells, problem = row
    parts = [*cells, *cells.values(), problem or ""]
    at %= len(parts) - 1
    if parts[at]:
        parts[at], parts[at + 1] = parts[at][:-1], parts[at][-1] + parts[at + 1]
    names, values = parts[: len(cells)], parts[len(cells) : 2 * len(cells)]
    return dict(zip(names, values, strict=True)), (parts[-1] if problem is not None else None)


@settings(max_examples=700, deadline=None)
@given(rows_with_problems, rows_with_problems, st.integers(0, 10))
def test_two_rows_share_a_key_only_when_they_are_the_same_row(
    first: tuple[dict[str, str], str | None],
    other: tuple[dict[str, str], str | None],
    at: int,
) -> None:
    """Names, values and problems made of the separators the keys' text uses: the row
    against another, and against itself with one character moved to the next part."""
    keys = KEYS
    assert keys is not None
    for second in (other, shifted(first, at)):
        if len(second[0]) != len(first[0]) and second is not other:
            continue  # two names became one: not a row of the same header
        same = (list(first[0].items()), first[1]) == (list(second[0].items()), second[1])
        assert (keys.key(*first) == keys.key(*second)) == same


batch_text = st.text(alphabet="ab\x1c\x1d\x1e\x1f\u00e9\ud800", max_size=3)
batch_rows = st.lists(
    st.tuples(
        st.dictionaries(st.sampled_from(["id", "x\x1c", "transcript_path"]), batch_text),
        st.none() | batch_text,
    ),
    max_size=4,
)


@settings(max_examples=400, deadline=None)
@given(batch_rows)
def test_a_batchs_keys_are_its_rows_keys(rows: list[tuple[dict[str, str], str | None]]) -> None:
    """Keys made a batch at once are the ones ``key`` makes row by row: separators (the one
    between rows too), surrogates, no cells, problems, a transcript cell filled or not."""
    records = [ManifestRow(n + 2, cells, problem) for n, (cells, problem) in enumerate(rows)]
    assert KEYS is not None and KEYS.transcript_column == "transcript_path"
    assert KEYS.keys(records) == [KEYS.key(r.cells, r.problem) for r in records]


header_names = st.lists(
    st.sampled_from(["id", "x\x1c", "transcript_path", "a\x1f"]), min_size=1, max_size=3
)


@settings(max_examples=400, deadline=None)
@given(header_names, st.lists(st.lists(batch_text, min_size=3, max_size=3), max_size=4))
def test_a_batch_of_columns_has_the_keys_of_its_rows(
    header: list[str], records: list[list[str]]
) -> None:
    """``PlainColumns``: the keys of the rows it makes, the header naming a column twice, a
    name or cell holding a separator, a transcript cell filled or not."""
    numbers = list(range(2, 2 + len(records)))
    columns = [[record[place] for record in records] for place in range(len(header))]
    batch = PlainColumns(header, numbers, columns)
    assert KEYS is not None
    assert KEYS.keys(batch) == [KEYS.key(r.cells, r.problem) for r in batch.rows()]


def settled_cases(
    ledger: Ledger,
) -> tuple[list[tuple[bytes, int]], list[tuple[str, int, str, str | None, str | None]]]:
    """Every way a row's key entry and its engagement can agree or differ, one id each: the
    (key, row number) pairs to ask about (with unknown and repeated keys), and the index
    entries of the settled ones, found row by row as the plan judges them."""
    statuses = ("created", "existing", "failed", "pending")
    contacts = ((None, None), (None, "c"), ("c", "c"), ("c", "d"), ("c", None))
    ids = (("s", "s"), ("s", "t"), (None, None), ("s", None), (None, "s"))
    media = (("m", "m"), ("m", None), (None, None), (None, "m"))
    keyed: list[tuple[bytes, int]] = []
    expected = []
    for n, (
        status,
        same_payload,
        changed,
        (wanted, applied),
        (source, held_source),
        (url, held_url),
    ) in enumerate(
        itertools.product(statuses, (True, False), (None, '["title"]'), contacts, ids, media)
    ):
        external_id, key, row_number = f"crm:{n}", n.to_bytes(16, "big"), n + 2
        ledger.remember_row_keys([KeyedRow(key, external_id, "h", wanted, source, url)])
        ledger.db.execute(
            "INSERT INTO engagements (external_id, status, payload_hash, changed_fields, "
            "contacts_hash, source_id, media_url) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                external_id,
                status,
                "h" if same_payload else "g",
                changed,
                applied,
                held_source,
                held_url,
            ],
        )
        keyed.append((key, row_number))
        if (
            status in ("created", "existing")
            and same_payload
            and changed is None
            and (wanted is None or wanted == applied)
            and (source, url) == (held_source, held_url)
        ):
            expected.append((external_id, row_number, "h", source, url))
    ledger.db.conn.commit()
    keyed.append((b"\xff" * 16, 1))  # a key the ledger never saw
    first = expected[0]
    keyed.append((int(first[0][4:]).to_bytes(16, "big"), 10_000))  # a row seen twice in the file
    expected.append((first[0], 10_000, *first[2:]))
    return keyed, expected


def test_settled_rows_are_the_rows_the_plan_calls_already_imported(tmp_path: Path) -> None:
    """The look-up, and the index entries it adds, row for row as the plan would judge."""
    with Ledger(tmp_path / "ledger.db") as ledger:
        keyed, expected = settled_cases(ledger)
        assert 10 < len(expected) < len(keyed) / 10  # every condition is met and missed

        found = ledger.settled_rows(keyed)
        index = ManifestIndex(ledger)
        index.start()
        added = ledger.settled_rows(keyed, index.table)

        wanted = sorted(
            (row_number, external_id, source) for external_id, row_number, _, source, _ in expected
        )
        assert sorted(found) == sorted(added) == wanted
        assert sorted(ledger.db.execute(f"SELECT * FROM {index.table}").fetchall()) == sorted(
            (*entry, 1) for entry in expected
        )


def test_every_settled_row_of_a_long_batch_is_found(tmp_path: Path) -> None:
    """Settled rows across the look-up's chunks (rows repeated in a file share a key)."""
    with Ledger(tmp_path / "ledger.db") as ledger:
        keyed, expected = settled_cases(ledger)
        keys = {key for key, row_number in keyed if row_number in {e[1] for e in expected}}
        many = [(key, 20_000 + n) for n, key in enumerate(sorted(keys) * 60)]
        index = ManifestIndex(ledger)
        index.start()

        for added in (None, index.table):
            found = ledger.settled_rows(many, added)
            assert [r.row_number for r in found] == [row_number for _, row_number in many]


def test_a_kept_index_is_written_in_external_id_then_row_order(tmp_path: Path) -> None:
    """Read through the scratch index of (external_id, row), or sorted when there is none."""
    entries = [(f"crm:{n % 7}", n + 2, "h", None, None) for n in range(50, 0, -1)]
    with Ledger(tmp_path / "ledger.db") as ledger:
        for searched in (True, False):
            index = ManifestIndex(ledger)
            index.start()
            ledger.db.execute("DROP INDEX IF EXISTS temp.manifest_index_id")
            index.add(entries)
            if searched:
                assert len(list(index.repeated())) == 7
            table = ledger.keep_manifest("m.csv", f"fp{searched}", {"rows": 50})

            kept = ledger.db.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
            assert kept == sorted(entries)


def test_keeping_an_index_again_leaves_the_ledgers_secure_delete_as_it_was(
    tmp_path: Path,
) -> None:
    """The old index's pages are freed without being zeroed, and only they."""
    with Ledger(tmp_path / "ledger.db") as ledger:
        for setting in (1, 0, 1):
            ledger.db.execute(f"PRAGMA secure_delete = {setting}")
            index = ManifestIndex(ledger)
            index.start()
            index.add([("crm:a", 2, "h", "a", None)])
            ledger.keep_manifest("m.csv", f"fp{setting}", {"rows": 1})

            assert ledger.db.execute("PRAGMA secure_delete").fetchone()[0] == setting


def test_the_counts_on_pass_ones_index_skip_settled_rows_and_stay_the_same(
    tmp_path: Path,
) -> None:
    """Counted on the scratch index (settled rows not joined again) as on the kept table."""
    with Ledger(tmp_path / "ledger.db") as ledger:
        keyed, expected = settled_cases(ledger)
        index = ManifestIndex(ledger)
        index.start()
        ledger.settled_rows(keyed[:-1], index.table)  # each settled id on one row, as pass one
        settled = {external_id for external_id, *_ in expected}
        others = [  # the other cases' ids (crm:N on row N + 2), unsettled
            (f"crm:{n - 2}", n, "h", "s", "m")
            for _, n in keyed[:-2]
            if f"crm:{n - 2}" not in settled
        ]
        index.add([*others, ("crm:new", 9_000, "h", None, None)])
        conflicting = [others[0][0]]

        on_scratch = index.summary(conflicting)
        ahead_on_scratch = ledger.db.execute("SELECT * FROM temp.ahead ORDER BY 1").fetchall()
        kept = ManifestIndex(ledger, ledger.keep_manifest("m.csv", "fp", {"rows": 1}) or "")
        on_kept = kept.summary(conflicting)

        assert on_scratch == on_kept
        assert on_scratch["already imported"] >= len(settled) > 0
        assert on_scratch["to send"] > 0 and on_scratch["changed since import"] > 0
        assert (
            ahead_on_scratch == ledger.db.execute("SELECT * FROM temp.ahead ORDER BY 1").fetchall()
        )


def plan_output(manifest: Path, ledger: Path, *extra: str) -> str:
    result = run_cli(["plan", str(manifest), "--ledger", str(ledger), *extra])
    assert result.exit_code in (0, 1), result.output
    return result.output


def test_a_plan_maps_only_the_rows_not_imported_unchanged(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: MonkeyPatch
) -> None:
    """The dry-run of a re-sync knows imported rows by their key, as the run does, and says
    of every row what mapping them all would: the same counts and the same examples."""
    rows = [row(n) for n in range(30)]
    ledger = tmp_path / "ledger.db"
    import_once(sandbox, write_manifest(tmp_path / "m.csv", rows), ledger)
    rows[3] = row(3, title="Renamed")  # changed since import
    rows[17] = row(17, type="memo")  # invalid
    rows += [row(40), row(41)]  # new
    manifest = write_manifest(tmp_path / "m.csv", rows)
    with contextlib.closing(sqlite3.connect(ledger)) as db, db:  # imported, not known by key
        db.execute("DELETE FROM row_keys WHERE external_id = 'crm:rec-2'")
    mapped: list[int] = []
    map_batch = passes.map_batch
    monkeypatch.setattr(
        passes,
        "map_batch",
        lambda batch, *args, **kwargs: (
            mapped.extend(r.row_number for r in batch) or map_batch(batch, *args, **kwargs)
        ),
    )

    keyed = plan_output(manifest, ledger, "--batch-size", "7")
    known = mapped[:]
    mapped.clear()
    every_row = plan_output(manifest, ledger, "--batch-size", "7", "--out", str(tmp_path / "p.csv"))

    assert sorted(known) == [4, 5, 19, 32, 33] and len(mapped) == 32
    assert keyed.replace(
        "27 row(s) imported unchanged before (known by their hash): not checked again.\n", ""
    ) == every_row.replace(f"Wrote {tmp_path / 'p.csv'}\n", "")
    # Row 4, mapped, among the settled rows around it: the examples in file order.
    assert (
        "already imported (first 5 of 28):\n  row 2 crm:rec-0\n  row 3 crm:rec-1\n  row 4" in keyed
    )


def test_a_plan_with_an_imported_row_repeated_judges_as_mapping_every_row(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    rows = [row(n) for n in range(12)]
    ledger = tmp_path / "ledger.db"
    import_once(sandbox, write_manifest(tmp_path / "m.csv", rows), ledger)
    manifest = write_manifest(tmp_path / "m.csv", [*rows, row(4, title="Call 4 again")])

    keyed = plan_output(manifest, ledger, "--json")
    every_row = plan_output(manifest, ledger, "--json", "--out", str(tmp_path / "p.csv"))

    first = json.JSONDecoder().raw_decode  # the CSV's path is said after the JSON
    assert first(keyed)[0] == first(every_row)[0]
    assert first(keyed)[0]["counts"] == {"already imported": 11, "duplicate": 2}


def test_a_plan_with_an_imported_row_written_alike_judges_as_mapping_every_row(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """An id equal under NFKC to a settled row's is a duplicate of it, as when every row is
    mapped (the settled row was left ``already imported``)."""
    rows = [row(n) for n in range(4)] + [row(9, id="rec-\u00e9")]
    ledger = tmp_path / "ledger.db"
    import_once(sandbox, write_manifest(tmp_path / "m.csv", rows), ledger)
    manifest = write_manifest(tmp_path / "m.csv", [*rows, row(10, id="rec-e\u0301")])

    keyed = plan_output(manifest, ledger, "--json")
    every_row = plan_output(manifest, ledger, "--json", "--out", str(tmp_path / "p.csv"))

    first = json.JSONDecoder().raw_decode
    assert first(keyed)[0] == first(every_row)[0]
    assert first(keyed)[0]["counts"] == {"already imported": 4, "duplicate": 2}


def test_keys_learned_are_kept_at_once_the_later_note_winning(tmp_path: Path) -> None:
    """Pass one notes keys as it maps and keeps them in key order when it ends."""
    with Ledger(tmp_path / "ledger.db") as ledger:
        ledger.learn_row_keys(
            [
                KeyedRow(b"k2", "crm:2", "h2", None, "2", None),
                KeyedRow(b"k1", "crm:1", "a", None, "1", None),
            ]
        )
        ledger.learn_row_keys([KeyedRow(b"k1", "crm:1", "b", "c", "1", "https://m/1")])
        assert ledger.db.execute("SELECT COUNT(*) FROM row_keys").fetchone()[0] == 0

        ledger.keep_learned_keys()
        ledger.keep_learned_keys()  # nothing more to keep

        assert ledger.db.execute("SELECT * FROM row_keys ORDER BY key").fetchall() == [
            (b"k1", "crm:1", "b", "c", "1", "https://m/1"),
            (b"k2", "crm:2", "h2", None, "2", None),
        ]


def test_a_first_run_keeps_the_keys_of_every_valid_row(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(n) for n in range(9)] + [row(9, type="x")])
    settings = import_settings(manifest, ReadingChoices())
    with Ledger(tmp_path / "ledger.db") as ledger:
        index_manifest(ledger, settings, settle=True)
        kept = ledger.db.execute("SELECT external_id FROM row_keys ORDER BY external_id")
        assert [external_id for (external_id,) in kept] == [f"crm:rec-{n}" for n in range(9)]


def test_a_batch_of_columns_keeps_its_unsettled_rows_with_their_own_keys(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Of a batch read column by column, the rows not known by their key are left as
    columns, in order, each with its own key (the key a run then learns for it)."""
    rows = [row(n) for n in range(12)]
    ledger_path = tmp_path / "ledger.db"
    import_once(sandbox, write_manifest(tmp_path / "m.csv", rows), ledger_path)
    rows[3], rows[8] = row(3, title="Renamed"), row(8, title="Other")
    manifest = write_manifest(tmp_path / "m.csv", rows)
    settings, _ = passes.prepare(import_settings(manifest, ReadingChoices()))
    source = passes._checked_source(manifest, settings.mapping, settings.source)
    keys = row_keys(settings.mapping, source, map_row)
    (batch,) = passes.read_manifest_columns(manifest, 100, source)
    assert keys is not None and isinstance(batch, PlainColumns)
    with Ledger(ledger_path) as ledger:
        settled, unsettled, unsettled_keys = passes._known_by_key(ledger, keys, batch)
    assert [r.row_number for r in settled] == [2, 3, 4, 6, 7, 8, 9, 11, 12, 13]
    assert isinstance(unsettled, PlainColumns) and unsettled.numbers == [5, 10]
    assert [r.cells["title"] for r in unsettled.rows()] == ["Renamed", "Other"]
    assert unsettled_keys == [keys.key(r.cells, None) for r in unsettled.rows()]
