"""What every command shares: warnings in the chosen log format, option errors, the key."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

import click
from click.core import ParameterSource

from importer.cli.options import LOG_FORMAT_KEY
from importer.errors import ChoiceError
from importer.events import JsonReporter, echo
from importer.runner import base_url_given, last_destination, resolved_base_url
from importer.settings import ApiChoices, load_api_key
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


def follow_last_run(
    ctx: click.Context, ledger: Path, target: str, api: ApiChoices
) -> tuple[str, ApiChoices]:
    """The target and base URL of the ledger's last run, where the command names neither.

    ``retry``, ``verify``, ``reconcile`` and ``sync-contacts`` after a rehearsal must not
    go to production: what is taken from the last run is said on stderr.
    """
    last = last_destination(ledger)
    if last is None:
        return target, api
    taken = []  # said only where the last run's choice differs from the default
    chosen = ctx.get_parameter_source("target") != ParameterSource.DEFAULT
    if last.target and last.target != target and not chosen:
        target, taken = last.target, ["target"]
    default_url = resolved_base_url(api, target)
    if last.base_url and not base_url_given(api, target) and last.base_url != default_url:
        api, taken = dataclasses.replace(api, base_url=last.base_url), [*taken, "base URL"]
    if taken:
        said = " and ".join(taken)
        warn(
            f"{said[0].upper()}{said[1:]} of the last run (#{last.run_id}): "
            f"{resolved_base_url(api, target)} ({target}); --target and --base-url choose "
            "another."
        )
    return target, api
