"""Run coroutines on virtual CPUs with work stealing."""

from __future__ import annotations

from coroutine_scheduler.__about__ import __version__

__all__ = ["__version__"]
