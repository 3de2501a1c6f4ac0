from __future__ import annotations

import errno
import os
import pathlib
import signal
import struct
import time
from collections.abc import Iterator

import pytest

from vmkit.async_executor._logging import capture_events
from vmkit.async_executor.errors import GuestExit, GuestSignal
from vmkit.async_executor.linux import SYSCALL_NUMBERS, Linux
from vmkit.async_executor.machine import PERM_R, PERM_W, AddressSpace, Hart
from vmkit.async_executor.machine._machine import Machine

BUF = 0x100000  # scratch buffer
STR = 0x140000  # strings
AT_FDCWD = -100


class Guest:
    """A machine with scratch memory, and a way to make syscalls as the guest does."""

    def __init__(
        self,
        root: pathlib.Path,
        stdio: tuple[int, int, int] = (0, 1, 2),
        host_dev: bytes = b"/dev",
    ) -> None:
        mem = AddressSpace()
        mem.map(BUF, 0x80000, PERM_R | PERM_W)
        self.linux = Linux(
            root, exe_host=b"/host/prog", exe_guest=b"/bin/prog", stdio=stdio, host_dev=host_dev
        )
        vm = self.linux.process_memory(mem)
        vm.brk_start = vm.brk = 0x200000
        self.m = Machine(mem, Hart(), self.linux)
        self._strings = STR

    def s(self, text: str | bytes) -> int:
        """Put a NUL-terminated string in guest memory and return its address."""
        data = text.encode() if isinstance(text, str) else text
        addr = self._strings
        self.m.memory.write_bytes(addr, data + b"\0")
        self._strings += len(data) + 1
        return addr

    def call(self, name: str, *args: int) -> int:
        """Make syscall ``name``; returns the result as a signed value (negative errno)."""
        x = self.m.hart.x
        x[17] = SYSCALL_NUMBERS[name]
        for i in range(6):
            x[10 + i] = (args[i] if i < len(args) else 0) & (2**64 - 1)
        self.m.syscall()
        value = x[10]
        return value - 2**64 if value >= 2**63 else value

    def read(self, addr: int, n: int) -> bytes:
        return self.m.memory.read_bytes(addr, n)

    def open(self, path: str, flags: int = 0, mode: int = 0o644) -> int:
        return self.call("openat", AT_FDCWD, self.s(path), flags, mode)


@pytest.fixture
def guest(tmp_path: pathlib.Path) -> Iterator[Guest]:
    root = tmp_path / "root"
    root.mkdir()
    (root / "data.txt").write_bytes(b"0123456789abcdef")
    (root / "sub").mkdir()
    (root / "sub" / "inner.txt").write_bytes(b"inner")
    g = Guest(root)
    yield g
    g.linux.close()


O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_DIRECTORY = 1, 2, 0o100, 0o1000, 0o200000


