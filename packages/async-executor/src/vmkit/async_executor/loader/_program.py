"""``load_program``: from a path on the host to a Machine ready to run its first instruction."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from typing import Final

from vmkit.async_executor.errors import ElfLoadError
from vmkit.async_executor.isa._isa import RV64GC, Isa
from vmkit.async_executor.limits import DEFAULT_LIMITS, GuestLimits, LimitCounters
from vmkit.async_executor.linux._kernel import Linux
from vmkit.async_executor.loader._elf import LoadedImage, build_initial_stack, load_elf
from vmkit.async_executor.machine._hart import Hart
from vmkit.async_executor.machine._machine import Machine
from vmkit.async_executor.machine._memory import AddressSpace

__all__ = ["load_program"]

# Refuse absurd inputs before reading them whole: the largest static binaries are a few tens of MiB.
MAX_PROGRAM_BYTES = 1 << 30


def _encode(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else os.fsencode(value)


def _read_program(name: str) -> bytes:
    """The bytes of the program file ``name``: a regular file of at most MAX_PROGRAM_BYTES.

    A device (``/dev/zero`` would read forever), a FIFO (its open would block), a socket or a
    directory is refused before anything is read; the file is opened without blocking and
    checked again through the open descriptor, so swapping it meanwhile changes nothing.
    """
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise ElfLoadError(f"{name}: cannot read: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ElfLoadError(f"{name}: is a directory, not a program")
        if not stat.S_ISREG(st.st_mode):
            kind = _KIND.get(stat.S_IFMT(st.st_mode), "not a regular file")
            raise ElfLoadError(f"{name}: is {kind}, not a program")
        if st.st_size > MAX_PROGRAM_BYTES:
            raise ElfLoadError(f"{name}: {st.st_size} bytes is too large for a guest program")
        chunks: list[bytes] = []
        remaining = MAX_PROGRAM_BYTES + 1
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except OSError as exc:
        raise ElfLoadError(f"{name}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > MAX_PROGRAM_BYTES:
        raise ElfLoadError(f"{name}: grew past {MAX_PROGRAM_BYTES} bytes while being read")
    return data


_KIND: Final = {
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
}


def guest_exe_path(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> str:
    """What the guest sees as its program's path (``/proc/self/exe``): the program's path in
    the guest's file system when it lies inside the guest root, else ``/`` and its file name.

    Never a host path: the guest must not learn where anything outside its root lives (qemu-user
    answers the host path, so a program that prints heap addresses may differ from qemu-riscv64
    by the length of that string, glibc's start-up keeping a copy of the directory)."""
    real = os.path.realpath(path)
    base = os.path.realpath(root)
    if os.path.commonpath([real, base]) == base and real != base:
        return "/" + os.path.relpath(real, base)
    return "/" + os.path.basename(real)


def load_program(
    path: str | os.PathLike[str],
    argv: Sequence[str | bytes] | None = None,
    env: Mapping[str, str] | Sequence[str | bytes] | None = None,
    root: str | os.PathLike[str] = ".",
    *,
    stdio: tuple[int, int, int] = (0, 1, 2),
    random_bytes: bytes | None = None,
    limits: GuestLimits = DEFAULT_LIMITS,
    isa: Isa = RV64GC,
    exe_name: str | None = None,
) -> Machine[Linux]:
    """Load the static RISC-V 64 program at ``path`` and return a Machine at its entry point.

    Args:
        path: host path of the ELF executable.
        argv: the guest's argv (default: ``[path]``); argv[0] is passed as given.
        env: environment as a mapping or ``KEY=VALUE`` strings (default: the host's); the
            guest sees it in reverse order, as under qemu-riscv64.
        root: host directory the guest sees as ``/``.
        stdio: host fds behind guest fds 0, 1 and 2.
        random_bytes: the 16 AT_RANDOM bytes (default: fresh random bytes).
        limits: what the guest may take from the host (memory, files, disk, time).
        isa: the extensions the hart implements (default all of RV64GC); an instruction of
            another extension is an illegal instruction (SIGILL), as on such a core.
        exe_name: what ``readlink("/proc/self/exe")`` answers (default: see
            :func:`guest_exe_path`); a batch worker running a copy of a program gives the
            original's.

    Raises:
        ElfLoadError: the file is missing, unreadable or not a static RISC-V 64 executable.
    """
    name = os.fspath(path)
    data = _read_program(name)
    if not os.path.isdir(root):
        raise ElfLoadError(f"guest root {os.fspath(root)!r} is not a directory")
    counters = LimitCounters()
    memory = AddressSpace(limits, counters)
    image: LoadedImage = load_elf(memory, data, name)
    args = [_encode(a) for a in (argv if argv is not None else [name])]
    if env is None:
        env = dict(os.environ)
    if isinstance(env, Mapping):
        envp = [os.fsencode(f"{k}={v}") for k, v in env.items()]
    else:
        envp = [_encode(e) for e in env]
    # qemu-user hands the environment to the guest in reverse order (its envlist prepends each
    # variable); do the same so programs that print environ match qemu-riscv64 byte for byte.
    envp.reverse()
    execfn = args[0] if args else os.fsencode(name)
    sp = build_initial_stack(memory, image, args, envp, execfn, random_bytes=random_bytes)
    hart = Hart(pc=image.entry)
    hart.x[2] = sp
    linux = Linux(
        root,
        exe_host=os.fsencode(os.path.realpath(name)),
        exe_guest=os.fsencode(exe_name if exe_name is not None else guest_exe_path(name, root)),
        stdio=stdio,
        limits=limits,
        counters=counters,
    )
    vm = linux.process_memory(memory)
    vm.brk_start = vm.brk = image.brk_start
    machine = Machine(memory, hart, linux, isa)
    machine.image = image
    machine.exe_path = name
    return machine
