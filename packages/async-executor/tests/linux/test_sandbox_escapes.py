"""Attacks on the sandbox, each a guest request that once reached host files or host resources.

Every file outside the root here is a canary in a temporary directory (the program, the devices,
the time-zone mount, redirected stdio), so even a regression can only ever touch a canary.
"""

from __future__ import annotations

import errno
import os
import pathlib
import struct
from collections.abc import Iterator

import pytest
from test_syscalls import AT_FDCWD, BUF, O_CREAT, O_RDWR, O_TRUNC, O_WRONLY, Guest

from vmkit.async_executor.limits import GuestLimits
from vmkit.async_executor.linux import Linux
from vmkit.async_executor.machine import PERM_R, PERM_W, AddressSpace, Hart
from vmkit.async_executor.machine._machine import Machine

O_RDONLY = 0
AT_SYMLINK_NOFOLLOW = 0x100
CANARY = b"canary: must never change"


@pytest.fixture
def world(tmp_path: pathlib.Path) -> Iterator[tuple[Guest, pathlib.Path]]:
    """A guest whose program, devices and read-only mount are canaries; stdout a canary file."""
    outside = tmp_path / "outside"
    (outside / "dev").mkdir(parents=True)
    for name in ("null", "zero", "full", "random", "urandom", "tty"):
        (outside / "dev" / name).write_bytes(CANARY)
        (outside / "dev" / name).chmod(0o666)
    (outside / "prog").write_bytes(CANARY)
    (outside / "prog").chmod(0o755)
    zone = outside / "ro" / "usr" / "share" / "zoneinfo"
    zone.mkdir(parents=True)
    (zone / "UTC").write_bytes(CANARY)
    (outside / "ro" / "etc").mkdir()
    (outside / "ro" / "etc" / "localtime").write_bytes(CANARY)
    (outside / "stdout").write_bytes(CANARY)
    root = tmp_path / "root"
    root.mkdir()
    stdout = os.open(outside / "stdout", os.O_WRONLY | os.O_APPEND)
    stdin = os.open(outside / "stdout", os.O_RDONLY)
    g = Guest(root, stdio=(stdin, stdout, stdout), host_dev=bytes(outside / "dev"))
    g.linux.fs.exe_host = bytes(outside / "prog")
    g.linux.fs.host_ro = bytes(outside / "ro")
    yield g, outside
    g.linux.close()
    os.close(stdout)
    os.close(stdin)


def _untouched(outside: pathlib.Path) -> None:
    for path in [
        outside / "prog",
        outside / "ro" / "usr" / "share" / "zoneinfo" / "UTC",
        outside / "ro" / "etc" / "localtime",
        *(outside / "dev").iterdir(),
    ]:
        assert path.read_bytes() == CANARY, path
    assert (outside / "prog").stat().st_mode & 0o777 == 0o755
    assert (outside / "dev" / "null").stat().st_mode & 0o777 == 0o666


class TestReopenThroughProcSelfFd:
    """Item 1: /proc/self/fd/N and /dev/fd/N never grant more than the original description."""

    def test_program_cannot_be_reopened_for_writing(
        self, world: tuple[Guest, pathlib.Path]
    ) -> None:
        g, outside = world
        fd = g.open("/proc/self/exe")
        assert fd >= 0
        for alias in (f"/proc/self/fd/{fd}", f"/dev/fd/{fd}"):
            assert g.open(alias, O_RDWR) == -errno.ETXTBSY
            assert g.open(alias, O_WRONLY | O_TRUNC) == -errno.ETXTBSY
        again = g.open(f"/proc/self/fd/{fd}")
        assert again >= 0  # reading is what the original allows
        assert g.call("fchmod", again, 0o600) == -errno.EACCES
        assert g.call("ftruncate", again, 0) == -errno.EACCES
        assert g.call("read", again, BUF, 6) == 6
        assert g.read(BUF, 6) == CANARY[:6]
        _untouched(outside)

    def test_read_only_mount_cannot_be_reopened_for_writing(
        self, world: tuple[Guest, pathlib.Path]
    ) -> None:
        g, outside = world
        fd = g.open("/etc/localtime")
        assert fd >= 0
        assert g.open(f"/proc/self/fd/{fd}", O_RDWR) == -errno.EROFS
        assert g.open(f"/proc/self/fd/{fd}", O_WRONLY | O_TRUNC) == -errno.EROFS
        _untouched(outside)

    def test_device_keeps_its_metadata(self, world: tuple[Guest, pathlib.Path]) -> None:
        g, outside = world
        fd = g.open("/dev/null", O_RDWR)
        again = g.open(f"/proc/self/fd/{fd}", O_RDWR | O_TRUNC)
        assert again >= 0
        assert g.call("fchmod", again, 0o600) == -errno.EACCES
        assert g.call("fchown", again, 1, 1) == -errno.EACCES
        assert g.call("ftruncate", again, 0) == -errno.EACCES
        _untouched(outside)

    def test_devices_are_never_truncated(self, world: tuple[Guest, pathlib.Path]) -> None:
        # Found by the syscall fuzz campaign: openat("/dev/full", O_WRONLY | O_TRUNC) truncated
        # the host's stand-in. Linux ignores O_TRUNC on a character device; so do we.
        g, outside = world
        for name in ("null", "zero", "full", "random", "urandom"):
            fd = g.open(f"/dev/{name}", O_WRONLY | O_TRUNC)
            assert fd >= 0, name
            assert g.call("close", fd) == 0
        _untouched(outside)

    def test_redirected_stdio_is_neither_truncated_nor_written_through_stdin(
        self, world: tuple[Guest, pathlib.Path]
    ) -> None:
        g, outside = world
        out = g.open("/dev/stdout", O_WRONLY | O_TRUNC)
        assert out >= 0
        assert (outside / "stdout").read_bytes() == CANARY  # O_TRUNC was not applied
        assert g.call("ftruncate", out, 0) == -errno.EACCES
        assert g.call("ftruncate", 1, 0) == -errno.EACCES
        assert g.open("/dev/stdin", O_RDWR) == -errno.EACCES  # stdin was opened read-only
        g.m.memory.write_bytes(BUF, b"+ok")
        assert g.call("write", out, BUF, 3) == 3  # writing what the user redirected is fine
        # A new description has its own offset, as on Linux: the write lands at offset 0.
        assert (outside / "stdout").read_bytes() == b"+ok" + CANARY[3:]

    def test_files_inside_the_root_reopen_as_linux_does(
        self, world: tuple[Guest, pathlib.Path]
    ) -> None:
        g, _ = world
        fd = g.open("/mine", O_RDWR | O_CREAT)
        g.m.memory.write_bytes(BUF, b"data")
        assert g.call("write", fd, BUF, 4) == 4
        ro = g.open("/mine")
        rw = g.open(f"/proc/self/fd/{ro}", O_RDWR | O_TRUNC)
        assert rw >= 0  # the guest owns the file: the new description may write
        assert g.call("fchmod", rw, 0o600) == 0
        assert g.call("lseek", rw, 0, 2) == 0  # truncated


