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

import dataclasses
import datetime as dt
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import tomli_w

from importer.errors import InvalidCell, ManifestError
from importer.read.manifest import read_columns, read_samples
from importer.rows.cells import EXCEL_ROUNDED
from importer.rows.crm_headers import (
    DIRECTION_WORDS,
    PRIVATE_WORDS,
    SYNONYMS,
    SYSTEM_HEADERS,
    SYSTEM_TYPES,
    TYPE_WORDS,
)
from importer.rows.dates import (
    DAYFIRST,
    MONTHFIRST,
    US_ZONES,
    DateStyle,
    decide_order,
    is_naive,
    parse_start_at,
    split_zone_name,
)
from importer.rows.mapping import FIELDS, REQUIRED_FIELDS, join_cells, tomllib
from importer.rows.participants import parse_participants
from importer.settings import SourceOptions

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
        if name == "title" and problem is None and names_people(header, seen):
            problem = "names people, not what the recording is about"
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


# Header words that name a person: such a column holds who, never what (the title).
PERSON_WORDS = {
    "user",
    "owner",
    "rep",
    "agent",
    "caller",
    "callee",
    "from",
    "to",
    "host",
    "assigned",
    "contact",
    "prospect",
    "person",
    "attendee",
    "participant",
    "organizer",
    "organiser",
    "employee",
    "associated",
}
TIME_OF_DAY = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?\s*(?:[AaPp]\.?[Mm]\.?)?")


def names_people(header: str, seen: list[str]) -> bool:
    """A column of people's names or emails (Aircall's user_name, RingCentral's From Name,
    an email column): never a title."""
    words = set(normalise(header).split())
    if words & PERSON_WORDS and not words & {"title", "subject", "topic"}:
        return True
    return bool(seen) and all(_is_email_people(v) for v in seen)


def _is_email_people(value: str) -> bool:
    """Every person in the cell has an email (``a@b.com``, ``Ana Ng (ana@acme.com)``)."""
    if "@" not in value:
        return False
    try:
        people = parse_participants(value)
    except InvalidCell:
        return False
    return bool(people) and all("email" in person for person in people)


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
        if all(re.fullmatch(r"[\d\s.,]+", v) for v in distinct):
            return f"holds {shown}: numbers (a head count?), not people", {}
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


# Header words that make a column a guess for a field when no synonym matched.
GUESS_WORDS = {
    "id": ("id",),
    "title": ("title", "subject"),  # never "name": a column of names names people
    "media_url": ("recording", "media", "audio", "video", "url"),
    "start_at": ("date", "time", "start"),
    "participants": ("participant", "attendee", "email"),
}


def normalise(name: str) -> str:
    """'Recording_URL__c ' -> 'recording url': case, separators, spaces, ``__c`` folded."""
    name = re.sub(r"__c$", "", name.strip())  # Salesforce custom fields' API names
    return re.sub(r"[\s_\-./]+", " ", name.lower()).strip()


@dataclass(frozen=True)
class MappingGuess:
    """Which column each field comes from, how sure, and what was left unmatched."""

    columns: dict[str, str]
    unmapped_fields: list[str]
    unused_columns: list[str]
    guessed: set[str] = field(default_factory=set)
    """Fields matched by a word in the header rather than a known header name."""
    refused: dict[str, str] = field(default_factory=dict)
    """Field to why a column whose name matched was not used (its values do not fit)."""
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    """Proposed ``[values.FIELD]`` maps."""
    defaults: dict[str, str] = field(default_factory=dict)
    source_system: str | None = None
    """The system the headers look like (written as a default)."""
    date_question: str | None = None
    """When the first rows' numeric dates read two ways: the question to answer."""
    skip_without_media: int = 0
    """How many of the first rows have a blank media URL (then skipped, not invalid)."""
    problems: list[str] = field(default_factory=list)
    """What will stop ``plan`` whatever the mapping says (e.g. ids stored as floats)."""
    doubts: dict[str, str] = field(default_factory=dict)
    """Field to the values of its (mapped) column that do not fit: their rows are invalid."""
    joined: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Fields proposed from several columns (Date with Time, every people column, an id
    with the start time where the id repeats)."""
    naive: list[tuple[int, str]] = field(default_factory=list)
    """The first rows' start values written without an offset (row, value): a zone is needed."""
    timezone: str | None = None
    """The zone chosen (``init --timezone`` or the answer to init's question)."""
    date_order: str | None = None
    """``dayfirst`` or ``monthfirst`` as chosen (``init --dayfirst`` / ``--monthfirst``)."""
    id_candidates: list[str] = field(default_factory=list)
    """No id mapped: the columns that might be one, each with why it was not taken."""

    def formats(self) -> dict[str, str]:
        """The ``[formats]`` table the mapping file holds."""
        chosen = {"start_at": self.date_order} if self.date_order else {}
        return {**chosen, **({"timezone": self.timezone} if self.timezone else {})}

    fields: tuple[str, ...] = FIELDS
    """The import target's field table (``--target``): what the mapping may name."""
    required: tuple[str, ...] = REQUIRED_FIELDS


