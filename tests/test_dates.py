"""The one date-time parser: CRM date forms, formats, day/month order decided per file."""

from __future__ import annotations

import pytest

from importer.errors import InvalidCell
from importer.rows.dates import (
    DAYFIRST,
    MONTHFIRST,
    DateStyle,
    decide_order,
    parse_start_at,
    parse_timestamp,
    same_instant,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Mar 5, 2024, 2:30 PM", "2024-03-05T14:30:00+00:00"),
        ("Mar 5, 2024 2:30 PM", "2024-03-05T14:30:00+00:00"),
        ("March 5, 2024 14:30", "2024-03-05T14:30:00+00:00"),
        ("Tue, Mar 5, 2024 2:30 pm", "2024-03-05T14:30:00+00:00"),
        ("5 Mar 2024 14:30", "2024-03-05T14:30:00+00:00"),
        ("05-Mar-2024 02:30:15 PM", "2024-03-05T14:30:15+00:00"),
        ("Tue, 05 Mar 2024 14:30:00 +0100", "2024-03-05T13:30:00+00:00"),
        ("2024/03/05 14:30", "2024-03-05T14:30:00+00:00"),
        ("2024-03-05 2:30 PM", "2024-03-05T14:30:00+00:00"),
        ("2024-03-05 14:30:00 UTC", "2024-03-05T14:30:00+00:00"),
        ("2024-03-05 14:30", "2024-03-05T14:30:00+00:00"),
        ("2024-03-05T14:30:00Z", "2024-03-05T14:30:00+00:00"),
        ("03/25/2024 12:05 AM", "2024-03-25T00:05:00+00:00"),  # a day above 12 says month-first
        ("25.03.2024 14:30", "2024-03-25T14:30:00+00:00"),
        ("03/03/2024 14:30", "2024-03-03T14:30:00+00:00"),  # reads the same either way
        ("1709649000", "2024-03-05T14:30:00+00:00"),
    ],
)
def test_unambiguous_forms_are_recognised(value: str, expected: str) -> None:
    assert parse_start_at(value) == expected


def test_naive_times_are_read_in_the_time_zone() -> None:
    assert parse_start_at("Mar 5, 2024, 9:30 AM", "America/New_York") == (
        "2024-03-05T14:30:00+00:00"
    )


@pytest.mark.parametrize(
    ("value", "order", "expected"),
    [
        ("03/05/2024 2:30 PM", MONTHFIRST, "2024-03-05T14:30:00+00:00"),
        ("03/05/2024 2:30 PM", DAYFIRST, "2024-05-03T14:30:00+00:00"),
        ("05.03.2024 14:30", DAYFIRST, "2024-03-05T14:30:00+00:00"),
        ("3/5/24 14:30", MONTHFIRST, "2024-03-05T14:30:00+00:00"),
    ],
)
def test_numeric_dates_follow_the_order(value: str, order: str, expected: str) -> None:
    assert parse_start_at(value, style=DateStyle(order=order)) == expected


def test_an_ambiguous_date_without_an_order_says_both_readings() -> None:
    with pytest.raises(InvalidCell) as caught:
        parse_start_at("03/05/2024 2:30 PM")
    assert str(caught.value) == (
        "'03/05/2024 2:30 PM' can be read day-first (3 May 2024) or month-first "
        "(5 Mar 2024); pass --dayfirst or --monthfirst"
    )


def test_a_value_against_the_files_order_shows_how_it_was_read() -> None:
    with pytest.raises(InvalidCell, match="read month-first has month 25"):
        parse_start_at("25/03/2024 14:30", style=DateStyle(order=MONTHFIRST))


def test_explicit_format() -> None:
    style = DateStyle(format="%m/%d/%Y %I:%M %p")
    assert parse_start_at("03/05/2024 02:30 PM", style=style) == "2024-03-05T14:30:00+00:00"
    with pytest.raises(InvalidCell, match="does not match the date format '%m/%d/%Y %I:%M %p'"):
        parse_start_at("2024-03-05 14:30", style=style)


