"""Zone abbreviations at the end of a date (``3/5/2024 2:30 PM EST``), checked, not guessed.

An abbreviation names several zones (CST is Chicago's and Shanghai's), so it cannot say
which zone a time is in; ``--timezone`` does, and each value's abbreviation must then be
that zone's at that moment (EST in winter, EDT in summer for America/New_York).

    >>> split_zone_name("3/5/2024 2:30 PM EST")
    ('3/5/2024 2:30 PM', 'EST')
    >>> split_zone_name("2024-03-05 14:30 UTC") is None
    True
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from importer.errors import InvalidCell, NaiveTime

ZONE_NAME = re.compile(r"(?P<rest>.*\d(?:\s*[AaPp]\.?[Mm]\.?)?)\s+(?P<name>[A-Z]{3,4})")
# For the hint: the US zones whose abbreviations exports write most (EST/EDT, CST/CDT...).
US_ZONES = {
    "E": "America/New_York",
    "C": "America/Chicago",
    "M": "America/Denver",
    "P": "America/Los_Angeles",
}


def split_zone_name(value: str) -> tuple[str, str] | None:
    """The date and the zone abbreviation after it; None without one (UTC and GMT are
    offsets, which the date parser reads itself)."""
    text = value.strip()
    if not text[-3:].isupper() or not text[-3:].isalpha():  # the common case, cheaply
        return None
    named = ZONE_NAME.fullmatch(text)
    if named is None or named["name"] in ("UTC", "GMT"):
        return None
    return named["rest"], named["name"]


def zone_disagreement(moment: dt.datetime, name: str, timezone: str) -> str | None:
    """Why ``name`` is not the abbreviation of ``moment`` (in ``timezone``), or None."""
    if moment.tzname() == name:
        return None
    example = US_ZONES.get(name[0], "") if name[1:] in ("ST", "DT") else ""
    hint = f" (e.g. {example} for {name})" if example and example != timezone else ""
    return (
        f"names the zone {name!r}, but in {timezone} that time is {moment.tzname()}; pass "
        f"--timezone with the zone the file's times are in{hint}"
    )


DAYFIRST, MONTHFIRST = "dayfirst", "monthfirst"
ORDERS = (DAYFIRST, MONTHFIRST)
# Recordings come from the past: anything outside these years is a mistaken column.
EARLIEST_YEAR, LATEST_YEAR = 1990, 2100
EPOCH_MS_THRESHOLD = 100_000_000_000
# Excel stores dates as days since 1899-12-30: 5-digit numbers, often with a fraction.
# Larger numbers are milliseconds (year 5138 in seconds).
EXCEL_SERIAL = re.compile(r"[1-9]\d{4}(\.\d+)?")
EPOCH = re.compile(r"-?\d+(\.\d+)?")

MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}

_TIME = (
    r"(?:[ T]+|,\s*|\s+at\s+)"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,6}))?)?"
    r"\s*(?P<ampm>[AaPp]\.?[Mm]\.?)?"
    r"\s*(?P<zone>Z|z|UTC|GMT|[+-]\d{2}:?\d{2})?"
)
_WEEKDAY = r"(?:(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)[a-z]*\.?,?\s+)?"
# 03/05/2024, 3/5/24, 05.03.2024, Wed 11/05/2025 (the order of the first two decided per file)
NUMERIC = re.compile(
    _WEEKDAY
    + r"(?P<a>\d{1,2})(?P<sep>[/.\-])(?P<b>\d{1,2})(?P=sep)(?P<year>\d{4}|\d{2})\.?"
    + _TIME,
    re.IGNORECASE,
)
# 2024/03/05 14:30, 2024-03-05 2:30 PM
YEAR_FIRST = re.compile(
    _WEEKDAY + r"(?P<year>\d{4})(?P<sep>[/\-])(?P<month>\d{1,2})(?P=sep)(?P<day>\d{1,2})" + _TIME,
    re.IGNORECASE,
)
# Mar 5, 2024, 2:30 PM / March 5 2024 14:30 / Tue, Mar 5, 2024 2:30 PM
MONTH_NAME_FIRST = re.compile(
    _WEEKDAY
    + r"(?P<month_name>[a-z]{3,9})\.?\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<year>\d{4})"
    + _TIME,
    re.IGNORECASE,
)
# 5 Mar 2024 14:30 / 05-Mar-2024 14:30 / Tue, 05 Mar 2024 14:30:00 +0000
DAY_FIRST_NAMED = re.compile(
    _WEEKDAY + r"(?P<day>\d{1,2})(?:st|nd|rd|th)?[\s\-]+(?P<month_name>[a-z]{3,9})\.?,?[\s\-]+"
    r"(?P<year>\d{4})" + _TIME,
    re.IGNORECASE,
)
DATE_ONLY = re.compile(
    _WEEKDAY
    + r"(?:\d{4}-\d{2}-\d{2}|\d{1,2}[/.\-]\d{1,2}[/.\-](\d{4}|\d{2})"
    + r"|[a-z]{3,9}\.? \d{1,2},? \d{4})",
    re.IGNORECASE,
)
FORMS = (
    "ISO 8601 (2024-03-05T14:30:00+01:00), 'YYYY-MM-DD HH:MM', 'MM/DD/YYYY HH:MM AM' or "
    "'DD.MM.YYYY HH:MM' (the file decides day or month first), 'Mar 5, 2024, 2:30 PM', "
    "or epoch seconds"
)
FORMAT_HINT = (
    "pass --date-format with the file's format (e.g. '%a %m/%d/%Y %I:%M:%S %p'), or set "
    "[formats] start_at in the mapping"
)
"""Every error reading a date ends with it: the two ways to say how a file writes dates."""
GIVEN_FORMAT_HINT = "the format is --date-format's or the mapping's [formats] start_at"
NO_ZONE_HINT = (
    "pass --timezone ZONE (e.g. America/New_York, or UTC if the times are UTC) or set "
    '[formats] timezone = "ZONE" in the mapping (importer init asks for it)'
)


@dataclass(frozen=True)
class DateStyle:
    """How a file writes its dates, when they are not self-evident."""

    format: str | None = None
    """A ``strptime`` format (``[formats]`` in the mapping, ``--date-format``)."""
    order: str | None = None
    """``dayfirst`` or ``monthfirst`` for numeric dates; None: undecided."""
    scanned: int | None = None
    """The file's first ``scanned`` values were read and settled no order: a numeric date is
    then an error, never read by its own digits (which would differ row by row)."""


def parse_start_at(text: str, timezone: str | None = None, style: DateStyle | None = None) -> str:
    """An RFC 3339 UTC timestamp; ``InvalidCell`` when the cell cannot be read as one.

    Naive times are read in ``timezone``; without one they are ``NaiveTime`` errors, never
    read as UTC. The message of an error shows the value and how it was read.
    """
    style = style or DateStyle()
    value = text.strip()
    if not value:
        raise InvalidCell(
            "is blank; the API would use the time of the import instead of the recording's"
        )
    if style.format is None and timezone is not None:
        plain = _plain_iso(value, timezone)
        if plain is not None:
            return plain
    zoned = None if style.format or EPOCH.fullmatch(value) else split_zone_name(value)
    try:
        if style.format:
            moment = _with_format(value, style.format)
        elif EPOCH.fullmatch(value):
            moment = _epoch(value)
        else:  # 3/5/2024 2:30 PM EST: EST must be --timezone's name then
            moment = _recognise(zoned[0] if zoned else value, style)
    except InvalidCell as error:
        hint = GIVEN_FORMAT_HINT if style.format else FORMAT_HINT
        raise InvalidCell(f"{error}; {hint}") from None
    if moment.tzinfo is None:
        if timezone is None:
            raise NaiveTime(f"{value!r} has no offset and no time zone is chosen; {NO_ZONE_HINT}")
        moment = _localise(moment, ZoneInfo(timezone), value, timezone)
        if zoned is not None:
            problem = zone_disagreement(moment, zoned[1], timezone)
            if problem is not None:
                raise InvalidCell(f"{value!r} {problem}")
    _check_years(value, moment)
    return format_rfc3339(moment)


PLAIN_ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2})?")
"""``2024-03-05 14:30[:05]``, no offset: how most exports write times, read without the
general parser's searches (the same instant; ``tests/test_plain_forms.py`` holds them equal)."""


