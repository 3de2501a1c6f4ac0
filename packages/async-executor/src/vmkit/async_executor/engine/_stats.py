"""Execution statistics of an executor."""

from __future__ import annotations

from vmkit.async_executor._record import Record

__all__ = ["ExecutionStats"]


class ExecutionStats(Record):
    """Counters an executor keeps: blocks executed, guest instructions retired, wall time.

    ``executions`` counts basic-block executions; ``wall_time`` is in seconds spent inside
    ``run``/``execute_block``. ``mips`` is guest instructions per second in millions.
    """

    __slots__ = ("executions", "instructions", "wall_time")
    executions: int
    instructions: int
    wall_time: float

    def __init__(self, executions: int = 0, instructions: int = 0, wall_time: float = 0.0) -> None:
        self.executions = executions
        self.instructions = instructions
        self.wall_time = wall_time

    @property
    def mips(self) -> float:
        """Guest instructions per second of wall time, in millions (0.0 before any run)."""
        if self.wall_time <= 0.0:
            return 0.0
        return self.instructions / self.wall_time / 1e6

    def reset(self) -> None:
        """Zero every counter."""
        self.executions = 0
        self.instructions = 0
        self.wall_time = 0.0

    def as_dict(self) -> dict[str, float]:
        """The counters and derived MIPS as a plain dict (for JSON output)."""
        return {
            "executions": self.executions,
            "instructions": self.instructions,
            "wall_time_seconds": self.wall_time,
            "mips": self.mips,
        }