def propose_mapping(
    manifest: Path,
    source: SourceOptions,
    fields: tuple[str, ...] = FIELDS,
    required: tuple[str, ...] = REQUIRED_FIELDS,
) -> MappingGuess:
    """Read the manifest's headers and first rows, and guess; note what will stop a plan.

    ``fields`` and ``required``: the import target's field table (DevRev's adds ``parent``,
    the CRM's account id column)."""
    samples = [row.cells for row in read_samples(manifest, source)]
    guess = guess_mapping(read_columns(manifest, source), samples, fields, required)
    # Numbers in an id column must become text exactly: check the column(s) ids may be in.
    headers = read_columns(manifest, source)
    candidates = [guess.columns["id"]] if "id" in guess.columns else []
    candidates += [h for h in headers if normalise(h) in SYNONYMS["id"] and h not in candidates]
    for column in candidates[:1] if "id" in guess.columns else candidates:
        try:
            for _ in read_samples(manifest, dataclasses.replace(source, id_column=column)):
                pass
        except ManifestError as error:
            guess.problems.append(str(error))
            if "id" not in guess.columns:
                guess = _with_id(guess, column)
    return guess


def _with_id(guess: MappingGuess, column: str) -> MappingGuess:
    """``column`` as the id after all: its ids are floats (which made them look repeated),
    a problem to fix in the export, not a reason to look for another column."""
    refused = {name: why for name, why in guess.refused.items() if name != "id"}
    return dataclasses.replace(
        guess,
        columns={**guess.columns, "id": column},
        unmapped_fields=[name for name in guess.unmapped_fields if name != "id"],
        unused_columns=[name for name in guess.unused_columns if name != column],
        refused=refused,
    )


def guess_mapping(
    headers: list[str],
    samples: Iterable[dict[str, str]] = (),
    fields: tuple[str, ...] = FIELDS,
    required: tuple[str, ...] = REQUIRED_FIELDS,
) -> MappingGuess:
    """Match headers to fields, best synonym first, checking each column's first values."""
    rows = list(samples)
    by_name: dict[str, str] = {}
    for header in headers:
        by_name.setdefault(normalise(header), header)
        by_name.setdefault(normalise(header).replace(" ", ""), header)
    # A name two columns share cannot be mapped (which one?): never a candidate.
    shared = {header for header, count in Counter(headers).items() if count > 1}
    used: set[str] = set(shared)
    columns: dict[str, str] = {}
    guessed: set[str] = set()
    refused: dict[str, str] = {}
    values: dict[str, dict[str, str]] = {}
    doubts: dict[str, str] = {}
    for name in fields:
        synonyms = SYNONYMS.get(name, ())
        candidates = [by_name[s] for s in synonyms if s in by_name]
        candidates += [
            by_name[s.replace(" ", "")] for s in synonyms if s.replace(" ", "") in by_name
        ]
        for header in (c for c in candidates if c in shared):
            refused.setdefault(name, f"{header!r} names two columns: rename one to map it")
        found = first_fitting(name, candidates, used, rows, refused, values, doubts)
        if found is None:
            words = GUESS_WORDS.get(name, ())
            loose = [h for h in headers if any(w in normalise(h).split() for w in words)]
            found = first_fitting(name, loose, used, rows, {}, values)
            if found is not None:
                guessed.add(name)
        if found is not None:
            columns[name] = found
            used.add(found)
    joined = _joined_proposals(headers, rows, columns, used)
    defaults: dict[str, str] = {}
    system = detect_system(headers)
    if "type" not in columns:
        defaults["type"] = export_type(headers, system)
    if system and "source_system" not in columns:
        defaults["source_system"] = system
    if "title" not in columns and "title" not in refused:  # a refused column needs a look
        defaults["title"] = default_title(system, defaults.get("type"))
    for name, names in joined.items():
        columns[name] = names[0]
        used.update(names)
        refused.pop(name, None)
        guessed.discard(name)
    unmapped = [f for f in fields if f not in columns and f not in defaults]
    unused = [h for h in headers if h not in used]
    start_columns = joined.get("start_at") or tuple(c for c in [columns.get("start_at")] if c)
    starts = [join_cells("start_at", [r.get(c, "") for c in start_columns]) for r in rows]
    starts = starts if start_columns else []
    question = _date_question(starts)
    naive = [
        (number, value)
        for number, value in enumerate(starts, start=2)
        if value and any(is_naive(value, DateStyle(order=o)) for o in (DAYFIRST, MONTHFIRST))
    ]
    media = columns.get("media_url")
    blank_media = sum(1 for r in rows if media and not r.get(media, "").strip())
    candidates = [] if "id" in columns else id_candidates(headers, rows, refused)
    return MappingGuess(
        columns,
        unmapped,
        unused,
        guessed,
        refused,
        values,
        defaults,
        system,
        question,
        blank_media,
        doubts=doubts,
        joined=joined,
        naive=naive,
        id_candidates=candidates,
        fields=fields,
        required=required,
    )


