"""Benchmark VM runtimes with sound statistics."""

from __future__ import annotations

from perf_bench.__about__ import __version__

__all__ = ["__version__"]
