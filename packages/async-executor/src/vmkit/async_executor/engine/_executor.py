"""What every executor shares: the machine and executor protocols, and one base class that owns
running a guest to its end, in slices, or under asyncio.

Design note
-----------
An executor differs from another only in how it runs guest code until something stops it (the
interpreter's block loop, the JIT's dispatch of translated blocks, the hybrid's tiers). Everything
around that is the same and lives here, once:

* ``run``: to the end or an instruction budget; the outcome goes to ``machine.terminate``;
* ``coroutine``: the guest as a generator yielding None between slices (the protocol a scheduler
  drives guests with, without importing this package);
* ``run_async``: the same slices on an asyncio loop;
* fault delivery: a SIGSEGV, SIGILL or SIGBUS with a guest handler installed goes to it, as on
  Linux, and the run goes on in the handler.

A subclass implements :meth:`ExecutorBase._bind` (attach a machine) and
:meth:`ExecutorBase._until` (run until the guest ends or instret reaches an absolute limit, and
return why, without delivering faults). This module imports nothing heavy, so the command line
and perf-bench can type against :class:`Executor` and :class:`MachineLike` at no start-up cost.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Generator
from typing import TYPE_CHECKING, Final, Protocol

from vmkit.async_executor.engine._async import drive_slices
from vmkit.async_executor.engine._defaults import DEFAULT_SLICE, WALL_CLOCK_SLICE
from vmkit.async_executor.engine._hooked import HookStepper, hands_over
from vmkit.async_executor.errors import (
    BudgetExhausted,
    BusError,
    GuestExit,
    GuestFault,
    IllegalInstruction,
    SegmentationFault,
    WallClockExceeded,
)
from vmkit.async_executor.linux._threads import Threads, ThreadSwitch
from vmkit.async_executor.machine._hooks import GuestStopped

if TYPE_CHECKING:
    from vmkit.async_executor.engine._interpreter import InterpreterExecutor
    from vmkit.async_executor.engine._stats import ExecutionStats
    from vmkit.async_executor.machine._hart import Hart
    from vmkit.async_executor.machine._memory import AddressSpace

__all__ = [
    "NO_LIMIT",
    "Executor",
    "ExecutorBase",
    "MachineLike",
    "deliver_fault",
    "handle_fault",
]

#: An absolute instret no guest reaches: "no limit".
NO_LIMIT: Final = 1 << 62


class MachineLike(Protocol):
    """What an executor needs of a machine (``vmkit.async_executor.machine.Machine`` has it)."""

    hart: Hart
    memory: AddressSpace

    def syscall(self) -> None:
        """Perform the ecall described by the hart's registers."""

    def terminate(self, exc: BaseException) -> int:
        """Record how the guest ended (``machine.termination``) and return its exit status."""


class Executor(Protocol):
    """What callers (the command line, perf-bench, a scheduler's driver) use of an executor."""

    @property
    def stats(self) -> ExecutionStats:
        """Counters of the work done so far."""

    @property
    def machine(self) -> MachineLike | None:
        """The machine it runs (None before one is given)."""

    def run(self, machine: MachineLike | None = None, max_instructions: int | None = None) -> int:
        """Run the guest to its end (or the budget); return its exit status."""

    def coroutine(
        self,
        machine: MachineLike | None = None,
        slice_instructions: int = DEFAULT_SLICE,
        max_instructions: int | None = None,
    ) -> Generator[None, None, int]:
        """The guest as a generator yielding None between slices; returns the exit status."""

    async def run_async(
        self,
        machine: MachineLike | None = None,
        max_instructions: int | None = None,
        *,
        slice_instructions: int = DEFAULT_SLICE,
    ) -> int:
        """Run the guest in slices on an asyncio loop; return its exit status."""


def _threads_of(machine: MachineLike) -> Threads | None:
    """The thread table of a machine whose kernel has threads (the Linux layer), else None."""
    threads = getattr(getattr(machine, "linux", None), "threads", None)
    return threads if isinstance(threads, Threads) else None


def _wall_clock_passed(machine: MachineLike) -> WallClockExceeded | None:
    """The error ending a guest whose wall-clock limit has passed, or None."""
    try:
        machine.linux.check_wall_clock()  # type: ignore[attr-defined]
    except WallClockExceeded as exceeded:
        return exceeded
    return None


def _account_threads(machine: MachineLike) -> None:
    """Count the last instructions of a threaded guest to the thread that ran them."""
    threads = _threads_of(machine)
    if threads is not None:
        threads.account(machine.hart)


