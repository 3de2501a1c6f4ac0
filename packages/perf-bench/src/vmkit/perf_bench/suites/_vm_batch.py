"""``BatchBenchmark`` (on request): many short guests through async-executor's batch path.

Design note: the question is throughput of many short programs (a compiler's test suite, a
fuzzing corpus), where a process per program pays Python's start-up and imports every time.
One value runs the same corpus twice, with the same 2-way parallelism:

1. through ``vmkit.async_executor.batch.run_batch`` with two warm local workers (what
   ``async-executor batch --workers 2`` does): ``guests_per_second``;
2. one ``python -m vmkit.async_executor run`` process per guest, two at a time:
   ``one_process_guests_per_second``; ``batch_speedup`` is the second wall time over the first.

The corpus is the suite's workloads with small arguments (a few thousand to a few hundred
thousand guest instructions each), plus ``crc32 1``, a guest that does little beyond glibc's
start-up: the median wall time of those jobs inside the batch is ``startup_per_job``, the cost
per job a batch still pays. Every job of both ways is checked against the workloads' Python
oracles (exit status 0 and the exact stdout); one mismatch fails the benchmark.

It takes about a minute (240 guests; ``--quick``: 24), so it runs only when named:
``perf-bench run --suite vm --bench BatchBenchmark``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

from vmkit.perf_bench._benchmark import Benchmark, RunContext
from vmkit.perf_bench._metrics import Direction, Metrics
from vmkit.perf_bench._targets import Target
from vmkit.perf_bench.suites._vm_targets import VM_TARGETS
from vmkit.perf_bench.suites._vm_workloads import WORKLOADS, GuestCheckError, workload_path

__all__ = ["CORPUS", "BatchBenchmark"]

#: (workload, arguments) of the corpus, repeated in this order to its size.
CORPUS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("crc32", (1,)),
    ("crc32", (256,)),
    ("sieve", (2000,)),
    ("matmul", (4,)),
    ("pagewalk", (16, 1)),
    ("crc32", (2048,)),
)
#: The job whose wall time is the start-up cost a batch still pays per guest.
STARTUP_JOB = ("crc32", (1,))
WORKERS = 2
ENGINE = "hybrid"


def corpus_jobs(size: int) -> list[dict[str, Any]]:
    """``size`` batch jobs (manifest fields), each with the oracle's stdout as its expectation."""
    jobs = []
    for i in range(size):
        name, args = CORPUS[i % len(CORPUS)]
        workload = WORKLOADS[name]
        jobs.append(
            {
                "id": f"{i}-{name}-{'-'.join(map(str, args))}",
                "program": str(workload_path(name)),
                "args": [str(a) for a in args],
                "argv0": name,
                "engine": ENGINE,
                "expected_stdout": workload.expected_output(args),
                "expected_status": 0,
            }
        )
    return jobs


def _through_batch(
    jobs: list[dict[str, Any]], clock: Callable[[], int]
) -> tuple[int, list[dict[str, Any]]]:
    """Wall ns of the corpus on two warm workers, and every job's result record."""
    from vmkit.async_executor.batch import Job, run_batch

    batch_jobs = [Job(**{**j, "args": tuple(j["args"])}) for j in jobs]  # manifest fields
    with tempfile.TemporaryDirectory(prefix="perf-bench-batch-") as folder:
        start = clock()
        summary = run_batch(batch_jobs, Path(folder) / "results.jsonl", workers=WORKERS)
        elapsed = clock() - start
    return elapsed, summary.results


def _one_process_each(
    jobs: list[dict[str, Any]], clock: Callable[[], int]
) -> tuple[int, list[str]]:
    """Wall ns of one ``async-executor run`` process per job, two at a time; the jobs that
    did not give their expected status and stdout."""
    command = [sys.executable, "-m", "vmkit.async_executor", "run", "--engine", ENGINE]

    def run(job: dict[str, Any]) -> str | None:
        done = subprocess.run(
            [*command, job["program"], *job["args"]], capture_output=True, check=False
        )
        ok = done.returncode == 0 and done.stdout.decode(errors="replace") == job["expected_stdout"]
        return None if ok else f"{job['id']}: status {done.returncode}, {done.stdout[:80]!r}"

    start = clock()
    with ThreadPoolExecutor(WORKERS) as pool:
        outcomes = list(pool.map(run, jobs))
    return clock() - start, [o for o in outcomes if o is not None]


class BatchBenchmark(Benchmark):
    """Guests per second through the batch path vs one process per guest; start-up per job."""

    name = "BatchBenchmark"
    description = (
        "240 short checked guests (quick: 24) through async-executor's batch path on 2 warm "
        "workers vs one `async-executor run` process each, 2 at a time (hybrid engine)"
    )
    targets: ClassVar[Mapping[str, Target]] = {
        **VM_TARGETS["BatchBenchmark"],
        "guests_per_second": Target(None, "guests/s", Direction.HIGHER, "", "through batch"),
        "startup_per_job": Target(
            None, "ms", Direction.LOWER, "", "median wall of a job that does little but start"
        ),
    }
    sizes: ClassVar[tuple[int, int]] = (240, 24)
    """Guests in the corpus (full, quick)."""

    def available(self) -> str | None:
        """Needs async-executor's batch package and the suite's workloads."""
        try:
            import vmkit.async_executor.batch  # noqa: F401
        except ImportError as exc:
            return f"cannot import {exc.name}: {exc}"
        try:
            for name, _ in CORPUS:
                workload_path(name)
        except GuestCheckError as exc:
            return str(exc)
        return None

    def measure(self, quick: bool, clock: Callable[[], int]) -> dict[str, Any]:
        """Both ways over the same corpus, every job checked.

        Raises:
            GuestCheckError: a job of either way did not give its oracle's output and status.
        """
        jobs = corpus_jobs(self.sizes[1] if quick else self.sizes[0])
        batch_ns, records = _through_batch(jobs, clock)
        failed = [f"{r['id']}: {r.get('error') or r.get('message')}" for r in records
                  if not r.get("passed")]  # fmt: skip
        if failed or len(records) != len(jobs):
            raise GuestCheckError(
                f"batch: {len(failed)} of {len(jobs)} guests failed ({len(records)} reported): "
                + "; ".join(failed[:3])
            )
        each_ns, each_failed = _one_process_each(jobs, clock)
        if each_failed:
            raise GuestCheckError(
                f"one process each: {len(each_failed)} guests failed: " + "; ".join(each_failed[:3])
            )
        startup_id = f"-{STARTUP_JOB[0]}-{'-'.join(map(str, STARTUP_JOB[1]))}"
        startup = [r["seconds"] for r in records if r["id"].endswith(startup_id)]
        return {
            "guests": len(jobs),
            "batch_ns": batch_ns,
            "each_ns": each_ns,
            "startup_s": statistics.median(startup),
            "instructions": sum(r["instructions"] for r in records),
        }

    def run(self, ctx: RunContext) -> Sequence[Metrics]:
        """One value of every metric."""
        m = self.measure(ctx.quick, ctx.clock)
        guests = m["guests"]
        return [
            Metrics(
                "guests_per_second", guests / (m["batch_ns"] / 1e9), "guests/s", Direction.HIGHER
            ),
            Metrics(
                "one_process_guests_per_second",
                guests / (m["each_ns"] / 1e9),
                "guests/s",
                Direction.HIGHER,
            ),
            Metrics("batch_speedup", m["each_ns"] / m["batch_ns"], "x", Direction.HIGHER),
            Metrics("startup_per_job", 1e3 * m["startup_s"], "ms", Direction.LOWER),
        ]
