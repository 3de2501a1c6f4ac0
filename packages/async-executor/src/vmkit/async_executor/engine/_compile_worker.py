"""``compile()`` in a child process: the hybrid executor's background compiler.

Design note
-----------
Under the GIL a compiler *thread* only takes turns with the interpreter: ``compile()`` holds the
GIL, so a thread reorders work but never overlaps it. A child process does overlap it, on the
machine's other core. The parent keeps the cheap, memory-bound half of a translation (decoding
guest bytes and generating source, which must see the guest's memory as it is) and sends only
the source; the child compiles it and sends back the ``marshal``-ed code object (code objects
are what ``.pyc`` files hold). On the reference machine the parent's share was about 40 us of
CPU per block against about 350 us for ``compile()`` itself.

* The child is a fresh interpreter (``sys.executable -I -S -c`` with the small loop in
  :data:`_SERVER`), not a fork: forking a parent of a hundred megabytes costs little up front
  but then every page the parent touches is copied on write, which measured slower than
  compiling inline. The same executable guarantees the same bytecode and ``marshal`` format.
  It starts on the first request, in parallel with the parent, and imports nothing.
* Protocol on the child's stdin/stdout: frames of a 4-byte little-endian length and a
  ``marshal`` payload; a request is ``(token, filename, source)`` (None asks the child to exit),
  a reply ``(token, code or None, seconds, error)``. A reader thread in the parent receives
  replies and calls each request's callback with the code (or None).
* Failure loses nothing: if the child cannot start, dies or the pipe breaks, every pending
  request completes with None, :meth:`CompileWorker.submit` returns False from then on, and
  callers compile inline. A source the child cannot compile also completes with None (the
  caller's inline compile then reports the real error).
"""

from __future__ import annotations

import contextlib
import itertools
import marshal
import sys
import threading
import types
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from vmkit.async_executor._logging import get_logger

if TYPE_CHECKING:
    import subprocess

__all__ = ["CompileDone", "CompileWorker"]

_log = get_logger(__name__)

#: Callback of one request: the compiled module code (None on failure) and the child's seconds.
CompileDone = Callable[[types.CodeType | None, float], None]

#: The child's whole program: read a request frame, compile, write a reply frame.
_SERVER = """
import marshal, sys, time
rd, wr = sys.stdin.buffer, sys.stdout.buffer
while True:
    head = rd.read(4)
    if len(head) < 4:
        break
    request = marshal.loads(rd.read(int.from_bytes(head, "little")))
    if request is None:
        break
    token, filename, source = request
    t0 = time.perf_counter()
    try:
        code, error = compile(source, filename, "exec"), ""
    except Exception as exc:
        code, error = None, f"{type(exc).__name__}: {exc}"
    reply = marshal.dumps((token, code, time.perf_counter() - t0, error))
    wr.write(len(reply).to_bytes(4, "little") + reply)
    wr.flush()
"""


def _frame(payload: tuple[int, str, str] | None) -> bytes:
    data = marshal.dumps(payload)
    return len(data).to_bytes(4, "little") + data


class CompileWorker:
    """One compiler child process with a request pipe and a reply-reader thread."""

    def __init__(self) -> None:
        #: guards the pending requests and the process handle; never held across pipe I/O (the
        #: reader needs it for every reply, and a writer blocked on a full pipe waits for the
        #: child, which waits for the reader).
        self._lock = threading.Lock()
        #: serialises writers of request frames.
        self._send_lock = threading.Lock()
        #: notified whenever a request completes (see :meth:`wait_idle`).
        self._idle = threading.Condition(self._lock)
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._pending: dict[int, CompileDone] = {}
        self._tokens = itertools.count()
        self._broken = False
        #: requests answered with code, and answered with None (failures), for statistics.
        self.compiled = 0
        self.failed = 0

    @staticmethod
    def available() -> bool:
        """Whether a child interpreter can be started (``sys.executable`` is known)."""
        return bool(sys.executable)

    @property
    def alive(self) -> bool:
        """Whether requests are accepted (False once the child died or :meth:`close` ran)."""
        return not self._broken

    def _start(self) -> IO[bytes]:
        """Start the child on first use (lock held); returns its stdin."""
        if self._process is None:
            import subprocess  # only the background compiler starts a process: not on start-up

            process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _SERVER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
            )
            self._process = process
            assert process.stdout is not None
            self._reader = threading.Thread(
                target=self._read, args=(process.stdout,), name="jit-compiler", daemon=True
            )
            self._reader.start()
            _log.debug("jit_compile_worker_started", pid=process.pid)
        assert self._process.stdin is not None
        return self._process.stdin

    def submit(self, source: str, filename: str, done: CompileDone) -> bool:
        """Ask the child to compile ``source``; ``done(code, seconds)`` is called from the
        reader thread when it is ready. False (and no call) when the worker is not usable."""
        token = next(self._tokens)
        frame = _frame((token, filename, source))
        failed: list[CompileDone] = []
        stdin: IO[bytes] | None = None
        with self._lock:
            if self._broken:
                return False
            try:
                stdin = self._start()
                self._pending[token] = done
            except OSError as exc:
                failed = self._fail(f"cannot start the compiler process: {exc}")
        if stdin is not None:
            try:
                with self._send_lock:
                    stdin.write(frame)
                    stdin.flush()
            except (OSError, ValueError) as exc:
                with self._lock:
                    self._pending.pop(token, None)  # this request is answered by False
                    if not self._broken:
                        failed = self._fail(f"cannot reach the compiler process: {exc}")
                stdin = None
        for callback in failed:
            callback(None, 0.0)
        return stdin is not None

    def _read(self, stdout: IO[bytes]) -> None:
        """Reader thread: hand each reply to its request's callback."""
        while True:
            try:
                head = stdout.read(4)
                if len(head) < 4:
                    raise EOFError
                token, code, seconds, error = marshal.loads(
                    stdout.read(int.from_bytes(head, "little"))
                )
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
            process, reader = self._process, self._reader
            self._process = self._reader = None
            failed = [] if self._broken else self._fail("closed")
        for callback in failed:
            callback(None, 0.0)
        if process is not None:
            with contextlib.suppress(OSError, ValueError):  # the child may be gone already
                assert process.stdin is not None
                process.stdin.write(_frame(None))
                process.stdin.close()
            import subprocess

            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - it exits on the stop request
                process.kill()
                process.wait()
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=5)
        if process is not None and process.stdout is not None:
            process.stdout.close()
