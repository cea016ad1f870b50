"""Runs a command end to end: ledger lock, run record, target, reporter, summary.

The CLI gathers options into settings and calls one function here; everything that
opens files or sockets for a command starts and ends in this module.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from importer.config import recordable_options
from importer.errors import EXIT_INTERRUPTED, ImporterError
from importer.events import Reporter
from importer.ledger import open_ledger
from importer.pipeline import RunSummary, run_import
from importer.reconcile import ReconcileResult, reconcile
from importer.settings import ImportSettings
from importer.targets.askelephant import AskElephantTarget, build_timeout, check_base_url
from importer.targets.base import Target
from importer.targets.registry import DEFAULT_TARGET, TargetKind
from importer.verify import VerifyResult, VerifySettings, verify

TargetFactory = Callable[[], Target]
T = TypeVar("T")


def askelephant_factory(
    base_url: str, api_key: str, *, concurrency: int, read_timeout: float
) -> TargetFactory:
    """A factory for the AskElephant target; builds (and checks the URL) up front."""
    from importer.targets.askelephant import check_base_url

    checked = check_base_url(base_url)

    def build() -> Target:
        return AskElephantTarget(
            checked,
            api_key,
            timeout=build_timeout(read_timeout),
            max_connections=max(concurrency, 1),
        )

    return build


def target_factory(
    kind: TargetKind, base_url: str, api_key: str, *, concurrency: int, read_timeout: float
) -> TargetFactory:
    """A factory for any target; the base URL is checked up front, before any work."""
    checked = check_base_url(base_url, example=kind.default_base_url)
    return lambda: kind.build(checked, api_key, concurrency, read_timeout)


def import_manifest(
    settings: ImportSettings,
    *,
    ledger_path: Path,
    target_factory: TargetFactory,
    reporter: Reporter,
    command: str,
    options: dict[str, Any],
    target: str = DEFAULT_TARGET,
) -> RunSummary:
    """``importer run`` and ``importer retry``: one locked, recorded run of the pipeline."""
    with open_ledger(ledger_path, exclusive=True) as ledger:
        ledger.claim_target(target)
        recorded = recordable_options(options)
        run_id = ledger.start_run(command, str(settings.manifest.resolve()), recorded)
        reporter.run_started(command, recorded, str(settings.manifest))
        started = time.monotonic()
        outcome, exit_code, counts = "error", 2, {}
        try:
            summary = asyncio.run(
                _with_target(
                    target_factory,
                    lambda target: run_import(settings, ledger, target, reporter, run_id),
                )
            )
            counts, exit_code = dict(summary.counts), summary.exit_code
            outcome = run_outcome(summary)
        except KeyboardInterrupt:
            outcome, exit_code = "interrupted", EXIT_INTERRUPTED
            raise
        except ImporterError as error:
            exit_code = error.exit_code
            raise
        finally:
            ledger.finish_run(run_id, outcome, exit_code, counts, time.monotonic() - started)
        reporter.run_finished({"run_id": run_id, **summary.as_dict()})
        return summary


def run_outcome(summary: RunSummary) -> str:
    """For the runs table: ok, rows need attention, aborted or interrupted."""
    if summary.exit_code == EXIT_INTERRUPTED:
        return "interrupted"
    if summary.stop_reason:
        return "aborted"
    return "ok" if summary.exit_code == 0 else "rows need attention"


async def _with_target(target_factory: TargetFactory, use: Callable[[Target], Awaitable[T]]) -> T:
    """Open a target, use it, close its connections whatever happens."""
    target = target_factory()
    try:
        return await use(target)
    finally:
        await target.aclose()


def verify_ledger(
    ledger_path: Path,
    target_factory: TargetFactory,
    settings: VerifySettings,
    reporter: Reporter,
    target: str = DEFAULT_TARGET,
) -> VerifyResult:
    """``importer verify``: GET every imported engagement, record processing_status."""
    with open_ledger(ledger_path, exclusive=True) as ledger:
        ledger.claim_target(target)
        return asyncio.run(
            _with_target(target_factory, lambda target: verify(ledger, target, settings, reporter))
        )


def reconcile_ledger(
    ledger_path: Path,
    target_factory: TargetFactory,
    *,
    concurrency: int = 8,
    target: str = DEFAULT_TARGET,
) -> ReconcileResult:
    """``importer reconcile``: compare the ledger with the target; changes neither."""
    with open_ledger(ledger_path, readonly=True) as ledger:
        ledger.claim_target(target)
        return asyncio.run(
            _with_target(
                target_factory, lambda target: reconcile(ledger, target, concurrency=concurrency)
            )
        )
