"""The time zone is a decision, made once and kept; fields from several columns; init's
questions and guesses (issue 17, items 1-4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from importer.errors import InvalidCell, MappingError
from importer.rows.mapping import load_mapping
from importer.rows.participants import parse_participants
from tests.conftest import SandboxProcess
from tests.factories import ledger_rows, row, run_args, run_cli, write_manifest

EXPORTS = Path(__file__).resolve().parent / "exports"
NIGHT1, NIGHT2 = EXPORTS / "hubspot_meetings_night1.csv", EXPORTS / "hubspot_meetings_night2.csv"


def naive_manifest(tmp_path: Path) -> Path:
    rows = [row(1, start_at="2025-11-05 14:15"), row(2, start_at="2025-11-06T09:00:00Z")]
    return write_manifest(tmp_path / "m.csv", rows)


def test_plan_and_run_refuse_naive_times_without_a_zone(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    manifest, ledger = naive_manifest(tmp_path), tmp_path / "l.db"
    plan = run_cli(["plan", str(manifest), "--ledger", str(ledger)])
    assert plan.exit_code == 2
    assert "row 2 '2025-11-05 14:15'" in plan.stderr
    assert "never read as UTC by default" in plan.stderr
    assert "--timezone" in plan.stderr and "[formats] timezone" in plan.stderr
    run = run_cli(run_args(manifest, ledger, sandbox), sandbox.api_key)
    assert run.exit_code == 2
    assert sandbox.engagements() == []
    chosen = run_cli(run_args(manifest, ledger, sandbox, "--timezone", "UTC"), sandbox.api_key)
    assert chosen.exit_code == 0, chosen.output
    starts = {e["external_id"]: e["start_at"][:19] for e in sandbox.engagements()}
    assert starts == {"crm:rec-1": "2025-11-05T14:15:00", "crm:rec-2": "2025-11-06T09:00:00"}


def test_a_file_with_offsets_needs_no_zone(sandbox: SandboxProcess, tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(1), row(2)])
    result = run_cli(run_args(manifest, tmp_path / "l.db", sandbox), sandbox.api_key)
    assert result.exit_code == 0, result.output


def test_the_mappings_zone_is_used_and_recorded(sandbox: SandboxProcess, tmp_path: Path) -> None:
    manifest, ledger = naive_manifest(tmp_path), tmp_path / "l.db"
    mapping = tmp_path / "map.toml"
    mapping.write_text('[defaults]\ntimezone = "America/New_York"\n', encoding="utf-8")
    args = run_args(manifest, ledger, sandbox, "--mapping", str(mapping))
    assert run_cli(args, sandbox.api_key).exit_code == 0
    starts = {e["external_id"]: e["start_at"][:19] for e in sandbox.engagements()}
    assert starts["crm:rec-1"] == "2025-11-05T19:15:00"
    assert {r["external_id"]: r["timezone"] for r in ledger_rows(ledger)} == {
        "crm:rec-1": "America/New_York",
        "crm:rec-2": "America/New_York",
    }


def test_a_nightly_run_in_another_zone_is_refused_before_any_create(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    mapping, ledger = tmp_path / "hubspot.toml", tmp_path / "l.db"
    init = ["init", str(NIGHT1), "--out", str(mapping), "--timezone", "America/New_York"]
    assert run_cli(init).exit_code == 0
    first = run_cli(run_args(NIGHT1, ledger, sandbox, "--mapping", str(mapping)), sandbox.api_key)
    assert first.exit_code == 0, first.output
    nightly = run_args(NIGHT2, ledger, sandbox, "--mapping", str(mapping), "--timezone", "UTC")
    refused = run_cli([*nightly, "--on-change", "skip"], sandbox.api_key)
    assert refused.exit_code == 2
    assert "America/New_York" in refused.stderr and "in UTC" in refused.stderr
    assert "--allow-new-timezone" in refused.stderr
    assert len(sandbox.engagements()) == 2  # nothing created
    same = run_cli(run_args(NIGHT2, ledger, sandbox, "--mapping", str(mapping)), sandbox.api_key)
    assert same.exit_code == 0, same.output
    new = {e["external_id"]: e["start_at"][:19] for e in sandbox.engagements()}
    assert new["hubspot:71002003"] == "2025-11-06T15:30:00"
    allowed = run_cli([*nightly, "--allow-new-timezone"], sandbox.api_key)
    assert allowed.exit_code == 1  # allowed; the old rows now read differently: changed


def test_the_plan_refuses_another_zone_too(sandbox: SandboxProcess, tmp_path: Path) -> None:
    ledger = tmp_path / "l.db"
    args = run_args(NIGHT1, ledger, sandbox, "--source-system", "hubspot")
    mapping = tmp_path / "m.toml"
    assert (
        run_cli(["init", str(NIGHT1), "--out", str(mapping), "--timezone", "Asia/Tokyo"]).exit_code
        == 0
    )
    assert run_cli([*args, "--mapping", str(mapping)], sandbox.api_key).exit_code == 0
    plan = run_cli(
        [
            "plan",
            str(NIGHT2),
            "--ledger",
            str(ledger),
            "--mapping",
            str(mapping),
            "--timezone",
            "Europe/Paris",
        ]
    )
    assert plan.exit_code == 2
    assert "Asia/Tokyo" in plan.stderr and "Europe/Paris" in plan.stderr


def test_mapping_zone_and_lists(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(
        '[columns]\nstart_at = ["Date", "Time"]\nparticipants = ["A", "B"]\n'
        'id = ["Meeting ID", "Start"]\n[formats]\ntimezone = "Europe/Paris"\n',
        encoding="utf-8",
    )
    mapping = load_mapping(path)
    assert mapping.timezone == "Europe/Paris"
    assert mapping.columns_of("start_at") == ("Date", "Time")
    cells = {"Date": "11/05/2025", "Time": "2:15 PM", "Meeting ID": "854 1", "Start": "x"}
    fields = mapping.fields_of(cells)
    assert fields["start_at"] == "11/05/2025 2:15 PM"
    assert fields["id"] == "854 1|x"
    assert mapping.column_of("participants") == "A + B"
    assert mapping.fields_of({"Meeting ID": "854 1"})["id"] == "854 1|"  # never "854 1"
    assert mapping.fields_of({})["id"] == ""
    path.write_text('[formats]\ntimezone = "Mars/Olympus"\n', encoding="utf-8")
    with pytest.raises(MappingError, match="is not a time zone"):
        load_mapping(path)
    path.write_text('[columns]\ntitle = ["A", "B"]\n', encoding="utf-8")
    with pytest.raises(MappingError, match="only id, start_at, participants"):
        load_mapping(path)


def test_a_participant_that_is_a_bare_number_is_invalid() -> None:
    with pytest.raises(InvalidCell, match="bare number, not a person"):
        parse_participants("5")
    assert parse_participants("+1 212 555 0187") == [{"name": "+1 212 555 0187"}]


def test_init_without_a_terminal_never_waits_and_leaves_the_question(tmp_path: Path) -> None:
    out = tmp_path / "m.toml"
    result = run_cli(["init", str(NIGHT1), "--out", str(out)], input="")
    assert result.exit_code == 0
    assert "question: which time zone are the times in?" in result.stdout
    assert "# timezone = " in out.read_text(encoding="utf-8")


def test_init_asks_the_zone_at_a_terminal_and_shows_rows_in_it_and_in_utc(
    tmp_path: Path,
) -> None:
    from importer.runner import InitAnswers, init_mapping

    asked: list[str] = []

    def ask(question: str) -> str:
        asked.append(question)
        return "America/New_York"

    out = tmp_path / "m.toml"
    lines, code = init_mapping(
        NIGHT1, out, None, None, None, force=False, answers=InitAnswers(ask=ask)
    )
    assert code == 0
    assert "row 2: '2025-11-05 14:15'" in asked[0]
    assert 'timezone = "America/New_York"' in out.read_text(encoding="utf-8")
    assert (
        "           row 2: '2025-11-05 14:15' -> 2025-11-05 14:15:00 America/New_York = "
        "2025-11-05T19:15:00Z UTC"
    ) in lines


def test_init_without_an_id_is_exit_2_naming_the_candidates(tmp_path: Path) -> None:
    manifest = tmp_path / "calls.csv"
    manifest.write_text(
        "Call Key,Subject,Started,Recording URL\n"
        "A,Intro,2025-11-05T14:15:00Z,https://r.example.com/1.mp3\n"
        "A,Demo,2025-11-05T14:15:00Z,https://r.example.com/2.mp3\n",
        encoding="utf-8",
    )
    result = run_cli(["init", str(manifest), "--out", str(tmp_path / "m.toml")])
    assert result.exit_code == 2
    assert "problem: no column can be the id" in result.stdout
    assert "'Call Key'" in result.stdout


def test_init_never_maps_a_head_count_as_participants(tmp_path: Path) -> None:
    out = tmp_path / "m.toml"
    manifest = EXPORTS / "zoom_meeting_report.csv"
    result = run_cli(["init", str(manifest), "--out", str(out), "--timezone", "UTC"])
    assert "participants <- 'User Email'" in result.stdout
    assert "Participants" in result.stdout.splitlines()[-1]  # among the columns not used
