"""A GDB remote stub: debug a guest with ``gdb-multiarch`` (``async-executor run --gdb PORT``).

``GdbStub(machine, executor).serve(host, port)`` waits for gdb on ``host:port`` (loopback by
default) and serves one session: the RV64GC registers and floating-point registers, memory,
breakpoints, watchpoints (write, read, access), single steps, continue, Ctrl-C, the guest's
threads, its exit and fatal signals, detach and kill. See ``docs/async-executor/hooks.md``.
"""

from __future__ import annotations

from vmkit.async_executor.gdb._stub import DEFAULT_HOST, GdbStub

__all__ = ["DEFAULT_HOST", "GdbStub"]
