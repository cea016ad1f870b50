"""The ``importer`` command: parses options, calls one stage function, maps errors to exits.

The group and the error mapping are here, the only place the importer exits; the commands
live by kind in ``importing``, ``audit`` and ``tools``, their shared options in ``options``.
The exit codes are ``importer.errors.EXIT_CODES``, shown at the end of ``importer --help``.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from typing import Any

import click

from importer import __version__
from importer.cli.audit import reconcile, report, status, verify
from importer.cli.importing import plan, retry, run, sync_contacts
from importer.cli.options import LOG_FORMAT_KEY
from importer.cli.tools import init, sandbox
from importer.errors import (
    EXIT_ABORTED,
    EXIT_BROKEN_PIPE,
    EXIT_CODES,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    ImporterError,
    is_disk_full,
)
from importer.events import JsonReporter, echo

__all__ = ["cli", "main"]


class CommandFailed(click.ClickException):
    """An ImporterError on its way out, with the importer's own exit code."""

    def __init__(self, message: str, exit_code: int, command: str | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]
        self.command = command
        self.as_json = False

    def show(self, file: Any = None) -> None:
        if self.as_json:
            JsonReporter().failed(self.command, self.format_message(), self.exit_code)
            return
        echo(f"error: {self.format_message()}", err=True)


class ImporterGroup(click.Group):
    """Turns our exceptions into a message and an exit code: never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CommandFailed as failure:
            raise self._told(ctx, failure) from None
        except ImporterError as error:
            raise self._told(ctx, CommandFailed(str(error), error.exit_code)) from None
        except KeyboardInterrupt:
            if ctx.meta.get(LOG_FORMAT_KEY) == "json":
                raise self._told(ctx, CommandFailed("interrupted", EXIT_INTERRUPTED)) from None
            echo("Interrupted.", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except BrokenPipeError:
            # A reader that stopped reading (`| head`) is no error: end quietly, like cat.
            _quiet_stdout()
            ctx.exit(EXIT_BROKEN_PIPE)
        except click.ClickException as error:
            if ctx.meta.get(LOG_FORMAT_KEY) == "json":
                raise self._told(
                    ctx, CommandFailed(error.format_message(), error.exit_code)
                ) from None
            raise
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except sqlite3.OperationalError as error:
            if not is_disk_full(error):
                raise self._told(ctx, _internal(error)) from None
            raise self._told(
                ctx,
                CommandFailed(
                    f"cannot write the ledger (SQLite: {error}): the disk holding it is full, "
                    "or a file size limit was reached; free some space and run the same "
                    "command again",
                    EXIT_ABORTED,
                ),
            ) from None
        except Exception as error:
            raise self._told(ctx, _internal(error)) from None

    @staticmethod
    def _told(ctx: click.Context, failure: CommandFailed) -> CommandFailed:
        """The failure, told as JSON events when the command logs JSON."""
        failure.as_json = ctx.meta.get(LOG_FORMAT_KEY) == "json"
        failure.command = failure.command or ctx.invoked_subcommand
        return failure


def _internal(error: Exception) -> CommandFailed:
    """A bug: the message asks for a report (``IMPORTER_DEBUG=1`` re-raises instead)."""
    if os.environ.get("IMPORTER_DEBUG"):
        raise error
    return CommandFailed(
        f"internal error ({type(error).__name__}: {error}). This is a bug: please "
        "report it; IMPORTER_DEBUG=1 shows the traceback",
        EXIT_INTERNAL,
    )


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so Python's own flush at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _exit_codes_epilog() -> str:
    """The exit-code table of ``importer.errors``, kept unwrapped by click (``\\b``)."""
    lines = [f"  {code:<3} {meaning}" for code, meaning in EXIT_CODES.items()]
    return "\b\nExit codes:\n" + "\n".join(lines)


@click.group(
    cls=ImporterGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=_exit_codes_epilog(),
)
@click.version_option(__version__, prog_name="importer")
def cli() -> None:
    """Import call and meeting recordings from a CRM export into AskElephant (or DevRev
    engagements with --target devrev), exactly once."""


for command in (run, plan, status, report, retry, sync_contacts, verify, reconcile, init, sandbox):
    cli.add_command(command)


def main() -> None:
    """Console entry point: the only place the importer exits."""
    sys.exit(cli.main(standalone_mode=True) or 0)