class TestFiles:
    def test_open_read_close(self, guest: Guest) -> None:
        """openat + read return the file's bytes; close frees the fd, a second close is EBADF."""
        fd = guest.open("/data.txt")
        assert fd == 3
        assert guest.call("read", fd, BUF, 4) == 4
        assert guest.read(BUF, 4) == b"0123"
        assert guest.call("close", fd) == 0
        assert guest.call("close", fd) == -errno.EBADF

    def test_create_write_lseek_pread(self, guest: Guest, tmp_path: pathlib.Path) -> None:
        """Writes land in the host file inside the root; lseek and pread/pwrite use offsets."""
        fd = guest.open("new.txt", O_RDWR | O_CREAT | O_TRUNC)
        guest.m.memory.write_bytes(BUF, b"hello world")
        assert guest.call("write", fd, BUF, 11) == 11
        assert guest.call("lseek", fd, 6, 0) == 6
        assert guest.call("read", fd, BUF + 100, 5) == 5
        assert guest.read(BUF + 100, 5) == b"world"
        assert guest.call("pwrite64", fd, BUF, 5, 20) == 5
        assert guest.call("pread64", fd, BUF + 200, 3, 1) == 3
        assert guest.read(BUF + 200, 3) == b"ell"
        assert guest.call("lseek", fd, 0, 2) == 25
        assert (tmp_path / "root" / "new.txt").read_bytes()[:11] == b"hello world"

    def test_readv_writev(self, guest: Guest, tmp_path: pathlib.Path) -> None:
        """writev gathers iovecs in order and readv scatters them."""
        fd = guest.open("v.txt", O_RDWR | O_CREAT)
        guest.m.memory.write_bytes(BUF, b"abcXYZ")
        guest.m.memory.write_bytes(BUF + 64, struct.pack("<QQQQ", BUF + 3, 3, BUF, 3))
        assert guest.call("writev", fd, BUF + 64, 2) == 6
        assert (tmp_path / "root" / "v.txt").read_bytes() == b"XYZabc"
        guest.call("lseek", fd, 0, 0)
        guest.m.memory.write_bytes(BUF + 64, struct.pack("<QQQQ", BUF + 300, 2, BUF + 400, 10))
        assert guest.call("readv", fd, BUF + 64, 2) == 6
        assert guest.read(BUF + 300, 2) + guest.read(BUF + 400, 4) == b"XYZabc"

    def test_stdout_goes_to_host_fd(self, tmp_path: pathlib.Path) -> None:
        """Guest fd 1 writes straight to the host fd given as stdout."""
        out = tmp_path / "out"
        with open(out, "wb") as fh:
            g = Guest(tmp_path, stdio=(0, fh.fileno(), 2))
            g.m.memory.write_bytes(BUF, b"guest says hi\n")
            assert g.call("write", 1, BUF, 14) == 14
        assert out.read_bytes() == b"guest says hi\n"

    def test_bad_buffer_is_efault(self, guest: Guest) -> None:
        """A buffer outside guest memory gives EFAULT, not a crash."""
        fd = guest.open("/data.txt")
        assert guest.call("read", fd, 0xDEAD0000, 4) == -errno.EFAULT
        assert guest.call("write", 1, 0xDEAD0000, 4) == -errno.EFAULT
        assert guest.call("openat", AT_FDCWD, 0xDEAD0000, 0) == -errno.EFAULT

    def test_missing_file_and_flags(self, guest: Guest) -> None:
        """ENOENT for a missing file, EISDIR for writing a directory, ENOTDIR through a file."""
        assert guest.open("/nope") == -errno.ENOENT
        assert guest.open("/sub", O_WRONLY) == -errno.EISDIR
        assert guest.open("/data.txt/x") == -errno.ENOTDIR
        assert guest.open("/data.txt", O_DIRECTORY) == -errno.ENOTDIR

    def test_dup_shares_offset(self, guest: Guest) -> None:
        """dup and dup3 share one open file description (and its offset)."""
        fd = guest.open("/data.txt")
        dup = guest.call("dup", fd)
        assert dup == fd + 1
        guest.call("read", fd, BUF, 4)
        guest.call("read", dup, BUF, 2)
        assert guest.read(BUF, 2) == b"45"
        assert guest.call("dup3", fd, 10, 0) == 10
        assert guest.call("close", fd) == 0
        assert guest.call("read", 10, BUF, 1) == 1
        assert guest.read(BUF, 1) == b"6"
        assert guest.call("dup3", 10, 10, 0) == -errno.EINVAL

    def test_fcntl(self, guest: Guest) -> None:
        """F_DUPFD picks the lowest fd at or above the argument; F_GETFL reports the access mode."""
        fd = guest.open("/data.txt", O_RDWR)
        assert guest.call("fcntl", fd, 0, 20) == 20
        assert guest.call("fcntl", fd, 3) & 3 == O_RDWR
        assert guest.call("fcntl", fd, 2, 1) == 0
        assert guest.call("fcntl", fd, 1) == 1

    def test_pipe(self, guest: Guest) -> None:
        """pipe2 returns two fds; bytes written to one come out of the other."""
        assert guest.call("pipe2", BUF, 0) == 0
        rfd, wfd = struct.unpack("<ii", guest.read(BUF, 8))
        guest.m.memory.write_bytes(BUF + 16, b"xyz")
        assert guest.call("write", wfd, BUF + 16, 3) == 3
        assert guest.call("read", rfd, BUF + 32, 10) == 3
        assert guest.read(BUF + 32, 3) == b"xyz"
        assert guest.call("lseek", rfd, 0, 0) == -errno.ESPIPE

    def test_read_into_a_bad_buffer_consumes_nothing(self, guest: Guest) -> None:
        """A read whose buffer is unmapped fails with EFAULT and leaves the pipe's bytes; one
        that runs off the end of the mapping is short, as on Linux."""
        guest.linux.deadline = time.monotonic() + 10  # a regression fails, it does not hang
        assert guest.call("pipe2", BUF, 0) == 0
        rfd, wfd = struct.unpack("<ii", guest.read(BUF, 8))
        guest.m.memory.write_bytes(BUF + 16, b"abcdef")
        assert guest.call("write", wfd, BUF + 16, 6) == 6
        assert guest.call("read", rfd, 0xDEAD0000, 6) == -errno.EFAULT
        end = BUF + 0x80000
        assert guest.call("read", rfd, end - 2, 6) == 2
        assert guest.read(end - 2, 2) == b"ab"
        assert guest.call("read", rfd, BUF + 32, 10) == 4
        assert guest.read(BUF + 32, 4) == b"cdef"
        assert guest.call("getrandom", end - 3, 1 << 20, 0) == 3
        assert guest.call("getrandom", 0xDEAD0000, 16, 0) == -errno.EFAULT
        assert guest.call("getrandom", 0xDEAD0000, 0, 0) == 0

    def test_broken_pipe_is_sigpipe(self, guest: Guest) -> None:
        """Writing to a pipe nobody reads kills with SIGPIPE, or gives EPIPE when it is ignored."""
        guest.call("pipe2", BUF, 0)
        rfd, wfd = struct.unpack("<ii", guest.read(BUF, 8))
        guest.call("close", rfd)
        with pytest.raises(GuestSignal) as info:
            guest.call("write", wfd, BUF, 4)
        assert info.value.exit_status == 128 + signal.SIGPIPE
        guest.m.memory.write_bytes(BUF + 64, struct.pack("<QQQ", 1, 0, 0))  # SIG_IGN
        guest.call("rt_sigaction", int(signal.SIGPIPE), BUF + 64, 0, 8)
        assert guest.call("write", wfd, BUF, 4) == -errno.EPIPE

    def test_ioctl_tcgets_on_a_terminal(self, tmp_path: pathlib.Path) -> None:
        """TCGETS on a terminal returns the host's 36-byte termios; TIOCGWINSZ the window size."""
        import fcntl
        import termios

        master, slave = os.openpty()
        try:
            g = Guest(tmp_path, stdio=(slave, slave, 2))
            assert g.call("ioctl", 0, termios.TCGETS, BUF) == 0
            host = fcntl.ioctl(slave, termios.TCGETS, bytes(36))
            assert g.read(BUF, 36) == bytes(host)
            assert g.call("ioctl", 1, termios.TIOCGWINSZ, BUF) == 0
            assert g.call("ioctl", 1, 0x1234, BUF) == -errno.ENOTTY
        finally:
            os.close(master)
            os.close(slave)

    def test_ioctl_tcgets_not_a_tty(self, guest: Guest) -> None:
        """TCGETS on a regular file is ENOTTY (stdio then buffers fully)."""
        fd = guest.open("/data.txt")
        assert guest.call("ioctl", fd, 0x5401, BUF) == -errno.ENOTTY
        assert guest.call("ioctl", 99, 0x5401, BUF) == -errno.EBADF


