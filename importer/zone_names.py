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
import re

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
