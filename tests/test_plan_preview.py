"""``plan`` shows what will land: a few requests as they will be sent (title, type, start in
the zone and in UTC, participants), and ``plan --out`` carries every field of each."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.devrev_support import MEMBER, write_devrev_manifest
from tests.factories import row, run_cli, write_manifest


def outreach_like(tmp_path: Path) -> Path:
    rows = [
        row(1, start_at="2025-11-05 14:15", title="Discovery", participants="ana@acme.com"),
        row(2, start_at="2025-11-06 09:00", type="MEETING", participants=""),
        row(3, start_at="2025-11-07 16:45"),
        row(4, start_at="2025-11-08 08:30"),
    ]
    return write_manifest(tmp_path / "calls.csv", rows)


def plan(tmp_path: Path, manifest: Path, *extra: str) -> str:
    result = run_cli(
        [
            "plan",
            str(manifest),
            "--ledger",
            str(tmp_path / "l.db"),
            "--timezone",
            "America/New_York",
            *extra,
        ]
    )
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def test_plan_shows_the_first_requests_as_they_will_land(tmp_path: Path) -> None:
    text = plan(tmp_path, outreach_like(tmp_path))

    block = text.split("\n\n")[1].splitlines()
    assert block == [
        "As they will be sent (first 3 of 4 to send):",
        "  row 2 crm:rec-1",
        "    title         Discovery",
        "    type          CALL",
        "    start_at      2025-11-05 14:15 America/New_York = 2025-11-05 19:15 UTC",
        "    participants  ana@acme.com",
        "  row 3 crm:rec-2",
        "    title         Call number 2",
        "    type          MEETING",
        "    start_at      2025-11-06 09:00 America/New_York = 2025-11-06 14:00 UTC",
        "    participants  (none)",
        "  row 4 crm:rec-3",
        "    title         Call number 3",
        "    type          CALL",
        "    start_at      2025-11-07 16:45 America/New_York = 2025-11-07 21:45 UTC",
        "    participants  Person 3 <person3@example.com>",
    ]


def test_plan_json_and_out_carry_every_field_of_each_request(tmp_path: Path) -> None:
    manifest = outreach_like(tmp_path)
    out = tmp_path / "plan.csv"

    data = json.loads(plan(tmp_path, manifest, "--json"))
    plan(tmp_path, manifest, "--out", str(out))

    assert data["to_send"][0] == {
        "row": 2,
        "request": {
            "external_id": "crm:rec-1",
            "media_url": "https://media.example.com/calls/1.mp3",
            "participants": [{"email": "ana@acme.com"}],
            "run_workflows": False,
            "source_system": "crm",
            "start_at": "2025-11-05T19:15:00+00:00",
            "title": "Discovery",
            "type": "CALL",
        },
        "start_at_local": "2025-11-05 14:15 America/New_York = 2025-11-05 19:15 UTC",
    }
    with out.open(encoding="utf-8", newline="") as handle:
        lines = list(csv.DictReader(handle))
    assert len(lines) == 4
    assert json.loads(lines[3]["request"])["start_at"] == "2025-11-08T13:30:00+00:00"
    assert (lines[3]["title"], lines[3]["type"], lines[3]["participants"]) == (
        "Call number 4",
        "CALL",
        "Person 4 <person4@example.com>",
    )
    assert lines[3]["start_at_local"] == "2025-11-08 08:30 America/New_York = 2025-11-08 13:30 UTC"


def test_a_devrev_plan_shows_its_own_fields(tmp_path: Path) -> None:
    manifest = write_devrev_manifest(tmp_path / "calls.csv", 1)

    result = run_cli(
        ["plan", str(manifest), "--ledger", str(tmp_path / "l.db"), "--target", "devrev"]
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.split("\n\n")[1].splitlines()[1:] == [
        "  row 2 crm:rec-1",
        "    title         Call number 1",
        "    type          call",
        "    start_at      2024-03-02 10:01 UTC",
        f"    participants  {MEMBER}",
    ]
