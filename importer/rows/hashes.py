"""Hashes the ledger keeps: of a whole payload, per field, and of a contact set.

Stable across runs and machines (canonical JSON, SHA-256), so a row hashes the same
tomorrow if it has not changed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> str:
    """Stable JSON text: the same payload always hashes the same."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode("utf-8", "surrogatepass")).hexdigest()


def payload_hash(payload: dict[str, Any]) -> str:
    """The hash the ledger keeps of what was (or will be) sent."""
    return _digest(payload)


def field_hashes(payload: dict[str, Any]) -> dict[str, str]:
    """A short hash per field, so a changed row can say which fields differ."""
    return {name: _digest(value)[:16] for name, value in sorted(payload.items())}


def contacts_hash(contact_ids: tuple[str, ...]) -> str:
    """Order-free hash of a contact set."""
    return _digest(sorted(set(contact_ids)))
