"""Benchmarks (``make bench``): issue 8's scenarios, one table, the peers' figures beside it.

Every scenario starts its own sandbox (``importer sandbox``, seeded) and runs the real
importer in a child process, so wall time and peak RSS are the importer's own. Nothing is
asserted: a figure below its target is shown, never a failure. Sizes are the issue's by
default; ``--scale 0.25`` shrinks the row counts for a quick look, ``--only 1,2b`` picks
scenarios.

    scenario                                       figure to reach
    1  bad day: 30 ms, 10% 500, 5% stray 429,      1,000 rows exactly once, 0 failed, <= 20 s
       5% stored-then-dropped
    2  limit 40/s, 200 ms +/-50%, 2,000 rows,      >= 0.95 of 40/s, <= 3% of requests 429
       --concurrency 32, no --rate
    2r 2 with 1,000 rows, run a second time        <= 3% 429 (starts at the learned pace)
    2b the same with --rate 40                     >= 0.97, no 429
    3  2 plus 2% 500 and 1% dropped                >= 0.9 of 40/s, 0 failed
    4  500 ms, no limit, --concurrency 64          >= 0.9 x 64 / 0.5
    5  0 ms, no limit, 20,000 rows, -c 32          >= 0.8 x a bare httpx loop
    6  20 s outage (503) mid-run, 2,000 rows 30 ms <= 2 req/s in the outage, full speed
                                                   within 3 s after, 0 failed
    7  importer plan, 1,000,000 rows CSV/Parquet   <= 15 s CSV, 10 s Parquet, RSS <= 400 MB
    8  resume: 1,000,000-row ledger, 990,000 done  first request within 5 s
    9  ledger outcome writes                       >= 20,000/s (grouped path)
    10 re-sync: 1,000,000 rows imported, 1,000 new <= 30 s to the end (sandbox, no latency)
    10p importer plan of that re-sync (read-only)  no figure of its own
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import dataclasses
import hashlib
import itertools
import json
import os
import platform
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from importer.ledger import Ledger  # noqa: E402
from importer.ledger.manifest_index import ManifestIndex  # noqa: E402
from importer.ledger.row_cache import KeyedRow  # noqa: E402
from importer.plan.passes import (  # noqa: E402
    kept_record,
    manifest_fingerprint,
    prepare,
    read_notices,
)
from importer.read.manifest import ReadStats, read_manifest  # noqa: E402
from importer.rows.hashes import canonical_json, payload_hash  # noqa: E402
from importer.rows.row_keys import row_keys  # noqa: E402
from importer.rows.validate import MappingOptions, map_row  # noqa: E402
from importer.settings import ReadingChoices  # noqa: E402
from importer.targets.registry import import_settings  # noqa: E402

COLUMNS = ["id", "type", "title", "media_url", "start_at", "participants", "source_system"]
CREATE = "POST /v2/engagements"


def cells(n: int) -> dict[str, str]:
    return {
        "id": f"rec-{n}",
        "type": "CALL",
        "title": f"Discovery call {n} with Acme",
        "media_url": f"https://media.example.com/calls/{n}.mp3",
        "start_at": f"2024-03-{1 + n % 28:02d} 10:{n % 60:02d}",
        "participants": f"Ana Ng <ana{n}@acme.com>; Ben Wu <ben@acme.com>",
        "source_system": "salesforce",
    }


def write_csv(path: Path, rows: int, first: int = 0) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for n in range(first, first + rows):
            writer.writerow(cells(n))
    return path


def write_parquet(csv_path: Path, path: Path) -> Path:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    table = pacsv.read_csv(
        csv_path, convert_options=pacsv.ConvertOptions(strings_can_be_null=False)
    )
    table = table.cast(
        __import__("pyarrow").schema([(name, __import__("pyarrow").string()) for name in COLUMNS])
    )
    pq.write_table(table, path)
    return path


# -- processes -------------------------------------------------------------------------------


@dataclass
class Child:
    """A finished child process: exit code, wall time, peak RSS (MiB), output files."""

    code: int
    seconds: float
    peak_mib: float
    stdout: str
    stderr: str


def run_child(
    args: list[str],
    env: dict[str, str] | None = None,
    on_start: Callable[[subprocess.Popen[str]], None] | None = None,
) -> Child:
    """Run ``python -m importer ...`` to the end, with its own peak RSS (``on_start`` is
    given the process, to signal it).

    The peak is read from ``/proc/PID/status`` (``VmHWM``, reset at exec) while it runs:
    ``wait4``'s figure would include the pages the child shared with this process before
    its exec. With pass one's mapping workers running, the peak is that of the sum of
    their resident sizes and the importer's, sampled every 50 ms, if higher.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "importer", *args],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=err,
            text=True,
        )
        if on_start is not None:
            on_start(process)
        peak_kib = 0
        status = Path(f"/proc/{process.pid}/status")
        while process.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak_kib = max(peak_kib, int(line.split()[1]))
                peak_kib = max(peak_kib, tree_rss_kib(process.pid))
            except (OSError, ValueError):
                pass
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        return Child(process.returncode, seconds, peak_kib / 1024, out.read(), err.read())


