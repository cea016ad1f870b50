"""What needs attention, grouped by what there is to fix. Pure.

A thousand bad dates are one problem, not a thousand: rows the importer rejected are
grouped by the rules they break and the columns (``start_at: date_time``), rows the server
refused by its status and the fields and codes it named (``HTTP 422 media_url: invalid``),
each group with its count and one example to read. ``status`` and ``summary.md`` show these.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from importer.ledger import Ledger


@dataclass(frozen=True)
class ErrorGroup:
    """Rows that break the same rule: how many, and the first of them."""

    rule: str
    count: int
    example: str
    """``row 2: start_at: ...``: the first row's message."""

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "count": self.count, "example": self.example}


def failure_rule(http_status: int | None, field_errors: str | None, message: str | None) -> str:
    """The group of a refused row: the status, and the fields and codes the server named."""
    named: list[str] = []
    try:
        errors = json.loads(field_errors) if field_errors else []
    except ValueError:
        errors = []
    if isinstance(errors, list):
        named = sorted(
            {
                f"{e.get('field', '?')}: {e.get('code', '?')}"
                for e in errors
                if isinstance(e, Mapping)
            }
        )
    if http_status:
        return " ".join([f"HTTP {http_status}", ", ".join(named)]).strip()
    text = (message or "(no message)").split(" (", 1)[0]
    return text[:80]


def group_errors(
    rejected: Iterable[Mapping[str, Any]], failed: Iterable[Mapping[str, Any]], limit: int = 10
) -> list[ErrorGroup]:
    """The most frequent problems, largest first.

    ``rejected``: (rule, n, first_row, reason) per rule; ``failed``: (http_status,
    error_errors, n, first_row, error_message) per distinct answer.
    """
    groups: dict[str, tuple[int, int, str]] = {}

    def add(rule: str, count: int, first_row: int, message: str) -> None:
        total, row, example = groups.get(rule, (0, first_row, message))
        if first_row < row:
            row, example = first_row, message
        groups[rule] = (total + count, row, example)

    for item in rejected:
        add(item["rule"], item["n"], item["first_row"], item["reason"] or "")
    for item in failed:
        rule = failure_rule(item["http_status"], item["error_errors"], item["error_message"])
        add(rule, item["n"], item["first_row"], item["error_message"] or "")
    ordered = sorted(groups.items(), key=lambda kv: (-kv[1][0], kv[0]))
    return [
        ErrorGroup(rule, count, f"row {row}: {example}")
        for rule, (count, row, example) in ordered[:limit]
    ]


def top_errors(ledger: Ledger, limit: int = 10) -> list[ErrorGroup]:
    """The most frequent problems, grouped by rule and column (or the server's answer)."""
    return group_errors(*ledger.error_tallies(), limit)
