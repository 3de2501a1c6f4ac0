"""The system calls of threads: clone, exit, futex, yield, thread ids and signals to a thread.

A mixin of :class:`~vmkit.async_executor.linux._kernel.Linux` (its ``sys_*`` methods join the
syscall table); the thread table and the switch between threads are in :mod:`._threads`.

Design notes
------------
* ``clone`` makes a thread only: CLONE_VM, CLONE_THREAD and CLONE_SIGHAND are required, which is
  what glibc's ``pthread_create`` and the Go runtime pass. A fork-style clone (a new process)
  fails with ENOSYS and one warning naming the flags, so ``fork()`` reports an error instead of
  the guest running in a state Linux would never produce.
* Futex keys are guest virtual addresses: one process, one address space, so private and shared
  futexes are the same thing here.
* A blocking call raises :class:`ThreadSwitch` after recording why the thread blocks; only then
  is the thread's state saved, so the call's effects (the tid written by CLONE_PARENT_SETTID, the
  futex word read) are those of the instant it blocked, as under Linux.
"""

from __future__ import annotations

import errno
import os
import struct
import time
from typing import TYPE_CHECKING, Any, Final

from vmkit.async_executor._logging import get_logger
from vmkit.async_executor.errors import GuestExit, GuestSignal
from vmkit.async_executor.linux._threads import (
    GuestDeadlock,
    GuestThread,
    Threads,
    ThreadState,
    ThreadSwitch,
)
from vmkit.async_executor.machine._memory import GuestMemoryFault

if TYPE_CHECKING:
    from vmkit.async_executor.machine._machine import Machine

__all__ = ["ThreadCalls"]

log = get_logger(__name__)

M64: Final = (1 << 64) - 1
CLONE_VM: Final = 0x100
CLONE_FS: Final = 0x200
CLONE_FILES: Final = 0x400
CLONE_SIGHAND: Final = 0x800
CLONE_THREAD: Final = 0x10000
CLONE_SYSVSEM: Final = 0x40000
CLONE_SETTLS: Final = 0x80000
CLONE_PARENT_SETTID: Final = 0x100000
CLONE_CHILD_CLEARTID: Final = 0x200000
CLONE_DETACHED: Final = 0x400000
CLONE_CHILD_SETTID: Final = 0x1000000
_THREAD: Final = CLONE_VM | CLONE_THREAD | CLONE_SIGHAND
_UNDERSTOOD: Final = (
    _THREAD
    | CLONE_FS
    | CLONE_FILES
    | CLONE_SYSVSEM
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_CLEARTID
    | CLONE_DETACHED
    | CLONE_CHILD_SETTID
)
_CLONE_ARGS: Final = struct.Struct("<11Q")  # struct clone_args, up to cgroup (88 bytes)

FUTEX_WAIT: Final = 0
FUTEX_WAKE: Final = 1
FUTEX_REQUEUE: Final = 3
FUTEX_CMP_REQUEUE: Final = 4
FUTEX_WAKE_OP: Final = 5
FUTEX_WAIT_BITSET: Final = 9
FUTEX_WAKE_BITSET: Final = 10
FUTEX_CLOCK_REALTIME: Final = 256
FUTEX_BITSET_ALL: Final = 0xFFFF_FFFF
_FUTEX_OWNER_DIED: Final = 0x4000_0000
_FUTEX_WAITERS: Final = 0x8000_0000
_FUTEX_TID_MASK: Final = 0x3FFF_FFFF
#: Robust list entries walked at exit at most (Linux's ROBUST_LIST_LIMIT).
_ROBUST_LIST_LIMIT: Final = 2048


def _s32(v: int) -> int:
    v &= 0xFFFF_FFFF
    return v - (1 << 32) if v & 0x8000_0000 else v


