"""Load a static RISC-V 64 Linux executable and lay out its initial stack as Linux does.

Design notes
------------
* Only what ``execve`` of a static program needs: ``ET_EXEC`` at its link addresses and static-PIE
  (``ET_DYN`` without ``PT_INTERP``) at a fixed load base, ``ELF_ET_DYN_BASE`` of riscv64 Linux
  with Sv39 (two thirds of that address space). Nothing is randomised, so runs repeat exactly
  (except AT_RANDOM, which is random unless given). The stack, the auxv order and the mmap area
  are where qemu-riscv64 puts them for an ``ET_EXEC`` program (see ``machine._memory``), so even
  pointers a program prints agree with qemu; a static PIE is placed differently from qemu (which
  puts it at 0x40_0000_0000 and the stack after it).
* Every check runs on the raw header bytes before pyelftools sees the file, so a user gets one line
  naming the problem (not an ELF, truncated, 32-bit, big-endian, wrong machine, dynamically linked)
  rather than a parser's traceback. Whatever pyelftools still rejects becomes ElfLoadError too.
* PT_LOAD pages are mapped with the segment's permissions; the file bytes are copied from the start
  of the segment's first page (so the ELF and program headers are visible at AT_PHDR, as with
  mmap), and the rest of the memory size is zero (bss). A later segment sharing a page with an
  earlier one replaces its permissions, as MAP_FIXED does.
* The stack follows ``fs/exec.c`` and ``fs/binfmt_elf.c`` (and qemu-user, which copies them): at
  the top an 8-byte NULL, then the
  execfn string, the environment strings and the argument strings (growing down), 16 random bytes,
  and below them, 16-byte aligned, argc, argv[], NULL, envp[], NULL and the auxv pairs ending in
  AT_NULL. ``PT_GNU_STACK`` with PF_X makes the stack executable (GCC trampolines need it).
"""

from __future__ import annotations

import os
import struct

from vmkit.async_executor._record import FrozenRecord, init_field
from vmkit.async_executor.errors import ElfLoadError
from vmkit.async_executor.linux._layout import SIGTRAMP_PAGE, STACK_GUARD, STACK_SIZE, STACK_TOP
from vmkit.async_executor.machine._memory import (
    MIN_MAP_ADDR,
    PAGE_MASK,
    PAGE_SIZE,
    PERM_R,
    PERM_W,
    PERM_X,
    AddressSpace,
)

__all__ = [
    "AT_CLKTCK",
    "AT_EGID",
    "AT_ENTRY",
    "AT_EUID",
    "AT_EXECFN",
    "AT_GID",
    "AT_HWCAP",
    "AT_NULL",
    "AT_PAGESZ",
    "AT_PHDR",
    "AT_PHENT",
    "AT_PHNUM",
    "AT_RANDOM",
    "AT_SECURE",
    "AT_UID",
    "HWCAP_RV64IMAFDC",
    "PIE_LOAD_BASE",
    "LoadedImage",
    "build_initial_stack",
    "load_elf",
    "parse_elf",
]

AT_NULL = 0
AT_PHDR = 3
AT_PHENT = 4
AT_PHNUM = 5
AT_PAGESZ = 6
AT_BASE = 7
AT_FLAGS = 8
AT_ENTRY = 9
AT_UID = 11
AT_EUID = 12
AT_GID = 13
AT_EGID = 14
AT_HWCAP = 16
AT_CLKTCK = 17
AT_SECURE = 23
AT_RANDOM = 25
AT_EXECFN = 31

#: AT_HWCAP of an RV64IMAFDC hart: one bit per ISA letter, bit (letter - 'a').
HWCAP_RV64IMAFDC = sum(1 << (ord(c) - ord("a")) for c in "imafdc")
#: Where a static-PIE program is loaded (riscv64 ELF_ET_DYN_BASE under Sv39, page aligned).
PIE_LOAD_BASE = 0x2A_AAAA_A000
#: sysconf(_SC_CLK_TCK) on Linux.
CLOCK_TICKS = 100

