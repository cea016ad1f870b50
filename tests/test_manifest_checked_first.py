"""A manifest path that is no file is said before the key check's request leaves.

Found reviewing issue 10, point 3: with a typo in the file name, ``importer run`` first
sent its key check to the target (production, without ``--base-url``), then said "no such
file". A path that is missing, a folder or empty is known without reading a byte of it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.audit_support import run
from tests.conftest import Sandbox


@pytest.mark.parametrize("kind", ["missing", "folder", "empty"])
def test_a_manifest_that_is_no_file_costs_no_request(
    sandbox: Sandbox, tmp_path: Path, kind: str
) -> None:
    manifest = tmp_path / "calls.csv"
    if kind == "folder":
        manifest.mkdir()
    elif kind == "empty":
        manifest.touch()

    result = run(sandbox, manifest, tmp_path / "l.db")

    assert result.exit_code == 2, result.output
    assert str(manifest) in result.output
    assert sandbox.stats()["requests"] == {}
