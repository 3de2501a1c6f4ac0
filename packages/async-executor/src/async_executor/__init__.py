"""Run static RISC-V RV64GC Linux programs in pure Python."""

from __future__ import annotations

from async_executor.__about__ import __version__

__all__ = ["__version__"]
