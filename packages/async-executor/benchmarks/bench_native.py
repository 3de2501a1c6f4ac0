"""Marginal guest MIPS of the native tier beside the Python JIT, the hybrid and qemu-riscv64.

Usage: python packages/async-executor/benchmarks/bench_native.py [--repeat N] [--json] [KERNEL ...]

Each loop kernel of benchmarks/kernels/kernels.c (table CRC-32, sieve, integer matmul, recursive
fib, atomics: amoadd, an LR/SC compare-and-swap and amoswap, and a double-precision dot product)
is built with the cross compiler at
several ``SCALE``s (work multipliers) and each engine runs two of them; the marginal speed is
(instructions(hi) - instructions(lo)) / (seconds(hi) - seconds(lo)), so start-up, compilation of the
first regions and cold code cancel out and what remains is the speed of hot code, the figure the
targets are stated in (``SCALES`` says which scales each engine runs: 1 and 5 for the Python tiers,
1 and 201 for native code and qemu). Runs are interleaved and the best of ``--repeat`` is kept.
qemu-riscv64 runs the same binaries as a process (its instruction count is ours: the programs are
deterministic and every engine must retire the same count, which is checked, as is the exit status
against qemu's).

Also reported per kernel: the native tier's own counters at SCALE=5 (regions, median compile
time, share of instructions retired natively, exits by reason), and a cold against a warm start
with the on-disk native code cache at SCALE=5 (``WARM_SCALE``): in this process (time to the
guest's exit, regions compiled or loaded, compile time saved) and as a whole
``async-executor run --engine native`` process, best of ``--repeat``, cold and warm interleaved.
The marginal runs use no cache (every run compiles, as a cold start does).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vmkit.async_executor.engine import (
    AsyncExecutionContext,
    HybridExecutor,
    InterpreterExecutor,
    JitExecutor,
)
from vmkit.async_executor.engine.native import NativeCodeCache, NativeExecutor
from vmkit.async_executor.errors import GuestExit
from vmkit.async_executor.loader._elf import load_elf
from vmkit.async_executor.machine import PERM_R, PERM_W
from vmkit.async_executor.machine._machine import Machine

KERNELS = Path(__file__).parent / "kernels"
DEFINES = {
    "crc32": "KERNEL_CRC",
    "sieve": "KERNEL_SIEVE",
    "matmul": "KERNEL_MATMUL",
    "fib": "KERNEL_FIB",
    "atomics": "KERNEL_ATOMIC",
    "fdot": "KERNEL_FDOT",
}
#: Work scales each engine runs: the fast engines need far more work for compile-time noise (a
#: few milliseconds per region) to vanish from the difference.
SCALES = {
    "interp": (1, 5),
    "jit": (1, 5),
    "hybrid": (1, 5),
    "native": (1, 5, 201),
    "qemu": (1, 201),
}
#: The work scale of the cold/warm start comparison: short enough that compiling matters.
WARM_SCALE = 5
STACK_TOP = 0x7FFF_0000
STACK_SIZE = 0x100000


class _ExitOnly:
    """The kernels make one system call: exit."""

    def syscall(self, machine: Machine) -> None:
        if machine.hart.x[17] in (93, 94):
            raise GuestExit(machine.hart.x[10] & 0xFF)
        machine.hart.x[10] = (1 << 64) - 38


def _machine(binary: bytes) -> Machine:
    m = Machine(linux=_ExitOnly())  # type: ignore[arg-type]
    image = load_elf(m.memory, binary, "kernel")
    m.memory.map(STACK_TOP - STACK_SIZE, STACK_SIZE, PERM_R | PERM_W)
    m.hart.x[2] = STACK_TOP - 16
    m.hart.pc = image.entry
    return m


def _build(kernel: str, scale: int, out: Path) -> Path:
    exe = out / f"{kernel}-{scale}"
    subprocess.run(
        [
            "riscv64-linux-gnu-gcc",
            "-O2",
            "-static",
            "-nostdlib",
            "-ffreestanding",
            "-fno-builtin",
            "-march=rv64gc",
            "-mabi=lp64d",
            f"-D{DEFINES[kernel]}",
            f"-DSCALE={scale}",
            "-o",
            str(exe),
            str(KERNELS / "kernels.c"),
        ],
        check=True,
    )
    return exe


def _engines() -> dict[str, Callable[[Machine], Any]]:
    warm = AsyncExecutionContext()
    return {
        "interp": InterpreterExecutor,
        "jit": lambda m: JitExecutor(m, warm),  # one context: later runs skip compile()
        "hybrid": HybridExecutor,
        "native": lambda m: NativeExecutor(m, cache=False),  # compiles every run
    }


def _run(make: Callable[[Machine], Any], binary: bytes) -> tuple[float, int, int, Any]:
    m = _machine(binary)
    executor = make(m)
    t0 = time.perf_counter()
    status = executor.run(m)
    return time.perf_counter() - t0, status, m.hart.instret, executor


def _qemu(exe: Path) -> tuple[float, int]:
    t0 = time.perf_counter()
    status = subprocess.run(["qemu-riscv64", str(exe)], check=False).returncode
    return time.perf_counter() - t0, status


def _process(exe: Path, cache: Path) -> float:
    """Seconds of a whole ``async-executor run --engine native`` process using ``cache``."""
    command = [sys.executable, "-m", "vmkit.async_executor", "run", "--engine", "native"]
    t0 = time.perf_counter()
    subprocess.run([*command, "--native-cache", str(cache), str(exe)], check=False)
    return time.perf_counter() - t0


def warm_start(exe: Path, repeat: int, tmp: Path) -> dict[str, Any]:
    """A cold start (empty cache: compile and store) against a warm one (link from the cache),
    in process and as whole processes; best of ``repeat``, interleaved."""
    data = exe.read_bytes()
    cache = tmp / "native-cache"
    best: dict[str, float] = {}
    stats: dict[str, Any] = {}
    for _ in range(repeat):
        for phase in ("cold", "warm"):
            if phase == "cold":
                shutil.rmtree(cache, ignore_errors=True)
            # A new cache object per run: only the directory carries over, as between processes.
            seconds, _status, _instret, ex = _run(
                lambda m: NativeExecutor(m, cache=NativeCodeCache(cache)), data
            )
            if seconds <= best.get(phase, seconds):  # the counters of the run whose time is kept
                best[phase] = seconds
                stats[phase] = ex.native_stats.as_dict()
        for phase in ("cold", "warm"):
            if phase == "cold":
                shutil.rmtree(cache, ignore_errors=True)
            seconds = _process(exe, cache)
            best[f"process_{phase}"] = min(best.get(f"process_{phase}", seconds), seconds)
    return {
        "scale": WARM_SCALE,
        "seconds": best,
        "regions_compiled": {p: stats[p]["regions"] for p in ("cold", "warm")},
        "regions_cached": stats["warm"]["cached"],
        "compile_seconds": stats["cold"]["compile_seconds"],
        "cache_load_seconds": stats["warm"]["cache_seconds"],
        "compile_seconds_saved": stats["warm"]["compile_seconds_saved"],
    }


def bench(kernel: str, repeat: int, tmp: Path, skip_interp: bool) -> dict[str, Any]:
    all_scales = sorted({s for scales in SCALES.values() for s in scales})
    binaries = {s: _build(kernel, s, tmp) for s in all_scales}
    data = {s: binaries[s].read_bytes() for s in all_scales}
    engines = _engines()
    if skip_interp:
        engines.pop("interp")
    best: dict[tuple[str, int], tuple[float, int, int]] = {}
    native_stats: dict[str, Any] = {}
    for _ in range(repeat):
        for name, make in engines.items():
            for scale in SCALES[name]:
                seconds, status, instret, executor = _run(make, data[scale])
                key = (name, scale)
                if key not in best or seconds < best[key][0]:
                    best[key] = (seconds, status, instret)
                if name == "native" and scale == SCALES[name][-1]:
                    native_stats = executor.native_stats.as_dict()
                    native_stats["native_share"] = executor.native_stats.instructions / instret
                    native_stats["mips_in_native_code"] = (
                        executor.native_stats.instructions
                        / executor.native_stats.native_seconds
                        / 1e6
                    )
        if shutil.which("qemu-riscv64"):
            for scale in SCALES["qemu"]:
                seconds, status = _qemu(binaries[scale])
                key = ("qemu", scale)
                if key not in best or seconds < best[key][0]:
                    best[key] = (seconds, status, -1)
    # Instruction counts: the native engine ran every scale; all engines must agree with it.
    instr = {s: best[("native", s)][2] for s in SCALES["native"]}
    statuses = {k: v[1] for k, v in best.items()}
    counts = {k: v[2] for k, v in best.items() if v[2] >= 0}
    ok = all(counts[(n, s)] == instr[s] for n, s in counts)
    for scale in all_scales:
        ok = ok and len({statuses[(n, s)] for n, s in statuses if s == scale}) == 1
    marginal = {}
    for name in [*engines, "qemu"]:
        if (name, 1) not in best:
            continue
        low, high = SCALES[name][0], SCALES[name][-1]
        dt = best[(name, high)][0] - best[(name, low)][0]
        marginal[name] = (instr[high] - instr[low]) / dt / 1e6 if dt > 0 else float("inf")
    return {
        "kernel": kernel,
        "instructions": instr,
        "ok": ok,
        "marginal_mips": marginal,
        "native_over_jit": marginal["native"] / marginal["jit"],
        "qemu_over_native": marginal.get("qemu", float("nan")) / marginal["native"],
        "native": native_stats,
        "warm_start": warm_start(binaries[WARM_SCALE], repeat, tmp),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kernels", nargs="*", default=list(DEFINES))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--skip-interp", action="store_true", help="leave out the slow interpreter")
    args = parser.parse_args(argv)
    if shutil.which("riscv64-linux-gnu-gcc") is None:
        print("bench_native: needs riscv64-linux-gnu-gcc to build the kernels", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        rows = [bench(k, args.repeat, Path(tmp), args.skip_interp) for k in args.kernels]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0 if all(r["ok"] for r in rows) else 1
    print(
        f"{'kernel':8} "
        + " ".join(f"{n:>9}" for n in rows[0]["marginal_mips"])
        + "   (marginal MIPS)"
    )
    for r in rows:
        mips = " ".join(f"{v:9.1f}" for v in r["marginal_mips"].values())
        flag = "" if r["ok"] else "  MISMATCH"
        print(
            f"{r['kernel']:8} {mips}   native/jit {r['native_over_jit']:.1f}x, "
            f"qemu/native {r['qemu_over_native']:.1f}x{flag}"
        )
    for r in rows:
        n = r["native"]
        print(
            f"{r['kernel']:8} native: {n['mips_in_native_code']:.0f} MIPS inside native code, "
            f"{n['regions']} regions, mean compile "
            f"{n['mean_compile_ms']:.1f} ms, {100 * n['native_share']:.1f}% of instructions "
            f"native, exits {n['exits']}"
        )
    for r in rows:
        w = r["warm_start"]
        t = w["seconds"]
        print(
            f"{r['kernel']:8} start (SCALE={w['scale']}): cold {t['cold']:.3f} s "
            f"({w['regions_compiled']['cold']} regions compiled in {w['compile_seconds']:.3f} s), "
            f"warm {t['warm']:.3f} s ({w['regions_compiled']['warm']} compiled, "
            f"{w['regions_cached']} loaded in {w['cache_load_seconds']:.4f} s, "
            f"{w['compile_seconds_saved']:.3f} s of compiling saved); whole process "
            f"cold {t['process_cold']:.3f} s, warm {t['process_warm']:.3f} s"
        )
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
