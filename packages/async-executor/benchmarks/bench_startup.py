"""Start-up: whole-process wall time of ``async-executor run hello`` beside ``python -c pass``.

A user who runs one small program pays the interpreter's start, the package's imports, loading
the ELF and the run itself. The target is at most 8x an empty Python process in the same
interpreter, for the interpreter and the hybrid engine, and qemu-riscv64 is shown beside it for
scale. The commands are run interleaved, round after round, so a busy machine slows them all
alike; the report gives medians and the ratio to ``python -c pass`` measured in the same run.

    python packages/async-executor/benchmarks/bench_startup.py [--rounds 15] [--check]

``--check`` exits 1 when an engine misses the target. Run it as a user would: from an installed
package whose bytecode is cached (pip compiles it at install time; with PYTHONDONTWRITEBYTECODE
set and a source checkout every run recompiles the package, which this benchmark then measures).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

TARGET_RATIO = 8.0


def _hello() -> str:
    from vmkit.async_executor import samples

    return str(samples.path("hello"))


def _commands(hello: str) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "vmkit.async_executor", "run"]
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "run --engine interp": [*cli, "--engine", "interp", hello],
        "run --engine hybrid": [*cli, "--engine", "hybrid", hello],
    }
    qemu = shutil.which("qemu-riscv64")
    if qemu:
        commands["qemu-riscv64"] = [qemu, hello]
    return commands


def _time(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=os.environ
    )
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="runs of each command")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    commands = _commands(_hello())
    for command in commands.values():  # warm the page cache and any bytecode caches
        _time(command)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.rounds):
        for name, command in commands.items():
            samples[name].append(_time(command))
    base = statistics.median(samples["python -c pass"])
    print(f"{'command':<22} {'median ms':>10} {'x python -c pass':>17}")
    missed = []
    for name, values in samples.items():
        median = statistics.median(values)
        ratio = median / base
        verdict = ""
        if name.startswith("run "):
            ok = ratio <= TARGET_RATIO
            verdict = f"  target <= {TARGET_RATIO:g}x: {'met' if ok else 'MISSED'}"
            if not ok:
                missed.append(name)
        print(f"{name:<22} {median * 1e3:>10.1f} {ratio:>16.1f}x{verdict}")
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