def export_type(headers: list[str], system: str | None) -> str:
    """``MEETING`` for a meeting export (HubSpot's meetings: Meeting Name, Meeting start
    time...), else the system's usual type."""
    words = [set(normalise(h).split()) for h in headers]
    meetings = sum("meeting" in w for w in words)
    calls = sum("call" in w for w in words)
    if meetings > calls:
        return "MEETING"
    if calls > meetings:
        return "CALL"
    return SYSTEM_TYPES.get(system or "", "CALL")


def _joined_proposals(
    headers: list[str],
    rows: list[dict[str, str]],
    columns: dict[str, str],
    used: set[str],
) -> dict[str, tuple[str, ...]]:
    """Fields best read from several columns: a date column with a time column, every
    column of people with emails, and an id that repeats with the start time beside it.
    A lone column of people with emails is added to ``columns`` (and ``used``) instead."""
    joined: dict[str, tuple[str, ...]] = {}
    free = [h for h in headers if h not in used]
    if "start_at" not in columns:
        pair = _date_and_time(free, rows)
        if pair is not None:
            joined["start_at"] = pair
    people = [columns["participants"]] if "participants" in columns else []
    people += [
        h
        for h in free
        if h not in joined.get("start_at", ())
        and (seen := [v for r in rows if (v := r.get(h, "").strip())])
        and all(_is_email_people(v) for v in seen)
    ]
    if len(people) > 1:
        joined["participants"] = tuple(people)
    elif people and "participants" not in columns:
        columns["participants"] = people[0]
        used.add(people[0])
    if "id" not in columns:
        start = joined.get("start_at") or ((columns["start_at"],) if "start_at" in columns else ())
        for header in _id_like(headers):
            if not start or header in start:
                continue
            ids = [r.get(header, "").strip() for r in rows]
            keys = [
                (i, *(r.get(c, "").strip() for c in start)) for i, r in zip(ids, rows, strict=True)
            ]
            if all(ids) and len(set(ids)) < len(ids) and len(set(keys)) == len(keys):
                joined["id"] = (header, *start)
                break
    return joined


def _date_and_time(free: list[str], rows: list[dict[str, str]]) -> tuple[str, str] | None:
    """A column of dates alone and one of times of day that read together as the start."""

    def values(header: str) -> list[str]:
        return [r.get(header, "").strip() for r in rows]

    times = [
        h
        for h in free
        if rows and all(TIME_OF_DAY.fullmatch(v) for v in values(h) if v) and any(values(h))
    ]
    dates = [
        h
        for h in free
        if h not in times
        and any(values(h))
        and not any(_reads_as_date(v) for v in values(h) if v)
        and all(_reads_as_date(f"{v} 12:00") for v in values(h) if v)
    ]
    for date in sorted(dates, key=lambda h: "date" not in normalise(h).split()):
        for time in sorted(times, key=lambda h: "time" not in normalise(h).split()):
            pairs = [f"{d} {t}" for d, t in zip(values(date), values(time), strict=True) if d and t]
            if pairs and all(_reads_as_date(p) for p in pairs):
                return date, time
    return None


