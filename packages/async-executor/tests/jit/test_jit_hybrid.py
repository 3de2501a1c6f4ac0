"""HybridExecutor: tiers agree with the interpreter; hot blocks get translated, cold ones not."""

from __future__ import annotations

import json
import pathlib
import tempfile
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jit_support import CODE_BASE, DATA_BASE, EXIT, enc, li, machine_with_code, words

from vmkit.async_executor.engine import InterpreterExecutor
from vmkit.async_executor.engine._context import AsyncExecutionContext
from vmkit.async_executor.engine._jit_hybrid import HybridExecutor
from vmkit.async_executor.loader import load_program
from vmkit.async_executor.samples import path as sample_path

GUEST = pathlib.Path(__file__).resolve().parents[2] / "guest"
SPEC: dict[str, Any] = json.loads((GUEST / "cases.json").read_text())
CASES = {c["id"]: c for c in SPEC["cases"]}


def _nested_loops(outer: int, inner: int) -> bytes:
    """a0 counts outer * inner iterations of two nested loops (the inner one a self-loop)."""
    return words(
        *li(5, outer),  # 0
        *li(6, inner),  # 8: inner count
        enc("addi", 10, 10, imm=1),  # 16: inner body
        enc("addi", 6, 6, imm=-1),
        enc("bne", 0, 6, 0, imm=-8),
        enc("addi", 5, 5, imm=-1),  # 28
        enc("bne", 0, 5, 0, imm=-24),  # back to 8
        *EXIT,
    )


def _outcome(m: Any, status: int) -> tuple[int, tuple[int, ...], int, int, bytes]:
    return status, tuple(m.hart.x[:32]), m.hart.pc, m.hart.instret, m.memory.peek(DATA_BASE, 64)


class TestTiers:
    """Blocks move to the JIT tier once they are hot; the tiers can be forced."""

    def test_threshold(self) -> None:
        """With threshold 10 only the blocks run 10 times or more are translated."""
        m = machine_with_code(_nested_loops(20, 3))
        ex = HybridExecutor(m, threshold=10)
        assert ex.run() == 60
        ns = ex.context.namespace(m.memory)
        assert CODE_BASE not in ns.blocks  # the entry block ran once
        assert len(ns.blocks) >= 1
        cold, hot = ex.tier_stats["interp"], ex.tier_stats["jit"]
        assert cold.instructions + hot.instructions == m.hart.instret
        assert cold.executions + hot.executions == ex.stats.executions
        assert hot.instructions > cold.instructions

    def test_interp_only_and_jit_only(self) -> None:
        """tier='interp' never translates; tier='jit' translates every block it reaches."""
        ctx = AsyncExecutionContext()
        m = machine_with_code(_nested_loops(5, 5))
        assert HybridExecutor(m, ctx, tier="interp").run() == 25
        assert ctx.stats().compilations == 0
        m = machine_with_code(_nested_loops(5, 5))
        ex = HybridExecutor(m, ctx, tier="jit")
        assert ex.run() == 25
        assert ctx.stats().compilations >= 3
        assert ex.tier_stats["interp"].instructions == 0
        assert ex.tier_stats["jit"].instructions == m.hart.instret

    def test_bad_arguments(self) -> None:
        """Unknown tiers and thresholds below one are refused with a clear message."""
        with pytest.raises(ValueError, match="tier"):
            HybridExecutor(tier="fast")
        with pytest.raises(ValueError, match="threshold"):
            HybridExecutor(threshold=0)

    def test_background_compilation(self) -> None:
        """With a background compiler the result is the same and hot blocks get installed."""
        m = machine_with_code(_nested_loops(200, 4))
        ex = HybridExecutor(m, threshold=5, background=True)
        assert ex.run() == (200 * 4) & 0xFF
        ex.close()
        assert ex.context.stats().compilations >= 1


class TestAgainstInterpreter:
    """The hybrid ends every guest in the interpreter's state, budgets included."""

    @settings(
        max_examples=25,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(st.integers(1, 12), st.integers(1, 6), st.integers(1, 8), st.integers(0, 200))
    def test_nested_loops(self, outer: int, inner: int, threshold: int, budget: int) -> None:
        """Any threshold and budget: same registers, pc, instret and status."""
        code = _nested_loops(outer, inner)
        m1, m2 = machine_with_code(code), machine_with_code(code)
        ref = _outcome(m1, InterpreterExecutor(m1).run(max_instructions=budget))
        got = _outcome(m2, HybridExecutor(m2, threshold=threshold).run(max_instructions=budget))
        assert got == ref
        assert m2.termination is not None
        assert m1.termination is not None
        assert m2.termination.message == m1.termination.message

    def test_fault_in_hot_loop(self) -> None:
        """A fault inside a loop that was translated mid-run is exact."""
        code = words(enc("ld", 5, 8), enc("addi", 8, 8, imm=8), enc("jal", 0, imm=-8))
        m1, m2 = machine_with_code(code), machine_with_code(code)
        for m in (m1, m2):
            m.hart.x[8] = DATA_BASE
        ref = _outcome(m1, InterpreterExecutor(m1).run())
        got = _outcome(m2, HybridExecutor(m2, threshold=3).run())
        assert got == ref
        assert ref[0] == 139


class TestPrograms:
    """Guest programs (self-modifying trampolines, signals, stdio) under the hybrid."""

    @pytest.mark.parametrize(
        "case_id", ["hello", "qsort", "trampoline", "exits-abort", "fileio-tmp"]
    )
    def test_case(self, case_id: str, tmp_path: pathlib.Path) -> None:
        """stdout and status equal qemu-riscv64's recording."""
        case = CASES[case_id]
        try:
            binary = sample_path(case["program"])
        except KeyError:
            binary = GUEST / "prebuilt" / case["program"]
        with (
            tempfile.TemporaryFile() as stdin,
            tempfile.TemporaryFile() as out,
            tempfile.TemporaryFile() as err,
        ):
            stdin.write(case.get("stdin", "").encode())
            stdin.seek(0)
            m = load_program(
                binary,
                [str(binary), *case["args"]],
                env=SPEC["env"],
                root=str(tmp_path),
                stdio=(stdin.fileno(), out.fileno(), err.fileno()),
            )
            try:
                status = HybridExecutor(m, threshold=4).run(max_instructions=100_000_000)
            finally:
                m.linux.close()
            out.seek(0)
            stdout = out.read()
        expected = (GUEST / "expected" / f"{case_id}.stdout").read_bytes()
        assert stdout == expected
        assert status == int((GUEST / "expected" / f"{case_id}.status").read_text())
