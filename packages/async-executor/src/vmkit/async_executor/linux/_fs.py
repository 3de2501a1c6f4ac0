"""The guest's view of the file system: a guest root, a few virtual mounts, open file descriptions.

Design notes
------------
* The guest sees a chroot-like tree: guest ``/`` is the host directory given as the guest root
  (the current directory by default). Paths are resolved here, component by component, in guest
  space: ``.`` and ``..`` are applied to the guest path (``..`` at ``/`` stays at ``/``, as in a
  chroot), absolute paths start at the guest root, and every symbolic link met on the way is read
  and its target resolved in guest space too (an absolute target starts at the guest root). So no
  spelling of a path reaches outside the root, and a missing file gives ENOENT exactly as it would
  inside a chroot. At most 40 links are followed (ELOOP), as Linux does.
* What programs take for granted is mounted over the root: ``/tmp`` (the root's own ``tmp``
  directory when it has one, otherwise a private scratch directory deleted by :meth:`close`),
  ``/dev`` with ``null``, ``zero``, ``random``, ``urandom``, ``tty`` (the host's devices) and
  ``stdin``, ``stdout``, ``stderr``, ``fd/N`` (the guest's own descriptors, as are
  ``/proc/self/fd/N``), ``/proc/self/exe`` (the program being run) and, read-only, the host's
  time-zone data (``/etc/localtime``, ``/usr/share/zoneinfo``) so ``localtime()`` and ``TZ``
  work as under qemu-riscv64. Nothing outside the root can be created, removed, renamed,
  linked to, truncated or have its metadata changed.
* Host errno values are passed through unchanged: the host is Linux, whose errno numbers are the
  generic ones riscv64 uses.
* Paths stay ``bytes`` end to end (the guest gives bytes, ``os`` accepts bytes), so no encoding
  can mangle a name.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
from collections.abc import Callable
from typing import Final

from vmkit.async_executor._record import Record

__all__ = [
    "DEVICES",
    "TMP_PREFIX",
    "GuestFS",
    "OpenFile",
    "Resolved",
    "host_getdents64",
    "reclaim_abandoned_tmp",
]

#: Devices under the guest's /dev, backed by the host's.
DEVICES = (b"full", b"null", b"random", b"tty", b"urandom", b"zero")
#: /dev names that stand for the guest's own standard descriptors.
STD_ALIASES = {b"stdin": 0, b"stdout": 1, b"stderr": 2}
MAX_SYMLINKS = 40


class Resolved(Record):
    """A guest path after resolution.

    ``host`` is the host path to operate on, or None for a node without one; ``virtual`` is None
    for an ordinary path inside the guest root, and otherwise names the mount: ``"devdir"`` (the
    /dev directory), ``"dev"`` (a host device), ``"exe"`` (/proc/self/exe), ``"ro"`` (the host's
    time-zone data, read-only), ``"fd:N"`` (the guest's own fd N: /dev/stdin, /dev/stdout,
    /dev/stderr, /dev/fd/N, /proc/self/fd/N) or ``"missing"`` (a virtual path that does not
    exist, ENOENT). Only ordinary paths may be created, removed, renamed, linked or have their
    metadata changed.
    """

    __slots__ = ("guest", "host", "virtual")
    guest: bytes
    host: bytes | None
    virtual: str | None

    def __init__(self, guest: bytes, host: bytes | None, virtual: str | None = None) -> None:
        self.guest = guest
        self.host = host
        self.virtual = virtual


class OpenFile(Record):
    """An open file description, shared by every guest fd that dup() made from it."""

    __slots__ = (
        "host_fd",
        "guest_path",
        "owned",
        "flags",
        "is_dir",
        "dir_entries",
        "dir_pos",
        "virtual",
        "refs",
        "host_path",
        "extra",
        "mutable",
        "origin",
    )
    host_fd: int | None
    guest_path: bytes
    #: Whether closing the last guest fd closes ``host_fd`` (not for the host's stdio).
    owned: bool
    #: O_APPEND / O_NONBLOCK / access mode as the guest opened it (for F_GETFL).
    flags: int
    is_dir: bool
    #: Directory listing for getdents64, taken at the first call; ``dir_pos`` indexes it.
    dir_entries: list[tuple[bytes, int, int]] | None
    dir_pos: int
    virtual: str | None
    refs: int
    #: Host path (directories: for listing).
    host_path: bytes | None
    extra: dict[str, object]
    #: Whether fchmod/fchown/ftruncate/futimens may change it: not for devices, the program
    #: itself or read-only host data, which live outside the guest root.
    mutable: bool
    #: The mount it was opened from (``Resolved.virtual``: "dev", "exe", "ro"), None inside the
    #: root or for a pipe or the inherited stdio.
    origin: str | None

    def __init__(
        self,
        host_fd: int | None,
        guest_path: bytes,
        owned: bool = True,
        flags: int = 0,
        is_dir: bool = False,
        dir_entries: list[tuple[bytes, int, int]] | None = None,
        dir_pos: int = 0,
        virtual: str | None = None,
        refs: int = 1,
        host_path: bytes | None = None,
        extra: dict[str, object] | None = None,
        mutable: bool = True,
        origin: str | None = None,
    ) -> None:
        self.host_fd = host_fd
        self.guest_path = guest_path
        self.owned = owned
        self.flags = flags
        self.is_dir = is_dir
        self.dir_entries = dir_entries
        self.dir_pos = dir_pos
        self.virtual = virtual
        self.refs = refs
        self.host_path = host_path
        self.extra = {} if extra is None else extra
        self.mutable = mutable
        self.origin = origin


# getdents64 by host architecture: os has no binding, and the raw records (whose layout is the same
# on every Linux architecture) let directory listings come out exactly as qemu-user passes them.
_GETDENTS64_BY_MACHINE: Final = {"x86_64": 217, "aarch64": 61, "riscv64": 61, "loongarch64": 61}
_getdents64: Callable[[int, int], bytes] | None = None
_getdents64_probed = False


def _bind_getdents64() -> Callable[[int, int], bytes] | None:
    """The host's getdents64 through libc's syscall(), or None; bound on first use because
    ctypes costs a few milliseconds of every start-up that lists no directory."""
    global _getdents64, _getdents64_probed
    if _getdents64_probed:
        return _getdents64
    _getdents64_probed = True
    number = _GETDENTS64_BY_MACHINE.get(os.uname().machine)
    if number is None or os.name != "posix":
        return None
    import ctypes

    try:
        syscall = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    syscall.restype = ctypes.c_long

    def getdents64(fd: int, count: int) -> bytes:
        buf = ctypes.create_string_buffer(count)
        n = syscall(ctypes.c_long(number), ctypes.c_long(fd), buf, ctypes.c_long(count))
        if n < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return buf.raw[:n]

    _getdents64 = getdents64
    return getdents64


def _remove_tree(folder: bytes) -> None:
    """Delete ``folder`` and what it holds, ignoring errors; an empty one (the usual private /tmp)
    goes without importing shutil, which would cost every start-up a few milliseconds."""
    try:
        os.rmdir(folder)
    except OSError:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)


def host_getdents64(fd: int, count: int) -> bytes | None:
    """Raw ``linux_dirent64`` records from the host directory ``fd``; None when unavailable."""
    getdents64 = _bind_getdents64()
    if getdents64 is None:
        return None
    return getdents64(fd, count)


def _split(path: bytes) -> list[bytes]:
    return [c for c in path.split(b"/") if c and c != b"."]


TMP_PREFIX: Final = "async-executor-tmp-"
_LOCK_SUFFIX: Final = b".lock"


def reclaim_abandoned_tmp(parent: str | None = None) -> list[str]:
    """Delete the private /tmp directories of runs that died without cleaning up (SIGKILL, a
    power cut): each live run holds an flock on ``<dir>.lock``; a lock this process can take
    belongs to nobody. Only this user's directories, never a symlink. Returns what was removed."""
    import tempfile  # only when a guest first uses /tmp: start-up does not pay for it

    parent = parent if parent is not None else tempfile.gettempdir()
    removed: list[str] = []
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(TMP_PREFIX) and name.endswith(".lock")):
            continue
        lock_path = os.path.join(parent, name)
        folder = lock_path[: -len(".lock")]
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            if os.fstat(fd).st_uid != os.geteuid():
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a live run holds it
            if os.path.isdir(folder) and not os.path.islink(folder):
                _remove_tree(os.fsencode(folder))
                removed.append(folder)
            os.unlink(lock_path)
        finally:
            os.close(fd)
    return removed