def handle_fault(machine: MachineLike, fault: BaseException) -> bool:
    """Offer a fault the executor stopped at to the machine's hooks, then to the guest's own
    handler; True means the guest goes on at ``hart.pc``. A hook may raise GuestStopped."""
    hooks = getattr(machine, "hooks", None)
    if hooks is not None:
        if isinstance(fault, SegmentationFault) and hooks.invalid_memory(machine, fault):
            return True
        if isinstance(fault, IllegalInstruction) and hooks.illegal_instruction(machine, fault):
            return True
    return deliver_fault(machine, fault)


def _finish_stopped(machine: MachineLike, end: BaseException) -> None:
    """A guest stopped by an after-hook made its system call: complete the ``ecall`` (a0, pc,
    instret) so that a later run carries on after it."""
    if isinstance(end, GuestStopped) and end.completed is not None:
        hart = machine.hart
        hart.x[10] = end.completed & 0xFFFF_FFFF_FFFF_FFFF
        hart.pc = (hart.pc + 4) & 0xFFFF_FFFF_FFFF_FFFF
        hart.instret += 1
        end.completed = None


def deliver_fault(machine: MachineLike, fault: BaseException) -> bool:
    """Hand a fault the executor detected (SIGSEGV, SIGILL, SIGBUS) to the guest's handler.

    True means the guest's handler now runs at ``hart.pc``. Signals the kernel raised itself
    (abort, kill) were already acted on and end the guest; so does every fault on a machine
    without a Linux layer that can deliver (test stand-ins).
    """
    if not isinstance(fault, (SegmentationFault, IllegalInstruction, BusError)):
        return False
    linux = getattr(machine, "linux", None)
    deliver = getattr(machine, "deliver_fault", None)
    if deliver is None or not callable(getattr(linux, "deliver_fault", None)):
        return False
    return bool(deliver(fault))


