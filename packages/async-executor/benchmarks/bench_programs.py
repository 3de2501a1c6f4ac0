"""Whole programs end to end: the hybrid without and with its native tier, --engine native, qemu.

Usage: python packages/async-executor/benchmarks/bench_programs.py [--repeat N] [--json]
       [--quick] [--skip-programs] [--skip-samples]

Two parts, each run side by side and interleaved (configurations alternate within a repeat; the
best of ``--repeat`` is kept), every run a whole ``async-executor run`` process, start-up
included, its stdout and exit status checked against qemu-riscv64's:

* Programs of our own (``benchmarks/programs/``), built with ``riscv64-linux-gnu-gcc -O2 -static``:
  ``malloc_heavy`` (glibc malloc/free/realloc of varied sizes: a string hash table, a search
  tree, a ring of random blocks; about 100 million instructions per round) and ``hot_loops``
  (list merge sort, integer matrix multiply, a text state machine, CRC-16; about 345 thousand
  instructions per iteration). Reported: seconds per configuration, the speed-up of the hybrid
  with native code over the hybrid without, and what kept code out of native code (native exits
  by reason, and the instructions native code stopped at).
* The bundled samples (``vmkit.async_executor.samples``), with their default arguments and a few
  larger ones: the hybrid with the native tier (its defaults) against ``--no-native``, so that the
  threshold's promise (short programs never pay LLVM's compile cost; never more than 10% slower)
  is measured, not assumed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from vmkit.async_executor.samples import path as sample_path

PROGRAMS = Path(__file__).parent / "programs"
#: (source, arguments): hundreds of millions of instructions each.
WHOLE_PROGRAMS = {
    "malloc_heavy": ("malloc_heavy.c", ["5"]),
    "hot_loops": ("hot_loops.c", ["1000"]),
}
#: --quick: the same programs, a tenth of the work (for a look, not for the targets).
QUICK_ARGS = {"malloc_heavy": ["1"], "hot_loops": ["100"]}
CONFIGS = {
    "hybrid": ["--engine", "hybrid", "--no-native"],
    "hybrid+native": ["--engine", "hybrid", "--native"],
    "native": ["--engine", "native"],
}
#: Bundled samples with their default arguments, then longer runs of the same programs (the
#: longer ones cross the native tier's warm-up, where its cost would show).
SAMPLE_RUNS = [
    ("hello", []),
    ("exits", []),
    ("crc32", []),
    ("sieve", []),
    ("matmul", []),
    ("pthreads", []),
    ("crc32", ["200000"]),
    ("sieve", ["2000000"]),
    ("matmul", ["48"]),
]


def _build(source: str, out: Path) -> Path:
    exe = out / Path(source).stem
    subprocess.run(
        ["riscv64-linux-gnu-gcc", "-O2", "-static", "-o", str(exe), str(PROGRAMS / source)],
        check=True,
    )
    return exe


def _run(command: list[str], cwd: Path) -> tuple[float, int, bytes, bytes]:
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, check=False, cwd=cwd)
    return time.perf_counter() - t0, done.returncode, done.stdout, done.stderr


def _ours(config: list[str], exe: Path, args: list[str], stats: bool) -> list[str]:
    extra = ["--stats", "--stats-format", "json"] if stats else []
    return [sys.executable, "-m", "vmkit.async_executor", "run", *config, *extra, str(exe), *args]


def _stats_of(stderr: bytes) -> dict[str, Any]:
    for line in reversed(stderr.decode(errors="replace").splitlines()):
        if line.startswith("{"):
            data: dict[str, Any] = json.loads(line)
            return data
    return {}


def _summary(stats: dict[str, Any]) -> dict[str, Any]:
    """What kept code out of native code, from one run's --stats."""
    native = stats.get("native") or {}
    tierup = stats.get("native_tierup") or {}
    total = max(1, stats.get("instructions", 0))
    return {
        "instructions": stats.get("instructions"),
        "native_share": native.get("instructions", 0) / total,
        "regions": native.get("regions", 0),
        "compile_seconds": native.get("compile_seconds", 0.0),
        "mean_compile_ms": native.get("mean_compile_ms", 0.0),
        "native_seconds": native.get("native_seconds", 0.0),
        "exits": native.get("exits", {}),
        "unsupported_by_instruction": tierup.get("unsupported_exits", {}),
        "declined_loops": tierup.get("declined_loops", 0),
    }