class TestStat:
    def test_fstat_layout(self, guest: Guest, tmp_path: pathlib.Path) -> None:
        """fstat fills the riscv64 struct stat: mode at 16, size at 48, mtime at 88."""
        fd = guest.open("/data.txt")
        assert guest.call("fstat", fd, BUF) == 0
        raw = guest.read(BUF, 128)
        host = os.stat(tmp_path / "root" / "data.txt")
        assert struct.unpack_from("<Q", raw, 8)[0] == host.st_ino
        assert struct.unpack_from("<I", raw, 16)[0] == host.st_mode
        assert struct.unpack_from("<q", raw, 48)[0] == 16
        assert struct.unpack_from("<q", raw, 88)[0] == int(host.st_mtime)

    def test_newfstatat_and_empty_path(self, guest: Guest) -> None:
        """newfstatat follows paths; AT_EMPTY_PATH stats the fd itself."""
        assert guest.call("newfstatat", AT_FDCWD, guest.s("/sub"), BUF, 0) == 0
        mode = struct.unpack_from("<I", guest.read(BUF, 128), 16)[0]
        assert mode & 0o170000 == 0o040000
        fd = guest.open("/data.txt")
        assert guest.call("newfstatat", fd, guest.s(""), BUF, 0x1000) == 0
        assert struct.unpack_from("<q", guest.read(BUF, 128), 48)[0] == 16
        assert guest.call("newfstatat", AT_FDCWD, guest.s("/missing"), BUF, 0) == -errno.ENOENT

    def test_statx_layout(self, guest: Guest) -> None:
        """statx fills mask, mode at 28 and size at 40."""
        assert guest.call("statx", AT_FDCWD, guest.s("data.txt"), 0, 0x7FF, BUF) == 0
        raw = guest.read(BUF, 256)
        assert struct.unpack_from("<I", raw, 0)[0] & 0x7FF == 0x7FF
        assert struct.unpack_from("<H", raw, 28)[0] & 0o170000 == 0o100000
        assert struct.unpack_from("<Q", raw, 40)[0] == 16


class TestDirectories:
    def test_getdents64(self, guest: Guest) -> None:
        """getdents64 lists ., .. and the entries with their types, then returns 0."""
        fd = guest.open("/", O_DIRECTORY)
        n = guest.call("getdents64", fd, BUF, 4096)
        assert n > 0
        raw = guest.read(BUF, n)
        names = {}
        pos = 0
        while pos < n:
            _, _, reclen, dtype = struct.unpack_from("<QqHB", raw, pos)
            name = raw[pos + 19 : pos + reclen].split(b"\0")[0]
            names[name] = dtype
            pos += reclen
        assert names == {b".": 4, b"..": 4, b"data.txt": 8, b"sub": 4}
        assert guest.call("getdents64", fd, BUF, 4096) == 0

    def test_small_buffer_is_einval(self, guest: Guest) -> None:
        """A buffer too small for one record is EINVAL."""
        fd = guest.open("/", O_DIRECTORY)
        assert guest.call("getdents64", fd, BUF, 8) == -errno.EINVAL

    def test_mkdir_rename_unlink(self, guest: Guest, tmp_path: pathlib.Path) -> None:
        """mkdirat, renameat, unlinkat (and AT_REMOVEDIR) act on the host inside the root."""
        root = tmp_path / "root"
        assert guest.call("mkdirat", AT_FDCWD, guest.s("d"), 0o755) == 0
        assert (root / "d").is_dir()
        assert guest.call("mkdirat", AT_FDCWD, guest.s("d"), 0o755) == -errno.EEXIST
        assert guest.call("renameat", AT_FDCWD, guest.s("data.txt"), AT_FDCWD, guest.s("d/x")) == 0
        assert (root / "d" / "x").read_bytes() == b"0123456789abcdef"
        assert guest.call("unlinkat", AT_FDCWD, guest.s("d"), 0x200) == -errno.ENOTEMPTY
        assert guest.call("unlinkat", AT_FDCWD, guest.s("d"), 0) == -errno.EISDIR
        assert guest.call("unlinkat", AT_FDCWD, guest.s("d/x"), 0) == 0
        assert guest.call("unlinkat", AT_FDCWD, guest.s("d"), 0x200) == 0
        assert not (root / "d").exists()

    def test_faccessat(self, guest: Guest) -> None:
        """faccessat answers 0 for an existing file and ENOENT for a missing one."""
        assert guest.call("faccessat", AT_FDCWD, guest.s("/data.txt"), 4) == 0
        assert guest.call("faccessat", AT_FDCWD, guest.s("/gone"), 0) == -errno.ENOENT

    def test_cwd_and_dirfd(self, guest: Guest) -> None:
        """chdir changes what relative paths mean; openat resolves against a directory fd."""
        assert guest.call("getcwd", BUF, 100) == 2
        assert guest.read(BUF, 2) == b"/\0"
        assert guest.call("chdir", guest.s("sub")) == 0
        assert guest.call("getcwd", BUF, 100) == 5
        assert guest.read(BUF, 5) == b"/sub\0"
        assert guest.open("inner.txt") >= 0
        assert guest.call("chdir", guest.s("/data.txt")) == -errno.ENOTDIR
        assert guest.call("getcwd", BUF, 3) == -errno.ERANGE
        guest.call("chdir", guest.s("/"))
        dirfd = guest.open("/sub", O_DIRECTORY)
        assert guest.call("openat", dirfd, guest.s("inner.txt"), 0) >= 0


