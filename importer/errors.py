"""The importer's exceptions, drawn once: every exception class of ``importer/`` is here.

    ImporterError                 every error a user can see; carries an exit code
    ├── UsageError                bad options, key or base URL (exit 2)
    │   ├── PrefixChanged         rows imported under one id prefix, now sent under another
    │   ├── ChoiceError           a choice that cannot work (unknown time zone...), by option
    │   ├── ZoneNotChosen         naive times and no --timezone / [formats] timezone (exit 2)
    │   ├── ZoneChanged           the ledger's rows were read in another zone (exit 2)
    │   ├── ManifestError         the manifest file as a whole is unreadable (exit 2)
    │   ├── MappingError          the mapping file is wrong (exit 2)
    │   ├── LedgerError           the ledger cannot be used: busy, corrupt, read-only (exit 2)
    │   ├── UnreadableFile        a key or mapping file that is not a small regular file
    │   └── NotConfirmed          the user answered no before a big production run
    ├── ApiError                  an answer (or no answer) from the API
    │   ├── TransientError        worth retrying: 429, 5xx, 409, timeouts, resets, bad bodies
    │   │   ├── RateLimited       429, with the server's Retry-After
    │   │   ├── ServerUnavailable no answer, or 5xx: counts towards an outage
    │   │   │   ├── NoAnswerInTime the read timeout passed with nothing heard
    │   │   │   └── Unreachable   no connection could be made: the request never left
    │   │   ├── AnswerTooLarge    a body past the size cap, read no further
    │   │   └── UnresolvedReference  no (or several) target objects hold the row's reference
    │   ├── PermanentError        the row itself is wrong: 400, 422 (never retried)
    │   │   ├── IntegrityProblem  the answer names another row or engagement (never recorded)
    │   │   └── RemoteDuplicate   the target holds several engagements under one external id
    │   ├── FatalError            the run cannot go on: 401, 403, 404 on create (exit 3)
    │   │   └── HostUnreachable   the host cannot be reached before any create left
    │   ├── ListingUnbounded      a look-up's list did not end within its bound (exit 3)
    │   └── InDoubt               a create may have been applied; not found yet: not resent
    └── RunAborted                the run stopped part-way: server unavailable (exit 3)
        └── LedgerFull            the ledger's disk is full: the run stopped (exit 3)

    Signals inside a stage, never shown as they are (each becomes a value or one of the above):
    InvalidCell (ValueError)      a cell cannot be read as its field: a RowError for its row
    └── NaiveTime                 a time without an offset, and no zone chosen
    TranscriptUnavailable         a transcript_path that cannot be read: a RowError
    BadRedirect                   a media Location clients read differently: not followed
    TooManyRedirects              a media URL still redirecting after the limit
    UnreadableAnswer              a media host's answer httpx cannot read
    ResolverUnavailable           names cannot be looked up from here: a URL left unchecked
    SendingStopped                the run is stopping: an item's next attempt is not sent
    OutageTooLong                 an outage outlasted its budget: the run gives up (RunAborted)

Row-level validation problems are values (``validate.RowError``), not exceptions: an
invalid row must never stop the valid ones.
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_ROWS_FAILED = 1
EXIT_USAGE = 2
EXIT_ABORTED = 3
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
"""stdout was closed early (``importer plan ... | head``): 128 + SIGPIPE, as the shell says."""

EXIT_CODES: dict[int, str] = {
    EXIT_OK: "every row is in AskElephant (or skipped: nothing to import)",
    EXIT_ROWS_FAILED: "the run finished, but some rows are invalid, failed or changed",
    EXIT_USAGE: "bad usage, manifest, mapping or ledger",
    EXIT_ABORTED: "aborted: bad key, missing scope, wrong URL, server unavailable",
    EXIT_INTERNAL: "internal error (a bug: please report it)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C, SIGTERM); run again to resume",
    EXIT_BROKEN_PIPE: "stdout closed early (piped into head): nothing else went wrong",
}
"""Every exit code and its meaning, written once: ``importer --help`` shows this table and
a test holds the README's table to it."""


