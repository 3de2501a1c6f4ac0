"""Interpreter throughput on loop kernels: guest MIPS of the InterpreterExecutor.

Usage: python packages/async-executor/benchmarks/interp_mips.py [--repeat N] [KERNEL ...]

The kernels (benchmarks/kernels/, prebuilt, freestanding RV64GC: CRC-32, sieve, matrix multiply)
run to completion; each run's exit status is checked against qemu-riscv64 when it is installed.
The figure reported per kernel is the best of ``--repeat`` runs (a fresh machine and executor each
time, so decoding is included), as guest instructions retired per second of wall time.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from vmkit.async_executor.engine import InterpreterExecutor
from vmkit.async_executor.errors import GuestExit
from vmkit.async_executor.loader._elf import load_elf
from vmkit.async_executor.machine import PERM_R, PERM_W
from vmkit.async_executor.machine._machine import Machine

KERNELS = Path(__file__).parent / "kernels"
STACK_TOP = 0x7FFF_0000
STACK_SIZE = 0x10000


class _ExitOnly:
    """The kernels make one syscall, exit."""

    def syscall(self, machine: Machine) -> None:
        if machine.hart.x[17] in (93, 94):
            raise GuestExit(machine.hart.x[10] & 0xFF)
        machine.hart.x[10] = (1 << 64) - 38  # -ENOSYS


def _machine(path: Path) -> Machine:
    m = Machine(linux=_ExitOnly())  # type: ignore[arg-type]
    image = load_elf(m.memory, path.read_bytes(), path.name)
    m.memory.map(STACK_TOP - STACK_SIZE, STACK_SIZE, PERM_R | PERM_W)
    m.hart.x[2] = STACK_TOP - 16
    m.hart.pc = image.entry
    return m


def _qemu_status(path: Path) -> int | None:
    if shutil.which("qemu-riscv64") is None:
        return None
    return subprocess.run(["qemu-riscv64", str(path)], check=False).returncode


def main() -> int:
    """Run the kernels and print a table of guest MIPS."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kernels", nargs="*", default=["crc32", "sieve", "matmul"])
    parser.add_argument("--repeat", type=int, default=3, help="runs per kernel (best is kept)")
    args = parser.parse_args()
    print(f"{'kernel':<8} {'instructions':>13} {'seconds':>8} {'MIPS':>6}  status (qemu)")
    failed = False
    for name in args.kernels:
        path = KERNELS / name
        best = None
        for _ in range(args.repeat):
            m = _machine(path)
            ex = InterpreterExecutor(m)
            t0 = time.perf_counter()
            status = ex.run()
            elapsed = time.perf_counter() - t0
            if best is None or elapsed < best[1]:
                best = (m.hart.instret, elapsed, status)
        assert best is not None
        instret, elapsed, status = best
        expected = _qemu_status(path)
        ok = expected is None or expected == status
        failed |= not ok
        print(
            f"{name:<8} {instret:>13,} {elapsed:>8.3f} {instret / elapsed / 1e6:>6.2f}  "
            f"{status} ({'?' if expected is None else expected}){'' if ok else '  MISMATCH'}"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
