"""The fast readings of plain cells (an ISO time, people as ``Name <email>``, an https
URL) give what the general readings give: each is compared with the same value written
so that only the general reading takes it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from importer.errors import InvalidCell
from importer.rows.contract import check_media_url
from importer.rows.dates import parse_start_at
from importer.rows.participants import parse_participants

ZONES = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",  # half-hour clock changes
    "Pacific/Chatham",
    "America/Sao_Paulo",  # changes at midnight, in some years
    "Asia/Tehran",
    "America/St_Johns",
]


def read(value: str, timezone: str) -> str:
    try:
        return parse_start_at(value, timezone)
    except InvalidCell:
        return "invalid"


# Clock changes: skipped and doubled hours, and midnights that do not exist.
CHANGES = [
    ("2024-03-10 02:30", "America/New_York"),
    ("2024-11-03 01:30", "America/New_York"),
    ("2024-03-31 01:15", "Europe/London"),
    ("2024-10-06 02:15", "Australia/Lord_Howe"),
    ("2024-04-07 01:45", "Australia/Lord_Howe"),
    ("2018-11-04 00:30", "America/Sao_Paulo"),
    ("2022-03-22 00:30", "Asia/Tehran"),
    ("2024-03-10 02:00:00", "America/St_Johns"),
    ("1990-01-01 00:30", "America/New_York"),
    ("2100-12-31 23:30", "Pacific/Chatham"),
    ("2100-12-31 23:30", "America/New_York"),  # 2101 in UTC
    ("1990-01-01 00:30", "Pacific/Chatham"),  # 1989 in UTC
    ("1989-12-31 23:30", "America/New_York"),  # 1990 in UTC
    # Years no zone can convert all of: refused for their year, never a crash.
    ("0001-01-01 12:30", "Pacific/Chatham"),
    ("0001-01-01 09:30", "Asia/Tokyo"),
    ("0001-01-01 00:00:00", "Europe/Berlin"),
    ("9999-12-31 23:30", "America/New_York"),
]


def test_clock_changes_read_the_same_either_way() -> None:
    for value, zone in CHANGES:
        assert read(value, zone) == read(value.replace(" ", "x"), zone), (value, zone)


def test_a_year_no_zone_can_convert_is_refused_for_its_year() -> None:
    for value, zone in CHANGES[-4:]:
        for written in (value, value.replace(" ", "x")):
            with pytest.raises(InvalidCell, match=f"is in {int(value[:4])}: outside 1990-2100"):
                parse_start_at(written, zone)


# Days of clock changes: the fast reading learns a zone's offset an hour at a time (a
# minute at a time in an hour with a change, or half an hour off), and remembers it: so
# every minute of them, early and late in the minute.
CHANGE_DAYS = [
    ("2024-03-10", "America/New_York"),
    ("2024-11-03", "America/New_York"),
    ("2024-03-31", "Europe/London"),
    ("2024-10-27", "Europe/London"),
    ("2018-11-04", "America/Sao_Paulo"),  # at midnight: a day without 00:00
    ("2019-02-16", "America/Sao_Paulo"),  # its 23:00 hour twice
    ("2010-03-14", "America/Goose_Bay"),  # whole hours apart, changing at 00:01
    ("2010-11-06", "America/Goose_Bay"),  # 23:01-00:00 twice
    ("2010-11-07", "America/Goose_Bay"),
    ("2016-05-01", "America/Caracas"),  # -4:30 to -4 at 02:30: whole hours after
    ("2018-05-04", "Asia/Pyongyang"),  # +8:30 to +9 at 23:30
    ("2024-04-07", "Australia/Lord_Howe"),
    ("2024-10-06", "Australia/Lord_Howe"),
    ("2024-04-07", "Pacific/Chatham"),
]


def test_every_minute_of_a_clock_change_day_reads_the_same_either_way() -> None:
    for day, zone in CHANGE_DAYS:
        for minute in range(24 * 60):
            for second in ("00", "59"):
                value = f"{day} {minute // 60:02d}:{minute % 60:02d}:{second}"
                assert read(value, zone) == read(value.replace(" ", "x"), zone), (value, zone)


@settings(max_examples=500, deadline=None)
@given(
    st.integers(1985, 2105),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 24),
    st.integers(0, 60),
    st.one_of(st.none(), st.integers(0, 60)),
    st.sampled_from([" ", "T"]),
    st.sampled_from(ZONES),
)
def test_plain_iso_times_read_as_the_general_parser_reads_them(
    year: int,
    month: int,
    day: int,
    hour: int,
    minute: int,
    second: int | None,
    separator: str,
    zone: str,
) -> None:
    value = f"{year:04d}-{month:02d}-{day:02d}{separator}{hour:02d}:{minute:02d}"
    if second is not None:
        value += f":{second:02d}"
    # Python reads any one character between date and time; only the fast path is
    # limited to " " and "T".
    assert read(value, zone) == read(value.replace(separator, "x", 1), zone)


def people(value: str) -> object:
    try:
        return parse_participants(value)
    except InvalidCell:
        return "invalid"


# No comma: with one, both sides take the general reading (which cuts at commas only
# when no ";" is in the cell).
names = st.text(alphabet=st.characters(codec="utf-8", exclude_characters=","), max_size=6)
emails = st.one_of(
    st.sampled_from(["ana@acme.com", "a.b@x.co.uk", "b@x", "@x.io", "a@b@c.io", "a@.io"]),
    st.from_regex(r"[a-z.+-]{1,5}@[a-z.-]{1,5}\.[a-z]{1,3}", fullmatch=True),
)
person = st.one_of(
    emails,
    st.builds(lambda name, email: f"{name} <{email}>", names, emails),
    st.builds(lambda name, email: f" {name}<{email}> ", names, emails),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(person, min_size=1, max_size=3))
def test_plain_people_read_as_the_general_reading_reads_them(persons: list[str]) -> None:
    value = "; ".join(persons)
    # A trailing ";" leaves a blank person, which only the general reading drops.
    assert people(value) == people(value + ";")


hosts = st.one_of(
    st.sampled_from(
        [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "10.1.2.3",
            "127.1",
            "0x7f.1",
            "169.254.1.1",
            "printer.local",
            "x.internal",
            "media.example.com",
            "8.8.8.8",
            "2130706433",
            "-a.io",
            "a..b",
            "",
            ".",
        ]
    ),
    st.from_regex(r"[A-Za-z0-9.-]{1,12}", fullmatch=True),
)
paths = st.one_of(st.just(""), st.from_regex(r"/[!-?A-~]{0,12}", fullmatch=True))


@settings(max_examples=500, deadline=None)
@given(hosts, paths)
def test_plain_urls_are_judged_as_the_general_check_judges_them(host: str, path: str) -> None:
    url = f"https://{host}{path}"
    # The general check reads the scheme in any case; the fast one takes only "https".
    assert check_media_url(url) == check_media_url("HTTPS" + url[5:])
