"""Benchmarks: prints throughput and memory figures (``make bench``). Asserts nothing.

1. validation: rows/s of map_row alone;
2. plan: a large generated manifest planned end to end, time and peak memory, at two
   sizes, to show that memory does not grow with the file;
3. import: rows/s against a local sandbox, without and with server latency.

Sizes can be changed: ``python scripts/bench.py --plan-rows 1000000 --import-rows 5000``.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from importer.ledger import Ledger  # noqa: E402
from importer.validate import MappingOptions, map_row  # noqa: E402

COLUMNS = ["id", "type", "title", "media_url", "start_at", "participants", "source_system"]


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


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for n in range(rows):
            writer.writerow(cells(n))


def bench_validation(rows: int) -> None:
    options = MappingOptions()
    started = time.perf_counter()
    for n in range(rows):
        map_row(cells(n), n + 2, options)
    seconds = time.perf_counter() - started
    print(f"validation: {rows:,} rows in {seconds:.2f} s = {rows / seconds:,.0f} rows/s")


def bench_plan(rows: int, workdir: Path) -> None:
    """Plan in a child process so its peak memory is its own."""
    manifest = workdir / f"plan-{rows}.csv"
    write_csv(manifest, rows)
    code = (
        "import resource, sys, time\n"
        "from pathlib import Path\n"
        "from importer.ledger import Ledger\n"
        "from importer.pipeline import plan_manifest\n"
        "from importer.settings import ImportSettings\n"
        "start = time.perf_counter()\n"
        f"ledger = Ledger(Path({str(workdir / 'none.db')!r}), readonly=True)\n"
        f"counts = plan_manifest(ImportSettings(manifest=Path({str(manifest)!r})), ledger,"
        " lambda row: None)\n"
        "seconds = time.perf_counter() - start\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print(f'{seconds:.2f} {peak:.0f} {sum(counts.values())}')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    seconds, peak, planned = float(out[0]), float(out[1]), int(out[2])
    size = manifest.stat().st_size / 1e6
    print(
        f"plan: {planned:,} rows ({size:,.0f} MB CSV) in {seconds:.1f} s "
        f"= {planned / seconds:,.0f} rows/s, peak memory {peak:,.0f} MiB"
    )
    manifest.unlink()


def start_sandbox(*args: str) -> tuple[subprocess.Popen[str], str, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "importer", "sandbox", "--port", "0", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    url = key = ""
    while not (url and key):
        line = process.stdout.readline()
        if not line:
            raise RuntimeError("sandbox did not start")
        if match := re.search(r"(http://\S+)", line):
            url = match.group(1)
        if line.startswith("API key: "):
            key = line.split(": ", 1)[1].strip()
    return process, url, key


def bench_import(rows: int, workdir: Path, latency_ms: int, concurrency: int) -> None:
    manifest = workdir / f"import-{rows}.csv"
    write_csv(manifest, rows)
    sandbox, url, key = start_sandbox("--latency-ms", str(latency_ms))
    ledger = workdir / f"import-{latency_ms}.db"
    try:
        started = time.perf_counter()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "importer",
                "run",
                str(manifest),
                "--ledger",
                str(ledger),
                "--base-url",
                url,
                "--no-progress",
                "--quiet",
                "--concurrency",
                str(concurrency),
            ],
            cwd=ROOT,
            env={**os.environ, "ASKELEPHANT_API_KEY": key},
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
    finally:
        sandbox.terminate()
        sandbox.wait()
    with Ledger(ledger, readonly=True) as book:
        created = book.status_counts()["created"]
    print(
        f"import: {created:,}/{rows:,} rows created in {seconds:.1f} s = "
        f"{created / seconds:,.0f} rows/s (server latency {latency_ms} ms, "
        f"concurrency {concurrency}, exit {result.returncode})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--validate-rows", type=int, default=100_000)
    parser.add_argument("--plan-rows", type=int, default=1_000_000)
    parser.add_argument("--import-rows", type=int, default=3_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        bench_validation(args.validate_rows)
        bench_plan(args.plan_rows // 10, workdir)
        bench_plan(args.plan_rows, workdir)
        bench_import(args.import_rows, workdir, latency_ms=0, concurrency=8)
        bench_import(args.import_rows // 3, workdir, latency_ms=100, concurrency=16)


if __name__ == "__main__":
    main()
