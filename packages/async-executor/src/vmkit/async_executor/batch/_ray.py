"""Batch jobs as tasks on a Ray cluster (the ``[ray]`` extra).

Design notes
------------
* Ray schedules; this module only submits. Each job is one Ray task (:func:`_run_on_node`); Ray
  places it on a node with a free CPU and reuses its worker processes, so a worker imports the
  engines once and keeps a :class:`JobRunner` (with its translations per binary) for every task
  it runs after the first. Nothing here picks nodes or keeps a queue per worker.
* Guest binaries travel through Ray's object store: each distinct program is read once on this
  machine and ``ray.put`` once; a task receives its bytes and writes them, named by their SHA-256,
  into a cache directory on its node (once per node). Nodes need the package installed, not the
  programs. A job's guest root (``root``) is a directory on the node that runs it.
* At most ``window`` tasks are in flight (the cluster's CPUs by default): the rest wait here,
  so a batch of 100,000 jobs does not flood the cluster's task table, and a job's time is
  measured from when it was submitted to a free slot (what the kill-past-its-limit rule needs).
* A task whose worker process dies (a crash, a node lost, a ``kill -9``) fails with a Ray system
  error: it is submitted once more (Ray starts a fresh worker), then reported as ``crashed``. A
  task still running ``KILL_GRACE_SECONDS`` past its wall-clock limit is cancelled with
  ``force=True`` (Ray kills its worker) and reported as ``timeout``.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import tempfile
import time
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from vmkit.async_executor.batch._manifest import Job
from vmkit.async_executor.batch._pool import failure, overdue, timed_out
from vmkit.async_executor.errors import AsyncExecutorError
from vmkit.async_executor.loader._program import guest_exe_path

__all__ = ["RAY_EXTRA_HINT", "RayPool", "RayUnavailableError"]

RAY_EXTRA_HINT = "pip install 'vmkit-async-executor[ray]'"
#: A job without a root runs in a fresh scratch directory: its program is outside it.
_NO_ROOT = "/nonexistent/guest-root"


class RayUnavailableError(AsyncExecutorError):
    """Ray is not installed, or the cluster cannot be reached; the message says which."""


def _ray() -> Any:
    try:
        return importlib.import_module("ray")  # optional dependency, loaded only for --cluster
    except ImportError as exc:
        raise RayUnavailableError(
            f"running a batch on a Ray cluster needs Ray: {RAY_EXTRA_HINT}"
        ) from exc


#: Connection attempts when a Ray Client server answers but fails to start the session (its
#: first session after ``ray start`` sometimes does); a silent address is not tried again.
CONNECT_ATTEMPTS = 3


def _connect(ray: Any, address: str) -> None:
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        try:
            # Ray's worker logs stay on the nodes (the results carry what each guest printed),
            # and the usage-stats prompt never appears.
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            ray.init(address=address, log_to_driver=False, ignore_reinit_error=True)
            return
        except ConnectionAbortedError as exc:
            if attempt == CONNECT_ATTEMPTS:
                raise RayUnavailableError(
                    f"the Ray cluster at {address!r} refused {attempt} sessions: {exc}"
                ) from exc
            time.sleep(attempt)  # real wait: give the cluster's client server time to recover
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RayUnavailableError(f"cannot reach a Ray cluster at {address!r}: {exc}") from exc


# ---------------------------------------------------------------- what runs on a cluster node

_runner: Any = None


def _binary_on_node(binary: bytes, digest: str) -> str:
    """The path of ``binary`` in this node's cache, written there the first time."""
    folder = os.path.join(tempfile.gettempdir(), f"vmkit-batch-binaries-{os.getuid()}")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    path = os.path.join(folder, digest)
    if not os.path.exists(path):
        # Written under a private name and renamed: two workers of one node may race here.
        fd, scratch = tempfile.mkstemp(dir=folder)
        with os.fdopen(fd, "wb") as f:
            f.write(binary)
        os.replace(scratch, path)
    return path


def _run_on_node(job: dict[str, Any], binary: bytes, digest: str) -> dict[str, Any]:
    """One job, in a Ray worker process (its JobRunner outlives the task)."""
    global _runner
    from vmkit.async_executor.batch._worker import JobRunner

    if _runner is None:
        _runner = JobRunner(job.pop("default_engine"))
    else:
        job.pop("default_engine")
    program = job["program"]
    local = dict(job, program=_binary_on_node(binary, digest))
    result: dict[str, Any] = _runner.run(local)
    result["program"] = program
    result["node"] = os.uname().nodename
    return result