def _wake_op(old: int, op: int, arg: int) -> int:
    """FUTEX_WAKE_OP's operation on the second futex word."""
    if op == 0:  # SET
        return arg
    if op == 1:  # ADD
        return (old + arg) & 0xFFFF_FFFF
    if op == 2:  # OR
        return old | arg
    if op == 3:  # ANDN
        return old & ~arg & 0xFFFF_FFFF
    if op == 4:  # XOR
        return old ^ arg
    raise ValueError(f"FUTEX_WAKE_OP operation {op}")


def _wake_cmp(old: int, cmp: int, arg: int) -> bool:
    """FUTEX_WAKE_OP's comparison of the second word's old value (signed, as Linux does)."""
    value = _s32(old)
    tests = (
        value == arg,
        value != arg,
        value < arg,
        value <= arg,
        value > arg,
        value >= arg,
    )
    if not 0 <= cmp < len(tests):
        raise ValueError(f"FUTEX_WAKE_OP comparison {cmp}")
    return tests[cmp]


class ThreadCalls:
    """System calls about threads (mixed into the Linux layer)."""

    threads: Threads
    pid: int

    if TYPE_CHECKING:  # provided by the Linux layer this is mixed into

        def _send_self(self, m: Machine[Any], sig: int) -> int: ...

        def _read_timespec(self, m: Machine[Any], addr: int) -> int | None: ...

        def _wait_ready(self, seconds: float | None, what: str) -> bool: ...

        def _sleep(self, seconds: float) -> None: ...

    # ------------------------------------------------------------------ creating threads

    def sys_clone3(self, m: Machine[Any], args: int, size: int, *_: int) -> int:
        if size < 64 or size > 4096:  # CLONE_ARGS_SIZE_VER0 is 64 bytes
            return -errno.EINVAL
        raw = m.memory.read_bytes(args, min(size, _CLONE_ARGS.size)).ljust(_CLONE_ARGS.size, b"\0")
        flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, *rest = (
            _CLONE_ARGS.unpack(raw)
        )
        if pidfd or exit_signal or any(rest):  # pidfds, set_tid and cgroups are not provided
            return -errno.EINVAL
        top = (stack + stack_size) & M64 if stack else 0
        return self._clone(m, flags, top, parent_tid, tls, child_tid)

    def _clone(
        self,
        m: Machine[Any],
        flags: int,
        stack: int,
        parent_tid: int,
        tls: int,
        child_tid: int,
        *_: int,
    ) -> int:
        """clone(flags, stack, parent_tid, tls, child_tid), and what clone3 unpacks to."""
        flags &= ~0xFF  # the low byte is the exit signal, meaningless for a thread
        if flags & _THREAD != _THREAD:
            log.warning(
                "clone_unsupported",
                flags=hex(flags),
                why="only threads (CLONE_VM|CLONE_THREAD|CLONE_SIGHAND) are supported; "
                "a new process (fork) is not",
            )
            return -errno.ENOSYS
        if flags & ~_UNDERSTOOD:
            return -errno.EINVAL
        threads = self.threads
        if len(threads.live) >= threads.max_threads:
            return -errno.EAGAIN
        tid = threads.new_tid()
        # The writes go first: a bad address fails the call before any thread exists.
        if flags & CLONE_PARENT_SETTID:
            m.memory.write_word(parent_tid, 4, tid)
        if flags & CLONE_CHILD_SETTID:
            m.memory.write_word(child_tid, 4, tid)
        child = threads.spawn(
            m.hart, stack=stack, tls=tls if flags & CLONE_SETTLS else None, tid=tid
        )
        if flags & CLONE_CHILD_CLEARTID:
            child.clear_child_tid = child_tid
        log.debug("thread_created", tid=tid, pc=hex(child.pc))
        return tid

    sys_clone = _clone

    # ------------------------------------------------------------------ ending threads

    def sys_exit(self, m: Machine[Any], status: int, *_: int) -> int:
        threads = self.threads
        if not threads.multiple:
            raise GuestExit(status & 0xFF)
        thread = threads.current
        self._release_robust_futexes(m, thread)
        if thread.clear_child_tid:
            # pthread_join waits on this word: zero it and wake the joiner, as Linux does.
            try:
                m.memory.write_word(thread.clear_child_tid, 4, 0)
                threads.futex_wake(thread.clear_child_tid, 1)
            except GuestMemoryFault:
                pass
        threads.exit_current()
        log.debug("thread_exited", tid=thread.tid, status=status & 0xFF)
        raise ThreadSwitch(f"thread {thread.tid} exited")

    def sys_exit_group(self, m: Machine[Any], status: int, *_: int) -> int:
        raise GuestExit(status & 0xFF)

    def sys_set_tid_address(self, m: Machine[Any], tidptr: int, *_: int) -> int:
        self.threads.current.clear_child_tid = tidptr
        return self.threads.current.tid

    def sys_set_robust_list(self, m: Machine[Any], head: int, length: int, *_: int) -> int:
        if length != 24:
            return -errno.EINVAL
        self.threads.current.robust_list = head
        return 0

    def sys_get_robust_list(
        self, m: Machine[Any], tid: int, head_ptr: int, len_ptr: int, *_: int
    ) -> int:
        thread = self._thread(tid)
        if thread is None:
            return -errno.ESRCH
        m.memory.write_word(head_ptr, 8, thread.robust_list)
        m.memory.write_word(len_ptr, 8, 24)
        return 0

    def _release_robust_futexes(self, m: Machine[Any], thread: GuestThread) -> None:
        """Mark the robust mutexes a dying thread holds as owner-died and wake a waiter of each
        (struct robust_list_head: next, futex_offset, list_op_pending)."""
        head = thread.robust_list
        if not head:
            return
        mem = m.memory
        try:
            entry = mem.read_word(head, 8)
            offset = _s64(mem.read_word(head + 8, 8))
            pending = mem.read_word(head + 16, 8)
            seen = 0
            for node in [*self._robust_nodes(m, head, entry), pending]:
                if not node or seen >= _ROBUST_LIST_LIMIT:
                    continue
                seen += 1
                word = (node + offset) & M64
                value = mem.read_word(word, 4)
                if value & _FUTEX_TID_MASK != thread.tid:
                    continue
                mem.write_word(word, 4, (value & _FUTEX_WAITERS) | _FUTEX_OWNER_DIED)
                if value & _FUTEX_WAITERS:
                    self.threads.futex_wake(word, 1)
        except GuestMemoryFault:
            return  # a corrupt list is the guest's problem; Linux stops walking too

    @staticmethod
    def _robust_nodes(m: Machine[Any], head: int, entry: int) -> list[int]:
        nodes: list[int] = []
        while entry != head and len(nodes) < _ROBUST_LIST_LIMIT:
            nodes.append(entry & ~1)
            entry = m.memory.read_word(entry & ~1, 8)
        return nodes

    # ------------------------------------------------------------------ thread ids and signals

    def sys_gettid(self, m: Machine[Any], *_: int) -> int:
        return self.threads.current.tid

    def _thread(self, tid: int) -> GuestThread | None:
        tid = _s32(tid)
        return self.threads.live.get(tid if tid else self.threads.current.tid)

    def sys_tkill(self, m: Machine[Any], tid: int, sig: int, *_: int) -> int:
        thread = self._thread(tid)
        if thread is None or _s32(tid) <= 0:
            return -errno.ESRCH if thread is None else -errno.EINVAL
        return self._send_to_thread(m, thread, _s32(sig))

    def sys_tgkill(self, m: Machine[Any], tgid: int, tid: int, sig: int, *_: int) -> int:
        if _s32(tgid) != self.pid:
            return -errno.ESRCH
        return self.sys_tkill(m, tid, sig)

    def _send_to_thread(self, m: Machine[Any], thread: GuestThread, sig: int) -> int:
        """Send ``sig`` to one thread: at once when it is the caller, else pending until that
        thread next runs (a blocked futex wait is interrupted with EINTR so that it does)."""
        if thread is self.threads.current:
            return self._send_self(m, sig)
        if sig == 0:
            return 0
        if not 1 <= sig <= 64:
            return -errno.EINVAL
        if sig in (9, 19):  # SIGKILL, SIGSTOP act on the whole process
            raise GuestSignal(sig, pc=m.hart.pc)
        bit = 1 << (sig - 1)
        thread.pending |= bit
        if thread.state is ThreadState.BLOCKED:
            if thread.sigwait_set & bit:
                self.threads.wake_thread(thread, None)  # its sigtimedwait runs again, finds it
            elif not thread.sigmask & bit:
                self.threads.wake_thread(thread, -errno.EINTR)
        return 0

    def sys_rt_sigtimedwait(
        self, m: Machine[Any], uset: int, info: int, timeout: int, size: int, *_: int
    ) -> int:
        if size != 8:
            return -errno.EINVAL
        wanted = m.memory.read_word(uset, 8) & ~((1 << 8) | (1 << 18))  # never SIGKILL, SIGSTOP
        thread = self.threads.current
        ready = thread.pending & wanted
        if ready:
            thread.sigwait_set = 0
            sig = (ready & -ready).bit_length()
            thread.pending &= ~(1 << (sig - 1))
            if info:
                blob = bytearray(128)
                struct.pack_into("<iiiiiI", blob, 0, sig, 0, -6, 0, self.pid, os.getuid())
                m.memory.write_bytes(info, bytes(blob))
            return sig
        seconds = None
        if timeout:
            ns = self._read_timespec(m, timeout)
            if ns is None:
                return -errno.EINVAL
            seconds = ns / 1e9
        thread.sigwait_set = wanted
        if not self._wait_ready(seconds, "rt_sigtimedwait"):  # blocks when others can run
            thread.sigwait_set = 0
            return -errno.EAGAIN
        thread.sigwait_set = 0
        if seconds is None:
            raise threads_deadlock(self.threads, "sigwait")
        self._sleep(seconds)  # alone, nobody can send the signal meanwhile
        return -errno.EAGAIN

    # ------------------------------------------------------------------ yielding and sleeping

    def sys_sched_yield(self, m: Machine[Any], *_: int) -> int:
        if not self.threads.multiple:
            return 0
        self.threads.yield_current(0)
        raise ThreadSwitch("sched_yield")

    def _sleep_thread(self, seconds: float) -> bool:
        """Block the running thread for ``seconds`` when others can run meanwhile; False when
        it is the only thread (the caller then sleeps the host)."""
        threads = self.threads
        if not threads.multiple:
            return False
        deadline = time.monotonic_ns() + int(seconds * 1e9)
        threads.block_current("a sleep", deadline_ns=deadline, timeout_result=0)
        raise ThreadSwitch("sleep")

    # ------------------------------------------------------------------ futex

    def sys_futex(  # noqa: PLR0911 - the syscall's arguments; one return per operation
        self,
        m: Machine[Any],
        uaddr: int,
        op: int,
        val: int,
        timeout: int,
        uaddr2: int,
        val3: int,
        *_: int,
    ) -> int:
        cmd = op & 0x7F
        if uaddr & 3:
            return -errno.EINVAL
        threads = self.threads
        if cmd in (FUTEX_WAIT, FUTEX_WAIT_BITSET):
            bitset = FUTEX_BITSET_ALL if cmd == FUTEX_WAIT else val3 & 0xFFFF_FFFF
            if not bitset:
                return -errno.EINVAL
            if m.memory.read_word(uaddr, 4) != val & 0xFFFF_FFFF:
                return -errno.EAGAIN
            deadline = self._futex_deadline(m, cmd, op, timeout)
            if deadline is not None and deadline <= time.monotonic_ns():
                return -errno.ETIMEDOUT
            if not threads.multiple and deadline is None:
                # One thread: nobody can ever wake it, and Linux would hang forever.
                raise threads_deadlock(threads, f"futex wait on {uaddr:#x}")
            threads.block_current(
                f"futex wait on {uaddr:#x}",
                key=uaddr,
                bitset=bitset,
                deadline_ns=deadline,
                timeout_result=-errno.ETIMEDOUT,
            )
            raise ThreadSwitch("futex wait")
        if cmd in (FUTEX_WAKE, FUTEX_WAKE_BITSET):
            bitset = FUTEX_BITSET_ALL if cmd == FUTEX_WAKE else val3 & 0xFFFF_FFFF
            if not bitset:
                return -errno.EINVAL
            return threads.futex_wake(uaddr, _s32(val) & 0x7FFF_FFFF, bitset)
        if cmd in (FUTEX_REQUEUE, FUTEX_CMP_REQUEUE):
            if uaddr2 & 3:
                return -errno.EINVAL
            if cmd == FUTEX_CMP_REQUEUE and m.memory.read_word(uaddr, 4) != val3 & 0xFFFF_FFFF:
                return -errno.EAGAIN
            move = timeout & 0x7FFF_FFFF  # the timeout argument carries val2
            return threads.futex_requeue(uaddr, _s32(val) & 0x7FFF_FFFF, uaddr2, move)
        if cmd == FUTEX_WAKE_OP:
            return self._futex_wake_op(m, uaddr, val, timeout, uaddr2, val3)
        return -errno.ENOSYS

    def _futex_deadline(self, m: Machine[Any], cmd: int, op: int, timeout: int) -> int | None:
        """When a futex wait gives up, on the monotonic clock (None: never). FUTEX_WAIT takes a
        relative timeout; FUTEX_WAIT_BITSET an absolute one on the monotonic clock, or on the
        real-time clock with FUTEX_CLOCK_REALTIME."""
        if not timeout:
            return None
        ns = self._read_timespec(m, timeout)
        if ns is None:
            raise OSError(errno.EINVAL, "bad timeout")
        now = time.monotonic_ns()
        if cmd == FUTEX_WAIT:
            return now + ns
        if op & FUTEX_CLOCK_REALTIME:
            return now + (ns - time.time_ns())
        return ns

    def _futex_wake_op(
        self, m: Machine[Any], uaddr: int, val: int, val2: int, uaddr2: int, val3: int
    ) -> int:
        if uaddr2 & 3:
            return -errno.EINVAL
        op = (val3 >> 28) & 0xF
        cmp = (val3 >> 24) & 0xF
        oparg = (val3 >> 12) & 0xFFF
        cmparg = val3 & 0xFFF
        if op & 8:  # FUTEX_OP_OPARG_SHIFT
            oparg = 1 << (oparg & 31)
            op &= 7
        else:
            oparg = oparg - 0x1000 if oparg & 0x800 else oparg
        cmparg = cmparg - 0x1000 if cmparg & 0x800 else cmparg
        try:
            old = m.memory.read_word(uaddr2, 4)
            new = _wake_op(old, op, oparg & 0xFFFF_FFFF)
            test = _wake_cmp(old, cmp, cmparg)
        except ValueError:
            return -errno.ENOSYS
        m.memory.write_word(uaddr2, 4, new)
        threads = self.threads
        woken = threads.futex_wake(uaddr, _s32(val) & 0x7FFF_FFFF)
        if test:
            woken += threads.futex_wake(uaddr2, val2 & 0x7FFF_FFFF)
        return woken


def threads_deadlock(threads: Threads, waiting_for: str) -> BaseException:
    """The error ending a guest whose only thread waits for something nobody can give."""
    thread = threads.current
    return GuestDeadlock(
        f"deadlock: the only thread ({thread.tid}) blocks in {waiting_for} with no timeout; "
        "no other thread exists to wake it, and under Linux the process would hang forever"
    )


def _s64(v: int) -> int:
    v &= M64
    return v - (1 << 64) if v >> 63 else v
