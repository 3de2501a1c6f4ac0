"""Defaults the executors share, in a module light enough for the command line to import at
start-up without loading any executor."""

from __future__ import annotations

from typing import Final

__all__ = ["DEFAULT_SLICE", "DEFAULT_THRESHOLD", "TIERS", "WALL_CLOCK_SLICE"]

#: Guest instructions per slice of a coroutine or ``run_async`` guest.
DEFAULT_SLICE: Final = 100_000
#: Executions of a block start before it is translated. A block compiled at 50 runs has cost
#: about as much interpreting as translating it costs, so at most about half the time is lost to
#: the wrong tier (the classic ski-rental bound).
DEFAULT_THRESHOLD: Final = 50
#: What a HybridExecutor may be asked to run as.
TIERS: Final = ("tiered", "interp", "jit")
#: Guest instructions between two looks at the wall clock when a guest has a wall-clock limit:
#: well under a millisecond of guest time on the interpreter, so a limit is kept to within a few
#: milliseconds even by a guest that makes no system call.
WALL_CLOCK_SLICE: Final = 1 << 16
