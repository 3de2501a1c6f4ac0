"""Package attributes imported on first use (PEP 562), so ``import`` of a package is cheap.

A command-line run of the interpreter must not pay for the translator, the JIT's context or
asyncio, nor a plain ``import vmkit.async_executor`` for any of them. Packages list what they
export and from which module; the value is imported the first time it is asked for and then
kept in the package's namespace, so later lookups are ordinary attribute reads. Type checkers
see the same names through ``if TYPE_CHECKING:`` imports beside the table.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, namespace: dict[str, Any], exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` whose names come from ``exports``
    (name -> module that defines it)."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *exports})

    return __getattr__, __dir__
