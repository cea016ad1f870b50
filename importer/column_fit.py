"""Whether a column's values fit a field: what ``importer init`` maps, and what it notes.

A header name is not enough: Salesforce's "Call Type" holds Inbound/Outbound, a
direction, not CALL/MEETING. A column named as a known synonym whose values *mostly* fit
is mapped, and the values that do not are pointed out (their rows will be invalid), so
one typo in the first rows does not leave a required field unmapped.

    >>> fit("type", ["Inbound", "Outbound"])
    ('holds Inbound, Outbound: a direction, not CALL or MEETING', {})
    >>> fit("is_private", ["Private", "no"])
    (None, {'Private': 'true'})
"""

from __future__ import annotations

import re
from collections.abc import Callable

from importer.cell_text import EXCEL_ROUNDED
from importer.cells import InvalidCell
from importer.crm_headers import DIRECTION_WORDS, PRIVATE_WORDS, TYPE_WORDS
from importer.dates import DAYFIRST, MONTHFIRST, DateStyle, parse_start_at
from importer.zone_names import split_zone_name

TRUE_FALSE = {"true", "false", "yes", "no", "y", "n", "1", "0", "t", "f"}


def first_fitting(
    name: str,
    candidates: list[str],
    used: set[str],
    rows: list[dict[str, str]],
    refused: dict[str, str],
    values: dict[str, dict[str, str]],
    doubts: dict[str, str] | None = None,
) -> str | None:
    """The first candidate whose values fit ``name``; with ``doubts`` (a known header name),
    one whose values mostly fit, the rest noted in ``doubts`` (their rows will be invalid)."""
    for header in dict.fromkeys(candidates):
        if header in used:
            continue
        seen = [r.get(header, "").strip() for r in rows]
        seen = [v for v in seen if v]
        problem, value_map = fit(name, seen)
        if problem is not None and doubts is not None and name in VALUE_CHECKS:
            what, fits = VALUE_CHECKS[name]
            bad = [v for v in seen if not fits(v)]
            if len(bad) * 2 < len(seen):  # most fit: the rest are mistakes in those rows
                problem, value_map = None, fit(name, [v for v in seen if fits(v)])[1]
                rows_word = "that row" if len(bad) == 1 else "those rows"
                verb = "is" if len(bad) == 1 else "are"
                doubts[name] = (
                    f"{header!r}: {len(bad)} of its first {len(seen)} values {verb} not "
                    f"{what} ({bad[0]!r}): {rows_word} will be invalid"
                )
        if problem is None:
            if value_map:
                values[name] = value_map
            return header
        refused.setdefault(name, f"{header!r} {problem}")
    return None


def _is_url(value: str) -> bool:
    return value.lower().startswith(("http://", "https://"))


# A name alone: starts with a letter, then letters, spaces and . ' - (Ana Ng, O'Brien).
NAMES = re.compile(r"[^\W\d_][^\W\d_ .'\-]*(?:[ .'\-]+[^\W\d_]+)*\.?")


def _is_person_list(value: str) -> bool:
    """Emails, ``Name <email>``, JSON lists, or names alone separated by ``;``: not a count."""
    if any(mark in value for mark in "@<(,["):
        return True
    return all(NAMES.fullmatch(name.strip()) for name in value.split(";") if name.strip())


def _is_boolean(value: str) -> bool:
    return value.lower() in TRUE_FALSE or value.lower() in PRIVATE_WORDS


def fit(name: str, seen: list[str]) -> tuple[str | None, dict[str, str]]:
    """Why ``seen`` values do not fit field ``name`` (None: they fit), and a value map."""
    if not seen:
        return None, {}
    distinct = list(dict.fromkeys(seen))
    shown = ", ".join(distinct[:4])
    if name == "type":
        folded = {v: v.strip().lower() for v in distinct}
        if any(f in DIRECTION_WORDS for f in folded.values()):
            return f"holds {shown}: a direction, not CALL or MEETING", {}
        unknown = [v for v, f in folded.items() if f.upper() not in ("CALL", "MEETING")]
        if any(folded[v] not in TYPE_WORDS for v in unknown):
            return f"holds {shown}, not CALL or MEETING", {}
        return None, {v: TYPE_WORDS[folded[v]] for v in unknown}
    if name == "media_url":
        if not all(_is_url(v) for v in distinct):
            return f"holds {shown}, not URLs", {}
    elif name == "start_at":
        if not all(_reads_as_date(v) for v in distinct):
            return f"holds {shown}, not dates and times", {}
    elif name == "is_private":
        if not all(_is_boolean(v) for v in distinct):
            return f"holds {shown}, not true or false", {}
        unknown = [v for v in distinct if v.lower() not in TRUE_FALSE]
        return None, {v: PRIVATE_WORDS[v.lower()] for v in unknown}
    elif name == "participants":
        if not all(_is_person_list(v) for v in distinct):
            return f"holds {shown}, not people", {}
    elif name == "id" and any(EXCEL_ROUNDED.fullmatch(v) for v in distinct):
        return (
            f"holds {shown}: numbers Excel rounded into scientific notation, so the CRM's "
            "ids are lost; export the id column as text",
            {},
        )
    elif name == "id" and len(distinct) < len(seen):
        return "repeats values, so it cannot be the recording's id", {}
    return None, {}


def _reads_as_date(value: str) -> bool:
    zoned = split_zone_name(value)  # 2:30 PM EST: the zone is --timezone's to say
    for order in (DAYFIRST, MONTHFIRST):
        try:
            parse_start_at(zoned[0] if zoned else value, "UTC", DateStyle(order=order))
            return True
        except InvalidCell:
            continue
    return False


# Fields whose values are judged one by one: what a value must be, and the test.
VALUE_CHECKS: dict[str, tuple[str, Callable[[str], bool]]] = {
    "media_url": ("a URL", _is_url),
    "start_at": ("a date and time", _reads_as_date),
    "is_private": ("true or false", _is_boolean),
    "participants": ("people", _is_person_list),
}
