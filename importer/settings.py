"""What one import is asked to do: the manifest, mapping, planning and sending choices."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from importer import defaults
from importer.manifest import SourceOptions
from importer.plan import PlanOptions
from importer.recordings import RecordingOptions
from importer.send import SendSettings
from importer.validate import MappingOptions


@dataclass(frozen=True)
class ImportSettings:
    """One import: which manifest, how rows map, how to plan and how to send."""

    manifest: Path
    mapping: MappingOptions = field(default_factory=MappingOptions)
    source: SourceOptions = field(default_factory=SourceOptions)
    """How to read the file: delimiter, encoding, sheet."""
    plan: PlanOptions = field(default_factory=PlanOptions)
    send: SendSettings = field(default_factory=SendSettings)
    on_change: str = "report"
    """``report``: a changed row counts against the exit code; ``skip``: it does not."""
    batch_size: int = defaults.BATCH_SIZE
    contacts_only: bool = False
    """``importer sync-contacts``: apply contact sets; create nothing."""
    check_media: bool = False
    """Preflight every distinct media URL before planning (``--check-media``)."""
    media_client: Any = None
    """httpx.AsyncClient for the preflight (tests inject one); None builds one."""
    media_resolver: Any = None
    """Host resolver for the preflight (tests inject one); None uses the system's."""
    recordings: RecordingOptions = field(default_factory=RecordingOptions)
    """``--allow-new-prefix`` and ``--on-same-recording``."""
