"""Guest machine state: the hart, the paged address space with its software TLB, the machine."""

from __future__ import annotations

from async_executor.machine._hart import X_SINK, Hart

__all__ = ["X_SINK", "Hart"]
