"""Running batch jobs: one job in this process, and the loop of a warm worker process.

A worker imports the engines once and runs job after job. Jobs of the same binary share a
translation context (keyed by the binary's digest), so the JIT compiles a program's blocks once
per worker, not once per job. Each job gets a fresh machine, its own guest root (a scratch
directory unless the job names one), its stdout and stderr kept in memory (bounded), and the
limits it asks for; a guest problem is a result, never an exception out of here.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vmkit.async_executor.errors import AsyncExecutorError
from vmkit.async_executor.limits import DEFAULT_LIMITS

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

__all__ = ["OUTPUT_LIMIT", "JobRunner", "worker_main"]

#: Binaries whose translations a worker keeps for the next job of the same binary.
CONTEXTS_KEPT = 16
#: Bytes of stdout and of stderr kept per job (a guest printing more is cut, and says so).
OUTPUT_LIMIT = 1 << 20


def _digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class JobRunner:
    """Runs jobs one after the other in this process, sharing translations per binary."""

    def __init__(self, default_engine: str = "hybrid") -> None:
        self.default_engine = default_engine
        #: Translation contexts of the binaries run last, most recent at the end: a batch of
        #: thousands of different programs must not keep every one's translations.
        self._contexts: OrderedDict[str, Any] = OrderedDict()
        self._digests: dict[tuple[str, float], str] = {}

    def _digest_of(self, path: str) -> str:
        key = (path, os.stat(path).st_mtime)
        digest = self._digests.get(key)
        if digest is None:
            digest = self._digests[key] = _digest(path)
        return digest

    def _executor(self, engine: str, machine: Any, digest: str) -> Any:
        from vmkit.async_executor.engine import (
            AsyncExecutionContext,
            HybridExecutor,
            InterpreterExecutor,
            JitExecutor,
        )

        if engine == "interp":
            return InterpreterExecutor(machine)
        if engine == "native":
            from vmkit.async_executor.engine.native import NativeExecutor

            return NativeExecutor(machine)
        context = self._contexts.get(digest)
        if context is None:
            context = self._contexts[digest] = AsyncExecutionContext()
            while len(self._contexts) > CONTEXTS_KEPT:
                self._contexts.popitem(last=False)
        self._contexts.move_to_end(digest)
        kind: Callable[..., Any] = JitExecutor if engine == "jit" else HybridExecutor
        return kind(machine, context, code_key=digest)

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        """Run one job (as ``Job.to_json`` gives it) and return its result record."""
        started = time.perf_counter()
        result: dict[str, Any] = {"id": job["id"], "program": job["program"], "args": job["args"]}
        try:
            result.update(self._run(job))
        except AsyncExecutorError as exc:  # a program that cannot be loaded, an engine missing
            result.update(outcome="error", error=str(exc))
        except Exception as exc:  # a bug of this tool: reported as the job's error, not lost
            result.update(
                outcome="error",
                error=f"internal error: {type(exc).__name__}: {exc}",
                traceback=traceback.format_exc(limit=8),
            )
        result["seconds"] = time.perf_counter() - started
        result["passed"] = _passed(job, result)
        return result

    def _run(self, job: dict[str, Any]) -> dict[str, Any]:
        from vmkit.async_executor.loader import load_program

        engine = job["engine"] or self.default_engine
        program = job["program"]
        limits = DEFAULT_LIMITS.replace(
            max_instructions=job["max_instructions"],
            wall_seconds=job["wall_seconds"],
        )
        argv0 = job["argv0"] or os.path.basename(program)
        with (
            tempfile.TemporaryDirectory(prefix="vmkit-batch-") as scratch,
            tempfile.TemporaryFile() as stdin,
        ):
            stdin.write(job["stdin"].encode())
            stdin.seek(0)
            machine = load_program(
                program,
                [argv0, *job["args"]],
                env=job["env"],
                root=job["root"] or scratch,
                stdio=(stdin.fileno(), stdin.fileno(), stdin.fileno()),
                limits=limits,
                # A cluster node runs a copy: the guest sees the original's name.
                exe_name=job.get("exe_name"),
            )
            out = machine.linux.capture_output(1, limit=OUTPUT_LIMIT)
            err = machine.linux.capture_output(2, limit=OUTPUT_LIMIT)
            try:
                executor = self._executor(engine, machine, self._digest_of(program))
                status = executor.run(machine, max_instructions=job["max_instructions"])
            finally:
                machine.linux.close()
        term = machine.termination
        return {
            "outcome": "ran",
            "engine": engine,
            "status": status,
            "reason": term.reason if term is not None else None,
            "message": term.message if term is not None else "",
            "stdout": out.text(),
            "stderr": err.text(),
            "stdout_sha256": hashlib.sha256(out.data).hexdigest(),
            "output_truncated": out.truncated or err.truncated,
            "instructions": machine.hart.instret,
        }


def _passed(job: dict[str, Any], result: dict[str, Any]) -> bool:
    """Whether the job did what it should: ran, and matched what it expects (if anything)."""
    if result.get("outcome") != "ran":
        return False
    expected_status = job["expected_status"]
    if expected_status is not None and result["status"] != expected_status:
        return False
    expected_stdout = job["expected_stdout"]
    return expected_stdout is None or result["stdout"] == expected_stdout


def worker_main(conn: Connection, default_engine: str) -> None:
    """A warm worker: receive jobs, send results, until told to stop (None) or the pipe closes."""
    runner = JobRunner(default_engine)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        conn.send(runner.run(job))
