"""The Linux user-mode ABI a static riscv64 glibc program needs, served from Python.

Why one module of this size: it is the syscall table, one short handler method per system call
over one process's state (fds, signals, limits); the file system, signal frames, the ABI's
numbers and the memory layout already live beside it (``_fs``, ``_signals``, ``_abi``,
``_layout``).

Design notes
------------
* One table maps a syscall number (asm-generic numbering, see ``_abi``) to a handler method. A
  handler receives the six argument registers as unsigned 64-bit ints and returns an int; a
  negative result is ``-errno``. :meth:`Linux.syscall` writes it to a0 as 2**64 - errno.
  GuestMemoryFault raised while copying from or to guest memory becomes EFAULT, and an OSError
  from the host becomes its errno (the host is Linux, so the numbers agree).
* An unknown syscall returns -ENOSYS and logs one structured warning per number (not per call),
  so a program probing for optional features is not drowned in warnings.
* Files: guest fds index a table of :class:`OpenFile` descriptions (shared after dup, as in
  Linux). Guest fds 0, 1 and 2 start as the host's stdin, stdout and stderr, written unbuffered
  with ``os.write`` so the guest's output interleaves exactly as it would natively. Paths are
  resolved by :class:`GuestFS`, which confines them to the guest root. Invariant: only ordinary
  paths inside the root are ever created, removed, renamed, linked, truncated or have their
  metadata changed (``_mutable``/``_mutable_fd``); mounts (devices, the program, time-zone data)
  and the inherited stdio are used for reading and writing data only. The guest runs with the
  host user's rights, which may be root, so this check is what keeps host files safe.
* Signals: the only signals are those a process sends itself (kill, tkill, tgkill: what
  ``raise()`` and ``abort()`` do). Each takes its action as Linux would: ignored (SIG_IGN, or a
  default-ignored signal), fatal (default action: GuestSignal, status 128 + signal), or the
  guest's handler runs on a signal frame (``_signals``) and returns through rt_sigreturn. A
  blocked signal stays pending until rt_sigprocmask or rt_sigreturn unblocks it. Faults detected
  by executors (SIGSEGV, SIGILL) reach a handler only when the executor calls
  :meth:`Linux.deliver_fault`; otherwise they end the guest.
* Threads do not exist: futex WAIT returns EAGAIN when the word differs (the lock changed hands),
  ETIMEDOUT with a timeout and EDEADLK (with a warning) when it would block forever; WAKE wakes
  nobody. That is all single-threaded glibc needs. clone is ENOSYS, so fork and pthread_create
  fail cleanly.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl as host_fcntl
import os
import select
import signal
import stat
import struct
import termios
import time
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Final

from vmkit.async_executor._logging import get_logger
from vmkit.async_executor.errors import GuestFault, GuestSignal, WallClockExceeded
from vmkit.async_executor.limits import (
    DEFAULT_LIMITS,
    WALL_CLOCK_EXCEEDED_STATUS,
    GuestLimits,
    LimitCounters,
)
from vmkit.async_executor.linux import _abi as abi
from vmkit.async_executor.linux._capture import DEFAULT_CAPTURE_LIMIT, OutputCapture, pipe_stat
from vmkit.async_executor.linux._epoll import EpollCalls
from vmkit.async_executor.linux._fs import GuestFS, OpenFile, Resolved, host_getdents64
from vmkit.async_executor.linux._layout import ProcessMemory
from vmkit.async_executor.linux._signals import (
    SA_NODEFER,
    SA_ONSTACK,
    SA_RESETHAND,
    push_frame,
    restore_frame,
)
from vmkit.async_executor.linux._thread_calls import ThreadCalls
from vmkit.async_executor.linux._threads import GuestThread, Threads
from vmkit.async_executor.machine._hooks import GuestStopped, SyscallCall
from vmkit.async_executor.machine._memory import (
    PAGE_MASK,
    PERM_W,
    AddressSpace,
    GuestMemoryFault,
)

if TYPE_CHECKING:
    from vmkit.async_executor.machine._machine import Machine

__all__ = ["Linux"]

log = get_logger(__name__)

M64 = (1 << 64) - 1
PATH_MAX = 4096
Handler = Callable[..., int]

#: Bytes a file-backed mmap copies from the host per read.
_MMAP_CHUNK = 1 << 24
#: Most bytes one read/write-family call moves (a short count beyond): no guest length can make
#: the host allocate more than this for one call.
_IO_CAP: Final = 1 << 24
#: errno for writing a file outside the root that is read-only, by its mount (Resolved.virtual).
_READ_ONLY_ERRNO: Final = {"exe": errno.ETXTBSY, "ro": errno.EROFS}
_RLIMIT_STACK: Final = 3
_RLIMIT_NOFILE: Final = 7
#: The highest RLIMIT_NOFILE a guest may ever have, whatever it asks (Linux's default nr_open).
_NOFILE_CEILING: Final = 1 << 20
_U64 = struct.Struct("<Q")
_TIMESPEC = struct.Struct("<qq")
_IOVEC = struct.Struct("<QQ")
_DIRENT_HEAD = struct.Struct("<QqHB")

# Signals whose default action is to ignore them.
_IGNORED_BY_DEFAULT = {int(signal.SIGCHLD), int(signal.SIGURG), int(signal.SIGWINCH), 18}
_SIG_DFL, _SIG_IGN = 0, 1
_NSIG = 64
_UNBLOCKABLE_MASK = ~((1 << (signal.SIGKILL - 1)) | (1 << (signal.SIGSTOP - 1)))
_TTY_IOCTLS = {termios.TCGETS: 36, termios.TIOCGWINSZ: 8, termios.TIOCGPGRP: 4}
_CLOCKS_REALTIME = {0, 5, 8, 11}  # REALTIME, REALTIME_COARSE, REALTIME_ALARM, TAI
_CLOCKS_MONOTONIC = {1, 4, 6, 7, 9}  # MONOTONIC, _RAW, _COARSE, BOOTTIME, BOOTTIME_ALARM
_CLOCKS_CPU = {2, 3}
_RLIM_INFINITY = M64


def _writable_room(memory: AddressSpace, addr: int, length: int) -> int:
    """How many of the ``length`` bytes from ``addr`` the guest may write: a read into a buffer
    that runs into an unmapped or read-only page is short, as on Linux, and the host never
    produces (or consumes from a pipe) bytes that could not be stored. EFAULT when not even the
    first byte may be written."""
    end = addr + length
    page = addr
    while page < end:
        perms = memory.perms_at(page)
        if perms is None or not perms & PERM_W:
            break
        page = (page | PAGE_MASK) + 1
    room = min(page, end) - addr
    if room == 0 and length:
        raise OSError(errno.EFAULT, "buffer not writable")
    return room


def _s32(v: int) -> int:
    """A register value as the kernel's ``int`` argument (low 32 bits, signed)."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _id(v: int) -> int:
    """A uid_t/gid_t argument: 32 bits unsigned, with (uid_t)-1 meaning "leave unchanged"."""
    v &= 0xFFFFFFFF
    return -1 if v == 0xFFFFFFFF else v


def _s64(v: int) -> int:
    return v - (1 << 64) if v & (1 << 63) else v


