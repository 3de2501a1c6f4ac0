"""Which async-executor engines exist here, and the switch that turns the JIT off.

Design note: the VM suite measures engines that are still being built, so it asks at run time
what exists instead of assuming. The JIT is looked up as ``vmkit.async_executor.JitExecutor`` (its
public name once exported) and, until then, in ``vmkit.async_executor.engine._jit``, where the JIT
engineers commit it; the AOT code cache likewise, then in ``vmkit.async_executor.engine._jit_aot``.
With neither, the benchmarks report themselves unavailable with the reason, never a number.

``PERF_BENCH_DISABLE_JIT=1`` (or ``perf-bench run --disable-jit``, which sets it for the worker
processes) makes the JIT benchmark measure the interpreter in the JIT's place, for the acceptance
check that a comparison against such a run reports the JIT metrics as a regression. The result is
labelled: the benchmark's description says so, and the translation metrics, which an interpreter
does not have, are left out rather than faked.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable
from typing import Any

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


def interpreter_factory() -> Callable[[Any], Any]:
    """``machine -> InterpreterExecutor(machine)``."""
    from vmkit.async_executor import InterpreterExecutor

    return InterpreterExecutor


def jit_classes() -> tuple[type[Any], type[Any]]:
    """``(JitExecutor, AsyncExecutionContext)`` from async-executor.

    Raises:
        ImportError: if this async-executor has no JIT.
    """
    import vmkit.async_executor

    executor = getattr(vmkit.async_executor, "JitExecutor", None)
    context = getattr(vmkit.async_executor, "AsyncExecutionContext", None)
    if executor is None or context is None:
        jit = importlib.import_module("vmkit.async_executor.engine._jit")
        ctx = importlib.import_module("vmkit.async_executor.engine._context")
        executor = jit.JitExecutor
        context = ctx.AsyncExecutionContext
    return executor, context


@functools.cache
def jit_unavailable_reason() -> str | None:
    """Why the JIT cannot be measured here, or ``None`` when it can.

    Besides the classes, a smoke run must pass: the quick kernels (crc32, sieve, matmul) under
    the JIT must exit 0 with the right output and retire exactly as many instructions as the
    interpreter (MIPS from a miscounting engine mean nothing). A JIT mid-construction that fails
    on real programs is then reported as unavailable, with its error, rather than breaking the
    whole suite. Cached per process.
    """
    try:
        executor, context = jit_classes()
    except ImportError as exc:
        return f"async-executor has no JIT yet (JitExecutor not importable: {exc})"
    for needed in ("run",):
        if not callable(getattr(executor, needed, None)):
            return f"async-executor's JitExecutor has no {needed}()"
    for needed in ("stats", "namespace"):
        if not callable(getattr(context, needed, None)):
            return f"async-executor's AsyncExecutionContext has no {needed}()"
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
    async-executor.

    Looked up as public names first, then in ``vmkit.async_executor.engine._jit_aot`` where the JIT
    engineers commit them.

    Raises:
        ImportError: if this async-executor has no AOT code cache.
    """
    import vmkit.async_executor

    names = ("build_code_cache", "save_code_cache", "load_code_cache", "profiled_code_cache")
    found: list[Any] = [getattr(vmkit.async_executor, n, None) for n in names]
    if any(f is None for f in found):
        module = importlib.import_module("vmkit.async_executor.engine._jit_aot")
        found = [getattr(module, n, None) for n in names]
    if any(not callable(f) for f in found):
        missing = [n for n, f in zip(names, found, strict=True) if not callable(f)]
        raise ImportError(f"async-executor's AOT module lacks {', '.join(missing)}")
    build, save, load, profiled = found
    return build, save, load, profiled


def aot_unavailable_reason() -> str | None:
    """Why AOT compilation cannot be measured here, or ``None`` when it can."""
    if jit_disabled():
        return f"the JIT is disabled ({DISABLE_JIT_ENV}); AOT code is the JIT's code"
    try:
        aot_functions()
    except ImportError as exc:
        return (
            "async-executor has no ahead-of-time code cache here (issue 4, part 5): "
            f"{exc}; nothing to measure"
        )
    return jit_unavailable_reason()
