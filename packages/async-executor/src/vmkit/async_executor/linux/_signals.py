"""Signal frames: running a guest's handler for a signal it sent itself, and rt_sigreturn.

Design notes
------------
* Signals are only ever *sent by the guest to itself* (kill, tkill, tgkill: what ``raise()`` and
  ``abort()`` do), so delivery is synchronous: it happens as the sending syscall returns, or when
  rt_sigprocmask/rt_sigreturn unblocks a pending signal.
* Delivery follows riscv64 Linux (``arch/riscv/kernel/signal.c``): an ``rt_sigframe`` is pushed
  below sp (16-byte aligned, on the alternate stack with SA_ONSTACK when one is enabled) holding a
  ``siginfo`` (128 bytes) and a ``ucontext`` whose ``mcontext`` has pc and x1..x31, then f0..f31
  and fcsr. The handler runs with a0 = signal, a1 = &siginfo, a2 = &ucontext and ra pointing at a
  two-instruction trampoline (``li a7, 139; ecall``: rt_sigreturn) on the page above the stack,
  where qemu-user puts it (the kernel would use the vDSO). rt_sigreturn restores everything from
  the frame, so a handler that edits the ucontext sees its edits take effect, as on Linux.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from vmkit.async_executor.linux._layout import SIGTRAMP_PAGE
from vmkit.async_executor.machine._memory import PAGE_SIZE, PERM_R, PERM_X

if TYPE_CHECKING:
    from vmkit.async_executor.linux._kernel import Linux
    from vmkit.async_executor.machine._machine import Machine

__all__ = [
    "FRAME_SIZE",
    "SA_NODEFER",
    "SA_ONSTACK",
    "SA_RESETHAND",
    "SA_SIGINFO",
    "TRAMPOLINE",
    "push_frame",
    "restore_frame",
]

SA_SIGINFO = 0x4
SA_ONSTACK = 0x08000000
SA_NODEFER = 0x40000000
SA_RESETHAND = 0x80000000
SI_TKILL = -6

#: The sigreturn trampoline's page, just above the stack (the loader maps it, as qemu-user does).
TRAMPOLINE = SIGTRAMP_PAGE
# addi a7, x0, 139 ; ecall
_TRAMPOLINE_CODE = struct.pack("<II", 0x08B00893, 0x00000073)

_INFO = 0
_UCONTEXT = 128
_UC_STACK = _UCONTEXT + 16
_UC_SIGMASK = _UCONTEXT + 40
_MCONTEXT = _UCONTEXT + 176
_FPREGS = _MCONTEXT + 256
_FCSR = _FPREGS + 256
#: sizeof(struct rt_sigframe) on riscv64: siginfo + ucontext (mcontext padded for the Q state).
FRAME_SIZE = _MCONTEXT + 256 + 528
_REGS = struct.Struct("<32Q")
M64 = (1 << 64) - 1


def _ensure_trampoline(m: Machine[Linux]) -> None:
    mem = m.memory
    if mem.perms_at(TRAMPOLINE) is None:
        mem.map(TRAMPOLINE, PAGE_SIZE, PERM_R | PERM_X, _TRAMPOLINE_CODE)


def push_frame(
    m: Machine[Linux],
    sig: int,
    handler: int,
    *,
    resume_pc: int,
    a0: int,
    sigmask: int,
    altstack: tuple[int, int, int],
    on_altstack: bool,
    pid: int,
    uid: int,
    code: int = -6,
    fault_addr: int | None = None,
) -> None:
    """Save the hart's state (resuming at ``resume_pc`` with ``a0``) and enter ``handler``.

    ``sigmask`` is the mask to restore on return; ``altstack`` is (ss_sp, ss_flags, ss_size).
    ``code`` is si_code (SI_TKILL by default); for a fault, ``fault_addr`` is si_addr.
    Raises GuestMemoryFault when the frame cannot be written (the caller kills with SIGSEGV).
    """
    hart = m.hart
    x = hart.x
    sp = x[2]
    ss_sp, ss_flags, ss_size = altstack
    if on_altstack and not ss_sp <= sp < ss_sp + ss_size:
        sp = ss_sp + ss_size
    frame = (sp - FRAME_SIZE) & ~15
    regs = [resume_pc, *x[1:32]]
    regs[10] = a0 & M64
    blob = bytearray(FRAME_SIZE)
    if fault_addr is None:
        struct.pack_into("<iiiiiI", blob, _INFO, sig, 0, code, 0, pid, uid)
    else:
        struct.pack_into("<iiiiQ", blob, _INFO, sig, 0, code, 0, fault_addr & M64)
    struct.pack_into("<QiiQ", blob, _UC_STACK, ss_sp, ss_flags, 0, ss_size)
    struct.pack_into("<Q", blob, _UC_SIGMASK, sigmask)
    _REGS.pack_into(blob, _MCONTEXT, *regs)
    _REGS.pack_into(blob, _FPREGS, *hart.f)
    struct.pack_into("<I", blob, _FCSR, hart.fcsr)
    m.memory.write_bytes(frame, blob)
    _ensure_trampoline(m)
    x[1] = TRAMPOLINE
    x[2] = frame
    x[10] = sig
    x[11] = frame + _INFO
    x[12] = frame + _UCONTEXT
    hart.pc = handler
    hart.reservation = -1


def restore_frame(m: Machine[Linux]) -> int:
    """Restore the state saved by :func:`push_frame` (sp points at the frame); return the mask."""
    hart = m.hart
    frame = hart.x[2]
    blob = m.memory.read_bytes(frame, FRAME_SIZE)
    regs = _REGS.unpack_from(blob, _MCONTEXT)
    hart.pc = regs[0]
    hart.x[1:32] = list(regs[1:32])
    hart.f[:] = list(_REGS.unpack_from(blob, _FPREGS))
    hart.fcsr = struct.unpack_from("<I", blob, _FCSR)[0]
    hart.reservation = -1
    mask: int = struct.unpack_from("<Q", blob, _UC_SIGMASK)[0]
    return mask
