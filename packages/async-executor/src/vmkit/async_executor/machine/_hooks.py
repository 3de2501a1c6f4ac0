"""Hooks: Python callbacks that observe a running guest and may change what happens.

Design notes
------------
* One registry per machine (``machine.hooks``), consulted where the event happens, so every
  engine sees the same events: system calls in the kernel's dispatch, invalid memory accesses
  and illegal instructions where the executor base delivers faults. Nothing is consulted on a
  hot path: a system call checks one list, a fault path one more; with no hooks registered the
  engines run exactly as before.
* Hooks may be added and removed at any time, also from inside a hook (the lists are copied
  when an event fires, so the change counts from the next event).
* A hook that wants the guest to stop raises :class:`GuestStopped` (or calls
  :meth:`Hooks.stop` before returning): the run ends cleanly with ``machine.termination.reason
  == "stopped"``, the hart exact at the instruction that was about to run, and a later ``run``
  carries on from there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vmkit.async_executor.errors import GuestFault

if TYPE_CHECKING:
    from vmkit.async_executor.errors import IllegalInstruction, SegmentationFault

__all__ = [
    "STOPPED_STATUS",
    "GuestStopped",
    "HookHandle",
    "Hooks",
    "SyscallCall",
]

#: Exit status recorded when a hook stopped the guest (it has not ended: ``run`` may resume).
STOPPED_STATUS = 0


class GuestStopped(GuestFault):
    """Raised by a hook to stop the guest cleanly before the instruction it is about to run.

    A GuestFault so that every executor stops with the hart exact (the instruction not retired);
    the executor base records ``Termination(reason="stopped")`` instead of a signal.
    """

    signal = 0

    def __init__(self, reason: str = "stopped by a hook") -> None:
        super().__init__(reason)
        #: When an after-hook stopped the guest, the result of the system call it had made:
        #: the executor base then completes the ``ecall`` (a0, pc, instret) before stopping.
        self.completed: int | None = None


@dataclass(slots=True)
class SyscallCall:
    """One system call as hooks see it.

    A *before* hook may set ``result`` to skip the call (the guest gets ``result`` in a0, the
    kernel does nothing); an *after* hook sees the result the guest will get and may change it.
    ``result`` is signed: a negative errno is ``-errno``.
    """

    number: int
    name: str
    args: tuple[int, int, int, int, int, int]
    pc: int
    machine: Any = field(repr=False)
    result: int | None = None


@dataclass(frozen=True, slots=True)
class HookHandle:
    """What ``add_*`` returns: give it to :meth:`Hooks.remove`."""

    kind: str
    callback: Callable[..., Any]
    numbers: frozenset[int] | None = None


SyscallHook = Callable[[SyscallCall], object]
#: ``hook(machine, fault) -> bool``: True when the hook fixed the cause (mapped the page,
#: replaced the instruction, moved the pc) and the guest should go on at ``hart.pc``.
FaultHook = Callable[[Any, Any], bool]


class Hooks:
    """The hooks of one machine (see the module note)."""

    __slots__ = ("_hooks", "_stop_requested", "on_syscalls")

    def __init__(self) -> None:
        self._hooks: dict[str, list[HookHandle]] = {
            "syscall_before": [],
            "syscall_after": [],
            "invalid_memory": [],
            "illegal_instruction": [],
        }
        self._stop_requested = False
        #: Whether a system call must go through the hooks: a plain attribute, since the
        #: kernel reads it on every call.
        self.on_syscalls = False

    # ------------------------------------------------------------------ registration

    def add_syscall(
        self, hook: SyscallHook, *, when: str = "before", numbers: Iterable[int] | None = None
    ) -> HookHandle:
        """Call ``hook(call)`` before (or ``when="after"``) each system call, or only those in
        ``numbers`` (riscv64 numbers; ``SYSCALL_NUMBERS`` names them)."""
        if when not in ("before", "after"):
            raise ValueError(f"when must be 'before' or 'after', got {when!r}")
        handle = HookHandle(
            f"syscall_{when}", hook, None if numbers is None else frozenset(numbers)
        )
        self._hooks[handle.kind].append(handle)
        self._refresh()
        return handle

    def add_invalid_memory(self, hook: FaultHook) -> HookHandle:
        """Call ``hook(machine, fault)`` on a load, store or fetch the guest may not make (a
        :class:`SegmentationFault` with ``addr``, ``access`` and ``pc``), before the guest's own
        SIGSEGV handler; returning True retries the instruction (map the page first)."""
        return self._add("invalid_memory", hook)

    def add_illegal_instruction(self, hook: FaultHook) -> HookHandle:
        """Call ``hook(machine, fault)`` on an illegal instruction (an
        :class:`IllegalInstruction` with ``raw`` and ``pc``); returning True goes on at
        ``hart.pc`` (set it past the instruction, or leave it to retry)."""
        return self._add("illegal_instruction", hook)

    def _add(self, kind: str, hook: Callable[..., Any]) -> HookHandle:
        handle = HookHandle(kind, hook)
        self._hooks[kind].append(handle)
        return handle

    def remove(self, handle: HookHandle) -> None:
        """Remove a hook (a handle removed twice is ignored)."""
        hooks = self._hooks.get(handle.kind, [])
        if handle in hooks:
            hooks.remove(handle)
        self._refresh()

    def _refresh(self) -> None:
        self.on_syscalls = bool(self._hooks["syscall_before"] or self._hooks["syscall_after"])

    def stop(self) -> None:
        """From inside a hook: stop the guest cleanly once the hook returns."""
        self._stop_requested = True

    @property
    def active(self) -> bool:
        """Whether any hook is registered."""
        return any(self._hooks.values())

    # ------------------------------------------------------------------ firing

    def syscall_before(self, call: SyscallCall) -> None:
        """Run the before-hooks interested in ``call`` (one may set ``call.result``)."""
        self._fire_syscall("syscall_before", call)

    def syscall_after(self, call: SyscallCall) -> None:
        """Run the after-hooks interested in ``call`` (one may change ``call.result``)."""
        self._fire_syscall("syscall_after", call)

    def _fire_syscall(self, kind: str, call: SyscallCall) -> None:
        for handle in list(self._hooks[kind]):
            if handle.numbers is None or call.number in handle.numbers:
                handle.callback(call)
                self._check_stop()

    def invalid_memory(self, machine: Any, fault: SegmentationFault) -> bool:
        """Offer an invalid access to the hooks; True when one fixed it."""
        return self._fire_fault("invalid_memory", machine, fault)

    def illegal_instruction(self, machine: Any, fault: IllegalInstruction) -> bool:
        """Offer an illegal instruction to the hooks; True when one dealt with it."""
        return self._fire_fault("illegal_instruction", machine, fault)

    def _fire_fault(self, kind: str, machine: Any, fault: Any) -> bool:
        for handle in list(self._hooks[kind]):
            if handle.callback(machine, fault):
                self._check_stop()
                return True
            self._check_stop()
        return False

    def _check_stop(self) -> None:
        if self._stop_requested:
            self._stop_requested = False
            raise GuestStopped()
