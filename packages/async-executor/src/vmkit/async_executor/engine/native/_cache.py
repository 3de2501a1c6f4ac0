"""The native tier's on-disk code cache: compiled regions kept across runs.

Design note
-----------
A region is compiled to an object file (``_llvm.emit_object``) and linked into the process's
engine (``_llvm.load_object``). The cache keeps those object bytes in a directory, one file per
region, so a warm start links machine code instead of running LLVM (tens of milliseconds per
region). Everything that decides the machine code is part of an entry's key:

* the region itself: its decoder's extensions, and every block's start and end and every
  instruction's pc and raw bits (the guest bytes the region was compiled from, at the addresses
  they were compiled for: pc-relative values are constants in the code). The SHA-256 of these is
  the file name, ``<digest>.region``;
* the host and the compiler (recorded in the entry and compared on every load): LLVM and llvmlite
  versions, target triple and data layout, host CPU name and features,
  :data:`~._ir.NATIVE_TRANSLATOR_VERSION` and a hash of the translator's own sources (``_ir``,
  ``_llvm`` and the decoder), so an edited translator never runs old code even when nobody
  bumped the version.

An entry whose recorded key differs from the one asked for (other guest bytes, another LLVM,
CPU or translator) is ignored with a warning, the region is compiled, and the new code replaces
the entry (the file name does not depend on the host part, so old entries do not pile up).

Trust: linking an object file runs it, so an entry is code, and the cache follows the JIT's code
caches (see ``engine/_signing.py`` and docs/async-executor/cli.md):

* every entry carries an HMAC-SHA256 under the user's private code-cache key, checked before a
  byte of it is parsed: an entry written by anyone without the key, truncated or altered, is
  refused;
* the directory must be owned by the user and not writable by group or others (a directory
  others can write is untrusted: the cache is then not used at all, one warning says why);
  it is opened once and every entry is reached through that descriptor, never following a
  symbolic link, so nothing is read or written outside it;
* an entry must be a regular file owned by the user and not writable by others, as a JIT cache.

Nothing about a bad entry is fatal: it is ignored with one warning (per cache and reason; later
ones are logged at debug level) and the region compiled as if the cache were empty. A directory
that cannot be written is read from, with one warning, and nothing is stored.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import json
import math
import os
import stat
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from vmkit.async_executor._logging import get_logger
from vmkit.async_executor.engine._signing import CacheTrustError, mac, open_trusted, user_key
from vmkit.async_executor.engine.native import _ir, _llvm
from vmkit.async_executor.engine.native._ir import (
    NATIVE_TRANSLATOR_VERSION,
    RegionBlock,
    build_region,
)
from vmkit.async_executor.engine.native._llvm import (
    emit_object,
    host_description,
    load_object,
    new_module,
)
from vmkit.async_executor.isa import _decode, _table
from vmkit.async_executor.isa._decode import Decoder

__all__ = [
    "CACHE_ENV",
    "CacheOption",
    "NativeCodeCache",
    "RegionCode",
    "code_fingerprint",
    "default_cache_dir",
    "region_code",
    "region_digest",
    "resolve_cache",
]

_log = get_logger(__name__)

#: A directory for the native code cache, or ``off`` to disable it (the default directory is
#: ``$XDG_CACHE_HOME/vmkit/native``, else ``~/.cache/vmkit/native``).
CACHE_ENV: Final = "VMKIT_NATIVE_CACHE"
_TAG: Final = b"AENATCC1"
_MAC_BYTES: Final = 32
_SUFFIX: Final = ".region"
#: Largest entry read: a region object file is a few kilobytes.
_MAX_ENTRY_BYTES: Final = 1 << 24
_OFF: Final = frozenset({"off", "0", "no", "false", "none"})


def default_cache_dir() -> Path | None:
    """The cache directory ``VMKIT_NATIVE_CACHE`` names, else the user's cache directory's
    ``vmkit/native``; None when ``VMKIT_NATIVE_CACHE`` is ``off``."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env.lower() in _OFF:
        return None
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vmkit" / "native"


def region_digest(blocks: Sequence[RegionBlock], decoder: Decoder) -> bytes:
    """SHA-256 of what a region is compiled from: the decoder's extensions and every block's
    bounds and instructions (pc and raw bits)."""
    h = hashlib.sha256(b"vmkit native region\0")
    h.update(",".join(sorted(decoder.isa.extensions)).encode() + b"\0")
    for start, instrs, end in blocks:
        h.update(struct.pack("<QQQ", start, end, len(instrs)))
        for pc, _instr, raw in instrs:
            h.update(struct.pack("<QQ", pc, raw))
    return h.digest()


