"""Hashes the ledger keeps: of a whole payload, per field, and of a contact set.

Stable across runs and machines (canonical JSON, SHA-256), so a row hashes the same
tomorrow if it has not changed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson


def canonical_json(value: Any) -> str:
    """Stable JSON text: the same payload always hashes the same."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def canonical_bytes(value: Any) -> bytes:
    """``canonical_json`` as UTF-8 (lone surrogates passed through), made by orjson when
    orjson writes the same text: for text, integers, booleans, lists and objects. Floats
    (written otherwise: ``1e-8``), what orjson refuses (lone surrogates, integers past 64
    bits, keys that are not text) and ``null`` (NaN's spelling in orjson) are left to
    the standard encoder; a payload almost never holds them."""
    if not _has_float(value):
        try:
            text = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except (TypeError, orjson.JSONEncodeError):
            text = b"null"
        if b"null" not in text:
            return text
    return canonical_json(value).encode("utf-8", "surrogatepass")


def _has_float(value: Any) -> bool:
    kind = type(value)
    if kind is dict:
        value = value.values()
    elif kind is not list and kind is not tuple:
        return isinstance(value, float)
    for item in value:  # text and booleans, nearly every item, are passed over here
        kind = type(item)
        if kind is not str and kind is not bool and _has_float(item):
            return True
    return False


def _digest(value: Any) -> str:
    return hashlib.sha256(canonical_bytes(value)).hexdigest()


def payload_hash(payload: dict[str, Any]) -> str:
    """The hash the ledger keeps of what was (or will be) sent."""
    return _digest(payload)


def text_payload_hash(payload: dict[str, Any]) -> str:
    """``payload_hash`` of a payload of text and booleans alone, as every create request
    ``map_row`` builds is (``check_participants`` keeps only a person's text and
    ``is_owner``): orjson writes it as ``canonical_json`` does, with no walk for floats."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def field_hashes(payload: dict[str, Any]) -> dict[str, str]:
    """A short hash per field, so a changed row can say which fields differ."""
    return {name: _digest(value)[:16] for name, value in sorted(payload.items())}


def contacts_hash(contact_ids: tuple[str, ...]) -> str:
    """Order-free hash of a contact set."""
    return _digest(sorted(set(contact_ids)))
