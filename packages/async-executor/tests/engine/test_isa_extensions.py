"""A hart configured without an extension traps where a real core without it would.

Checked on every engine with hand-assembled code, and on a compiled C program against
qemu-riscv64 run with the same extensions switched off (``-cpu rv64,f=false,d=false``).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from rv_support import assemble, machine_with_code, need_tool

from vmkit.async_executor.engine import HybridExecutor, InterpreterExecutor, JitExecutor
from vmkit.async_executor.isa import Isa, decoder_for
from vmkit.async_executor.loader import load_program
from vmkit.async_executor.machine import Machine

ENGINES = {
    "interp": InterpreterExecutor,
    "jit": JitExecutor,
    "hybrid": lambda: HybridExecutor(threshold=1),
}

# A loop so the hybrid engine translates it, then an FP multiply, then exit(7).
PROGRAM = """
    li t0, 50
1:  addi t0, t0, -1
    mul t1, t0, t0
    bnez t0, 1b
    fmv.d.x fa0, t1
    fmul.d fa0, fa0, fa0
    li a0, 7
    li a7, 93
    ecall
"""


def _machine(isa: str) -> Machine:
    machine = machine_with_code(assemble(PROGRAM))
    machine.isa = Isa.parse(isa)
    machine.decoder = decoder_for(machine.isa)
    return machine


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_full_isa_runs_the_program(engine: str) -> None:
    assert ENGINES[engine]().run(_machine("rv64gc")) == 7


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("isa", ["rv64imac", "rv64iafdc"])
def test_missing_extension_is_an_illegal_instruction(engine: str, isa: str) -> None:
    machine = _machine(isa)
    status = ENGINES[engine]().run(machine)
    assert status == 128 + 4  # SIGILL
    termination = machine.termination
    assert termination is not None
    assert (termination.reason, termination.signal) == ("signal", 4)
    # No M: the mul in the loop traps; no F/D: the loop runs and fmv.d.x traps.
    first = "mul" if isa == "rv64iafdc" else "fmv.d.x"
    assert f"illegal instruction `{first}" in termination.message


def test_translations_are_not_shared_across_isas() -> None:
    """One context, one code key, two harts: the reduced one still traps."""
    from vmkit.async_executor.engine import AsyncExecutionContext

    context = AsyncExecutionContext()
    assert JitExecutor(context=context, code_key="prog").run(_machine("rv64gc")) == 7
    assert JitExecutor(context=context, code_key="prog").run(_machine("rv64imac")) == 132


@pytest.mark.oracle
@pytest.mark.parametrize(
    ("isa", "qemu_cpu"),
    [("rv64imac", "rv64,f=false,d=false"), ("rv64iafdc", "rv64,m=false"), ("rv64gc", "rv64")],
)
def test_c_program_against_qemu(isa: str, qemu_cpu: str, tmp_path: Path) -> None:
    need_tool("riscv64-linux-gnu-gcc")
    need_tool("qemu-riscv64")
    source = tmp_path / "fp.c"
    source.write_text(
        "#include <stdio.h>\n"
        "volatile double a = 1.5, b = 2.25;\n"
        'int main(void) { puts("start"); fflush(stdout); printf("%d\\n", (int)(a * b)); }\n'
    )
    exe = tmp_path / "fp"
    subprocess.run(
        ["riscv64-linux-gnu-gcc", "-O2", "-static", "-o", str(exe), str(source)],
        check=True,
        capture_output=True,
    )
    expected = subprocess.run(
        ["qemu-riscv64", "-cpu", qemu_cpu, str(exe)], capture_output=True, check=False, timeout=60
    )
    out_path = tmp_path / "stdout"
    with out_path.open("wb") as out:
        machine = load_program(exe, ["fp"], {}, stdio=(0, out.fileno(), 2), isa=Isa.parse(isa))
        status = InterpreterExecutor().run(machine, max_instructions=50_000_000)
        os.fsync(out.fileno())
    # Python reports death by a signal as -signal; a shell (and our exit status) as 128 + signal.
    qemu_status = 128 - expected.returncode if expected.returncode < 0 else expected.returncode
    assert (status, out_path.read_bytes()) == (qemu_status, expected.stdout)
