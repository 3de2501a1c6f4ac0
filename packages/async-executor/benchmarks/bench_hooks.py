"""What hooks cost: guest MIPS with no hook registered beside a build without hook support, and
the cost of one block hook per basic block.

    python packages/async-executor/benchmarks/bench_hooks.py [--baseline REV] [--repeat N]

The baseline is the same repository at ``REV`` (default: the commit before code and memory
hooks), checked out into a temporary git worktree. Each measurement is its own process (the
``crc32`` sample over 64 KiB, run to its end and timed inside the process, imports and loading
excluded), the two builds interleaved, the best of ``--repeat`` kept per engine; the report
gives the no-hook MIPS of both builds and their ratio (target: within 3%), then for the current
build the MIPS with one empty block hook over the whole program and the time per block event.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
#: The last commit before code and memory hooks.
DEFAULT_BASELINE = "9b6c50e^"
ENGINES = ("interp", "jit", "hybrid")
SIZE = "65536"


def measure(engine: str, hook: str) -> dict[str, float]:
    """One timed run in this process (what the child processes do)."""
    from vmkit.async_executor import HybridExecutor, InterpreterExecutor, JitExecutor, load_program
    from vmkit.async_executor.samples import path

    kinds = {"interp": InterpreterExecutor, "jit": JitExecutor, "hybrid": HybridExecutor}
    with tempfile.TemporaryDirectory() as root:
        machine = load_program(str(path("crc32")), ["crc32", SIZE], env={}, root=root)
        blocks = [0]
        if hook == "block":

            def count(m: object, pc: int) -> None:
                blocks[0] += 1

            machine.hooks.add_block(count)
        executor = kinds[engine](machine)
        start = time.perf_counter()
        status = executor.run(machine)
        seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"crc32 under {engine} exited with {status}")
    return {"seconds": seconds, "instructions": machine.hart.instret, "blocks": blocks[0]}


def _child(src: Path, engine: str, hook: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(
        [sys.executable, __file__, "--measure", engine, "--hook", hook],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=900,
    )
    result: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return result


def main() -> int:
    """Measure both builds and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git revision without hooks")
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine and build")
    parser.add_argument("--measure", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("--hook", default="none", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.hook)))
        return 0
    current = ROOT / "packages" / "async-executor" / "src"
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch) / "baseline"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), args.baseline],
            check=True,
            capture_output=True,
        )
        try:
            baseline = tree / "packages" / "async-executor" / "src"
            print(f"crc32 {SIZE} bytes; best of {args.repeat}; baseline {args.baseline}")
            print(f"{'engine':<8} {'baseline':>10} {'no hooks':>10} {'ratio':>7} "
                  f"{'block hook':>11} {'per block':>10}")  # fmt: skip
            for engine in ENGINES:
                best: dict[str, float] = {}
                runs: dict[str, dict[str, float]] = {}
                for _ in range(args.repeat):
                    for label, src, hook in (
                        ("baseline", baseline, "none"),
                        ("current", current, "none"),
                        ("block", current, "block"),
                    ):
                        run = _child(src, engine, hook)
                        if run["seconds"] < best.get(label, float("inf")):
                            best[label] = run["seconds"]
                            runs[label] = run
                mips = {k: runs[k]["instructions"] / best[k] / 1e6 for k in best}
                per_block = (best["block"] - best["current"]) / max(1, runs["block"]["blocks"])
                print(
                    f"{engine:<8} {mips['baseline']:10.2f} {mips['current']:10.2f} "
                    f"{mips['current'] / mips['baseline']:7.3f} {mips['block']:11.2f} "
                    f"{per_block * 1e6:8.2f} us"
                )
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)],
                check=False,
                capture_output=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
