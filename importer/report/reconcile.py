"""Which external ids ``reconcile`` asks a looking-up target (DevRev) about.

The ledger's rows alone miss engagements made for rows the ledger never sent: rows it
rejected (invalid, or a duplicate of another row) and manifest rows it never recorded (a
row added after the run, a run stopped before reaching it). A remote engagement under one
of those refs is one the ledger does not know. So the scope is the ledger's rows, its
rejected rows' refs, and every ref the manifest yields, valid or not, mapped as its last
run mapped it: ``--manifest``, else the last run's manifest when that file is still there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from importer.errors import (
    EXIT_OK,
    EXIT_ROWS_FAILED,
    ApiError,
    FatalError,
    PermanentError,
    RunAborted,
)
from importer.ledger import Ledger
from importer.outcomes import FINAL_SUCCESS
from importer.plan.passes import mapped_batches
from importer.send.retry import retry_policy
from importer.settings import DEFAULT_CONCURRENCY, RetrySettings
from importer.targets.base import Lookup, Target
from importer.targets.registry import recorded_import_settings

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
    settings = recorded_import_settings(manifest, recorded)
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


LOOKUP_CHUNK = 500
"""external ids handed to one ``lookup`` call (the target splits them further)."""


@dataclass(frozen=True)
class Finding:
    """One disagreement between the ledger and the target."""

    kind: str
    external_id: str
    ledger_id: str | None
    remote_ids: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for people."""
        remote = ", ".join(self.remote_ids) or "none"
        if self.kind == "missing":
            return f"{self.external_id}: the ledger records {self.ledger_id}; the target has none"
        if self.kind == "unknown":
            return f"{self.external_id}: the target holds {remote}; the ledger records none"
        if self.kind == "duplicate":
            return f"{self.external_id}: the target holds {len(self.remote_ids)}: {remote}"
        return f"{self.external_id}: the ledger records {self.ledger_id}; the target holds {remote}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "external_id": self.external_id,
            "ledger_id": self.ledger_id,
            "remote_ids": list(self.remote_ids),
        }


@dataclass
class ReconcileResult:
    """What was compared and every disagreement found."""

    checked: int = 0
    method: str = ""
    """``lookup`` (by external id) or ``get`` (by engagement id)."""
    findings: list[Finding] = field(default_factory=list)
    note: str | None = None
    """What limited the comparison (e.g. the last run's manifest is gone)."""

    @property
    def agrees(self) -> bool:
        return not self.findings

    @property
    def exit_code(self) -> int:
        """1 when anything disagrees."""
        return EXIT_OK if self.agrees else EXIT_ROWS_FAILED

    def counts(self) -> dict[str, int]:
        kinds = ("missing", "unknown", "duplicate", "mismatched")
        return {kind: sum(f.kind == kind for f in self.findings) for kind in kinds}

    def lines(self, limit: int = 50) -> list[str]:
        """What a person reads: the verdict, the counts, the first findings."""
        how = "looked up by external id" if self.method == "lookup" else "read by engagement id"
        head = f"Reconcile: {self.checked:,} row(s) {how}"
        said = [f"  note: {self.note}"] if self.note else []
        if self.agrees:
            return [f"{head}; the ledger and the target agree.", *said]
        counts = ", ".join(f"{n:,} {kind}" for kind, n in self.counts().items() if n)
        lines = [f"{head}; they disagree: {counts}.", *said]
        lines += [f"  {f.kind}: {f.describe()}" for f in self.findings[:limit]]
        if len(self.findings) > limit:
            lines.append(f"  ... and {len(self.findings) - limit:,} more (--json lists all)")
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "method": self.method,
            "agrees": self.agrees,
            "counts": self.counts(),
            "findings": [f.as_dict() for f in self.findings],
            "note": self.note,
        }


async def reconcile(
    ledger: Ledger,
    target: Target,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    retry: RetrySettings | None = None,
    extra_refs: Callable[[], Sequence[str]] = tuple,
) -> ReconcileResult:
    """Compare every row the ledger knows (and ``extra_refs()``, asked only when the target
    looks up by external id) with the target; see the module docstring."""
    settings = retry or RetrySettings()
    rows = list(ledger.known_rows())
    result = ReconcileResult(checked=len(rows), method="lookup")
    remote: Lookup = {}
    for start in range(0, max(len(rows), 1), LOOKUP_CHUNK):
        chunk = [r["external_id"] for r in rows[start : start + LOOKUP_CHUNK]]
        found = await _lookup(target, chunk, settings)
        if found is None:  # create is idempotent here: read each recorded id instead
            imported = [r for r in rows if r["status"] in FINAL_SUCCESS and r["engagement_id"]]
            result.checked, result.method = len(imported), "get"
            result.findings = await _by_get(target, imported, concurrency, settings)
            return result
        remote.update(found)
    known = {r["external_id"] for r in rows}
    unrecorded = [
        {"external_id": ref, "engagement_id": None, "status": None}
        for ref in dict.fromkeys(extra_refs())
        if ref not in known
    ]
    for start in range(0, len(unrecorded), LOOKUP_CHUNK):
        chunk = [r["external_id"] for r in unrecorded[start : start + LOOKUP_CHUNK]]
        remote.update(await _lookup(target, chunk, settings) or {})
    result.checked += len(unrecorded)
    result.findings = compare([*rows, *unrecorded], remote)
    return result


def compare(rows: Iterable[dict[str, Any]], remote: Lookup) -> list[Finding]:
    """The findings for ledger rows against what a lookup found. Pure."""
    findings = []
    for row in rows:
        external_id, ledger_id = row["external_id"], row["engagement_id"]
        imported = row["status"] in FINAL_SUCCESS
        held = tuple(e.engagement_id for e in remote.get(external_id, []))
        if len(held) > 1:
            findings.append(Finding("duplicate", external_id, ledger_id, held))
        elif imported and not held:
            findings.append(Finding("missing", external_id, ledger_id))
        elif held and not imported:
            findings.append(Finding("unknown", external_id, None, held))
        elif held and held[0] != ledger_id:
            findings.append(Finding("mismatched", external_id, ledger_id, held))
    return findings


async def _lookup(
    target: Target, external_ids: list[str], settings: RetrySettings
) -> Lookup | None:
    try:
        async for attempt in retry_policy(settings):
            with attempt:
                return await target.lookup(external_ids)
    except FatalError:
        raise
    except ApiError as error:
        raise RunAborted(f"reconcile could not look rows up ({error}); try again later") from None
    raise AssertionError("unreachable: the policy returns or raises")  # pragma: no cover


async def _by_get(
    target: Target, rows: list[dict[str, Any]], concurrency: int, settings: RetrySettings
) -> list[Finding]:
    semaphore = asyncio.Semaphore(concurrency)

    async def check(row: dict[str, Any]) -> Finding | None:
        async with semaphore:
            try:
                async for attempt in retry_policy(settings):
                    with attempt:
                        got = await target.get(row["engagement_id"], etag=row["etag"])
            except PermanentError as error:
                if error.status == 404:
                    return Finding("missing", row["external_id"], row["engagement_id"])
                raise
            except FatalError:
                raise
            except ApiError as error:
                raise RunAborted(
                    f"reconcile could not read {row['engagement_id']} ({error}); try again later"
                ) from None
            body = got.body or {}
            said = body.get("external_id")
            if said is not None and said != row["external_id"]:
                return Finding("mismatched", row["external_id"], row["engagement_id"], (str(said),))
            return None

    checked = await asyncio.gather(*(check(r) for r in rows))
    return [finding for finding in checked if finding is not None]
