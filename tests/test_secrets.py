"""The API key never leaves the Authorization header: not in output, logs, ledger or reports."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from importer.cli import cli
from importer.rows import contract
from tests.conftest import Sandbox
from tests.factories import api_args, row, write_manifest

SECRET = "sk-apik_leak.SUPERSECRET-c4f2"
WRONG = "sk-apik_leak.WRONGSECRET-9d1e"
MARKERS = (SECRET, WRONG, "SUPERSECRET", "WRONGSECRET")


def invoke(args: Sequence[str], key: str | None) -> Result:
    env: dict[str, str | None] = {
        "ASKELEPHANT_API_KEY": key,
        "ASKELEPHANT_BASE_URL": None,
        "IMPORTER_DEBUG": None,
    }
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def leaks(text: str | bytes) -> list[str]:
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return [m for m in MARKERS if m.encode() in data]


def test_the_key_appears_in_no_output_ledger_or_report(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IMPORTER_DEBUG", raising=False)
    sandbox.add_key(SECRET, contract.ALL_SCOPES)
    work = tmp_path / "work"
    work.mkdir()
    keys = tmp_path / "keys"
    keys.mkdir()
    key_file = keys / "key.txt"
    key_file.write_text(SECRET + "\n", encoding="utf-8")
    key_file.chmod(0o600)
    wrong_file = keys / "wrong.txt"
    wrong_file.write_text(WRONG, encoding="utf-8")
    wrong_file.chmod(0o600)
    ledger = work / "ledger.db"
    rows = [
        row(1, contact_ids="cnt_a1"),
        row(2, media_url="https://media.example.com/broken-2.mp3"),
        row(3, media_url="https://media.example.com/3.html"),  # 422
        row(4, type="BOGUS"),  # invalid
        row(5, contact_ids="cnt_unknown5"),  # contacts 422
    ]
    manifest = write_manifest(work / "m.csv", rows)
    later = write_manifest(work / "later.csv", [row(6), row(7)])
    limited = write_manifest(work / "limited.csv", [row(8), row(9)])
    api = api_args(sandbox, ledger)
    results: dict[str, Result] = {}

    def do(name: str, args: Sequence[str], key: str | None = SECRET) -> None:
        results[name] = invoke(args, key)

    do("plan", ["plan", str(manifest), "--ledger", str(ledger), "--out", str(work / "p.csv")])
    do("dry-run", ["run", str(manifest), *api, "--dry-run", "--json"])
    do("wrong key", ["run", str(manifest), *api], WRONG)
    do("wrong key json", ["run", str(manifest), *api, "--log-format", "json"], WRONG)
    do("wrong key file", ["run", str(manifest), *api, "--api-key-file", str(wrong_file)], None)
    do("run", ["run", str(manifest), *api])
    do("run json", ["run", str(later), *api, "--log-format", "json"])
    sandbox.set_faults(rate_limit=0.5)
    do("run limited", ["run", str(limited), *api, "--log-format", "json", "--concurrency", "1"])
    sandbox.set_faults(rate_limit=None)
    do("run key file", ["run", str(manifest), *api, "--api-key-file", str(key_file)], None)
    do("retry", ["retry", *api, "--log-format", "json"])
    do("retry permanent", ["retry", *api, "--include-permanent"])
    do("retry wrong", ["retry", *api, "--include-permanent"], WRONG)
    do("sync-contacts", ["sync-contacts", str(manifest), *api, "--log-format", "json"])
    do("sync-contacts wrong", ["sync-contacts", str(manifest), *api], WRONG)
    do("verify", ["verify", *api, "--wait", "--timeout", "10", "--json"])
    do("verify json", ["verify", *api, "--log-format", "json"])
    do("verify wrong", ["verify", *api], WRONG)
    do("status", ["status", "--ledger", str(ledger)])
    do("status json", ["status", "--ledger", str(ledger), "--json"])
    do("report", ["report", "--ledger", str(ledger), "--out", str(work / "report")])
    do("init", ["init", str(manifest), "--out", str(work / "mapping.toml")])

    codes = {name: r.exit_code for name, r in results.items()}
    assert codes == {
        "plan": 1,
        "dry-run": 1,
        "wrong key": 3,
        "wrong key json": 3,
        "wrong key file": 3,
        "run": 1,
        "run json": 0,
        "run limited": 0,
        "run key file": 1,
        "retry": 1,  # rows 3 and 4 are still not in AskElephant
        "retry permanent": 1,
        "retry wrong": 3,
        "sync-contacts": 1,
        "sync-contacts wrong": 3,
        "verify": 1,
        "verify json": 1,
        "verify wrong": 3,
        "status": 0,
        "status json": 0,
        "report": 0,
        "init": 0,
    }, {n: r.output for n, r in results.items()}
    assert "401" in results["wrong key"].output
    assert '"event": "retry"' in results["run limited"].stderr
    for name, result in results.items():
        assert leaks(result.stdout) == [], name
        assert leaks(result.stderr) == [], name
    assert leaks(key_file.read_bytes()) == [SECRET, "SUPERSECRET"]  # the check itself works
    files = [p for p in work.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"ledger.db", "success.csv", "errors.csv", "p.csv", "mapping.toml"} <= names
    for path in files:
        assert leaks(path.read_bytes()) == [], path


@pytest.mark.parametrize(("mode", "warned"), [(0o644, True), (0o640, True), (0o600, False)])
def test_a_key_file_others_can_read_gets_a_warning(
    sandbox: Sandbox, tmp_path: Path, mode: int, warned: bool
) -> None:
    key_file = tmp_path / "key.txt"
    key_file.write_text(sandbox.api_key + "\n", encoding="utf-8")
    key_file.chmod(mode)
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])
    args = ["run", str(manifest), *api_args(sandbox, tmp_path / "l.db")]

    result = invoke([*args, "--api-key-file", str(key_file)], None)

    assert result.exit_code == 0, result.output
    warning = f"warning: {key_file} can be read by other users; run: chmod 600 {key_file}"
    assert (warning in result.stderr) is warned
    assert sandbox.stats()["created"] == {"crm:rec-1": 1}
    assert os.stat(key_file).st_mode & 0o777 == mode  # never changed behind the user's back
