"""Driving a guest generator from asyncio: the one loop every executor's ``run_async`` shares.

Each executor offers a guest as a generator (``coroutine(machine, slice_instructions=N)``) that
yields ``None`` after every slice and returns the exit status. ``run_async`` is that generator
driven by an event loop: one slice, then control back to the loop, so other tasks stay responsive.
Cancellation arrives at the ``await`` between two slices, where the guest's state is exact, and the
generator is closed so the executor releases the machine.
"""

from __future__ import annotations

from collections.abc import Generator

__all__ = ["drive_slices"]


async def drive_slices(steps: Generator[None, None, int]) -> int:
    """Run ``steps`` to its end, yielding to the event loop after each slice; return its status."""
    import asyncio  # already loaded by whoever runs this coroutine; not at engine import

    try:
        while True:
            try:
                next(steps)
            except StopIteration as done:
                status: int = done.value
                return status
            await asyncio.sleep(0)  # real wait: hands the loop to other tasks between two slices
    finally:
        steps.close()
