"""Guest output kept in memory: a descriptor whose writes go to Python instead of the host.

``Linux.capture_output(fd)`` puts an :class:`OutputCapture` behind a guest descriptor (1 and 2
usually): what the guest writes there is appended to ``capture.data`` and passed to an optional
callback, never to a host descriptor. To the guest it is a pipe (fstat says FIFO, lseek answers
ESPIPE, isatty is false), so stdio buffers it as it would under a shell's ``$(...)``.

A guest must not take the host's memory beyond its limits: a capture holds at most ``limit``
bytes (64 MiB by default); a write past it fails with ENOSPC and ``truncated`` turns True.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import Final

__all__ = ["DEFAULT_CAPTURE_LIMIT", "OutputCapture", "pipe_stat"]

DEFAULT_CAPTURE_LIMIT: Final = 64 << 20


class OutputCapture:
    """The bytes a guest wrote to one descriptor (see the module note).

    Args:
        callback: called with each write's bytes, as the guest makes it (None: only kept).
        limit: bytes kept at most; None keeps everything the callback accepts... and nothing
            is kept when ``keep`` is False.
        keep: whether to keep the bytes in ``data`` (False: only the callback sees them).
    """

    def __init__(
        self,
        callback: Callable[[bytes], object] | None = None,
        *,
        limit: int = DEFAULT_CAPTURE_LIMIT,
        keep: bool = True,
    ) -> None:
        if limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit}")
        self.callback = callback
        self.limit = limit
        self.keep = keep
        self._buffer = bytearray()
        #: Bytes the guest wrote here (kept or not).
        self.written = 0
        #: Whether a write was refused because the limit was reached.
        self.truncated = False

    @property
    def data(self) -> bytes:
        """What was kept, as bytes."""
        return bytes(self._buffer)

    def text(self, encoding: str = "utf-8") -> str:
        """What was kept, decoded (undecodable bytes replaced)."""
        return self._buffer.decode(encoding, "replace")

    def write(self, data: bytes) -> int:
        """Take one write of the guest; returns its result (a count, or -ENOSPC)."""
        if self.keep and len(self._buffer) + len(data) > self.limit:
            self.truncated = True
            return -errno.ENOSPC
        if self.keep:
            self._buffer += data
        self.written += len(data)
        if self.callback is not None:
            self.callback(bytes(data))
        return len(data)


def pipe_stat() -> os.stat_result:
    """What fstat shows for a capture: a host pipe's own stat (an anonymous FIFO of this user)."""
    read_end, write_end = os.pipe()
    try:
        return os.fstat(read_end)
    finally:
        os.close(read_end)
        os.close(write_end)
