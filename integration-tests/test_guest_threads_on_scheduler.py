"""Threaded guests on the scheduler: every guest thread a coroutine of coroutine-scheduler.

async-executor's ``ThreadedGuest`` gives one generator per guest thread; perf-bench's
``spawn_guest`` hands them to a ``Scheduler``; a guest thread blocked in a futex wait yields a
``GuestWait`` (the scheduler's external-wait protocol) and stays parked until another guest
thread wakes it. The pthreads programs of packages/async-executor/guest/threads are built fresh
and their stdout and exit status compared with qemu-riscv64's, on both scheduler backends.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import build_guests, qemu_output

from vmkit.async_executor import (
    DEADLOCK_STATUS,
    HybridExecutor,
    InterpreterExecutor,
    JitExecutor,
    load_program,
)
from vmkit.coroutine_scheduler import Scheduler
from vmkit.perf_bench.guests import spawn_guest

PROGRAMS = ("basic", "sync", "cancel", "futex", "pipes")
ENGINES: dict[str, Any] = {
    "interp": InterpreterExecutor,
    "jit": JitExecutor,
    "hybrid": HybridExecutor,
}
#: Short slices: guest threads are preempted often and spread over the vCPUs.
SLICE = 5_000


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_guests(tmp_path_factory, "threads", "riscv64-linux-gnu-gcc")


@pytest.fixture(scope="module")
def qemu(built: Path) -> dict[str, tuple[bytes, int]]:
    return {name: qemu_output(built / name) for name in PROGRAMS}


def on_scheduler(binary: Path, engine: str, backend: str) -> tuple[bytes, int, Any, Any]:
    """Run ``binary`` with each guest thread a coroutine on a 4-vCPU scheduler."""
    with tempfile.TemporaryDirectory() as root, tempfile.TemporaryFile() as out:
        machine = load_program(
            str(binary), [binary.name], env={}, root=root, stdio=(0, out.fileno(), 2)
        )
        scheduler = Scheduler(4, backend=backend, seed=3)
        guest, main = spawn_guest(
            scheduler, ENGINES[engine](machine), machine, slice_instructions=SLICE
        )
        try:
            scheduler.run(timeout=300)
        finally:
            machine.linux.close()
        out.seek(0)
        return out.read(), main.result, guest, scheduler.stats()


#: The interpreter on both backends, each compiling engine on one (every engine also runs these
#: programs against qemu on its own runner in the package's tests).
RUNNERS = [("interp", "inline"), ("interp", "threads"), ("jit", "inline"), ("hybrid", "threads")]


@pytest.mark.parametrize(("engine", "backend"), RUNNERS)
@pytest.mark.parametrize("program", PROGRAMS)
def test_matches_qemu(built, qemu, program: str, engine: str, backend: str) -> None:
    stdout, status, guest, _stats = on_scheduler(built / program, engine, backend)
    assert (stdout.decode(), status) == (qemu[program][0].decode(), qemu[program][1])
    assert guest.status == status
    assert guest.machine.linux.cpus == 4  # the guest counts the scheduler's vCPUs


def test_threads_spread_over_the_vcpus(built, qemu) -> None:
    """Six worker threads preempted every 5000 instructions run on more than one vCPU."""
    stdout, status, _guest, stats = on_scheduler(built / "basic", "interp", "inline")
    assert (stdout, status) == qemu["basic"]
    busy = [v for v in stats.vcpus if v.executions > 0]
    assert len(busy) > 1
    assert stats.totals.steals_in > 0


@pytest.mark.parametrize("backend", ["inline", "threads"])
def test_deadlock_ends_the_guest_not_the_scheduler(built, backend: str) -> None:
    """All guest threads parked for good: the guest ends with status 125; the run returns."""
    stdout, status, guest, _stats = on_scheduler(built / "deadlock", "interp", backend)
    assert stdout == b"both threads hold one lock\n"
    assert status == DEADLOCK_STATUS
    assert guest.machine.termination.reason == "deadlock"


@pytest.fixture(scope="module")
def go_built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_guests(tmp_path_factory, "go", "go")


@pytest.mark.parametrize("backend", ["inline", "threads"])
@pytest.mark.parametrize("program", ["goroutines", "panic"])
def test_go_programs_match_qemu(go_built, program: str, backend: str) -> None:
    """The Go runtime's threads (its Ms) as coroutines: timers, channels, GC, exit statuses."""
    stdout, status, guest, _stats = on_scheduler(go_built / program, "interp", backend)
    assert (stdout, status) == qemu_output(go_built / program)
    assert guest.threads.created >= 2
