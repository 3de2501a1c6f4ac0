"""The native tier: hot guest regions compiled to host machine code with llvmlite.

Optional: it needs the ``native`` extra (``pip install 'vmkit-async-executor[native]'``).
Importing this package without llvmlite raises :class:`NativeUnavailable` saying so.
"""

from __future__ import annotations

from vmkit.async_executor.engine.native._cache import (
    CACHE_ENV,
    NativeCodeCache,
    default_cache_dir,
)
from vmkit.async_executor.engine.native._executor import (
    DEFAULT_NATIVE_THRESHOLD,
    NativeExecutor,
    NativeStats,
)
from vmkit.async_executor.engine.native._llvm import (
    NATIVE_EXTRA,
    NativeUnavailable,
    llvm_version,
)

__all__ = [
    "CACHE_ENV",
    "DEFAULT_NATIVE_THRESHOLD",
    "NATIVE_EXTRA",
    "NativeCodeCache",
    "NativeExecutor",
    "NativeStats",
    "NativeUnavailable",
    "default_cache_dir",
    "llvm_version",
]
