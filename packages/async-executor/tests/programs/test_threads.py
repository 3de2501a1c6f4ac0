"""Threaded guests (guest/threads/*.c, pthreads) on every engine against qemu-riscv64.

The programs are built fresh with the cross compiler (``make threads``) and run under
qemu-riscv64 as the oracle: same stdout, same exit status, on the interpreter, the JIT and the
hybrid. Their output does not depend on how threads interleave, so a real multi-core run under
qemu and the executor's deterministic round robin must agree. ``deadlock`` hangs under Linux and
is checked against the executor's own promise instead: exit status 125 and a message.
"""

from __future__ import annotations

import errno
import itertools
import pathlib
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import pytest
from test_guest_programs import need_tool

from vmkit.async_executor import (
    HybridExecutor,
    InterpreterExecutor,
    JitExecutor,
    ThreadedGuest,
    load_program,
)
from vmkit.async_executor.linux import SYSCALL_NUMBERS, Linux
from vmkit.async_executor.linux._threads import DEADLOCK_STATUS, GuestDeadlock, Threads
from vmkit.async_executor.machine import PERM_R, PERM_W, AddressSpace, Hart
from vmkit.async_executor.machine._machine import Machine

GUEST = pathlib.Path(__file__).resolve().parents[2] / "guest"
PROGRAMS = ("basic", "sync", "cancel", "futex", "pipes", "extras")
ENGINES: dict[str, Callable[[Any], Any]] = {
    "interp": InterpreterExecutor,
    "jit": JitExecutor,
    "hybrid": HybridExecutor,
}
BUDGET = 400_000_000


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The threaded programs, freshly built with the cross compiler."""
    need_tool("riscv64-linux-gnu-gcc")
    need_tool("make")
    out = tmp_path_factory.mktemp("threads-build")
    subprocess.run(
        ["make", "-s", "-C", str(GUEST), f"OUT={out}", "threads"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out / "threads"


@pytest.fixture(scope="module")
def qemu_results(built: pathlib.Path) -> dict[str, tuple[bytes, int]]:
    """What qemu-riscv64 prints and returns for each program."""
    qemu = need_tool("qemu-riscv64")
    results = {}
    for name in PROGRAMS:
        proc = subprocess.run(
            [qemu, str(built / name)], capture_output=True, check=False, timeout=120, env={}
        )
        results[name] = (proc.stdout, proc.returncode)
    return results


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


class TestAgainstQemu:
    """Same output and status as qemu-riscv64 on every engine."""

    @pytest.mark.parametrize("engine", ENGINES)
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
        """Switching every 50 instructions (inside every critical section) changes nothing."""
        stdout, status, machine = run_guest(built / "basic", "jit", slice_instructions=50)
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


class Guest:
    """A hand-built machine to make thread syscalls as a guest does."""

    BUF = 0x100000

    def __init__(self, root: pathlib.Path) -> None:
        mem = AddressSpace()
        mem.map(self.BUF, 0x10000, PERM_R | PERM_W)
        self.linux = Linux(root)
        self.m = Machine(mem, Hart(0x1000), self.linux)

    def call(self, name: str, *args: int) -> int:
        x = self.m.hart.x
        x[17] = SYSCALL_NUMBERS[name]
        for i in range(6):
            x[10 + i] = (args[i] if i < len(args) else 0) & (2**64 - 1)
        self.m.syscall()
        value = x[10]
        return value - 2**64 if value >= 2**63 else value


@pytest.fixture
def guest(tmp_path: pathlib.Path):
    g = Guest(tmp_path)
    yield g
    g.linux.close()


CLONE_THREAD_FLAGS = 0x100 | 0x800 | 0x10000 | 0x200 | 0x400  # VM SIGHAND THREAD FS FILES


class TestThreadSyscalls:
    """clone's refusals and what a new thread starts with."""

    def test_fork_style_clone_is_refused(self, guest: Guest) -> None:
        assert guest.call("clone", 17, 0, 0, 0, 0) == -errno.ENOSYS  # fork(): SIGCHLD only
        assert not guest.linux.threads.multiple

    def test_unknown_flags_are_invalid(self, guest: Guest) -> None:
        assert guest.call("clone", CLONE_THREAD_FLAGS | 0x20000000, 0x5000, 0, 0, 0) == (
            -errno.EINVAL
        )

    def test_new_thread_state(self, guest: Guest) -> None:
        """The child starts after the ecall with a0 = 0, its own stack and tls; the parent
        gets the tid, written to parent_tid as asked."""
        guest.m.hart.x[4] = 0x1111
        flags = CLONE_THREAD_FLAGS | 0x80000 | 0x100000  # SETTLS, PARENT_SETTID
        tid = guest.call("clone", flags, 0x9000, Guest.BUF, 0x7777, 0)
        assert tid > guest.linux.pid
        assert guest.m.memory.load(Guest.BUF, 4) == tid
        child = guest.linux.threads.live[tid]
        assert (child.pc, child.x[10], child.x[2], child.x[4]) == (0x1004, 0, 0x9000, 0x7777)
        assert guest.m.hart.x[4] == 0x1111

    def test_clone_writing_to_a_bad_address_creates_nothing(self, guest: Guest) -> None:
        assert guest.call("clone", CLONE_THREAD_FLAGS | 0x100000, 0x9000, 0xDEAD0000) == (
            -errno.EFAULT
        )
        assert not guest.linux.threads.multiple

    def test_thread_limit(self, guest: Guest) -> None:
        guest.linux.threads.max_threads = 3
        assert guest.call("clone", CLONE_THREAD_FLAGS, 0x9000) > 0
        assert guest.call("clone", CLONE_THREAD_FLAGS, 0x9000) > 0
        assert guest.call("clone", CLONE_THREAD_FLAGS, 0x9000) == -errno.EAGAIN

    def test_lone_untimed_futex_wait_is_a_deadlock(self, guest: Guest) -> None:
        with pytest.raises(GuestDeadlock, match="only thread"):
            guest.call("futex", Guest.BUF, 128, 0)

    def test_signal_to_an_unknown_thread(self, guest: Guest) -> None:
        assert guest.call("tgkill", guest.linux.pid, guest.linux.pid + 99, 10) == -errno.ESRCH


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


def test_affinity_reports_the_schedulers_vcpus(guest: Guest) -> None:
    """With ``cpus`` set (as ThreadedGuest does for a scheduler), sched_getaffinity shows that
    many CPUs, which is what glibc's get_nprocs and Go's GOMAXPROCS count."""
    guest.linux.cpus = 3
    assert guest.call("sched_getaffinity", 0, 8, Guest.BUF) == 8
    assert guest.m.memory.load(Guest.BUF, 8) == 0b111