class TestSandbox:
    """The guest reaches only its root, whatever path it spells."""

    @pytest.fixture
    def outside(self, tmp_path: pathlib.Path) -> pathlib.Path:
        secret = tmp_path / "secret.txt"
        secret.write_text("host secret")
        return secret

    def test_dotdot_stays_inside(self, guest: Guest, outside: pathlib.Path) -> None:
        """../secret.txt from / is /secret.txt inside the root: ENOENT, as in a chroot."""
        assert guest.open("../secret.txt") == -errno.ENOENT
        assert guest.open("/../../secret.txt") == -errno.ENOENT
        assert guest.open("sub/../../secret.txt") == -errno.ENOENT

    def test_absolute_host_path(self, guest: Guest, outside: pathlib.Path) -> None:
        """An absolute host path is interpreted inside the root."""
        assert guest.open(str(outside)) == -errno.ENOENT
        assert guest.open("/etc/passwd") == -errno.ENOENT

    def test_symlink_out_is_resolved_inside(
        self, guest: Guest, outside: pathlib.Path, tmp_path: pathlib.Path
    ) -> None:
        """Symlinks with absolute or ../ targets are followed inside the root, never out."""
        root = tmp_path / "root"
        (root / "abs").symlink_to(outside)
        (root / "rel").symlink_to("../secret.txt")
        (root / "up").symlink_to("..")
        (root / "good").symlink_to("sub/inner.txt")
        assert guest.open("/abs") == -errno.ENOENT
        assert guest.open("/rel") == -errno.ENOENT
        assert guest.open("/up/secret.txt") == -errno.ENOENT
        fd = guest.open("/up/data.txt")
        assert fd >= 0
        fd = guest.open("/good")
        assert guest.call("read", fd, BUF, 5) == 5
        assert guest.read(BUF, 5) == b"inner"

    def test_symlink_loop(self, guest: Guest, tmp_path: pathlib.Path) -> None:
        """A symlink loop is ELOOP."""
        (tmp_path / "root" / "loop").symlink_to("loop")
        assert guest.open("/loop") == -errno.ELOOP

    def test_chdir_dotdot_at_root(self, guest: Guest) -> None:
        """chdir("..") at / stays at /."""
        assert guest.call("chdir", guest.s("..")) == 0
        guest.call("getcwd", BUF, 100)
        assert guest.read(BUF, 2) == b"/\0"

    def test_readlink_reports_guest_view(self, guest: Guest, tmp_path: pathlib.Path) -> None:
        """readlinkat returns the link text; /proc/self/exe names the program."""
        (tmp_path / "root" / "l").symlink_to("sub/inner.txt")
        assert guest.call("readlinkat", AT_FDCWD, guest.s("/l"), BUF, 100) == 13
        assert guest.read(BUF, 13) == b"sub/inner.txt"
        n = guest.call("readlinkat", AT_FDCWD, guest.s("/proc/self/exe"), BUF, 100)
        assert guest.read(BUF, n) == b"/bin/prog"
        assert guest.call("readlinkat", AT_FDCWD, guest.s("/data.txt"), BUF, 100) == -errno.EINVAL

    def test_cannot_remove_root(self, guest: Guest) -> None:
        """Removing / is refused."""
        assert guest.call("unlinkat", AT_FDCWD, guest.s("/"), 0x200) == -errno.EBUSY

    def test_rename_out_is_impossible(self, guest: Guest, tmp_path: pathlib.Path) -> None:
        """renameat to ../x lands inside the root."""
        assert guest.call("renameat", AT_FDCWD, guest.s("data.txt"), AT_FDCWD, guest.s("../x")) == 0
        assert (tmp_path / "root" / "x").exists()
        assert not (tmp_path / "x").exists()


