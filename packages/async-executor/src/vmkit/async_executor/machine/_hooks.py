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
* Code and memory hooks need the guest one instruction at a time, which no fast engine does.
  So the fast engines only *notice* hooked code and hooked memory, and leave them to a stepper
  (``engine._hooked``) that runs those instructions one by one on the interpreter, with the
  hart exact at every event. Code: the block builders (interpreter, translator, native regions)
  end a block before a pc a code hook covers, and the block *at* such a pc is a stub raising
  :class:`EnterHookedCode`; adding or removing a code hook rebuilds the blocks of the pages it
  covers. Memory: the pages a memory hook watches stay out of the TLB, so the engines' accesses
  to them reach the address space's slow path, which raises a SIGSEGV-shaped fault with
  :data:`HOOKED_ACCESS` as its reason, precise like every memory fault; the stepper then runs
  that instruction with the hooks firing. Only what a hook covers leaves the fast path.
* A basic block, for block hooks, starts at the first instruction a run executes in a hooked
  range and after every control transfer (branch taken or not, jump, ``ecall``): the same
  instruction stream gives the same blocks on every engine.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from vmkit.async_executor._record import FrozenRecord, Record, init_field
from vmkit.async_executor.errors import GuestFault
from vmkit.async_executor.machine._memory import PAGE_SHIFT, GuestMemoryFault

if TYPE_CHECKING:
    from vmkit.async_executor.errors import IllegalInstruction, SegmentationFault

__all__ = [
    "ADDRESS_END",
    "HOOKED_ACCESS",
    "STOPPED_STATUS",
    "EnterHookedCode",
    "GuestStopped",
    "HookHandle",
    "Hooks",
    "SyscallCall",
]

#: Exit status recorded when a hook stopped the guest (it has not ended: ``run`` may resume).
STOPPED_STATUS = 0
#: End of the address space: the default ``end`` of a range hook (all addresses).
ADDRESS_END: Final = 1 << 64
#: The ``reason`` of the fault an engine stops at on an access a memory hook watches.
HOOKED_ACCESS: Final = "watched by a memory hook"
_MEMORY_KINDS: Final = {"read": ("read",), "write": ("write",), "access": ("read", "write")}


class EnterHookedCode(GuestFault):
    """An engine reached a pc a code hook covers: the stepper takes over there (never fatal:
    the executor base handles it; the instruction has not run)."""

    signal = 0

    def __init__(self, pc: int) -> None:
        super().__init__(f"entering hooked code at {pc:#x}", pc=pc)