def tree_rss_kib(pid: int) -> int:
    """The resident size of a process and its children (pass one's workers), in KiB."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    total = 0
    for member in [pid, *map(int, children)]:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


class Sandbox:
    """``importer sandbox --port 0`` with the given faults; its stats over HTTP."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "importer", "sandbox", "--port", "0", "--seed", "8", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.key = ""
        while not (self.url and self.key):
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("sandbox did not start")
            if match := re.search(r"(http://\S+)", line):
                self.url = match.group(1)
            if line.startswith("API key: "):
                self.key = line.split(": ", 1)[1].strip()
        self.started = time.monotonic()

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/_sandbox/stats", timeout=30).json())

    def creates(self) -> dict[str, int]:
        return dict(self.stats()["requests"].get(CREATE, {}))

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


class Watcher:
    """Polls the sandbox's stats every 0.2 s while a run goes: when what happened."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.samples: list[tuple[float, int, dict[str, int]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                stats = self.sandbox.stats()
                creates = dict(stats["requests"].get(CREATE, {}))
                self.samples.append((time.monotonic(), stats["engagements"], creates))
            except httpx.HTTPError:
                pass
            self._stop.wait(0.2)

    def __enter__(self) -> Watcher:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def import_run(
    sandbox: Sandbox,
    manifest: Path,
    ledger: Path,
    *extra: str,
    on_start: Callable[[subprocess.Popen[str]], None] | None = None,
) -> tuple[Child, dict[str, Any]]:
    """``importer run`` against the sandbox; the child and its run_finished summary."""
    child = run_child(
        [
            "run",
            str(manifest),
            "--ledger",
            str(ledger),
            "--base-url",
            sandbox.url,
            "--no-progress",
            "--log-format",
            "json",
            "--timezone",
            "UTC",  # the generated manifests write naive times, meant as UTC
            *extra,
        ],
        env={"ASKELEPHANT_API_KEY": sandbox.key},
        on_start=on_start,
    )
    summary: dict[str, Any] = {}
    for line in child.stderr.splitlines():
        if '"run_finished"' in line:
            summary = json.loads(line)
    return child, summary


# -- the table -------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the table."""

    name: str
    rows: int | None = None
    seconds: float | None = None
    ceiling: float | None = None
    """rows/s the scenario allows at best."""
    share_429: float | None = None
    peak_mib: float | None = None
    target: str = ""
    peers: str = ""
    notes: list[str] = field(default_factory=list)
    rate: float | None = None
    """rows/s, when not rows / seconds."""

    def cells(self) -> list[str]:
        rate = self.rate
        if rate is None and self.rows is not None and self.seconds:
            rate = self.rows / self.seconds
        ratio = rate / self.ceiling if rate is not None and self.ceiling else None
        return [
            self.name,
            f"{self.rows:,}" if self.rows is not None else "",
            f"{self.seconds:.1f}" if self.seconds is not None else "",
            f"{rate:,.1f}" if rate is not None else "",
            f"{self.ceiling:,.1f}" if self.ceiling is not None else "",
            f"{ratio:.2f}" if ratio is not None else "",
            f"{self.share_429:.1%}" if self.share_429 is not None else "",
            f"{self.peak_mib:,.0f}" if self.peak_mib is not None else "",
            self.target,
            self.peers,
            "; ".join(self.notes),
        ]