class TestNoHostChanges:
    """Nothing outside the root can be modified through the mounts (devices, the program, tz).

    The devices are stand-in files here, so even a sandbox bug could not touch the host's.
    """

    @pytest.fixture
    def exe(self, tmp_path: pathlib.Path) -> pathlib.Path:
        prog = tmp_path / "prog"
        prog.write_bytes(b"program bytes")
        prog.chmod(0o755)
        return prog

    @pytest.fixture
    def dev(self, tmp_path: pathlib.Path) -> pathlib.Path:
        folder = tmp_path / "dev"
        folder.mkdir()
        for name in ("null", "zero", "random", "urandom", "tty"):
            (folder / name).write_bytes(b"device stand-in")
            (folder / name).chmod(0o666)
        return folder

    @pytest.fixture
    def g(self, tmp_path: pathlib.Path, exe: pathlib.Path, dev: pathlib.Path) -> Iterator[Guest]:
        root = tmp_path / "root"
        root.mkdir()
        guest = Guest(root, host_dev=bytes(dev))
        guest.linux.fs.exe_host = bytes(exe)
        yield guest
        guest.linux.close()

    def test_metadata_of_mounts_is_untouchable(
        self, g: Guest, exe: pathlib.Path, dev: pathlib.Path
    ) -> None:
        """chmod, chown, truncate, utimensat on /dev/null or /proc/self/exe are refused."""
        null = dev / "null"
        before = null.stat()
        for path in ("/dev/null", "/proc/self/exe"):
            assert g.call("fchmodat", AT_FDCWD, g.s(path), 0) == -errno.EACCES
            assert g.call("fchownat", AT_FDCWD, g.s(path), 123, 123, 0) == -errno.EACCES
            assert g.call("truncate", g.s(path), 0) == -errno.EACCES
            assert g.call("utimensat", AT_FDCWD, g.s(path), 0, 0) == -errno.EACCES
        fd = g.open("/dev/null", O_RDWR)
        assert g.call("fchmod", fd, 0) == -errno.EACCES
        for std in (0, 1, 2):  # the host's stdio lies outside the root too
            assert g.call("fchmod", std, 0) == -errno.EACCES
            assert g.call("fchown", std, 123, 123) == -errno.EACCES
        assert g.call("ftruncate", fd, 0) == -errno.EACCES
        assert g.open("/proc/self/exe", O_TRUNC) == -errno.ETXTBSY
        assert g.open("/proc/self/exe", O_WRONLY) == -errno.ETXTBSY
        exe_fd = g.open("/proc/self/exe")
        assert g.call("fchmod", exe_fd, 0) == -errno.EACCES
        after = null.stat()
        assert (after.st_mode, after.st_uid, after.st_mtime_ns) == (
            before.st_mode,
            before.st_uid,
            before.st_mtime_ns,
        )
        assert null.read_bytes() == b"device stand-in"
        assert exe.read_bytes() == b"program bytes"
        assert exe.stat().st_mode & 0o777 == 0o755

    def test_mounts_cannot_be_moved_linked_or_removed(
        self, g: Guest, exe: pathlib.Path, dev: pathlib.Path
    ) -> None:
        """rename, link, unlink and mkdir over mounts fail; the host files stay where they are."""
        assert g.call("renameat", AT_FDCWD, g.s("/dev/null"), AT_FDCWD, g.s("/n")) == -errno.EXDEV
        assert g.call("renameat", AT_FDCWD, g.s("/proc/self/exe"), AT_FDCWD, g.s("/p")) < 0
        assert g.call("linkat", AT_FDCWD, g.s("/proc/self/exe"), AT_FDCWD, g.s("/l"), 0) < 0
        assert g.call("unlinkat", AT_FDCWD, g.s("/dev/null"), 0) == -errno.EACCES
        assert g.call("mkdirat", AT_FDCWD, g.s("/dev/null"), 0o755) == -errno.EEXIST
        assert g.call("renameat", AT_FDCWD, g.s("/tmp"), AT_FDCWD, g.s("/t")) == -errno.EBUSY
        assert (dev / "null").exists()
        assert exe.exists()

    @pytest.mark.skipif(
        not os.path.exists("/usr/share/zoneinfo/UTC"), reason="no time-zone data on this host"
    )
    def test_time_zone_data_read_only(self, g: Guest) -> None:
        """The host's zoneinfo is readable (TZ works) and cannot be written."""
        fd = g.open("/usr/share/zoneinfo/UTC")
        assert g.call("read", fd, BUF, 4) == 4
        assert g.read(BUF, 4) == b"TZif"
        assert g.open("/usr/share/zoneinfo/UTC", O_WRONLY) == -errno.EROFS
        assert g.call("unlinkat", AT_FDCWD, g.s("/usr/share/zoneinfo/UTC"), 0) == -errno.EROFS
        assert g.call("fchmodat", AT_FDCWD, g.s("/usr/share/zoneinfo/UTC"), 0) == -errno.EROFS


