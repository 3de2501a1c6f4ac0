"""Executors that run guest code: the interpreter, the JIT, the hybrid of both, AOT code caches."""

from __future__ import annotations

from vmkit.async_executor.engine._context import AsyncExecutionContext, JitStats
from vmkit.async_executor.engine._interpreter import MAX_BLOCK, InterpreterExecutor, MachineLike
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
    "HybridExecutor",
    "InterpreterExecutor",
    "JitExecutor",
    "JitStats",
    "MachineLike",
    "TranslatedBlock",
    "build_code_cache",
    "discover_blocks",
    "load_code_cache",
    "profiled_code_cache",
    "save_code_cache",
]
