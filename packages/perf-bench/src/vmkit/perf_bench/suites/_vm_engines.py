"""Which async-executor engines the VM suite measures, and the switch that turns the JIT off.

Design note: every engine is taken from async-executor's public API (``vmkit.async_executor``);
the suite still checks at run time that the JIT works (a smoke run against the interpreter)
before it measures it, so a broken JIT is reported as unavailable, with the reason, never as a
number.

``PERF_BENCH_DISABLE_JIT=1`` (or ``perf-bench run --disable-jit``, which sets it for the worker
processes) makes the JIT benchmark measure the interpreter in the JIT's place, for the acceptance
check that a comparison against such a run reports the JIT metrics as a regression. The result is
labelled: the benchmark's description says so, and the translation metrics, which an interpreter
does not have, are left out rather than faked.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vmkit.async_executor import AsyncExecutionContext, InterpreterExecutor, JitExecutor

__all__ = [
    "DISABLE_JIT_ENV",
    "aot_functions",
    "aot_unavailable_reason",
    "interpreter_factory",
    "jit_classes",
    "jit_disabled",
    "jit_unavailable_reason",
]

DISABLE_JIT_ENV = "PERF_BENCH_DISABLE_JIT"
"""Environment variable: when set to a true value, the JIT benchmark measures the interpreter."""

_TRUE = {"1", "true", "yes", "on"}


def jit_disabled() -> bool:
    """Whether ``PERF_BENCH_DISABLE_JIT`` asks for the JIT to be replaced by the interpreter."""
    return os.environ.get(DISABLE_JIT_ENV, "").strip().lower() in _TRUE


def interpreter_factory() -> type[InterpreterExecutor]:
    """The interpreter class: ``machine -> InterpreterExecutor(machine)``."""
    from vmkit.async_executor import InterpreterExecutor

    return InterpreterExecutor


def jit_classes() -> tuple[type[JitExecutor], type[AsyncExecutionContext]]:
    """``(JitExecutor, AsyncExecutionContext)`` from async-executor's public API."""
    from vmkit.async_executor import AsyncExecutionContext, JitExecutor

    return JitExecutor, AsyncExecutionContext


@functools.cache
def jit_unavailable_reason() -> str | None:
    """Why the JIT cannot be measured here, or ``None`` when it can.

    A smoke run must pass: the quick kernels (crc32, sieve, matmul) under
    the JIT must exit 0 with the right output and retire exactly as many instructions as the
    interpreter (MIPS from a miscounting engine mean nothing). A JIT that fails
    on real programs is then reported as unavailable, with its error, rather than breaking the
    whole suite. Cached per process.
    """
    executor, context = jit_classes()
    from vmkit.perf_bench.suites._vm_workloads import WORKLOADS, run_guest

    interpreter = interpreter_factory()
    for name in ("crc32", "sieve", "matmul"):
        try:
            jitted = run_guest(WORKLOADS[name], "jit", lambda m: executor(m, context()), quick=True)
            interpreted = run_guest(WORKLOADS[name], "interpreter", interpreter, quick=True)
        except Exception as exc:  # any failure of the smoke run is the reason
            first = str(exc).splitlines()[0] if str(exc) else ""
            return f"the JIT fails its smoke run on {name}: {type(exc).__name__}: {first}"
        if jitted.instructions != interpreted.instructions:
            return (
                f"the JIT fails its smoke run on {name}: it retires {jitted.instructions} "
                f"instructions, the interpreter {interpreted.instructions}"
            )
    return None


def aot_functions() -> tuple[
    Callable[..., Any], Callable[..., Any], Callable[..., Any], Callable[..., Any]
]:
    """``(build_code_cache, save_code_cache, load_code_cache, profiled_code_cache)`` from
    async-executor's public API."""
    from vmkit.async_executor import (
        build_code_cache,
        load_code_cache,
        profiled_code_cache,
        save_code_cache,
    )

    return build_code_cache, save_code_cache, load_code_cache, profiled_code_cache


def aot_unavailable_reason() -> str | None:
    """Why AOT compilation cannot be measured here, or ``None`` when it can."""
    if jit_disabled():
        return f"the JIT is disabled ({DISABLE_JIT_ENV}); AOT code is the JIT's code"
    return jit_unavailable_reason()