class Linux(ThreadCalls, EpollCalls):
    """Syscalls, file descriptors, the sandboxed file system and signal bookkeeping of a guest.

    Args:
        root: host directory the guest sees as ``/`` (default: the current directory).
        exe_host: host path of the running program (for ``/proc/self/exe``).
        exe_guest: what ``readlink("/proc/self/exe")`` answers.
        stdio: host fds behind guest fds 0, 1 and 2.
        host_ro: host directory under which the read-only time-zone data is found (default the
            host's root; tests use a stand-in).
        host_dev: host directory whose full, null, zero, random, urandom and tty the guest's /dev
            shows (tests use stand-ins so a sandbox bug could never touch the real devices).
        limits: the guest's resource limits (see :mod:`vmkit.async_executor.limits`).
        counters: where refusals by a limit are counted (shared with the address space).
    """

    def __init__(
        self,
        root: str | os.PathLike[str] = ".",
        *,
        exe_host: bytes | None = None,
        exe_guest: bytes | None = None,
        stdio: tuple[int, int, int] = (0, 1, 2),
        host_dev: bytes = b"/dev",
        host_ro: bytes = b"/",
        limits: GuestLimits = DEFAULT_LIMITS,
        counters: LimitCounters | None = None,
    ) -> None:
        #: What this guest may take (open files, disk), and where refusals are counted.
        self.limits = limits
        self.limit_counters = counters if counters is not None else LimitCounters()
        #: getrlimit/setrlimit values by resource: [soft, hard]. NOFILE is enforced by the fd
        #: table; the others are reported back as set (the guest's stack is fixed at load).
        self.rlimits: dict[int, list[int]] = {
            _RLIMIT_STACK: [8 << 20, _RLIM_INFINITY],
            _RLIMIT_NOFILE: [limits.open_files, max(limits.open_files, limits.open_files_hard)],
        }
        self.fs = GuestFS(
            root, exe_host=exe_host, exe_guest=exe_guest, host_dev=host_dev, host_ro=host_ro
        )
        self.fds: dict[int, OpenFile] = {}
        for guest_fd, host_fd in enumerate(stdio):
            # The host's stdio may be any file outside the root (a terminal, a redirect target,
            # /dev/null): the guest reads and writes it but cannot change its metadata or size.
            self.fds[guest_fd] = OpenFile(
                host_fd, b"", owned=False, flags=(0, 1, 1)[guest_fd], mutable=False
            )
        self.pid = os.getpid()
        #: CPUs sched_getaffinity reports (None: the host's, as qemu-user does).
        self.cpus: int | None = None
        #: The guest's threads (the main thread's tid is the pid); see _threads.
        self.threads = Threads(self.pid)
        self.threads.main.sigaltstack = struct.pack("<QiiQ", 0, 2, 0, 0)  # SS_DISABLE
        self.sigactions: dict[int, bytes] = {}
        #: Set by a syscall that redirected the hart (signal delivery, sigreturn): a0 stays.
        self._redirected = False
        self.umask = 0o022
        # The break and mmap allocator of each address space served (see _layout); weak so
        # that a dropped machine's memory goes with it.
        self._process_memory: weakref.WeakKeyDictionary[AddressSpace, ProcessMemory] = (
            weakref.WeakKeyDictionary()
        )
        self.comm = os.path.basename(exe_host or b"program")[:15]
        self.syscall_counts: dict[int, int] = {}
        self._warned: set[int] = set()
        self._start = time.monotonic()
        #: bytes of files the guest grew in its private /tmp (see ``_disk_quota``).
        self.disk_used = 0
        #: monotonic time at which the wall-clock limit passes (None: no limit).
        self.deadline: float | None = (
            self._start + limits.wall_seconds if limits.wall_seconds is not None else None
        )
        self._table: dict[int, Handler] = {}
        for name, number in abi.SYSCALL_NUMBERS.items():
            method = getattr(self, "sys_" + name, None)
            if method is not None:
                self._table[number] = method

    # Signal state is per thread: these name the running thread's.
    @property
    def sigmask(self) -> int:
        """The running thread's blocked signals (bit sig - 1)."""
        return self.threads.current.sigmask

    @sigmask.setter
    def sigmask(self, value: int) -> None:
        self.threads.current.sigmask = value

    @property
    def pending(self) -> int:
        """Signals sent to the running thread while blocked, delivered when unblocked."""
        return self.threads.current.pending

    @pending.setter
    def pending(self, value: int) -> None:
        self.threads.current.pending = value

    @property
    def sigaltstack(self) -> bytes:
        """The running thread's alternate signal stack (stack_t, packed)."""
        return self.threads.current.sigaltstack

    @sigaltstack.setter
    def sigaltstack(self, value: bytes) -> None:
        self.threads.current.sigaltstack = value

    def switch_thread(self, machine: Machine[Linux]) -> None:
        """Save the running thread, choose the next (waiting for a timed wait when all are
        blocked) and load it; a signal pending for it is delivered before it runs.

        Raises GuestDeadlock when no thread can ever run again, WallClockExceeded when the limit
        passes while every thread waits, and GuestSignal when a pending signal is fatal.
        """
        threads = self.threads
        threads.save(machine.hart)
        wall = None if self.deadline is None else int(self.deadline * 1e9)
        thread = threads.next_thread(wall)
        self.check_wall_clock()
        self.enter_thread(machine, thread)

    def enter_thread(self, machine: Machine[Linux], thread: GuestThread) -> None:
        """Make ``thread`` the running one (its registers into the hart, its pending ``ecall``
        completed) and deliver a signal pending for it before its next instruction.

        Raises GuestSignal when that signal is fatal.
        """
        self.threads.load(thread, machine.hart)
        if thread.pending & ~thread.sigmask:
            hart = machine.hart
            self._deliver_pending(machine, resume_pc=hart.pc, a0=hart.x[10])
            self._redirected = False

    def capture_output(
        self,
        fd: int = 1,
        callback: Callable[[bytes], object] | None = None,
        *,
        limit: int = DEFAULT_CAPTURE_LIMIT,
        keep: bool = True,
    ) -> OutputCapture:
        """Keep what the guest writes to ``fd`` (1: stdout, 2: stderr) in memory, and pass each
        write to ``callback``, instead of writing to the host (see ``linux._capture``)."""
        capture = OutputCapture(callback, limit=limit, keep=keep)
        if fd in self.fds:
            self._close_fd(fd)
        f = OpenFile(None, b"pipe:[capture]", owned=False, flags=1, mutable=False)
        f.virtual = "capture"
        f.extra["capture"] = capture
        self.fds[fd] = f
        return capture

    def _captured(self, f: OpenFile, data: bytes) -> int:
        capture = f.extra["capture"]
        assert isinstance(capture, OutputCapture)
        return capture.write(data)

    def replace_syscall(self, syscall: int | str, handler: Handler | None) -> None:
        """Serve ``syscall`` (a riscv64 number or a name) with ``handler(machine, a0, ..., a5)
        -> result`` (a negative errno for an error), or with the built-in handler again when
        ``handler`` is None (ENOSYS when there is none). A number the table does not know adds
        a system call."""
        if isinstance(syscall, str):
            if syscall not in abi.SYSCALL_NUMBERS:
                raise ValueError(f"no system call named {syscall!r}")
            number = abi.SYSCALL_NUMBERS[syscall]
        else:
            number = syscall
        if handler is not None:
            self._table[number] = handler
            return
        builtin = getattr(self, "sys_" + abi.SYSCALL_NAMES.get(number, ""), None)
        if builtin is not None:
            self._table[number] = builtin
        else:
            self._table.pop(number, None)

    def close(self) -> None:
        """Close every host fd the guest opened and delete the private /tmp."""
        for guest_fd in list(self.fds):
            self._close_fd(guest_fd)
        self.fs.close()

    @property
    def supported(self) -> dict[int, str]:
        """Syscall numbers with a handler, and their names."""
        return {n: abi.SYSCALL_NAMES[n] for n in sorted(self._table)}

    # ------------------------------------------------------------------ dispatch

    def check_wall_clock(self) -> None:
        """Raise WallClockExceeded once the wall-clock limit has passed."""
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self._wall_clock_exceeded()

    def _wall_clock_exceeded(self) -> None:
        seconds = self.limits.wall_seconds or 0.0
        self.limit_counters.wall_clock_exceeded += 1
        raise WallClockExceeded(seconds, WALL_CLOCK_EXCEEDED_STATUS)

    def _remaining(self, seconds: float | None) -> float | None:
        """How long a blocking call may wait: ``seconds`` (None: forever) cut to what is left of
        the wall-clock limit, so no sleep, poll or read outlives it."""
        if self.deadline is None:
            return seconds
        left = max(0.0, self.deadline - time.monotonic())
        return left if seconds is None else min(seconds, left)

    def syscall(self, machine: Machine[Linux]) -> None:
        """Run the syscall in a7 with a0..a5 and put the result in a0."""
        if self.deadline is not None:
            self.check_wall_clock()
        x = machine.hart.x
        number = x[17]
        self.syscall_counts[number] = self.syscall_counts.get(number, 0) + 1
        if machine.hooks.on_syscalls:
            self._hooked_syscall(machine, number)
            return
        self._dispatch(machine, number)

    def _dispatch(self, machine: Machine[Linux], number: int) -> bool:
        """Run the handler of syscall ``number`` and put its result in a0; True when it
        redirected the hart instead (a signal handler runs: a0 is the frame's)."""
        x = machine.hart.x
        handler = self._table.get(number)
        if handler is None:
            if number not in self._warned:
                self._warned.add(number)
                log.warning(
                    "unsupported_syscall", number=number, pc=hex(machine.hart.pc), result="ENOSYS"
                )
            x[10] = (-errno.ENOSYS) & M64
            return False
        self._redirected = False
        try:
            result = handler(machine, x[10], x[11], x[12], x[13], x[14], x[15])
        except GuestMemoryFault:
            result = -errno.EFAULT
        except OSError as exc:
            result = -(exc.errno or errno.EIO)
        except (OverflowError, ValueError):
            # An argument the host cannot even represent (a size or id out of range, a NUL in a
            # name): the kernel's answer is EINVAL.
            result = -errno.EINVAL
        self.threads.current.poll_deadline_ns = None  # the call is over: nothing to restart
        if self._redirected:
            self._redirected = False
            return True
        x[10] = result & M64
        return False

    def _hooked_syscall(self, machine: Machine[Linux], number: int) -> None:
        """The system call with hooks around it: before-hooks may answer it themselves,
        after-hooks see (and may change) the result."""
        x = machine.hart.x
        call = SyscallCall(
            number,
            abi.SYSCALL_NAMES.get(number, str(number)),
            (x[10], x[11], x[12], x[13], x[14], x[15]),
            machine.hart.pc,
            machine,
        )
        hooks = machine.hooks
        hooks.syscall_before(call)
        if call.result is None:
            if self._dispatch(machine, number):
                return  # a signal handler now runs: a0 is the frame's business
            value = x[10]
            call.result = value - (1 << 64) if value >> 63 else value
        x[10] = call.result & M64
        try:
            hooks.syscall_after(call)
        except GuestStopped as stop:
            stop.completed = call.result
            raise
        x[10] = call.result & M64

    # ------------------------------------------------------------------ helpers

    def _file(self, fd: int) -> OpenFile:
        f = self.fds.get(_s32(fd))
        if f is None:
            raise OSError(errno.EBADF, "bad file descriptor")
        return f

    def _host_fd(self, fd: int) -> int:
        f = self._file(fd)
        if f.host_fd is None:
            raise OSError(errno.EISDIR if f.is_dir else errno.EINVAL, "no host file")
        return f.host_fd

    def _new_fd(self, f: OpenFile, lowest: int = 0) -> int:
        """The lowest free guest fd from ``lowest`` for ``f``; EMFILE past RLIMIT_NOFILE (the
        caller still owns ``f``'s host fd then and must close it)."""
        fd = lowest
        while fd in self.fds:
            fd += 1
        if fd >= self.rlimits[_RLIMIT_NOFILE][0]:
            self.limit_counters.files_refused += 1
            raise OSError(errno.EMFILE, "too many open files")
        self.fds[fd] = f
        return fd

    def _close_fd(self, fd: int) -> None:
        f = self.fds.pop(fd)
        f.refs -= 1
        if f.refs == 0:
            closer = f.extra.get("closer")
            if callable(closer):  # an object that owns its host descriptor (epoll)
                closer()
            elif f.owned and f.host_fd is not None:
                with contextlib.suppress(OSError):
                    os.close(f.host_fd)
        if self.threads.pollers:
            self.threads.wake_pollers()  # a closed pipe end is news to a readiness wait

    def _path(self, m: Machine[Linux], addr: int) -> bytes:
        path = m.memory.read_cstring(addr, PATH_MAX + 1)
        if len(path) > PATH_MAX:
            raise OSError(errno.ENAMETOOLONG, "path too long")
        return path

    def _base(self, dirfd: int) -> bytes:
        dirfd = _s32(dirfd)
        if dirfd == abi.AT_FDCWD:
            return self.fs.cwd
        f = self._file(dirfd)
        if not f.is_dir:
            raise OSError(errno.ENOTDIR, "dirfd is not a directory")
        return f.guest_path

    def _resolve(
        self, m: Machine[Linux], dirfd: int, addr: int, *, follow: bool = True
    ) -> Resolved:
        path = self._path(m, addr)
        base = self.fs.cwd if path.startswith(b"/") else self._base(dirfd)
        return self.fs.resolve(path, base, follow=follow)

    @staticmethod
    def _real(res: Resolved) -> bytes:
        """Host path of a resolved node that must exist on the host."""
        if res.host is None:
            raise OSError(errno.ENOENT if res.virtual == "missing" else errno.EACCES, "virtual")
        return res.host

    @staticmethod
    def _mutable(res: Resolved) -> bytes:
        """Host path of a node the guest may create, remove, rename, link or modify the metadata
        of: only ordinary paths inside the guest root qualify."""
        if res.virtual is None and res.host is not None:
            return res.host
        if res.virtual == "missing":
            raise OSError(errno.ENOENT, "no such file")
        raise OSError(errno.EROFS if res.virtual == "ro" else errno.EACCES, "outside the root")

    def _mutable_fd(self, fd: int) -> int:
        f = self._file(fd)
        if not f.mutable or f.host_fd is None:
            raise OSError(errno.EACCES if f.host_fd is not None else errno.EINVAL, "immutable")
        return f.host_fd

    def _stat_resolved(self, res: Resolved, *, follow: bool) -> os.stat_result:
        if res.virtual == "devdir":
            return os.stat(self.fs.root)
        if res.virtual is not None and res.virtual.startswith("fd:"):
            f = self.fds.get(int(res.virtual[3:]))
            if f is None:
                raise OSError(errno.ENOENT, "no such descriptor")
            return self._stat_fd(int(res.virtual[3:]))
        host = self._real(res)
        return os.stat(host) if follow else os.lstat(host)

    def _stat_fd(self, fd: int) -> os.stat_result:
        f = self._file(fd)
        if f.virtual == "capture":
            return pipe_stat()
        if f.host_fd is not None:
            return os.fstat(f.host_fd)
        return os.stat(self.fs.root)

    # ------------------------------------------------------------------ process

    def sys_rseq(self, m: Machine[Linux], *_: int) -> int:
        # Restartable sequences need the kernel to rewrite guest state on preemption; glibc runs
        # without them when registration fails, as it does under qemu-user.
        return -errno.ENOSYS

    def sys_riscv_hwprobe(self, m: Machine[Linux], *_: int) -> int:
        return -errno.ENOSYS  # glibc falls back to AT_HWCAP

    def sys_riscv_flush_icache(self, m: Machine[Linux], *_: int) -> int:
        # Stores to code pages already reach the executors' caches through code watching.
        return 0

    def sys_getpid(self, m: Machine[Linux], *_: int) -> int:
        return self.pid

    def sys_getppid(self, m: Machine[Linux], *_: int) -> int:
        return os.getppid()

    def sys_getuid(self, m: Machine[Linux], *_: int) -> int:
        return os.getuid()

    def sys_geteuid(self, m: Machine[Linux], *_: int) -> int:
        return os.geteuid()

    def sys_getgid(self, m: Machine[Linux], *_: int) -> int:
        return os.getgid()

    def sys_getegid(self, m: Machine[Linux], *_: int) -> int:
        return os.getegid()

    def sys_getpgid(self, m: Machine[Linux], pid: int, *_: int) -> int:
        return self.pid if _s32(pid) in (0, self.pid) else -errno.ESRCH

    sys_getsid = sys_getpgid

    def sys_umask(self, m: Machine[Linux], mask: int, *_: int) -> int:
        old, self.umask = self.umask, mask & 0o777
        return old

    def sys_sched_getaffinity(
        self, m: Machine[Linux], pid: int, size: int, mask: int, *_: int
    ) -> int:
        # The host's CPUs, as qemu-user passes them through (glibc's get_nprocs falls back to this
        # when /sys is not visible, so the guest counts the same CPUs as under qemu-riscv64), or
        # the scheduler's vCPUs when its threads run on them (the Go runtime sizes GOMAXPROCS so).
        if self.cpus is not None:
            cpus = set(range(self.cpus))
        else:
            cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else {0}
        nbytes = max(8, ((max(cpus) // 64) + 1) * 8)
        if size < nbytes or size & 7:
            return -errno.EINVAL
        bits = sum(1 << cpu for cpu in cpus)
        m.memory.write_bytes(mask, bits.to_bytes(nbytes, "little"))
        return nbytes

    def sys_prlimit64(
        self, m: Machine[Linux], pid: int, resource: int, new: int, old: int, *_: int
    ) -> int:
        if _s32(pid) not in (0, self.pid):
            return -errno.ESRCH
        if resource >= 16:
            return -errno.EINVAL
        current = self.rlimits.get(resource, [_RLIM_INFINITY, _RLIM_INFINITY])
        wanted = struct.unpack("<QQ", m.memory.read_bytes(new, 16)) if new else None
        if wanted is not None:
            soft, hard = wanted
            if soft > hard:
                return -errno.EINVAL
            if hard > current[1]:
                return -errno.EPERM  # raising a hard limit needs a privilege the guest lacks
            if resource == _RLIMIT_NOFILE and hard > _NOFILE_CEILING:
                return -errno.EPERM
        if old:
            m.memory.write_bytes(old, struct.pack("<QQ", *current))
        if wanted is not None:
            self.rlimits[resource] = list(wanted)
        return 0

    def sys_setrlimit(self, m: Machine[Linux], resource: int, rlim: int, *_: int) -> int:
        return self.sys_prlimit64(m, 0, resource, rlim, 0)

    def sys_getrlimit(self, m: Machine[Linux], resource: int, rlim: int, *_: int) -> int:
        return self.sys_prlimit64(m, 0, resource, 0, rlim)

    def sys_getrusage(self, m: Machine[Linux], who: int, usage: int, *_: int) -> int:
        cpu = time.process_time_ns() // 1000
        m.memory.write_bytes(
            usage, struct.pack("<qq", cpu // 1_000_000, cpu % 1_000_000) + bytes(128)
        )
        return 0

    def sys_uname(self, m: Machine[Linux], buf: int, *_: int) -> int:
        host = os.uname()
        fields = [b"Linux", host.nodename.encode(), host.release.encode(), host.version.encode()]
        fields += [b"riscv64", b"(none)"]
        m.memory.write_bytes(buf, b"".join(f[:64].ljust(65, b"\0") for f in fields))
        return 0

    def sys_sysinfo(self, m: Machine[Linux], info: int, *_: int) -> int:
        # The host's figures, as qemu-user passes them through (glibc's get_phys_pages and
        # get_avphys_pages come from here), in bytes with mem_unit 1.
        page = os.sysconf("SC_PAGE_SIZE")
        total = os.sysconf("SC_PHYS_PAGES") * page
        free = os.sysconf("SC_AVPHYS_PAGES") * page
        loads = [int(v * 65536) for v in os.getloadavg()]
        uptime = int(time.clock_gettime(time.CLOCK_BOOTTIME))
        data = struct.pack(
            "<q3Q6QHHIQQI", uptime, *loads, total, free, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1
        )
        m.memory.write_bytes(info, data.ljust(112, b"\0"))
        return 0

    def sys_getrandom(self, m: Machine[Linux], buf: int, length: int, flags: int, *_: int) -> int:
        # Only as many random bytes as the buffer can take: no 32 MiB made for an EFAULT.
        room = _writable_room(m.memory, buf, min(length, 1 << 25))
        m.memory.write_bytes(buf, os.urandom(room))
        return room

    def sys_getresuid(self, m: Machine[Linux], ruid: int, euid: int, suid: int, *_: int) -> int:
        uid, e = os.getuid(), os.geteuid()
        for addr, value in ((ruid, uid), (euid, e), (suid, e)):
            m.memory.write_word(addr, 4, value)
        return 0

    def sys_getresgid(self, m: Machine[Linux], rgid: int, egid: int, sgid: int, *_: int) -> int:
        gid, e = os.getgid(), os.getegid()
        for addr, value in ((rgid, gid), (egid, e), (sgid, e)):
            m.memory.write_word(addr, 4, value)
        return 0

    def sys_getgroups(self, m: Machine[Linux], size: int, groups: int, *_: int) -> int:
        ids = os.getgroups()
        size = _s32(size)
        if size == 0:
            return len(ids)
        if size < len(ids):
            return -errno.EINVAL
        m.memory.write_bytes(groups, struct.pack(f"<{len(ids)}I", *ids))
        return len(ids)

    def sys_getpriority(self, m: Machine[Linux], which: int, who: int, *_: int) -> int:
        return 20  # the kernel's encoding of nice 0 (20 - nice)

    def sys_setpriority(self, m: Machine[Linux], *_: int) -> int:
        return 0

    def sys_sched_setaffinity(self, m: Machine[Linux], *_: int) -> int:
        return 0

    def sys_prctl(self, m: Machine[Linux], option: int, arg2: int, *_: int) -> int:
        if option == 15:  # PR_SET_NAME
            self.comm = m.memory.read_cstring(arg2, 16)[:15]
            return 0
        if option == 16:  # PR_GET_NAME
            m.memory.write_bytes(arg2, self.comm.ljust(16, b"\0"))
            return 0
        return -errno.EINVAL

    def sys_wait4(self, m: Machine[Linux], *_: int) -> int:
        return -errno.ECHILD  # no child processes can exist

    # ------------------------------------------------------------------ time

    def _clock_ns(self, clock: int) -> int | None:
        clock = _s32(clock)
        if clock in _CLOCKS_REALTIME:
            return time.time_ns()
        if clock in _CLOCKS_MONOTONIC:
            return time.monotonic_ns()
        if clock in _CLOCKS_CPU:
            return time.process_time_ns()
        return None

    def sys_clock_gettime(self, m: Machine[Linux], clock: int, tp: int, *_: int) -> int:
        ns = self._clock_ns(clock)
        if ns is None:
            return -errno.EINVAL
        m.memory.write_bytes(tp, _TIMESPEC.pack(ns // 1_000_000_000, ns % 1_000_000_000))
        return 0

    def sys_clock_getres(self, m: Machine[Linux], clock: int, tp: int, *_: int) -> int:
        if self._clock_ns(clock) is None:
            return -errno.EINVAL
        if tp:
            m.memory.write_bytes(tp, _TIMESPEC.pack(0, 4_000_000 if _s32(clock) in (5, 6) else 1))
        return 0

    def sys_gettimeofday(self, m: Machine[Linux], tv: int, tz: int, *_: int) -> int:
        ns = time.time_ns()
        if tv:
            m.memory.write_bytes(
                tv, struct.pack("<qq", ns // 1_000_000_000, ns // 1000 % 1_000_000)
            )
        if tz:
            m.memory.write_bytes(tz, bytes(8))
        return 0

    def sys_times(self, m: Machine[Linux], buf: int, *_: int) -> int:
        ticks = int(time.process_time() * 100)
        if buf:
            m.memory.write_bytes(buf, struct.pack("<qqqq", ticks, 0, 0, 0))
        return int((time.monotonic() - self._start) * 100) + 1

    def _read_timespec(self, m: Machine[Linux], addr: int) -> int | None:
        sec, nsec = _TIMESPEC.unpack(m.memory.read_bytes(addr, 16))
        if sec < 0 or not 0 <= nsec < 1_000_000_000:
            return None
        return int(sec) * 1_000_000_000 + int(nsec)

    def sys_nanosleep(self, m: Machine[Linux], req: int, rem: int, *_: int) -> int:
        ns = self._read_timespec(m, req)
        if ns is None:
            return -errno.EINVAL
        self._sleep(ns / 1e9)
        return 0

    def _sleep(self, seconds: float) -> None:
        self._sleep_thread(seconds)  # other threads run meanwhile (it raises ThreadSwitch)
        wait = self._remaining(seconds)
        assert wait is not None
        time.sleep(wait)  # real wait: the guest asked to sleep; cut short by the wall-clock limit
        if wait < seconds:
            self._wall_clock_exceeded()

    def sys_clock_nanosleep(
        self, m: Machine[Linux], clock: int, flags: int, req: int, rem: int, *_: int
    ) -> int:
        now = self._clock_ns(clock)
        if now is None:
            return -errno.EINVAL
        ns = self._read_timespec(m, req)
        if ns is None:
            return -errno.EINVAL
        if flags & 1:  # TIMER_ABSTIME
            ns = max(0, ns - now)
        self._sleep(ns / 1e9)  # real wait: the guest asked to sleep until then
        return 0

    # ------------------------------------------------------------------ memory

    def process_memory(self, memory: AddressSpace) -> ProcessMemory:
        """The program break and mmap allocator of ``memory`` (made on first use)."""
        vm = self._process_memory.get(memory)
        if vm is None:
            vm = self._process_memory[memory] = ProcessMemory(memory)
        return vm

    def sys_brk(self, m: Machine[Linux], addr: int, *_: int) -> int:
        return self.process_memory(m.memory).set_brk(addr)

    def sys_mmap(  # noqa: PLR0911 - the syscall's own arguments; one return per errno the call can give
        self, m: Machine[Linux], addr: int, length: int, prot: int, flags: int, fd: int, offset: int
    ) -> int:
        mem = m.memory
        map_fixed = flags & 0x10
        noreplace = flags & 0x100000
        anonymous = flags & 0x20
        if length == 0 or offset & PAGE_MASK or (map_fixed and addr & PAGE_MASK):
            return -errno.EINVAL
        if not flags & 3:  # neither MAP_SHARED nor MAP_PRIVATE
            return -errno.EINVAL
        length = (length + PAGE_MASK) & ~PAGE_MASK
        source: int | None = None
        if not anonymous:
            f = self._file(fd)
            if f.host_fd is None:
                return -errno.ENODEV
            if f.flags & abi.O_ACCMODE == 1:
                return -errno.EACCES
            kind = os.fstat(f.host_fd).st_mode
            if stat.S_ISREG(kind):
                source = f.host_fd
            elif not stat.S_ISCHR(kind):  # a device's mapping (/dev/zero) stays zero-filled
                return -errno.ENODEV
        if noreplace and not mem.is_range_free(addr, length):
            return -errno.EEXIST
        # Map first: the memory limit and the address space decide before a byte is read.
        vm = self.process_memory(mem)
        start = vm.mmap(addr, length, prot, fixed=bool(map_fixed or noreplace))
        if start is None:
            return -errno.ENOMEM
        if source is not None:
            try:
                self._copy_file_into(mem, source, start, length, offset)
            except OSError:
                mem.unmap(start, length)
                raise
        return start

    @staticmethod
    def _copy_file_into(
        mem: AddressSpace, host_fd: int, start: int, length: int, offset: int
    ) -> None:
        """Copy what the file holds of ``[offset, offset + length)`` to ``start``, a chunk at a
        time (host memory per step stays bounded); pages past the file's end stay zero."""
        done = 0
        while done < length:
            chunk = os.pread(host_fd, min(length - done, _MMAP_CHUNK), offset + done)
            if not chunk:
                break
            mem.poke(start + done, chunk)
            done += len(chunk)

    def sys_munmap(self, m: Machine[Linux], addr: int, length: int, *_: int) -> int:
        if addr & PAGE_MASK or length == 0:
            return -errno.EINVAL
        m.memory.unmap(addr, length)
        return 0

    def sys_mprotect(self, m: Machine[Linux], addr: int, length: int, prot: int, *_: int) -> int:
        if addr & PAGE_MASK:
            return -errno.EINVAL
        try:
            m.memory.protect(addr, length, prot)
        except GuestMemoryFault:
            return -errno.ENOMEM
        return 0

    def sys_mremap(
        self, m: Machine[Linux], old: int, old_len: int, new_len: int, flags: int, new: int, *_: int
    ) -> int:
        if old & PAGE_MASK or new_len == 0 or flags & ~3 or flags & 2:
            # MREMAP_FIXED (2) is not supported; nothing single-threaded glibc does needs it.
            return -errno.EINVAL
        try:
            vm = self.process_memory(m.memory)
            result = vm.remap(old, old_len, new_len, may_move=bool(flags & 1))
        except GuestMemoryFault:
            return -errno.EFAULT
        return -errno.ENOMEM if result is None else result

    def sys_msync(self, m: Machine[Linux], addr: int, *_: int) -> int:
        return -errno.EINVAL if addr & PAGE_MASK else 0

    def sys_mlock(self, m: Machine[Linux], *_: int) -> int:
        return 0

    sys_munlock = sys_mlock

    def sys_fadvise64(self, m: Machine[Linux], fd: int, *_: int) -> int:
        f = self._file(fd)
        return -errno.ESPIPE if f.guest_path == b"pipe:" else 0

    def sys_madvise(self, m: Machine[Linux], addr: int, length: int, advice: int, *_: int) -> int:
        return -errno.EINVAL if addr & PAGE_MASK else 0

    # ------------------------------------------------------------------ futex and signals

    def sys_rt_sigaction(
        self, m: Machine[Linux], sig: int, act: int, oact: int, size: int, *_: int
    ) -> int:
        sig = _s32(sig)
        if size != 8 or not 1 <= sig <= _NSIG:
            return -errno.EINVAL
        if act and sig in (signal.SIGKILL, signal.SIGSTOP):
            return -errno.EINVAL
        old = self.sigactions.get(sig, bytes(24))
        if act:
            new = m.memory.read_bytes(act, 24)
        if oact:
            m.memory.write_bytes(oact, old)
        if act:
            self.sigactions[sig] = new
        return 0

    def sys_rt_sigprocmask(
        self, m: Machine[Linux], how: int, nset: int, oset: int, size: int, *_: int
    ) -> int:
        if size != 8:
            return -errno.EINVAL
        old = self.sigmask
        if nset:
            value = m.memory.read_word(nset, 8)
            if how == 0:
                self.sigmask |= value
            elif how == 1:
                self.sigmask &= ~value
            elif how == 2:
                self.sigmask = value
            else:
                return -errno.EINVAL
            self.sigmask &= _UNBLOCKABLE_MASK
        if oset:
            m.memory.write_word(oset, 8, old)
        self._deliver_pending(m, resume_pc=m.hart.pc + 4, a0=0)
        return 0

    def sys_rt_sigpending(self, m: Machine[Linux], uset: int, size: int, *_: int) -> int:
        if size != 8:
            return -errno.EINVAL
        m.memory.write_word(uset, 8, self.pending)
        return 0

    def sys_sigaltstack(self, m: Machine[Linux], ss: int, old: int, *_: int) -> int:
        previous = self.sigaltstack
        if ss:
            self.sigaltstack = m.memory.read_bytes(ss, 24)
        if old:
            m.memory.write_bytes(old, previous)
        return 0

    def _send_self(self, m: Machine[Linux], sig: int) -> int:
        if sig == 0:
            return 0
        if not 1 <= sig <= _NSIG:
            return -errno.EINVAL
        if sig in (signal.SIGKILL, signal.SIGSTOP):
            raise GuestSignal(sig, pc=m.hart.pc)
        bit = 1 << (sig - 1)
        if self.sigmask & bit:
            self.pending |= bit
            return 0
        self._act(m, sig, resume_pc=m.hart.pc + 4, a0=0)
        return 0

    def deliver_fault(self, m: Machine[Linux], fault: GuestFault) -> bool:
        """Run the guest's handler for a fault an executor detected (SIGSEGV, SIGILL ...).

        Returns True when a handler frame was pushed: the executor then continues at
        ``hart.pc`` (the handler), and returning from the handler re-executes the faulting
        instruction, as on Linux. Returns False when the signal is blocked or has no handler,
        and the fault should end the guest. ``fault.pc`` must be the faulting instruction.
        """
        sig = fault.signal
        if not 1 <= sig <= _NSIG or fault.pc is None or self.sigmask & (1 << (sig - 1)):
            return False
        handler = _U64.unpack_from(self.sigactions.get(sig, bytes(24)))[0]
        if handler in (_SIG_DFL, _SIG_IGN):
            return False
        addr = getattr(fault, "addr", fault.pc)
        code = 1  # SEGV_MAPERR / ILL_ILLOPC
        if getattr(fault, "reason", "") == "permission denied":
            code = 2  # SEGV_ACCERR
        m.hart.pc = fault.pc
        try:
            self._act(m, sig, resume_pc=fault.pc, a0=m.hart.x[10], code=code, fault_addr=addr)
        except GuestSignal:
            return False
        self._redirected = False
        return True

    def _act(
        self,
        m: Machine[Linux],
        sig: int,
        *,
        resume_pc: int,
        a0: int,
        code: int = -6,
        fault_addr: int | None = None,
    ) -> None:
        """Take the action for ``sig``: ignore it, die of it, or enter the guest's handler."""
        handler, flags, mask = struct.unpack("<QQQ", self.sigactions.get(sig, bytes(24)))
        if handler == _SIG_IGN or (handler == _SIG_DFL and sig in _IGNORED_BY_DEFAULT):
            return
        if handler == _SIG_DFL:
            raise GuestSignal(sig, pc=m.hart.pc)
        ss_sp, ss_flags, ss_size = struct.unpack("<QixxxxQ", self.sigaltstack)
        try:
            push_frame(
                m,
                sig,
                handler,
                resume_pc=resume_pc,
                a0=a0,
                sigmask=self.sigmask,
                altstack=(ss_sp, ss_flags, ss_size),
                on_altstack=bool(flags & SA_ONSTACK) and not ss_flags & 2 and ss_size > 0,
                pid=self.pid,
                uid=os.getuid(),
                code=code,
                fault_addr=fault_addr,
            )
        except GuestMemoryFault:
            # No room for the frame: Linux kills the process with SIGSEGV.
            raise GuestSignal(int(signal.SIGSEGV), pc=m.hart.pc) from None
        self.sigmask |= mask | (0 if flags & SA_NODEFER else 1 << (sig - 1))
        self.sigmask &= _UNBLOCKABLE_MASK
        if flags & SA_RESETHAND:
            self.sigactions[sig] = bytes(24)
        self._redirected = True

    def _deliver_pending(self, m: Machine[Linux], *, resume_pc: int, a0: int) -> None:
        ready = self.pending & ~self.sigmask
        if ready:
            sig = (ready & -ready).bit_length()
            self.pending &= ~(1 << (sig - 1))
            self._act(m, sig, resume_pc=resume_pc, a0=a0)

    def sys_rt_sigreturn(self, m: Machine[Linux], *_: int) -> int:
        try:
            mask = restore_frame(m)
        except GuestMemoryFault:
            raise GuestSignal(int(signal.SIGSEGV), pc=m.hart.pc) from None
        self.sigmask = mask & _UNBLOCKABLE_MASK
        self._redirected = True
        self._deliver_pending(m, resume_pc=m.hart.pc, a0=m.hart.x[10])
        self._redirected = True
        return 0

    def sys_kill(self, m: Machine[Linux], pid: int, sig: int, *_: int) -> int:
        if _s32(pid) not in (0, -1, self.pid):
            return -errno.ESRCH
        return self._send_self(m, _s32(sig))

    # ------------------------------------------------------------------ file descriptors

    def sys_read(self, m: Machine[Linux], fd: int, buf: int, count: int, *_: int) -> int:
        f = self._file(fd)
        if f.is_dir:
            return -errno.EISDIR
        if f.flags & abi.O_ACCMODE == 1:
            return -errno.EBADF
        host = self._host_fd(fd)
        room = _writable_room(m.memory, buf, min(count, _IO_CAP))  # before consuming anything
        if (
            self.threads.multiple
            and not f.flags & abi.O_NONBLOCK
            and not stat.S_ISREG(os.fstat(host).st_mode)
            and not self._readable_now(host)
            and not self._wait_ready(None, f"read on fd {_s32(fd)}")
        ):
            return -errno.EAGAIN  # pragma: no cover - an untimed wait never times out
        self._wait_readable(host)
        data = os.read(host, room)
        m.memory.write_bytes(buf, data)
        return len(data)

    def _wait_readable(self, host: int) -> None:
        """Under a wall-clock limit, wait for a pipe, terminal or socket to have data only as
        long as the limit allows (a read of an empty pipe would otherwise block for ever)."""
        if self.deadline is None or stat.S_ISREG(os.fstat(host).st_mode):
            return
        ready, _, _ = select.select([host], [], [], self._remaining(None))
        if not ready:
            self.check_wall_clock()

    def sys_write(self, m: Machine[Linux], fd: int, buf: int, count: int, *_: int) -> int:
        f = self._file(fd)
        if f.flags & abi.O_ACCMODE == 0 and f.owned:
            return -errno.EBADF
        data = m.memory.read_bytes(buf, min(count, _IO_CAP))
        if f.virtual == "capture":
            return self._captured(f, data)
        host = self._host_fd(fd)
        with self._disk_quota(f, host, None, len(data)):
            return self._host_write(m, host, data)

    # ------------------------------------------------------------------ disk quota

    def _in_private_tmp(self, host_path: bytes | None) -> bool:
        tmp = self.fs.private_tmp
        return tmp is not None and host_path is not None and host_path.startswith(tmp + b"/")

    @contextlib.contextmanager
    def _disk_quota(
        self, f: OpenFile, host: int, offset: int | None, length: int
    ) -> Iterator[None]:
        """Keep the guest's private /tmp within ``GuestLimits.disk_bytes``: a write or truncate
        that would grow a file there past the quota is EDQUOT (counted); what it did grow is
        added to the usage afterwards. ``offset`` None means the current position (or the end
        with O_APPEND)."""
        quota = self.limits.disk_bytes
        if quota is None or not self._in_private_tmp(f.host_path):
            yield
            return
        before = os.fstat(host).st_size
        if offset is None:
            offset = before if f.flags & abi.O_APPEND else os.lseek(host, 0, os.SEEK_CUR)
        growth = max(0, offset + length - before)
        if growth and self.disk_used + growth > quota:
            self.limit_counters.disk_refused += 1
            raise OSError(errno.EDQUOT, "disk quota exceeded")
        try:
            yield
        finally:
            self.disk_used = max(0, self.disk_used + os.fstat(host).st_size - before)
            counters = self.limit_counters
            counters.peak_disk_bytes = max(counters.peak_disk_bytes, self.disk_used)

    def _host_write(self, m: Machine[Linux], host_fd: int, data: bytes) -> int:
        """Write to the host; a closed pipe raises SIGPIPE in the guest, as the kernel does."""
        try:
            written = os.write(host_fd, data)
        except BrokenPipeError:
            self._send_self(m, int(signal.SIGPIPE))
            return -errno.EPIPE
        if self.threads.pollers:
            self.threads.wake_pollers()  # another thread may wait for these bytes
        return written

    def sys_pread64(
        self, m: Machine[Linux], fd: int, buf: int, count: int, offset: int, *_: int
    ) -> int:
        if _s64(offset) < 0:
            return -errno.EINVAL
        room = _writable_room(m.memory, buf, min(count, _IO_CAP))
        data = os.pread(self._host_fd(fd), room, offset)
        m.memory.write_bytes(buf, data)
        return len(data)

    def sys_pwrite64(
        self, m: Machine[Linux], fd: int, buf: int, count: int, offset: int, *_: int
    ) -> int:
        if _s64(offset) < 0:
            return -errno.EINVAL
        if self._file(fd).virtual == "capture":
            return -errno.ESPIPE
        data = m.memory.read_bytes(buf, min(count, _IO_CAP))
        host = self._host_fd(fd)
        with self._disk_quota(self._file(fd), host, offset, len(data)):
            return os.pwrite(host, data, offset)

    def _iovecs(self, m: Machine[Linux], iov: int, count: int) -> list[tuple[int, int]]:
        """The guest's iovec array, cut to ``_IO_CAP`` bytes in all (a short transfer, as
        Linux makes past MAX_RW_COUNT), so no call copies more than that through the host."""
        if count > 1024:
            raise OSError(errno.EINVAL, "too many iovecs")
        raw = m.memory.read_bytes(iov, 16 * count)
        vecs = [_IOVEC.unpack_from(raw, 16 * i) for i in range(count)]
        lengths = [length for _, length in vecs]
        if max(lengths, default=0) >= 1 << 63 or sum(lengths) >= 1 << 63:
            raise OSError(errno.EINVAL, "iovec lengths overflow")
        room = _IO_CAP
        kept: list[tuple[int, int]] = []
        for base, length in vecs:
            if room == 0:
                break
            kept.append((base, min(length, room)))
            room -= kept[-1][1]
        return kept

    def sys_readv(self, m: Machine[Linux], fd: int, iov: int, count: int, *_: int) -> int:
        vecs = self._iovecs(m, iov, count)
        host = self._host_fd(fd)
        self._wait_readable(host)
        total = 0
        for base, length in vecs:
            if not length:
                continue
            data = os.read(host, length)
            m.memory.write_bytes(base, data)
            total += len(data)
            if len(data) < length:
                break
        return total

    def sys_writev(self, m: Machine[Linux], fd: int, iov: int, count: int, *_: int) -> int:
        vecs = self._iovecs(m, iov, count)
        f = self._file(fd)
        # One host write keeps the pieces together, as the kernel's writev does.
        data = b"".join(m.memory.read_bytes(base, length) for base, length in vecs)
        if f.virtual == "capture":
            return self._captured(f, data) if data else 0
        host = self._host_fd(fd)
        if not data:
            return 0
        with self._disk_quota(self._file(fd), host, None, len(data)):
            return self._host_write(m, host, data)

    def sys_lseek(self, m: Machine[Linux], fd: int, offset: int, whence: int, *_: int) -> int:
        f = self._file(fd)
        if f.virtual == "capture":
            return -errno.ESPIPE
        if f.is_dir and f.host_fd is not None:
            f.dir_entries = None
            f.dir_pos = 0
            return os.lseek(f.host_fd, _s64(offset), whence)
        if f.is_dir:
            if whence == 0 and offset == 0:
                f.dir_pos = 0
                f.dir_entries = None
                return 0
            return -errno.EINVAL
        if whence > 2:
            return -errno.EINVAL
        return os.lseek(self._host_fd(fd), _s64(offset), whence)

    def sys_close(self, m: Machine[Linux], fd: int, *_: int) -> int:
        self._file(fd)
        self._close_fd(_s32(fd))
        return 0

    def sys_dup(self, m: Machine[Linux], fd: int, *_: int) -> int:
        f = self._file(fd)
        new = self._new_fd(f)
        f.refs += 1
        return new

    def sys_dup3(self, m: Machine[Linux], old: int, new: int, flags: int, *_: int) -> int:
        f = self._file(old)
        new = _s32(new)
        if _s32(old) == new or flags & ~abi.O_CLOEXEC:
            return -errno.EINVAL
        if not 0 <= new < self.rlimits[_RLIMIT_NOFILE][0]:
            return -errno.EBADF
        if new in self.fds:
            self._close_fd(new)
        self.fds[new] = f
        f.refs += 1
        return new

    def sys_fcntl(self, m: Machine[Linux], fd: int, cmd: int, arg: int, *_: int) -> int:  # noqa: PLR0911 - one return per fcntl command
        f = self._file(fd)
        if cmd in (0, 1030):  # F_DUPFD, F_DUPFD_CLOEXEC
            if not 0 <= _s32(arg) < self.rlimits[_RLIMIT_NOFILE][0]:
                return -errno.EINVAL
            new = self._new_fd(f, _s32(arg))
            f.refs += 1
            return new
        if cmd == 1:  # F_GETFD
            return int(bool(f.extra.get("cloexec", False)))
        if cmd == 2:  # F_SETFD
            f.extra["cloexec"] = bool(arg & 1)
            return 0
        if cmd == 3:  # F_GETFL
            return f.flags
        if cmd == 4:  # F_SETFL
            f.flags = (f.flags & ~(abi.O_APPEND | abi.O_NONBLOCK)) | (
                arg & (abi.O_APPEND | abi.O_NONBLOCK)
            )
            if f.host_fd is not None and f.owned:
                host = host_fcntl.fcntl(f.host_fd, host_fcntl.F_GETFL)
                host &= ~(os.O_APPEND | os.O_NONBLOCK)
                host |= (os.O_APPEND if arg & abi.O_APPEND else 0) | (
                    os.O_NONBLOCK if arg & abi.O_NONBLOCK else 0
                )
                host_fcntl.fcntl(f.host_fd, host_fcntl.F_SETFL, host)
            return 0
        if cmd in (5, 6, 7, 36, 37, 38):  # record locks: one process holds them all
            return 0
        return -errno.EINVAL

    def sys_ioctl(self, m: Machine[Linux], fd: int, request: int, arg: int, *_: int) -> int:
        f = self._file(fd)
        request &= 0xFFFFFFFF
        if f.host_fd is None or not os.isatty(f.host_fd):
            return -errno.ENOTTY
        size = _TTY_IOCTLS.get(request)
        if size is None:
            return -errno.EINVAL if request in (termios.TCSETS, termios.TCSETSW) else -errno.ENOTTY
        out = host_fcntl.ioctl(f.host_fd, request, bytes(size))
        m.memory.write_bytes(arg, bytes(out)[:size])
        return 0

    def sys_pipe2(self, m: Machine[Linux], fds: int, flags: int, *_: int) -> int:
        if flags & ~(abi.O_CLOEXEC | abi.O_NONBLOCK):
            return -errno.EINVAL
        r, w = os.pipe2(os.O_CLOEXEC | (os.O_NONBLOCK if flags & abi.O_NONBLOCK else 0))
        # Every failure below releases both host fds: a guest with a full fd table (or a bad
        # pointer) must not be able to leak the host's descriptors.
        try:
            rfd = self._new_fd(OpenFile(r, b"pipe:", flags=0))
        except OSError:
            os.close(r)
            os.close(w)
            raise
        try:
            wfd = self._new_fd(OpenFile(w, b"pipe:", flags=1))
        except OSError:
            self._close_fd(rfd)
            os.close(w)
            raise
        try:
            m.memory.write_bytes(fds, struct.pack("<ii", rfd, wfd))
        except GuestMemoryFault:
            self._close_fd(rfd)
            self._close_fd(wfd)
            raise
        return 0

    def sys_fstat(self, m: Machine[Linux], fd: int, buf: int, *_: int) -> int:
        m.memory.write_bytes(buf, abi.pack_stat(self._stat_fd(fd)))
        return 0

    def sys_ftruncate(self, m: Machine[Linux], fd: int, length: int, *_: int) -> int:
        host = self._mutable_fd(fd)
        with self._disk_quota(self._file(fd), host, 0, max(0, _s64(length))):
            os.ftruncate(host, _s64(length))
        return 0

    def sys_fsync(self, m: Machine[Linux], fd: int, *_: int) -> int:
        self._file(fd)
        return 0

    sys_fdatasync = sys_fsync

    def sys_sync(self, m: Machine[Linux], *_: int) -> int:
        return 0

    def sys_ppoll(self, m: Machine[Linux], fds: int, nfds: int, tmo: int, *_: int) -> int:
        if nfds > 1024:
            return -errno.EINVAL
        raw = m.memory.read_bytes(fds, 8 * nfds)
        entries = [struct.unpack_from("<ihh", raw, 8 * i) for i in range(nfds)]
        timeout_ms: float | None = None
        if tmo:
            ns = self._read_timespec(m, tmo)
            if ns is None:
                return -errno.EINVAL
            timeout_ms = ns / 1e6
        wait = self._remaining(None if timeout_ms is None else timeout_ms / 1e3)
        bounded = wait is not None and (timeout_ms is None or wait * 1e3 < timeout_ms)
        timeout_ms = None if wait is None else wait * 1e3
        poller = select.poll()
        hosts: dict[int, int] = {}
        for fd, events, _ in entries:
            f = self.fds.get(fd)
            if fd >= 0 and f is not None and f.host_fd is not None:
                hosts[f.host_fd] = hosts.get(f.host_fd, 0) | (events & 0xFFFF)
        for host, events in hosts.items():
            poller.register(host, events)
        ready = dict(poller.poll(timeout_ms)) if hosts or timeout_ms else {}
        if not ready and bounded:
            self.check_wall_clock()  # the wait was cut short by the wall-clock limit
        out = bytearray()
        count = 0
        for fd, events, _ in entries:
            f = self.fds.get(fd)
            if fd < 0:
                revents = 0
            elif f is None:
                revents = select.POLLNVAL
            elif f.host_fd is None:
                revents = events & (select.POLLIN | select.POLLOUT)
            else:
                revents = ready.get(f.host_fd, 0) & (events | 0x38)  # ERR, HUP, NVAL always
            count += revents != 0
            out += struct.pack("<ihh", fd, events, revents)
        m.memory.write_bytes(fds, bytes(out))
        return count

    def sys_fchmod(self, m: Machine[Linux], fd: int, mode: int, *_: int) -> int:
        os.fchmod(self._mutable_fd(fd), mode & 0o7777)
        return 0

    def sys_getdents64(self, m: Machine[Linux], fd: int, dirp: int, count: int, *_: int) -> int:
        f = self._file(fd)
        if not f.is_dir:
            return -errno.ENOTDIR
        if f.host_fd is not None and f.virtual is None:
            raw = host_getdents64(f.host_fd, min(count, 1 << 20))
            if raw is not None:
                m.memory.write_bytes(dirp, raw)
                return len(raw)
        if f.dir_entries is None:
            f.dir_entries = self.fs.listing(Resolved(f.guest_path, f.host_path, f.virtual))
        out = bytearray()
        while f.dir_pos < len(f.dir_entries):
            name, ino, dtype = f.dir_entries[f.dir_pos]
            reclen = (_DIRENT_HEAD.size + len(name) + 1 + 7) & ~7
            if len(out) + reclen > count:
                if not out:
                    return -errno.EINVAL
                break
            record = _DIRENT_HEAD.pack(ino, f.dir_pos + 1, reclen, dtype) + name
            out += record.ljust(reclen, b"\0")
            f.dir_pos += 1
        m.memory.write_bytes(dirp, bytes(out))
        return len(out)

    # ------------------------------------------------------------------ paths

    def sys_openat(  # noqa: PLR0911 - one return per errno the call can give
        self, m: Machine[Linux], dirfd: int, path: int, flags: int, mode: int, *_: int
    ) -> int:
        res = self._resolve(m, dirfd, path, follow=not flags & abi.O_NOFOLLOW)
        access = flags & abi.O_ACCMODE
        if res.virtual is not None and res.virtual.startswith("fd:"):
            return self._reopen(int(res.virtual[3:]), res.guest, flags)
        if res.virtual == "missing" or (res.host is None and res.virtual != "devdir"):
            return -errno.ENOENT
        if res.virtual == "devdir":
            if access != 0:
                return -errno.EISDIR
            return self._new_fd(
                OpenFile(None, res.guest, flags=flags, is_dir=True, virtual="devdir")
            )
        if res.virtual == "exe" and (access != 0 or flags & abi.O_TRUNC):
            return -errno.ETXTBSY
        if res.virtual == "ro" and (access != 0 or flags & (abi.O_CREAT | abi.O_TRUNC)):
            return -errno.EROFS
        assert res.host is not None
        host_fd = os.open(
            res.host,
            self._host_flags(flags, may_truncate=res.virtual is None),
            mode & ~self.umask & 0o7777,
        )
        is_dir = stat.S_ISDIR(os.fstat(host_fd).st_mode)
        if is_dir and access != 0:
            os.close(host_fd)
            return -errno.EISDIR
        f = OpenFile(
            host_fd,
            res.guest,
            flags=flags & (abi.O_ACCMODE | abi.O_APPEND | abi.O_NONBLOCK),
            is_dir=is_dir,
            host_path=res.host,
            mutable=res.virtual is None,
            origin=res.virtual,
        )
        try:
            return self._new_fd(f)
        except OSError:
            os.close(host_fd)
            raise

    def _reopen(self, fd: int, guest: bytes, flags: int) -> int:
        """open("/dev/stdout") and friends: a new open file description of guest fd ``fd``'s file.

        As on Linux, the file is opened again (its own offset; O_TRUNC truncates a regular file)
        through the host's ``/proc/self/fd``; without procfs the host fd is duplicated.
        """
        f = self.fds.get(fd)
        if f is None:
            return -errno.ENOENT
        if f.host_fd is None:
            return -errno.ENXIO
        # A new description never grants more than the original allows: a file outside the
        # root (the program, a read-only mount, a device, the inherited stdio) is reopened for
        # writing only if its description was writable, never truncated, and stays immutable
        # (no fchmod, fchown, ftruncate): otherwise /proc/self/fd/N would write host files.
        wants_write = flags & abi.O_ACCMODE != 0
        if not f.mutable:
            was_writable = f.flags & abi.O_ACCMODE != 0
            if wants_write and not was_writable:
                return -_READ_ONLY_ERRNO.get(f.origin or "", errno.EACCES)
        try:
            host = os.open(
                f"/proc/self/fd/{f.host_fd}", self._host_flags(flags, may_truncate=f.mutable)
            )
        except FileNotFoundError:
            host = os.dup(f.host_fd)
        new = OpenFile(
            host,
            f.guest_path or guest,
            flags=flags & (abi.O_ACCMODE | abi.O_APPEND),
            mutable=f.mutable,
            origin=f.origin,
        )
        try:
            return self._new_fd(new)
        except OSError:
            os.close(host)
            raise

    @staticmethod
    def _host_flags(flags: int, *, may_truncate: bool) -> int:
        """Host open flags for guest open flags (always close-on-exec, never a controlling tty).

        A file outside the root (a device stand-in, the program, a read-only mount, the
        inherited stdio) is never truncated: ``may_truncate`` is False for those, and O_TRUNC is
        dropped, as Linux ignores it on a character device.
        """
        return (
            (flags & abi.O_ACCMODE)
            | (os.O_CREAT if flags & abi.O_CREAT else 0)
            | (os.O_EXCL if flags & abi.O_EXCL else 0)
            | (os.O_TRUNC if flags & abi.O_TRUNC and may_truncate else 0)
            | (os.O_APPEND if flags & abi.O_APPEND else 0)
            | (os.O_NONBLOCK if flags & abi.O_NONBLOCK else 0)
            | (os.O_DIRECTORY if flags & abi.O_DIRECTORY else 0)
            | (os.O_NOFOLLOW if flags & abi.O_NOFOLLOW else 0)
            | os.O_CLOEXEC
            | os.O_NOCTTY
        )

    def sys_newfstatat(
        self, m: Machine[Linux], dirfd: int, path: int, buf: int, flags: int, *_: int
    ) -> int:
        st = self._stat_at(m, dirfd, path, flags)
        m.memory.write_bytes(buf, abi.pack_stat(st))
        return 0

    def _stat_at(self, m: Machine[Linux], dirfd: int, path: int, flags: int) -> os.stat_result:
        if flags & abi.AT_EMPTY_PATH and m.memory.read_word(path, 1) == 0:
            if _s32(dirfd) == abi.AT_FDCWD:
                return os.stat(self._real(self.fs.resolve(self.fs.cwd)))
            return self._stat_fd(dirfd)
        res = self._resolve(m, dirfd, path, follow=not flags & abi.AT_SYMLINK_NOFOLLOW)
        return self._stat_resolved(res, follow=not flags & abi.AT_SYMLINK_NOFOLLOW)

    def sys_statx(
        self, m: Machine[Linux], dirfd: int, path: int, flags: int, mask: int, buf: int, *_: int
    ) -> int:
        st = self._stat_at(m, dirfd, path, flags)
        m.memory.write_bytes(buf, abi.pack_statx(st))
        return 0

    def sys_readlinkat(
        self, m: Machine[Linux], dirfd: int, path: int, buf: int, size: int, *_: int
    ) -> int:
        if _s32(size) <= 0:
            return -errno.EINVAL
        res = self._resolve(m, dirfd, path, follow=False)
        if res.virtual == "exe":
            target = self.fs.exe_guest
        else:
            target = os.readlink(self._real(res))
        data = target[:size]
        m.memory.write_bytes(buf, data)
        return len(data)

    def sys_getcwd(self, m: Machine[Linux], buf: int, size: int, *_: int) -> int:
        cwd = self.fs.cwd + b"\0"
        if size < len(cwd):
            return -errno.ERANGE
        m.memory.write_bytes(buf, cwd)
        return len(cwd)

    def sys_chdir(self, m: Machine[Linux], path: int, *_: int) -> int:
        self.fs.chdir(self._path(m, path))
        return 0

    def sys_fchdir(self, m: Machine[Linux], fd: int, *_: int) -> int:
        f = self._file(fd)
        if not f.is_dir:
            return -errno.ENOTDIR
        self.fs.cwd = f.guest_path
        return 0

    def sys_mkdirat(self, m: Machine[Linux], dirfd: int, path: int, mode: int, *_: int) -> int:
        res = self._resolve(m, dirfd, path, follow=False)
        if res.virtual == "missing":
            return -errno.ENOENT
        if res.virtual is not None:
            return -errno.EEXIST  # every other mount point names something that exists
        os.mkdir(self._mutable(res), mode & ~self.umask & 0o7777)
        return 0

    def sys_unlinkat(self, m: Machine[Linux], dirfd: int, path: int, flags: int, *_: int) -> int:
        res = self._resolve(m, dirfd, path, follow=False)
        host = self._mutable(res)
        if self._is_mount_point(res):
            return -errno.EBUSY
        if flags & abi.AT_REMOVEDIR:
            os.rmdir(host)
        else:
            st = os.lstat(host)
            if stat.S_ISDIR(st.st_mode):
                return -errno.EISDIR
            os.unlink(host)
            if self._in_private_tmp(host) and stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
                self.disk_used = max(0, self.disk_used - st.st_size)  # its blocks are free again
        return 0

    def _is_mount_point(self, res: Resolved) -> bool:
        """The guest root and a private /tmp cannot be removed or renamed (EBUSY)."""
        return res.guest == b"/" or (res.guest == b"/tmp" and self.fs.private_tmp is not None)

    def sys_renameat2(
        self, m: Machine[Linux], olddir: int, old: int, newdir: int, new: int, flags: int, *_: int
    ) -> int:
        if flags:
            return -errno.EINVAL
        src = self._resolve(m, olddir, old, follow=False)
        dst = self._resolve(m, newdir, new, follow=False)
        if src.virtual == "missing":
            return -errno.ENOENT
        if src.virtual is not None or dst.virtual is not None:
            return -errno.EXDEV  # across mounts, as Linux says
        if self._is_mount_point(src) or self._is_mount_point(dst):
            return -errno.EBUSY
        os.rename(self._mutable(src), self._mutable(dst))
        return 0

    def sys_renameat(
        self, m: Machine[Linux], olddir: int, old: int, newdir: int, new: int, *_: int
    ) -> int:
        return self.sys_renameat2(m, olddir, old, newdir, new, 0)

    def sys_faccessat2(
        self, m: Machine[Linux], dirfd: int, path: int, mode: int, flags: int, *_: int
    ) -> int:
        res = self._resolve(m, dirfd, path, follow=not flags & abi.AT_SYMLINK_NOFOLLOW)
        if res.virtual == "devdir":
            return 0 if not mode & 2 else -errno.EACCES
        if res.virtual is not None and res.virtual.startswith("fd:"):
            return 0 if int(res.virtual[3:]) in self.fds else -errno.ENOENT
        host = self._real(res)
        if not os.path.lexists(host):
            return -errno.ENOENT
        # With AT_SYMLINK_NOFOLLOW the last component may be a guest symlink whose text names
        # a host path: the host must check the link itself, never follow it out of the root.
        follow = not flags & abi.AT_SYMLINK_NOFOLLOW
        return 0 if os.access(host, mode & 7, follow_symlinks=follow) else -errno.EACCES

    def sys_faccessat(self, m: Machine[Linux], dirfd: int, path: int, mode: int, *_: int) -> int:
        return self.sys_faccessat2(m, dirfd, path, mode, 0)

    def sys_fchmodat(self, m: Machine[Linux], dirfd: int, path: int, mode: int, *_: int) -> int:
        os.chmod(self._mutable(self._resolve(m, dirfd, path)), mode & 0o7777)
        return 0

    def sys_fchownat(
        self, m: Machine[Linux], dirfd: int, path: int, uid: int, gid: int, flags: int, *_: int
    ) -> int:
        res = self._resolve(m, dirfd, path, follow=not flags & abi.AT_SYMLINK_NOFOLLOW)
        os.chown(self._mutable(res), _id(uid), _id(gid), follow_symlinks=False)
        return 0

    def sys_fchown(self, m: Machine[Linux], fd: int, uid: int, gid: int, *_: int) -> int:
        os.fchown(self._mutable_fd(fd), _id(uid), _id(gid))
        return 0

    def sys_truncate(self, m: Machine[Linux], path: int, length: int, *_: int) -> int:
        host_path = self._mutable(self._resolve(m, abi.AT_FDCWD, path))
        fd = os.open(host_path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            f = OpenFile(fd, b"", host_path=host_path)
            with self._disk_quota(f, fd, 0, max(0, _s64(length))):
                os.ftruncate(fd, _s64(length))
        finally:
            os.close(fd)
        return 0

    def sys_utimensat(
        self, m: Machine[Linux], dirfd: int, path: int, times: int, flags: int, *_: int
    ) -> int:
        follow = not flags & abi.AT_SYMLINK_NOFOLLOW
        if path:
            target: int | bytes = self._mutable(self._resolve(m, dirfd, path, follow=follow))
        else:
            target = self._mutable_fd(dirfd)
        now = time.time_ns()
        stamps = [now, now]
        if times:
            raw = m.memory.read_bytes(times, 32)
            for i in range(2):
                sec, nsec = _TIMESPEC.unpack_from(raw, 16 * i)
                if nsec == (1 << 30) - 2:  # UTIME_OMIT
                    st = os.stat(target) if isinstance(target, int) else os.lstat(target)
                    stamps[i] = st.st_atime_ns if i == 0 else st.st_mtime_ns
                elif nsec != (1 << 30) - 1:  # UTIME_NOW keeps now
                    stamps[i] = sec * 1_000_000_000 + nsec
        if isinstance(target, int):
            os.utime(target, ns=(stamps[0], stamps[1]))
        else:
            os.utime(target, ns=(stamps[0], stamps[1]), follow_symlinks=follow)
        return 0

    def sys_symlinkat(
        self, m: Machine[Linux], target: int, newdir: int, linkpath: int, *_: int
    ) -> int:
        text = self._path(m, target)
        res = self._resolve(m, newdir, linkpath, follow=False)
        # The target is stored as the guest wrote it and resolved in guest space when followed.
        os.symlink(text, self._mutable(res))
        return 0

    def sys_linkat(
        self, m: Machine[Linux], olddir: int, old: int, newdir: int, new: int, flags: int, *_: int
    ) -> int:
        src = self._resolve(m, olddir, old, follow=bool(flags & 0x400))
        dst = self._resolve(m, newdir, new, follow=False)
        os.link(self._mutable(src), self._mutable(dst), follow_symlinks=False)
        return 0