# ---------------------------------------------------------------- this machine's side


class RayPool:
    """Runs jobs as tasks on the Ray cluster at ``address`` (``ray://HOST:PORT``, a GCS
    address ``HOST:PORT``, or ``auto`` for the cluster this machine belongs to).

    Args:
        address: the cluster.
        default_engine: engine of jobs that name none.
        window: tasks in flight at once (default: the cluster's CPUs).

    Raises:
        RayUnavailableError: Ray is not installed, or no cluster answers at ``address``.
    """

    def __init__(self, address: str, default_engine: str = "hybrid", window: int | None = None):
        ray = self._ray = _ray()
        _connect(ray, address)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.size = window if window is not None else max(1, cpus)
        self.default_engine = default_engine
        self._task = ray.remote(num_cpus=1, max_retries=0)(_run_on_node)
        self._binaries: dict[str, tuple[Any, str]] = {}
        #: Jobs waiting here, tasks in flight, tasks that failed with their worker and were
        #: submitted again, and workers lost (died or killed).
        self.queued = 0
        self.running = 0
        self.retries = 0
        self.worker_deaths = 0

    def close(self) -> None:
        """Disconnect from the cluster (the cluster itself keeps running)."""
        self._ray.shutdown()

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _binary(self, program: str) -> tuple[Any, str]:
        """(object reference, digest) of ``program``, put in the object store once."""
        found = self._binaries.get(program)
        if found is None:
            with open(program, "rb") as f:
                data = f.read()
            found = (self._ray.put(data), hashlib.sha256(data).hexdigest())
            self._binaries[program] = found
        return found

    def _submit(self, job: Job) -> Any:
        ref, digest = self._binary(job.program)
        spec = job.to_json()
        spec["argv0"] = job.argv0 or os.path.basename(job.program)
        # The node runs a copy named by its digest: the guest sees the original's path.
        spec["exe_name"] = guest_exe_path(job.program, job.root or _NO_ROOT)
        spec["default_engine"] = self.default_engine
        return self._task.remote(spec, ref, digest)

    def run(self, jobs: Sequence[Job]) -> Iterator[tuple[Job, dict[str, Any]]]:
        """Run ``jobs`` on the cluster; yield ``(job, result)`` as each job's outcome is final."""
        ray = self._ray
        exceptions = ray.exceptions
        lost = (
            exceptions.WorkerCrashedError,
            exceptions.NodeDiedError,
            exceptions.ObjectLostError,
            exceptions.ActorDiedError,
        )
        queue: deque[tuple[Job, int]] = deque((job, 0) for job in jobs)
        flying: dict[Any, tuple[Job, int, float]] = {}
        while queue or flying:
            while queue and len(flying) < self.size:
                job, attempt = queue.popleft()
                try:
                    ref = self._submit(job)
                except OSError as exc:  # the program cannot be read here
                    yield job, failure(job, "error", f"cannot read {job.program}: {exc}")
                    continue
                flying[ref] = (job, attempt, time.monotonic())
            self.queued, self.running = len(queue), len(flying)
            if not flying:
                continue
            ready, _ = ray.wait(list(flying), num_returns=1, timeout=1.0)
            for ref in ready:
                job, attempt, _started = flying.pop(ref)
                try:
                    result: dict[str, Any] = ray.get(ref)
                except lost as exc:
                    self.worker_deaths += 1
                    if attempt == 0:
                        self.retries += 1
                        queue.appendleft((job, 1))
                        continue
                    result = failure(job, "crashed", f"the worker running it died twice: {exc}")
                except exceptions.RayError as exc:
                    result = failure(job, "error", f"Ray could not run it: {exc}")
                yield job, result
            for ref, (job, _attempt, started) in list(flying.items()):
                if overdue(job, started):
                    ray.cancel(ref, force=True)
                    del flying[ref]
                    self.worker_deaths += 1
                    yield job, timed_out(job, "its Ray task was cancelled")
            self.queued, self.running = len(queue), len(flying)