def _plain_iso(value: str, timezone: str) -> str | None:
    """A plain ISO time read in ``timezone``; None for anything else, or for what the
    general parser must judge (no such day, a skipped hour, a year out of range)."""
    if PLAIN_ISO.fullmatch(value) is None:
        return None
    # Minutes and seconds of 60 or more are the general parser's to refuse.
    if value[14] <= "5" and (len(value) == 16 or value[17] <= "5"):
        hour = _utc_hour(timezone, value[:10], value[11:13])
        if hour is not None:  # whole hours apart all through the hour: the rest is as read
            return f"{hour}{value[13:]}{'' if len(value) > 16 else ':00'}+00:00"
    try:
        # The pattern admits only forms fromisoformat reads alike: digits, " " or "T".
        naive = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    year = naive.year
    if not EARLIEST_YEAR <= year <= LATEST_YEAR:
        return None  # before the zone is asked: year 1 and 9999 cannot be converted
    offset = _offset_through_minute(
        timezone, year, naive.month, naive.day, naive.hour, naive.minute
    )
    if offset is None:
        return None  # a clock change in that minute: the general parser says what it means
    utc = naive - offset if offset else naive
    if not EARLIEST_YEAR <= utc.year <= LATEST_YEAR:
        return None
    return utc.isoformat() + "+00:00"  # whole seconds: as isoformat writes UTC's