def _id_like(headers: list[str]) -> list[str]:
    """Headers that name an id, known names first."""
    known = [h for h in headers if normalise(h) in SYNONYMS["id"]]
    loose = [
        h
        for h in headers
        if h not in known and {"id", "uuid", "sid", "key"} & set(normalise(h).split())
    ]
    return known + loose


def id_candidates(
    headers: list[str], rows: list[dict[str, str]], refused: dict[str, str]
) -> list[str]:
    """No column was taken as the id: the ones that might be, with why each was not."""
    found = []
    for header in _id_like(headers):
        why = refused.get("id", "") if refused.get("id", "").startswith(repr(header)) else ""
        if not why:
            ids = [r.get(header, "").strip() for r in rows]
            why = f"{header!r} repeats values" if len(set(ids)) < len(ids) else repr(header)
        found.append(why)
    return found


def default_title(system: str | None, default_type: str | None) -> str:
    """The title every row gets when no column holds one (dialers write no subject)."""
    kind = "meeting" if (default_type or SYSTEM_TYPES.get(system or "")) == "MEETING" else "call"
    return f"{system.capitalize()} {kind}" if system else kind.capitalize()


def _a(system: str) -> str:
    return f"an {system}" if system[:1] in "aeiou" else f"a {system}"


def detect_system(headers: list[str]) -> str | None:
    """The system whose distinctive headers the file has most of (at least two)."""
    names = {normalise(h) for h in headers} | {normalise(h).replace(" ", "") for h in headers}
    scores = {system: len(names & set(known)) for system, known in SYSTEM_HEADERS.items()}
    best = max(scores, key=lambda s: scores[s])
    return best if scores[best] >= 2 else None


def _date_question(starts: list[str]) -> str | None:
    if not starts:
        return None
    decision = decide_order(enumerate(starts, start=2))
    if decision.order is None and decision.ambiguous is not None:
        _, value = decision.ambiguous
        return (
            f"Is {value!r} day-first or month-first? The first rows do not say: set "
            '[formats] start_at = "dayfirst" or "monthfirst" (or pass --dayfirst/--monthfirst).'
        )
    for number, value in enumerate(starts, start=2):
        zoned = split_zone_name(value)
        if zoned is not None:  # the mapping holds no zone: plan and run are told
            example = US_ZONES.get(zoned[1][0], "") if zoned[1][1:] in ("ST", "DT") else ""
            hint = f" (e.g. --timezone {example})" if example else ""
            return (
                f"Dates name the zone {zoned[1]!r} (row {number} {value!r}): pass "
                f"--timezone with the zone they are in to plan and run{hint}."
            )
    return None