HEADERS = [
    "scenario",
    "rows",
    "wall s",
    "rows/s",
    "ceiling",
    "ratio",
    "429s",
    "peak RSS MiB",
    "figure to reach",
    "peers",
    "notes",
]


def print_header() -> None:
    print("| " + " | ".join(HEADERS) + " |")
    print("|" + "|".join("---" for _ in HEADERS) + "|", flush=True)


def print_row(row: Row) -> None:
    print("| " + " | ".join(row.cells()) + " |", flush=True)


def rows_in(summary: dict[str, Any]) -> int:
    """Rows the run left in AskElephant: created, or existing (also after a lost answer)."""
    counts = summary.get("counts", {})
    return sum(n for k, n in counts.items() if k.startswith(("created", "existing")))


def share_429(creates: dict[str, int]) -> float:
    total = sum(creates.values())
    return creates.get("429", 0) / total if total else 0.0


def outcome_notes(summary: dict[str, Any], child: Child) -> list[str]:
    counts = summary.get("counts", {})
    notes = [f"exit {child.code}"]
    failed = counts.get("failed", 0)
    notes.append(f"{failed} failed")
    if summary.get("pacing"):
        match = re.search(r"about (\d+) requests/s", summary["pacing"])
        if match:
            notes.append(f"learned {match.group(1)}/s")
    return notes


# -- scenarios -------------------------------------------------------------------------------


def import_scenario(
    name: str,
    work: Path,
    rows: int,
    sandbox_args: list[str],
    run_args: list[str],
    ceiling: float,
    target: str,
    peers: str = "",
) -> Row:
    slug = re.sub(r"\W+", "-", name)
    manifest = write_csv(work / f"{slug}.csv", rows)
    with Sandbox(*sandbox_args) as sandbox:
        child, summary = import_run(sandbox, manifest, work / f"{slug}.db", *run_args)
        creates = sandbox.creates()
        created_once = all(n == 1 for n in sandbox.stats()["created"].values())
    done = rows_in(summary)
    row = Row(name, done, child.seconds, ceiling, share_429(creates), child.peak_mib, target, peers)
    row.notes = outcome_notes(summary, child)
    if not created_once:
        row.notes.append("SOME ROW CREATED TWICE")
    return row


def scenario_6(work: Path, rows: int, outage: float) -> Row:
    manifest = write_csv(work / "s6.csv", rows)
    with Sandbox("--latency-ms", "30") as sandbox, Watcher(sandbox) as watch:
        # The outage starts once a quarter of the rows are in, counted from that moment.
        runner = threading.Thread(
            target=lambda: result.append(import_run(sandbox, manifest, work / "s6.db")),
        )
        result: list[tuple[Child, dict[str, Any]]] = []
        runner.start()
        while not watch.samples or watch.samples[-1][1] < rows // 4:
            time.sleep(0.05)
        httpx.post(
            f"{sandbox.url}/_sandbox/faults",
            json={"outage_start": 0, "outage_seconds": outage},
            timeout=30,
        )
        began = time.monotonic()
        runner.join()
        creates = sandbox.creates()
    child, summary = result[0]
    samples = watch.samples
    during = creates.get("503", 0)
    ended = began + outage
    before = [s for s in samples if began - 2.0 <= s[0] <= began]
    normal = (before[-1][1] - before[0][1]) / (before[-1][0] - before[0][0]) if before else 0.0
    back = None
    for (t0, n0, _), (t1, n1, _) in itertools.pairwise(samples):
        if t0 >= ended and t1 > t0 and (n1 - n0) / (t1 - t0) >= 0.8 * normal:
            back = t1 - ended
            break
    done = rows_in(summary)
    row = Row("6 outage 20 s", done, child.seconds, 8 / 0.03, share_429(creates), child.peak_mib)
    row.target = "<= 2 req/s in outage, full speed <= 3 s after, 0 failed"
    row.rate = done / max(child.seconds - outage, 1e-9)
    row.notes = [
        *outcome_notes(summary, child),
        f"{during / outage:.2f} req/s in the outage",
        f"back to 80% speed {back:.1f} s after" if back is not None else "speed not regained",
        "rows/s over the time outside the outage",
    ]
    return row


