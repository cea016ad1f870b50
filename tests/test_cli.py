"""The CLI's own promises: help for everything, usage errors as exit 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from importer.cli import cli
from tests.conftest import PROJECT_ROOT
from tests.factories import row, run_cli, write_manifest

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
COMMANDS = sorted(cli.commands)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_and_is_in_the_readme(name: str) -> None:
    command = cli.commands[name]
    result = run_cli([name, "--help"])

    assert result.exit_code == 0
    assert command.help and command.help.strip()
    assert f"importer {name}" in README
    for parameter in command.params:
        if isinstance(parameter, click.Option):
            assert parameter.help, f"{name} {parameter.opts} has no help text"


def test_exit_codes_are_listed_in_the_top_level_help() -> None:
    result = run_cli(["--help"])

    for code in ("0 ", "1 ", "2 ", "3 ", "70 ", "130 "):
        assert f"\n    {code}" in result.output


def test_an_empty_base_url_is_refused_not_read_as_production(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])

    result = run_cli(
        ["run", str(manifest), "--ledger", str(tmp_path / "l.db"), "--base-url", ""], "sk-apik_a.B"
    )

    assert result.exit_code == 2
    assert "--base-url is empty" in result.output
    assert not (tmp_path / "l.db").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["status", "--json"],
        ["report", "--out", "{tmp}/out"],
        ["retry"],
        ["verify", "--base-url", "http://127.0.0.1:9"],
    ],
)
def test_commands_that_read_a_ledger_refuse_a_missing_one(tmp_path: Path, args: list[str]) -> None:
    ledger = tmp_path / "typo.db"

    result = run_cli(
        [a.format(tmp=tmp_path) for a in args] + ["--ledger", str(ledger)], "sk-apik_a.B"
    )

    assert result.exit_code == 2, result.output
    assert f"no ledger at {ledger}" in result.output
    assert not ledger.exists()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("option", [["--out", "plan.csv"], ["--json"]])
def test_plan_output_options_need_dry_run(tmp_path: Path, option: list[str]) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])

    result = run_cli(["run", str(manifest), "--ledger", str(tmp_path / "l.db"), *option], "k")

    assert result.exit_code == 2
    assert "--dry-run" in result.output


def test_init_into_a_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])

    result = run_cli(["init", str(manifest), "--out", str(tmp_path / "no" / "map.toml")])

    assert result.exit_code == 2
    assert "cannot write" in result.output
    assert "Traceback" not in result.output and "internal error" not in result.output


@pytest.mark.parametrize(
    "content",
    [b"sk-apik_a.FIRSTHALF\nSECONDHALF\n", "sk-apik_a.\u00e9SECRET".encode(), b"sk-apik a.SECRET"],
)
def test_a_malformed_key_is_refused_without_quoting_it(tmp_path: Path, content: bytes) -> None:
    key_file = tmp_path / "key.txt"
    key_file.write_bytes(content)
    key_file.chmod(0o600)
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])

    result = run_cli(
        [
            "run",
            str(manifest),
            "--ledger",
            str(tmp_path / "l.db"),
            "--api-key-file",
            str(key_file),
            "--base-url",
            "http://127.0.0.1:9",
        ]
    )

    assert result.exit_code == 2, result.output
    assert "one line of plain characters" in result.output
    assert "SECRET" not in result.output and "HALF" not in result.output


def test_a_key_file_saved_with_a_bom_works(tmp_path: Path) -> None:
    from importer.settings import load_api_key

    key_file = tmp_path / "key.txt"
    key_file.write_bytes(b"\xef\xbb\xbfsk-apik_a.B\r\n")
    key_file.chmod(0o600)

    assert load_api_key(key_file) == ("sk-apik_a.B", [])


@pytest.mark.parametrize("url", ["http://[::1", "https://host:notaport/api"])
def test_a_malformed_base_url_is_a_usage_error(tmp_path: Path, url: str) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])

    result = run_cli(
        ["run", str(manifest), "--ledger", str(tmp_path / "l.db"), "--base-url", url], "k"
    )

    assert result.exit_code == 2, result.output
    assert "not a valid URL" in result.output


def test_plan_out_into_a_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])
    out = tmp_path / "no" / "plan.csv"

    result = run_cli(["plan", str(manifest), "--ledger", str(tmp_path / "l.db"), "--out", str(out)])

    assert result.exit_code == 2 and f"cannot write {out}" in result.output


def test_report_into_a_path_under_a_file_is_a_usage_error(tmp_path: Path) -> None:
    from importer.ledger import Ledger

    Ledger(tmp_path / "l.db").close()
    (tmp_path / "file").write_text("x", encoding="utf-8")

    result = run_cli(
        ["report", "--ledger", str(tmp_path / "l.db"), "--out", str(tmp_path / "file" / "r")]
    )

    assert result.exit_code == 2, result.output
    assert "cannot write the reports" in result.output
