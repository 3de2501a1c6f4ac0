"""Guests on the scheduler: async-executor's threaded guests as coroutine-scheduler coroutines.

The adapter between the two packages, which never import each other: async-executor's
:class:`~vmkit.async_executor.ThreadedGuest` gives one generator per guest thread and a spawn
callback for the threads the guest creates; coroutine-scheduler runs generators and parks a
coroutine that yields an external wait (a blocked guest thread's ``GuestWait``) until the guest
wakes it. This module joins the two: a guest's main thread and every thread it creates become
coroutines of one scheduler, spread over its vCPUs and stolen between them like any other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vmkit.async_executor import ExecutorBase, Linux, Machine, ThreadedGuest
    from vmkit.coroutine_scheduler import Coroutine, Scheduler

__all__ = ["spawn_guest"]


def spawn_guest(
    scheduler: Scheduler,
    executor: ExecutorBase,
    machine: Machine[Linux],
    *,
    name: str = "guest",
    slice_instructions: int | None = None,
    max_instructions: int | None = None,
) -> tuple[ThreadedGuest, Coroutine]:
    """Queue a loaded guest on ``scheduler``: its main thread now, each thread it creates when
    it creates it. The guest sees the scheduler's vCPUs as its CPUs (sched_getaffinity). Returns
    the guest (``guest.status`` once it ended) and the main thread's coroutine, whose result is
    the guest's exit status.
    """
    from vmkit.async_executor import DEFAULT_SLICE, ThreadedGuest

    def spawn(thread: Any, thread_name: str) -> None:
        scheduler.spawn(thread, name=f"{name}: {thread_name}")

    guest = ThreadedGuest(
        executor,
        machine,
        spawn,
        slice_instructions=slice_instructions or DEFAULT_SLICE,
        max_instructions=max_instructions,
        cpus=len(scheduler.vcpus),
    )
    main = scheduler.spawn(guest.main(), name=f"{name}: main thread")
    return guest, main
