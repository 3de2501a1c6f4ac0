"""Guest machine state: the hart, the paged address space with its software TLB, the machine."""

from __future__ import annotations

from vmkit.async_executor.machine._hart import X_SINK, Hart
from vmkit.async_executor.machine._hooks import GuestStopped, HookHandle, Hooks, SyscallCall
from vmkit.async_executor.machine._machine import Machine, Termination
from vmkit.async_executor.machine._memory import (
    PAGE_SIZE,
    PERM_R,
    PERM_W,
    PERM_X,
    AddressSpace,
    GuestMemoryFault,
)

__all__ = [
    "PAGE_SIZE",
    "PERM_R",
    "PERM_W",
    "PERM_X",
    "X_SINK",
    "AddressSpace",
    "GuestMemoryFault",
    "GuestStopped",
    "Hart",
    "HookHandle",
    "Hooks",
    "Machine",
    "SyscallCall",
    "Termination",
]