@functools.lru_cache(maxsize=8192)
def _utc_hour(timezone: str, day: str, hour: str) -> str | None:
    """``2024-03-05T19``: the UTC hour this local hour (``2024-03-05``, ``14``) is in when
    the zone is whole hours from UTC all through it; else None (a clock change in it, a
    zone half an hour off, no such hour, a year out of range). Most rows of an export
    share their hour with others; an hour costs what a minute did."""
    try:
        start = dt.datetime.fromisoformat(f"{day} {hour}:00")
    except ValueError:
        return None
    if not EARLIEST_YEAR <= start.year <= LATEST_YEAR:
        return None  # before the zone is asked: year 1 and 9999 cannot be converted
    offset = _steady_offset(ZoneInfo(timezone), start, 3599)
    if offset is None or offset % dt.timedelta(hours=1):
        return None
    utc = start - offset
    if not EARLIEST_YEAR <= utc.year <= LATEST_YEAR:
        return None
    return utc.isoformat()[:13]


@functools.lru_cache(maxsize=8192)
def _offset_through_minute(
    timezone: str, year: int, month: int, day: int, hour: int, minute: int
) -> dt.timedelta | None:
    """The zone's UTC offset all through this local minute; None when the clocks change
    in it or skip it."""
    start = dt.datetime(year, month, day, hour, minute)
    return _steady_offset(ZoneInfo(timezone), start, 59)


def _steady_offset(zone: ZoneInfo, start: dt.datetime, seconds: int) -> dt.timedelta | None:
    """The zone's UTC offset from the local time ``start`` through ``seconds`` later; None
    when the clocks change or skip in between. Equal offsets at the first and last second
    mean no change between: a change moves the offset, and two never fall within an hour."""
    offsets = set()
    for naive in (start, start + dt.timedelta(seconds=seconds)):
        aware = naive.replace(tzinfo=zone)
        if aware.astimezone(dt.timezone.utc).astimezone(zone).replace(tzinfo=None) != naive:
            return None  # the clocks skipped it
        offsets.add(aware.utcoffset())
    return offsets.pop() if len(offsets) == 1 else None


def is_naive(text: str, style: DateStyle) -> bool:
    """Whether a cell holds a time without an offset (which needs a zone to be read)."""
    try:
        parse_start_at(text, None, style)
    except NaiveTime:
        return True
    except InvalidCell:
        return False
    return False