def scenario_2r(work: Path, rows: int, sandbox_args: list[str]) -> Row:
    """Scenario 2 run twice with one ledger and server: the second starts at the pace the
    first learned (the ledger remembers it per server and key fingerprint)."""
    first = write_csv(work / "s2r-first.csv", rows)
    second = write_csv(work / "s2r-second.csv", rows, first=rows)
    ledger = work / "s2r.db"
    with Sandbox(*sandbox_args) as sandbox:
        import_run(sandbox, first, ledger, "--concurrency", "32")
        before = sandbox.creates()
        time.sleep(2.0)  # the server's bucket fills again between the two runs
        child, summary = import_run(sandbox, second, ledger, "--concurrency", "32")
        after = sandbox.creates()
    creates = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    done = rows_in(summary)
    row = Row("2r limit 40/s, second run", done, child.seconds, 40.0, share_429(creates))
    row.peak_mib = child.peak_mib
    row.target = "<= 3% 429 from the first second"
    row.notes = [*outcome_notes(summary, child), "started at the pace the first run learned"]
    return row


async def bare_loop(url: str, key: str, rows: int, concurrency: int) -> float:
    """A bare httpx async loop posting the importer's bodies: rows/s."""
    options = MappingOptions(timezone="UTC")
    bodies = [map_row(cells(n), n + 2, options).payload for n in range(rows)]
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        if body is not None:
            queue.put_nowait(body)
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as client:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                await client.post("/v2/engagements", json=body)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return rows / (time.perf_counter() - started)


def scenario_5(work: Path, rows: int) -> Row:
    with Sandbox() as sandbox:
        bare = asyncio.run(bare_loop(sandbox.url, sandbox.key, rows, 32))
    row = import_scenario(
        "5 client overhead", work, rows, [], ["--concurrency", "32"], bare, ">= 0.8 x bare loop"
    )
    row.notes.append(f"bare httpx loop {bare:,.0f} rows/s (the ceiling)")
    return row


def plan_scenario(name: str, manifest: Path, work: Path, full: int) -> Row:
    plan = ["plan", str(manifest), "--ledger", str(work / "plan.db"), "--timezone", "UTC"]
    child = run_child(plan)
    rows = 0
    if match := re.search(r"^\s+new\s+([\d,]+)", child.stdout, re.MULTILINE):
        rows = int(match.group(1).replace(",", ""))
    row = Row(name, rows or None, child.seconds, None, None, child.peak_mib)
    # Issue 19's goals (issue 8 asked 30 s for either).
    row.target = f"<= {15 if 'CSV' in name else 10} s, <= 400 MB (1M rows)"
    row.peers = "before: 106 s CSV, 142 s Parquet (1M rows)" if "CSV" in name else ""
    row.notes = [f"exit {child.code}"]
    if rows and rows < full:
        row.notes.append(f"{full:,} rows at this rate: {child.seconds * full / rows:,.0f} s")
    return row


def imported_payload(n: int) -> dict[str, Any]:
    """What ``map_row`` makes of ``cells(n)`` read in UTC (checked on a sample when used)."""
    return {
        "source_system": "salesforce",
        "external_id": f"salesforce:rec-{n}",
        "type": "CALL",
        "title": f"Discovery call {n} with Acme",
        "media_url": f"https://media.example.com/calls/{n}.mp3",
        "run_workflows": False,
        "start_at": f"2024-03-{1 + n % 28:02d}T10:{n % 60:02d}:00+00:00",
        "participants": [
            {"name": "Ana Ng", "email": f"ana{n}@acme.com"},
            {"name": "Ben Wu", "email": "ben@acme.com"},
        ],
    }