def bench_programs(repeat: int, quick: bool, tmp: Path) -> list[dict[str, Any]]:
    rows = []
    for name, (source, full_args) in WHOLE_PROGRAMS.items():
        exe = _build(source, tmp)
        args = QUICK_ARGS[name] if quick else full_args
        best: dict[str, float] = {}
        outputs: dict[str, tuple[int, bytes]] = {}
        stats: dict[str, dict[str, Any]] = {}
        for _ in range(repeat):
            if shutil.which("qemu-riscv64"):
                seconds, status, out, _err = _run(["qemu-riscv64", str(exe), *args], tmp)
                best["qemu"] = min(best.get("qemu", seconds), seconds)
                outputs["qemu"] = (status, out)
            for config, options in CONFIGS.items():
                seconds, status, out, err = _run(_ours(options, exe, args, True), tmp)
                best[config] = min(best.get(config, seconds), seconds)
                outputs[config] = (status, out)
                stats[config] = _stats_of(err)
        reference = outputs.get("qemu", outputs["hybrid"])
        rows.append(
            {
                "program": name,
                "args": args,
                "seconds": best,
                "ok": all(result == reference for result in outputs.values()),
                "speedup_over_hybrid": {
                    config: best["hybrid"] / best[config] for config in best if config != "hybrid"
                },
                "native": {
                    config: _summary(stats[config]) for config in ("hybrid+native", "native")
                },
            }
        )
    return rows


def bench_samples(repeat: int, tmp: Path) -> list[dict[str, Any]]:
    rows = []
    for name, args in SAMPLE_RUNS:
        exe = sample_path(name)
        times: dict[str, list[float]] = {"without": [], "with": []}
        results: dict[str, tuple[int, bytes]] = {}
        native_regions = 0
        for _ in range(repeat):
            for label, option in (("without", "--no-native"), ("with", None)):
                config = ["--engine", "hybrid"] + ([option] if option else [])
                seconds, status, out, err = _run(_ours(config, exe, args, True), tmp)
                times[label].append(seconds)
                results[label] = (status, out)
                if label == "with":
                    native_regions = (_stats_of(err).get("native") or {}).get("regions", 0)
        ratio = statistics.median(times["with"]) / statistics.median(times["without"])
        rows.append(
            {
                "sample": " ".join([name, *args]),
                "without_native_s": statistics.median(times["without"]),
                "with_native_s": statistics.median(times["with"]),
                "ratio": ratio,
                "native_regions": native_regions,
                "ok": results["with"] == results["without"],
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per configuration (best)")
    parser.add_argument("--sample-repeat", type=int, default=5, help="runs per sample (median)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true", help="a tenth of the work")
    parser.add_argument("--skip-programs", action="store_true")
    parser.add_argument("--skip-samples", action="store_true")
    args = parser.parse_args(argv)
    if shutil.which("riscv64-linux-gnu-gcc") is None:
        print("bench_programs: needs riscv64-linux-gnu-gcc to build the programs", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        programs = [] if args.skip_programs else bench_programs(args.repeat, args.quick, tmp)
        samples = [] if args.skip_samples else bench_samples(args.sample_repeat, tmp)
    ok = all(r["ok"] for r in programs + samples)
    if args.json:
        print(json.dumps({"programs": programs, "samples": samples}, indent=2))
        return 0 if ok else 1
    for r in programs:
        seconds = ", ".join(f"{c} {s:.2f} s" for c, s in r["seconds"].items())
        speedups = ", ".join(f"{c} {v:.1f}x" for c, v in r["speedup_over_hybrid"].items())
        flag = "" if r["ok"] else "  OUTPUT DIFFERS FROM QEMU"
        print(f"{r['program']} {' '.join(r['args'])}: {seconds}{flag}")
        print(f"  faster than hybrid without native: {speedups}")
        for config, n in r["native"].items():
            print(
                f"  {config}: {n['instructions']} instructions, "
                f"{100 * n['native_share']:.1f}% native, {n['regions']} regions "
                f"({n['compile_seconds']:.2f} s compiling, mean {n['mean_compile_ms']:.1f} ms), "
                f"{n['native_seconds']:.2f} s in native code, exits {n['exits']}, "
                f"unsupported at {n['unsupported_by_instruction'] or '-'}"
            )
    if samples:
        print("bundled samples, hybrid with the native tier / without (median wall seconds):")
    for r in samples:
        flag = "" if r["ok"] else "  OUTPUT DIFFERS"
        print(
            f"  {r['sample']:16} {r['without_native_s']:.3f} s -> {r['with_native_s']:.3f} s "
            f"({r['ratio']:.2f}x, {r['native_regions']} native regions){flag}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
