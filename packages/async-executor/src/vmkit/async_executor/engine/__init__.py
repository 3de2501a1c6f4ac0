"""Executors that run guest code: the interpreter, the JIT, the hybrid of both, AOT code caches."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vmkit.async_executor._lazy import lazy_exports

if TYPE_CHECKING:
    from vmkit.async_executor.engine._context import AsyncExecutionContext, JitStats
    from vmkit.async_executor.engine._executor import Executor, ExecutorBase, MachineLike
    from vmkit.async_executor.engine._guest_threads import GuestWait, ThreadedGuest
    from vmkit.async_executor.engine._interpreter import MAX_BLOCK, InterpreterExecutor
    from vmkit.async_executor.engine._jit import DEFAULT_SLICE, JitExecutor
    from vmkit.async_executor.engine._jit_aot import (
        build_code_cache,
        discover_blocks,
        load_code_cache,
        profiled_code_cache,
        save_code_cache,
    )
    from vmkit.async_executor.engine._jit_hybrid import DEFAULT_THRESHOLD, TIERS, HybridExecutor
    from vmkit.async_executor.engine._stats import ExecutionStats
    from vmkit.async_executor.engine._translate import TRANSLATOR_VERSION, TranslatedBlock

__all__ = [
    "DEFAULT_SLICE",
    "DEFAULT_THRESHOLD",
    "MAX_BLOCK",
    "TIERS",
    "TRANSLATOR_VERSION",
    "AsyncExecutionContext",
    "ExecutionStats",
    "Executor",
    "ExecutorBase",
    "GuestWait",
    "HybridExecutor",
    "InterpreterExecutor",
    "JitExecutor",
    "JitStats",
    "MachineLike",
    "ThreadedGuest",
    "TranslatedBlock",
    "build_code_cache",
    "discover_blocks",
    "load_code_cache",
    "profiled_code_cache",
    "save_code_cache",
]

_EXPORTS = {
    "AsyncExecutionContext": "vmkit.async_executor.engine._context",
    "JitStats": "vmkit.async_executor.engine._context",
    "MAX_BLOCK": "vmkit.async_executor.engine._interpreter",
    "InterpreterExecutor": "vmkit.async_executor.engine._interpreter",
    "MachineLike": "vmkit.async_executor.engine._executor",
    "Executor": "vmkit.async_executor.engine._executor",
    "ExecutorBase": "vmkit.async_executor.engine._executor",
    "GuestWait": "vmkit.async_executor.engine._guest_threads",
    "ThreadedGuest": "vmkit.async_executor.engine._guest_threads",
    "DEFAULT_SLICE": "vmkit.async_executor.engine._defaults",
    "JitExecutor": "vmkit.async_executor.engine._jit",
    "build_code_cache": "vmkit.async_executor.engine._jit_aot",
    "discover_blocks": "vmkit.async_executor.engine._jit_aot",
    "load_code_cache": "vmkit.async_executor.engine._jit_aot",
    "profiled_code_cache": "vmkit.async_executor.engine._jit_aot",
    "save_code_cache": "vmkit.async_executor.engine._jit_aot",
    "DEFAULT_THRESHOLD": "vmkit.async_executor.engine._defaults",
    "TIERS": "vmkit.async_executor.engine._defaults",
    "HybridExecutor": "vmkit.async_executor.engine._jit_hybrid",
    "ExecutionStats": "vmkit.async_executor.engine._stats",
    "TRANSLATOR_VERSION": "vmkit.async_executor.engine._translate",
    "TranslatedBlock": "vmkit.async_executor.engine._translate",
}
__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