class ImporterError(Exception):
    """Base of every error the CLI turns into a message and an exit code."""

    exit_code = EXIT_USAGE


class UsageError(ImporterError):
    """Options, credentials or configuration that cannot work."""


class PrefixChanged(UsageError):
    """Rows imported under one external_id prefix would be sent again under another."""


class ZoneNotChosen(UsageError):
    """The manifest has times without an offset, and no time zone says how to read them."""


class ZoneChanged(UsageError):
    """Rows imported with times read in one zone would now be read in another."""


class ChoiceError(UsageError):
    """A reading choice that cannot work; ``option`` names the option that gave it."""

    def __init__(self, message: str, option: str | None = None) -> None:
        super().__init__(message)
        self.option = option


class ManifestError(UsageError):
    """The manifest cannot be read as a whole (a bad row is a RowError instead)."""

    def __init__(self, path: str, message: str, column: str | None = None) -> None:
        self.path = path
        self.column = column
        super().__init__(f"{path}: {message}")


class MappingError(UsageError):
    """The TOML mapping file is malformed or names unknown fields."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}")


class UnreadableFile(UsageError):
    """A small input file (key, mapping) that is missing, not a regular file, or too big;
    ``reason`` says which, for the caller to name the option."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LedgerError(UsageError):
    """The ledger cannot be opened, locked or written."""


class ApiError(ImporterError):
    """An API answer we could not accept, with the problem+json details kept."""

    exit_code = EXIT_ABORTED

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        detail: str | None = None,
        field_errors: list[dict[str, Any]] | None = None,
        request_id: str | None = None,
    ) -> None:
        self.status = status
        self.detail = detail
        self.field_errors = field_errors or []
        self.request_id = request_id
        super().__init__(message)

    def describe(self) -> str:
        """One line for reports and logs: status, detail and each field error."""
        parts = [str(self)]
        for item in self.field_errors:
            field = item.get("field") or "?"
            parts.append(f"{field}: {item.get('message') or item.get('code') or ''}".strip())
        return "; ".join(parts)


class TransientError(ApiError):
    """Worth trying again later: the same request may well succeed."""