class TestAccessNoFollow:
    """Item 2: faccessat2(AT_SYMLINK_NOFOLLOW) checks a guest symlink itself, never its host
    target, so it cannot tell whether a host path exists."""

    def test_symlink_to_a_host_path_reveals_nothing(
        self, world: tuple[Guest, pathlib.Path], tmp_path: pathlib.Path
    ) -> None:
        g, _ = world
        secret = tmp_path / "secret-host-file"
        secret.write_bytes(b"x")
        secret.chmod(0o000)
        root = pathlib.Path(os.fsdecode(g.linux.fs.root))
        (root / "to-existing").symlink_to(secret)
        (root / "to-missing").symlink_to(tmp_path / "no-such-host-file")
        # The same answer for both links: the link exists; what it names is not looked at.
        results = [
            g.call("faccessat2", AT_FDCWD, g.s(f"/{name}"), mode, AT_SYMLINK_NOFOLLOW)
            for mode in (0, 4)
            for name in ("to-existing", "to-missing")
        ]
        assert results == [0, 0, 0, 0]
        # Following the links resolves them inside the root, where neither target exists.
        assert g.call("faccessat2", AT_FDCWD, g.s("/to-existing"), 0, 0) == -errno.ENOENT


class TestResources:
    def test_full_fd_table_leaks_no_host_fds(self, tmp_path: pathlib.Path) -> None:
        """Item 7: pipe2 with a full guest fd table releases both host fds, 3000 times over."""
        limits = GuestLimits(open_files=16, open_files_hard=16)
        mem = AddressSpace()
        mem.map(BUF, 0x10000, PERM_R | PERM_W)
        linux = Linux(tmp_path, limits=limits)
        m = Machine(mem, Hart(), linux)
        g = Guest.__new__(Guest)
        g.linux, g.m, g._strings = linux, m, BUF + 0x8000
        while g.call("pipe2", BUF, 0) == 0:
            pass
        assert len(linux.fds) >= 15
        before = len(os.listdir("/proc/self/fd"))
        for _ in range(3000):
            assert g.call("pipe2", BUF, 0) == -errno.EMFILE
        assert g.call("pipe2", 0xDEAD0000, 0) == -errno.EMFILE
        assert len(os.listdir("/proc/self/fd")) == before
        assert linux.limit_counters.files_refused >= 3000
        linux.close()

    def test_pipe2_to_a_bad_pointer_closes_both_ends(self, guest_root: pathlib.Path) -> None:
        g = Guest(guest_root)
        before = len(os.listdir("/proc/self/fd"))
        for _ in range(100):
            assert g.call("pipe2", 0xDEAD0000, 0) == -errno.EFAULT
        assert len(os.listdir("/proc/self/fd")) == before
        assert set(g.linux.fds) == {0, 1, 2}
        g.linux.close()

    def test_rlimit_nofile_is_honoured(self, guest_root: pathlib.Path) -> None:
        """Item 11 (open files): getrlimit reports the limit, setrlimit lowers it, raising the
        hard limit is EPERM, and EMFILE comes at the soft limit."""
        g = Guest(guest_root)
        assert g.call("prlimit64", 0, 7, 0, BUF) == 0
        soft, hard = struct.unpack("<QQ", g.read(BUF, 16))
        assert (soft, hard) == (1024, 4096)
        g.m.memory.write_bytes(BUF, struct.pack("<QQ", 8, 4096))
        assert g.call("prlimit64", 0, 7, BUF, 0) == 0
        opened = [g.open("/f", O_RDWR | O_CREAT) for _ in range(6)]
        assert opened == [3, 4, 5, 6, 7, -errno.EMFILE]
        g.m.memory.write_bytes(BUF, struct.pack("<QQ", 8, 5000))
        assert g.call("prlimit64", 0, 7, BUF, 0) == -errno.EPERM
        g.m.memory.write_bytes(BUF, struct.pack("<QQ", 9, 8))
        assert g.call("prlimit64", 0, 7, BUF, 0) == -errno.EINVAL
        assert g.call("dup3", 3, 8, 0) == -errno.EBADF
        g.linux.close()

    def test_bulk_copies_are_capped(self, guest_root: pathlib.Path) -> None:
        """Item 6: pwrite64 and writev of huge lengths move at most 16 MiB per call."""
        g = Guest(guest_root)
        g.m.memory.map(0x1000_0000, 64 << 20, PERM_R | PERM_W)
        fd = g.open("/big", O_RDWR | O_CREAT)
        # 600 MiB from a 64 MiB mapping: only the first 16 MiB are copied, so no EFAULT either.
        assert g.call("pwrite64", fd, 0x1000_0000, 600 << 20, 0) == 16 << 20
        iov = struct.pack("<QQ", 0x1000_0000, 256 << 20) * 64
        g.m.memory.write_bytes(BUF, iov)
        assert g.call("writev", fd, BUF, 64) == 16 << 20
        iov = struct.pack("<QQ", 0x1000_0000, 10 << 20) * 4
        g.m.memory.write_bytes(BUF, iov)
        assert g.call("writev", fd, BUF, 4) == 16 << 20
        assert g.call("lseek", fd, 0, 0) == 0
        assert g.call("readv", fd, BUF, 4) == 16 << 20  # from the 16 MiB written at 0
        g.linux.close()


