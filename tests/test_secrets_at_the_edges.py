"""Secrets at the edges (issue 20): a password in the base URL, a key cut in half, proxies,
and key or mapping files that are pipes, devices or huge.

Every test drives the CLI in-process against the sandbox or a raw hostile server on
127.0.0.1 (tests/hostile_server.py), and checks what the user sees and what is stored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import BinaryIO

import pytest

from importer.send.launch import target_line
from importer.targets.askelephant import AskElephantTarget
from tests.conftest import SandboxProcess
from tests.factories import api_args, row, run_cli, write_manifest
from tests.hostile_server import HostileServer, Request, respond

KEY = "sk-apik_hostile.ECHOEDSECRET-77aa"


def runs_of_the_key(text: str, key: str = KEY, run: int = 12) -> list[str]:
    """Every piece of ``run`` characters of the key found in ``text``."""
    return [key[i : i + run] for i in range(len(key) - run + 1) if key[i : i + run] in text]


def stored_text(folder: Path) -> str:
    return "".join(p.read_bytes().decode("latin-1") for p in folder.rglob("*") if p.is_file())


# -- a password in the base URL ----------------------------------------------------------------


@pytest.mark.parametrize("given_by", ["--base-url", "ASKELEPHANT_BASE_URL"])
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_base_url_with_a_password_is_refused_and_never_echoed(
    sandbox: SandboxProcess, tmp_path: Path, given_by: str, log_format: str
) -> None:
    port = sandbox.base_url.rsplit(":", 1)[1]
    url = f"http://admin:PASSWORD-9f3e@127.0.0.1:{port}"
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])
    ledger = tmp_path / "ledger.db"
    args = ["run", str(manifest), "--ledger", str(ledger), "--no-progress"]
    args += ["--log-format", log_format]
    env = {}
    if given_by == "--base-url":
        args += ["--base-url", url]
    else:
        env["ASKELEPHANT_BASE_URL"] = url
    requests = sandbox.stats()["requests"]

    result = run_cli(args, sandbox.api_key, **env)

    assert result.exit_code == 2, result.output
    assert "user name or password" in result.stderr
    assert "PASSWORD" not in result.output and "admin" not in result.output
    assert "PASSWORD" not in stored_text(tmp_path)
    assert sandbox.stats()["requests"] == requests


# -- the key scrubbed before any cut, and in any run of 12 of its characters ------------------


def redirect_with_the_key_at_the_cut(request: Request, out: BinaryIO) -> None:
    head = "https://elsewhere.example/collect?pad="
    # The message shows the Location cut at 200 characters: the key's last 3 fall outside.
    pad = "p" * (200 - len(head) - len("&k=") - (len(KEY) - 3))
    respond(out, 307, b"", {"Location": f"{head}{pad}&k={KEY}"})


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_redirect_carrying_the_key_across_the_cut_shows_none_of_it(
    tmp_path: Path, log_format: str
) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])
    ledger = tmp_path / "l.db"
    with HostileServer(redirect_with_the_key_at_the_cut) as server:
        args = ["run", str(manifest), "--ledger", str(ledger), "--base-url", server.base_url]
        result = run_cli([*args, "--no-progress", "--log-format", log_format], api_key=KEY)

    assert result.exit_code == 3, result.output
    assert "redirect" in result.output and "[API key]" in result.output
    assert runs_of_the_key(result.output) == []
    assert runs_of_the_key(stored_text(tmp_path)) == []


def echo_most_of_the_key(request: Request, out: BinaryIO) -> None:
    said = request.headers["authorization"].removeprefix("Bearer ")
    problem = {"detail": f"token ...{said[2:-4]}... is not allowed here"}
    respond(out, 422, json.dumps(problem).encode())


def test_most_of_the_key_echoed_is_scrubbed_like_the_key(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])
    ledger = tmp_path / "l.db"
    with HostileServer(echo_most_of_the_key) as server:
        args = ["run", str(manifest), "--ledger", str(ledger), "--base-url", server.base_url]
        result = run_cli([*args, "--no-progress"], api_key=KEY)
    report = run_cli(["report", "--ledger", str(ledger), "--out", str(tmp_path / "out")])

    assert result.exit_code == 1, result.output
    assert "token ...[API key]... is not allowed" in result.output
    assert runs_of_the_key(result.output + report.output) == []
    assert runs_of_the_key(stored_text(tmp_path)) == []


# -- proxies -------------------------------------------------------------------------------------


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "ALL_PROXY", "http_proxy"])
def test_a_loopback_base_url_never_goes_through_a_proxy(
    sandbox: SandboxProcess, tmp_path: Path, variable: str
) -> None:
    def proxy(request: Request, out: BinaryIO) -> None:
        respond(out, 502, b'{"detail": "proxied"}')

    manifest = write_manifest(tmp_path / "m.csv", [row(1), row(2)])
    ledger = tmp_path / "ledger.db"
    with HostileServer(proxy) as server:
        result = run_cli(
            ["run", str(manifest), *api_args(sandbox, ledger)],
            sandbox.api_key,
            **{variable: server.base_url},
        )
        seen = list(server.requests)

    assert result.exit_code == 0, result.output
    assert seen == []  # the key never passed the proxy
    assert "proxy" not in result.output


def test_the_target_line_names_the_proxy_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://me:hunter2@proxy.corp.example:3128")
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    remote = AskElephantTarget("https://app.askelephant.ai/api", "sk-apik_test.KEY")

    line = target_line(remote, "m.csv")

    assert "through the proxy http://proxy.corp.example:3128" in line
    assert "hunter2" not in line and "me:" not in line
    monkeypatch.setenv("NO_PROXY", ".askelephant.ai")
    assert "proxy" not in target_line(remote, "m.csv")


# -- key and mapping files that are not small regular files -------------------------------------


def odd_file(kind: str, tmp_path: Path, content: bytes) -> Path:
    if kind == "fifo":
        path = tmp_path / "pipe"
        os.mkfifo(path)
        return path
    if kind == "/dev/zero":
        return Path("/dev/zero")
    path = tmp_path / "huge"
    path.write_bytes(content * (3 * 1024 * 1024 // len(content)))  # 3 MB
    path.chmod(0o600)
    return path


@pytest.mark.timeout(60)  # a pipe read by mistake would wait for a writer forever
@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "huge"])
def test_a_key_file_that_is_not_a_small_regular_file_is_refused(
    sandbox: SandboxProcess, tmp_path: Path, kind: str
) -> None:
    key_file = odd_file(kind, tmp_path, b"k")
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])
    args = ["run", str(manifest), *api_args(sandbox, tmp_path / "l.db")]

    result = run_cli([*args, "--api-key-file", str(key_file)])

    assert result.exit_code == 2, result.output
    assert f"--api-key-file {key_file}: is " in result.stderr, result.stderr
    expected = "larger than 64 KB" if kind == "huge" else "not a regular file"
    assert expected in result.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "huge"])
def test_a_mapping_that_is_not_a_small_regular_file_is_refused(
    sandbox: SandboxProcess, tmp_path: Path, kind: str
) -> None:
    mapping = odd_file(kind, tmp_path, b"# a comment line\n")
    manifest = write_manifest(tmp_path / "m.csv", [row(1)])
    args = ["run", str(manifest), *api_args(sandbox, tmp_path / "l.db")]

    result = run_cli([*args, "--mapping", str(mapping)], sandbox.api_key)

    assert result.exit_code == 2, result.output
    expected = "larger than 1024 KB" if kind == "huge" else "not a regular file"
    assert f"{mapping}: is " in result.stderr and expected in result.stderr, result.stderr
