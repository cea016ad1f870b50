"""One recording, one engagement: rows that would import a recording a second time. Pure.

An ``external_id`` is the prefix plus the CRM's id, so a changed ``source_system`` or
``--prefix`` turns every row into a new id, and the API's idempotency cannot help: the same
call would become a second engagement. Likewise the same call exported from two CRMs
arrives under two ids with one media URL. The manifest index finds such rows (see
``importer.plan.duplicate_index``); this module decides what the plan does with them:

    =================  ==============================================================
    prefix changed     the row's source id and media URL were imported under another
                       external_id: not sent, and ``run`` refuses to start (exit 2)
                       unless ``--allow-new-prefix``
    same recording     its media URL is imported (or on an earlier row of the manifest)
                       under another external_id: with ``--on-same-recording warn``
                       (default) listed, counted and sent; with ``skip`` not sent, and
                       recorded ``skipped``
    =================  ==============================================================

Only rows the plan would send as ``new`` are judged: a row already known by its own
external_id is the same engagement, not a second one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from importer.ledger.manifest_index import RecordingMatch
from importer.outcomes import Action
from importer.plan.planner import PlannedRow
from importer.settings import RecordingOptions


@dataclass(frozen=True)
class KnownRecording:
    """Where a row's recording is already: another external_id, and how it matched."""

    other_external_id: str
    prefix_changed: bool
    """Same source id and media URL: the same CRM row under another prefix."""
    old_prefix: str = ""
    new_prefix: str = ""


def judge_recording(
    planned: PlannedRow, known: KnownRecording | None, options: RecordingOptions
) -> PlannedRow:
    """The planned row, re-judged if its recording is already imported or planned."""
    if known is None or planned.action != Action.NEW:
        return planned
    other = known.other_external_id
    if known.prefix_changed:
        if options.allow_new_prefix:
            return dataclasses.replace(
                planned, reason=f"imported before as {other}; a new engagement, as allowed"
            )
        return dataclasses.replace(
            planned,
            action=Action.PREFIX_CHANGED,
            reason=f"imported before as {other} (the prefix was {known.old_prefix!r}, now "
            f"{known.new_prefix!r}); --allow-new-prefix sends it as a second engagement",
        )
    if options.on_same_recording == "skip":
        return dataclasses.replace(
            planned, action=Action.SKIPPED, reason=f"same recording as {other}"
        )
    return dataclasses.replace(
        planned, action=Action.SAME_RECORDING, reason=f"same recording as {other}; sent anyway"
    )


def prefix_of(external_id: str, source_id: str) -> str:
    """The prefix an external_id was built with (``crm:`` of ``crm:00T1``)."""
    return external_id[: len(external_id) - len(source_id)] if source_id else external_id


def known_recordings(matches: Iterable[RecordingMatch]) -> dict[str, KnownRecording]:
    """Where each matched row's recording already is, as the planner judges it."""
    found: dict[str, KnownRecording] = {}
    for match in matches:
        if match.same_source_id:
            found[match.external_id] = KnownRecording(
                match.same_source_id,
                prefix_changed=True,
                old_prefix=prefix_of(match.same_source_id, match.source_id),
                new_prefix=prefix_of(match.external_id, match.source_id),
            )
        elif match.same_media:
            found[match.external_id] = KnownRecording(match.same_media, prefix_changed=False)
    return found
