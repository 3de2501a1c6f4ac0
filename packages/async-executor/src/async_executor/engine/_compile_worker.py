"""``compile()`` in a child process: the hybrid executor's background compiler.

Design note
-----------
Under the GIL a compiler *thread* only takes turns with the interpreter: ``compile()`` holds the
GIL, so a thread reorders work but never overlaps it. A forked child process does overlap it, on
the machine's other core. The parent keeps the cheap, memory-bound half of a translation
(decoding guest bytes and generating source, which must see the guest's memory as it is) and
sends only the source; the child compiles it and sends back the ``marshal``-ed code object (code
objects are what ``.pyc`` files hold). On the reference machine the parent's share was about
40 us of CPU per block against about 350 us for ``compile()`` itself.

* Protocol: one ``multiprocessing`` pipe; a request is ``marshal((token, filename, source))``,
  a reply ``marshal((token, code or None, seconds, error))``. A reader thread in the parent
  receives replies and calls each request's callback with the code (or None).
* The child is forked lazily, on the first request, and inherits the interpreter: it imports
  nothing and runs no code of the parent's but this loop. :meth:`CompileWorker.close` sends it a
  stop request; its exit closes its end of the pipe, which ends the reader thread.
* Failure loses nothing: if the child dies or the pipe breaks, every pending request completes
  with None, :meth:`CompileWorker.submit` returns False from then on, and callers compile
  inline. A source the child cannot compile also completes with None (the caller's inline
  compile then reports the real error).
* Only where ``fork`` exists (Linux, macOS): :func:`CompileWorker.available`.
"""

from __future__ import annotations

import contextlib
import itertools
import marshal
import multiprocessing
import os
import threading
import time
import types
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import structlog

__all__ = ["CompileDone", "CompileWorker"]

_log = structlog.get_logger(__name__)

#: Callback of one request: the compiled module code (None on failure) and the child's seconds.
CompileDone = Callable[[types.CodeType | None, float], None]


def _serve(conn: Connection) -> None:  # pragma: no cover - runs in the child process
    """The child's loop: compile each request, reply, until the parent closes the pipe."""
    while True:
        try:
            request = marshal.loads(conn.recv_bytes())
        except (EOFError, OSError):
            break
        if request is None:  # the parent's close(): exiting closes our end, ending its reader
            break
        token, filename, source = request
        t0 = time.perf_counter()
        try:
            code: types.CodeType | None = compile(source, filename, "exec")
            error = ""
        except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
            code, error = None, f"{type(exc).__name__}: {exc}"
        reply = marshal.dumps((token, code, time.perf_counter() - t0, error))
        try:
            conn.send_bytes(reply)
        except (OSError, ValueError):
            break
    os._exit(0)


class CompileWorker:
    """One compiler child process with a request pipe and a reply-reader thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: notified whenever a request completes (see :meth:`wait_idle`).
        self._idle = threading.Condition(self._lock)
        self._conn: Connection | None = None
        self._process: Any = None
        self._reader: threading.Thread | None = None
        self._pending: dict[int, CompileDone] = {}
        self._tokens = itertools.count()
        self._broken = False
        #: requests answered with code, and answered with None (failures), for statistics.
        self.compiled = 0
        self.failed = 0

    @staticmethod
    def available() -> bool:
        """Whether this platform can fork a compiler child."""
        return "fork" in multiprocessing.get_all_start_methods()

    @property
    def alive(self) -> bool:
        """Whether requests are accepted (False once the child died or :meth:`close` ran)."""
        return not self._broken

    def _start(self) -> Connection:
        """Fork the child on first use (lock held)."""
        if self._conn is not None:
            return self._conn
        context = multiprocessing.get_context("fork")
        parent, child = context.Pipe()
        process = context.Process(target=_serve, args=(child,), name="jit-compiler", daemon=True)
        process.start()
        child.close()
        self._conn, self._process = parent, process
        self._reader = threading.Thread(
            target=self._read, args=(parent,), name="jit-compiler-replies", daemon=True
        )
        self._reader.start()
        _log.debug("jit_compile_worker_started", pid=process.pid)
        return parent

    def submit(self, source: str, filename: str, done: CompileDone) -> bool:
        """Ask the child to compile ``source``; ``done(code, seconds)`` is called from the
        reader thread when it is ready. False (and no call) when the worker is not usable."""
        failed: list[CompileDone] = []
        with self._lock:
            if self._broken:
                return False
            token = next(self._tokens)
            try:
                conn = self._start()
                self._pending[token] = done
                conn.send_bytes(marshal.dumps((token, filename, source)))
            except (OSError, ValueError) as exc:
                self._pending.pop(token, None)
                failed = self._fail(f"cannot reach the compiler process: {exc}")
        for callback in failed:
            callback(None, 0.0)
        return not self._broken

    def _read(self, conn: Connection) -> None:
        """Reader thread: hand each reply to its request's callback."""
        while True:
            try:
                token, code, seconds, error = marshal.loads(conn.recv_bytes())
            except (EOFError, OSError, ValueError, TypeError):
                with self._lock:
                    failed = [] if self._broken else self._fail("the compiler process ended")
                for callback in failed:
                    callback(None, 0.0)
                return
            with self._lock:
                done = self._pending.get(token)
            if error or not isinstance(code, types.CodeType):
                self.failed += 1
                _log.warning("jit_background_compile_failed", error=error or "no code returned")
                code = None
            else:
                self.compiled += 1
            try:
                if done is not None:
                    done(code, seconds)
            finally:
                with self._lock:
                    self._pending.pop(token, None)
                    self._idle.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every submitted request has completed (its callback returned); False
        when ``timeout`` seconds passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: not self._pending, timeout)

    def _fail(self, reason: str) -> list[CompileDone]:
        """Stop accepting requests (lock held); returns the pending callbacks, which the caller
        completes with None once the lock is released."""
        self._broken = True
        pending, self._pending = self._pending, {}
        self._idle.notify_all()
        if reason != "closed":
            _log.warning("jit_compile_worker_unusable", reason=reason, pending=len(pending))
        return list(pending.values())

    def close(self) -> None:
        """Stop the child and the reader thread; pending requests complete with None."""
        with self._lock:
            conn, process, reader = self._conn, self._process, self._reader
            self._conn = self._process = self._reader = None
            failed = [] if self._broken else self._fail("closed")
        for callback in failed:
            callback(None, 0.0)
        if conn is not None:
            with contextlib.suppress(OSError, ValueError):  # the child may be gone already
                conn.send_bytes(marshal.dumps(None))
        if process is not None:
            process.join(timeout=5)
            if process.is_alive():  # pragma: no cover - the child exits on the stop request
                process.kill()
                process.join()
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=5)
        if conn is not None:
            conn.close()
