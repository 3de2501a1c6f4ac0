"""epoll, eventfd, and waiting for a descriptor to be ready while other guest threads run.

A mixin of :class:`~vmkit.async_executor.linux._kernel.Linux` (its ``sys_*`` methods join the
syscall table).

Design notes
------------
* An epoll instance is a host epoll: a guest epoll fd is an open file whose host descriptor is a
  ``select.epoll``, and ``epoll_ctl`` registers the host descriptors behind guest fds with the
  guest's event mask (the flag values are Linux's on every host). Readiness is therefore the
  host's own, for pipes, eventfds, sockets and terminals alike; the guest's 64-bit data is kept
  beside it and given back with each event. An eventfd is a host eventfd.
* Waiting: with one thread, a wait blocks the host (bounded by the wall-clock limit), as
  ``ppoll`` and ``read`` do. With several, a thread that would wait blocks as a *readiness wait*
  instead and the others run: the guest itself must write the byte it waits for (the Go
  runtime's netpoll break pipe, a pthread feeding a pipe). Every guest write and close wakes
  the threads in readiness waits, whose call then runs again and looks at the host's readiness;
  its deadline survives those restarts. When every thread waits, the host sleeps until the first
  deadline (timed waits) or the run ends as a deadlock.
"""

from __future__ import annotations

import errno
import os
import select
import stat
import struct
import time
from typing import TYPE_CHECKING, Any, Final

from vmkit.async_executor.linux._fs import OpenFile
from vmkit.async_executor.linux._threads import Threads, ThreadSwitch

if TYPE_CHECKING:
    from vmkit.async_executor.machine._machine import Machine

__all__ = ["EpollCalls"]

_EPOLL_CLOEXEC: Final = 0o2000000
_EFD_SEMAPHORE: Final = 1
_EFD_NONBLOCK: Final = 0o4000
_EFD_CLOEXEC: Final = 0o2000000
_EPOLL_CTL_ADD, _EPOLL_CTL_DEL, _EPOLL_CTL_MOD = 1, 2, 3
#: struct epoll_event on riscv64: u32 events, 4 bytes of padding, u64 data.
_EVENT: Final = struct.Struct("<I4xQ")
_MAX_EVENTS: Final = 4096
_O_NONBLOCK: Final = 0o4000


