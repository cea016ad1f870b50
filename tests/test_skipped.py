"""``skipped``: rows with nothing to import (no recording) are recorded, never sent, exit 0."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.audit_support import run
from tests.conftest import Sandbox
from tests.factories import row, run_cli, write_manifest

NO_MEDIA = "no media URL (a call without a recording): nothing to import"


def summary_counts(text: str) -> dict[str, int]:
    """The counts table of a run summary, as a dict."""
    counts = {}
    for line in text.splitlines()[1:]:
        name, _, number = line.strip().rpartition(" ")
        counts[name.strip()] = int(number.replace(",", ""))
    return counts


def manifest_with_a_call_without_recording(tmp_path: Path) -> Path:
    return write_manifest(tmp_path / "calls.csv", [row(1), row(2, media_url=""), row(3)])


def test_without_the_option_a_blank_media_url_is_invalid(sandbox: Sandbox, tmp_path: Path) -> None:
    manifest = manifest_with_a_call_without_recording(tmp_path)
    result = run(sandbox, manifest, tmp_path / "ledger.db")
    assert result.exit_code == 1
    assert "invalid" in result.stdout and "skipped" not in result.stdout


def test_skip_without_media_run_exits_0_and_status_plan_report_show_skipped(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = manifest_with_a_call_without_recording(tmp_path)
    ledger = tmp_path / "ledger.db"

    result = run(sandbox, manifest, ledger, "--skip-without-media")

    assert result.exit_code == 0, result.output
    assert summary_counts(result.stdout) == {"created": 2, "skipped": 1}
    assert len(sandbox.engagements()) == 2
    status = json.loads(run_cli(["status", "--ledger", str(ledger), "--json"]).stdout)
    assert status["counts"] == {"created": 2, "skipped": 1}
    assert status["runs"][0]["outcome"] == "ok"

    plan = run_cli(
        ["plan", str(manifest), "--ledger", str(ledger), "--skip-without-media", "--json"]
    )
    assert plan.exit_code == 0
    data = json.loads(plan.stdout)
    assert data["counts"] == {"already imported": 2, "skipped": 1}
    assert data["examples"]["skipped"] == [
        {"row": 3, "external_id": "crm:rec-2", "reason": NO_MEDIA}
    ]

    out = tmp_path / "reports"
    report = run_cli(["report", "--ledger", str(ledger), "--out", str(out)])
    assert f"Wrote {out / 'skipped.csv'} (1 rows)" in report.stdout
    assert f"Wrote {out / 'errors.csv'} (0 rows)" in report.stdout
    with (out / "skipped.csv").open(encoding="utf-8", newline="") as handle:
        assert list(csv.reader(handle)) == [
            ["manifest", "row", "external_id", "reason"],
            [str(manifest.resolve()), "3", "crm:rec-2", NO_MEDIA],
        ]


def test_mapping_setting_skips_and_a_recording_added_later_is_sent(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    manifest = manifest_with_a_call_without_recording(tmp_path)
    mapping = tmp_path / "mapping.toml"
    mapping.write_text("[rows]\nskip_without_media = true\n", encoding="utf-8")
    ledger = tmp_path / "ledger.db"
    assert run(sandbox, manifest, ledger, "--mapping", str(mapping)).exit_code == 0

    write_manifest(manifest, [row(1), row(2), row(3)])
    result = run(sandbox, manifest, ledger, "--mapping", str(mapping))

    assert result.exit_code == 0
    assert summary_counts(result.stdout) == {"created": 1, "already imported": 2}
    status = json.loads(run_cli(["status", "--ledger", str(ledger), "--json"]).stdout)
    assert status["counts"] == {"created": 3}


def test_a_row_without_media_is_skipped_whatever_else_it_lacks(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # A missed call in a nightly export: no recording, and no title, start or type either.
    rows = [row(1), row(2, media_url="", type="BOGUS", title="", start_at="")]
    manifest = write_manifest(tmp_path / "m.csv", rows)
    result = run_cli(
        [
            "plan",
            str(manifest),
            "--ledger",
            str(tmp_path / "l.db"),
            "--skip-without-media",
            "--json",
        ]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["counts"] == {"new": 1, "skipped": 1}
    assert data["examples"]["skipped"] == [
        {"row": 3, "external_id": "crm:rec-2", "reason": NO_MEDIA}
    ]
    nightly = run(sandbox, manifest, tmp_path / "l.db", "--skip-without-media")
    assert nightly.exit_code == 0, nightly.output
    assert summary_counts(nightly.stdout) == {"created": 1, "skipped": 1}


def test_mapping_rows_setting_must_be_a_boolean(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('[rows]\nskip_without_media = "yes"\n', encoding="utf-8")
    result = run_cli(["plan", str(manifest), "--mapping", str(mapping)])
    assert result.exit_code == 2
    assert "[rows] skip_without_media must be true or false" in result.output