def imported_payload_text(n: int) -> str:
    """``canonical_json(imported_payload(n))``, written out: hashing a million rows' payloads
    through ``json.dumps`` would take most of the build (checked on a sample when used)."""
    return (
        f'{{"external_id":"salesforce:rec-{n}",'
        f'"media_url":"https://media.example.com/calls/{n}.mp3",'
        f'"participants":[{{"email":"ana{n}@acme.com","name":"Ana Ng"}},'
        '{"email":"ben@acme.com","name":"Ben Wu"}],"run_workflows":false,'
        f'"source_system":"salesforce",'
        f'"start_at":"2024-03-{1 + n % 28:02d}T10:{n % 60:02d}:00+00:00",'
        f'"title":"Discovery call {n} with Acme","type":"CALL"}}'
    )


def build_imported_ledger(manifest: Path, ledger_path: Path, rows: int) -> int:
    """A ledger holding every row of ``manifest`` (``rows`` rows of ``cells``) as created,
    as a finished run leaves it: its row keys, the kept index and record, every row created.

    Written from ``cells`` and ``imported_payload`` directly, with the ledger's own calls
    (``ManifestIndex.add``, ``keep_manifest``) and the rows ``register_pending``,
    ``remember_row_keys`` and the answers would leave, in one statement each: seconds,
    where the importer's pass one takes 22 s per 100,000 rows. Both are
    checked against the importer first (the rows it reads, the payloads ``map_row`` makes
    of a sample), so a change there stops the bench instead of measuring the wrong ledger.
    """
    unprepared = import_settings(manifest, ReadingChoices(timezone="UTC"))
    settings, notices = prepare(unprepared)
    source = dataclasses.replace(
        settings.source, id_column=settings.mapping.columns.column_of("id")
    )
    keys = row_keys(settings.mapping, source, settings.mapping.row_mapper or map_row)
    fingerprint = manifest_fingerprint(unprepared)
    assert keys is not None and fingerprint is not None
    for record in next(read_manifest(manifest, settings.batch_size, source)):
        assert record.cells == cells(record.row_number - 2) and record.problem is None, record
    for n in range(0, rows, max(1, rows // 200)):
        mapped = map_row(cells(n), n + 2, settings.mapping)
        assert mapped.payload == imported_payload(n), (n, mapped)
        text = imported_payload_text(n)
        assert canonical_json(mapped.payload) == text, n
        assert payload_hash(mapped.payload) == hashlib.sha256(text.encode()).hexdigest(), n
    key = str(manifest.resolve())
    ledger = Ledger(ledger_path)
    index = ManifestIndex(ledger)
    index.start()
    db = ledger.db.conn
    db.execute(
        "CREATE TEMP TABLE built_keys (key BLOB, external_id TEXT, payload_hash TEXT, "
        "source_id TEXT, media_url TEXT)"
    )
    for start in range(0, rows, 50_000):
        batch = []
        for n in range(start, min(rows, start + 50_000)):
            text = imported_payload_text(n)
            batch.append(
                KeyedRow(
                    keys.key(cells(n), None) or b"",
                    f"salesforce:rec-{n}",
                    hashlib.sha256(text.encode()).hexdigest(),
                    None,
                    f"rec-{n}",
                    f"https://media.example.com/calls/{n}.mp3",
                )
            )
        index.add(
            [
                (r.external_id, n + 2, r.payload_hash, r.source_id, r.media_url)
                for n, r in enumerate(batch, start)
            ]
        )
        with db:
            db.executemany(
                "INSERT INTO temp.built_keys VALUES (?, ?, ?, ?, ?)",
                [(r.key, r.external_id, r.payload_hash, r.source_id, r.media_url) for r in batch],
            )
    seen = Counter({"rows": rows, "valid": rows})
    record = kept_record(unprepared, settings, notices, read_notices(settings, ReadStats()), seen)
    assert record is not None
    record["prefixes"] = ["salesforce:"]  # as a run keeps them
    ledger.keep_manifest(key, fingerprint, record)
    stamp = "2024-01-01T00:00:00.000+00:00"
    with db:
        # As ``remember_row_keys`` writes them, in key order (a B-tree filled in order).
        db.execute(
            "INSERT INTO row_keys SELECT key, external_id, payload_hash, NULL, source_id, "
            "media_url FROM temp.built_keys ORDER BY key"
        )
        # As ``register_pending`` and the answers leave them, written once.
        db.execute(
            "INSERT INTO engagements (external_id, manifest, row_number, status, transient, "
            "payload_hash, sent_hash, http_status, engagement_id, attempts, timezone, "
            "first_seen_at, sent_at, completed_at, updated_at, source_id, media_url) "
            "SELECT external_id, ?, row_number, 'created', 0, payload_hash, payload_hash, 201, "
            "'ngmt_' || row_number, 1, 'UTC', ?, ?, ?, ?, source_id, media_url "
            "FROM temp.manifest_index ORDER BY external_id",
            [key, stamp, stamp, stamp, stamp],
        )
    ledger.close()
    return rows


def copy_ledger(built: Path, to: Path) -> Path:
    """A copy of a closed ledger (no WAL left), for a scenario to change."""
    to.write_bytes(built.read_bytes())
    return to


def first_request_run(
    sandbox: Sandbox, manifest: Path, ledger: Path, *, stop_after: float | None = None
) -> tuple[Child, dict[str, Any], float | None]:
    """``importer run`` with the sandbox watched: also seconds until its first create.
    ``stop_after``: Ctrl-C (SIGINT) that many seconds after the first create is seen."""
    processes: list[subprocess.Popen[str]] = []
    with Watcher(sandbox) as watch:
        holder: list[tuple[Child, dict[str, Any]]] = []
        started = time.monotonic()
        runner = threading.Thread(
            target=lambda: holder.append(
                import_run(
                    sandbox,
                    manifest,
                    ledger,
                    "--concurrency",
                    "32",
                    on_start=processes.append,
                )
            )
        )
        runner.start()
        first = None
        stopped = False
        while runner.is_alive():
            if first is None and watch.samples and sum(watch.samples[-1][2].values()):
                first = watch.samples[-1][0] - started
            due = first is not None and stop_after is not None and not stopped and processes
            if due and time.monotonic() - started >= (first or 0) + (stop_after or 0):
                processes[0].send_signal(signal.SIGINT)
                stopped = True
            time.sleep(0.05)
        runner.join()
    child, summary = holder[0]
    return child, summary, first


def scenario_8(work: Path, manifest: Path, built: Path) -> Row:
    ledger = copy_ledger(built, work / "resume.db")
    with contextlib.closing(sqlite3.connect(ledger)) as db, db:  # one row in 100 not sent yet
        # As a stopped run leaves them: registered pending before its first request.
        pending = db.execute(
            "UPDATE engagements SET status = 'pending', sent_hash = NULL, http_status = NULL, "
            "engagement_id = NULL, attempts = 0, sent_at = NULL, completed_at = NULL "
            "WHERE (row_number - 2) % 100 = 0"
        ).rowcount
    with Sandbox() as sandbox:
        # Its figure is the first request: sending the other 10,000 (scenario 5's subject)
        # would take a minute of the bench's ten, so the run is stopped 5 s after it.
        child, summary, first = first_request_run(sandbox, manifest, ledger, stop_after=5.0)
    sent = summary.get("counts", {}).get("created", 0)
    row = Row("8 resume at scale", sent, child.seconds, None, None, child.peak_mib)
    row.target = "first request <= 5 s"
    row.notes = [
        f"first request after {first:.1f} s" if first is not None else "no request seen",
        f"{pending:,} rows left of a run (one in 100); Ctrl-C 5 s after the first",
        f"exit {child.code}",
    ]
    return row


def grown_manifest(work: Path, manifest: Path, new_rows: int) -> tuple[Path, int]:
    """The export with ``new_rows`` new rows at its end (written once), and how many it had."""
    grown = work / "grown.csv"
    already = sum(1 for _ in manifest.open(encoding="utf-8")) - 1
    if grown.exists():
        return grown, already
    with grown.open("w", newline="", encoding="utf-8") as handle:
        handle.write(manifest.read_text(encoding="utf-8"))
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        for n in range(already, already + new_rows):
            writer.writerow(cells(n))
    return grown, already


def scenario_10p(work: Path, manifest: Path, built: Path, new_rows: int) -> Row:
    """The dry-run of the re-sync: ``importer plan`` of the grown export, on the built ledger
    itself (a plan opens it read-only: nothing to copy)."""
    grown, already = grown_manifest(work, manifest, new_rows)
    child = run_child(["plan", str(grown), "--ledger", str(built), "--timezone", "UTC"])
    new = re.search(r"^\s+new\s+([\d,]+)", child.stdout, re.MULTILINE)
    row = Row("10p plan of the re-sync", None, child.seconds, None, None, child.peak_mib)
    row.target = "(no figure: the run's is 30 s)"
    row.notes = [
        f"{already:,} rows imported before; new: {new.group(1) if new else 'not said'}",
        f"exit {child.code}",
    ]
    return row


def scenario_10(work: Path, manifest: Path, built: Path, new_rows: int) -> Row:
    """Re-sync: the whole export imported before, ``new_rows`` new at its end."""
    ledger = copy_ledger(built, work / "resync.db")
    grown, already = grown_manifest(work, manifest, new_rows)
    with Sandbox() as sandbox:
        child, summary, first = first_request_run(sandbox, grown, ledger)
    sent = summary.get("counts", {}).get("created", 0)
    row = Row("10 re-sync", sent, child.seconds, None, None, child.peak_mib)
    row.target = "<= 30 s to the end (1M imported + 1,000 new)"
    row.rate = None
    row.notes = [
        f"{already:,} rows imported before, {new_rows:,} new",
        f"first request after {first:.1f} s" if first is not None else "no request seen",
        f"exit {child.code}",
    ]
    return row


def scenario_9(work: Path, writes: int) -> Row:
    """Outcome writes per second, grouped as a run groups them, and one commit each."""

    def timed(path: Path, grouped: bool) -> float:
        ledger = Ledger(path)
        ids = [f"w:{n}" for n in range(writes)]
        for n, external_id in enumerate(ids):
            ledger.mark_in_flight(external_id, "m.csv", n + 2, "h", 1)
        hashes = {"title": "0" * 16}
        group = ledger.grouped_outcomes() if grouped else contextlib.nullcontext()
        started = time.perf_counter()
        with group:
            for external_id in ids:
                ledger.record_success(
                    external_id,
                    created=True,
                    engagement_id="ngmt_1",
                    http_status=201,
                    payload_hash="h",
                    field_hashes=hashes,
                )
        seconds = time.perf_counter() - started
        ledger.close()
        return seconds

    seconds = timed(work / "grouped.db", grouped=True)
    single = timed(work / "single.db", grouped=False)
    row = Row("9 ledger outcome writes", writes, seconds, None, None, None)
    row.target = ">= 20,000 writes/s (grouped)"
    row.notes = [f"grouped every 50 ms; one commit per outcome: {writes / single:,.0f}/s"]
    return row


# -- main ------------------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every row count")
    parser.add_argument("--only", default="", help="comma-separated scenarios, e.g. 1,2b,7")
    parser.add_argument(
        "--big-rows",
        type=int,
        default=1_000_000,
        help="rows of scenarios 7, 8 and 10 (the issue's million by default)",
    )
    args = parser.parse_args()
    wanted = {s.strip() for s in args.only.split(",") if s.strip()}

    def n(count: int) -> int:
        return max(10, int(count * args.scale))

    def want(name: str) -> bool:
        return not wanted or name in wanted

    started = time.perf_counter()
    print(f"Machine: {machine()}", flush=True)
    print_header()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        limited = ["--latency-ms", "200", "--rate-limit", "40"]
        steps: list[tuple[str, Callable[[], Row]]] = [
            (
                "1",
                lambda: import_scenario(
                    "1 bad day",
                    work,
                    n(1000),
                    [
                        "--latency-ms",
                        "30",
                        "--fail-rate",
                        "0.10",
                        "--stray-429-rate",
                        "0.05",
                        "--drop-after-commit-rate",
                        "0.05",
                    ],
                    [],
                    8 / 0.03,
                    "all once, 0 failed, <= 20 s",
                    "naive 422 s; dlt 31 s; before: 777/1,003 after 818 s",
                ),
            ),
            (
                "2",
                lambda: import_scenario(
                    "2 limit 40/s",
                    work,
                    n(2000),
                    limited,
                    ["--concurrency", "32"],
                    40.0,
                    ">= 0.95, <= 3% 429",
                    "dlt 0.92 (17% 429); naive 0.10; drt 0.12; before 0.85",
                ),
            ),
            ("2r", lambda: scenario_2r(work, n(1000), limited)),
            (
                "2b",
                lambda: import_scenario(
                    "2b limit, --rate 40",
                    work,
                    n(2000),
                    limited,
                    ["--concurrency", "32", "--rate", "40"],
                    40.0,
                    ">= 0.97, no 429",
                ),
            ),
            (
                "3",
                lambda: import_scenario(
                    "3 limit + flaky",
                    work,
                    n(2000),
                    [*limited, "--fail-rate", "0.02", "--drop-after-commit-rate", "0.01"],
                    ["--concurrency", "32"],
                    40.0,
                    ">= 0.9, 0 failed",
                ),
            ),
            (
                "4",
                lambda: import_scenario(
                    "4 latency-bound",
                    work,
                    n(2000),
                    ["--latency-ms", "500"],
                    ["--concurrency", "64"],
                    64 / 0.5,
                    ">= 0.9",
                ),
            ),
            ("5", lambda: scenario_5(work, n(20000))),
            ("6", lambda: scenario_6(work, n(2000), 20.0)),
        ]
        spent: list[tuple[str, float]] = []

        def timed(name: str, step: Callable[[], Any]) -> Any:
            began = time.perf_counter()
            result = step()
            spent.append((name, time.perf_counter() - began))
            return result

        for name, step in steps:
            if want(name):
                print_row(timed(name, step))
        big = n(args.big_rows)
        if want("7") or want("8") or want("10") or want("10p"):
            manifest = timed("write big.csv", lambda: write_csv(work / "big.csv", big))
            if want("7"):
                print_row(
                    timed("7", lambda: plan_scenario("7 plan CSV", manifest, work, 1_000_000))
                )
                parquet = timed(
                    "write Parquet", lambda: write_parquet(manifest, work / "big.parquet")
                )
                print_row(
                    timed("7p", lambda: plan_scenario("7 plan Parquet", parquet, work, 1_000_000))
                )
            if want("8") or want("10") or want("10p"):
                built = work / "imported.db"
                imported = timed(
                    "build ledger", lambda: build_imported_ledger(manifest, built, big)
                )
                print(f"(ledger of {imported:,} imported rows built in {spent[-1][1]:.0f} s)")
                if want("8"):
                    print_row(timed("8", lambda: scenario_8(work, manifest, built)))
                if want("10"):
                    print_row(timed("10", lambda: scenario_10(work, manifest, built, n(1000))))
                if want("10p"):
                    print_row(timed("10p", lambda: scenario_10p(work, manifest, built, n(1000))))
        if want("9"):
            print_row(timed("9", lambda: scenario_9(work, n(20000))))
    print("\nSeconds per scenario: " + ", ".join(f"{name} {s:.0f}" for name, s in spent) + ".")
    print(f"Bench wall time {time.perf_counter() - started:.0f} s.")


if __name__ == "__main__":
    main()
