"""A corpus of random C programs (Csmith) on every engine against qemu-riscv64.

Csmith writes a random, well-defined C program for a seed (structs, unions, pointers, bit
fields, every integer width and operator, deep expression trees, loops, calls) that prints a
checksum of its global state: none of our own test programs covers that much of what GCC emits.
Each seed's program is built with ``-O2 -static`` like users' programs, run under qemu-riscv64
(the oracle), then on each engine, in process: output and exit status must be identical.

``VMKIT_CSMITH_SEEDS`` widens the corpus (``1-500``, or ``3,17,40-60``); the default is
seeds 1 to 36 but 20 and 22 (whose programs run for minutes under qemu too), about half a
minute on two cores. Csmith is Debian's ``csmith`` and
``libcsmith-dev``; a given Csmith version writes the same program for a seed everywhere.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from typing import Any

import pytest
from test_guest_programs import need_tool

from vmkit.async_executor import HybridExecutor, InterpreterExecutor, JitExecutor, load_program

pytestmark = [
    pytest.mark.oracle,
    pytest.mark.matrix_once,
    pytest.mark.usefixtures("oracle_native_cache"),
]

CSMITH_INCLUDE = pathlib.Path("/usr/include/csmith")
#: Guest instructions a corpus program may take on our engines (the default corpus's largest
#: takes about 3 million).
BUDGET = 200_000_000


def _seeds(spec: str) -> list[int]:
    seeds: list[int] = []
    for part in spec.split(","):
        low, _, high = part.strip().partition("-")
        seeds += range(int(low), int(high or low) + 1)
    return seeds


SEEDS = _seeds(os.environ.get("VMKIT_CSMITH_SEEDS", "1-19,21,23-36"))

#: Each engine configuration: a factory of its executor for a loaded machine. "hot" ones move
#: code up a tier almost at once, so their compiled code, not their interpreter, runs the program.
ENGINES: dict[str, Callable[[Any], Any]] = {
    "interp": InterpreterExecutor,
    "jit": JitExecutor,
    "hybrid": HybridExecutor,
    "hybrid-hot": lambda machine: HybridExecutor(machine, threshold=2),
}
try:
    import llvmlite  # noqa: F401 - only whether the [native] extra is installed
except ImportError:  # CI installs it; a local run without it tests the other engines
    pass
else:
    from vmkit.async_executor.engine.native import NativeExecutor

    # At 25 most of each program runs native (a threshold of 2 compiles every block for a few
    # percent more, at ten times the LLVM time).
    ENGINES["native"] = lambda machine: NativeExecutor(machine, threshold=25)
    # The hybrid's native tier compiling at once, entered from the Python tiers.
    ENGINES["hybrid-native"] = lambda machine: HybridExecutor(
        machine, native=True, native_threshold=1, native_warmup=0
    )


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    need_tool("csmith")
    need_tool("riscv64-linux-gnu-gcc")
    need_tool("qemu-riscv64")
    if not (CSMITH_INCLUDE / "csmith.h").exists():
        if os.environ.get("REQUIRE_ORACLES") == "1":
            pytest.fail("csmith.h is required (REQUIRE_ORACLES=1): install libcsmith-dev")
        pytest.skip("csmith.h is not installed (libcsmith-dev)")
    return tmp_path_factory.mktemp("csmith")


def _program(build_dir: pathlib.Path, seed: int) -> pathlib.Path:
    source, binary = build_dir / f"seed{seed}.c", build_dir / f"seed{seed}"
    with source.open("wb") as out:
        # In the build folder: Csmith writes a platform.info file where it runs.
        subprocess.run(
            ["csmith", "--seed", str(seed)], stdout=out, check=True, timeout=60, cwd=build_dir
        )
    subprocess.run(
        [
            "riscv64-linux-gnu-gcc",
            "-O2",
            "-static",
            "-w",
            f"-I{CSMITH_INCLUDE}",
            "-o",
            str(binary),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return binary


def _under_qemu(binary: pathlib.Path, seed: int) -> tuple[bytes, int]:
    try:
        done = subprocess.run(
            ["qemu-riscv64", str(binary)], capture_output=True, timeout=20, check=False, env={}
        )
    except subprocess.TimeoutExpired:
        # About one seed in seven writes a program that runs for minutes: no oracle to compare
        # with (the default corpus leaves those seeds out, so CI never skips here).
        pytest.skip(f"csmith seed {seed} runs over 20 s under qemu-riscv64")
    return done.stdout, done.returncode


def _on_engine(binary: pathlib.Path, make: Callable[[Any], Any]) -> tuple[bytes, int]:
    with tempfile.TemporaryDirectory() as root:
        copy = pathlib.Path(root) / binary.name
        shutil.copy(binary, copy)
        machine = load_program(str(copy), [binary.name], env=[], root=root)
        output = machine.linux.capture_output(1)
        try:
            status = make(machine).run(machine, max_instructions=BUDGET)
        finally:
            machine.linux.close()
        return output.data, status


@pytest.mark.parametrize("seed", SEEDS)
def test_every_engine_prints_what_qemu_prints(build_dir: pathlib.Path, seed: int) -> None:
    binary = _program(build_dir, seed)
    expected = _under_qemu(binary, seed)
    assert expected[0].startswith(b"checksum = "), expected  # a program that ran to its end
    for engine, make in ENGINES.items():
        got = _on_engine(binary, make)
        assert got == expected, f"csmith seed {seed} on {engine}"