def render_mapping(guess: MappingGuess, manifest: str) -> str:
    """The guess as a commented TOML mapping file.

    Column names and cell values come from the manifest and may hold anything (quotes,
    newlines, a whole ``key = "value"`` line): every value is written by ``tomli_w``, every
    name quoted in a comment is escaped, and the file must read back as meant.
    """
    lines = [
        f"# Mapping for {_comment_text(manifest)}, proposed by `importer init`: check every line.",
    ]
    if guess.source_system:
        lines.append(f"# The headers look like {_a(guess.source_system)} export.")
    lines += [
        '# [columns]: field = "column in the manifest", or a list of columns: start_at = '
        '["Date", "Time"] (joined with a space), participants = ["A", "B"] (everyone, each '
        'once), id = ["Meeting ID", "Start Time"] (the cells joined with "|").',
        "[columns]",
    ]
    for name in guess.fields:
        if name in guess.joined:
            names = ", ".join(_toml_string(c) for c in guess.joined[name])
            lines.append(f"{name} = [{names}]   # {JOINED_NOTES[name]}")
        elif name in guess.columns:
            note = "   # guessed from the header's words" if name in guess.guessed else ""
            if name in guess.doubts:
                note = f"   # check: {_comment_text(guess.doubts[name])}"
            lines.append(f"{name} = {_toml_string(guess.columns[name])}{note}")
        else:
            need = "required" if name in guess.required else "optional"
            why = f"; {_comment_text(guess.refused[name])}" if name in guess.refused else ""
            lines.append(f'# {name} = "..."   # not found ({need}{why})')
    lines += [
        "",
        "# [defaults]: used when a column is absent or a cell is blank.",
        "[defaults]",
    ]
    if "type" in guess.defaults:
        other = "MEETING" if guess.defaults["type"] == "CALL" else "CALL"
        lines.append(f'type = {_toml_string(guess.defaults["type"])}   # or "{other}"')
    if "source_system" in guess.defaults:
        lines.append(f"source_system = {_toml_string(guess.defaults['source_system'])}")
    elif "source_system" not in guess.columns:
        lines.append('# source_system = "salesforce"   # or pass --source-system')
    if "title" in guess.defaults:
        lines.append(f"title = {_toml_string(guess.defaults['title'])}   # no column holds a title")
    for name, table in guess.values.items():
        lines += ["", f"[values.{name}]"]
        lines += [f"{_toml_string(k)} = {_toml_string(v)}" for k, v in table.items()]
    if guess.skip_without_media:
        lines += [
            "",
            "# Some rows have no media URL (calls without a recording): skip them.",
            "[rows]",
            "skip_without_media = true",
        ]
    formats = guess.formats()
    question = _comment_text(guess.date_question or "") if guess.date_order is None else ""
    if formats or guess.naive or question:
        lines += [
            "",
            "# [formats]: how start_at is written, and the zone of times without an offset.",
            "[formats]" if formats else "# [formats]",
        ]
    if "start_at" in formats:
        lines.append(f"start_at = {_toml_string(formats['start_at'])}")
    elif question:
        lines.append("# " + question)
        if "day-first" in question:
            lines.append('# start_at = "monthfirst"')
    if "timezone" in formats:
        lines.append(f"timezone = {_toml_string(formats['timezone'])}")
    elif guess.naive:
        lines.append(
            '# timezone = "America/New_York"   # required: the times have no offset '
            "(importer init --timezone ZONE writes it)"
        )
    if guess.unused_columns:
        unused = ", ".join(_comment_text(name) for name in guess.unused_columns)
        lines += ["", "# Columns not used: " + unused]
    text = "\n".join(lines) + "\n"
    _check_reads_back(text, guess)
    return text


def _check_reads_back(text: str, guess: MappingGuess) -> None:
    """A guard: the file must hold exactly what was guessed, and nothing a header added."""
    data = tomllib.loads(text)
    defaults = {
        k: guess.defaults[k] for k in ("type", "source_system", "title") if k in guess.defaults
    }
    columns = {**guess.columns, **{k: list(v) for k, v in guess.joined.items()}}
    if (
        set(data) - {"columns", "defaults", "values", "rows", "formats"}
        or data.get("columns") != columns
        or data.get("defaults") != defaults
        or data.get("values", {}) != guess.values
        or data.get("formats", {}) != guess.formats()
    ):
        raise AssertionError("the mapping file would not read back as written")


FIELD_HINTS = {
    "id": "required: map it in [columns]",
    "title": "required: map it in [columns]",
    "media_url": "required: map it in [columns]",
    "start_at": "required: map it in [columns]",
    "source_system": "required: set [defaults] source_system or pass --source-system",
    "parent": "required: map the CRM's account id column in [columns], or set "
    '[defaults] parent = "ACC-..." (a DevRev account)',
}


