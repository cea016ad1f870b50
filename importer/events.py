"""Text for a terminal: control characters from data are shown escaped, never obeyed.

Manifest cells, ids and server answers can hold ESC sequences (which recolour, retitle or
clear a terminal), carriage returns (which overwrite a line) or bidi overrides (which
reorder what is shown). Everything the CLI prints passes through ``for_terminal``.

    >>> for_terminal("id\\x1b[2J")
    'id\\\\u001b[2J'
    >>> for_terminal("a\\nb", lines=False)
    'a\\\\u000ab'
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from typing import IO, TYPE_CHECKING, Any, Protocol

import click

from importer.outcomes import SENT_OUTCOMES, Action, Outcome

if TYPE_CHECKING:
    from tqdm import tqdm

# C0 controls but tab and newline, DEL, C1 controls, bidi embeddings, overrides, isolates.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_OR_NEWLINE = re.compile(f"{_CONTROL.pattern[:-1]}\n\t]")


def _escape(match: re.Match[str]) -> str:
    # The JSON spelling: readable, and a --json document stays valid JSON meaning the same.
    return f"\\u{ord(match.group()):04x}"


def for_terminal(text: str, *, lines: bool = True) -> str:
    """``text`` with control characters escaped; ``lines=False`` escapes newlines too."""
    return (_CONTROL if lines else _CONTROL_OR_NEWLINE).sub(_escape, text)


def echo(message: Any = None, *, err: bool = False) -> None:
    """``click.echo`` for text that may quote data: control characters escaped."""
    click.echo(None if message is None else for_terminal(str(message)), err=err)


class Reporter(Protocol):
    """What a stage can say while it works."""

    def run_started(self, command: str, info: dict[str, Any], manifest: str | None = None) -> None:
        """A command began; ``info`` holds its (secret-free) options."""

    def progress_total(self, total: int, skipped: dict[str, int]) -> None:
        """How many rows will be sent, and how many are skipped and why."""

    def row_done(self, external_id: str, row: int, outcome: str, detail: str | None) -> None:
        """One row reached an outcome (created, existing, failed, ...)."""

    def retrying(self, external_id: str, row: int, reason: str, wait: float, attempt: int) -> None:
        """A request failed transiently and will be tried again after ``wait`` seconds."""

    def notice(self, message: str) -> None:
        """Something the user should know (warnings, skips)."""

    def run_finished(self, summary: dict[str, Any]) -> None:
        """The command ended; ``summary`` holds its counts."""


FAILED_BEFORE = "failed before"
"""A row the server rejected in an earlier run, unchanged since: not sent again."""
PROBLEM_OUTCOMES: tuple[str, ...] = (
    Action.INVALID,
    Action.DUPLICATE,
    Outcome.FAILED,
    Outcome.IN_DOUBT,
    FAILED_BEFORE,
    Action.CHANGED,
    Outcome.CONTACTS_FAILED,
    Action.SAME_RECORDING,
)
SHOWN_PROBLEMS = 10


class HumanReporter:
    """A tqdm bar on stderr (when it is a terminal) and notices as plain lines."""

    def __init__(self, stream: IO[str] | None = None, progress: bool = True, quiet: bool = False):
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.show_bar = progress and not quiet and _is_terminal(self.stream)
        self.bar: tqdm[Any] | None = None
        self.counts: dict[str, int] = {}
        self.problems: list[str] = []
        self.problem_count = 0

    def run_started(self, command: str, info: dict[str, Any], manifest: str | None = None) -> None:
        pass

    def progress_total(self, total: int, skipped: dict[str, int]) -> None:
        skipped_text = ", ".join(f"{n:,} {what}" for what, n in skipped.items() if n)
        if skipped_text:
            self.notice(f"Skipping {skipped_text}.")
        if not self.quiet:
            self.notice(f"Sending {total:,} row(s).")
        if self.show_bar:
            from tqdm import tqdm  # only with a bar to draw: a cron run never loads it

            self.bar = tqdm(total=total, file=self.stream, unit="row", dynamic_ncols=True)

    def row_done(self, external_id: str, row: int, outcome: str, detail: str | None) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if outcome in PROBLEM_OUTCOMES:
            self.problem_count += 1
            if len(self.problems) < SHOWN_PROBLEMS:
                shown_id = for_terminal(external_id, lines=False) if external_id else "(no id)"
                shown = for_terminal(str(detail), lines=False)
                said = str(outcome).replace("_", " ")  # as the summary names it
                self.problems.append(f"  row {row} {shown_id} {said}: {shown}")
        if self.bar is not None:
            if outcome in SENT_OUTCOMES:
                self.bar.update(1)
            self.bar.set_postfix(
                {k: self.counts.get(k, 0) for k in SENT_OUTCOMES},
                refresh=False,
            )

    def retrying(self, external_id: str, row: int, reason: str, wait: float, attempt: int) -> None:
        pass

    def notice(self, message: str) -> None:
        if self.quiet:
            return
        message = for_terminal(message)
        if self.bar is not None:
            self.bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def run_finished(self, summary: dict[str, Any]) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.problems and not self.quiet:
            more = self.problem_count - len(self.problems)
            lines = ["Rows that need attention:", *self.problems]
            if more:
                lines.append(f"  ... and {more:,} more")
            lines.append("`importer report --out DIR` writes them all to errors.csv.")
            print("\n".join(lines), file=self.stream, flush=True)


class JsonReporter:
    """One JSON object per line on stderr: for cron, log shippers and ``jq``."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr

    def _emit(self, event: str, **fields: Any) -> None:
        record = {"time": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")}
        record["event"] = event
        record.update(fields)
        print(json.dumps(record, default=str, ensure_ascii=False), file=self.stream, flush=True)

    def run_started(self, command: str, info: dict[str, Any], manifest: str | None = None) -> None:
        self._emit("run_started", command=command, manifest=manifest, options=info)

    def progress_total(self, total: int, skipped: dict[str, int]) -> None:
        self._emit("planned", to_send=total, skipped=skipped)

    def row_done(self, external_id: str, row: int, outcome: str, detail: str | None) -> None:
        self._emit("row", external_id=external_id, row=row, outcome=outcome, detail=detail)

    def retrying(self, external_id: str, row: int, reason: str, wait: float, attempt: int) -> None:
        self._emit(
            "retry",
            external_id=external_id,
            row=row,
            reason=reason,
            wait_seconds=round(wait, 3),
            attempt=attempt,
        )

    def notice(self, message: str) -> None:
        self._emit("notice", message=message)

    def run_finished(self, summary: dict[str, Any]) -> None:
        self._emit("run_finished", **summary)

    def failed(self, command: str | None, message: str, exit_code: int) -> None:
        """The command ended on an error: say it, then end as every run does."""
        self._emit("error", message=message)
        self._emit("run_finished", command=command, exit_code=exit_code)


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