class GuestFS:
    """Path resolution inside the guest root, and the virtual mounts."""

    def __init__(
        self,
        root: str | os.PathLike[str] = ".",
        *,
        exe_host: bytes | None = None,
        exe_guest: bytes | None = None,
        host_dev: bytes = b"/dev",
        host_ro: bytes = b"/",
    ) -> None:
        real = os.path.realpath(os.fsencode(root))
        if not os.path.isdir(real):
            raise NotADirectoryError(f"guest root {os.fsdecode(real)!r} is not a directory")
        self.root: bytes = real
        self.cwd: bytes = b"/"
        self.exe_host = exe_host
        self.exe_guest = exe_guest if exe_guest is not None else b"/program"
        #: Host directory holding the devices (tests point it at stand-ins).
        self.host_dev = host_dev
        #: Host directory under which the read-only time-zone data (etc/localtime,
        #: usr/share/zoneinfo) is found: the host's root, or a stand-in in tests.
        self.host_ro = host_ro
        tmp = os.path.join(real, b"tmp")
        # A tmp symlink (often to the host's /tmp) would point outside: mount a private one.
        self._own_tmp = os.path.islink(tmp) or not os.path.isdir(tmp)
        self._private_tmp: bytes | None = None
        self._tmp_lock: int | None = None

    # ------------------------------------------------------------------ lifetime

    @property
    def private_tmp(self) -> bytes | None:
        """The private /tmp scratch directory, if one was created."""
        return self._private_tmp

    def close(self) -> None:
        """Delete the private /tmp, if one was created."""
        if self._private_tmp is not None:
            _remove_tree(self._private_tmp)
            with contextlib.suppress(OSError):
                os.unlink(self._private_tmp + _LOCK_SUFFIX)
            self._private_tmp = None
        if self._tmp_lock is not None:
            os.close(self._tmp_lock)  # releases the flock
            self._tmp_lock = None

    def _tmp(self) -> bytes:
        if self._private_tmp is None:
            import tempfile

            reclaim_abandoned_tmp()
            tmp = os.fsencode(tempfile.mkdtemp(prefix=TMP_PREFIX))
            # A lock held for as long as this run lives, beside the directory (the guest sees
            # only the directory): a later run that can take it knows the owner died.
            lock = os.open(tmp + _LOCK_SUFFIX, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._private_tmp, self._tmp_lock = tmp, lock
        return self._private_tmp

    # ------------------------------------------------------------------ mounts

    def host_of(self, parts: list[bytes]) -> Resolved:  # noqa: PLR0911 - one return per virtual mount
        """Where the normalised guest path ``/parts...`` lives."""
        guest = b"/" + b"/".join(parts)
        if not parts:
            return Resolved(guest, self.root)
        head = parts[0]
        if head == b"tmp" and self._own_tmp:
            return Resolved(
                guest, os.path.join(self._tmp(), *parts[1:]) if parts[1:] else self._tmp()
            )
        if head == b"dev":
            if len(parts) == 1:
                return Resolved(guest, None, "devdir")
            if len(parts) == 2 and parts[1] in DEVICES:
                return Resolved(guest, os.path.join(self.host_dev, parts[1]), "dev")
            if len(parts) == 2 and parts[1] in STD_ALIASES:
                return Resolved(guest, None, f"fd:{STD_ALIASES[parts[1]]}")
            if len(parts) == 3 and parts[1] == b"fd" and parts[2].isdigit():
                return Resolved(guest, None, f"fd:{int(parts[2])}")
            return Resolved(guest, None, "missing")
        if head == b"proc":
            if parts == [b"proc", b"self", b"exe"] and self.exe_host is not None:
                return Resolved(guest, self.exe_host, "exe")
            if len(parts) == 4 and parts[1:3] == [b"self", b"fd"] and parts[3].isdigit():
                return Resolved(guest, None, f"fd:{int(parts[3])}")
            return Resolved(guest, None, "missing")
        if parts == [b"etc", b"localtime"] or parts[:3] == [b"usr", b"share", b"zoneinfo"]:
            host = os.path.join(self.host_ro, *parts)
            if os.path.exists(host):
                return Resolved(guest, host, "ro")
        return Resolved(guest, os.path.join(self.root, *parts))

    # ------------------------------------------------------------------ resolution

    def resolve(self, path: bytes, base: bytes | None = None, *, follow: bool = True) -> Resolved:
        """Resolve guest ``path`` relative to the guest directory ``base`` (default: the cwd).

        ``follow=False`` leaves a symbolic link in the last component unresolved (lstat, unlink,
        readlink, O_NOFOLLOW). Raises OSError(ENOENT) for an empty path and OSError(ELOOP) for
        too many links; other errors surface when the host operation runs.
        """
        if not path:
            raise OSError(errno.ENOENT, "empty path")
        parts = [] if path.startswith(b"/") else _split(base if base is not None else self.cwd)
        pending = path.split(b"/")
        links = 0
        while pending:
            comp = pending.pop(0)
            if comp in (b"", b"."):
                continue
            if comp == b"..":
                if parts:
                    parts.pop()
                continue
            parts.append(comp)
            last = not any(c not in (b"", b".") for c in pending)
            if last and not follow:
                continue
            res = self.host_of(parts)
            if res.host is None or res.virtual is not None:
                continue
            try:
                st = os.lstat(res.host)
            except OSError:
                continue
            if not stat.S_ISLNK(st.st_mode):
                continue
            links += 1
            if links > MAX_SYMLINKS:
                raise OSError(errno.ELOOP, "too many levels of symbolic links")
            target = os.readlink(res.host)
            parts.pop()
            if target.startswith(b"/"):
                parts = []
            pending = target.split(b"/") + pending
        return self.host_of(parts)

    def chdir(self, path: bytes) -> None:
        """Change the guest cwd; OSError(ENOENT/ENOTDIR) as Linux."""
        res = self.resolve(path)
        if res.virtual == "devdir":
            self.cwd = res.guest
            return
        if res.host is None or res.virtual not in (None, "ro"):
            raise OSError(errno.ENOENT, "no such directory")
        st = os.stat(res.host)
        if not stat.S_ISDIR(st.st_mode):
            raise OSError(errno.ENOTDIR, "not a directory")
        self.cwd = res.guest

    def listing(self, res: Resolved) -> list[tuple[bytes, int, int]]:
        """Entries (name, inode, d_type) of a directory: ``.`` and ``..``, then the host's order.

        The host file system's order (what qemu-user passes through) keeps directory listings
        identical to qemu-riscv64's; ``.`` and ``..`` come first, as ext4 and tmpfs return them.
        """
        if res.virtual == "devdir":
            entries = [(b".", 1, 4), (b"..", 2, 4)]
            for i, name in enumerate(DEVICES):
                entries.append((name, 100 + i, 2))  # DT_CHR
            return entries
        assert res.host is not None
        own = os.stat(res.host)
        parent = os.stat(os.path.dirname(res.host.rstrip(b"/")) or b"/")
        entries = [(b".", own.st_ino, 4), (b"..", parent.st_ino, 4)]
        with os.scandir(res.host) as it:
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                    mode = st.st_mode
                    ino = st.st_ino
                except OSError:
                    mode, ino = 0, entry.inode()
                entries.append((entry.name, ino, _dtype(mode)))
        return entries


def _dtype(mode: int) -> int:  # noqa: PLR0911 - one return per file type
    if stat.S_ISDIR(mode):
        return 4
    if stat.S_ISREG(mode):
        return 8
    if stat.S_ISLNK(mode):
        return 10
    if stat.S_ISCHR(mode):
        return 2
    if stat.S_ISBLK(mode):
        return 6
    if stat.S_ISFIFO(mode):
        return 1
    if stat.S_ISSOCK(mode):
        return 12
    return 0
