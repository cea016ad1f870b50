"""Every default a user can change with an option, defined once.

The CLI shows these in ``--help``; the settings dataclasses and the stage functions use
them when a caller (a test, a script) leaves the value out.
"""

from __future__ import annotations

BATCH_SIZE = 1000
"""Manifest rows read, validated and planned at a time (memory stays flat)."""
CONCURRENCY = 8
"""Requests in flight at once (create, verify GETs, media preflight)."""
MAX_ATTEMPTS = 6
"""Attempts per request before a transient failure is left for a later run."""
SETTLE_SECONDS = 60.0
"""A target whose create is not idempotent (DevRev): seconds after a create whose answer
was lost before a look-up that does not find it may be believed (a list catches up late);
until then the row is ``in doubt`` and not created again."""
READ_TIMEOUT = 300.0
"""Seconds to wait for an answer: AskElephant fetches the media during the create."""
VERIFY_TIMEOUT = 600.0
"""``importer verify --wait``: seconds to poll before giving up."""
TIMEZONE = "UTC"
"""Zone for start_at values written without an offset."""
ON_CHANGE = "report"
"""``--on-change``: a row changed since import counts against the exit code."""
ON_SAME_RECORDING = "warn"
"""``--on-same-recording``: a recording imported before under another id is listed and sent."""