def summary_lines(guess: MappingGuess, out: str) -> list[str]:
    """What ``importer init`` prints: mapped, guessed, defaults, refused, missing, questions."""
    lines = [f"Wrote {out}: {len(guess.columns)} field(s) mapped."]
    for name in guess.fields:
        if name in guess.joined:
            shown = " + ".join(repr(c) for c in guess.joined[name])
            lines.append(f"  mapped:  {name} <- {shown} ({JOINED_NOTES[name]})")
        elif name in guess.columns:
            kind = "guessed" if name in guess.guessed else "mapped"
            lines.append(f"  {kind + ':':<9}{name} <- {guess.columns[name]!r}")
    if "source_system" in guess.defaults:
        system = guess.defaults["source_system"]
        why = (
            f"the headers look like {_a(system)} export"
            if system == guess.source_system
            else "--source-system"
        )
        lines.append(f'  default: source_system = "{system}" ({why})')
    if "type" in guess.defaults:
        lines.append(
            f'  default: type = "{guess.defaults["type"]}" (no column holds CALL or MEETING)'
        )
    if "title" in guess.defaults:
        lines.append(
            f'  default: title = "{guess.defaults["title"]}" (no column holds a title: every '
            "row gets this one)"
        )
    for name, table in guess.values.items():
        pairs = ", ".join(f"{k} -> {v}" for k, v in table.items())
        lines.append(f"  values:  {name}: {pairs}")
    if guess.skip_without_media:
        lines.append(
            f"  rows:    {guess.skip_without_media} of the first rows have no media URL: "
            "skip_without_media = true (skipped, not invalid)"
        )
    for name, why in guess.refused.items():
        if name not in guess.columns:
            lines.append(f"  not used for {name}: {why}")
    lines += [f"  check:   {name} <- {doubt}" for name, doubt in guess.doubts.items()]
    needed = [*guess.required, "source_system"]  # source_system: unless --source-system
    required = [f for f in guess.unmapped_fields if f in FIELD_HINTS and f in needed]
    optional = [f for f in guess.unmapped_fields if f not in required]
    lines += [f"  missing: {name} ({FIELD_HINTS[name]})" for name in required]
    if optional:
        lines.append(f"  missing (optional): {', '.join(optional)}")
    if guess.date_question and guess.date_order is None:
        lines.append(f"  question: {guess.date_question}")
    if guess.naive and guess.timezone:
        lines.append(f'  formats: timezone = "{guess.timezone}" (the times have no offset)')
        lines += [f"           {line}" for line in zone_preview(guess, guess.timezone)]
    elif guess.naive:
        row, value = guess.naive[0]
        lines.append(
            f"  question: which time zone are the times in? They have no offset (row {row} "
            f"{value!r}), and plan and run refuse them until it is chosen: run init again "
            "with --timezone ZONE (e.g. America/New_York, or UTC), or set [formats] timezone"
        )
    if "id" not in guess.columns:
        shown = "; ".join(guess.id_candidates) or "none (no header names an id)"
        lines.append(
            "  problem: no column can be the id (every row needs the CRM's unique id); "
            f"candidates: {shown}. Set [columns] id, or a list of "
            'columns whose cells together are unique (id = ["Meeting ID", "Start Time"])'
        )
    if guess.unused_columns:
        lines.append(f"  columns not used: {', '.join(guess.unused_columns)}")
    lines += [f"  problem: {problem}" for problem in guess.problems]
    return lines


JOINED_NOTES = {
    "id": 'the id repeats: these cells, joined with "|", are unique',
    "start_at": "a date and a time, joined",
    "participants": "every person of these columns, in order, each once",
}


def zone_question(guess: MappingGuess) -> str:
    """What init asks when the times have no offset: the first of them, and the question."""
    shown = "\n".join(f"  row {number}: {value!r}" for number, value in guess.naive[:3])
    column = " + ".join(guess.joined.get("start_at") or (guess.columns["start_at"],))
    return (
        f"The times in {column!r} have no offset:\n{shown}\nWhich time zone are they in? "
        "(an IANA name: America/New_York, Europe/London, UTC...)"
    )


def zone_preview(guess: MappingGuess, timezone: str, rows: int = 3) -> list[str]:
    """A few of the first rows' times as they would land: in ``timezone`` and in UTC."""
    style = DateStyle(order=guess.date_order) if guess.date_order else None
    lines = []
    for number, value in guess.naive[:rows]:
        try:
            sent = parse_start_at(value, timezone, style or _style_of(guess))
        except InvalidCell as error:
            lines.append(f"row {number}: {value!r}: {error}")
            continue
        local = dt.datetime.fromisoformat(sent).astimezone(ZoneInfo(timezone))
        lines.append(
            f"row {number}: {value!r} -> {local:%Y-%m-%d %H:%M:%S} {timezone} = "
            f"{sent.replace('+00:00', 'Z')} UTC"
        )
    return lines


def _style_of(guess: MappingGuess) -> DateStyle:
    """The first rows' own date order, when they settle one."""
    decision = decide_order(guess.naive)
    return DateStyle(order=decision.order or MONTHFIRST)


def _toml_string(value: str) -> str:
    """``value`` as a TOML basic string, escaped by a real TOML writer."""
    return tomli_w.dumps({"v": value})[len("v = ") :].rstrip("\n")


def _comment_text(text: str) -> str:
    """Text for a comment line: as is when plain, else quoted with escapes (no line break)."""
    return text if text.isprintable() else _toml_string(text)
