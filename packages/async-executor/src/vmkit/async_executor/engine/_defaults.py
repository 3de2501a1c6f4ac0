"""Defaults the executors share, in a module light enough for the command line to import at
start-up without loading any executor."""

from __future__ import annotations

from typing import Final

__all__ = ["DEFAULT_SLICE", "DEFAULT_THRESHOLD", "TIERS"]

#: Guest instructions per slice of a coroutine or ``run_async`` guest.
DEFAULT_SLICE: Final = 100_000
#: Executions of a block start before it is translated. A block compiled at 50 runs has cost
#: about as much interpreting as translating it costs, so at most about half the time is lost to
#: the wrong tier (the classic ski-rental bound).
DEFAULT_THRESHOLD: Final = 50
#: What a HybridExecutor may be asked to run as.
TIERS: Final = ("tiered", "interp", "jit")
