"""Guest threads: their saved states, futex wait queues, and which thread runs next.

Design notes
------------
* One hart, many threads. A machine has one :class:`Hart` that executors run; a thread that is
  not running keeps its registers in a :class:`GuestThread`, and a switch copies them in and out
  (about a microsecond). Executors therefore need nothing of threads: the translated code, the
  interpreter's closures and the TLBs all keep pointing at the same hart and address space.
  Python runs one guest thread at a time anyway (the GIL), so nothing is lost against one hart
  per OS thread, and every instruction, AMOs included, is atomic with respect to every thread.
* Switches happen at system calls and at slice ends, never inside a block. A thread that blocks
  (futex wait, sleep, yield, exit) has the system call raise :class:`ThreadSwitch`; executors
  treat it like a fault raised by the ``ecall`` (state exact, the ``ecall`` not retired), and
  the thread's saved ``result`` completes the ``ecall`` when the thread next runs: ``a0`` takes
  the result and the pc moves past it, as a Linux system call returns when its thread wakes.
* LR/SC: a switch clears the reservation of the thread switched out, so an SC after another
  thread ran fails and the guest retries (the architecture allows a reservation to be lost at
  any time; Linux clears it on every trap the same way). Stores of other threads to the reserved
  address therefore always break it.
* The default order is round robin over runnable threads in order of creation, so a guest gives
  the same output and the same interleaving on every run for a given slice length; with a seed,
  the next thread is drawn at random (seeded), to explore other interleavings reproducibly.
  Timed waits follow the host's monotonic clock, which is the guest's CLOCK_MONOTONIC.
* When no thread can run and none waits with a timeout the guest can never go on: the run ends
  with :class:`GuestDeadlock` (exit status 125) naming what each thread waits for, instead of
  hanging. When the only waits left are timed, the host really sleeps until the first one ends.
"""

from __future__ import annotations

import enum
import random
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Final

from vmkit.async_executor.errors import GuestExit, GuestFault

if TYPE_CHECKING:
    from vmkit.async_executor.machine._hart import Hart

__all__ = [
    "DEADLOCK_STATUS",
    "DEFAULT_THREAD_SLICE",
    "GuestDeadlock",
    "GuestThread",
    "ThreadState",
    "ThreadSwitch",
    "Threads",
]

#: Exit status of a guest whose threads are all blocked for good (distinct from any signal).
DEADLOCK_STATUS: Final = 125
#: Exited threads whose statistics are kept (the oldest are forgotten beyond).
EXITED_KEPT: Final = 1024
#: Guest instructions a thread runs before the next runnable thread gets its turn.
DEFAULT_THREAD_SLICE: Final = 20_000


class ThreadSwitch(GuestFault):
    """Raised by a system call whose thread stops running (it blocks, yields or exits).

    Not a fault of the guest: executors stop with the state exact at the ``ecall`` (not
    retired), and the executor base switches to the next thread.
    """

    signal = 0

    def __init__(self, reason: str) -> None:
        super().__init__(reason)


class GuestDeadlock(GuestExit):
    """Every thread of the guest is blocked and none can ever be woken."""

    reason = "deadlock"

    def __init__(self, message: str) -> None:
        GuestExit.__init__(self, DEADLOCK_STATUS)
        self.args = (message,)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ThreadState(enum.Enum):
    """Where a thread is."""

    RUNNABLE = "runnable"
    BLOCKED = "blocked"
    EXITED = "exited"