class TestVirtualFiles:
    def test_private_tmp(self, guest: Guest, tmp_path: pathlib.Path) -> None:
        """/tmp is a private writable directory outside the root, removed at close."""
        fd = guest.open("/tmp/f", O_RDWR | O_CREAT)
        assert fd >= 0
        private = guest.linux.fs.private_tmp
        assert private is not None
        assert os.path.exists(os.path.join(private, b"f"))
        assert not (tmp_path / "root" / "tmp").exists()
        guest.linux.close()
        assert not os.path.exists(private)

    def test_roots_own_tmp(self, tmp_path: pathlib.Path) -> None:
        """When the root has a tmp directory, /tmp is that directory."""
        (tmp_path / "tmp").mkdir()
        g = Guest(tmp_path)
        assert g.open("/tmp/mine", O_WRONLY | O_CREAT) >= 0
        assert (tmp_path / "tmp" / "mine").exists()
        g.linux.close()

    def test_tmp_symlink_is_not_followed_out(self, tmp_path: pathlib.Path) -> None:
        """A root whose tmp is a symlink out of it gets a private /tmp instead."""
        outside = tmp_path / "outside"
        outside.mkdir()
        root = tmp_path / "root"
        root.mkdir()
        (root / "tmp").symlink_to(outside)
        g = Guest(root)
        assert g.open("/tmp/f", O_WRONLY | O_CREAT) >= 0
        assert not (outside / "f").exists()
        g.linux.close()

    def test_dev_files(self, guest: Guest) -> None:
        """/dev/null swallows writes and reads EOF; /dev/zero reads zeros; /dev/urandom bytes."""
        null = guest.open("/dev/null", O_RDWR)
        assert guest.call("write", null, BUF, 100) == 100
        assert guest.call("read", null, BUF, 100) == 0
        zero = guest.open("/dev/zero")
        guest.m.memory.write_bytes(BUF, b"\xff" * 64)
        assert guest.call("read", zero, BUF, 64) == 64
        assert guest.read(BUF, 64) == bytes(64)
        rnd = guest.open("/dev/urandom")
        assert guest.call("read", rnd, BUF, 32) == 32
        assert guest.open("/dev/sda") == -errno.ENOENT
        assert guest.open("/proc/self/maps") == -errno.ENOENT

    def test_std_aliases(self, tmp_path: pathlib.Path) -> None:
        """/dev/stdout, /dev/fd/N and /proc/self/fd/N reopen the file behind the guest's fds."""
        out = tmp_path / "out"
        with open(out, "wb") as fh:
            g = Guest(tmp_path, stdio=(0, fh.fileno(), 2))
            for path in ("/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"):
                fd = g.open(path, O_WRONLY | 0o2000)  # O_APPEND
                assert fd >= 3
                g.m.memory.write_bytes(BUF, path.encode() + b"\n")
                assert g.call("write", fd, BUF, len(path) + 1) == len(path) + 1
            assert g.open("/dev/fd/9") == -errno.ENOENT
            assert g.call("faccessat", AT_FDCWD, g.s("/dev/stderr"), 2) == 0
            assert g.call("newfstatat", AT_FDCWD, g.s("/dev/stdout"), BUF, 0) == 0
            assert struct.unpack_from("<Q", g.read(BUF, 16), 8)[0] == os.fstat(fh.fileno()).st_ino
            # Without O_APPEND a reopened regular file has its own offset, starting at 0.
            fd = g.open("/dev/stdout", O_WRONLY)
            g.m.memory.write_bytes(BUF, b"#")
            assert g.call("write", fd, BUF, 1) == 1
            g.linux.close()
        assert out.read_bytes() == b"#dev/stdout\n/dev/fd/1\n/proc/self/fd/1\n"

    def test_dev_listing(self, guest: Guest) -> None:
        """/dev is a directory listing exactly the provided devices."""
        fd = guest.open("/dev", O_DIRECTORY)
        n = guest.call("getdents64", fd, BUF, 4096)
        raw = guest.read(BUF, n)
        for name in (b"null", b"zero", b"urandom"):
            assert name + b"\0" in raw


class TestMemorySyscalls:
    def test_brk(self, guest: Guest) -> None:
        """brk(0) reports the break; growing maps usable memory."""
        start = guest.call("brk", 0)
        assert start == 0x200000
        assert guest.call("brk", start + 10000) == start + 10000
        guest.m.memory.store(start + 9000, 8, 42)
        assert guest.m.memory.load(start + 9000, 8) == 42

    def test_mmap_munmap_mprotect(self, guest: Guest) -> None:
        """Anonymous mmap returns zeroed memory; mprotect and munmap change access."""
        addr = guest.call("mmap", 0, 8192, PERM_R | PERM_W, 0x22, -1, 0)
        assert addr > 0
        assert addr % 4096 == 0
        assert guest.read(addr, 8192) == bytes(8192)
        assert guest.call("mprotect", addr, 4096, PERM_R) == 0
        assert guest.m.memory.perms_at(addr) == PERM_R
        assert guest.call("munmap", addr, 8192) == 0
        assert not guest.m.memory.is_mapped(addr)
        assert guest.call("mprotect", addr, 4096, PERM_R) == -errno.ENOMEM
        assert guest.call("mmap", 0, 0, 3, 0x22, -1, 0) == -errno.EINVAL
        assert guest.call("munmap", addr + 1, 10) == -errno.EINVAL

    def test_file_mmap(self, guest: Guest) -> None:
        """A private file mapping holds the file's bytes."""
        fd = guest.open("/data.txt")
        addr = guest.call("mmap", 0, 4096, PERM_R, 0x2, fd, 0)
        assert guest.read(addr, 16) == b"0123456789abcdef"
        assert guest.read(addr + 16, 16) == bytes(16)

    def test_mremap_moves_contents(self, guest: Guest) -> None:
        """mremap with MREMAP_MAYMOVE keeps the contents."""
        addr = guest.call("mmap", 0, 4096, 3, 0x22, -1, 0)
        guest.m.memory.write_bytes(addr, b"keep")
        new = guest.call("mremap", addr, 4096, 1 << 20, 1)
        assert new > 0
        assert guest.read(new, 4) == b"keep"