def read_as(text: str, timezone: str | None = None, style: DateStyle | None = None) -> str:
    """``'03/05/2024 2:30 PM' -> 2024-03-05T14:30:00+00:00``, for messages and notices."""
    try:
        return f"{text.strip()!r} -> {parse_start_at(text, timezone, style)}"
    except InvalidCell as error:
        return f"{text.strip()!r}: {error}"


def _with_format(value: str, form: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(value, form)
    except ValueError as error:
        raise InvalidCell(
            f"{value!r} does not match the date format {form!r}{_format_detail(str(error))}"
        ) from None


def _format_detail(error: str) -> str:
    """What strptime adds to "does not match": text left over, or an impossible date."""
    if "does not match format" in error:
        return ""  # it says only what the message already says
    left = re.match(r"unconverted data remains: (.*)", error, re.DOTALL)
    if left:
        return f" ({left.group(1)!r} is left over)"
    return f" ({error})"


def _epoch(value: str) -> dt.datetime:
    number = float(value)
    seconds = number / 1000 if abs(number) >= EPOCH_MS_THRESHOLD else number
    try:
        return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise InvalidCell(f"{value!r} is not a usable epoch time") from None


def _refuse_impossible_numeric_date(value: str) -> None:
    """``32/13/2023``: no day and month of it exist, either way round; say so, rather than
    ask for a time of day."""
    match = re.fullmatch(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})", value)
    if match is None:
        return
    first, second = int(match[1]), int(match[2])
    year = int(match[3]) + (2000 if len(match[3]) == 2 else 0)
    for day, month in ((first, second), (second, first)):
        try:
            dt.date(year, month, day)
            return
        except ValueError:
            continue
    raise InvalidCell(
        f"{value!r} is not a date: neither {first}/{second} nor {second}/{first} is a day "
        f"and a month of {year}"
    )


def _recognise(value: str, style: DateStyle) -> dt.datetime:
    candidate = value.replace("z", "Z") if value.endswith("z") else value
    named_utc = candidate[-3:] in ("UTC", "GMT") and re.fullmatch(r"(.*\d)\s*...", candidate)
    if named_utc and candidate[:4].isdigit():
        candidate = named_utc.group(1) + "+00:00"  # 2024-03-05 14:30:00 UTC (Outreach)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", candidate):
        raise InvalidCell(
            f"{value!r} has a date but no time of day; add the time, e.g. {value}T14:30"
        )
    if candidate[:4].isdigit() and "-" in candidate[4:5]:
        try:
            return dt.datetime.fromisoformat(candidate)
        except ValueError:
            match = YEAR_FIRST.fullmatch(value)
            if match:  # 2024-03-05 2:30 PM
                return _build(
                    value, int(match["year"]), int(match["month"]), int(match["day"]), match
                )
            raise InvalidCell(
                f"{value!r} is not a date and time: read as ISO 8601, it is no real date or time"
            ) from None
    match = NUMERIC.fullmatch(value)
    if match:
        return _numeric(value, match, style)
    match = YEAR_FIRST.fullmatch(value)
    if match:
        return _build(value, int(match["year"]), int(match["month"]), int(match["day"]), match)
    match = MONTH_NAME_FIRST.fullmatch(value) or DAY_FIRST_NAMED.fullmatch(value)
    if match:
        month = MONTHS.get(match["month_name"].lower())
        if month is None:
            raise InvalidCell(f"{value!r}: {match['month_name']!r} is not a month name")
        return _build(value, int(match["year"]), month, int(match["day"]), match)
    try:
        return dt.datetime.fromisoformat(candidate)
    except ValueError:
        pass
    if DATE_ONLY.fullmatch(value):
        _refuse_impossible_numeric_date(value)
        raise InvalidCell(f"{value!r} has a date but no time of day; add the time")
    raise InvalidCell(f"{value!r} is not a date and time; use {FORMS}")


def numeric_parts(value: str) -> tuple[int, int] | None:
    """The first two numbers of a numeric date (``03/05/2024`` -> (3, 5)), else None."""
    zoned = split_zone_name(value)
    match = NUMERIC.fullmatch(zoned[0] if zoned else value.strip())
    return (int(match["a"]), int(match["b"])) if match else None


