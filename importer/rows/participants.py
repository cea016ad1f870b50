"""Participants as exports write them, read into the API's ``[{name, email, ...}]``.

    >>> parse_participants("Ana Ng (ana@acme.com), Ben Wu")
    [{'name': 'Ana Ng', 'email': 'ana@acme.com'}, {'name': 'Ben Wu'}]
    >>> parse_participants("Ana Ng <ana@acme.com>; bo@acme.com")
    [{'name': 'Ana Ng', 'email': 'ana@acme.com'}, {'email': 'bo@acme.com'}]

Also a JSON list of objects or of such strings, which is what a Parquet or ``.xlsx`` list
column (of strings or of structs) arrives as. People are separated by ``;`` or a new line;
by ``,`` only when that cannot split a name (``Ng, Ana <ana@acme.com>`` must use ``;``).
Every error names the participant: ``participant 2 ('Ben <ben@acme>'): 'ben@acme' is not a
valid email address``.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from importer.errors import InvalidCell
from importer.rows import contract
from importer.rows.cells import LONE_SURROGATE

ANGLE = re.compile(r'^\s*"?(?P<name>[^<>"]*?)"?\s*<\s*(?P<email>[^<>]*?)\s*>\s*$')
PAREN = re.compile(r"^\s*(?P<name>[^()]*?)\s*\(\s*(?P<email>[^()\s]+@[^()\s]+)\s*\)\s*$")
BARE_NUMBER = re.compile(r"\d{1,6}(?:[.,]\d+)?")
"""A name that is only a small number: a head count or a duration mapped as people (a phone
number, longer or with a +, is left alone)."""
# Struct fields that exports use for the API's names.
FIELD_ALIASES = {
    "name": ("name", "full_name", "fullName", "display_name", "displayName"),
    "email": ("email", "emailAddress", "email_address", "mail"),
    "phone": ("phone", "phoneNumber", "phone_number"),
    "is_owner": ("is_owner", "isOwner", "owner"),
}


def parse_participants(text: str) -> list[dict[str, Any]]:
    """The cell's participants, checked; ``InvalidCell`` names the one that is wrong."""
    value = text.strip()
    if not value:
        return []
    plain = _plain_people(value)
    if plain is not None:
        return plain
    if value.startswith("["):
        try:
            items = json.loads(value)
        except json.JSONDecodeError as error:
            raise InvalidCell(
                f"starts like JSON but is not valid JSON ({error.msg} at character {error.pos})"
            ) from None
        except (ValueError, RecursionError):
            # Numbers past int's digit limit, or nesting deeper than the parser goes.
            raise InvalidCell("starts like JSON but cannot be read as JSON") from None
        if not isinstance(items, list):
            raise InvalidCell("must be a JSON list of objects")
        return check_participants([_from_json(item) for item in items])
    if value.startswith("{"):
        raise InvalidCell("must be a JSON list of objects ([{...}]), not a single object")
    return check_participants([_from_text(part) for part in split_people(value)])


_EMAIL = r'[^@\s<>(),;:"]+@[^@\s<>(),;:"]+\.[^@\s<>(),;:"]+'  # EMAIL_PATTERN's
PLAIN_PERSON = re.compile(
    rf'\s*(?:(?P<name>[^<>"()\[\]{{}};,@]*)<(?P<email>{_EMAIL})>|(?P<bare>{_EMAIL}))\s*'
)
"""``Ana Ng <ana@acme.com>`` or ``ana@acme.com``: how most cells write a person."""


def _plain_people(value: str) -> list[dict[str, Any]] | None:
    """People written plainly (printable, ``;`` between them, no comma, quote or JSON),
    read with one match each; None for anything the general reading must judge (the same
    result: ``tests/test_columnar.py`` holds them equal)."""
    if value[0] in "[{" or not value.isprintable():
        return None
    people = []
    for part in value.split(";"):
        person = _plain_person(part)
        if person is None:
            return None
        name, email = person
        people.append({"name": name, "email": email} if name else {"email": email})
    return people


@functools.lru_cache(maxsize=1024)
def _plain_person(part: str) -> tuple[str, str] | None:
    """``(name, email)`` of one plainly written person (the name may be blank); None if
    the part is not plain. Cached: the same people recur row after row. A small cache: a
    large one of people seen once each (most customers) cost a worker 1-2 µs a row in
    memory it misses; the people who recur (the company's own) stay in a small one."""
    match = PLAIN_PERSON.fullmatch(part)
    if match is None:
        return None
    # The name is read greedily (a third of the time of a lazy match), then its spaces cut.
    return (match["name"] or "").rstrip(), match["email"] or match["bare"]