class TestProcessAndSignals:
    def test_exit(self, guest: Guest) -> None:
        """exit_group raises GuestExit with the low 8 bits of the status."""
        with pytest.raises(GuestExit) as info:
            guest.call("exit_group", 256 + 3)
        assert info.value.status == 3

    def test_abort_path(self, guest: Guest) -> None:
        """tgkill(self, SIGABRT) with the default action kills the guest with SIGABRT (134)."""
        pid = guest.call("getpid")
        tid = guest.call("gettid")
        with pytest.raises(GuestSignal) as info:
            guest.call("tgkill", pid, tid, int(signal.SIGABRT))
        assert info.value.exit_status == 134

    def test_ignored_and_harmless_signals(self, guest: Guest) -> None:
        """SIG_IGN handlers, default-ignored signals and signal 0 do not kill."""
        pid = guest.call("getpid")
        guest.m.memory.write_bytes(BUF, struct.pack("<QQQ", 1, 0, 0))  # SIG_IGN
        assert guest.call("rt_sigaction", int(signal.SIGTERM), BUF, 0, 8) == 0
        assert guest.call("kill", pid, int(signal.SIGTERM)) == 0
        assert guest.call("kill", pid, int(signal.SIGCHLD)) == 0
        assert guest.call("kill", pid, 0) == 0
        assert guest.call("kill", pid + 1, 9) == -errno.ESRCH

    def test_sigaction_round_trip(self, guest: Guest) -> None:
        """rt_sigaction returns the previous action; SIGKILL cannot be changed."""
        guest.m.memory.write_bytes(BUF, struct.pack("<QQQ", 0x1234, 4, 0))
        assert guest.call("rt_sigaction", 10, BUF, 0, 8) == 0
        assert guest.call("rt_sigaction", 10, 0, BUF + 64, 8) == 0
        assert guest.read(BUF + 64, 24) == struct.pack("<QQQ", 0x1234, 4, 0)
        assert guest.call("rt_sigaction", 9, BUF, 0, 8) == -errno.EINVAL
        assert guest.call("rt_sigaction", 10, BUF, 0, 4) == -errno.EINVAL

    def test_sigprocmask(self, guest: Guest) -> None:
        """A blocked self-signal stays pending and takes effect when rt_sigprocmask unblocks it."""
        abrt = 1 << (int(signal.SIGABRT) - 1)
        guest.m.memory.store(BUF, 8, abrt)
        assert guest.call("rt_sigprocmask", 0, BUF, BUF + 8, 8) == 0
        assert guest.m.memory.load(BUF + 8, 8) == 0
        assert guest.call("kill", guest.call("getpid"), int(signal.SIGABRT)) == 0
        assert guest.linux.pending == abrt
        assert guest.call("rt_sigprocmask", 2, 0, BUF + 8, 8) == 0
        assert guest.m.memory.load(BUF + 8, 8) == abrt
        with pytest.raises(GuestSignal) as info:
            guest.call("rt_sigprocmask", 1, BUF, 0, 8)
        assert info.value.signal == signal.SIGABRT

    def test_handler_frame_and_sigreturn(self, guest: Guest) -> None:
        """A handler gets a0=sig, a1=siginfo, ra=trampoline; rt_sigreturn restores registers."""
        mem = guest.m.memory
        stack = 0x300000
        mem.map(stack - 0x10000, 0x10000, PERM_R | PERM_W)
        hart = guest.m.hart
        mem.write_bytes(BUF, struct.pack("<QQQ", 0x5000, 0, 0))  # handler at 0x5000
        assert guest.call("rt_sigaction", int(signal.SIGUSR1), BUF, 0, 8) == 0
        for i in range(1, 32):
            hart.x[i] = 1000 + i
        hart.x[2] = stack - 64
        hart.f[3] = 0x4008000000000000
        hart.pc = 0x1230
        pid = guest.linux.pid
        x = hart.x
        x[17] = SYSCALL_NUMBERS["tgkill"]
        x[10], x[11], x[12] = pid, pid, int(signal.SIGUSR1)
        guest.m.syscall()
        assert hart.pc == 0x5000
        assert x[10] == signal.SIGUSR1
        assert mem.load(x[11], 4) == signal.SIGUSR1
        assert x[2] % 16 == 0
        assert x[2] < stack - 64
        assert mem.fetch(x[1], 4) == 0x08B00893  # li a7, 139
        assert guest.linux.sigmask == 1 << (int(signal.SIGUSR1) - 1)
        # The handler clobbers registers, then returns through the trampoline's rt_sigreturn.
        x[5] = 0
        hart.f[3] = 0
        x[17] = SYSCALL_NUMBERS["rt_sigreturn"]
        guest.m.syscall()
        assert hart.pc == 0x1234
        assert x[10] == 0  # tgkill's result
        assert x[5] == 1005
        assert x[2] == stack - 64
        assert hart.f[3] == 0x4008000000000000
        assert guest.linux.sigmask == 0

    def test_fault_delivery(self, guest: Guest) -> None:
        """A SIGSEGV with a handler enters it with si_addr; sigreturn resumes at the faulting pc."""
        from vmkit.async_executor.errors import SegmentationFault

        mem = guest.m.memory
        mem.map(0x300000 - 0x10000, 0x10000, PERM_R | PERM_W)
        hart = guest.m.hart
        hart.x[2] = 0x300000 - 32
        fault = SegmentationFault(0xDEAD0000, "write", "unmapped", pc=0x1500)
        assert not guest.m.deliver_fault(fault)
        mem.write_bytes(BUF, struct.pack("<QQQ", 0x6000, 4, 0))  # SA_SIGINFO handler
        assert guest.call("rt_sigaction", int(signal.SIGSEGV), BUF, 0, 8) == 0
        assert guest.m.deliver_fault(fault)
        assert hart.pc == 0x6000
        assert hart.x[10] == signal.SIGSEGV
        signo, _, code, _, addr = struct.unpack("<iiiiQ", mem.read_bytes(hart.x[11], 24))
        assert (signo, code, addr) == (signal.SIGSEGV, 1, 0xDEAD0000)
        hart.x[17] = SYSCALL_NUMBERS["rt_sigreturn"]
        guest.m.syscall()
        assert hart.pc == 0x1500
        assert hart.x[2] == 0x300000 - 32

    def test_futex(self, guest: Guest) -> None:
        """FUTEX_WAIT on a changed word is EAGAIN; FUTEX_WAKE wakes nobody."""
        guest.m.memory.store(BUF, 4, 5)
        assert guest.call("futex", BUF, 0 | 128, 4) == -errno.EAGAIN
        assert guest.call("futex", BUF, 1 | 128, 1) == 0

    def test_ids_and_misc(self, guest: Guest) -> None:
        """Identity syscalls agree with the host; set_tid_address returns the tid."""
        assert guest.call("getuid") == os.getuid()
        assert guest.call("getegid") == os.getegid()
        assert guest.call("set_tid_address", BUF) == guest.call("gettid")
        assert guest.call("set_robust_list", BUF, 24) == 0
        assert guest.call("sched_getaffinity", 0, 128, BUF) == 8
        cpus = guest.m.memory.load(BUF, 8)
        assert {i for i in range(64) if cpus >> i & 1} == os.sched_getaffinity(0)

    def test_uname(self, guest: Guest) -> None:
        """uname says Linux on riscv64."""
        assert guest.call("uname", BUF) == 0
        raw = guest.read(BUF, 65 * 6)
        assert raw[:6] == b"Linux\0"
        assert raw[65 * 4 : 65 * 4 + 8] == b"riscv64\0"

    def test_sysinfo_reports_host_memory(self, guest: Guest) -> None:
        """sysinfo's totalram (mem_unit 1) is the host's physical memory, as under qemu-user."""
        assert guest.call("sysinfo", BUF) == 0
        raw = guest.read(BUF, 112)
        total = struct.unpack_from("<Q", raw, 32)[0]
        assert total == os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        assert struct.unpack_from("<I", raw, 104)[0] == 1

    def test_clock_gettime(self, guest: Guest) -> None:
        """clock_gettime(MONOTONIC) never goes backwards; bad clocks are EINVAL."""
        guest.call("clock_gettime", 1, BUF)
        first = struct.unpack("<qq", guest.read(BUF, 16))
        guest.call("clock_gettime", 1, BUF)
        second = struct.unpack("<qq", guest.read(BUF, 16))
        assert second >= first
        assert guest.call("clock_gettime", 99, BUF) == -errno.EINVAL

    def test_prlimit_stack(self, guest: Guest) -> None:
        """prlimit64 reports an 8 MiB stack limit."""
        assert guest.call("prlimit64", 0, 3, 0, BUF) == 0
        assert guest.m.memory.load(BUF, 8) == 8 << 20

    def test_getrandom(self, guest: Guest) -> None:
        """getrandom fills the buffer."""
        assert guest.call("getrandom", BUF, 64, 0) == 64

    def test_prctl_name(self, guest: Guest) -> None:
        """PR_SET_NAME then PR_GET_NAME round-trips (truncated to 15 bytes)."""
        assert guest.call("prctl", 15, guest.s("a-very-long-thread-name")) == 0
        assert guest.call("prctl", 16, BUF) == 0
        assert guest.read(BUF, 16) == b"a-very-long-thr\0"
        assert guest.call("prctl", 9999, 0) == -errno.EINVAL

    def test_credentials(self, guest: Guest) -> None:
        """getresuid/getgroups report the host's identity; wait4 has no children to wait for."""
        assert guest.call("getresuid", BUF, BUF + 4, BUF + 8) == 0
        assert struct.unpack("<III", guest.read(BUF, 12))[0] == os.getuid()
        assert guest.call("getgroups", 0, 0) == len(os.getgroups())
        assert guest.call("wait4", -1, 0, 0, 0) == -errno.ECHILD

    def test_ppoll(self, guest: Guest) -> None:
        """ppoll reports a readable pipe and a writable file, with a zero timeout."""
        guest.call("pipe2", BUF, 0)
        rfd, wfd = struct.unpack("<ii", guest.read(BUF, 8))
        guest.m.memory.write_bytes(BUF + 64, struct.pack("<qq", 0, 0))
        guest.m.memory.write_bytes(BUF + 16, struct.pack("<ihhihh", rfd, 1, 0, wfd, 4, 0))
        assert guest.call("ppoll", BUF + 16, 2, BUF + 64, 0, 8) == 1
        assert struct.unpack("<ihhihh", guest.read(BUF + 16, 16))[2::3] == (0, 4)
        guest.call("write", wfd, BUF, 1)
        assert guest.call("ppoll", BUF + 16, 2, BUF + 64, 0, 8) == 2

    def test_utimensat(self, guest: Guest, tmp_path: pathlib.Path) -> None:
        """utimensat sets the modification time given in nanoseconds."""
        guest.m.memory.write_bytes(BUF, struct.pack("<qqqq", 0, (1 << 30) - 2, 1_000_000, 5))
        assert guest.call("utimensat", AT_FDCWD, guest.s("/data.txt"), BUF, 0) == 0
        assert os.stat(tmp_path / "root" / "data.txt").st_mtime_ns == 1_000_000 * 10**9 + 5

    def test_unknown_syscall_warns_once(self, guest: Guest) -> None:
        """An unknown syscall is ENOSYS with one structured warning per number."""
        x = guest.m.hart.x
        with capture_events() as logs:
            for _ in range(3):
                x[17] = 4000
                guest.m.syscall()
                assert x[10] == 2**64 - errno.ENOSYS
        warnings = [e for e in logs if e["event"] == "unsupported_syscall"]
        assert len(warnings) == 1
        assert warnings[0]["number"] == 4000
