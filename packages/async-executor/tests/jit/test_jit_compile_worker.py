"""The background compiler process: compiles, survives bad input and its own death, and the
hybrid's process mode installs blocks only when no code write intervened."""

from __future__ import annotations

import os
import pathlib
import signal
import threading
import types

import pytest
from jit_support import CODE_BASE, enc, machine_with_code, words

from vmkit.async_executor._logging import capture_events
from vmkit.async_executor.engine._compile_worker import CompileWorker
from vmkit.async_executor.engine._context import AsyncExecutionContext
from vmkit.async_executor.engine._jit_hybrid import HybridExecutor
from vmkit.async_executor.engine._translate import compile_block_code
from vmkit.async_executor.loader import load_program
from vmkit.async_executor.samples import path as sample_path


def _submit(worker: CompileWorker, source: str) -> tuple[types.CodeType | None, float]:
    got: list[tuple[types.CodeType | None, float]] = []
    ready = threading.Event()

    def done(code: types.CodeType | None, seconds: float) -> None:
        got.append((code, seconds))
        ready.set()

    assert worker.submit(source, "<test>", done)
    assert ready.wait(30)
    return got[0]


class TestCompileWorker:
    """compile() in a child process, with every failure turned into a None result."""

    def test_compiles(self) -> None:
        """A block source comes back as code that runs like the parent's own compile."""
        worker = CompileWorker()
        try:
            code, seconds = _submit(worker, "def b(x):\n return x * 2 + 1\n")
            assert isinstance(code, types.CodeType)
            assert seconds >= 0
            fn = types.FunctionType(next(c for c in code.co_consts if hasattr(c, "co_name")), {})
            assert fn(20) == 41
            assert worker.compiled == 1
        finally:
            worker.close()

    def test_bad_source(self) -> None:
        """A source the child cannot compile gives None and one warning; the worker goes on."""
        worker = CompileWorker()
        try:
            with capture_events() as logs:
                code, _ = _submit(worker, "def b(:\n")
            assert code is None
            warnings = [e for e in logs if e["log_level"] == "warning"]
            assert [e["event"] for e in warnings] == ["jit_background_compile_failed"]
            assert "SyntaxError" in warnings[0]["error"]
            assert _submit(worker, "x = 1\n")[0] is not None
        finally:
            worker.close()

    def test_child_killed(self) -> None:
        """A dead child completes what was pending with None and refuses further requests."""
        worker = CompileWorker()
        try:
            assert _submit(worker, "x = 1\n")[0] is not None
            process = worker._process
            assert process is not None
            with capture_events() as logs:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(10)
                assert worker.wait_idle(10)
                # The reader notices the end of the pipe; from then on requests are refused.
                for _ in range(100):
                    if not worker.alive:
                        break
                    threading.Event().wait(0.05)  # real wait: for the reader thread to see EOF
            assert not worker.alive
            assert worker.submit("x = 1\n", "<test>", lambda code, s: None) is False
            assert any(e["event"] == "jit_compile_worker_unusable" for e in logs)
        finally:
            worker.close()

    def test_close_ends_child(self) -> None:
        """close() stops the child process and may be called twice."""
        worker = CompileWorker()
        _submit(worker, "x = 1\n")
        process = worker._process
        worker.close()
        worker.close()
        assert process is not None
        assert process.poll() is not None  # exited
        assert not worker.alive


class TestPreparedInstall:
    """A block compiled elsewhere is installed only if no code write happened meanwhile."""

    CODE = words(enc("addi", 10, 10, imm=1), enc("jal", 0, imm=-4))

    def test_installs(self) -> None:
        """Prepared, compiled, installed: the context then holds the block."""
        m = machine_with_code(self.CODE, writable_code=True)
        ctx = AsyncExecutionContext()
        prepared, serial = ctx.prepare(m.memory, CODE_BASE)
        code = compile_block_code(prepared.source, prepared.filename)
        assert ctx.install_compiled(m.memory, prepared, code, 0.001, serial) is not None
        assert ctx.block_info(m.memory, CODE_BASE) is not None

    def test_code_write_in_between_refuses(self) -> None:
        """A store into the block's page after prepare() makes the install a no-op."""
        m = machine_with_code(self.CODE, writable_code=True)
        ctx = AsyncExecutionContext()
        prepared, serial = ctx.prepare(m.memory, CODE_BASE)
        m.memory.store(CODE_BASE, 4, enc("addi", 10, 10, imm=2))
        code = compile_block_code(prepared.source, prepared.filename)
        assert ctx.install_compiled(m.memory, prepared, code, 0.001, serial) is None
        assert ctx.block_info(m.memory, CODE_BASE) is None


class TestHybridProcessMode:
    """``HybridExecutor(background="process")`` runs real programs with the same results."""

    def test_crc32_program(self, tmp_path: os.PathLike[str]) -> None:
        """crc32 prints what the inline hybrid prints; hot blocks compiled in the child run."""
        outputs = []
        for mode in (False, "process"):
            out_path = os.path.join(tmp_path, f"out-{mode}")
            with open(out_path, "wb") as out:
                m = load_program(
                    sample_path("crc32"),
                    ["crc32", "3000"],
                    root=str(tmp_path),
                    stdio=(0, out.fileno(), out.fileno()),
                )
                ex = HybridExecutor(m, threshold=5, background=mode)
                # Run part of the way, let the child finish what it was given, then go on: the
                # blocks it compiled are installed and run from then on.
                ex.run(max_instructions=60_000)
                if mode == "process":
                    assert ex._worker is not None
                    assert ex._worker.wait_idle(30)
                    assert ex._worker.compiled > 0
                m.termination = None
                status = ex.run()
                ex.close()
                m.linux.close()
            outputs.append((status, pathlib.Path(out_path).read_bytes()))
            if mode == "process":
                assert ex.context.stats().compilations > 0
                assert ex.tier_stats["jit"].instructions > 0
        assert outputs[0] == outputs[1]
        assert outputs[0][0] == 0

    def test_unknown_mode(self) -> None:
        """A background mode that does not exist is a ValueError naming the choices."""
        with pytest.raises(ValueError, match="process, thread"):
            HybridExecutor(background="fibers")


class TestBackPressure:
    """Many requests at once fill both pipes; the worker neither deadlocks nor loses one."""

    def test_burst(self) -> None:
        """300 sources of a few kilobytes each, submitted without waiting, all come back."""
        worker = CompileWorker()
        results: list[types.CodeType | None] = []
        lock = threading.Lock()

        def done(code: types.CodeType | None, _seconds: float) -> None:
            with lock:
                results.append(code)

        source = "".join(f"x{i} = {i} * 3 + 1\n" for i in range(200))
        try:
            for _ in range(300):
                assert worker.submit(source, "<burst>", done)
            assert worker.wait_idle(120)
            assert len(results) == 300
            assert all(code is not None for code in results)
        finally:
            worker.close()
