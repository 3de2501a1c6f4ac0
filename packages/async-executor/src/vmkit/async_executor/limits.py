"""``GuestLimits``: every host resource a guest may take, with defaults safe on a shared machine.

Design notes
------------
* One frozen record travels from the caller (the CLI's ``--max-*`` options, or
  ``load_program(limits=...)``) to the parts that enforce it: the address space (memory), the Linux
  layer (open files, disk use in the private ``/tmp``) and the executors (instructions, wall
  clock). Nothing reads a module constant for a limit, so two guests in one process may differ.
* A limit the guest can observe behaves as Linux would behave under the matching rlimit or quota:
  ``mmap``/``brk``/``mremap`` past ``memory_bytes`` fail with ENOMEM (RLIMIT_AS), a descriptor past
  ``open_files`` fails with EMFILE (RLIMIT_NOFILE, which ``prlimit64`` reports and may lower, never
  raise past the hard limit), a write that would take the private ``/tmp`` past ``disk_bytes``
  fails with EDQUOT. The program decides what to do, as it would natively; each refusal is counted
  in :attr:`LimitCounters` and reported in statistics.
* Limits that end the guest get a one-line message and a status of their own:
  ``max_instructions`` ends with 124 (as ``timeout(1)``), ``wall_seconds`` with 128 + SIGXCPU = 152,
  what Linux does to a process over its RLIMIT_RTTIME/RLIMIT_CPU.
"""

from __future__ import annotations

import signal

from vmkit.async_executor._record import FrozenRecord, Record, init_field

__all__ = [
    "DEFAULT_LIMITS",
    "WALL_CLOCK_EXCEEDED_STATUS",
    "GuestLimits",
    "LimitCounters",
]

#: Exit status of a guest stopped by its wall-clock limit: 128 + SIGXCPU.
WALL_CLOCK_EXCEEDED_STATUS = 128 + int(signal.SIGXCPU)


class GuestLimits(FrozenRecord):
    """What one guest may take from the host. ``None`` means no limit for the optional ones.

    Attributes:
        memory_bytes: guest memory mapped in total (anonymous, file-backed, stack, brk, ELF
            segments, PROT_NONE reservations included), as Linux's RLIMIT_AS counts it.
        open_files: soft limit on guest file descriptors (RLIMIT_NOFILE); the hard limit is
            ``open_files_hard``. The guest may lower both, and raise the soft one up to the hard.
        open_files_hard: hard limit on guest file descriptors.
        disk_bytes: bytes the guest's private ``/tmp`` may hold at once (None: no quota).
        max_instructions: guest instructions before the run stops with status 124 (None: none).
        wall_seconds: wall-clock seconds before the run stops with status 152 (None: none).
    """

    __slots__ = (
        "memory_bytes",
        "open_files",
        "open_files_hard",
        "disk_bytes",
        "max_instructions",
        "wall_seconds",
    )
    memory_bytes: int
    open_files: int
    open_files_hard: int
    disk_bytes: int | None
    max_instructions: int | None
    wall_seconds: float | None

    def __init__(
        self,
        memory_bytes: int = 4 << 30,
        open_files: int = 1024,
        open_files_hard: int = 4096,
        disk_bytes: int | None = 1 << 30,
        max_instructions: int | None = None,
        wall_seconds: float | None = None,
    ) -> None:
        init_field(self, "memory_bytes", memory_bytes)
        init_field(self, "open_files", open_files)
        init_field(self, "open_files_hard", open_files_hard)
        init_field(self, "disk_bytes", disk_bytes)
        init_field(self, "max_instructions", max_instructions)
        init_field(self, "wall_seconds", wall_seconds)
        if self.memory_bytes <= 0:
            raise ValueError(f"memory_bytes must be positive, got {self.memory_bytes}")
        if not 3 <= self.open_files <= self.open_files_hard:
            raise ValueError(
                f"open_files must be between 3 (the stdio) and open_files_hard "
                f"({self.open_files_hard}), got {self.open_files}"
            )
        if self.disk_bytes is not None and self.disk_bytes < 0:
            raise ValueError(f"disk_bytes must be >= 0, got {self.disk_bytes}")
        if self.max_instructions is not None and self.max_instructions < 0:
            raise ValueError(f"max_instructions must be >= 0, got {self.max_instructions}")
        if self.wall_seconds is not None and not self.wall_seconds > 0:
            raise ValueError(f"wall_seconds must be positive, got {self.wall_seconds}")

    def as_dict(self) -> dict[str, int | float | None]:
        """The limits as JSON-ready data (for statistics)."""
        return {
            "memory_bytes": self.memory_bytes,
            "open_files": self.open_files,
            "open_files_hard": self.open_files_hard,
            "disk_bytes": self.disk_bytes,
            "max_instructions": self.max_instructions,
            "wall_seconds": self.wall_seconds,
        }


#: The limits a guest gets when the caller names none.
DEFAULT_LIMITS = GuestLimits()


class LimitCounters(Record):
    """How often a guest ran into each limit (refusals it saw as an errno, or the stop)."""

    __slots__ = (
        "memory_refused",
        "files_refused",
        "disk_refused",
        "peak_disk_bytes",
        "wall_clock_exceeded",
    )
    memory_refused: int
    files_refused: int
    disk_refused: int
    peak_disk_bytes: int
    wall_clock_exceeded: int

    def __init__(
        self,
        memory_refused: int = 0,
        files_refused: int = 0,
        disk_refused: int = 0,
        peak_disk_bytes: int = 0,
        wall_clock_exceeded: int = 0,
    ) -> None:
        self.memory_refused = memory_refused
        self.files_refused = files_refused
        self.disk_refused = disk_refused
        self.peak_disk_bytes = peak_disk_bytes
        self.wall_clock_exceeded = wall_clock_exceeded

    def as_dict(self) -> dict[str, int]:
        """The counters as JSON-ready data (for statistics)."""
        return {
            "memory_refused": self.memory_refused,
            "files_refused": self.files_refused,
            "disk_refused": self.disk_refused,
            "peak_disk_bytes": self.peak_disk_bytes,
            "wall_clock_exceeded": self.wall_clock_exceeded,
        }
