"""Which external ids ``reconcile`` asks a looking-up target (DevRev) about.

The ledger's rows alone miss engagements made for rows the ledger never sent: rows it
rejected (invalid, or a duplicate of another row) and manifest rows it never recorded (a
row added after the run, a run stopped before reaching it). A remote engagement under one
of those refs is one the ledger does not know. So the scope is the ledger's rows, its
rejected rows' refs, and every ref the manifest yields, valid or not, mapped as its last
run mapped it: ``--manifest``, else the last run's manifest when that file is still there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from importer.ledger import Ledger
from importer.reading import mapped_batches
from importer.settings import ImportSettings

IMPORT_COMMANDS = ("run", "retry")


@dataclass
class Scope:
    """The refs beyond the ledger's own rows, and the manifest they came from."""

    refs: list[str] = field(default_factory=list)
    manifest: Path | None = None
    note: str | None = None
    """Why no manifest was read (the last run's manifest is gone), for the summary."""


def last_manifest(ledger: Ledger) -> str | None:
    """The manifest of the ledger's last ``run`` or ``retry``, as recorded."""
    for run in ledger.recent_runs(limit=50):
        if run["command"] in IMPORT_COMMANDS and run["manifest"]:
            return str(run["manifest"])
    return None


def manifest_refs(ledger: Ledger, manifest: Path) -> list[str]:
    """Every external id the manifest yields, invalid and duplicate rows included."""
    recorded = ledger.last_settings(str(manifest.resolve()))
    settings = ImportSettings.from_record(manifest, recorded)
    refs: dict[str, None] = {}
    for batch in mapped_batches(
        manifest, settings.mapping, settings.batch_size, None, settings.source
    ):
        refs.update((row.external_id, None) for row in batch if row.external_id)
    return list(refs)


def reconcile_scope(ledger: Ledger, manifest: Path | None) -> Scope:
    """The rejected rows' refs and the manifest's (``manifest`` or the last run's)."""
    scope = Scope(refs=ledger.rejected_external_ids())
    if manifest is None:
        recorded = last_manifest(ledger)
        if recorded is None:
            return scope
        if not Path(recorded).is_file():
            scope.note = f"the last run's manifest {recorded} is gone: pass --manifest"
            return scope
        manifest = Path(recorded)
    scope.manifest = manifest
    scope.refs = list(dict.fromkeys([*scope.refs, *manifest_refs(ledger, manifest)]))
    return scope
