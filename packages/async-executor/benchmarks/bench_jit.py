"""JIT throughput and compile cost, side by side with the interpreter.

Usage: python packages/async-executor/benchmarks/bench_jit.py [--repeat N] [--json] [KERNEL ...]

For each loop kernel (``tight-crc``, a register-only bitwise CRC loop embedded below, and
benchmarks/kernels/: freestanding table CRC-32, sieve, matrix multiply) it runs,
interleaved so machine load hits all alike, ``--repeat`` times each:

* ``interp``: the InterpreterExecutor on a fresh machine;
* ``jit cold``: a JitExecutor with a fresh context (translation and compilation included);
* ``jit warm``: a JitExecutor on a fresh machine whose context has run the kernel before, so
  every block's compiled code comes from the context's code cache (no ``compile()``): close to
  pure execution speed;
* ``hybrid``: the HybridExecutor (tiered, default threshold).

The time of one translation is split into its phases (decoding, generating source,
``compile()``), re-translating every block of the libc programs. Then whole libc programs
(short, dominated by cold code) under the interpreter, the JIT, the
hybrid and the hybrid with a background compiler (a thread, and a child process); and the
dispatch cost of a translated block
(two one-instruction blocks on different pages jumping to each other: a cache hit plus a call).

The best run of each is reported as guest MIPS (instructions retired / wall seconds), with the
ratios JIT/interpreter. Compile cost per block is the median translate+compile time over every
block the JIT compiled for the kernels and for the bundled libc programs (``hello``, ``crc32``),
which have far more, and more typical, blocks than the kernels. Exit statuses of the three runs
must agree (and equal qemu-riscv64's when it is installed), else the kernel is flagged.
A calibration loop (pure Python, ns per iteration) shows how loaded the machine was.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import structlog

from vmkit.async_executor.engine import InterpreterExecutor
from vmkit.async_executor.engine._context import AsyncExecutionContext
from vmkit.async_executor.engine._jit import JitExecutor
from vmkit.async_executor.engine._jit_hybrid import HybridExecutor
from vmkit.async_executor.engine._translate import (
    decode_region,
    generate_region_source,
    generate_source,
)
from vmkit.async_executor.errors import GuestExit
from vmkit.async_executor.loader import load_program
from vmkit.async_executor.loader._elf import load_elf
from vmkit.async_executor.machine import PERM_R, PERM_W
from vmkit.async_executor.machine._machine import Machine
from vmkit.async_executor.samples import path as sample_path

KERNELS = Path(__file__).parent / "kernels"
#: A tight integer loop with no memory access: 400000 rounds of bitwise CRC-32, assembled with
#: riscv64-linux-gnu-as -march=rv64gc from
#:   li a0,-1; li a4,400000; li a5,0xEDB88320
#:   loop: andi t1,a0,1; srli a0,a0,1; neg t1,t1; and t1,t1,a5; xor a0,a0,t1; addiw a4,a4,-1;
#:         bnez a4,loop; li a7,93; ecall
#: Exit status: the low byte of the CRC register, 181 (checked by the same loop in Python).
TIGHT_CRC = bytes.fromhex(
    "7d55372706001b0707a8f9679b8717b7be0793870732137315000581330360403373f300334565007d37"
    "75f79308d00573000000"
)
TIGHT_STATUS = 181
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
    if path.name == "tight-crc":
        m.memory.map(0x10000, 0x1000, PERM_R | 4, TIGHT_CRC)
        m.hart.pc = 0x10000
        return m
    image = load_elf(m.memory, path.read_bytes(), path.name)
    m.memory.map(STACK_TOP - STACK_SIZE, STACK_SIZE, PERM_R | PERM_W)
    m.hart.x[2] = STACK_TOP - 16
    m.hart.pc = image.entry
    return m


def _qemu_status(path: Path) -> int | None:
    if path.name == "tight-crc":
        return TIGHT_STATUS
    if shutil.which("qemu-riscv64") is None:
        return None
    return subprocess.run(["qemu-riscv64", str(path)], check=False).returncode


def _calibrate() -> float:
    """Nanoseconds per iteration of a masked-add Python loop (machine speed and load)."""
    t0 = time.perf_counter()
    x = 0
    for i in range(300_000):
        x = (x + i) & 0xFFFF_FFFF_FFFF_FFFF
    return (time.perf_counter() - t0) / 300_000 * 1e9


def _timed(run: Any) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    status, instret = run()
    return time.perf_counter() - t0, status, instret


def bench_kernel(name: str, repeat: int, compile_times: list[float]) -> dict[str, Any]:
    """Interleaved best-of-``repeat`` runs of one kernel under the three configurations."""
    path = KERNELS / name
    warm_ctx = AsyncExecutionContext()
    prime = _machine(path)
    JitExecutor(prime, warm_ctx).run()
    best: dict[str, tuple[float, int, int]] = {}

    def interp() -> tuple[int, int]:
        m = _machine(path)
        return InterpreterExecutor(m).run(), m.hart.instret

    def jit_cold() -> tuple[int, int]:
        m = _machine(path)
        ctx = AsyncExecutionContext()
        status = JitExecutor(m, ctx).run()
        compile_times.extend(b.compile_time for ns in ctx.namespaces() for b in ns.meta.values())
        return status, m.hart.instret

    def jit_warm() -> tuple[int, int]:
        m = _machine(path)
        return JitExecutor(m, warm_ctx).run(), m.hart.instret

    def hybrid() -> tuple[int, int]:
        m = _machine(path)
        return HybridExecutor(m).run(), m.hart.instret

    configs = (
        ("interp", interp),
        ("jit_cold", jit_cold),
        ("jit_warm", jit_warm),
        ("hybrid", hybrid),
    )
    for _ in range(repeat):
        for label, fn in configs:
            result = _timed(fn)
            if label not in best or result[0] < best[label][0]:
                best[label] = result
    statuses = {label: r[1] for label, r in best.items()}
    instrets = {label: r[2] for label, r in best.items()}
    expected = _qemu_status(path)
    ok = len(set(statuses.values())) == 1 and len(set(instrets.values())) == 1
    ok = ok and (expected is None or expected == statuses["interp"])
    mips = {label: r[2] / r[0] / 1e6 for label, r in best.items()}
    return {
        "kernel": name,
        "instructions": instrets["interp"],
        "status": statuses["interp"],
        "qemu_status": expected,
        "ok": ok,
        "mips": mips,
        "seconds": {label: r[0] for label, r in best.items()},
        "speedup_cold": mips["jit_cold"] / mips["interp"],
        "speedup_warm": mips["jit_warm"] / mips["interp"],
        "speedup_hybrid": mips["hybrid"] / mips["interp"],
    }


def _program_machine(prog: str, args: list[str], root: str, sink: int) -> Machine:
    return load_program(
        sample_path(prog), [prog, *args], root=root, stdio=(sys.stdin.fileno(), sink, sink)
    )


def bench_program_engines(repeat: int) -> list[dict[str, Any]]:
    """Best-of-``repeat`` wall time of libc programs under each engine (cold start each time)."""
    rows = []
    for prog, args in (("hello", []), ("crc32", ["20000"]), ("sieve", ["200000"])):
        best: dict[str, float] = {}
        instret = 0
        for _ in range(repeat):
            for label in ("interp", "jit", "hybrid", "hybrid_thread", "hybrid_process"):
                with tempfile.TemporaryDirectory() as root, open(os.devnull, "wb") as sink:
                    m = _program_machine(prog, args, root, sink.fileno())
                    if label == "interp":
                        ex: Any = InterpreterExecutor(m)
                    elif label == "jit":
                        ex = JitExecutor(m)
                    else:
                        ex = HybridExecutor(m, background=label.partition("_")[2] or False)
                    t0 = time.perf_counter()
                    ex.run()
                    elapsed = time.perf_counter() - t0
                    if isinstance(ex, HybridExecutor):
                        ex.close()
                    m.linux.close()
                    instret = m.hart.instret
                    best[label] = min(best.get(label, float("inf")), elapsed)
        rows.append({"program": " ".join([prog, *args]), "instructions": instret, "seconds": best})
    return rows


def bench_dispatch() -> float:
    """Nanoseconds per execution of a translated one-instruction block (hit + call + return)."""

    def enc_jal(offset: int) -> bytes:
        imm = offset & 0x1FFFFF
        word = 0x6F | ((imm >> 20) & 1) << 31 | ((imm >> 1) & 0x3FF) << 21
        word |= ((imm >> 11) & 1) << 20 | ((imm >> 12) & 0xFF) << 12
        return word.to_bytes(4, "little")

    m = Machine(linux=_ExitOnly())  # type: ignore[arg-type]
    code = enc_jal(0x1000) + bytes(0x1000 - 4) + enc_jal(-0x1000)  # ping-pong across pages
    m.memory.map(0x10000, 0x2000, PERM_R | 4, code)
    m.hart.pc = 0x10000
    ex = JitExecutor(m)
    ex.run(max_instructions=1000)  # translate both blocks
    m.hart.pc = 0x10000
    n = 400_000
    t0 = time.perf_counter()
    ex.run(max_instructions=n)
    return (time.perf_counter() - t0) / n * 1e9


def bench_programs(compile_times: list[float]) -> dict[str, Any]:
    """Compile every block of two libc programs; return per-program block counts."""
    counts = {}
    for prog, args in (("hello", []), ("crc32", ["2000"])):
        with tempfile.TemporaryDirectory() as root, open(os.devnull, "wb") as sink:
            m = load_program(
                sample_path(prog),
                [prog, *args],
                root=root,
                stdio=(sys.stdin.fileno(), sink.fileno(), sink.fileno()),
            )
            ctx = AsyncExecutionContext()
            JitExecutor(m, ctx).run()
            m.linux.close()
            times = [b.compile_time for ns in ctx.namespaces() for b in ns.meta.values()]
            compile_times.extend(times)
            counts[prog] = len(times)
    return counts


def bench_translate_phases(repeat: int = 3) -> dict[str, float]:
    """Median microseconds per translation spent decoding, generating source and in
    ``compile()``, over every block of the libc programs (best of ``repeat`` per block)."""
    phases: dict[str, list[float]] = {"decode": [], "generate": [], "compile": []}
    sizes: list[int] = []
    for prog, args in (("hello", []), ("crc32", ["2000"])):
        with tempfile.TemporaryDirectory() as root, open(os.devnull, "wb") as sink:
            m = _program_machine(prog, args, root, sink.fileno())
            ctx = AsyncExecutionContext()
            JitExecutor(m, ctx).run()
            m.linux.close()
            pcs = [pc for ns in ctx.namespaces() for pc in ns.meta]
        for pc in pcs:
            best: tuple[float, float, float] | None = None
            for _ in range(repeat):
                t0 = time.perf_counter()
                blocks = decode_region(m.memory, pc)
                t1 = time.perf_counter()
                if len(blocks) > 1:
                    source = generate_region_source(blocks).source
                else:
                    source = generate_source(blocks[0]).source
                t2 = time.perf_counter()
                compile(source, "<bench>", "exec", dont_inherit=True)
                t3 = time.perf_counter()
                times = (t1 - t0, t2 - t1, t3 - t2)
                if best is None or sum(times) < sum(best):
                    best = times
            assert best is not None
            for name, value in zip(phases, best, strict=True):
                phases[name].append(value)
            sizes.append(len(source))
    result = {name: statistics.median(values) * 1e6 for name, values in phases.items()}
    result["source_chars"] = statistics.median(sizes)
    return result


def main() -> int:
    """Run the benchmark and print a table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kernels", nargs="*", default=["tight-crc", "crc32", "sieve", "matmul"])
    parser.add_argument("--repeat", type=int, default=3, help="runs per configuration (best kept)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    calib_before = _calibrate()
    compile_times: list[float] = []
    rows = [bench_kernel(name, args.repeat, compile_times) for name in args.kernels]
    program_blocks = bench_programs(compile_times)
    engines = bench_program_engines(args.repeat)
    phases = bench_translate_phases()
    dispatch_ns = bench_dispatch()
    calib_after = _calibrate()
    summary = {
        "calibration_ns_per_iteration": [calib_before, calib_after],
        "kernels": rows,
        "compiled_blocks": len(compile_times),
        "program_blocks": program_blocks,
        "median_compile_us": statistics.median(compile_times) * 1e6,
        "p90_compile_us": sorted(compile_times)[int(0.9 * (len(compile_times) - 1))] * 1e6,
        "translate_phases_median_us": phases,
        "programs": engines,
        "dispatch_ns_per_block": dispatch_ns,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"calibration: {calib_before:.0f} / {calib_after:.0f} ns per Python loop iteration "
            "(before / after; lower is a faster, less loaded machine)"
        )
        print(
            f"{'kernel':<9} {'instructions':>12} {'interp':>8} {'jit cold':>9} {'jit warm':>9} "
            f"{'hybrid':>8} {'cold x':>7} {'warm x':>7} {'hyb x':>6}  status (qemu)"
        )
        for r in rows:
            mips = r["mips"]
            print(
                f"{r['kernel']:<9} {r['instructions']:>12,} {mips['interp']:>8.2f} "
                f"{mips['jit_cold']:>9.2f} {mips['jit_warm']:>9.2f} {mips['hybrid']:>8.2f} "
                f"{r['speedup_cold']:>6.1f}x {r['speedup_warm']:>6.1f}x "
                f"{r['speedup_hybrid']:>5.1f}x  {r['status']} ({r['qemu_status']})"
                f"{'' if r['ok'] else '  MISMATCH'}"
            )
        print("(MIPS: guest instructions per second, millions; best of the runs)")
        print(
            f"compile: median {summary['median_compile_us']:.0f} us, p90 "
            f"{summary['p90_compile_us']:.0f} us per block over {len(compile_times)} blocks "
            f"(kernels and the libc programs {program_blocks})"
        )
        print(
            f"translate phases (median us, libc blocks re-translated): decode "
            f"{phases['decode']:.0f}, generate {phases['generate']:.0f}, compile() "
            f"{phases['compile']:.0f}; median source {phases['source_chars']:.0f} characters"
        )
        print(
            f"{'program':<22} {'instructions':>12} {'interp':>7} {'jit':>7} {'hybrid':>7} "
            f"{'thread':>7} {'process':>7}  (seconds, best of the runs; hybrid with a background "
            "compiler thread or process)"
        )
        for e in engines:
            sec = e["seconds"]
            print(
                f"{e['program']:<22} {e['instructions']:>12,} {sec['interp']:>7.3f} "
                f"{sec['jit']:>7.3f} {sec['hybrid']:>7.3f} {sec['hybrid_thread']:>7.3f} "
                f"{sec['hybrid_process']:>7.3f}"
            )
        print(f"dispatch: {dispatch_ns:.0f} ns per translated one-instruction block")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
