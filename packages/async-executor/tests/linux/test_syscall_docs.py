from __future__ import annotations

import pathlib
import re

import pytest

from vmkit.async_executor.linux import Linux

DOC = pathlib.Path(__file__).resolve().parents[4] / "docs" / "async-executor" / "syscalls.md"


class TestSyscallTable:
    def test_docs_list_exactly_the_supported_syscalls(self, tmp_path: pathlib.Path) -> None:
        """docs/async-executor/syscalls.md has one row per handled syscall, with its number."""
        if not DOC.exists():
            pytest.skip("docs are not part of this tree (installed from an sdist)")
        rows = {
            int(nr): name
            for nr, name in re.findall(r"^\| (\d+) \| (\w+) \|", DOC.read_text(), re.MULTILINE)
        }
        linux = Linux(tmp_path)
        try:
            assert rows == linux.supported
        finally:
            linux.close()

    def test_issue_list_is_covered(self, tmp_path: pathlib.Path) -> None:
        """Every syscall the issue names has a handler."""
        wanted = [
            "read",
            "write",
            "readv",
            "writev",
            "openat",
            "close",
            "lseek",
            "pread64",
            "pwrite64",
            "fstat",
            "newfstatat",
            "statx",
            "getdents64",
            "ioctl",
            "fcntl",
            "dup",
            "dup3",
            "pipe2",
            "brk",
            "mmap",
            "munmap",
            "mprotect",
            "mremap",
            "madvise",
            "exit",
            "exit_group",
            "set_tid_address",
            "set_robust_list",
            "rseq",
            "prlimit64",
            "readlinkat",
            "getrandom",
            "uname",
            "clock_gettime",
            "clock_getres",
            "gettimeofday",
            "nanosleep",
            "clock_nanosleep",
            "getpid",
            "getppid",
            "gettid",
            "getuid",
            "geteuid",
            "getgid",
            "getegid",
            "sched_yield",
            "sched_getaffinity",
            "futex",
            "rt_sigaction",
            "rt_sigprocmask",
            "sigaltstack",
            "kill",
            "tgkill",
            "times",
            "sysinfo",
            "getcwd",
            "chdir",
            "unlinkat",
            "mkdirat",
            "renameat",
            "faccessat",
        ]
        linux = Linux(tmp_path)
        try:
            assert set(wanted) <= set(linux.supported.values())
        finally:
            linux.close()
