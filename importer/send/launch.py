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

from importer.errors import ApiError, FatalError, HostUnreachable, NotConfirmed, Unreachable
from importer.targets.base import Target
from importer.targets.http import proxy_for

CONFIRM_ABOVE = 1000
"""Rows to send above which a production run on a terminal asks first."""

Confirm = Callable[[str], bool]


def target_line(target: Target, manifest: str) -> str:
    """``Sending to <base URL> (production): <manifest>``, said before any request."""
    where = " (production)" if target.is_production else ""
    proxy = proxy_for(target.base_url)
    through = f" through the proxy {proxy}" if proxy else ""
    return f"Target: {target.base_url}{where}{through}; manifest {manifest}"


async def check_key(target: Target) -> None:
    """One cheap authenticated request; a refused key (401) stops the run at once.

    A host that cannot be reached (no DNS answer, connection refused) stops it too (exit 3,
    naming the host). Anything else (403 for a read scope the import does not need, 404, a
    server error) is left to the sends, which know how to retry or explain it.
    """
    try:
        await target.check_access()
    except Unreachable as error:  # a wrong host or no network, not an outage to ride out
        raise HostUnreachable(error, target.base_url or error.host) from None
    except FatalError as error:
        if error.status == 401:
            raise
    except ApiError:
        pass


def confirm_big_run(target: Target, to_send: int, confirm: Confirm | None) -> None:
    """On a terminal (``confirm`` given), ask once before a big production run."""
    if confirm is None or to_send <= CONFIRM_ABOVE or not target.is_production:
        return
    if not confirm(f"Send {to_send:,} new row(s) to production ({target.base_url})?"):
        raise NotConfirmed("nothing was sent: the run was not confirmed (--yes skips the question)")