class RateLimited(TransientError):
    """429: the server asked us to wait ``retry_after`` seconds (None if it did not say)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class UnresolvedReference(TransientError):
    """The row names a target object by external reference (DevRev's ``parent``: a CRM
    account id) that no object holds, or several do. Nothing was sent for the row; a later
    run looks the value up again (the account may have been synced meanwhile)."""

    def __init__(self, field: str, noun: str, value: str, found: list[str]) -> None:
        self.field, self.value, self.found = field, value, found
        if found:
            held = f"{len(found)} {noun}s hold it as an external reference ({', '.join(found[:5])})"
            fix = f"give the {noun}'s own id instead"
        else:
            held = f"no {noun} holds it as an external reference"
            fix = f"give the {noun}'s own id, or sync the {noun} first, then run again"
        super().__init__(f"{field} {value!r}: {held}; nothing was sent: {fix}")


class ServerUnavailable(TransientError):
    """5xx, connection failures and timeouts: the server, not the row, is the problem."""


class NoAnswerInTime(ServerUnavailable):
    """No answer within the read timeout: a silent server, or a slow one; maybe applied."""


class Unreachable(ServerUnavailable):
    """No connection could be made (the name did not resolve, the port refused, TLS failed):
    the request never left, so it cannot have been applied."""

    def __init__(self, message: str, *, host: str, **kwargs: Any) -> None:
        self.host = host
        super().__init__(message, **kwargs)


class PermanentError(ApiError):
    """The server rejected the row itself; sending it again unchanged cannot help."""


class IntegrityProblem(PermanentError):
    """The answer contradicts the request or the ledger: another external_id, or an
    engagement id already recorded for another row. Never recorded as a success.

    ``engagement_id``: the engagement a ``201`` made anyway (kept with the failed row, and
    looked up before any re-create of it)."""

    def __init__(self, message: str, *, engagement_id: str | None = None, **kwargs: Any) -> None:
        self.engagement_id = engagement_id
        super().__init__(message, **kwargs)


class RemoteDuplicate(PermanentError):
    """A lookup found several engagements under one external id: a person must pick one."""

    def __init__(self, external_id: str, engagement_ids: list[str]) -> None:
        self.external_id = external_id
        self.engagement_ids = engagement_ids
        super().__init__(
            f"the target holds {len(engagement_ids)} engagements with external id {external_id} "
            f"({', '.join(engagement_ids)}); delete the extra ones, then run again"
        )


class FatalError(ApiError):
    """No request can succeed until the user fixes something: key, scope or base URL."""


class HostUnreachable(FatalError):
    """The target's host could not be reached before anything was sent: a wrong base URL
    or no network, not an outage to ride out."""

    def __init__(self, error: Unreachable, base_url: str) -> None:
        self.host = error.host
        super().__init__(
            f"cannot reach {error.host}: {error}; no create was sent. Check the base URL "
            f"({base_url}) and the network, then run the same command again"
        )


class ListingUnbounded(ApiError):
    """A look-up's list kept handing out pages past its bound (pages or seconds): the rows
    it was to clear are not created (a missed page could hide their engagements); the run
    stops, never retried."""


class InDoubt(ApiError):
    """A create whose answer was lost, not found by a look-up within the settling time: it
    may still appear (a list catches up late), so it is not created again in this run."""

    def __init__(self, external_id: str, seconds: float, settle_seconds: float) -> None:
        self.external_id = external_id
        super().__init__(
            f"in doubt: a create of {external_id} may have been applied (its answer was lost) "
            f"and a look-up {seconds:.0f} s later does not find it yet; it is not created "
            f"again before {settle_seconds:g} s have passed (--settle-seconds): run again "
            "later, or check with `importer reconcile`"
        )


class RunAborted(ImporterError):
    """The run stopped before the end; rows not yet sent are still pending."""

    exit_code = EXIT_ABORTED


class LedgerFull(RunAborted):
    """The ledger could not be written: its disk (or a file size limit) is full."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = path
        super().__init__(
            f"cannot write the ledger {path} (SQLite: {reason}): the disk holding it is full, "
            "or a file size limit was reached. The run was stopped; rows not yet recorded are "
            "pending or in flight: free some space, then run the same command again to resume"
        )


def is_disk_full(error: Exception) -> bool:
    """True for SQLite's words for a write the file system refused (full, or too large)."""
    text = str(error).lower()
    return "disk is full" in text or "disk i/o error" in text


class AnswerTooLarge(TransientError):
    """The body passed ``MAX_ANSWER_BYTES``: read no further, keep nothing of it."""


class InvalidCell(ValueError):
    """A cell that cannot be read as its field; the message says why, for the user."""


class BadRedirect(Exception):
    """A ``Location`` that clients read in different ways (backslashes, controls, spaces)."""

    def __init__(self, location: str) -> None:
        self.location = location
        super().__init__(
            f"redirects to {location[:200]!r}: a Location with a backslash, control character "
            "or space is read differently by different clients, so it is not followed"
        )


class TooManyRedirects(Exception):
    """A URL still redirected after ``MAX_REDIRECTS`` hops."""

    def __init__(self, url: str, limit: int) -> None:
        self.url = url
        super().__init__(f"more than {limit} redirects")


class UnreadableAnswer(Exception):
    """The media host answered something httpx cannot read (e.g. an unparsable Location)."""


class TranscriptUnavailable(Exception):
    """A transcript_path that cannot be read, with a reason for the user."""


class NotConfirmed(UsageError):
    """The user answered no: nothing was sent."""


class SendingStopped(Exception):
    """The run is stopping: this item's next attempt is not sent."""


class OutageTooLong(Exception):
    """A probe failed after the outage lasted longer than the budget: give up the run."""

    def __init__(self, error: ServerUnavailable) -> None:
        self.error = error
        super().__init__(str(error))


class NaiveTime(InvalidCell):
    """A time without an offset, and no zone chosen to read it in."""


class ResolverUnavailable(Exception):
    """Names cannot be looked up from here: the URL cannot be judged."""
