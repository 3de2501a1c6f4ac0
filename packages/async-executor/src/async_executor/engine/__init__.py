"""Executors that run guest code: the InterpreterExecutor and its statistics."""

from __future__ import annotations

from async_executor.engine._interpreter import MAX_BLOCK, InterpreterExecutor, MachineLike
from async_executor.engine._stats import ExecutionStats

__all__ = ["MAX_BLOCK", "ExecutionStats", "InterpreterExecutor", "MachineLike"]