class GuestThread:
    """The saved state and kernel bookkeeping of one guest thread."""

    __slots__ = (
        "blocked_on",
        "clear_child_tid",
        "deadline_ns",
        "f",
        "fflags",
        "frm",
        "futex_waits",
        "instructions",
        "pc",
        "pending",
        "poll_deadline_ns",
        "polling",
        "result",
        "robust_list",
        "sigaltstack",
        "sigmask",
        "sigwait_set",
        "state",
        "switches",
        "tid",
        "timeout_result",
        "wait_bitset",
        "wait_key",
        "waker",
        "x",
    )

    def __init__(self, tid: int, sigmask: int = 0, sigaltstack: bytes = b"") -> None:
        self.tid = tid
        self.x: list[int] = [0] * 33
        self.f: list[int] = [0] * 32
        self.pc = 0
        self.fflags = 0
        self.frm = 0
        self.state = ThreadState.RUNNABLE
        #: Blocked signals (bit sig - 1) and signals sent to this thread while blocked.
        self.sigmask = sigmask
        self.pending = 0
        #: Signals it waits for in rt_sigtimedwait (0: not waiting for any).
        self.sigwait_set = 0
        #: stack_t of sigaltstack (ss_sp, ss_flags, ss_size), packed as the guest sees it.
        self.sigaltstack = sigaltstack
        #: set_tid_address / CLONE_CHILD_CLEARTID: zeroed and woken when the thread exits.
        self.clear_child_tid = 0
        #: set_robust_list's head (0: none).
        self.robust_list = 0
        #: The result that completes the ecall the thread stopped at (None: it did not stop at
        #: one, or it is still waiting).
        self.result: int | None = None
        #: Futex address waited on (None: not in a futex wait), its bitset, and what the wait
        #: is for in words (for the deadlock message).
        self.wait_key: int | None = None
        self.wait_bitset = 0
        self.blocked_on = ""
        #: Monotonic ns at which a timed wait ends, and the result it ends with (None: the
        #: system call runs again instead, as a readiness wait does).
        self.deadline_ns: int | None = None
        self.timeout_result: int | None = 0
        #: A readiness wait (epoll, a read of an empty pipe): woken by any guest write or close,
        #: the call then runs again; ``poll_deadline_ns`` (-1: none) survives those restarts.
        self.polling = False
        self.poll_deadline_ns: int | None = None
        #: Called when the thread is woken, when an outside scheduler runs it (see
        #: ``engine._guest_threads``); None under the executor's own round robin.
        self.waker: Callable[[], None] | None = None
        #: Statistics: guest instructions retired, times switched in, futex waits.
        self.instructions = 0
        self.switches = 0
        self.futex_waits = 0

    def __repr__(self) -> str:
        return f"GuestThread(tid={self.tid}, {self.state.value}, pc={self.pc:#x})"


