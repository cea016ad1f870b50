"""Where the key and the base URL come from; what of the options may be recorded."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from importer.errors import UnreadableFile, UsageError
from importer.read.small_files import KEY_FILE_LIMIT, read_small_file
from importer.rows import contract

API_KEY_ENV = "ASKELEPHANT_API_KEY"
BASE_URL_ENV = "ASKELEPHANT_BASE_URL"
DEFAULT_LEDGER = Path("state/ledger.db")


def load_api_key(
    key_file: Path | None,
    environ: Mapping[str, str] | None = None,
    env_name: str = API_KEY_ENV,
) -> tuple[str, list[str]]:
    """The API key from ``--api-key-file``, else ``env_name`` (the target's); and any warnings.

    Never from a command-line value: those end up in shell history and ``ps`` output.
    """
    env = os.environ if environ is None else environ
    warnings: list[str] = []
    if key_file is not None:
        try:
            key = read_small_file(key_file, KEY_FILE_LIMIT).decode("utf-8-sig").strip()
            mode = key_file.stat().st_mode
        except UnreadableFile as error:
            raise UsageError(f"--api-key-file {key_file}: {error.reason}") from None
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"--api-key-file {key_file}: cannot be read ({error})") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            warnings.append(
                f"warning: {key_file} can be read by other users; run: chmod 600 {key_file}"
            )
        if not key:
            raise UsageError(f"--api-key-file {key_file} is empty")
        check_key_shape(key, f"the key in {key_file}")
        return key, warnings
    key = env.get(env_name, "").strip()
    if not key:
        raise UsageError(
            f"no API key: pass --api-key-file PATH or set the environment variable {env_name}"
        )
    check_key_shape(key, f"the key in {env_name}")
    return key, warnings


def check_key_shape(key: str, where: str) -> None:
    """One token of printable ASCII, as keys are; the message never quotes the key."""
    if not re.fullmatch(r"[\x21-\x7e]+", key):
        raise UsageError(
            f"{where} contains spaces, line breaks or non-ASCII characters; "
            "an API key is one line of plain characters (sk-apik_...)"
        )


def resolve_base_url(
    base_url: str | None,
    environ: Mapping[str, str] | None = None,
    env_name: str = BASE_URL_ENV,
    default: str = contract.PRODUCTION_BASE_URL,
) -> str:
    """``--base-url``, else ``env_name`` (the target's variable), else the target's default."""
    env = os.environ if environ is None else environ
    if base_url is not None and not base_url.strip():
        # An empty value is a script's unset variable, not a wish for production.
        raise UsageError("--base-url is empty; give the URL, or leave the option out")
    chosen = base_url or env.get(env_name)
    if chosen is not None and not chosen.strip() and env_name in env and base_url is None:
        chosen = None  # an exported-but-empty variable means "not set"
    return chosen or default


def recordable_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options worth keeping in the runs table: paths and numbers, never a secret."""
    hidden = {"api_key", "api_key_file_contents", "key"}
    return {
        name: str(value.resolve()) if isinstance(value, Path) else value
        for name, value in options.items()
        if name not in hidden and value is not None
    }
