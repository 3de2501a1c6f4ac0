"""Run static RISC-V RV64GC Linux programs in pure Python.

Typical use::

    from vmkit.async_executor import InterpreterExecutor, load_program

    machine = load_program("hello", ["hello"], root=".")
    status = InterpreterExecutor(machine).run(machine)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmkit.async_executor.__about__ import __version__
from vmkit.async_executor._lazy import lazy_exports

if TYPE_CHECKING:
    from vmkit.async_executor.__about__ import __version__
    from vmkit.async_executor.engine import (
        DEFAULT_SLICE,
        DEFAULT_THRESHOLD,
        TIERS,
        TRANSLATOR_VERSION,
        AsyncExecutionContext,
        ExecutionStats,
        GuestWait,
        HybridExecutor,
        InterpreterExecutor,
        JitExecutor,
        JitStats,
        ThreadedGuest,
        TranslatedBlock,
        build_code_cache,
        discover_blocks,
        load_code_cache,
        profiled_code_cache,
        save_code_cache,
    )
    from vmkit.async_executor.errors import (
        BUDGET_EXHAUSTED_STATUS,
        AsyncExecutorError,
        BudgetExhausted,
        BusError,
        ElfLoadError,
        GuestExit,
        GuestFault,
        GuestSignal,
        IllegalInstruction,
        SegmentationFault,
    )
    from vmkit.async_executor.limits import (
        DEFAULT_LIMITS,
        WALL_CLOCK_EXCEEDED_STATUS,
        GuestLimits,
        LimitCounters,
    )
    from vmkit.async_executor.linux import GuestFS, Linux
    from vmkit.async_executor.linux._capture import OutputCapture
    from vmkit.async_executor.linux._threads import (
        DEADLOCK_STATUS,
        GuestDeadlock,
        GuestThread,
        Threads,
    )
    from vmkit.async_executor.loader import load_program
    from vmkit.async_executor.machine import (
        AddressSpace,
        GuestMemoryFault,
        GuestStopped,
        Hart,
        HookHandle,
        Hooks,
        SyscallCall,
    )
    from vmkit.async_executor.machine._machine import Machine, Termination

__all__ = [
    "BUDGET_EXHAUSTED_STATUS",
    "DEADLOCK_STATUS",
    "DEFAULT_LIMITS",
    "DEFAULT_SLICE",
    "DEFAULT_THRESHOLD",
    "TIERS",
    "TRANSLATOR_VERSION",
    "WALL_CLOCK_EXCEEDED_STATUS",
    "AddressSpace",
    "AsyncExecutionContext",
    "AsyncExecutorError",
    "BudgetExhausted",
    "BusError",
    "ElfLoadError",
    "ExecutionStats",
    "GuestDeadlock",
    "GuestExit",
    "GuestFS",
    "GuestFault",
    "GuestLimits",
    "GuestMemoryFault",
    "GuestSignal",
    "GuestStopped",
    "GuestThread",
    "GuestWait",
    "Hart",
    "HookHandle",
    "Hooks",
    "HybridExecutor",
    "IllegalInstruction",
    "InterpreterExecutor",
    "JitExecutor",
    "JitStats",
    "LimitCounters",
    "Linux",
    "Machine",
    "OutputCapture",
    "SegmentationFault",
    "SyscallCall",
    "Termination",
    "ThreadedGuest",
    "Threads",
    "TranslatedBlock",
    "__version__",
    "build_code_cache",
    "discover_blocks",
    "load_code_cache",
    "load_program",
    "profiled_code_cache",
    "save_code_cache",
]

_EXPORTS = {
    "DEFAULT_SLICE": "vmkit.async_executor.engine",
    "DEFAULT_THRESHOLD": "vmkit.async_executor.engine",
    "TIERS": "vmkit.async_executor.engine",
    "TRANSLATOR_VERSION": "vmkit.async_executor.engine",
    "AsyncExecutionContext": "vmkit.async_executor.engine",
    "ExecutionStats": "vmkit.async_executor.engine",
    "HybridExecutor": "vmkit.async_executor.engine",
    "GuestWait": "vmkit.async_executor.engine",
    "ThreadedGuest": "vmkit.async_executor.engine",
    "DEADLOCK_STATUS": "vmkit.async_executor.linux._threads",
    "GuestDeadlock": "vmkit.async_executor.linux._threads",
    "GuestThread": "vmkit.async_executor.linux._threads",
    "Threads": "vmkit.async_executor.linux._threads",
    "InterpreterExecutor": "vmkit.async_executor.engine",
    "JitExecutor": "vmkit.async_executor.engine",
    "JitStats": "vmkit.async_executor.engine",
    "TranslatedBlock": "vmkit.async_executor.engine",
    "build_code_cache": "vmkit.async_executor.engine",
    "discover_blocks": "vmkit.async_executor.engine",
    "load_code_cache": "vmkit.async_executor.engine",
    "profiled_code_cache": "vmkit.async_executor.engine",
    "save_code_cache": "vmkit.async_executor.engine",
    "BUDGET_EXHAUSTED_STATUS": "vmkit.async_executor.errors",
    "AsyncExecutorError": "vmkit.async_executor.errors",
    "BudgetExhausted": "vmkit.async_executor.errors",
    "BusError": "vmkit.async_executor.errors",
    "ElfLoadError": "vmkit.async_executor.errors",
    "GuestExit": "vmkit.async_executor.errors",
    "GuestFault": "vmkit.async_executor.errors",
    "GuestSignal": "vmkit.async_executor.errors",
    "IllegalInstruction": "vmkit.async_executor.errors",
    "SegmentationFault": "vmkit.async_executor.errors",
    "DEFAULT_LIMITS": "vmkit.async_executor.limits",
    "WALL_CLOCK_EXCEEDED_STATUS": "vmkit.async_executor.limits",
    "GuestLimits": "vmkit.async_executor.limits",
    "LimitCounters": "vmkit.async_executor.limits",
    "GuestFS": "vmkit.async_executor.linux",
    "Linux": "vmkit.async_executor.linux",
    "load_program": "vmkit.async_executor.loader",
    "AddressSpace": "vmkit.async_executor.machine",
    "GuestMemoryFault": "vmkit.async_executor.machine",
    "Hart": "vmkit.async_executor.machine",
    "GuestStopped": "vmkit.async_executor.machine",
    "HookHandle": "vmkit.async_executor.machine",
    "Hooks": "vmkit.async_executor.machine",
    "SyscallCall": "vmkit.async_executor.machine",
    "OutputCapture": "vmkit.async_executor.linux._capture",
    "Machine": "vmkit.async_executor.machine._machine",
    "Termination": "vmkit.async_executor.machine._machine",
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
