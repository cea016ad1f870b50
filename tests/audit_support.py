"""Helpers shared by the audit, report, secrets and ledger-safety tests."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from click.testing import Result

from tests.conftest import Sandbox
from tests.factories import api_args, run_args, run_cli


def run(
    sandbox: Sandbox, manifest: Path, ledger: Path, *extra: str, key: str | None = None
) -> Result:
    """``importer run MANIFEST`` against ``sandbox``."""
    return run_cli(run_args(manifest, ledger, sandbox, *extra), key or sandbox.api_key)


def command(
    sandbox: Sandbox, name: str, ledger: Path, *extra: str, key: str | None = None
) -> Result:
    """An API command without a manifest argument (retry, verify)."""
    return run_cli([name, *api_args(sandbox, ledger, *extra)], key or sandbox.api_key)


def read_csv(path: Path) -> list[list[str]]:
    """Every line of a CSV file, header included."""
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def requests_of(sandbox: Sandbox, route: str) -> dict[str, int]:
    """Answers by status for one route, e.g. ``POST /v2/engagements``."""
    return dict(sandbox.stats()["requests"].get(route, {}))


CREATE = "POST /v2/engagements"
GET_ONE = "GET /v2/engagements/{engagement_id}"
PUT_CONTACTS = "PUT /v2/engagements/{engagement_id}/contacts"


def json_lines(text: str) -> list[dict[str, Any]]:
    """Each non-empty line parsed as one JSON object (fails on any other line)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def server_ids(sandbox: Sandbox) -> dict[str, str]:
    """external_id -> engagement id, as the sandbox stored them."""
    return {e["external_id"]: e["id"] for e in sandbox.engagements()}


def requests_but_key_checks(sandbox: Sandbox) -> dict[str, dict[str, int]]:
    """Answers by route and status, without the key check every run makes first (a GET
    of an engagement that cannot exist, answered 404)."""
    requests = {route: dict(counts) for route, counts in sandbox.stats()["requests"].items()}
    checks = requests.get(GET_ONE, {})
    checks.pop("404", None)
    if not checks:
        requests.pop(GET_ONE, None)
    return requests
