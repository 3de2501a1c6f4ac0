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
* The kernel behind ``ecall`` is whatever :class:`Kernel` the machine is given (the loader passes
  the Linux layer): ``machine`` imports nothing above it, so ``linux`` can build on it without an
  import cycle (an import-linter layers contract keeps it so). A machine built without one has a
  :class:`NoKernel`, whose ``ecall`` ends the guest with SIGSYS and a message saying so.
"""

from __future__ import annotations

from typing import Any, Generic, Protocol, TypeVar, overload

from vmkit.async_executor._record import FrozenRecord, init_field
from vmkit.async_executor.errors import (
    BudgetExhausted,
    GuestExit,
    GuestFault,
)
from vmkit.async_executor.isa._decode import decoder_for
from vmkit.async_executor.isa._isa import RV64GC, Isa
from vmkit.async_executor.machine._hart import Hart
from vmkit.async_executor.machine._hooks import STOPPED_STATUS, GuestStopped, Hooks
from vmkit.async_executor.machine._memory import AddressSpace


class Kernel(Protocol):
    """What a machine needs of the operating system behind ``ecall`` (the Linux layer has it)."""

    def syscall(self, machine: Machine[Any]) -> None:
        """Perform the system call the hart is at (a7, a0..a5 in; a0 out)."""

    def deliver_fault(self, machine: Machine[Any], fault: GuestFault) -> bool:
        """Run the guest's handler for ``fault`` if it has one; True means go on at hart.pc."""

    def check_wall_clock(self) -> None:
        """Raise WallClockExceeded when the guest's wall-clock limit has passed."""


class NoKernel:
    """The kernel of a machine built without one: a system call ends the guest (SIGSYS)."""

    def syscall(self, machine: Machine[Kernel]) -> None:
        """End the guest: there is nothing to serve the call."""
        number = machine.hart.x[17]
        raise NoKernelError(
            f"system call {number} at {machine.hart.pc:#x}: this machine has no kernel (build "
            f"it with one, as load_program does with the Linux layer)",
            pc=machine.hart.pc,
        )

    def deliver_fault(self, machine: Machine[Kernel], fault: GuestFault) -> bool:
        """No signal handlers without a kernel: every fault ends the guest."""
        return False

    def check_wall_clock(self) -> None:
        """No wall-clock limit without a kernel."""


class NoKernelError(GuestFault):
    """A system call on a machine without a kernel: the guest ends with SIGSYS."""

    signal = 31  # SIGSYS, what Linux sends for a system call it cannot serve under seccomp


K = TypeVar("K", bound=Kernel)

__all__ = ["Kernel", "Machine", "NoKernel", "NoKernelError", "Termination"]


class Termination(FrozenRecord):
    """How a guest ended.

    ``reason`` is ``"exit"`` (exit/exit_group or returning from main), ``"signal"`` (a fatal
    signal: SIGSEGV, SIGILL, SIGABRT ...), ``"budget"`` (the instruction budget ran out),
    ``"wall-clock"`` (the wall-clock limit passed), ``"deadlock"`` (every thread blocked for
    good, status 125) or ``"stopped"`` (a hook stopped it; ``run`` may carry on from there).
    ``signal`` is the signal number for ``"signal"``; ``message`` is one line for a user.
    """

    __slots__ = ("status", "reason", "signal", "message", "pc")
    status: int
    reason: str
    signal: int | None
    message: str
    pc: int | None

    def __init__(
        self,
        status: int,
        reason: str,
        signal: int | None = None,
        message: str = "",
        pc: int | None = None,
    ) -> None:
        init_field(self, "status", status)
        init_field(self, "reason", reason)
        init_field(self, "signal", signal)
        init_field(self, "message", message)
        init_field(self, "pc", pc)


class Machine(Generic[K]):
    """Hart, address space and kernel (``linux``: the Linux layer, for loaded programs) of one
    guest process."""

    @overload
    def __init__(
        self: Machine[NoKernel],
        memory: AddressSpace | None = None,
        hart: Hart | None = None,
        linux: None = None,
        isa: Isa = RV64GC,
    ) -> None: ...

    @overload
    def __init__(
        self, memory: AddressSpace | None, hart: Hart | None, linux: K, isa: Isa = RV64GC
    ) -> None: ...

    def __init__(
        self,
        memory: AddressSpace | None = None,
        hart: Hart | None = None,
        linux: K | None = None,
        isa: Isa = RV64GC,
    ) -> None:
        self.memory = memory if memory is not None else AddressSpace()
        #: the extensions the hart implements; encodings of others are illegal instructions.
        self.isa = isa
        self.decoder = decoder_for(isa)
        self.hart = hart if hart is not None else Hart()
        self.linux: K = linux if linux is not None else NoKernel()  # type: ignore[assignment]
        #: Set by the executor when the guest ends; None while it runs.
        self.termination: Termination | None = None
        #: Where the loader put the program (its ``LoadedImage``; None for a hand-built machine).
        self.image: object | None = None
        #: Host path of the program, for messages.
        self.exe_path: str | None = None
        #: Python callbacks on system calls and faults (see ``machine._hooks``).
        self.hooks = Hooks(self)

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
        if isinstance(exc, GuestStopped):
            term = Termination(STOPPED_STATUS, "stopped", None, str(exc), self.hart.pc)
        elif isinstance(exc, GuestExit) and exc.reason != "exit":
            # Ended from outside the guest's code: the wall-clock limit, a deadlock.
            term = Termination(exc.status, exc.reason, None, str(exc), self.hart.pc)
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
