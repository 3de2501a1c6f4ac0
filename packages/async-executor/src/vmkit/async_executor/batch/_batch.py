"""A batch from manifest to results: resume, streaming results, a summary, JUnit XML.

The results file is JSON Lines, one record per finished job, appended and flushed as each job
ends, so a batch stopped at any moment (Ctrl-C, a killed machine) loses no finished job; run
again with the same results file, it skips every job whose key (id and a digest of its
definition) is already there. A job is recorded exactly once.
"""

from __future__ import annotations

import contextlib
import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vmkit.async_executor.batch._manifest import Job
from vmkit.async_executor.batch._pool import LocalPool

__all__ = [
    "BatchPool",
    "BatchSummary",
    "finished_keys",
    "open_pool",
    "run_batch",
    "write_junit",
]

Progress = Callable[[int, int, Job, dict[str, Any]], None]


@dataclass(slots=True)
class BatchSummary:
    """What a batch did (jobs skipped because a resumed results file had them included)."""

    total: int = 0
    skipped: int = 0
    passed: int = 0
    failed: int = 0
    crashed: int = 0
    timed_out: int = 0
    errors: int = 0
    retries: int = 0
    worker_deaths: int = 0
    seconds: float = 0.0
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every job that ran passed."""
        return self.failed == self.crashed == self.timed_out == self.errors == 0

    def line(self) -> str:
        """One line for a person."""
        ran = self.total - self.skipped
        rate = ran / self.seconds if self.seconds > 0 else 0.0
        parts = [
            f"{self.total} jobs: {self.passed} passed, {self.failed} failed",
            f"{self.crashed} crashed, {self.timed_out} timed out, {self.errors} errors",
        ]
        if self.skipped:
            parts.append(f"{self.skipped} already in the results file")
        if self.retries:
            parts.append(f"{self.retries} retried after a worker died")
        return "; ".join(parts) + f"; {ran} ran in {self.seconds:.1f} s ({rate:.1f} guests/s)"


def finished_keys(results: Path) -> set[str]:
    """Keys of the jobs a results file already holds (a torn last line is ignored)."""
    keys: set[str] = set()
    if not results.exists():
        return keys
    for line in results.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by an interruption: that job runs again
        if isinstance(record, dict) and isinstance(record.get("key"), str):
            keys.add(record["key"])
    return keys


class BatchPool(Protocol):
    """Where a batch's jobs run: :class:`LocalPool` or the Ray cluster's ``RayPool``."""

    queued: int
    running: int
    retries: int
    worker_deaths: int

    def run(self, jobs: Sequence[Job]) -> Iterator[tuple[Job, dict[str, Any]]]:
        """Yield ``(job, result)`` as each job's outcome is final."""
        ...

    def close(self) -> None:
        """Release the workers (or the cluster connection)."""
        ...


def open_pool(workers: int | None, engine: str, cluster: str | None) -> BatchPool:
    """The pool a batch runs on: ``workers`` local processes (default: one per usable CPU), or
    tasks on the Ray cluster at ``cluster`` (``workers`` in flight; default: its CPUs).

    Raises:
        RayUnavailableError: a cluster was asked for and Ray is missing or the cluster silent.
    """
    if cluster is not None:
        from vmkit.async_executor.batch._ray import RayPool

        return RayPool(cluster, engine, window=workers)
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    return LocalPool(workers, engine)


def run_batch(
    jobs: Sequence[Job],
    results: str | os.PathLike[str],
    *,
    workers: int | None = 2,
    engine: str = "hybrid",
    cluster: str | None = None,
    progress: Progress | None = None,
    on_start: Callable[[BatchSummary, BatchPool | None], None] | None = None,
) -> BatchSummary:
    """Run ``jobs`` and append each result to ``results`` as it finishes, skipping jobs the
    file already holds.

    Args:
        jobs: what to run.
        results: the JSON Lines results file (created, or appended to and resumed from).
        workers: local worker processes, or tasks in flight on a cluster (None: the CPUs).
        engine: engine of jobs that name none.
        cluster: a Ray cluster address (``ray://HOST:PORT``, ``HOST:PORT`` or ``auto``) to run
            the jobs on instead of local processes.
        progress: called after each finished job with (finished, to run, job, record).
        on_start: called once the pool exists (metrics watch the summary and the pool), or
            with None for the pool when the results file already holds every job.

    Raises:
        RayUnavailableError: a cluster was asked for and Ray is missing or the cluster silent.
    """
    import time

    path = Path(results)
    done = finished_keys(path)
    todo = [job for job in jobs if job.key not in done]
    summary = BatchSummary(total=len(jobs), skipped=len(jobs) - len(todo))
    started = time.perf_counter()
    if not todo and on_start is not None:
        on_start(summary, None)  # nothing to run: no pool, but the skipped jobs are counted
    if todo:
        # A torn last line (an interrupted earlier run) must not glue onto the next record.
        if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            with path.open("a", encoding="utf-8") as f:
                f.write("\n")
        pool = open_pool(workers, engine, cluster)
        if on_start is not None:
            on_start(summary, pool)
        with path.open("a", encoding="utf-8") as out, contextlib.closing(pool):
            for finished, (job, result) in enumerate(pool.run(todo), 1):
                record = {"key": job.key, **result}
                out.write(json.dumps(record, sort_keys=True) + "\n")
                out.flush()
                _count(summary, record)
                summary.results.append(record)
                if progress is not None:
                    progress(finished, len(todo), job, record)
            summary.retries = pool.retries
            summary.worker_deaths = pool.worker_deaths
    summary.seconds = time.perf_counter() - started
    return summary


def _count(summary: BatchSummary, record: dict[str, Any]) -> None:
    outcome = record.get("outcome")
    if outcome == "crashed":
        summary.crashed += 1
    elif outcome == "timeout":
        summary.timed_out += 1
    elif outcome == "error":
        summary.errors += 1
    elif record.get("passed"):
        summary.passed += 1
    else:
        summary.failed += 1


def write_junit(records: Sequence[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """Every record of a results file as a JUnit XML test case (what CI systems read)."""
    suite = ET.Element("testsuite", name="async-executor batch", tests=str(len(records)))
    failures = errors = 0
    total_time = 0.0
    for record in records:
        seconds = float(record.get("seconds") or 0.0)
        total_time += seconds
        case = ET.SubElement(
            suite,
            "testcase",
            classname=os.path.basename(str(record.get("program", "?"))),
            name=str(record.get("id")),
            time=f"{seconds:.3f}",
        )
        outcome = record.get("outcome")
        if outcome in ("crashed", "timeout", "error"):
            errors += 1
            ET.SubElement(case, "error", message=str(record.get("error", outcome)), type=outcome)
        elif not record.get("passed"):
            failures += 1
            ET.SubElement(
                case,
                "failure",
                message=f"status {record.get('status')}",
                type="mismatch",
            ).text = str(record.get("message", ""))
        if record.get("stdout"):
            ET.SubElement(case, "system-out").text = str(record["stdout"])
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("time", f"{total_time:.3f}")
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