class ExecutorBase(ABC):
    """``run``, ``coroutine`` and ``run_async`` for an executor that provides ``_bind`` and
    ``_until`` (see the module note)."""

    stats: ExecutionStats

    @abstractmethod
    def _bind(self, machine: MachineLike | None) -> MachineLike:
        """Attach ``machine`` (or return the attached one when None)."""

    @abstractmethod
    def _until(self, machine: MachineLike, limit: int, budget: int | None) -> BaseException:
        """Run from ``hart.pc`` until the guest ends or instret reaches the absolute ``limit``;
        return why: GuestExit, GuestFault (memory faults as SegmentationFault) or
        BudgetExhausted. ``budget`` is the caller's ``max_instructions``, for messages."""

    @abstractmethod
    def _stepping_interpreter(self) -> InterpreterExecutor:
        """A fresh InterpreterExecutor (for the hook stepper; this module cannot import one)."""

    def _ran(self, machine: MachineLike, status: int) -> None:  # noqa: B027 - optional hook
        """Called when a guest ended with ``status`` (for a subclass's log event)."""

    def _run_to(self, machine: MachineLike, limit: int, budget: int | None) -> BaseException:
        """:meth:`_until`, delivering faults to the guest's handlers and switching between the
        guest's threads, until it really stops (exits, dies, or instret reaches ``limit``).

        A guest under a wall-clock limit runs in slices of ``WALL_CLOCK_SLICE`` with a look at
        the clock between them, so it is stopped on time even when it makes no system call
        (where the kernel looks)."""
        threads = _threads_of(machine)
        if threads is not None and threads.external:
            threads = None  # an outside scheduler switches: a ThreadSwitch ends the run here
        timed = getattr(getattr(machine, "linux", None), "deadline", None) is not None
        hart = machine.hart
        switch_at: int | None = None
        while True:
            if threads is not None and threads.multiple and switch_at is None:
                switch_at = hart.instret + threads.slice_instructions
            stop = min(limit, NO_LIMIT if switch_at is None else switch_at)
            if timed:
                stop = min(stop, hart.instret + WALL_CLOCK_SLICE)
            end = self._unhooked(machine, self._until(machine, stop, budget), stop, budget)
            sliced = isinstance(end, BudgetExhausted) and stop < limit
            if sliced and timed:
                exceeded = _wall_clock_passed(machine)
                if exceeded is not None:
                    return exceeded
            if sliced and (switch_at is None or hart.instret < switch_at):
                continue  # only a look at the clock: the same thread goes on
            if threads is not None and (isinstance(end, ThreadSwitch) or sliced):
                # A thread blocked, yielded or exited, or its slice is spent: the next one runs.
                switch_at = None
                try:
                    machine.linux.switch_thread(machine)  # type: ignore[attr-defined]
                except (GuestExit, GuestFault) as ended:
                    return ended
                continue
            if isinstance(end, BudgetExhausted):
                return end
            try:
                if handle_fault(machine, end):
                    continue
            except GuestStopped as stopped:
                return stopped
            return end

    def _unhooked(
        self, machine: MachineLike, end: BaseException, stop: int, budget: int | None
    ) -> BaseException:
        """``end`` itself, unless the engine stopped at hooked code or a hooked access: then
        alternate the hook stepper and the engine until the guest stops for another reason
        (see ``engine._hooked``)."""
        if not hands_over(end):
            return end
        stepper: HookStepper | None = getattr(self, "_hook_stepper", None)
        if stepper is None:
            stepper = HookStepper(self._stepping_interpreter())
            self._hook_stepper = stepper
        hart = machine.hart
        while hands_over(end):
            before = hart.instret
            stepped = stepper.run(machine, stop, budget)
            self.stats.instructions += hart.instret - before
            end = stepped if stepped is not None else self._until(machine, stop, budget)
        return end

    def advance(self, machine: MachineLike | None, max_instructions: int) -> BaseException | None:
        """Run at most ``max_instructions`` guest instructions (faults go to the guest's
        handlers, threads take turns) and report, without recording it in
        ``machine.termination``: None when they all ran and the guest can go on, else why it
        stopped (GuestExit, a fatal GuestFault, GuestStopped from a hook). What a debugger
        drives: a single step is ``advance(m, 1)``."""
        m = self._bind(machine)
        self._check_budget(max_instructions)
        end = self._run_to(m, m.hart.instret + max_instructions, max_instructions)
        if isinstance(end, BudgetExhausted):
            return None
        _finish_stopped(m, end)
        return end

    @staticmethod
    def _check_budget(max_instructions: int | None) -> None:
        if max_instructions is not None and max_instructions < 0:
            raise ValueError(f"max_instructions must be >= 0, got {max_instructions}")

    def run(self, machine: MachineLike | None = None, max_instructions: int | None = None) -> int:
        """Run the guest until it exits, faults or retires ``max_instructions``; return its status.

        A SIGSEGV, SIGILL or SIGBUS goes to the guest's own handler when it installed one (as on
        Linux). The outcome is recorded in ``machine.termination`` (128 + signal for a fatal
        signal, 124 for an exhausted budget); a guest problem never raises.
        """
        m = self._bind(machine)
        self._check_budget(max_instructions)
        limit = NO_LIMIT if max_instructions is None else m.hart.instret + max_instructions
        end = self._run_to(m, limit, max_instructions)
        if isinstance(end, BudgetExhausted):
            # The loops count in absolute instret; report the budget the caller gave.
            end = BudgetExhausted(max_instructions or 0, end.pc)
        _finish_stopped(m, end)
        _account_threads(m)
        status = m.terminate(end)
        self._ran(m, status)
        return status

    def coroutine(
        self,
        machine: MachineLike | None = None,
        slice_instructions: int = DEFAULT_SLICE,
        max_instructions: int | None = None,
    ) -> Generator[None, None, int]:
        """The guest as a generator: it runs ``slice_instructions`` guest instructions, yields
        None, and so on; it returns the exit status (as :meth:`run` does) when the guest ends.

        This is the protocol by which a scheduler runs guests without importing this package.
        Slices end between two instructions (the interpreter) or two blocks (the JIT), so
        closing the generator leaves ``hart.pc`` and ``hart.instret`` exact.
        """
        m = self._bind(machine)
        if slice_instructions < 1:
            raise ValueError(f"slice_instructions must be >= 1, got {slice_instructions}")
        self._check_budget(max_instructions)
        hart = m.hart
        total = NO_LIMIT if max_instructions is None else hart.instret + max_instructions
        while True:
            limit = min(hart.instret + slice_instructions, total)
            end = self._run_to(m, limit, max_instructions)
            if isinstance(end, BudgetExhausted):
                if limit < total:
                    yield None  # the slice is spent; the guest goes on next time
                    continue
                end = BudgetExhausted(max_instructions or 0, end.pc)
            _finish_stopped(m, end)
            _account_threads(m)
            status = m.terminate(end)
            self._ran(m, status)
            return status

    async def run_async(
        self,
        machine: MachineLike | None = None,
        max_instructions: int | None = None,
        *,
        slice_instructions: int = DEFAULT_SLICE,
    ) -> int:
        """Run the guest in slices, yielding to the asyncio event loop between them.

        Returns the exit status. Cancelling the task stops the guest between two slices
        (``hart.pc`` and ``hart.instret`` exact) and re-raises CancelledError.
        """
        return await drive_slices(self.coroutine(machine, slice_instructions, max_instructions))
