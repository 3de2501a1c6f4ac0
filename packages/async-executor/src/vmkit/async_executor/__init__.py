"""Run static RISC-V RV64GC Linux programs in pure Python.

Typical use::

    from vmkit.async_executor import InterpreterExecutor, load_program

    machine = load_program("hello", ["hello"], root=".")
    status = InterpreterExecutor(machine).run(machine)
"""

from __future__ import annotations

from vmkit.async_executor.__about__ import __version__
from vmkit.async_executor.engine import (
    DEFAULT_SLICE,
    DEFAULT_THRESHOLD,
    TIERS,
    TRANSLATOR_VERSION,
    AsyncExecutionContext,
    ExecutionStats,
    HybridExecutor,
    InterpreterExecutor,
    JitExecutor,
    JitStats,
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
from vmkit.async_executor.loader import load_program
from vmkit.async_executor.machine import AddressSpace, GuestMemoryFault, Hart
from vmkit.async_executor.machine._machine import Machine, Termination

__all__ = [
    "BUDGET_EXHAUSTED_STATUS",
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
    "GuestExit",
    "GuestFS",
    "GuestFault",
    "GuestLimits",
    "GuestMemoryFault",
    "GuestSignal",
    "Hart",
    "HybridExecutor",
    "IllegalInstruction",
    "InterpreterExecutor",
    "JitExecutor",
    "JitStats",
    "LimitCounters",
    "Linux",
    "Machine",
    "SegmentationFault",
    "Termination",
    "TranslatedBlock",
    "__version__",
    "build_code_cache",
    "discover_blocks",
    "load_code_cache",
    "load_program",
    "profiled_code_cache",
    "save_code_cache",
]