def split_people(value: str) -> list[str]:
    """The cell cut into one string per person."""
    parts = [p for p in re.split(r"[;\n]", value) if p.strip()]
    if len(parts) > 1 or "," not in value:
        return parts
    pieces = _split_outside(value, ",")
    if len(pieces) == 1:
        return pieces
    has_address = any("@" in piece for piece in pieces)
    lone_words = [p for p in pieces if "@" not in p and len(p.split()) == 1]
    if has_address and lone_words:
        raise InvalidCell(
            f"{value!r} cannot be split at its commas: {lone_words[0].strip()!r} may be part "
            "of a name ('Ng, Ana <ana@acme.com>'); separate people with ';'"
        )
    return pieces


def _split_outside(value: str, separator: str) -> list[str]:
    parts, depth, quoted, start = [], 0, False, 0
    for index, ch in enumerate(value):
        if ch == '"':
            quoted = not quoted
        elif ch in "<(" and not quoted:
            depth += 1
        elif ch in ">)" and not quoted:
            depth = max(0, depth - 1)
        elif ch == separator and depth == 0 and not quoted:
            parts.append(value[start:index])
            start = index + 1
    parts.append(value[start:])
    return [p for p in parts if p.strip()]


def _from_text(part: str) -> Any:
    match = ANGLE.match(part) or PAREN.match(part)
    if match:
        name, email = match.group("name").strip().strip('"'), match.group("email").strip()
    elif "@" in part:
        name, email = "", part.strip()
    else:
        name, email = part.strip(), ""
    item: dict[str, Any] = {"_source": part.strip()}
    if name:
        item["name"] = name
    if email:
        item["email"] = email
    return item


def _from_json(item: Any) -> Any:
    if isinstance(item, str):
        return _from_text(item)
    if not isinstance(item, dict):
        return item
    known = {alias for aliases in FIELD_ALIASES.values() for alias in aliases}
    result = {k: v for k, v in item.items() if k not in known}
    for name, aliases in FIELD_ALIASES.items():
        for alias in aliases:
            if item.get(alias) is not None:
                result[name] = item[alias]
                break
    return result


def merge_people(groups: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """People of several columns, in order, each once (by email, else by name); a person
    met again lends the first mention a name or email it lacked."""
    merged: dict[str, dict[str, Any]] = {}
    for person in (p for group in groups for p in group):
        key = (person.get("email") or person.get("name") or "").casefold()
        by_email = person.get("email", "").casefold()
        same = merged.get(key) or next(
            (m for m in merged.values() if by_email and m.get("email", "").casefold() == by_email),
            None,
        )
        if same is None:
            merged[key] = dict(person)
        else:
            for name, value in person.items():
                same.setdefault(name, value)
    return list(merged.values())


def _label(index: int, item: dict[str, Any]) -> str:
    """How an error names a participant: built only when there is an error to say."""
    source = item.get("_source")
    return f"participant {index}" + (f" ({source!r})" if isinstance(source, str) else "")


def check_participants(items: list[Any]) -> list[dict[str, Any]]:
    """The API's rules for each participant, with the participant named in every error."""
    owners = 0
    result = []
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise InvalidCell(f"participant {index} is not an object")
        name, email = item.get("name"), item.get("email")
        if name is not None and not isinstance(name, str):
            raise InvalidCell(f"{_label(index, item)}: name must be text")
        if email is not None and not isinstance(email, str):
            raise InvalidCell(f"{_label(index, item)}: email must be text")
        phone, owner = item.get("phone"), item.get("is_owner")
        if phone is not None and (isinstance(phone, bool) or not isinstance(phone, str | int)):
            raise InvalidCell(f"{_label(index, item)}: phone must be text")
        if owner is not None and not isinstance(owner, bool):
            raise InvalidCell(f"{_label(index, item)}: is_owner must be true or false")
        if any(isinstance(v, str) and LONE_SURROGATE.search(v) for v in (name, email, phone)):
            raise InvalidCell(f"{_label(index, item)} has an unpaired \\u escape (not Unicode)")
        name, email = (name or "").strip(), (email or "").strip()
        if not name and not email:
            raise InvalidCell(f"{_label(index, item)} has neither a name nor an email")
        if not email and BARE_NUMBER.fullmatch(name):
            raise InvalidCell(
                f"{_label(index, item)} is a bare number, not a person (is the column a head "
                "count?): participants are names or emails"
            )
        if email and not contract.check_email(email):
            raise InvalidCell(f"{_label(index, item)}: {email!r} is not a valid email address")
        clean: dict[str, Any] = {}
        if name:
            clean["name"] = name
        if email:
            clean["email"] = email
        if phone not in (None, ""):
            clean["phone"] = str(phone)
        if owner is True:
            owners += 1
            clean["is_owner"] = True
        result.append(clean)
    if owners > 1:
        raise InvalidCell("more than one participant has is_owner: true")
    return result
