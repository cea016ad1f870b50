"""What every command shares: warnings in the chosen log format, option errors, the key."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import click

from importer.cli.options import LOG_FORMAT_KEY
from importer.errors import ChoiceError
from importer.events import JsonReporter, echo
from importer.settings import load_api_key
from importer.targets.registry import TargetKind


def warn(message: str) -> None:
    """A line on stderr; a JSON notice when the command logs JSON."""
    if click.get_current_context().meta.get(LOG_FORMAT_KEY) == "json":
        JsonReporter().notice(message)
    else:
        echo(message, err=True)


@contextlib.contextmanager
def option_errors() -> Iterator[None]:
    """A choice that cannot work is told as click tells a bad option."""
    try:
        yield
    except ChoiceError as error:
        if error.option:
            raise click.BadParameter(str(error), param_hint=error.option) from None
        raise click.UsageError(str(error)) from None


def api_key(api_key_file: Path | None, kind: TargetKind) -> str:
    """The target's API key (from the file or its environment variable); warnings told."""
    key, warnings = load_api_key(api_key_file, env_name=kind.api_key_env)
    for warning in warnings:
        warn(warning)
    return key