class Threads:
    """Every thread of one guest process, the futex queues, and the switch between threads.

    Args:
        pid: the process id; the main thread's tid.
        slice_instructions: instructions a thread runs before others get a turn.
        seed: None for round robin; an integer to draw the next thread at random (seeded).
        max_threads: live threads allowed (clone fails with EAGAIN beyond, as RLIMIT_NPROC).
    """

    def __init__(
        self,
        pid: int,
        *,
        slice_instructions: int = DEFAULT_THREAD_SLICE,
        seed: int | None = None,
        max_threads: int = 1024,
    ) -> None:
        if slice_instructions < 1:
            raise ValueError(f"slice_instructions must be >= 1, got {slice_instructions}")
        self.main = GuestThread(pid)
        self.current = self.main
        self.live: dict[int, GuestThread] = {pid: self.main}
        self.slice_instructions = slice_instructions
        self.max_threads = max_threads
        self._random = random.Random(seed) if seed is not None else None
        #: True when an outside scheduler runs each thread as its own coroutine: the run queue
        #: here is then unused and wakes go through each thread's ``waker``.
        self.external = False
        self._runnable: deque[GuestThread] = deque()
        self._waiters: dict[int, list[GuestThread]] = {}
        self._next_tid = pid + 1
        #: Process-wide statistics.
        self.created = 0
        self.switches = 0
        self.futex_waits = 0
        self.futex_wakes = 0
        #: Threads in a readiness wait (a guest write or close wakes them; see wake_pollers).
        self.pollers = 0
        #: The last threads that exited, kept for their statistics (``all_threads``); bounded,
        #: so that a guest starting threads for ever does not grow the host's memory with them.
        self.exited: deque[GuestThread] = deque(maxlen=EXITED_KEPT)
        self._last_instret = 0

    def set_order(self, seed: int | None) -> None:
        """Round robin (None) or a seeded random choice of the next runnable thread."""
        self._random = random.Random(seed) if seed is not None else None

    @property
    def multiple(self) -> bool:
        """More than one live thread: executors then run in thread slices."""
        return len(self.live) > 1

    def __iter__(self) -> Iterator[GuestThread]:
        return iter(list(self.live.values()))

    # ------------------------------------------------------------------ lifecycle

    def new_tid(self) -> int:
        """The next thread id (ids are never reused within a run)."""
        tid = self._next_tid
        self._next_tid += 1
        return tid

    def spawn(self, hart: Hart, *, stack: int, tls: int | None, tid: int) -> GuestThread:
        """A new runnable thread that starts as a copy of the hart after its ``ecall``, with
        ``a0`` = 0, ``sp`` = ``stack`` (when non-zero) and ``tp`` = ``tls`` (when given)."""
        current = self.current
        child = GuestThread(tid, current.sigmask, current.sigaltstack)
        child.x[:] = hart.x
        child.f[:] = hart.f
        child.fflags, child.frm = hart.fflags, hart.frm
        child.pc = (hart.pc + 4) & 0xFFFF_FFFF_FFFF_FFFF
        child.x[10] = 0
        if stack:
            child.x[2] = stack
        if tls is not None:
            child.x[4] = tls
        self.live[tid] = child
        if not self.external:
            self._runnable.append(child)
        self.created += 1
        return child

    def exit_current(self) -> GuestThread:
        """Mark the running thread exited and drop it; returns it."""
        thread = self.current
        thread.state = ThreadState.EXITED
        self.live.pop(thread.tid, None)
        self._forget_wait(thread)
        self.exited.append(thread)
        return thread

    def all_threads(self) -> list[GuestThread]:
        """Every thread the guest had, live or exited, in order of creation (statistics)."""
        return sorted([*self.live.values(), *self.exited], key=lambda t: t.tid)

    # ------------------------------------------------------------------ blocking and waking

    def block_current(
        self,
        reason: str,
        *,
        key: int | None = None,
        bitset: int = 0xFFFF_FFFF,
        deadline_ns: int | None = None,
        timeout_result: int | None = 0,
        polling: bool = False,
    ) -> None:
        """Block the running thread (on futex ``key`` when given, or as a readiness wait) until
        woken or the deadline."""
        thread = self.current
        thread.state = ThreadState.BLOCKED
        thread.blocked_on = reason
        thread.result = None
        thread.deadline_ns = deadline_ns
        thread.timeout_result = timeout_result
        thread.polling = polling
        if polling:
            self.pollers += 1
        if key is not None:
            thread.wait_key = key
            thread.wait_bitset = bitset
            thread.futex_waits += 1
            self.futex_waits += 1
            self._waiters.setdefault(key, []).append(thread)

    def yield_current(self, result: int = 0) -> None:
        """The running thread stays runnable but lets the others go first."""
        self.current.result = result

    def wake_thread(self, thread: GuestThread, result: int | None) -> None:
        """Make a blocked thread runnable; its pending ``ecall`` returns ``result`` (None: the
        call runs again)."""
        if thread.state is not ThreadState.BLOCKED:
            return
        self._forget_wait(thread)
        thread.state = ThreadState.RUNNABLE
        if thread.polling:
            thread.polling = False
            self.pollers -= 1
        thread.result = result
        thread.deadline_ns = None
        waker = thread.waker
        if waker is not None:
            thread.waker = None
            waker()  # an outside scheduler runs this thread: tell it
        elif not self.external:
            self._runnable.append(thread)

    def wake_pollers(self) -> None:
        """Something a readiness wait may watch changed (a guest write or close): every thread
        in one runs its call again."""
        for thread in list(self.live.values()):
            if thread.polling and thread.state is ThreadState.BLOCKED:
                self.wake_thread(thread, None)

    def futex_wake(self, key: int, count: int, bitset: int = 0xFFFF_FFFF) -> int:
        """Wake up to ``count`` threads waiting on ``key`` whose bitset meets ``bitset``."""
        woken = 0
        for thread in list(self._waiters.get(key, ())):
            if woken >= count:
                break
            if thread.wait_bitset & bitset:
                self.wake_thread(thread, 0)
                woken += 1
        self.futex_wakes += woken
        return woken

    def futex_requeue(self, key: int, wake: int, key2: int, move: int) -> int:
        """Wake up to ``wake`` waiters of ``key`` and move up to ``move`` others to ``key2``;
        returns how many were woken plus how many moved (what FUTEX_CMP_REQUEUE returns)."""
        woken = self.futex_wake(key, wake)
        waiting = self._waiters.get(key, [])
        moved = waiting[:move]
        if moved:
            del waiting[: len(moved)]
            if not waiting:
                self._waiters.pop(key, None)
            for thread in moved:
                thread.wait_key = key2
            self._waiters.setdefault(key2, []).extend(moved)
        return woken + len(moved)

    def _forget_wait(self, thread: GuestThread) -> None:
        key = thread.wait_key
        if key is None:
            return
        waiting = self._waiters.get(key)
        if waiting is not None and thread in waiting:
            waiting.remove(thread)
            if not waiting:
                del self._waiters[key]
        thread.wait_key = None

    # ------------------------------------------------------------------ switching

    def save(self, hart: Hart) -> None:
        """Copy the hart into the running thread (the reservation is dropped, see the note)."""
        thread = self.current
        thread.x[:] = hart.x
        thread.f[:] = hart.f
        thread.pc = hart.pc
        thread.fflags, thread.frm = hart.fflags, hart.frm
        self.account(hart)
        hart.reservation = -1

    def account(self, hart: Hart) -> None:
        """Count the instructions retired since the last switch to the running thread."""
        self.current.instructions += hart.instret - self._last_instret
        self._last_instret = hart.instret

    def load(self, thread: GuestThread, hart: Hart) -> None:
        """Make ``thread`` the running one: its registers into the hart, and the ``ecall`` it
        stopped at completed with its result."""
        self.current = thread
        hart.x[:] = thread.x
        hart.f[:] = thread.f
        hart.pc = thread.pc
        hart.fflags, hart.frm = thread.fflags, thread.frm
        hart.reservation = -1
        self._last_instret = hart.instret
        if thread.result is not None:
            hart.x[10] = thread.result & 0xFFFF_FFFF_FFFF_FFFF
            hart.pc = (hart.pc + 4) & 0xFFFF_FFFF_FFFF_FFFF
            hart.instret += 1  # the ecall retires now that its call returns (counted to it)
            thread.result = None
        thread.switches += 1
        self.switches += 1

    def next_thread(self, deadline_ns: int | None = None) -> GuestThread:
        """Choose the thread to run next, waiting (really) for a timed wait to end when every
        live thread is blocked.

        ``deadline_ns`` is the wall-clock limit's end on the monotonic clock (None: none); a
        wait never outlives it. Raises GuestDeadlock when no thread can ever run again.
        """
        current = self.current
        if current.state is ThreadState.RUNNABLE and current.tid in self.live:
            self._runnable.append(current)
        while True:
            self._expire(time.monotonic_ns())
            if self._runnable:
                return self._pick()
            timed = [t.deadline_ns for t in self.live.values() if t.deadline_ns is not None]
            if not timed:
                raise GuestDeadlock(self._deadlock_message())
            until = min(timed)
            if deadline_ns is not None and until > deadline_ns:
                until = deadline_ns
            wait = (until - time.monotonic_ns()) / 1e9
            if wait > 0:
                time.sleep(wait)  # real wait: every thread sleeps until a timeout ends
            if deadline_ns is not None and time.monotonic_ns() >= deadline_ns:
                return current  # the caller's wall-clock check ends the run

    def _pick(self) -> GuestThread:
        runnable = self._runnable
        if self._random is None or len(runnable) == 1:
            return runnable.popleft()
        index = self._random.randrange(len(runnable))
        thread = runnable[index]
        del runnable[index]
        return thread

    def _expire(self, now: int) -> None:
        for thread in list(self.live.values()):
            if (
                thread.state is ThreadState.BLOCKED
                and thread.deadline_ns is not None
                and thread.deadline_ns <= now
            ):
                self.wake_thread(thread, thread.timeout_result)

    def _deadlock_message(self) -> str:
        waits = ", ".join(
            f"thread {t.tid} in {t.blocked_on or 'a wait'} at pc {t.pc:#x}"
            for t in self.live.values()
        )
        return (
            f"deadlock: every thread is blocked and none can wake another ({waits}); under "
            "Linux the process would hang forever"
        )
