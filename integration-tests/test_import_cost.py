"""Importing a package's top level loads none of what only some uses need.

A library import is paid by every user and every command-line start: rich (reports),
prometheus-client (metrics), structlog (only when an event is emitted), asyncio and the
translator (only the JIT tiers use them) must stay out until asked for.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = (
    "rich",
    "prometheus_client",
    "structlog",
    "asyncio",
    "llvmlite",
    "elftools",
    "vmkit.async_executor.engine._translate",
    "vmkit.async_executor.engine._jit",
    "vmkit.async_executor.engine._context",
)
PROBE = """
import json, sys
import {module}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def _loaded_after(statement_module: str) -> list[str]:
    source = PROBE.format(module=statement_module, heavy=HEAVY)
    out = subprocess.run(
        [sys.executable, "-c", source], capture_output=True, text=True, check=True
    ).stdout
    loaded: list[str] = json.loads(out)
    return loaded


@pytest.mark.parametrize(
    "module", ["vmkit.async_executor", "vmkit.coroutine_scheduler", "vmkit.perf_bench"]
)
def test_top_level_import_is_light(module: str) -> None:
    assert _loaded_after(module) == []


def test_the_interpreter_path_loads_no_translator() -> None:
    """What ``async-executor run --engine interp`` imports: the CLI, the loader and the
    interpreter, but not the JIT's translator or context, nor structlog."""
    loaded = _loaded_after(
        "vmkit.async_executor.cli, vmkit.async_executor.loader, "
        "vmkit.async_executor.engine._interpreter"
    )
    assert loaded == []
