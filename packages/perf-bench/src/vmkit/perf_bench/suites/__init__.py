"""Suites that ship with perf-bench; each module offers ``build_suite()``."""

from __future__ import annotations

__all__: list[str] = []