@pytest.fixture
def guest_root(tmp_path: pathlib.Path) -> pathlib.Path:
    root = tmp_path / "root"
    root.mkdir()
    return root


class TestDevices:
    def test_dev_full(self, guest_root: pathlib.Path) -> None:
        """Item 12: /dev/full exists; writes fail with ENOSPC, reads give zeros (host device:
        a character device nothing can change)."""
        if not os.path.exists("/dev/full"):
            pytest.skip("the host has no /dev/full")
        g = Guest(guest_root)
        fd = g.open("/dev/full", O_RDWR)
        assert fd >= 0
        g.m.memory.write_bytes(BUF, b"abc")
        assert g.call("write", fd, BUF, 3) == -errno.ENOSPC
        assert g.call("read", fd, BUF, 3) == 3
        assert g.read(BUF, 3) == b"\0\0\0"
        g.linux.close()


class TestDiskQuota:
    """Item 11 (disk): the private /tmp holds at most GuestLimits.disk_bytes; past it EDQUOT."""

    def test_writes_past_the_quota_are_edquot(self, tmp_path: pathlib.Path) -> None:
        root = tmp_path / "root"
        root.mkdir()
        mem = AddressSpace()
        mem.map(BUF, 0x200000, PERM_R | PERM_W)
        linux = Linux(root, limits=GuestLimits(disk_bytes=1 << 20))
        g = Guest.__new__(Guest)
        g.linux, g.m, g._strings = linux, Machine(mem, Hart(), linux), BUF + 0x1F0000
        try:
            fd = g.open("/tmp/big", O_RDWR | O_CREAT)
            assert fd >= 0
            assert g.call("write", fd, BUF, 600 << 10) == 600 << 10
            assert g.call("write", fd, BUF, 600 << 10) == -errno.EDQUOT
            assert g.call("pwrite64", fd, BUF, 100, 2 << 20) == -errno.EDQUOT
            assert g.call("ftruncate", fd, 4 << 20) == -errno.EDQUOT
            assert g.call("pwrite64", fd, BUF, 1000, 0) == 1000  # rewriting costs nothing
            other = g.open("/tmp/other", O_RDWR | O_CREAT)
            assert g.call("write", other, BUF, 500 << 10) == -errno.EDQUOT  # the quota is shared
            assert g.call("unlinkat", AT_FDCWD, g.s("/tmp/big"), 0) == 0
            assert g.call("close", fd) == 0
            assert g.call("write", other, BUF, 500 << 10) == 500 << 10  # freed by the unlink
            outside = g.open("/in-root", O_RDWR | O_CREAT)  # the root is the user's own place
            assert g.call("write", outside, BUF, 1500 << 10) == 1500 << 10
            counters = linux.limit_counters
            assert counters.disk_refused == 4
            assert counters.peak_disk_bytes == 600 << 10
        finally:
            linux.close()
