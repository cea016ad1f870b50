"""Ctrl-C while Python is still loading the importer: exit 130, "Interrupted.", no traceback.

Issue 10 (Ctrl-C at any moment), found in review: a Ctrl-C in the first fifth of a second
of ``importer run`` (while its modules load, before any handler exists) printed a Python
traceback. The child below makes loading the CLI raise ``KeyboardInterrupt`` exactly as
that signal would, without a race.
"""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import PROJECT_ROOT

CHILD = """
import sys

class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == "importer.cli":
            raise KeyboardInterrupt
        return None

sys.meta_path.insert(0, CtrlC())
from importer.__main__ import main
main()
"""


def test_ctrl_c_while_the_importer_loads_is_a_clean_interruption() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, "status"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 130, result.stderr
    assert result.stderr == "Interrupted.\n"
    assert result.stdout == ""


def test_with_json_logs_it_is_told_as_json_events() -> None:
    import json

    result = subprocess.run(
        [sys.executable, "-c", CHILD, "run", "m.csv", "--log-format", "json"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 130, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines()]
    assert [e["event"] for e in events] == ["error", "run_finished"]
    assert events[-1]["exit_code"] == 130 and events[-1]["command"] == "run"


def test_the_console_script_goes_through_the_guarded_entry_point() -> None:
    pyproject = (PROJECT_ROOT / "pyproject.toml").read_text(encoding="utf-8")

    assert 'importer = "importer.__main__:main"' in pyproject.splitlines()


SIGTERM_CHILD = """
import os
import signal
import sys

class Terminated:
    def find_spec(self, name, path=None, target=None):
        if name == "importer.cli":
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` while the CLI loads
        return None

sys.meta_path.insert(0, Terminated())
from importer.__main__ import main
main()
"""


def test_sigterm_while_the_importer_loads_is_a_clean_interruption_too() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SIGTERM_CHILD, "status"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 130, (result.returncode, result.stderr)  # not killed: 143
    assert result.stderr == "Interrupted.\n"
