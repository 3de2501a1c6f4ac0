"""A key private to the user, and the HMAC that makes a code cache unforgeable.

Design note
-----------
A code cache holds marshalled code objects that the JIT calls, so a cache file is code. A plain
checksum only catches accidents: anyone able to write the file can recompute it. So caches are
authenticated with HMAC-SHA256 under a 32-byte secret kept in the user's configuration directory
(``$XDG_CONFIG_HOME/vmkit/code-cache.key``, else ``~/.config/vmkit/code-cache.key``), created on
first use with mode 0600 in a 0700 directory. The trust model:

* a cache runs only if it was written with this user's key: a cache from another user, another
  machine, or edited by anyone without the key is refused before a single byte is unmarshalled;
* the key is refused (and caches with it) when it is not a regular file owned by the user, or
  group or others may read or write it or its directory: a secret others can read is no secret;
* a cache file others can write is refused too, even with a valid MAC, and so is anything that
  is not a regular file (a FIFO or ``/dev/zero`` would block or read forever).

``VMKIT_CODE_CACHE_KEY`` names another key file (for tests and for sharing a key deliberately).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path
from typing import Final

from vmkit.async_executor.errors import AsyncExecutorError

__all__ = ["KEY_BYTES", "CacheTrustError", "key_path", "mac", "open_trusted", "user_key"]

KEY_BYTES: Final = 32
KEY_ENV: Final = "VMKIT_CODE_CACHE_KEY"
#: Largest cache file read (a static libc's full static discovery is about 50 MB).
MAX_CACHE_BYTES: Final = 1 << 30


class CacheTrustError(AsyncExecutorError):
    """A code cache or its key cannot be trusted (the message says which file and why)."""


def key_path() -> Path:
    """Where this user's code-cache key lives."""
    override = os.environ.get(KEY_ENV)
    if override:
        return Path(override)
    config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(config) / "vmkit" / "code-cache.key"


def _check_private(st: os.stat_result, path: Path, what: str) -> None:
    if st.st_uid != os.geteuid():
        raise CacheTrustError(f"{path}: the {what} is not owned by this user")
    if st.st_mode & 0o077:
        raise CacheTrustError(
            f"{path}: the {what} is accessible to group or others "
            f"(mode {stat.S_IMODE(st.st_mode):o}; it must be private to the user, 0600/0700)"
        )


def user_key(*, create: bool = True) -> bytes:
    """This user's secret (made on first use when ``create``).

    Raises:
        CacheTrustError: the key or its directory is not private to the user, or it is malformed.
    """
    path = key_path()
    if create and not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            pass  # another process made it meanwhile: read theirs
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(os.urandom(KEY_BYTES))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise CacheTrustError(f"{path}: cannot read the code-cache key: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CacheTrustError(f"{path}: the code-cache key is not a regular file")
        _check_private(st, path, "code-cache key")
        _check_private(os.stat(path.parent), path.parent, "code-cache key's directory")
        key = os.read(fd, KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(key) != KEY_BYTES:
        raise CacheTrustError(f"{path}: the code-cache key is malformed (not {KEY_BYTES} bytes)")
    return key


def mac(key: bytes, tag: bytes, payload: bytes) -> bytes:
    """HMAC-SHA256 over the format tag and the payload."""
    return hmac.new(key, tag + payload, hashlib.sha256).digest()


def open_trusted(path: str | os.PathLike[str], *, dir_fd: int | None = None) -> bytes:
    """The bytes of the cache file at ``path``, if it may be trusted as a file: a regular file,
    owned by the user, not writable by group or others, at most MAX_CACHE_BYTES.

    With ``dir_fd``, ``path`` is a name inside that (already checked) directory and a symbolic
    link there is refused rather than followed: an entry of a cache directory never leads out of it.

    Raises:
        CacheTrustError: with the reason.
        OSError: it cannot be opened or read.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
    if dir_fd is not None:
        flags |= os.O_NOFOLLOW
    fd = os.open(path, flags, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CacheTrustError(f"{os.fspath(path)}: not a regular file")
        if st.st_uid != os.geteuid():
            raise CacheTrustError(f"{os.fspath(path)}: owned by another user")
        if st.st_mode & 0o022:
            raise CacheTrustError(
                f"{os.fspath(path)}: writable by group or others "
                f"(mode {stat.S_IMODE(st.st_mode):o}); anyone could replace its code"
            )
        if st.st_size > MAX_CACHE_BYTES:
            raise CacheTrustError(f"{os.fspath(path)}: {st.st_size} bytes is too large")
        chunks: list[bytes] = []
        left = MAX_CACHE_BYTES + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 22))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_CACHE_BYTES:
        raise CacheTrustError(f"{os.fspath(path)}: grew too large while being read")
    return data
