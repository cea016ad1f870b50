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
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

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
    parse_start_at,
    split_zone_name,
)
from importer.rows.mapping import FIELDS, REQUIRED_FIELDS, tomllib
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


# Header words that make a column a guess for a field when no synonym matched.
GUESS_WORDS = {
    "id": ("id",),
    "title": ("title", "subject", "name"),
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
    defaults: dict[str, str] = {}
    system = detect_system(headers)
    if "type" not in columns:
        defaults["type"] = SYSTEM_TYPES.get(system or "", "CALL")
    if system and "source_system" not in columns:
        defaults["source_system"] = system
    if "title" not in columns and "title" not in refused:  # a refused column needs a look
        defaults["title"] = default_title(system, defaults.get("type"))
    unmapped = [f for f in fields if f not in columns and f not in defaults]
    unused = [h for h in headers if h not in used]
    question = _date_question(columns.get("start_at"), rows)
    media = columns.get("media_url")
    blank_media = sum(1 for r in rows if media and not r.get(media, "").strip())
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
        fields=fields,
        required=required,
    )


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


def _date_question(column: str | None, rows: list[dict[str, str]]) -> str | None:
    if column is None:
        return None
    decision = decide_order((n, r.get(column, "")) for n, r in enumerate(rows, start=2))
    if decision.order is None and decision.ambiguous is not None:
        _, value = decision.ambiguous
        return (
            f"Is {value!r} day-first or month-first? The first rows do not say: set "
            '[formats] start_at = "dayfirst" or "monthfirst" (or pass --dayfirst/--monthfirst).'
        )
    for number, row in enumerate(rows, start=2):
        zoned = split_zone_name(row.get(column, ""))
        if zoned is not None:  # the mapping holds no zone: plan and run are told
            example = US_ZONES.get(zoned[1][0], "") if zoned[1][1:] in ("ST", "DT") else ""
            hint = f" (e.g. --timezone {example})" if example else ""
            return (
                f"Dates name the zone {zoned[1]!r} (row {number} {row[column].strip()!r}): pass "
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
    lines += ['# [columns]: field = "column in the manifest".', "[columns]"]
    for name in guess.fields:
        if name in guess.columns:
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
    if guess.date_question:
        question = _comment_text(guess.date_question)
        lines += ["", "# " + question]
        if "day-first" in question:
            lines += ["# [formats]", '# start_at = "monthfirst"']
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
    if (
        set(data) - {"columns", "defaults", "values", "rows"}
        or data.get("columns") != guess.columns
        or data.get("defaults") != defaults
        or data.get("values", {}) != guess.values
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
        if name in guess.columns:
            kind = "guessed" if name in guess.guessed else "mapped"
            lines.append(f"  {kind + ':':<9}{name} <- {guess.columns[name]!r}")
    if "source_system" in guess.defaults:
        lines.append(
            f'  default: source_system = "{guess.defaults["source_system"]}" (the headers look '
            f"like {_a(guess.defaults['source_system'])} export)"
        )
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
    if guess.date_question:
        lines.append(f"  question: {guess.date_question}")
    if guess.unused_columns:
        lines.append(f"  columns not used: {', '.join(guess.unused_columns)}")
    lines += [f"  problem: {problem}" for problem in guess.problems]
    return lines


def _toml_string(value: str) -> str:
    """``value`` as a TOML basic string, escaped by a real TOML writer."""
    return tomli_w.dumps({"v": value})[len("v = ") :].rstrip("\n")


def _comment_text(text: str) -> str:
    """Text for a comment line: as is when plain, else quoted with escapes (no line break)."""
    return text if text.isprintable() else _toml_string(text)