def _numeric(value: str, match: re.Match[str], style: DateStyle) -> dt.datetime:
    first, second = int(match["a"]), int(match["b"])
    order = style.order
    if order is None and style.scanned is not None and first != second:
        raise InvalidCell(
            f"{value!r} is a numeric date, and the column's first {style.scanned:,} dates did "
            "not say day-first or month-first; pass --dayfirst or --monthfirst"
        )
    year = int(match["year"])
    if len(match["year"]) == 2:
        year += 2000 if year < 70 else 1900
    if first > 12 and second > 12:
        raise InvalidCell(f"{value!r} is no real date: neither {first} nor {second} is a month")
    if order is None:
        if first > 12 >= second:
            order = DAYFIRST
        elif second > 12 >= first:
            order = MONTHFIRST
        elif first == second:
            order = DAYFIRST  # 03/03/2024 reads the same either way
        else:
            raise InvalidCell(
                f"{value!r} can be read day-first ({_long(year, second, first)}) or month-first "
                f"({_long(year, first, second)}); pass --dayfirst or --monthfirst"
            )
    day, month = (first, second) if order == DAYFIRST else (second, first)
    how = "day-first" if order == DAYFIRST else "month-first"
    if month > 12:
        raise InvalidCell(
            f"{value!r} read {how} has month {month}: the file's dates are {how} "
            "(--dayfirst / --monthfirst to say otherwise)"
        )
    return _build(value, year, month, day, match, how)


def _long(year: int, month: int, day: int) -> str:
    try:
        return f"{day} {dt.date(year, month, day):%b %Y}"
    except ValueError:
        return f"day {day} of month {month}"


def _build(
    value: str, year: int, month: int, day: int, match: re.Match[str], how: str = ""
) -> dt.datetime:
    hour, minute = int(match["hour"]), int(match["minute"])
    second = int(match["second"] or 0)
    micro = int((match["fraction"] or "0").ljust(6, "0"))
    ampm = (match["ampm"] or "").replace(".", "").lower()
    if ampm:
        if not 1 <= hour <= 12:
            raise InvalidCell(f"{value!r} has hour {hour} with {match['ampm']}")
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    zone = _zone(match["zone"])
    try:
        return dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=zone)
    except ValueError as error:
        read = f" read {how}" if how else ""
        raise InvalidCell(f"{value!r}{read} is no real date or time ({error})") from None


def _zone(text: str | None) -> dt.tzinfo | None:
    if not text:
        return None
    if text.upper() in ("Z", "UTC", "GMT"):
        return dt.timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def _check_years(value: str, moment: dt.datetime) -> None:
    # Checked before converting (year 9999 cannot be converted) and after: the UTC time is
    # what is sent, and an offset can move it across a year boundary.
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        hint = ""
        if EXCEL_SERIAL.fullmatch(value):
            hint = " (it looks like an Excel serial date: export dates as text, e.g. ISO 8601)"
        raise InvalidCell(
            f"{value!r} is in {moment.year}: outside {EARLIEST_YEAR}-{LATEST_YEAR}{hint}"
        )
    utc_year = moment.astimezone(dt.timezone.utc).year
    if not EARLIEST_YEAR <= utc_year <= LATEST_YEAR:
        raise InvalidCell(
            f"{value!r} is in {utc_year} in UTC: outside {EARLIEST_YEAR}-{LATEST_YEAR}"
        )


def _localise(naive: dt.datetime, zone: ZoneInfo, value: str, name: str) -> dt.datetime:
    """A wall-clock time in ``zone``; a time skipped by a clock change is an error.

    A time that happens twice (clocks going back) is read as the first of the two.
    """
    moment = naive.replace(tzinfo=zone)
    try:
        back = moment.astimezone(dt.timezone.utc).astimezone(zone).replace(tzinfo=None)
    except OverflowError:  # year 1 or 9999, whose times cannot all be converted
        _check_years(value, naive)  # says which year, as for any year out of range
        raise
    if back != naive:
        raise InvalidCell(
            f"{value!r} does not exist in {name}: the clocks skipped that hour; "
            "give the time with its offset"
        )
    return moment


