"""The VM suite's guest workloads: shipped ELFs, their sizes, and checks of what they printed.

Design note: a benchmark of a guest that crashed, or that computed the wrong thing, measures
nothing, so every guest run goes through :func:`run_guest`, which captures the guest's stdout in
a temporary file, and :meth:`Workload.check`, which compares the exit status and the output with
an oracle computed here in Python, independently of the executor (``zlib.crc32`` for the CRC,
a plain sieve, a plain matrix product). A mismatch raises :class:`GuestCheckError` with one line
saying which workload, which engine and what differed; the framework reports it as a failed
benchmark rather than a number.

The programs are built from ``packages/perf-bench/workloads/*.c`` with
``riscv64-linux-gnu-gcc -O2 -static``, stripped, and shipped as package data
(``vmkit/perf_bench/workloads/``), so ``pip install vmkit-perf-bench`` alone can run the suite.
"""

from __future__ import annotations

import functools
import gc
import importlib.resources
import os
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vmkit.async_executor.engine import Executor
    from vmkit.async_executor.linux import Linux
    from vmkit.async_executor.machine import Machine

__all__ = [
    "WORKLOADS",
    "GuestCheckError",
    "GuestRun",
    "Workload",
    "run_guest",
    "workload_path",
]

_M64 = (1 << 64) - 1


class GuestCheckError(RuntimeError):
    """A guest workload ended with the wrong status or printed the wrong output."""


def _crc32_expected(size: int) -> str:
    state = 12345
    data = bytearray(size)
    for i in range(size):
        state = (state * 1103515245 + 12345) & 0xFFFFFFFF
        data[i] = (state >> 16) & 0xFF
    return f"crc32 {size} {zlib.crc32(bytes(data)):08x}\n"


def _sieve_expected(limit: int) -> str:
    composite = bytearray(limit + 1)
    count = largest = 0
    for i in range(2, limit + 1):
        if composite[i]:
            continue
        count += 1
        largest = i
        composite[i * i :: i] = b"\x01" * len(range(i * i, limit + 1, i))
    return f"sieve {limit} {count} {largest}\n"


def _matmul_expected(n: int) -> str:
    a = [[(7 * i + 3 * j) % 17 - 8 for j in range(n)] for i in range(n)]
    b = [[(5 * i + 11 * j) % 13 - 6 for j in range(n)] for i in range(n)]
    check = 0
    for i in range(n):
        for j in range(n):
            c = sum(a[i][k] * b[k][j] for k in range(n))
            check += c * (i + j + 1)
    check &= _M64
    signed = check - (1 << 64) if check >> 63 else check
    return f"matmul {n} {signed}\n"


def _pagewalk_expected(pages: int, passes: int) -> str:
    one_pass = sum((p * 2654435761) & _M64 for p in range(pages))
    return f"pagewalk {pages} {passes} {(one_pass * passes) & _M64}\n"


@dataclass(frozen=True, slots=True)
class Workload:
    """A shipped guest program, its arguments in full and quick mode, and its oracle.

    Args:
        name: file name under ``vmkit/perf_bench/workloads``.
        args: command-line arguments for full runs.
        quick_args: smaller arguments for ``--quick`` and the tests.
        oracle: computes the expected stdout from the integer arguments.
        description: what the program exercises.
    """

    name: str
    args: tuple[int, ...]
    quick_args: tuple[int, ...]
    oracle: Callable[..., str]
    description: str

    def argv(self, quick: bool, args: tuple[int, ...] | None = None) -> list[str]:
        """The guest's argv (program name first)."""
        chosen = args if args is not None else (self.quick_args if quick else self.args)
        return [self.name, *map(str, chosen)]

    def expected_output(self, args: tuple[int, ...]) -> str:
        """What the program must print for ``args`` (cached: the oracles are pure)."""
        return _cached_oracle(self.name, args)

    def check(self, run: GuestRun) -> None:
        """Raise :class:`GuestCheckError` unless ``run`` exited 0 with the expected output."""
        expected = self.expected_output(run.args)
        if run.status != 0:
            raise GuestCheckError(
                f"workload {self.name} {' '.join(map(str, run.args))} under {run.engine} "
                f"ended with status {run.status} ({run.termination}); output {run.stdout!r}"
            )
        if run.stdout != expected:
            raise GuestCheckError(
                f"workload {self.name} {' '.join(map(str, run.args))} under {run.engine} "
                f"printed {run.stdout!r}, expected {expected!r}"
            )


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("crc32", (65536,), (4096,), _crc32_expected, "bitwise CRC-32: tight branchy loop"),
        Workload("sieve", (200000,), (20000,), _sieve_expected, "sieve: strided byte stores"),
        Workload("matmul", (48,), (16,), _matmul_expected, "integer matrix multiply: loads, mul"),
        Workload(
            "pagewalk",
            (2048, 4),
            (1536, 2),
            _pagewalk_expected,
            "one word per page over more pages than the TLB holds: the TLB's worst case",
        ),
    )
}
"""The suite's workloads by name."""