EM_RISCV = 243
ET_EXEC = 2
ET_DYN = 3
PT_LOAD = 1
PT_INTERP = 3
PT_PHDR = 6
PT_GNU_STACK = 0x6474E551
PF_X, PF_W, PF_R = 1, 2, 4

_MACHINES = {3: "x86 (EM_386)", 40: "ARM (EM_ARM)", 62: "x86-64 (EM_X86_64)", 183: "AArch64"}
_TYPES = {0: "ET_NONE", 1: "ET_REL (an object file, not linked)", 4: "ET_CORE (a core dump)"}
_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")


class Segment(FrozenRecord):
    """One program header."""

    __slots__ = ("type", "flags", "offset", "vaddr", "filesz", "memsz")
    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int

    def __init__(
        self,
        type: int,
        flags: int,
        offset: int,
        vaddr: int,
        filesz: int,
        memsz: int,
    ) -> None:
        init_field(self, "type", type)
        init_field(self, "flags", flags)
        init_field(self, "offset", offset)
        init_field(self, "vaddr", vaddr)
        init_field(self, "filesz", filesz)
        init_field(self, "memsz", memsz)


class ElfInfo(FrozenRecord):
    """What the loader needs from a checked ELF file."""

    __slots__ = ("entry", "is_pie", "phoff", "phentsize", "segments")
    entry: int
    is_pie: bool
    phoff: int
    phentsize: int
    segments: tuple[Segment, ...]

    def __init__(
        self,
        entry: int,
        is_pie: bool,
        phoff: int,
        phentsize: int,
        segments: tuple[Segment, ...],
    ) -> None:
        init_field(self, "entry", entry)
        init_field(self, "is_pie", is_pie)
        init_field(self, "phoff", phoff)
        init_field(self, "phentsize", phentsize)
        init_field(self, "segments", segments)


class LoadedImage(FrozenRecord):
    """Where the program landed: entry point, program headers, heap start, stack policy."""

    __slots__ = ("entry", "base", "phdr", "phent", "phnum", "brk_start", "exec_stack")
    entry: int
    base: int
    phdr: int
    phent: int
    phnum: int
    brk_start: int
    exec_stack: bool

    def __init__(
        self,
        entry: int,
        base: int,
        phdr: int,
        phent: int,
        phnum: int,
        brk_start: int,
        exec_stack: bool,
    ) -> None:
        init_field(self, "entry", entry)
        init_field(self, "base", base)
        init_field(self, "phdr", phdr)
        init_field(self, "phent", phent)
        init_field(self, "phnum", phnum)
        init_field(self, "brk_start", brk_start)
        init_field(self, "exec_stack", exec_stack)


def parse_elf(data: bytes, name: str = "program") -> ElfInfo:  # noqa: PLR0912 - one check per ELF header field, each with its own message
    """Check that ``data`` is a static RISC-V 64 executable; ElfLoadError names the problem."""
    if len(data) < 4 or data[:4] != b"\x7fELF":
        raise ElfLoadError(f"{name}: not an ELF file (no \\x7fELF magic at the start)")
    if len(data) < 6:
        raise ElfLoadError(f"{name}: truncated ELF file ({len(data)} bytes)")
    if data[4] == 1:
        raise ElfLoadError(f"{name}: 32-bit ELF; only 64-bit RISC-V (RV64) programs can run")
    if data[4] != 2:
        raise ElfLoadError(f"{name}: invalid ELF class {data[4]}")
    if data[5] != 1:
        raise ElfLoadError(f"{name}: big-endian ELF; RISC-V Linux programs are little-endian")
    if len(data) < _EHDR.size:
        raise ElfLoadError(f"{name}: truncated ELF file ({len(data)} bytes, header needs 64)")
    (_, e_type, machine, _, entry, phoff, _, _, _, phentsize, phnum, *_rest) = _EHDR.unpack_from(
        data
    )
    if machine != EM_RISCV:
        what = _MACHINES.get(machine, f"machine {machine}")
        raise ElfLoadError(f"{name}: wrong machine: built for {what}, not RISC-V (EM_RISCV 243)")
    if e_type not in (ET_EXEC, ET_DYN):
        what = _TYPES.get(e_type, f"type {e_type}")
        raise ElfLoadError(f"{name}: not an executable: ELF {what}")
    if phnum == 0 or phentsize < _PHDR.size:
        raise ElfLoadError(f"{name}: malformed ELF: no usable program headers")
    if phoff + phnum * phentsize > len(data):
        raise ElfLoadError(
            f"{name}: truncated ELF file: program headers end at byte "
            f"{phoff + phnum * phentsize}, the file has {len(data)}"
        )
    segments = _segments(data, phoff, phnum, phentsize)
    if any(s.type == PT_INTERP for s in segments):
        raise ElfLoadError(f"{name}: dynamically linked (has PT_INTERP); build it with -static")
    loads = [s for s in segments if s.type == PT_LOAD]
    if not loads:
        raise ElfLoadError(f"{name}: malformed ELF: no PT_LOAD segment")
    for s in loads:
        if s.offset + s.filesz > len(data):
            raise ElfLoadError(
                f"{name}: truncated ELF file: a segment needs bytes up to "
                f"{s.offset + s.filesz}, the file has {len(data)}"
            )
        if s.filesz > s.memsz or (s.vaddr - s.offset) & PAGE_MASK:
            raise ElfLoadError(f"{name}: malformed ELF: bad PT_LOAD at {s.vaddr:#x}")
    return ElfInfo(entry, e_type == ET_DYN, phoff, phentsize, tuple(segments))


