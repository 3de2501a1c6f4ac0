"""Degenerate loops (issue 19, item 3): a loop whose body does nothing must translate.

``for(;;);`` compiles to ``j .``; once x0 writes and nops are dropped, other loops have empty
bodies too. Each shape must stop on the budget with status 124 and the interpreter's exact state
under the JIT and the hybrid engine, never fail to compile (exit 70).
"""

from __future__ import annotations

import pathlib
import subprocess

import pytest
from jit_support import assemble, machine_with_code, need_tool, run_both

from vmkit.async_executor.cli import main
from vmkit.async_executor.engine import HybridExecutor, InterpreterExecutor

SHAPES = {
    "j-self": "1: j 1b",
    "nop-then-jump": "1: nop\n j 1b",
    "two-block-cycle": "1: j 2f\n2: j 1b",
    "branch-always": "1: beq zero, zero, 1b",
    "x0-writes": "1: addi zero, zero, 1\n add zero, a0, a1\n beqz zero, 1b",
    "c-jump": ".option rvc\n1: c.j 1b",
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("budget", [0, 1, 7, 1000])
def test_spin_loops_stop_on_the_budget(shape: str, budget: int) -> None:
    code = assemble(SHAPES[shape])
    ref, jit = run_both(code, budget=budget)
    assert ref.status == 124
    assert ref.instret == budget
    assert jit == ref


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_hybrid_translates_spin_loops(shape: str) -> None:
    code = assemble(SHAPES[shape])
    ref_machine = machine_with_code(code)
    assert InterpreterExecutor(ref_machine).run(max_instructions=5000) == 124
    machine = machine_with_code(code)
    executor = HybridExecutor(machine, threshold=1)
    assert executor.run(max_instructions=5000) == 124
    assert (machine.hart.pc, machine.hart.instret) == (ref_machine.hart.pc, 5000)
    assert executor.context.stats().compilations >= 1  # the loop was translated, not skipped


@pytest.mark.oracle
@pytest.mark.parametrize("engine", ["interp", "jit", "hybrid"])
def test_c_for_ever_on_every_engine(
    engine: str, tmp_path: pathlib.Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """``int main(void) { for (;;); }`` under the CLI: status 124 and the budget message."""
    need_tool("riscv64-linux-gnu-gcc")
    source = tmp_path / "spin.c"
    source.write_text("int main(void) { for (;;); }\n")
    exe = tmp_path / "spin"
    subprocess.run(
        ["riscv64-linux-gnu-gcc", "-O2", "-static", "-o", str(exe), str(source)],
        check=True,
        capture_output=True,
    )
    argv = ["run", "--engine", engine, "--max-instructions", "200000", "--root", str(tmp_path)]
    assert main([*argv, str(exe)]) == 124
    err = capfd.readouterr().err
    assert "instruction budget of 200000 exhausted" in err
    assert "internal error" not in err
