"""Compiled C programs that stress the ISA behave under the interpreter as under qemu-riscv64."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from rv_support import need_tool

from vmkit.async_executor.engine import InterpreterExecutor
from vmkit.async_executor.loader import load_program

GCC = "riscv64-linux-gnu-gcc"
QEMU = "qemu-riscv64"
SOURCES = Path(__file__).parent / "isa_programs"


@pytest.mark.oracle
class TestProgramsAgainstQemu:
    """stdout and exit status equal qemu-riscv64's for each stress program."""

    @pytest.mark.parametrize("name", sorted(p.stem for p in SOURCES.glob("*.c")))
    def test_program(self, name: str, tmp_path: Path) -> None:
        """The program prints the same bytes and exits with the same status."""
        need_tool(GCC)
        need_tool(QEMU)
        exe = tmp_path / name
        subprocess.run(
            [GCC, "-O2", "-static", "-o", str(exe), str(SOURCES / f"{name}.c"), "-lm"],
            check=True,
            capture_output=True,
        )
        expected = subprocess.run([QEMU, str(exe)], capture_output=True, check=False, timeout=60)
        out_path = tmp_path / "stdout"
        with out_path.open("wb") as out:
            machine = load_program(exe, [name], {}, stdio=(0, out.fileno(), 2))
            status = InterpreterExecutor().run(machine, max_instructions=50_000_000)
            os.fsync(out.fileno())
        assert out_path.read_bytes() == expected.stdout
        assert status == expected.returncode
