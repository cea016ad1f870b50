"""Before the first create: say where the run sends, find a bad key, ask before a big
production run.

A run that sends to the wrong place, or with a key that will be refused, should say so in
its first second, not after reading a million rows. So a run

- names its target (the base URL) and, once the file is read, its number of rows, before
  any create leaves;
- makes one cheap authenticated request first (``check_key``): a ``GET`` of an engagement
  id that cannot exist. ``401`` stops the run at once, and so does a host that does not
  resolve or refuses the connection; ``403`` only means the key lacks
  ``engagements:read``, which importing does not need, and ``404`` means the key was
  accepted;
- on a terminal, against production, with more than ``CONFIRM_ABOVE`` rows to send and no
  ``--yes``, asks once (``confirm_big_run``). Nothing prompts in cron or with JSON logs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

from importer.errors import ApiError, FatalError, HostUnreachable, Unreachable, UsageError
from importer.rows import contract

CONFIRM_ABOVE = 1000
"""Rows to send above which a production run on a terminal asks first."""
ACCESS_CHECK_ID = "engagement-importer-access-check"
"""An engagement id no workspace holds: the check's GET answers 404 to a valid key."""

Confirm = Callable[[str], bool]


class NotConfirmed(UsageError):
    """The user answered no: nothing was sent."""


def is_production(base_url: str) -> bool:
    """Whether ``base_url`` is AskElephant's production API."""
    return urlsplit(base_url).hostname == urlsplit(contract.PRODUCTION_BASE_URL).hostname


def target_is_production(target: Any) -> bool:
    """A target may say it is production (DevRev); else its base URL is AskElephant's."""
    said = getattr(target, "is_production", None)
    if isinstance(said, bool):
        return said
    return is_production(getattr(target, "base_url", "") or "")


def target_line(target: Any, manifest: str) -> str:
    """``Sending to <base URL> (production): <manifest>``, said before any request."""
    base_url = getattr(target, "base_url", None) or "(unknown target)"
    where = " (production)" if target_is_production(target) else ""
    return f"Target: {base_url}{where}; manifest {manifest}"


async def check_key(target: Any) -> None:
    """One cheap authenticated request; a refused key (401) stops the run at once.

    A host that cannot be reached (no DNS answer, connection refused) stops it too (exit 3,
    naming the host). Anything else (403 for a read scope the import does not need, 404, a
    server error) is left to the sends, which know how to retry or explain it.
    """
    check = getattr(target, "check_access", None)
    if check is None:
        return
    try:
        await check()
    except Unreachable as error:  # a wrong host or no network, not an outage to ride out
        raise HostUnreachable(error, getattr(target, "base_url", "") or error.host) from None
    except FatalError as error:
        if error.status == 401:
            raise
    except ApiError:
        pass


def confirm_big_run(target: Any, to_send: int, confirm: Confirm | None) -> None:
    """On a terminal (``confirm`` given), ask once before a big production run."""
    base_url = getattr(target, "base_url", "") or ""
    if confirm is None or to_send <= CONFIRM_ABOVE or not target_is_production(target):
        return
    if not confirm(f"Send {to_send:,} new row(s) to production ({base_url})?"):
        raise NotConfirmed("nothing was sent: the run was not confirmed (--yes skips the question)")


def access_check_path() -> str:
    """The path the check reads: an engagement id that cannot exist."""
    return f"/v2/engagements/{quote(ACCESS_CHECK_ID, safe='')}"
