"""Ahead-of-time translation: a persistent code cache of compiled guest blocks.

Design note
-----------
:func:`build_code_cache` discovers blocks statically from entry points (the ELF entry, the
function symbols :func:`function_symbols` reads) by following direct branches, jumps, calls and
the return points after calls, all on executable pages, and translates each as the JIT would.
Static discovery walks most of a static libc (thousands of blocks, tens of megabytes, for a
program whose runs use a few hundred), so :func:`profiled_code_cache` offers the other way: the
blocks a real run translated, taken from its context (profile-guided; ``aot --profile``).
:func:`save_code_cache` writes them; :func:`load_code_cache` installs them into an
:class:`AsyncExecutionContext` for a machine, so a warm start runs translated code from its first
block without calling ``compile()``.

Safety rules (a cache is code, so it must be this user's own; see :mod:`._signing`):

* The file starts with a format tag, then an HMAC-SHA256 of the payload under a key private to
  the user; nothing is unmarshalled before the MAC checks out, so a cache written by anyone
  without the key (another user, a crafted file with a recomputed hash) never runs. A cache file
  that is not a regular file, belongs to another user or is writable by group or others is
  refused as well. The payload records the Python bytecode magic number and
  :data:`TRANSLATOR_VERSION`; every field of every block is type- and range-checked before use.
  A refused, truncated, corrupt, foreign or stale file is ignored with one warning.
* Every block records a hash of the exact guest bytes it was translated from. Blocks are taken
  lazily, when execution first reaches them; the bytes then in memory are hashed again and a
  block whose bytes differ is translated afresh instead: a cache built for another build of the
  program (or patched code) never runs. Lazy loading also keeps a warm start cheap: only the
  blocks a run needs are unpacked.
* The payload is ``marshal`` data (code objects, tuples, ints, strings), trusted only because the
  MAC proves this user's key wrote it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import importlib.util
import io
import marshal
import os
import types
import zlib
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

from vmkit.async_executor._logging import get_logger
from vmkit.async_executor.engine._context import AsyncExecutionContext
from vmkit.async_executor.engine._signing import CacheTrustError, mac, open_trusted, user_key
from vmkit.async_executor.engine._translate import (
    BLOCK_GLOBALS,
    TRANSLATOR_VERSION,
    BlockFunction,
    TranslatedBlock,
    decode_block,
    translate_block,
)
from vmkit.async_executor.machine._memory import PERM_X, AddressSpace, GuestMemoryFault

__all__ = [
    "DEFAULT_MAX_AOT_BLOCKS",
    "CodeCacheInfo",
    "build_code_cache",
    "discover_blocks",
    "function_symbols",
    "load_code_cache",
    "profiled_code_cache",
    "save_code_cache",
]

_log = get_logger(__name__)

_TAG: Final = b"AEJITCC2"
#: Most blocks static discovery translates (a large static binary has tens of thousands).
DEFAULT_MAX_AOT_BLOCKS: Final = 20_000


class CodeCacheInfo:
    """What :func:`build_code_cache` produced: the translated blocks, ready to save."""

    def __init__(self, blocks: list[TranslatedBlock], spans: dict[int, list[tuple[int, int]]]):
        self.blocks = blocks
        #: pc -> the guest byte ranges each block was translated from.
        self.spans = spans

    def __len__(self) -> int:
        return len(self.blocks)


def _spans_of(mem: AddressSpace, pcs: Iterable[int]) -> list[tuple[int, int]]:
    """Byte ranges ``(start, end)`` covering the instructions at ``pcs``."""
    spans = []
    for pc in pcs:
        low = mem.peek(pc, 2)[0]
        spans.append((pc, pc + (4 if low & 3 == 3 else 2)))
    return spans


def _digest(mem: AddressSpace, spans: list[tuple[int, int]]) -> bytes:
    h = hashlib.sha256()
    for start, end in spans:
        h.update(start.to_bytes(8, "little"))
        h.update(mem.peek(start, end - start))
    return h.digest()


def discover_blocks(
    mem: AddressSpace, entries: Iterable[int], max_blocks: int = DEFAULT_MAX_AOT_BLOCKS
) -> list[int]:
    """Block starts reachable from ``entries`` by direct control flow on executable pages."""
    seen: set[int] = set()
    order: list[int] = []
    work = deque(entries)  # breadth first: a capped cache holds the code nearest the entries
    while work and len(order) < max_blocks:
        pc = work.popleft()
        if pc in seen or pc & 1:
            continue
        seen.add(pc)
        perms = mem.perms_at(pc)
        if perms is None or not perms & PERM_X:
            continue
        try:
            block = decode_block(mem, pc)
        except GuestMemoryFault:
            continue
        order.append(pc)
        last_pc, last, _raw = block.instrs[-1]
        if last is None:
            continue
        kind = last.spec.kind
        if kind == "branch":
            work += [(last_pc + last.imm) & ((1 << 64) - 1), block.end]
        elif kind == "jal":
            work.append((last_pc + last.imm) & ((1 << 64) - 1))
            if last.rd != 32:
                work.append(block.end)  # a call returns here
        elif kind == "jalr":
            if last.rd != 32:
                work.append(block.end)
        elif kind in ("ecall", "fence_i") or not last.spec.ends_block:
            work.append(block.end)
    return order


def function_symbols(elf: bytes) -> list[int]:
    """Addresses of the functions an ELF file's symbol table names (link-time addresses).

    These are the entry points static discovery cannot find by following direct control flow
    (functions reached only through pointers). A file without a symbol table gives none.
    """
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    try:
        parsed = ELFFile(io.BytesIO(elf))
        addrs = {
            sym["st_value"]
            for section in parsed.iter_sections()
            if isinstance(section, SymbolTableSection)
            for sym in section.iter_symbols()
            if sym["st_info"]["type"] == "STT_FUNC"
            and sym["st_value"]
            and sym["st_shndx"] != "SHN_UNDEF"
        }
    except (ELFError, ValueError, KeyError):
        return []
    return sorted(addrs)


def build_code_cache(
    context: AsyncExecutionContext,
    mem: AddressSpace,
    entries: Iterable[int],
    max_blocks: int = DEFAULT_MAX_AOT_BLOCKS,
) -> CodeCacheInfo:
    """Translate every block reachable from ``entries`` (see :func:`discover_blocks`)."""
    blocks = []
    spans: dict[int, list[tuple[int, int]]] = {}
    for pc in discover_blocks(mem, entries, max_blocks):
        try:
            block = translate_block(
                mem, pc, context.max_block_insns, region=context.regions, code_cache=None
            )
        except GuestMemoryFault:  # pragma: no cover - discovery decoded it a moment ago
            continue
        blocks.append(block)
        spans[pc] = _spans_of(mem, block.pcs)
    return CodeCacheInfo(blocks, spans)


def profiled_code_cache(context: AsyncExecutionContext, mem: AddressSpace) -> CodeCacheInfo:
    """The blocks ``context`` holds for the machine memory ``mem``, typically after a run: the
    code that run used, ready to save. Blocks invalidated by code writes are already gone, so
    every block matches the guest bytes now in ``mem``."""
    cache = context.namespace(mem)
    blocks = sorted(cache.meta.values(), key=lambda b: b.pc)
    return CodeCacheInfo(blocks, {b.pc: _spans_of(mem, b.pcs) for b in blocks})


def save_code_cache(info: CodeCacheInfo, mem: AddressSpace, path: str | os.PathLike[str]) -> int:
    """Write ``info`` to ``path``; returns the number of bytes written."""
    index: dict[int, bytes] = {}
    for b in info.blocks:
        spans = info.spans[b.pc]
        index[b.pc] = marshal.dumps(
            (
                b.pc,
                zlib.compress(b.source.encode()),
                b.fn.__code__,
                tuple((line, *where) for line, where in b.lines.items()),
                b.pcs,
                b.written,
                b.pages,
                b.length,
                b.mem_ops,
                b.loop,
                b.syscall_line,
                tuple(spans),
                _digest(mem, spans),
            )
        )
    payload = marshal.dumps((importlib.util.MAGIC_NUMBER, TRANSLATOR_VERSION, index))
    data = _TAG + mac(user_key(), _TAG, payload) + payload
    _write_private(Path(path), data)
    return len(data)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` as a file only the user can write (0600), atomically."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_payload(path: str | os.PathLike[str]) -> dict[int, bytes] | None:  # noqa: PLR0911 - one return per reason a cache file is refused
    try:
        data = open_trusted(path)
    except CacheTrustError as exc:
        _log.warning("jit_code_cache_ignored", path=str(path), reason=str(exc))
        return None
    except OSError as exc:
        _log.warning("jit_code_cache_unreadable", path=str(path), error=str(exc))
        return None
    if not data.startswith(_TAG) or len(data) < len(_TAG) + 32:
        _log.warning("jit_code_cache_ignored", path=str(path), reason="not a code cache")
        return None
    digest, payload = data[len(_TAG) : len(_TAG) + 32], data[len(_TAG) + 32 :]
    try:
        key = user_key()
    except CacheTrustError as exc:
        _log.warning("jit_code_cache_ignored", path=str(path), reason=str(exc))
        return None
    if not hmac.compare_digest(mac(key, _TAG, payload), digest):
        _log.warning(
            "jit_code_cache_ignored",
            path=str(path),
            reason="not written with this user's key (or altered since): refused unread",
        )
        return None
    try:
        loaded = marshal.loads(payload)
        magic, version, index = loaded
    except (ValueError, EOFError, TypeError) as exc:
        _log.warning("jit_code_cache_ignored", path=str(path), reason=f"corrupt ({exc})")
        return None
    if magic != importlib.util.MAGIC_NUMBER:
        _log.warning("jit_code_cache_ignored", path=str(path), reason="other Python version")
        return None
    if version != TRANSLATOR_VERSION:
        _log.warning("jit_code_cache_ignored", path=str(path), reason="other translator version")
        return None
    if not isinstance(index, dict) or not all(
        type(pc) is int and type(entry) is bytes for pc, entry in index.items()
    ):
        _log.warning("jit_code_cache_ignored", path=str(path), reason="corrupt (no index)")
        return None
    return index


def _ints(value: object, size: int | None = None) -> bool:
    return (
        isinstance(value, tuple)
        and (size is None or len(value) == size)
        and all(type(v) is int for v in value)
    )


def _valid_entry(entry: object) -> bool:
    """Whether a cached block record has the shape and ranges a saved one has."""
    if not isinstance(entry, tuple) or len(entry) != 13:
        return False
    pc, source, code, lines, pcs, written, pages, length, mem_ops, loop, sys_line = entry[:11]
    spans, digest = entry[11:]
    return (
        type(pc) is int
        and 0 < pc < 1 << 64
        and type(source) is bytes
        and isinstance(code, types.CodeType)
        and isinstance(lines, tuple)
        and all(_ints(line, 4) for line in lines)
        and _ints(pcs)
        and _ints(written)
        and all(0 <= r <= 32 for r in written)
        and _ints(pages)
        and type(length) is int
        and length > 0
        and type(mem_ops) is int
        and mem_ops >= 0
        and type(loop) is bool
        and type(sys_line) is int
        and isinstance(spans, tuple)
        and all(_ints(span, 2) and 0 < span[1] - span[0] <= 4 for span in spans)
        and type(digest) is bytes
        and len(digest) == 32
    )


def _block_from(entry: tuple[Any, ...], mem: AddressSpace) -> TranslatedBlock | None:
    """The cached block, or None when the guest bytes it was made from are not in ``mem`` (or
    the record is malformed)."""
    if not _valid_entry(entry):
        return None
    pc, source, code, lines, pcs, written, pages, length, mem_ops, loop, sys_line = entry[:11]
    spans, digest = entry[11:]
    try:
        if _digest(mem, list(spans)) != digest:
            return None
    except GuestMemoryFault:
        return None
    if not isinstance(code, types.CodeType):
        return None
    fn: BlockFunction = types.FunctionType(code, BLOCK_GLOBALS, "b")
    block = TranslatedBlock(
        pc=pc,
        fn=fn,
        source=zlib.decompress(source).decode(),
        length=length,
        pages=tuple(pages),
        mem_ops=mem_ops,
        loop=loop,
        compile_time=0.0,
        lines={line: (k, ipc, loop_len) for line, k, ipc, loop_len in lines},
        pcs=tuple(pcs),
        written=tuple(written),
        syscall_line=sys_line,
        reused_code=True,
    )
    fn.jit_block = block  # type: ignore[attr-defined]
    return block


class _CacheLookup:
    """The prebuilt-block lookup a loaded cache gives its context (see ``set_prebuilt``)."""

    def __init__(self, index: dict[int, bytes], mem: AddressSpace, path: str) -> None:
        self._index = index
        self._mem = mem
        self._path = path
        self._stale = 0

    def offers(self, pc: int) -> bool:
        """Whether the cache still holds an untried block at ``pc`` (the hybrid asks first)."""
        return pc in self._index

    def __call__(self, pc: int) -> TranslatedBlock | None:
        data = self._index.pop(pc, None)  # each entry is tried once
        if data is None:
            return None
        try:
            block = _block_from(marshal.loads(data), self._mem)
        except (ValueError, EOFError, TypeError, zlib.error):
            block = None
        if block is None:
            if not self._stale:
                _log.warning("jit_code_cache_stale_blocks", path=self._path, first_pc=hex(pc))
            self._stale += 1
        return block


def load_code_cache(
    context: AsyncExecutionContext, mem: AddressSpace, path: str | os.PathLike[str]
) -> int:
    """Make the cache at ``path`` available to ``context`` for the machine memory ``mem``.

    Blocks are taken lazily: when the executor misses at a pc the cache holds, the cached
    block is checked against the guest bytes now in ``mem`` and installed instead of translated;
    a block whose bytes differ is translated afresh (and a warning counts such blocks once per
    cache). Returns how many blocks the cache offers (0 when the file is unusable; a warning says
    why).
    """
    index = _read_payload(path)
    if index is None:
        return 0
    lookup = _CacheLookup(index, mem, str(path))
    context.set_prebuilt(mem, lookup)
    return len(index)
