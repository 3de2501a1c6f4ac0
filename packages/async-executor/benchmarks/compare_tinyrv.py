"""Side by side with tinyrv, the fastest pure-Python RISC-V emulator on PyPI, on the same kernels.

Usage: python packages/async-executor/benchmarks/compare_tinyrv.py [--repeat N] [KERNEL ...]

tinyrv (`pip install tinyrv`; `nox -s bench` installs it) runs the freestanding loop kernels of
benchmarks/kernels/ (they need only the exit system call, which tinyrv's ELF runner provides),
and so do this package's interpreter and JIT, interleaved in one process so that machine load
hits all alike. Each engine's best run is reported as guest MIPS (instructions retired per wall
second; tinyrv's own instruction counter, less the five instructions of its boot stub), with the
ratio to tinyrv. The three engines' exit statuses must agree: a kernel computed wrongly is flagged
and makes the script exit 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

import structlog
from interp_mips import KERNELS, _machine  # the kernels' machine set-up, shared with that script

from vmkit.async_executor.engine import InterpreterExecutor

#: tinyrv's ELF runner starts at a five-instruction boot stub before the program's entry point.
TINYRV_BOOT_INSTRUCTIONS = 5

Run = tuple[int, float, int]  # instructions, seconds, exit status


def run_tinyrv(path: Path) -> Run:
    """Run one kernel under tinyrv; its cycle counter counts retired instructions."""
    from tinyrv.user import elf_runner  # type: ignore[import-not-found]

    runner = elf_runner(str(path))
    start = time.perf_counter()
    runner.run(0, trace=False)
    elapsed = time.perf_counter() - start
    return runner.cycle - TINYRV_BOOT_INSTRUCTIONS, elapsed, runner.exitcode & 0xFF


def run_ours(path: Path, make_executor: Callable[..., object]) -> Run:
    """Run one kernel on a fresh machine under one of this package's executors."""
    machine = _machine(path)
    executor = make_executor(machine)
    start = time.perf_counter()
    status = executor.run()  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - start
    return machine.hart.instret, elapsed, status


def engines() -> dict[str, Callable[[Path], Run]]:
    """The engines to compare, tinyrv first; the JIT only where this version has one."""
    found: dict[str, Callable[[Path], Run]] = {
        "tinyrv": run_tinyrv,
        "interp": lambda p: run_ours(p, InterpreterExecutor),
    }
    try:
        from vmkit.async_executor.engine._jit import JitExecutor
    except ImportError:
        return found
    found["jit"] = lambda p: run_ours(p, JitExecutor)
    return found


def main() -> int:
    """Run every kernel under every engine and print MIPS and the ratio to tinyrv."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kernels", nargs="*", default=["crc32", "sieve", "matmul"])
    parser.add_argument("--repeat", type=int, default=2, help="runs per kernel and engine")
    args = parser.parse_args()
    # An entry point configures logging: per-run debug events would otherwise interleave the table.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    try:
        import tinyrv  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        print("tinyrv is not installed: pip install tinyrv", file=sys.stderr)
        return 2
    table = engines()
    print(f"{'kernel':<8} {'engine':<7} {'instructions':>13} {'MIPS':>7} {'x tinyrv':>9}  status")
    failed = False
    for name in args.kernels:
        path = KERNELS / name
        best: dict[str, Run] = {}
        for _ in range(args.repeat):
            for engine, run in table.items():
                result = run(path)
                if engine not in best or result[1] < best[engine][1]:
                    best[engine] = result
        statuses = {result[2] for result in best.values()}
        agree = len(statuses) == 1
        failed |= not agree
        base_mips = best["tinyrv"][0] / best["tinyrv"][1] / 1e6
        for engine, (instructions, seconds, status) in best.items():
            mips = instructions / seconds / 1e6
            flag = "" if agree else "  MISMATCH"
            print(
                f"{name:<8} {engine:<7} {instructions:>13,} {mips:>7.2f} "
                f"{mips / base_mips:>8.1f}x  {status}{flag}"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
