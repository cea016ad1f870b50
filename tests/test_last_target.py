"""``retry``, ``verify``, ``reconcile`` and ``sync-contacts`` go where the last run went, and
every next step carries the base URL, however the run was given it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import SandboxProcess
from tests.factories import row, run_cli, write_manifest


def failed_run_through_the_environment(sandbox: SandboxProcess, tmp_path: Path) -> Path:
    """A sandbox run whose base URL came from ASKELEPHANT_BASE_URL; one row failed."""
    ledger = tmp_path / "l.db"
    manifest = write_manifest(tmp_path / "m.csv", [row(1), row(2)])
    sandbox.set_faults(fail_rate=1.0)
    result = run_cli(
        ["run", str(manifest), "--ledger", str(ledger), "--no-progress", "--max-attempts", "1"],
        sandbox.api_key,
        ASKELEPHANT_BASE_URL=sandbox.base_url,
    )
    assert result.exit_code == 1, result.output
    sandbox.set_faults(fail_rate=0.0)
    return ledger


def test_retry_goes_to_the_last_runs_base_url_and_says_so(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    ledger = failed_run_through_the_environment(sandbox, tmp_path)

    retried = run_cli(["retry", "--ledger", str(ledger), "--no-progress"], sandbox.api_key)

    assert retried.exit_code == 0, retried.output
    assert (
        f"Base URL of the last run (#1): {sandbox.base_url} (askelephant); "
        "--target and --base-url choose another." in retried.stderr
    )
    assert "production" not in retried.output
    assert len(sandbox.engagements()) == 2


def test_verify_reconcile_and_sync_contacts_follow_the_last_run(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    ledger = failed_run_through_the_environment(sandbox, tmp_path)
    assert run_cli(["retry", "--ledger", str(ledger)], sandbox.api_key).exit_code == 0
    said = f"Base URL of the last run (#2): {sandbox.base_url} (askelephant)"

    verified = run_cli(["verify", "--ledger", str(ledger), "--json"], sandbox.api_key)
    reconciled = run_cli(["reconcile", "--ledger", str(ledger), "--json"], sandbox.api_key)
    synced = run_cli(
        ["sync-contacts", str(tmp_path / "m.csv"), "--ledger", str(ledger), "--no-progress"],
        sandbox.api_key,
    )

    for result in (verified, reconciled, synced):
        assert said in result.stderr, result.output
        assert result.exit_code in (0, 1), result.output
    assert json.loads(reconciled.stdout)["counts"]["missing"] == 0


def test_next_steps_carry_a_base_url_given_by_the_environment(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    ledger = failed_run_through_the_environment(sandbox, tmp_path)
    out = tmp_path / "reports"

    assert run_cli(["report", "--ledger", str(ledger), "--out", str(out)]).exit_code == 0

    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert f"importer retry --base-url {sandbox.base_url} --ledger {ledger}" in summary
