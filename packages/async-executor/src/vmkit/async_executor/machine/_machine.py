"""A guest machine: one hart, its address space and the Linux user-mode layer behind ``ecall``.

Design notes
------------
* The machine is passive state plus one service: executors run instructions against ``hart`` and
  ``memory`` and call :meth:`Machine.syscall` for ``ecall``. The syscall reads the number from a7
  (x17) and arguments from a0..a5, writes the result into a0 as an unsigned 64-bit value (a
  negative errno -e as 2**64 - e) and raises GuestExit or GuestSignal when the guest ends. The pc
  is the executor's business (it advances past the ecall).
* When a guest ends, executors record a :class:`Termination` (``machine.terminate(exc)`` does it
  for every exception that ends a guest), so callers such as the CLI can print one line and exit
  with the status Linux would report.
* The Linux layer is imported lazily so ``machine`` stays importable from ``linux`` for typing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vmkit.async_executor.errors import (
    BudgetExhausted,
    GuestExit,
    GuestFault,
    WallClockExceeded,
)
from vmkit.async_executor.isa._decode import decoder_for
from vmkit.async_executor.isa._isa import RV64GC, Isa
from vmkit.async_executor.machine._hart import Hart
from vmkit.async_executor.machine._memory import AddressSpace

if TYPE_CHECKING:
    from vmkit.async_executor.linux._kernel import Linux
    from vmkit.async_executor.loader._elf import LoadedImage

__all__ = ["Machine", "Termination"]


@dataclass(frozen=True, slots=True)
class Termination:
    """How a guest ended.

    ``reason`` is ``"exit"`` (exit/exit_group or returning from main), ``"signal"`` (a fatal
    signal: SIGSEGV, SIGILL, SIGABRT ...), ``"budget"`` (the instruction budget ran out) or
    ``"wall-clock"`` (the wall-clock limit passed).
    ``signal`` is the signal number for ``"signal"``; ``message`` is one line for a user.
    """

    status: int
    reason: str
    signal: int | None = None
    message: str = ""
    pc: int | None = None


class Machine:
    """Hart, address space and Linux layer of one guest process."""

    def __init__(
        self,
        memory: AddressSpace | None = None,
        hart: Hart | None = None,
        linux: Linux | None = None,
        isa: Isa = RV64GC,
    ) -> None:
        self.memory = memory if memory is not None else AddressSpace()
        #: the extensions the hart implements; encodings of others are illegal instructions.
        self.isa = isa
        self.decoder = decoder_for(isa)
        self.hart = hart if hart is not None else Hart()
        if linux is None:
            # Lazy: linux imports machine modules, so a top-level import would be circular.
            from vmkit.async_executor.linux._kernel import Linux

            linux = Linux()
        self.linux = linux
        #: Set by the executor when the guest ends; None while it runs.
        self.termination: Termination | None = None
        #: Where the loader put the program (None for a hand-built machine).
        self.image: LoadedImage | None = None
        #: Host path of the program, for messages.
        self.exe_path: str | None = None

    def syscall(self) -> None:
        """Perform the ``ecall`` the hart is at: a7 = number, a0..a5 = arguments, a0 = result."""
        self.linux.syscall(self)

    def deliver_fault(self, fault: GuestFault) -> bool:
        """Hand a fault to the guest's signal handler, if it installed one (see Linux).

        True means the hart now runs the handler and the executor should continue at
        ``hart.pc``; False means the fault ends the guest (call :meth:`terminate`).
        """
        return self.linux.deliver_fault(self, fault)

    def check_wall_clock(self) -> None:
        """Raise WallClockExceeded when the guest's wall-clock limit has passed (executors and
        drivers call it between slices; the kernel checks at every system call)."""
        self.linux.check_wall_clock()

    def terminate(self, exc: BaseException) -> int:
        """Record how the guest ended from ``exc`` and return its exit status.

        Accepts GuestExit, GuestFault (any fatal signal) and BudgetExhausted; anything else is
        re-raised because it is a bug in the host, not something the guest did.
        """
        if isinstance(exc, WallClockExceeded):
            term = Termination(exc.status, "wall-clock", None, str(exc), self.hart.pc)
        elif isinstance(exc, GuestExit):
            term = Termination(exc.status & 0xFF, "exit", message=str(exc))
        elif isinstance(exc, GuestFault):
            term = Termination(exc.exit_status, "signal", exc.signal, str(exc), exc.pc)
        elif isinstance(exc, BudgetExhausted):
            term = Termination(exc.exit_status, "budget", None, str(exc), exc.pc)
        else:
            raise exc
        self.termination = term
        return term.status