def _segments(data: bytes, phoff: int, phnum: int, phentsize: int) -> list[Segment]:
    """The program headers (already checked to lie inside ``data``), read with struct: a
    loader that needs nothing else of the file starts without importing an ELF library."""
    segments = []
    for i in range(phnum):
        p_type, p_flags, p_offset, p_vaddr, _, p_filesz, p_memsz, _ = _PHDR.unpack_from(
            data, phoff + i * phentsize
        )
        segments.append(Segment(p_type, p_flags, p_offset, p_vaddr, p_filesz, p_memsz))
    return segments


def _perms(flags: int) -> int:
    return (
        (PERM_R if flags & PF_R else 0)
        | (PERM_W if flags & PF_W else 0)
        | (PERM_X if flags & PF_X else 0)
    )


#: What the loader maps beside the segments: the stack, its guard page and the sigreturn page.
_STACK_BYTES = STACK_SIZE + 2 * PAGE_SIZE


def _check_memory(memory: AddressSpace, loads: list[Segment], base: int, name: str) -> None:
    """Refuse, before mapping anything, a program whose segments and stack would not fit in the
    guest memory limit (a few header bytes may ask for hundreds of GiB)."""
    limit = memory.limits.memory_bytes
    total = _STACK_BYTES
    for seg in loads:
        start = (seg.vaddr + base) & ~PAGE_MASK
        size = ((seg.vaddr + base + seg.memsz + PAGE_MASK) & ~PAGE_MASK) - start
        if size > limit:
            raise ElfLoadError(
                f"{name}: the PT_LOAD segment at {seg.vaddr:#x} needs {size} bytes of memory, "
                f"more than the guest memory limit of {limit} bytes (--max-memory)"
            )
        total += size
    if total > limit:
        raise ElfLoadError(
            f"{name}: the program's segments and stack need {total} bytes of memory, more than "
            f"the guest memory limit of {limit} bytes (--max-memory)"
        )


