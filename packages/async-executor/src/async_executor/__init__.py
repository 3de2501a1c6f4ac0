"""Run static RISC-V RV64GC Linux programs in pure Python.

Typical use::

    from async_executor import InterpreterExecutor, load_program

    machine = load_program("hello", ["hello"], root=".")
    status = InterpreterExecutor(machine).run(machine)
"""

from __future__ import annotations

from async_executor.__about__ import __version__
from async_executor.engine import ExecutionStats, InterpreterExecutor
from async_executor.errors import (
    BUDGET_EXHAUSTED_STATUS,
    AsyncExecutorError,
    BudgetExhausted,
    ElfLoadError,
    GuestExit,
    GuestFault,
    GuestSignal,
    IllegalInstruction,
    SegmentationFault,
)
from async_executor.linux import GuestFS, Linux
from async_executor.loader import load_program
from async_executor.machine import AddressSpace, GuestMemoryFault, Hart
from async_executor.machine._machine import Machine, Termination

__all__ = [
    "BUDGET_EXHAUSTED_STATUS",
    "AddressSpace",
    "AsyncExecutorError",
    "BudgetExhausted",
    "ElfLoadError",
    "ExecutionStats",
    "GuestExit",
    "GuestFS",
    "GuestFault",
    "GuestMemoryFault",
    "GuestSignal",
    "Hart",
    "IllegalInstruction",
    "InterpreterExecutor",
    "Linux",
    "Machine",
    "SegmentationFault",
    "Termination",
    "__version__",
    "load_program",
]
