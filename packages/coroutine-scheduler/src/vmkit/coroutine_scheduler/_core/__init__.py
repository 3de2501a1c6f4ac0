"""The scheduler's core: coroutines, traps, virtual CPUs and the run loops (private).

Everything public is re-exported by :mod:`vmkit.coroutine_scheduler`.
"""

from __future__ import annotations

__all__: list[str] = []