class _Ranges:
    """Merged half-open address ranges with an O(log n) membership test (``pc in ranges``)."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, ranges: Iterable[tuple[int, int]]) -> None:
        merged: list[list[int]] = []
        for start, end in sorted(ranges):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self._starts = [r[0] for r in merged]
        self._ends = [r[1] for r in merged]

    def __contains__(self, addr: object) -> bool:
        if not isinstance(addr, int):
            return False
        i = bisect.bisect_right(self._starts, addr) - 1
        return i >= 0 and addr < self._ends[i]

    def overlaps(self, start: int, end: int) -> bool:
        """Whether ``[start, end)`` meets a range."""
        i = bisect.bisect_left(self._ends, start + 1)
        return i < len(self._starts) and self._starts[i] < end

    def pages(self) -> _Ranges:
        """The same ranges in page numbers (a page touched by a range is in it)."""
        return _Ranges(
            (s >> PAGE_SHIFT, ((e - 1) >> PAGE_SHIFT) + 1)
            for s, e in zip(self._starts, self._ends, strict=True)
        )

    def __bool__(self) -> bool:
        return bool(self._starts)


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


class SyscallCall(Record):
    """One system call as hooks see it.

    A *before* hook may set ``result`` to skip the call (the guest gets ``result`` in a0, the
    kernel does nothing); an *after* hook sees the result the guest will get and may change it.
    ``result`` is signed: a negative errno is ``-errno``.
    """

    __slots__ = ("number", "name", "args", "pc", "machine", "result")
    _hidden = frozenset({"machine"})
    number: int
    name: str
    args: tuple[int, int, int, int, int, int]
    pc: int
    machine: Any
    result: int | None

    def __init__(
        self,
        number: int,
        name: str,
        args: tuple[int, int, int, int, int, int],
        pc: int,
        machine: Any,
        result: int | None = None,
    ) -> None:
        self.number = number
        self.name = name
        self.args = args
        self.pc = pc
        self.machine = machine
        self.result = result


class HookHandle(FrozenRecord):
    """What ``add_*`` returns: give it to :meth:`Hooks.remove` (equal only to itself)."""

    __slots__ = ("kind", "callback", "numbers", "begin", "end")
    kind: str
    callback: Callable[..., Any]
    numbers: frozenset[int] | None
    #: The address range ``[begin, end)`` of a code or memory hook.
    begin: int
    end: int

    def __init__(
        self,
        kind: str,
        callback: Callable[..., Any],
        numbers: frozenset[int] | None = None,
        begin: int = 0,
        end: int = ADDRESS_END,
    ) -> None:
        init_field(self, "kind", kind)
        init_field(self, "callback", callback)
        init_field(self, "numbers", numbers)
        init_field(self, "begin", begin)
        init_field(self, "end", end)

    __eq__ = object.__eq__
    __hash__ = object.__hash__


SyscallHook = Callable[[SyscallCall], object]
#: ``hook(machine, fault) -> bool``: True when the hook fixed the cause (mapped the page,
#: replaced the instruction, moved the pc) and the guest should go on at ``hart.pc``.
FaultHook = Callable[[Any, Any], bool]
#: ``hook(machine, pc)``: before the instruction (or the basic block) at ``pc`` runs.
CodeHook = Callable[[Any, int], object]
#: ``hook(machine, access, addr, size, value)``: ``access`` is "read" (``value`` was read) or
#: "write" (``value`` is about to be written); the hart is at the accessing instruction.
MemoryHook = Callable[[Any, str, int, int, int], object]


class Hooks:
    """The hooks of one machine (see the module note)."""

    __slots__ = (
        "_code",
        "_hooks",
        "_machine",
        "_memory_ranges",
        "_stop_requested",
        "block_pending",
        "on_syscalls",
        "stepping",
    )

    def __init__(self, machine: Any = None) -> None:
        self._machine = machine
        self._hooks: dict[str, list[HookHandle]] = {
            "syscall_before": [],
            "syscall_after": [],
            "invalid_memory": [],
            "illegal_instruction": [],
            "code": [],
            "block": [],
            "memory_read": [],
            "memory_write": [],
        }
        self._stop_requested = False
        #: Whether a system call must go through the hooks: a plain attribute, since the
        #: kernel reads it on every call.
        self.on_syscalls = False
        #: What code and block hooks cover (None: nothing), and what memory hooks watch.
        self._code: _Ranges | None = None
        self._memory_ranges: dict[str, _Ranges] = {}
        #: Set by the stepper while it runs an instruction (memory hooks then fire instead
        #: of stopping the engine), and whether the next stepped instruction starts a block.
        self.stepping = False
        self.block_pending = True

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

    def add_code(self, hook: CodeHook, begin: int = 0, end: int = ADDRESS_END) -> HookHandle:
        """Call ``hook(machine, pc)`` before every instruction at a pc in ``[begin, end)``
        (the hart exact: registers, ``pc``, ``instret``; the hook may change them, and a
        changed ``pc`` is where the guest goes on)."""
        return self._add_range("code", hook, begin, end)

    def add_block(self, hook: CodeHook, begin: int = 0, end: int = ADDRESS_END) -> HookHandle:
        """Call ``hook(machine, pc)`` on entering each basic block whose first instruction is
        in ``[begin, end)`` (see the module note for where blocks start)."""
        return self._add_range("block", hook, begin, end)

    def add_memory(
        self,
        hook: MemoryHook,
        begin: int = 0,
        end: int = ADDRESS_END,
        *,
        access: str = "write",
    ) -> HookHandle:
        """Call ``hook(machine, access, addr, size, value)`` on each guest load (``access=
        "read"``), store (``"write"``) or both (``"access"``) that touches ``[begin, end)``,
        with the hart at the accessing instruction. Accesses the kernel makes for system calls
        are not guest instructions and are not reported."""
        kinds = _MEMORY_KINDS.get(access)
        if kinds is None:
            raise ValueError(f"access must be 'read', 'write' or 'access', got {access!r}")
        handle = None
        for kind in kinds:  # "access" is one handle per direction, removed together
            handle = self._add_range(f"memory_{kind}", hook, begin, end, handle)
        assert handle is not None
        return handle

    def _add_range(
        self,
        kind: str,
        hook: Callable[..., Any],
        begin: int,
        end: int,
        same: HookHandle | None = None,
    ) -> HookHandle:
        if not 0 <= begin < end <= ADDRESS_END:
            raise ValueError(f"need 0 <= begin < end <= 2**64, got [{begin:#x}, {end:#x})")
        handle = same if same is not None else HookHandle(kind, hook, None, begin, end)
        self._hooks[kind].append(handle)
        self._refresh(changed=(begin, end))
        return handle

    def _add(self, kind: str, hook: Callable[..., Any]) -> HookHandle:
        handle = HookHandle(kind, hook)
        self._hooks[kind].append(handle)
        return handle

    def remove(self, handle: HookHandle) -> None:
        """Remove a hook (a handle removed twice is ignored)."""
        found = False
        for hooks in self._hooks.values():
            if handle in hooks:
                hooks.remove(handle)
                found = True
        if found:
            self._refresh(changed=(handle.begin, handle.end))

    def _refresh(self, changed: tuple[int, int] | None = None) -> None:
        hooks = self._hooks
        self.on_syscalls = bool(hooks["syscall_before"] or hooks["syscall_after"])
        code = [(h.begin, h.end) for h in (*hooks["code"], *hooks["block"])]
        was_code = self._code
        self._code = _Ranges(code) if code else None
        self._memory_ranges = {
            kind: _Ranges((h.begin, h.end) for h in hooks[f"memory_{kind}"])
            for kind in ("read", "write")
            if hooks[f"memory_{kind}"]
        }
        memory = getattr(self._machine, "memory", None)
        if memory is None or changed is None:
            return
        ranges = self._memory_ranges
        read, write = ranges.get("read"), ranges.get("write")
        if ranges or memory.access_hook is not None:
            memory.access_hook = self._access if ranges else None
            memory.hook_pages(
                read.pages() if read else frozenset(), write.pages() if write else frozenset()
            )
        memory.code_hooked = self._code.__contains__ if self._code is not None else None
        if self._code is not None or was_code is not None:
            memory.code_changed_in(*changed)  # blocks are built again around hooked code

    def stop(self) -> None:
        """From inside a hook: stop the guest cleanly once the hook returns."""
        self._stop_requested = True

    @property
    def active(self) -> bool:
        """Whether any hook is registered."""
        return any(self._hooks.values())

    def covers(self, pc: int) -> bool:
        """Whether a code or block hook covers ``pc`` (the stepper runs it)."""
        code = self._code
        return code is not None and pc in code

    @property
    def per_instruction(self) -> bool:
        """Whether the stepper must go one instruction at a time (a code hook, or a memory
        hook, needs the hart exact at every instruction; block hooks only at block starts)."""
        hooks = self._hooks
        return bool(hooks["code"] or hooks["memory_read"] or hooks["memory_write"])

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

    def code(self, machine: Any, pc: int) -> None:
        """Run the block hooks (when a block starts here) and the code hooks covering ``pc``."""
        if self.block_pending:
            self.block_pending = False
            for handle in list(self._hooks["block"]):
                if handle.begin <= pc < handle.end:
                    handle.callback(machine, pc)
                    self._check_stop()
        for handle in list(self._hooks["code"]):
            if handle.begin <= pc < handle.end:
                handle.callback(machine, pc)
                self._check_stop()

    def _access(self, access: str, addr: int, size: int, value: int) -> None:
        """The address space's slow path on an access to a watched page: fire the memory
        hooks while the stepper runs the instruction, else stop the engine there."""
        ranges = self._memory_ranges.get(access)
        if ranges is None or not ranges.overlaps(addr, addr + size):
            return
        if not self.stepping:
            raise GuestMemoryFault(addr, access, HOOKED_ACCESS)
        end = addr + size
        for handle in list(self._hooks[f"memory_{access}"]):
            if handle.begin < end and addr < handle.end:
                handle.callback(self._machine, access, addr, size, value)
                self._check_stop()

    def _check_stop(self) -> None:
        if self._stop_requested:
            self._stop_requested = False
            raise GuestStopped()
