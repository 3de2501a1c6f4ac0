"""Threaded guests (guest/threads/*.c, pthreads) on every engine against qemu-riscv64.

The programs are built fresh with the cross compiler (``make threads``) and run under
qemu-riscv64 as the oracle: same stdout, same exit status, on the interpreter, the JIT and the
hybrid. Their output does not depend on how threads interleave, so a real multi-core run under
qemu and the executor's deterministic round robin must agree. ``deadlock`` hangs under Linux and
is checked against the executor's own promise instead: exit status 125 and a message.
"""

from __future__ import annotations

import itertools
import pathlib
import tempfile
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import pytest
from guest_builds import build_guests, qemu_outputs

from vmkit.async_executor import (
    HybridExecutor,
    InterpreterExecutor,
    JitExecutor,
    ThreadedGuest,
    load_program,
)
from vmkit.async_executor.linux._threads import DEADLOCK_STATUS, Threads
from vmkit.async_executor.machine._machine import Machine

GUEST = pathlib.Path(__file__).resolve().parents[2] / "guest"
PROGRAMS = ("basic", "sync", "cancel", "futex", "pipes", "extras")
ENGINES: dict[str, Callable[[Any], Any]] = {
    "interp": InterpreterExecutor,
    "jit": JitExecutor,
    "hybrid": HybridExecutor,
}
try:
    import llvmlite  # noqa: F401 - only whether the [native] extra is installed
except ImportError:  # CI installs it; a local run without it tests the other engines
    pass
else:
    from vmkit.async_executor.engine.native import NativeExecutor

    # Compiling early puts the guests' locks and atomics (LR/SC, AMOs) in native code, where
    # other threads' stores must still break a thread's reservation.
    ENGINES["native"] = lambda m: NativeExecutor(m, threshold=20)
    # The hybrid's native tier compiling at once: its regions hold the atomics too.
    ENGINES["hybrid-native"] = lambda m: HybridExecutor(
        m, native=True, native_threshold=1, native_warmup=0
    )