@functools.lru_cache(maxsize=64)
def _cached_oracle(name: str, args: tuple[int, ...]) -> str:
    return WORKLOADS[name].oracle(*args)


def workload_path(name: str) -> Path:
    """Host path of the shipped workload ``name``.

    Raises:
        GuestCheckError: if the program is not installed with the package.
    """
    resource = importlib.resources.files("vmkit.perf_bench") / "workloads" / name
    path = Path(str(resource))
    if not path.is_file():
        raise GuestCheckError(
            f"workload {name!r} is missing from the perf-bench package ({path}); "
            "rebuild it with `make install` in packages/perf-bench/workloads"
        )
    return path


@dataclass(frozen=True, slots=True)
class GuestRun:
    """One finished guest run: how it ended, what it printed, and what it cost."""

    workload: str
    engine: str
    args: tuple[int, ...]
    status: int
    termination: str
    stdout: str
    instructions: int
    """Guest instructions retired (``hart.instret`` at the end)."""
    elapsed_ns: int
    """Wall time of ``executor.run`` alone (loading the program is not included)."""
    machine: Machine[Linux]
    executor: Executor
    start_ns: int = 0
    """The clock's reading when ``executor.run`` began."""


def run_guest(
    workload: Workload,
    engine: str,
    make_executor: Callable[[Machine[Linux]], Executor],
    *,
    quick: bool,
    args: tuple[int, ...] | None = None,
    clock: Callable[[], int] = time.perf_counter_ns,
    check: bool = True,
    collect: bool = True,
) -> GuestRun:
    """Load ``workload``, run it to the end with ``make_executor(machine)`` and check it.

    Guest stdout goes to a temporary file (never the terminal); stdin is ``/dev/null``. With
    ``collect`` (the default) a full garbage collection runs just before the timed part, so a
    run does not pay for the garbage of the runs before it (a JIT run leaves thousands of code
    objects behind; an interpreter run measured right after one was up to twice as slow).

    Raises:
        GuestCheckError: if the guest fails its check (unless ``check`` is false).
    """
    from vmkit.async_executor import load_program

    chosen = args if args is not None else (workload.quick_args if quick else workload.args)
    path = workload_path(workload.name)
    with (
        tempfile.TemporaryFile() as out,
        open(os.devnull, "rb") as devnull,
        tempfile.TemporaryDirectory(prefix="perf-bench-guest-") as root,
    ):
        machine = load_program(
            str(path),
            workload.argv(quick, chosen),
            env={},
            root=root,
            stdio=(devnull.fileno(), out.fileno(), out.fileno()),
            random_bytes=bytes(16),
        )
        executor = make_executor(machine)
        if collect:
            gc.collect()
        start = clock()
        status = executor.run(machine)
        elapsed = clock() - start
        out.seek(0)
        stdout = out.read().decode("utf-8", "replace")
    term = machine.termination
    run = GuestRun(
        workload.name,
        engine,
        chosen,
        status,
        term.message if term is not None else "no termination recorded",
        stdout,
        machine.hart.instret,
        max(1, elapsed),
        machine,
        executor,
        start,
    )
    if check:
        workload.check(run)
    return run