class EpollCalls:
    """epoll_create1, epoll_ctl, epoll_pwait and eventfd2, and readiness waits."""

    threads: Threads
    fds: dict[int, OpenFile]

    if TYPE_CHECKING:  # provided by the Linux layer this is mixed into

        def _new_fd(self, f: OpenFile, lowest: int = 0) -> int: ...

        def _file(self, fd: int) -> OpenFile: ...

        def _remaining(self, seconds: float | None) -> float | None: ...

        def check_wall_clock(self) -> None: ...

    # ------------------------------------------------------------------ eventfd

    def sys_eventfd2(self, m: Machine[Any], initval: int, flags: int, *_: int) -> int:
        if flags & ~(_EFD_SEMAPHORE | _EFD_NONBLOCK | _EFD_CLOEXEC):
            return -errno.EINVAL
        host_flags = os.EFD_CLOEXEC
        if flags & _EFD_NONBLOCK:
            host_flags |= os.EFD_NONBLOCK
        if flags & _EFD_SEMAPHORE:
            host_flags |= os.EFD_SEMAPHORE
        host = os.eventfd(initval & 0xFFFF_FFFF, host_flags)
        try:
            return self._new_fd(
                OpenFile(host, b"anon_inode:[eventfd]", flags=2 | (flags & _EFD_NONBLOCK))
            )
        except OSError:
            os.close(host)
            raise

    # ------------------------------------------------------------------ epoll

    def sys_epoll_create1(self, m: Machine[Any], flags: int, *_: int) -> int:
        if flags & ~_EPOLL_CLOEXEC:
            return -errno.EINVAL
        ep = select.epoll()
        # The epoll object owns its descriptor: closing the guest fd closes it (see _close_fd's
        # "closer"), never os.close behind its back.
        f = OpenFile(ep.fileno(), b"anon_inode:[eventpoll]", owned=False, flags=2, mutable=False)
        f.extra["epoll"] = ep
        f.extra["closer"] = ep.close
        f.extra["data"] = {}
        try:
            return self._new_fd(f)
        except OSError:
            ep.close()
            raise

    def _epoll(self, epfd: int) -> OpenFile:
        f = self._file(epfd)
        if "epoll" not in f.extra:
            raise OSError(errno.EINVAL, "not an epoll file descriptor")
        return f

    def sys_epoll_ctl(
        self, m: Machine[Any], epfd: int, op: int, fd: int, event: int, *_: int
    ) -> int:
        ep_file = self._epoll(epfd)
        target = self._file(fd)
        if target is ep_file or target.host_fd is None:
            return -errno.EINVAL
        ep: select.epoll = ep_file.extra["epoll"]  # type: ignore[assignment]
        data: dict[int, int] = ep_file.extra["data"]  # type: ignore[assignment]
        host = target.host_fd
        if op == _EPOLL_CTL_DEL:
            ep.unregister(host)
            data.pop(host, None)
            return 0
        if op not in (_EPOLL_CTL_ADD, _EPOLL_CTL_MOD):
            return -errno.EINVAL
        events, value = _EVENT.unpack(m.memory.read_bytes(event, _EVENT.size))
        if stat.S_ISREG(os.fstat(host).st_mode) or stat.S_ISDIR(os.fstat(host).st_mode):
            return -errno.EPERM  # Linux: regular files and directories cannot be polled
        if op == _EPOLL_CTL_ADD:
            ep.register(host, events)
        else:
            ep.modify(host, events)
        data[host] = value
        return 0

    def sys_epoll_pwait(
        self,
        m: Machine[Any],
        epfd: int,
        events: int,
        maxevents: int,
        timeout: int,
        sigmask: int,
        *_: int,
    ) -> int:
        ep_file = self._epoll(epfd)
        maxevents = _s32(maxevents)
        if not 0 < maxevents <= _MAX_EVENTS:
            return -errno.EINVAL
        ep: select.epoll = ep_file.extra["epoll"]  # type: ignore[assignment]
        ready = ep.poll(0, maxevents)
        timeout_ms = _s32(timeout)
        if not ready and timeout_ms != 0:
            seconds = None if timeout_ms < 0 else timeout_ms / 1e3
            if self._wait_ready(seconds, f"epoll_pwait on fd {_s32(epfd)}"):
                wait = self._remaining(seconds)
                ready = ep.poll(-1 if wait is None else wait, maxevents)
                if not ready and wait is not None and (seconds is None or wait < seconds):
                    self.check_wall_clock()
        data: dict[int, int] = ep_file.extra["data"]  # type: ignore[assignment]
        out = b"".join(_EVENT.pack(mask, data.get(host, 0)) for host, mask in ready)
        m.memory.write_bytes(events, out)
        return len(ready)

    # ------------------------------------------------------------------ readiness waits

    def _wait_ready(self, seconds: float | None, what: str) -> bool:
        """Wait for readiness that is not there yet, ``seconds`` at most (None: no limit).

        Alone, returns True: the caller waits on the host. With other threads, blocks this one
        as a readiness wait (raising ThreadSwitch; the call runs again when a guest write or
        close, or the deadline, wakes it) and returns False once the deadline has passed.
        """
        threads = self.threads
        if not threads.multiple:
            return True
        thread = threads.current
        now = time.monotonic_ns()
        if thread.poll_deadline_ns is None:
            thread.poll_deadline_ns = -1 if seconds is None else now + int(seconds * 1e9)
        deadline = thread.poll_deadline_ns
        if deadline != -1 and deadline <= now:
            return False
        threads.block_current(
            what,
            deadline_ns=None if deadline == -1 else deadline,
            timeout_result=None,
            polling=True,
        )
        raise ThreadSwitch(what)

    def _readable_now(self, host: int) -> bool:
        ready, _, _ = select.select([host], [], [], 0)
        return bool(ready)


def _s32(v: int) -> int:
    v &= 0xFFFF_FFFF
    return v - (1 << 32) if v & 0x8000_0000 else v