BUDGET = 400_000_000
#: Beyond the interpreter and the hybrid (the default engine), the qemu comparison runs once in
#: the CI matrix (see the matrix_once marker).
ENGINE_PARAMS = [
    e if e in ("interp", "hybrid") else pytest.param(e, marks=pytest.mark.matrix_once)
    for e in ENGINES
]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The threaded programs, freshly built with the cross compiler."""
    return build_guests(tmp_path_factory, "threads", "riscv64-linux-gnu-gcc")


@pytest.fixture(scope="module")
def qemu_results(built: pathlib.Path) -> dict[str, tuple[bytes, int]]:
    """What qemu-riscv64 prints and returns for each program."""
    return qemu_outputs(built, PROGRAMS)


def run_guest(binary: pathlib.Path, engine: str, **threads: Any) -> tuple[bytes, int, Machine]:
    """Run ``binary`` on ``engine``; returns stdout, exit status and the machine."""
    with tempfile.TemporaryDirectory() as root, tempfile.TemporaryFile() as out:
        machine = load_program(
            str(binary), [binary.name], env={}, root=root, stdio=(0, out.fileno(), 2)
        )
        if threads:
            machine.linux.threads = Threads(machine.linux.pid, **threads)
        try:
            status = ENGINES[engine](machine).run(machine, max_instructions=BUDGET)
        finally:
            machine.linux.close()
        out.seek(0)
        return out.read(), status, machine


@pytest.mark.usefixtures("oracle_native_cache")
class TestAgainstQemu:
    """Same output and status as qemu-riscv64 on every engine."""

    @pytest.mark.parametrize("engine", ENGINE_PARAMS)
    @pytest.mark.parametrize("program", PROGRAMS)
    def test_matches_qemu(self, built, qemu_results, program: str, engine: str) -> None:
        stdout, status, machine = run_guest(built / program, engine)
        assert (stdout.decode(), status) == (
            qemu_results[program][0].decode(),
            qemu_results[program][1],
        )
        assert machine.linux.threads.created >= 1


class TestRunner:
    """The default runner interleaves threads deterministically; a seed varies the order."""

    def test_same_interleaving_on_every_run(self, built) -> None:
        runs = [run_guest(built / "sync", "interp") for _ in range(2)]
        (out1, _s1, m1), (out2, _s2, m2) = runs
        assert out1 == out2
        assert m1.hart.instret == m2.hart.instret
        assert m1.linux.threads.switches == m2.linux.threads.switches

    def test_seeded_orders_keep_the_output(self, built, qemu_results) -> None:
        for seed in (1, 2):
            stdout, status, _m = run_guest(built / "sync", "interp", seed=seed)
            assert (stdout, status) == qemu_results["sync"]

    def test_short_slices_keep_the_output(self, built, qemu_results) -> None:
        """Switching every 100 instructions (inside critical sections, between LR and SC)
        changes nothing."""
        stdout, status, machine = run_guest(built / "basic", "interp", slice_instructions=100)
        assert (stdout, status) == qemu_results["basic"]
        assert machine.linux.threads.switches > 1000


class TestDeadlock:
    """A guest whose threads all block for good ends with status 125 and says why."""

    @pytest.mark.parametrize("engine", ENGINES)
    def test_lock_order_inversion(self, built, engine: str) -> None:
        stdout, status, machine = run_guest(built / "deadlock", engine)
        assert stdout == b"both threads hold one lock\n"
        assert status == DEADLOCK_STATUS
        term = machine.termination
        assert term is not None
        assert term.reason == "deadlock"
        assert "every thread is blocked" in term.message
        assert term.message.count("futex wait on") == 2


class MiniScheduler:
    """The smallest driver of ThreadedGuest's protocol, independent of coroutine-scheduler:
    round robin over generators; one that yields a GuestWait is parked until its waker runs
    (resumed with True) or its deadline passes (resumed with False)."""

    def __init__(self) -> None:
        self.ready: deque[tuple[Any, Any]] = deque()
        self.parked: dict[int, tuple[Any, Any]] = {}
        self.resumes_while_parked = 0
        self._tokens = itertools.count()

    def spawn(self, gen: Any, name: str) -> None:
        self.ready.append((gen, None))

    def run(self) -> None:
        while self.ready or self.parked:
            if not self.ready:
                timed = [(w.deadline, t) for t, (_g, w) in self.parked.items() if w.deadline]
                assert timed, "every generator parked with no deadline: the guest must say so"
                deadline, token = min(timed)
                time.sleep(max(0.0, deadline - time.monotonic()))
                gen, wait = self.parked.pop(token)
                wait.disarm()
                self.ready.append((gen, False))
            gen, value = self.ready.popleft()
            try:
                yielded = gen.send(value)
            except StopIteration:
                continue
            if yielded is None:
                self.ready.append((gen, None))
                continue
            token = next(self._tokens)

            def wake(token: int = token) -> None:
                entry = self.parked.pop(token, None)
                if entry is not None:
                    self.ready.append((entry[0], True))

            if yielded.arm(wake):
                self.parked[token] = (gen, yielded)
            else:
                self.ready.append((gen, True))


class TestThreadedGuest:
    """Each guest thread as its own generator, driven by an outside scheduler."""

    @pytest.mark.parametrize("program", ["basic", "sync", "futex"])
    def test_matches_qemu(self, built, qemu_results, program: str) -> None:
        with tempfile.TemporaryDirectory() as root, tempfile.TemporaryFile() as out:
            machine = load_program(
                str(built / program), [program], env={}, root=root, stdio=(0, out.fileno(), 2)
            )
            driver = MiniScheduler()
            guest = ThreadedGuest(
                InterpreterExecutor(machine), machine, driver.spawn, slice_instructions=3000
            )
            driver.spawn(guest.main(), "main")
            driver.run()
            machine.linux.close()
            out.seek(0)
            assert (out.read(), guest.status) == qemu_results[program]
        assert machine.linux.threads.created >= 1

    def test_deadlock_ends_every_generator(self, built) -> None:
        with tempfile.TemporaryDirectory() as root:
            machine = load_program(str(built / "deadlock"), ["deadlock"], env={}, root=root)
            driver = MiniScheduler()
            guest = ThreadedGuest(InterpreterExecutor(machine), machine, driver.spawn)
            driver.spawn(guest.main(), "main")
            driver.run()
            machine.linux.close()
        assert guest.status == DEADLOCK_STATUS
        assert not driver.parked


class TestThreadMetrics:
    """Thread counters reach the Prometheus families as the thread table counts them."""

    def test_families_equal_the_thread_table(self, built) -> None:
        pytest.importorskip("prometheus_client")
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.parser import text_string_to_metric_families

        from vmkit.async_executor.prometheus import ExecutorCollector

        with tempfile.TemporaryDirectory() as root, tempfile.TemporaryFile() as out:
            machine = load_program(
                str(built / "sync"), ["sync"], env={}, root=root, stdio=(0, out.fileno(), 2)
            )
            executor = InterpreterExecutor(machine)
            registry = CollectorRegistry()
            collector = ExecutorCollector([executor], registry=registry)
            collector.watch_machine(machine)
            assert executor.run(machine) == 0
            machine.linux.close()
        text = generate_latest(registry).decode()
        values = {
            s.name: s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if not s.labels
        }
        threads = machine.linux.threads
        assert values["async_executor_guest_threads_created_total"] == threads.created == 17
        assert values["async_executor_guest_futex_waits_total"] == threads.futex_waits > 0
        assert values["async_executor_guest_futex_wakes_total"] == threads.futex_wakes > 0
        assert values["async_executor_guest_thread_switches_total"] == threads.switches > 0
        per_thread = sum(t.instructions for t in threads.all_threads())
        assert per_thread == machine.hart.instret
