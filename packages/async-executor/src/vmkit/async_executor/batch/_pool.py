"""A pool of warm local worker processes that survives its workers.

Design notes
------------
* Each worker is a process started once (``spawn``: a clean interpreter, no inherited threads
  or locks) that imports the engines and then runs job after job (see ``_worker``); the parent
  sends one job at a time to each idle worker over a pipe and waits on every pipe and every
  process sentinel at once, so a result and a death are both seen as soon as they happen.
* A worker that dies mid-job (a crash, an out-of-memory kill, a ``kill -9`` from outside) is
  replaced by a fresh one; its job is tried once more on the fresh worker, then reported as
  ``crashed``. A job that outlives its wall-clock limit by a grace period (stuck somewhere no
  guest limit reaches) has its worker killed and is reported as ``timeout``, not retried.
* Nothing here knows about results files or progress: :meth:`LocalPool.run` yields each job's
  final result as it is known, and the caller records it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from vmkit.async_executor.batch._manifest import Job
from vmkit.async_executor.batch._worker import worker_main

__all__ = ["KILL_GRACE_SECONDS", "LocalPool", "failure", "overdue", "timed_out"]

#: Seconds past a job's wall-clock limit before its worker is killed from outside.
KILL_GRACE_SECONDS = 10.0


@dataclass(slots=True)
class _Worker:
    process: Any
    conn: Connection
    job: Job | None = None
    attempt: int = 0
    started: float = 0.0


class LocalPool:
    """``workers`` warm worker processes on this machine."""

    def __init__(self, workers: int, default_engine: str = "hybrid") -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.size = workers
        self.default_engine = default_engine
        self._mp = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        #: Jobs waiting for a worker and jobs running (live, for metrics), workers that died
        #: or were killed, and jobs tried again.
        self.queued = 0
        self.running = 0
        self.worker_deaths = 0
        self.retries = 0

    def _start(self) -> _Worker:
        parent, child = self._mp.Pipe()
        process = self._mp.Process(
            target=worker_main, args=(child, self.default_engine), daemon=True
        )
        process.start()
        child.close()
        return _Worker(process, parent)

    def close(self) -> None:
        """Stop every worker (politely, then not)."""
        for worker in self._workers:
            with contextlib.suppress(OSError):
                worker.conn.send(None)
        for worker in self._workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self._workers.clear()

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def run(self, jobs: Sequence[Job]) -> Iterator[tuple[Job, dict[str, Any]]]:
        """Run ``jobs`` on the pool; yield ``(job, result)`` as each job's outcome is final."""
        queue: deque[tuple[Job, int]] = deque((job, 0) for job in jobs)
        while len(self._workers) < min(self.size, len(queue)):
            self._workers.append(self._start())
        busy = 0
        while queue or busy:
            for worker in self._workers:
                if worker.job is None and queue:
                    job, attempt = queue.popleft()
                    worker.job, worker.attempt, worker.started = job, attempt, time.monotonic()
                    worker.conn.send(job.to_json())
                    busy += 1
            self.queued, self.running = len(queue), busy
            waiting = {w.conn: w for w in self._workers if w.job is not None}
            waiting.update({w.process.sentinel: w for w in self._workers if w.job is not None})
            ready = wait(list(waiting), timeout=1.0)
            done: set[int] = set()
            for handle in ready:
                worker = waiting[handle]  # type: ignore[index]
                if id(worker) in done or worker.job is None:
                    continue
                done.add(id(worker))
                job = worker.job
                state, result = self._collect(worker)
                if state == "busy":
                    continue
                if result is None:  # the worker died with the job
                    self._replace(worker)
                    if worker.attempt == 0:
                        self.retries += 1
                        queue.appendleft((job, 1))
                        busy -= 1
                        continue
                    result = failure(job, "crashed", "the worker running it died twice")
                busy -= 1
                yield job, result
            for worker in self._workers:
                running = worker.job
                if running is None:
                    continue
                if overdue(running, worker.started):
                    self._replace(worker)
                    busy -= 1
                    yield running, timed_out(running, "its worker was killed")
            self.queued, self.running = len(queue), busy

    @staticmethod
    def _collect(worker: _Worker) -> tuple[str, dict[str, Any] | None]:
        """("result", the result the worker sent), ("dead", None) when it died with its job,
        or ("busy", None) when neither happened yet."""
        try:
            if worker.conn.poll():
                result: dict[str, Any] = worker.conn.recv()
                worker.job = None
                return "result", result
        except (EOFError, OSError):
            return "dead", None
        if not worker.process.is_alive():
            return "dead", None
        return "busy", None

    def _replace(self, worker: _Worker) -> None:
        """Kill ``worker`` (if it lives) and put a fresh one in its place."""
        self.worker_deaths += 1
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join()
        worker.conn.close()
        index = self._workers.index(worker)
        self._workers[index] = self._start()


def failure(job: Job, outcome: str, error: str) -> dict[str, Any]:
    """The result of a job that did not run to an outcome of its own (crashed, timeout, error)."""
    return {
        "id": job.id,
        "program": job.program,
        "args": list(job.args),
        "outcome": outcome,
        "error": error,
        "passed": False,
    }


def overdue(job: Job, started: float) -> bool:
    """Whether ``job``, running since ``started`` (monotonic), is past its wall-clock limit by
    more than the grace period: stuck where no guest limit reaches, its worker must go."""
    return job.wall_seconds is not None and (
        time.monotonic() - started > job.wall_seconds + KILL_GRACE_SECONDS
    )


def timed_out(job: Job, how: str) -> dict[str, Any]:
    """The result of an overdue job that was stopped ``how``."""
    return failure(
        job,
        "timeout",
        f"still running {KILL_GRACE_SECONDS:g} s after its wall-clock limit of "
        f"{job.wall_seconds:g} s: {how}",
    )