def format_rfc3339(moment: dt.datetime) -> str:
    """UTC with a ``T`` and an explicit ``+00:00`` offset: the strictest ``date-time``."""
    utc = moment.astimezone(dt.timezone.utc)
    return utc.isoformat(timespec="seconds" if utc.microsecond == 0 else "milliseconds")


def parse_timestamp(value: str, *, naive_is_utc: bool = True) -> dt.datetime | None:
    """An ISO 8601 date and time as the API writes it (``Z`` or an offset), else None.

    A value without an offset is UTC when ``naive_is_utc``, else returned naive.
    """
    text = value.strip()
    if len(text) < 11 or text[10] not in "Tt ":
        return None
    if text[-1] in "Zz":
        text = text[:-1] + "+00:00"
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None and naive_is_utc:
        return moment.replace(tzinfo=dt.timezone.utc)
    return moment


def same_instant(a: str, b: str) -> bool:
    """Two API timestamps that name the same instant (``...Z`` and ``...+00:00`` alike)."""
    first = parse_timestamp(a, naive_is_utc=False)
    second = parse_timestamp(b, naive_is_utc=False)
    if first is None or second is None:
        return a == b
    if (first.tzinfo is None) != (second.tzinfo is None):
        return False
    return first == second


@dataclass(frozen=True)
class OrderDecision:
    """What a file's numeric dates say about day-first or month-first."""

    order: str | None
    """``dayfirst``, ``monthfirst``, or None when the file does not say."""
    evidence: tuple[int, str] | None = None
    """The row and value that settled it (a day above 12)."""
    ambiguous: tuple[int, str] | None = None
    """A row and value that reads two ways, when nothing settled it."""
    conflict: tuple[int, str] | None = None
    """A row and value that contradicts ``evidence``: the column mixes formats."""
    stopped_after: int | None = None
    """The values read, when the scan stopped early for want of numeric dates."""


def _is_real(value: str, order: str) -> bool:
    """Whether ``value`` read in ``order`` is a real date and time."""
    zoned = split_zone_name(value)  # its zone is checked against --timezone elsewhere
    try:
        parse_start_at(zoned[0] if zoned else value, "UTC", DateStyle(order=order))
    except InvalidCell:
        return False
    return True


def decide_order(values: Iterable[tuple[int, str]], *, enough: int = 10_000) -> OrderDecision:
    """Day-first or month-first, from ``(row, value)`` pairs of one column.

    Stops at the first contradiction, or after ``enough`` values with no numeric date.
    """
    dayfirst: tuple[int, str] | None = None
    monthfirst: tuple[int, str] | None = None
    ambiguous: tuple[int, str] | None = None
    seen_without_numeric = 0
    for row, value in values:
        parts = numeric_parts(value)
        if parts is None:
            seen_without_numeric += 1
            if seen_without_numeric >= enough and not (ambiguous or dayfirst or monthfirst):
                return OrderDecision(None, stopped_after=seen_without_numeric)
            continue
        first, second = parts
        if first > 12 >= second:
            if dayfirst is None and _is_real(value, DAYFIRST):  # 31/02/2024: a typo
                dayfirst = (row, value.strip())
        elif second > 12 >= first:
            if monthfirst is None and _is_real(value, MONTHFIRST):
                monthfirst = (row, value.strip())
        elif first != second:
            ambiguous = ambiguous or (row, value.strip())
        if dayfirst and monthfirst:
            earlier, later = sorted((dayfirst, monthfirst))
            order = DAYFIRST if earlier is dayfirst else MONTHFIRST
            return OrderDecision(order, earlier, conflict=later)
    if dayfirst:
        return OrderDecision(DAYFIRST, dayfirst)
    if monthfirst:
        return OrderDecision(MONTHFIRST, monthfirst)
    return OrderDecision(None, ambiguous=ambiguous)
