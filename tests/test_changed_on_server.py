"""A row found changed on the server (a 200 whose content differs): counted once, and kept
in sight by ``status``, errors.csv and summary.md."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.conftest import SandboxProcess
from tests.factories import row, run_args, run_cli, write_manifest


def test_a_row_the_server_holds_with_other_values_is_counted_once_and_reported(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    ledger = tmp_path / "l.db"
    old = write_manifest(tmp_path / "m.csv", [row(1, title="Old title")])
    sandbox.set_faults(drop_after_commit_rate=1.0)  # stored, but the answer is lost
    lost = run_cli(run_args(old, ledger, sandbox, "--max-attempts", "1"), sandbox.api_key)
    assert lost.exit_code == 1, lost.output
    sandbox.set_faults(drop_after_commit_rate=0.0)
    new = write_manifest(tmp_path / "m.csv", [row(1, title="New title")])

    result = run_cli(run_args(new, ledger, sandbox, "--log-format", "json"), sandbox.api_key)

    assert result.exit_code == 1, result.output
    finished = [json.loads(line) for line in result.stderr.splitlines() if "run_finished" in line]
    assert finished[-1]["counts"] == {"changed since import": 1}
    status = json.loads(run_cli(["status", "--ledger", str(ledger), "--json"]).stdout)
    assert status["changed_since_import"]["count"] == 1
    assert status["changed_since_import"]["examples"][0]["external_id"] == "crm:rec-1"
    out = tmp_path / "reports"
    assert run_cli(["report", "--ledger", str(ledger), "--out", str(out)]).exit_code == 0
    with (out / "errors.csv").open(encoding="utf-8", newline="") as handle:
        errors = list(csv.DictReader(handle))
    assert [(e["id"], e["title"], e["error_status"]) for e in errors] == [
        ("rec-1", "New title", "changed since import")
    ]
    assert errors[0]["error_message"] == (
        "AskElephant already held this engagement with other values: title "
        "'Old title' there, 'New title' in the manifest; create cannot update it"
    )
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "Nothing: every row" not in summary
    assert "- Changed since import: 1 row(s) hold other values in AskElephant" in summary
