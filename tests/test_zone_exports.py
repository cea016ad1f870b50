"""Exports shaped like Zoom, Aircall, Outreach, Google Sheets, RingCentral and HubSpot
meetings, from `importer init` (answering only what it asks, by option) to a correct import
into the sandbox: exact instants, titles, types and people (issue 17).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import SandboxProcess
from tests.factories import run_args, run_cli

EXPORTS = Path(__file__).resolve().parent / "exports"


def init(tmp_path: Path, name: str, *answers: str) -> tuple[Path, list[str]]:
    """``importer init`` with its questions answered by options: the mapping and its lines."""
    mapping = tmp_path / f"{name}.toml"
    result = run_cli(["init", str(EXPORTS / name), "--out", str(mapping), "--force", *answers])
    assert result.exit_code == 0, result.output
    return mapping, result.stdout.splitlines()


def imported(
    sandbox: SandboxProcess, tmp_path: Path, name: str, *answers: str
) -> dict[str, dict[str, Any]]:
    """init, then run into the sandbox: every engagement by external_id."""
    mapping, _ = init(tmp_path, name, *answers)
    ledger = tmp_path / "ledger.db"
    args = run_args(EXPORTS / name, ledger, sandbox, "--mapping", str(mapping))
    result = run_cli(args, sandbox.api_key)
    assert result.exit_code == 0, result.output
    return {e["external_id"]: e for e in sandbox.engagements()}


def landed(engagement: dict[str, Any]) -> tuple[str, str, str, list[dict[str, Any]]]:
    """What a person checks: instant, title, type, people."""
    start = str(engagement["start_at"]).replace(".000Z", "Z")
    return (
        start,
        engagement["title"],
        engagement["engagement_type"],
        engagement.get("participants") or [],
    )


def test_zoom_recordings_of_a_recurring_meeting_get_a_composite_id(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    _, lines = init(tmp_path, "zoom_recordings_recurring.csv", "--timezone", "America/New_York")
    assert "  mapped:  id <- 'Meeting ID' + 'Start Time' (the id repeats: these cells, " in (
        "\n".join(lines)
    )
    got = imported(
        sandbox, tmp_path, "zoom_recordings_recurring.csv", "--timezone", "America/New_York"
    )
    dana = {"name": "Dana Holt", "email": "dana@ourco.com"}
    assert {k: landed(v) for k, v in got.items()} == {
        "zoom:854 1234 5678|Nov 5, 2025 02:15 PM": (
            "2025-11-05T19:15:00Z",
            "Weekly pipeline review",
            "MEETING",
            [dana, {"email": "lee@ourco.com"}],
        ),
        "zoom:854 1234 5678|Nov 12, 2025 02:15 PM": (
            "2025-11-12T19:15:00Z",
            "Weekly pipeline review",
            "MEETING",
            [{"email": "dana@ourco.com"}, {"name": "Ana Ng", "email": "ana@acme.com"}],
        ),
        "zoom:861 5550 1212|Nov 6, 2025 09:00 AM": (
            "2025-11-06T14:00:00Z",
            "Acme onboarding",
            "MEETING",
            [{"name": "Lee Chan", "email": "lee@ourco.com"}],
        ),
    }


def test_zoom_meeting_report_head_count_is_not_people(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    got = imported(sandbox, tmp_path, "zoom_meeting_report.csv", "--timezone", "Europe/London")
    assert {k: landed(v) for k, v in got.items()} == {
        "zoom:86155501212": (
            "2025-11-06T09:00:12Z",
            "Acme onboarding",
            "MEETING",
            [{"email": "lee@ourco.com"}],
        ),
        "zoom:86155501299": (
            "2025-11-13T16:30:00Z",
            "Globex renewal",
            "MEETING",
            [{"email": "dana@ourco.com"}],
        ),
    }


def test_aircall_user_name_is_never_the_title_and_both_people_land(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    answers = ("--timezone", "America/New_York", "--monthfirst")
    mapping, lines = init(tmp_path, "aircall_calls.csv", *answers)
    assert not any("title <-" in line for line in lines)
    assert 'title = "Aircall call"' in mapping.read_text(encoding="utf-8")
    got = imported(sandbox, tmp_path, "aircall_calls.csv", *answers)
    assert {k: landed(v) for k, v in got.items()} == {
        "aircall:1844201": (
            "2025-11-05T19:15:07Z",
            "Aircall call",
            "CALL",
            [{"email": "ben.wu@ourco.com"}, {"email": "ana.ng@acme.com"}],
        ),
        "aircall:1844202": (
            "2025-11-06T14:02:44Z",
            "Aircall call",
            "CALL",
            [{"email": "cara.diaz@ourco.com"}],
        ),
    }


def test_outreach_prospect_and_rep_both_land(sandbox: SandboxProcess, tmp_path: Path) -> None:
    got = imported(sandbox, tmp_path, "outreach_calls_emails.csv", "--timezone", "America/Chicago")
    assert {k: landed(v) for k, v in got.items()} == {
        "outreach:50311": (
            "2025-11-05T20:15:07Z",
            "Outreach call",
            "CALL",
            [{"email": "ana.ng@acme.com"}, {"email": "ben.wu@ourco.com"}],
        ),
        "outreach:50312": (
            "2025-11-06T15:30:00Z",
            "Outreach call",
            "CALL",
            [{"email": "raj@globex.com"}, {"email": "ben.wu@ourco.com"}],
        ),
    }


def test_sheets_date_and_time_columns(sandbox: SandboxProcess, tmp_path: Path) -> None:
    answers = ("--timezone", "America/Los_Angeles", "--source-system", "sheets")
    got = imported(sandbox, tmp_path, "sheets_calls.csv", *answers)
    assert {k: landed(v) for k, v in got.items()} == {
        "sheets:SH-001": (
            "2025-11-05T22:15:00Z",
            "Intro with Acme",
            "CALL",
            [{"email": "ana.ng@acme.com"}, {"email": "ben.wu@ourco.com"}],
        ),
        "sheets:SH-002": (
            "2025-11-13T18:00:00Z",
            "Globex pricing",
            "CALL",
            [{"email": "raj@globex.com"}, {"email": "ben.wu@ourco.com"}],
        ),
    }


def test_ringcentral_from_name_is_never_the_title(sandbox: SandboxProcess, tmp_path: Path) -> None:
    got = imported(sandbox, tmp_path, "ringcentral_calls.csv", "--timezone", "America/New_York")
    assert {k: landed(v)[:3] for k, v in got.items()} == {
        "ringcentral:24701550011": ("2025-11-05T19:15:07Z", "Ringcentral call", "CALL"),
        "ringcentral:24701550012": ("2025-11-13T14:02:44Z", "Ringcentral call", "CALL"),
    }


def test_hubspot_meetings_are_meetings_with_their_contact(
    sandbox: SandboxProcess, tmp_path: Path
) -> None:
    got = imported(
        sandbox, tmp_path, "hubspot_meetings_night1.csv", "--timezone", "America/New_York"
    )
    assert {k: landed(v) for k, v in got.items()} == {
        "hubspot:71002001": (
            "2025-11-05T19:15:00Z",
            "Acme discovery",
            "MEETING",
            [{"name": "Ana Ng", "email": "ana.ng@acme.com"}],
        ),
        "hubspot:71002002": (
            "2025-11-05T21:00:00Z",
            "Globex QBR",
            "MEETING",
            [{"name": "Raj Patel", "email": "raj@globex.com"}],
        ),
    }