def load_elf(memory: AddressSpace, data: bytes, name: str = "program") -> LoadedImage:
    """Map the PT_LOAD segments of ``data`` into ``memory``; the image says where the program
    break starts (``brk_start``: the page after the bss), for the kernel to set up."""
    info = parse_elf(data, name)
    loads = [s for s in info.segments if s.type == PT_LOAD]
    base = PIE_LOAD_BASE - (min(s.vaddr for s in loads) & ~PAGE_MASK) if info.is_pie else 0
    _check_memory(memory, loads, base, name)
    end = 0
    for seg in loads:
        start = (seg.vaddr + base) & ~PAGE_MASK
        stop = (seg.vaddr + base + seg.memsz + PAGE_MASK) & ~PAGE_MASK
        if stop > STACK_GUARD or start < MIN_MAP_ADDR:
            raise ElfLoadError(f"{name}: segment at {seg.vaddr:#x} lies outside user space")
        lead = (seg.vaddr + base) - start
        memory.map(start, stop - start, _perms(seg.flags))
        file_start = seg.offset - lead
        memory.poke(start, data[file_start : seg.offset + seg.filesz])
        end = max(end, stop)
    phdr = 0
    for seg in info.segments:
        if seg.type == PT_PHDR:
            phdr = seg.vaddr + base
            break
    else:
        for seg in loads:
            if seg.offset <= info.phoff < seg.offset + seg.filesz:
                phdr = seg.vaddr + base + info.phoff - seg.offset
                break
    exec_stack = any(s.type == PT_GNU_STACK and s.flags & PF_X for s in info.segments)
    return LoadedImage(
        entry=info.entry + base,
        base=base,
        phdr=phdr,
        phent=info.phentsize,
        phnum=len(info.segments),
        brk_start=end,
        exec_stack=exec_stack,
    )


def build_initial_stack(
    memory: AddressSpace,
    image: LoadedImage,
    argv: list[bytes],
    envp: list[bytes],
    execfn: bytes,
    *,
    random_bytes: bytes | None = None,
    ids: tuple[int, int, int, int] | None = None,
) -> int:
    """Map the stack and write argc, argv, envp and auxv as Linux does; returns the initial sp.

    ``ids`` is (uid, euid, gid, egid); by default the host process's own.
    """
    perms = PERM_R | PERM_W | (PERM_X if image.exec_stack else 0)
    memory.map(STACK_GUARD, PAGE_SIZE, 0)
    memory.map(STACK_TOP - STACK_SIZE, STACK_SIZE, perms)
    # Where qemu-user keeps the signal-return trampoline: li a7, 139 (rt_sigreturn); ecall.
    memory.map(SIGTRAMP_PAGE, PAGE_SIZE, PERM_R | PERM_X, struct.pack("<II", 0x08B00893, 0x73))
    if ids is None:
        ids = (os.getuid(), os.geteuid(), os.getgid(), os.getegid())
    if random_bytes is None:
        random_bytes = os.urandom(16)
    pos = STACK_TOP - 8  # the NULL word at the very top

    def push_bytes(blob: bytes) -> int:
        nonlocal pos
        pos -= len(blob)
        memory.poke(pos, blob)
        return pos

    execfn_addr = push_bytes(execfn + b"\0")
    env_addrs = [push_bytes(s + b"\0") for s in reversed(envp)][::-1]
    arg_addrs = [push_bytes(s + b"\0") for s in reversed(argv)][::-1]
    pos &= ~15
    random_addr = push_bytes(random_bytes[:16].ljust(16, b"\0"))
    uid, euid, gid, egid = ids
    # The order qemu-user uses, so programs that walk the auxv see the same sequence.
    auxv = [
        (AT_PHDR, image.phdr),
        (AT_PHENT, image.phent),
        (AT_PHNUM, image.phnum),
        (AT_PAGESZ, PAGE_SIZE),
        (AT_BASE, 0),
        (AT_FLAGS, 0),
        (AT_ENTRY, image.entry),
        (AT_UID, uid),
        (AT_EUID, euid),
        (AT_GID, gid),
        (AT_EGID, egid),
        (AT_HWCAP, HWCAP_RV64IMAFDC),
        (AT_CLKTCK, CLOCK_TICKS),
        (AT_RANDOM, random_addr),
        (AT_SECURE, 0),
        (AT_EXECFN, execfn_addr),
        (AT_NULL, 0),
    ]
    words = [len(argv), *arg_addrs, 0, *env_addrs, 0]
    for key, value in auxv:
        words += [key, value]
    sp = (pos - 8 * len(words)) & ~15
    if sp < STACK_TOP - STACK_SIZE + PAGE_SIZE:
        raise ElfLoadError("arguments and environment do not fit on the 8 MiB stack")
    memory.poke(sp, struct.pack(f"<{len(words)}Q", *(w & (2**64 - 1) for w in words)))
    return sp
