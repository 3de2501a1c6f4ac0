"""Thread system calls one at a time: what clone refuses, what a new thread starts with, the
thread limit, a lone untimed futex wait, signals to unknown threads, CPUs reported."""

from __future__ import annotations

import errno
import pathlib
from collections.abc import Iterator

import pytest
from test_syscalls import BUF, Guest

from vmkit.async_executor.linux._threads import GuestDeadlock


@pytest.fixture
def guest(tmp_path: pathlib.Path) -> Iterator[Guest]:
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
        guest.m.hart.pc = 0x1000
        guest.m.hart.x[4] = 0x1111
        flags = CLONE_THREAD_FLAGS | 0x80000 | 0x100000  # SETTLS, PARENT_SETTID
        tid = guest.call("clone", flags, 0x9000, BUF, 0x7777, 0)
        assert tid > guest.linux.pid
        assert guest.m.memory.load(BUF, 4) == tid
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
            guest.call("futex", BUF, 128, 0)

    def test_signal_to_an_unknown_thread(self, guest: Guest) -> None:
        assert guest.call("tgkill", guest.linux.pid, guest.linux.pid + 99, 10) == -errno.ESRCH


def test_affinity_reports_the_schedulers_vcpus(guest: Guest) -> None:
    """With ``cpus`` set (as ThreadedGuest does for a scheduler), sched_getaffinity shows that
    many CPUs, which is what glibc's get_nprocs and Go's GOMAXPROCS count."""
    guest.linux.cpus = 3
    assert guest.call("sched_getaffinity", 0, 8, BUF) == 8
    assert guest.m.memory.load(BUF, 8) == 0b111