@pytest.mark.parametrize(
    ("values", "order", "evidence"),
    [
        (
            [(2, "03/05/2024 1:00 PM"), (3, "03/25/2024 1:00 PM")],
            MONTHFIRST,
            (3, "03/25/2024 1:00 PM"),
        ),
        ([(2, "05.03.2024 14:30"), (3, "25.03.2024 14:30")], DAYFIRST, (3, "25.03.2024 14:30")),
        ([(2, "2024-03-05T14:30:00Z")], None, None),
    ],
)
def test_decide_order(values: list[tuple[int, str]], order: str | None, evidence: object) -> None:
    decision = decide_order(values)
    assert (decision.order, decision.evidence, decision.conflict) == (order, evidence, None)


def test_decide_order_finds_a_mix_and_an_undecidable_file() -> None:
    mixed = decide_order([(2, "25/03/2024 10:00"), (3, "03/25/2024 10:00")])
    assert (mixed.order, mixed.evidence, mixed.conflict) == (
        DAYFIRST,
        (2, "25/03/2024 10:00"),
        (3, "03/25/2024 10:00"),
    )
    undecided = decide_order([(2, "03/05/2024 10:00"), (3, "04/06/2024 10:00")])
    assert (undecided.order, undecided.ambiguous) == (None, (2, "03/05/2024 10:00"))


def test_api_timestamps() -> None:
    assert same_instant("2024-03-05T14:30:00+00:00", "2024-03-05T14:30:00.000Z")
    assert not same_instant("2024-03-05T14:30:00+00:00", "2024-03-05T14:31:00Z")
    assert parse_timestamp("2024-03-05") is None
    assert str(parse_timestamp("2024-03-05T14:30:00")) == "2024-03-05 14:30:00+00:00"


def test_an_impossible_date_is_no_evidence_of_an_order() -> None:
    # 31/02/2024 is no date read day-first either: a typo, not a day-first row.
    decision = decide_order(
        [(2, "3/5/2024 2:30 PM"), (3, "31/02/2024 10:00"), (4, "3/14/2024 9:00")]
    )
    assert (decision.order, decision.evidence, decision.conflict) == (
        MONTHFIRST,
        (4, "3/14/2024 9:00"),
        None,
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "03/19/2024 05:40 PM",
            "'03/19/2024 05:40 PM' does not match the date format '%d/%m/%Y %H:%M'",
        ),
        (
            "03/08/2024 01:00 PM",
            "'03/08/2024 01:00 PM' does not match the date format '%d/%m/%Y %H:%M' "
            "(' PM' is left over)",
        ),
        (
            "31/02/2024 10:00",
            "'31/02/2024 10:00' does not match the date format '%d/%m/%Y %H:%M' "
            "(day is out of range for month)",
        ),
    ],
)
def test_a_format_error_says_it_once(value: str, message: str) -> None:
    with pytest.raises(InvalidCell) as caught:
        parse_start_at(value, style=DateStyle(format="%d/%m/%Y %H:%M"))
    assert str(caught.value) == message


def test_a_zone_name_is_checked_against_the_time_zone() -> None:
    # "EST" names several zones: --timezone says which, and each value must agree with it.
    new_york = "America/New_York"
    assert parse_start_at("3/5/2024 2:30 PM EST", new_york, DateStyle(order=MONTHFIRST)) == (
        "2024-03-05T19:30:00+00:00"
    )
    assert parse_start_at("2024-07-05 14:30 EDT", new_york) == "2024-07-05T18:30:00+00:00"
    with pytest.raises(InvalidCell) as caught:
        parse_start_at("2024-07-05 14:30 EST", new_york)
    assert str(caught.value) == (
        "'2024-07-05 14:30 EST' names the zone 'EST', but in America/New_York that time is "
        "EDT; pass --timezone with the zone the file's times are in"
    )
    with pytest.raises(InvalidCell) as caught:
        parse_start_at("2024-03-05 14:30 PST")
    assert str(caught.value) == (
        "'2024-03-05 14:30 PST' names the zone 'PST', but in UTC that time is UTC; pass "
        "--timezone with the zone the file's times are in (e.g. America/Los_Angeles for PST)"
    )