@functools.cache
def code_fingerprint() -> dict[str, Any]:
    """The host and compiler part of every entry's key (computed once per process; the
    returned dict is shared, never change it)."""
    sources = hashlib.sha256()
    for module in (_ir, _llvm, _decode, _table):
        try:
            sources.update(Path(module.__file__ or "").read_bytes())
        except OSError:  # no source next to it (a zipped install): its name, and the version
            sources.update(module.__name__.encode())
    return {
        **host_description(),
        "translator": NATIVE_TRANSLATOR_VERSION,
        "sources": sources.hexdigest(),
    }


def _symbol(digest: bytes) -> str:
    # Named by content: two loads of one name in a process are the same machine code.
    return f"region_{digest.hex()[:32]}"


class NativeCodeCache:
    """A directory of compiled regions (see the module's design note for the key and the trust
    model). Opened on first use; safe to share between executors and threads.

    Args:
        directory: where entries live; created (mode 0700) when missing.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._state = "new"
        self._fd = -1
        self._key = b""
        self._writable = True
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        return f"NativeCodeCache({str(self.directory)!r})"

    def __del__(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)

    # ------------------------------------------------------------------ opening

    def usable(self) -> bool:
        """Whether entries can be read (the directory is open and trusted; the first call opens
        it, and warns once when it cannot be used)."""
        if self._state == "new":
            with self._lock:
                if self._state == "new":
                    self._state = self._open()
        return self._state == "open"

    def _open(self) -> str:
        path = self.directory
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            reason = f"cannot open it: {exc.strerror or exc}"
            self._warn("native_code_cache_disabled", reason=reason)
            return "off"
        st = os.fstat(fd)
        problem = None
        if st.st_uid != os.geteuid():
            problem = "owned by another user"
        elif st.st_mode & 0o022:
            problem = (
                f"writable by group or others (mode {stat.S_IMODE(st.st_mode):o}); "
                "anyone could replace its code"
            )
        else:
            try:
                self._key = user_key()
            except CacheTrustError as exc:
                problem = str(exc)
        if problem is not None:
            os.close(fd)
            self._warn("native_code_cache_disabled", reason=problem)
            return "off"
        self._fd = fd
        return "open"

    def _warn(self, event: str, **fields: Any) -> None:
        """Log ``event`` as a warning the first time for each reason, at debug level after."""
        reason = fields.get("reason", "")
        key = f"{event}:{reason.split(':')[0]}"
        log = _log.debug if key in self._warned else _log.warning
        self._warned.add(key)
        log(event, directory=str(self.directory), **fields)

    # ------------------------------------------------------------------ entries

    def ignore(self, digest: bytes, reason: str) -> None:
        """Say that the entry for ``digest`` is not used, and why (one warning per reason)."""
        self._warn("native_code_cache_ignored", entry=digest.hex() + _SUFFIX, reason=reason)

    def load(self, digest: bytes) -> tuple[bytes, float] | None:
        """The object file and recorded compile seconds of the entry for ``digest`` made on
        this host by this compiler; None when missing or unusable (a warning says why)."""
        if not self.usable():
            return None
        try:
            data = open_trusted(digest.hex() + _SUFFIX, dir_fd=self._fd)
        except FileNotFoundError:
            return None
        except CacheTrustError as exc:
            self.ignore(digest, str(exc).rpartition(": ")[2] or str(exc))
            return None
        except OSError as exc:  # ELOOP: a symbolic link where an entry should be
            self.ignore(digest, f"unreadable ({exc.strerror or exc})")
            return None
        return self._parse(digest, data)

    def _parse(self, digest: bytes, data: bytes) -> tuple[bytes, float] | None:  # noqa: PLR0911 - one return per reason an entry is refused
        head = len(_TAG) + _MAC_BYTES
        if len(data) > _MAX_ENTRY_BYTES:
            self.ignore(digest, "too large")
            return None
        if not data.startswith(_TAG) or len(data) < head + 4:
            self.ignore(digest, "not a native cache entry (truncated or another format)")
            return None
        payload = data[head:]
        if not hmac.compare_digest(mac(self._key, _TAG, payload), data[len(_TAG) : head]):
            self.ignore(
                digest, "not written with this user's key, or altered or truncated since: refused"
            )
            return None
        # Authenticated: this user's cache wrote it. The checks below catch entries that are
        # genuine but do not fit (another key, host or translator), not forgeries.
        (size,) = struct.unpack_from("<I", payload)
        try:
            header = json.loads(payload[4 : 4 + size])
        except ValueError:
            header = None
        obj = payload[4 + size :]
        if not isinstance(header, dict) or 4 + size > len(payload) or not obj:
            self.ignore(digest, "corrupt")
            return None
        if header.get("region") != digest.hex() or header.get("symbol") != _symbol(digest):
            self.ignore(digest, "made for other guest bytes")
            return None
        for field, value in code_fingerprint().items():
            if header.get(field) != value:
                self.ignore(digest, f"made by another {field}: stale")
                return None
        seconds = header.get("compile_seconds")
        if type(seconds) is not float or not math.isfinite(seconds) or seconds < 0:
            self.ignore(digest, "corrupt")
            return None
        return obj, seconds

    def store(self, digest: bytes, obj: bytes, compile_seconds: float) -> None:
        """Keep ``obj``, the region ``digest`` compiled here, replacing any entry for it.

        Written to a temporary name and renamed, so readers see a whole entry or none; a
        directory that cannot be written gives one warning and stops further attempts.
        """
        if not self._writable or not self.usable():
            return
        header = {
            **code_fingerprint(),
            "region": digest.hex(),
            "symbol": _symbol(digest),
            "compile_seconds": float(compile_seconds),
        }
        encoded = json.dumps(header, sort_keys=True).encode()
        payload = struct.pack("<I", len(encoded)) + encoded + obj
        data = _TAG + mac(self._key, _TAG, payload) + payload
        name = digest.hex() + _SUFFIX
        tmp = f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(tmp, flags, 0o600, dir_fd=self._fd)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            os.replace(tmp, name, src_dir_fd=self._fd, dst_dir_fd=self._fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=self._fd)
            self._writable = False
            self._warn("native_code_cache_unwritable", reason=str(exc.strerror or exc))


#: What ``NativeExecutor(cache=...)`` takes: a cache, a directory, True for the default
#: directory, False for none, None for the default unless ``VMKIT_NATIVE_CACHE=off``.
CacheOption = NativeCodeCache | str | os.PathLike[str] | bool | None

_shared: dict[str, NativeCodeCache] = {}
_shared_lock = threading.Lock()


def resolve_cache(option: CacheOption) -> NativeCodeCache | None:
    """The cache ``option`` asks for; one instance per directory per process, so executors
    share its open directory and its warnings."""
    if isinstance(option, NativeCodeCache):
        return option
    if option is False:
        return None
    directory = default_cache_dir() if option is None or option is True else Path(option)
    if directory is None:
        return None
    key = os.path.abspath(directory)
    with _shared_lock:
        cache = _shared.get(key)
        if cache is None:
            cache = _shared[key] = NativeCodeCache(directory)
        return cache


@dataclass(frozen=True)
class RegionCode:
    """A region's machine code, compiled or loaded."""

    function: Any
    """The ctypes callable ``u64 region(u64 *regs, u64 *tlb, u64 *io)``."""
    seconds: float
    """Time to compile it, or to load it from the cache."""
    cached: bool
    """Loaded from the cache rather than compiled."""
    saved_seconds: float = 0.0
    """The compile time the cache saved (what compiling it took when it was stored)."""


def region_code(
    blocks: Sequence[RegionBlock], decoder: Decoder, cache: NativeCodeCache | None
) -> RegionCode:
    """The machine code of the region ``blocks``: from ``cache`` when it holds a valid entry,
    else compiled (and stored there)."""
    digest = region_digest(blocks, decoder)
    symbol = _symbol(digest)
    if cache is not None:
        t0 = time.perf_counter()
        hit = cache.load(digest)
        if hit is not None:
            obj, saved = hit
            try:
                (function,) = load_object(obj, [symbol])
            except ValueError as exc:  # pragma: no cover - an authenticated entry of ours links
                cache.ignore(digest, f"cannot be linked ({exc})")
            else:
                return RegionCode(function, time.perf_counter() - t0, True, saved)
    t0 = time.perf_counter()
    module = new_module(symbol)
    build_region(module, symbol, blocks)
    obj = emit_object(module)
    (function,) = load_object(obj, [symbol])
    seconds = time.perf_counter() - t0
    if cache is not None:
        cache.store(digest, obj, seconds)
    return RegionCode(function, seconds, False)
