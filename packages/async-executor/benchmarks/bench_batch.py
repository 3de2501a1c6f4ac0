"""Batches: many short guests through ``async-executor batch`` against one process per guest.

The corpus is 240 short runs of the bundled samples (hello, crc32, sieve, matmul, exits and
pthreads, with small inputs), each with its expected exit status. It runs twice with the same
2-way parallelism: ``async-executor batch --workers 2`` (two warm worker processes), and one
``async-executor run`` process per guest, two at a time. The report gives both wall times, their
ratio (the target: batch at least 3x faster), guests per second, and the start-up cost per job
that remains in a batch (the median job's wall time on ``hello``, a guest of a few thousand
instructions).

    python packages/async-executor/benchmarks/bench_batch.py [--jobs 240] [--check]

``--check`` exits 1 when batch is less than 3x faster.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TARGET_SPEEDUP = 3.0
#: (sample, args, expected exit status): short guests, as a test suite's programs are.
CORPUS = (
    ("hello", [], 0),
    ("crc32", ["256"], 0),
    ("sieve", ["2000"], 0),
    ("matmul", ["4"], 0),
    ("exits", ["exit"], 3),
    ("exits", ["return"], 42),
)


def _jobs(count: int, engine: str) -> list[dict[str, object]]:
    from vmkit.async_executor.samples import path

    jobs = []
    for i in range(count):
        name, args, status = CORPUS[i % len(CORPUS)]
        jobs.append(
            {
                "id": f"{i}-{name}",
                "program": str(path(name)),
                "args": args,
                "engine": engine,
                "expected_status": status,
            }
        )
    return jobs


def _one_process_each(jobs: list[dict[str, object]], workers: int) -> tuple[float, int]:
    """Wall time of one ``async-executor run`` per job, ``workers`` at a time; failures."""
    cli = [sys.executable, "-m", "vmkit.async_executor", "run"]

    def run(job: dict[str, object]) -> bool:
        command = [*cli, "--engine", str(job["engine"]), str(job["program"])]
        command += [str(a) for a in job["args"]]  # type: ignore[attr-defined]
        done = subprocess.run(command, capture_output=True, check=False)
        return done.returncode == job["expected_status"]

    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        ok = list(pool.map(run, jobs))
    return time.perf_counter() - start, ok.count(False)


def _batch(jobs: list[dict[str, object]], workers: int, folder: Path) -> tuple[float, int, list]:
    manifest = folder / "corpus.jsonl"
    manifest.write_text("".join(json.dumps(job) + "\n" for job in jobs))
    results = folder / "corpus.results.jsonl"
    command = [sys.executable, "-m", "vmkit.async_executor", "batch", str(manifest)]
    command += ["--workers", str(workers), "--results", str(results), "--quiet"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, check=False, text=True)
    elapsed = time.perf_counter() - start
    records = [json.loads(line) for line in results.read_text().splitlines()]
    failed = sum(1 for r in records if not r["passed"])
    if done.returncode not in (0, 1):
        raise SystemExit(f"batch failed: {done.stderr}")
    return elapsed, failed, records


def main() -> int:
    """Run both ways and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=240, help="guests in the corpus (>= 200)")
    parser.add_argument("--engine", default="hybrid", help="engine of every guest")
    parser.add_argument("--workers", type=int, default=2, help="parallelism of both ways")
    parser.add_argument("--check", action="store_true", help="exit 1 below the 3x target")
    args = parser.parse_args()
    jobs = _jobs(args.jobs, args.engine)
    with tempfile.TemporaryDirectory() as folder:
        batch_s, batch_failed, records = _batch(jobs, args.workers, Path(folder))
    each_s, each_failed = _one_process_each(jobs, args.workers)
    speedup = each_s / batch_s
    hello = [r["seconds"] for r in records if r["id"].endswith("-hello")]
    print(f"corpus: {len(jobs)} short guests on the {args.engine} engine, {args.workers}-way")
    for label, seconds in (
        (f"batch --workers {args.workers}", batch_s),
        ("one process each", each_s),
    ):
        print(f"  {label:<22} {seconds:7.2f} s  {len(jobs) / seconds:6.1f} guests/s")
    print(f"  batch is {speedup:.1f}x faster (target >= {TARGET_SPEEDUP:g}x)")
    print(f"  start-up cost left per job (median wall of a hello job): "
          f"{1e3 * statistics.median(hello):.1f} ms")  # fmt: skip
    if batch_failed or each_failed:
        print(f"  FAILED guests: batch {batch_failed}, one process each {each_failed}")
        return 1
    return 1 if args.check and speedup < TARGET_SPEEDUP else 0


if __name__ == "__main__":
    sys.exit(main())
