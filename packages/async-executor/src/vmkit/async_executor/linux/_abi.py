"""Numbers and structure layouts of the riscv64 Linux user ABI (the asm-generic syscall table).

Only data lives here: syscall numbers, flag values that differ from nothing on the host but are
spelled out so the code never depends on the host's ``os`` constants, and ``struct`` formats for
the structures syscalls fill in (``struct stat``, ``struct statx``, ``struct timespec`` ...).
"""

from __future__ import annotations

import os
import struct

__all__ = [
    "AT_EMPTY_PATH",
    "AT_FDCWD",
    "AT_REMOVEDIR",
    "AT_SYMLINK_NOFOLLOW",
    "O_ACCMODE",
    "O_APPEND",
    "O_CLOEXEC",
    "O_CREAT",
    "O_DIRECTORY",
    "O_EXCL",
    "O_NOFOLLOW",
    "O_NONBLOCK",
    "O_TRUNC",
    "SYSCALL_NAMES",
    "SYSCALL_NUMBERS",
    "pack_stat",
    "pack_statx",
]

#: riscv64 syscall numbers (include/uapi/asm-generic/unistd.h plus riscv's arch-specific ones).
SYSCALL_NUMBERS: dict[str, int] = {
    "getcwd": 17,
    "eventfd2": 19,
    "epoll_create1": 20,
    "epoll_ctl": 21,
    "epoll_pwait": 22,
    "dup": 23,
    "dup3": 24,
    "fcntl": 25,
    "ioctl": 29,
    "mkdirat": 34,
    "unlinkat": 35,
    "symlinkat": 36,
    "linkat": 37,
    "renameat": 38,
    "truncate": 45,
    "ftruncate": 46,
    "faccessat": 48,
    "chdir": 49,
    "fchdir": 50,
    "fchmod": 52,
    "fchmodat": 53,
    "fchownat": 54,
    "fchown": 55,
    "openat": 56,
    "close": 57,
    "pipe2": 59,
    "getdents64": 61,
    "lseek": 62,
    "read": 63,
    "write": 64,
    "readv": 65,
    "writev": 66,
    "pread64": 67,
    "pwrite64": 68,
    "ppoll": 73,
    "readlinkat": 78,
    "newfstatat": 79,
    "fstat": 80,
    "sync": 81,
    "fsync": 82,
    "fdatasync": 83,
    "utimensat": 88,
    "exit": 93,
    "exit_group": 94,
    "set_tid_address": 96,
    "futex": 98,
    "set_robust_list": 99,
    "get_robust_list": 100,
    "nanosleep": 101,
    "clock_gettime": 113,
    "clock_getres": 114,
    "clock_nanosleep": 115,
    "sched_setaffinity": 122,
    "sched_getaffinity": 123,
    "sched_yield": 124,
    "kill": 129,
    "tkill": 130,
    "tgkill": 131,
    "sigaltstack": 132,
    "rt_sigaction": 134,
    "rt_sigprocmask": 135,
    "rt_sigpending": 136,
    "rt_sigtimedwait": 137,
    "rt_sigreturn": 139,
    "setpriority": 140,
    "getpriority": 141,
    "getresuid": 148,
    "getresgid": 150,
    "times": 153,
    "getpgid": 155,
    "getsid": 156,
    "getgroups": 158,
    "uname": 160,
    "getrlimit": 163,
    "setrlimit": 164,
    "getrusage": 165,
    "umask": 166,
    "prctl": 167,
    "gettimeofday": 169,
    "getpid": 172,
    "getppid": 173,
    "getuid": 174,
    "geteuid": 175,
    "getgid": 176,
    "getegid": 177,
    "gettid": 178,
    "sysinfo": 179,
    "brk": 214,
    "munmap": 215,
    "mremap": 216,
    "clone": 220,
    "mmap": 222,
    "mprotect": 226,
    "fadvise64": 223,
    "msync": 227,
    "mlock": 228,
    "munlock": 229,
    "madvise": 233,
    "riscv_hwprobe": 258,
    "wait4": 260,
    "riscv_flush_icache": 259,
    "prlimit64": 261,
    "renameat2": 276,
    "getrandom": 278,
    "statx": 291,
    "rseq": 293,
    "clone3": 435,
    "faccessat2": 439,
}
SYSCALL_NAMES: dict[int, str] = {v: k for k, v in SYSCALL_NUMBERS.items()}

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_REMOVEDIR = 0x200
AT_EMPTY_PATH = 0x1000

O_ACCMODE = 0o3
O_CREAT = 0o100
O_EXCL = 0o200
O_NOCTTY = 0o400
O_TRUNC = 0o1000
O_APPEND = 0o2000
O_NONBLOCK = 0o4000
O_DIRECTORY = 0o200000
O_NOFOLLOW = 0o400000
O_CLOEXEC = 0o2000000

# struct stat of asm-generic 64-bit: dev, ino, mode, nlink, uid, gid, rdev, pad, size, blksize,
# pad, blocks, atime, atime_nsec, mtime, mtime_nsec, ctime, ctime_nsec, 2 unused -> 128 bytes.
_STAT = struct.Struct("<QQIIIIQQqiiqqQqQqQII")
# struct statx: 256 bytes; timestamps are {s64 sec; u32 nsec; s32 pad}.
_STATX_HEAD = struct.Struct("<IIQIIIHHQQQQ")
_STATX_TS = struct.Struct("<qIi")
_STATX_TAIL = struct.Struct("<IIII")
STATX_BASIC_STATS = 0x7FF
STATX_SIZE = 256


def _ns(st: os.stat_result, name: str) -> tuple[int, int]:
    total = int(getattr(st, name + "_ns"))
    return total // 1_000_000_000, total % 1_000_000_000


def pack_stat(st: os.stat_result) -> bytes:
    """The riscv64 ``struct stat`` (128 bytes) for a host stat result."""
    a, m, c = _ns(st, "st_atime"), _ns(st, "st_mtime"), _ns(st, "st_ctime")
    return _STAT.pack(
        st.st_dev,
        st.st_ino,
        st.st_mode,
        st.st_nlink & 0xFFFFFFFF,
        st.st_uid,
        st.st_gid,
        st.st_rdev,
        0,
        st.st_size,
        st.st_blksize,
        0,
        st.st_blocks,
        a[0],
        a[1],
        m[0],
        m[1],
        c[0],
        c[1],
        0,
        0,
    )


def pack_statx(st: os.stat_result) -> bytes:
    """The ``struct statx`` (256 bytes) for a host stat result, with STATX_BASIC_STATS set."""
    head = _STATX_HEAD.pack(
        STATX_BASIC_STATS,
        st.st_blksize,
        0,
        st.st_nlink & 0xFFFFFFFF,
        st.st_uid,
        st.st_gid,
        st.st_mode & 0xFFFF,
        0,
        st.st_ino,
        st.st_size,
        st.st_blocks,
        0,
    )
    times = b"".join(
        _STATX_TS.pack(*_ns(st, name), 0)
        for name in ("st_atime", "st_atime", "st_ctime", "st_mtime")  # atime, btime, ctime, mtime
    )
    tail = _STATX_TAIL.pack(
        os.major(st.st_rdev), os.minor(st.st_rdev), os.major(st.st_dev), os.minor(st.st_dev)
    )
    out = head + times + tail
    return out.ljust(STATX_SIZE, b"\0")
