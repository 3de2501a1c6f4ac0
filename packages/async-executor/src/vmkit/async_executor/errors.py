"""Exceptions that end or refuse a guest program, each with a message a user can act on.

A guest's misbehaviour never escapes as a Python traceback: executors catch these, record a
:class:`Termination` on the machine and return the exit status Linux (and qemu-user) would report,
128 + signal number for a fatal signal.
"""

from __future__ import annotations

import signal as _signal

__all__ = [
    "BUDGET_EXHAUSTED_STATUS",
    "AsyncExecutorError",
    "BudgetExhausted",
    "BusError",
    "ElfLoadError",
    "GuestExit",
    "GuestFault",
    "GuestSignal",
    "IllegalInstruction",
    "SegmentationFault",
    "WallClockExceeded",
]

#: Exit status when a guest runs out of its instruction budget (the status ``timeout(1)`` uses).
BUDGET_EXHAUSTED_STATUS = 124


class AsyncExecutorError(Exception):
    """Base class of every error this package raises on purpose."""


class ElfLoadError(AsyncExecutorError):
    """The file is not a static RISC-V 64 Linux executable this loader can run."""


class GuestExit(AsyncExecutorError):
    """The guest called exit or exit_group; ``status`` is its exit status (0..255).

    Subclasses end a run the same way for other reasons; ``reason`` names it in the
    machine's ``Termination``.
    """

    reason = "exit"

    def __init__(self, status: int) -> None:
        super().__init__(f"guest exited with status {status}")
        self.status = status


class WallClockExceeded(GuestExit):
    """The guest ran past its wall-clock limit (``GuestLimits.wall_seconds``).

    A GuestExit, so every executor ends the run the way it ends an exit; the status is
    128 + SIGXCPU (152), the kernel's answer to a process over its CPU limit.
    """

    reason = "wall-clock"

    def __init__(self, seconds: float, status: int) -> None:
        AsyncExecutorError.__init__(
            self,
            f"wall-clock limit of {seconds:g} s exceeded; the guest may be stuck or need more "
            "time (raise --wall-time)",
        )
        self.status = status
        self.seconds = seconds


class GuestFault(AsyncExecutorError):
    """The guest did something that Linux punishes with a fatal signal.

    ``signal`` is the signal number, ``pc`` the address of the faulting instruction (None when not
    known), and ``exit_status`` is 128 + signal, as a shell and qemu-user report it.
    """

    signal: int = 0

    def __init__(self, message: str, *, pc: int | None = None) -> None:
        super().__init__(message)
        self.pc = pc

    @property
    def exit_status(self) -> int:
        """The status a parent process sees: 128 + the signal number."""
        return 128 + self.signal

    @property
    def signal_name(self) -> str:
        """``SIGILL``, ``SIGSEGV`` ... for messages."""
        try:
            return _signal.Signals(self.signal).name
        except ValueError:
            return f"signal {self.signal}"


class IllegalInstruction(GuestFault):
    """An encoding that is not an RV64GC instruction, or one this hart cannot execute (SIGILL)."""

    signal = int(_signal.SIGILL)

    def __init__(self, pc: int, raw: int, reason: str = "illegal instruction") -> None:
        width = 4 if raw & 3 == 3 else 2
        super().__init__(f"{reason} at pc {pc:#x}: raw bits {raw:#0{2 + 2 * width}x}", pc=pc)
        self.raw = raw
        self.reason = reason


class SegmentationFault(GuestFault):
    """A load, store or instruction fetch at an address the guest may not touch (SIGSEGV)."""

    signal = int(_signal.SIGSEGV)

    def __init__(self, addr: int, access: str, reason: str, *, pc: int | None = None) -> None:
        where = f" at pc {pc:#x}" if pc is not None else ""
        super().__init__(f"segmentation fault{where}: {access} of {addr:#x} ({reason})", pc=pc)
        self.addr = addr
        self.access = access
        self.reason = reason


class BusError(GuestFault):
    """A misaligned LR/SC/AMO: Linux (and qemu-user) kill the guest with SIGBUS."""

    signal = int(_signal.SIGBUS)

    def __init__(self, addr: int, access: str, reason: str, *, pc: int | None = None) -> None:
        where = f" at pc {pc:#x}" if pc is not None else ""
        super().__init__(f"bus error{where}: {access} of {addr:#x} ({reason})", pc=pc)
        self.addr = addr
        self.access = access
        self.reason = reason


class GuestSignal(GuestFault):
    """The guest sent itself a fatal signal (abort() raises SIGABRT, kill/tgkill)."""

    def __init__(self, signum: int, *, pc: int | None = None) -> None:
        self.signal = signum
        super().__init__(f"guest killed by signal {signum}", pc=pc)


class BudgetExhausted(AsyncExecutorError):
    """The guest retired its whole instruction budget without exiting."""

    exit_status = BUDGET_EXHAUSTED_STATUS

    def __init__(self, budget: int, pc: int) -> None:
        super().__init__(
            f"instruction budget of {budget} exhausted at pc {pc:#x}; the guest may be in a "
            "runaway loop (raise --max-instructions to let it run longer)"
        )
        self.budget = budget
        self.pc = pc
