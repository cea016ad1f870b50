"""Planning maps each manifest row once: pass two reads pass one's spool, not the file."""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any

from importer.ledger import Ledger
from importer.outcomes import Action
from importer.pipeline import plan_manifest
from importer.rows.validate import MappedRow, MappingOptions, map_row
from importer.settings import ImportSettings
from tests.factories import row, write_manifest


def test_plan_maps_every_row_once_and_keeps_file_order(tmp_path: Path) -> None:
    rows = [row(n) for n in range(2500)]  # three batches of 1,000
    rows.append(row(7, title="Other"))  # a conflicting duplicate, known only at the end
    manifest = write_manifest(tmp_path / "m.csv", rows)
    mapped: Counter[int] = Counter()

    def counting(cells: dict[str, str], row_number: int, *args: Any, **kw: Any) -> MappedRow:
        mapped[row_number] += 1
        return map_row(cells, row_number, *args, **kw)

    settings = ImportSettings(
        manifest=manifest, mapping=dataclasses.replace(MappingOptions(), row_mapper=counting)
    )
    seen: list[tuple[int, Action]] = []
    with Ledger(tmp_path / "ledger.db") as ledger:
        counts = plan_manifest(
            settings, ledger, lambda p: seen.append((p.row.row_number, p.action))
        )

    assert set(mapped.values()) == {1} and len(mapped) == 2501
    assert [n for n, _ in seen] == list(range(2, 2503))
    assert counts[Action.NEW] == 2499 and counts[Action.DUPLICATE] == 2
