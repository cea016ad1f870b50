"""``importer status``: what the ledger says, for people and for machines."""

from __future__ import annotations

import json
from typing import Any

from importer.ledger import Ledger
from importer.outcomes import format_counts, rows_done
from importer.report.attention import top_errors


def ledger_status(ledger: Ledger, runs: int = 5) -> dict[str, Any]:
    """Counts by status, frequent errors, recent runs and changed rows, as plain data."""
    changed_total, changed_sample = ledger.changed_rows()
    contacts_total, contacts_sample = ledger.contacts_failures()
    recent = []
    for run in ledger.recent_runs(runs):
        counts = json.loads(run["counts"] or "{}")
        done = rows_done(counts)
        seconds = run["seconds"] or 0.0
        recent.append(
            {
                "id": run["id"],
                "command": run["command"],
                "manifest": run["manifest"],
                "started_at": run["started_at"],
                "seconds": seconds,
                "rows_per_second": round(done / seconds, 1) if seconds else None,
                "outcome": run["outcome"],
                "exit_code": run["exit_code"],
                "counts": counts,
            }
        )
    return {
        "ledger": str(ledger.path),
        "counts": {k: v for k, v in ledger.status_counts().items() if v},
        "failed": ledger.failed_split(),
        "processing": ledger.processing_counts(),
        "found_by": ledger.found_by_counts(),
        "top_errors": [group.as_dict() for group in top_errors(ledger)],
        "changed_since_import": {
            "count": changed_total,
            "examples": [{"external_id": e, "fields": f} for e, f in changed_sample],
        },
        "contacts_not_applied": {
            "count": contacts_total,
            "examples": [{"external_id": e, "error": m} for e, m in contacts_sample],
        },
        "runs": recent,
    }


def status_text(status: dict[str, Any]) -> str:
    """The same, as a few readable blocks."""
    parts = [format_counts(status["counts"], f"Ledger {status['ledger']}:")]
    failed = status["failed"]
    if failed["transient"] or failed["permanent"]:
        parts.append(
            f"  (failed: {failed['transient']:,} transient, retried by `importer retry`; "
            f"{failed['permanent']:,} permanent)"
        )
    if status["found_by"].get("lookup"):
        parts.append(format_counts(status["found_by"], "Found by (the check that found them):"))
    if status["processing"]:
        parts.append(format_counts(status["processing"], "Processing status (from `verify`):"))
    changed = status["changed_since_import"]
    if changed["count"]:
        parts.append(f"Changed since import: {changed['count']:,} row(s), e.g.")
        parts += [f"  {e['external_id']}: {e['fields']}" for e in changed["examples"]]
    contacts = status["contacts_not_applied"]
    if contacts["count"]:
        parts.append(f"Contacts not applied: {contacts['count']:,} engagement(s), e.g.")
        parts += [f"  {e['external_id']}: {e['error']}" for e in contacts["examples"]]
    if status["top_errors"]:
        parts.append("Most frequent errors:")
        parts += [
            f"  {e['count']:>7,}  {e['rule']} (e.g. {e['example']})" for e in status["top_errors"]
        ]
    if status["runs"]:
        parts.append("Last runs:")
        for run in status["runs"]:
            speed = f"{run['rows_per_second']:.1f} rows/s" if run["rows_per_second"] else "-"
            code = "" if run["exit_code"] is None else f" (exit {run['exit_code']})"
            parts.append(
                f"  #{run['id']} {run['command']} {run['manifest'] or '(every manifest)'} "
                f"{run['started_at']} {run['seconds'] or 0:.1f} s {speed} {run['outcome']}{code}"
            )
    return "\n".join(parts)
