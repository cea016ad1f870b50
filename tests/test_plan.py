"""plan_row: every action a row can get, from the row and what the ledger knows."""

from __future__ import annotations

import pytest

from importer.outcomes import Action, LedgerFact
from importer.plan.planner import DuplicateInfo, plan_row
from importer.rows.hashes import contacts_hash, field_hashes
from importer.rows.validate import MappedRow, MappingOptions, map_row
from importer.settings import PlanOptions

CELLS = {
    "id": "42",
    "type": "CALL",
    "title": "Discovery call",
    "media_url": "https://media.example.com/42.mp3",
    "start_at": "2024-03-05T14:30:00Z",
    "source_system": "crm",
}


def row(row_number: int = 2, **changes: str) -> MappedRow:
    return map_row({**CELLS, **changes}, row_number, MappingOptions(), file="m.csv")


def fact(
    status: str,
    sent: MappedRow | None = None,
    *,
    transient: bool = False,
    contacts: tuple[str, ...] | None = None,
) -> LedgerFact:
    """What the ledger would know after sending ``sent`` (default: the unchanged row)."""
    sent = sent or row()
    assert sent.payload is not None
    return LedgerFact(
        status=status,
        payload_hash=sent.payload_hash,
        transient=transient,
        field_hashes=field_hashes(sent.payload),
        contacts_hash=contacts_hash(contacts) if contacts is not None else None,
        engagement_id="ngmt_1" if status in ("created", "existing") else None,
    )


@pytest.mark.parametrize("status", [None, "pending"])
def test_new(status: str | None) -> None:
    planned = plan_row(row(), fact(status) if status else None)
    assert planned.action == Action.NEW and planned.sends


def test_in_flight_is_retried() -> None:
    planned = plan_row(row(), fact("in_flight"))
    assert planned.action == Action.RETRY and planned.sends
    assert "interrupted" in planned.reason


def test_transient_failure_is_retried_even_if_changed() -> None:
    assert plan_row(row(), fact("failed", transient=True)).action == Action.RETRY
    changed = plan_row(row(title="Other"), fact("failed", transient=True))
    assert changed.action == Action.RETRY and changed.sends


@pytest.mark.parametrize("status", ["created", "existing"])
def test_already_imported(status: str) -> None:
    planned = plan_row(row(), fact(status))
    assert planned.action == Action.IMPORTED and not planned.sends
    assert planned.engagement_id == "ngmt_1"
    assert not planned.sync_contacts


def test_changed_since_import_names_the_differing_fields() -> None:
    planned = plan_row(row(title="New title", start_at="2024-03-06T10:00:00Z"), fact("created"))
    assert planned.action == Action.CHANGED and not planned.sends
    assert planned.reason.endswith("start_at, title")
    assert "media_url" not in planned.reason
    assert planned.engagement_id == "ngmt_1"


def test_a_field_added_since_import_is_named() -> None:
    planned = plan_row(row(is_private="yes"), fact("existing"))
    assert planned.action == Action.CHANGED
    assert planned.reason.endswith(": is_private")


def test_changed_without_field_hashes_says_so() -> None:
    old = fact("created")
    legacy = LedgerFact("created", "0" * 64, False, {}, None, "ngmt_1")
    assert plan_row(row(), old).action == Action.IMPORTED
    planned = plan_row(row(), legacy)
    assert planned.action == Action.CHANGED and "unknown" in planned.reason


def test_permanent_failure_is_skipped_unless_asked() -> None:
    planned = plan_row(row(), fact("failed"))
    assert planned.action == Action.FAILED and not planned.sends
    again = plan_row(row(), fact("failed"), options=PlanOptions(include_permanent=True))
    assert again.action == Action.RETRY and again.sends


def test_permanent_failure_but_changed_is_new() -> None:
    planned = plan_row(row(media_url="https://media.example.com/fixed.mp3"), fact("failed"))
    assert planned.action == Action.NEW and planned.sends
    assert "changed" in planned.reason


def test_invalid_row() -> None:
    bad = row(type="VIDEO", title="")
    planned = plan_row(bad, fact("created"))
    assert planned.action == Action.INVALID and not planned.sends
    assert "type:" in planned.reason and "title:" in planned.reason


def test_conflicting_duplicate_is_never_sent() -> None:
    for number in (2, 5):
        planned = plan_row(row(number), None, DuplicateInfo(first_row=2, conflicting=True))
        assert planned.action == Action.DUPLICATE and not planned.sends
        assert "crm:42" in planned.reason and "different values" in planned.reason


def test_repeated_identical_row_is_sent_once() -> None:
    first = plan_row(row(2), None, DuplicateInfo(first_row=2, conflicting=False))
    assert first.action == Action.NEW and first.sends
    repeat = plan_row(row(9), None, DuplicateInfo(first_row=2, conflicting=False))
    assert repeat.action == Action.REPEATED and not repeat.sends
    assert repeat.reason.startswith("same as row 2")


def test_invalid_wins_over_duplicate() -> None:
    planned = plan_row(row(title=""), None, DuplicateInfo(first_row=2, conflicting=True))
    assert planned.action == Action.INVALID


@pytest.mark.parametrize(
    ("status", "transient", "action"),
    [
        ("created", False, Action.IMPORTED),
        ("existing", False, Action.IMPORTED),
        ("in_flight", False, Action.RETRY),
        ("pending", False, Action.NEW),
        ("failed", True, Action.RETRY),
        ("failed", False, Action.FAILED),
    ],
)
def test_only_failed(status: str, transient: bool, action: str) -> None:
    planned = plan_row(
        row(), fact(status, transient=transient), None, PlanOptions(only_failed=True)
    )
    assert planned.action == action
    assert planned.sends == (action in (Action.RETRY, Action.NEW))


def test_only_failed_skips_rows_never_sent() -> None:
    planned = plan_row(row(), None, None, PlanOptions(only_failed=True))
    assert planned.action == Action.NOT_RETRIED and not planned.sends


def test_contacts_sync_when_the_set_differs() -> None:
    with_contacts = row(contact_ids="cnt_a, cnt_b")
    same = plan_row(with_contacts, fact("created", contacts=("cnt_b", "cnt_a")))
    assert same.action == Action.IMPORTED and not same.sync_contacts
    other = plan_row(with_contacts, fact("created", contacts=("cnt_a",)))
    assert other.action == Action.IMPORTED and other.sync_contacts
    untouched = plan_row(row(), fact("created", contacts=("cnt_a",)))
    assert not untouched.sync_contacts  # a blank cell leaves contacts alone


def test_server_view_takes_the_values_the_engagement_shows() -> None:
    from importer.plan.planner import server_view

    payload = {
        "title": "New",
        "type": "CALL",
        "start_at": "2024-03-01T10:00:00+00:00",
        "media_url": "https://m.example.com/a.mp3",
    }
    same_instant = {"title": "New", "engagement_type": "CALL", "start_at": "2024-03-01T10:00:00Z"}
    assert server_view(payload, same_instant) == payload
    other = {"title": "Old", "engagement_type": "MEETING", "start_at": "2024-03-01T11:00:00Z"}
    view = server_view(payload, other)
    assert (view["title"], view["type"], view["start_at"]) == (
        "Old",
        "MEETING",
        "2024-03-01T11:00:00Z",
    )
    assert view["media_url"] == payload["media_url"]  # not shown back: kept
