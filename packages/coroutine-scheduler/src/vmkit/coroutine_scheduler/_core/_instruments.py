"""Instruments: hooks called by the scheduler at interesting moments, in the spirit of trio's.

An instrument subclasses :class:`Instrument` and overrides only the hooks it needs. The scheduler
chooses its run loop once per ``run()``: with no instrument installed, the switch path contains no
hook call at all, so an unobserved scheduler pays nothing. Hooks run on the vCPU's OS thread (the
threads backend calls them concurrently from several threads) and must not raise: an exception from
a hook propagates out of ``run()``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vmkit.coroutine_scheduler._core._coroutine import Coroutine

__all__ = ["Instrument", "TraceRecorder"]


class Instrument:
    """Base class of scheduler instruments: every hook does nothing."""

    def before_run(self) -> None:
        """``run()`` starts."""

    def after_run(self) -> None:
        """``run()`` ends (normally or by an error)."""

    def on_spawn(self, coroutine: Coroutine, vcpu: int | None) -> None:
        """A coroutine was created; ``vcpu`` is where it was queued (None: the global queue)."""

    def before_step(self, vcpu: int, coroutine: Coroutine) -> None:
        """``coroutine`` is about to be resumed on ``vcpu``."""

    def after_step(self, vcpu: int, coroutine: Coroutine) -> None:
        """``coroutine`` gave ``vcpu`` back (it yielded, parked or ended)."""

    def on_steal(self, thief: int, victim: int, count: int) -> None:
        """vCPU ``thief`` took ``count`` coroutines from vCPU ``victim``'s run queue."""

    def on_exit(self, coroutine: Coroutine) -> None:
        """``coroutine`` ended (see its ``exception`` and ``result``)."""


class TraceRecorder(Instrument):
    """Records every event as a tuple, for tests and debugging (determinism checks compare them)."""

    def __init__(self) -> None:
        self.events: list[tuple[str | int, ...]] = []

    def on_spawn(self, coroutine: Coroutine, vcpu: int | None) -> None:
        """Record ``("spawn", coroutine id, vcpu or -1)``."""
        self.events.append(("spawn", coroutine.id, -1 if vcpu is None else vcpu))

    def before_step(self, vcpu: int, coroutine: Coroutine) -> None:
        """Record ``("step", vcpu, coroutine id)``."""
        self.events.append(("step", vcpu, coroutine.id))

    def on_steal(self, thief: int, victim: int, count: int) -> None:
        """Record ``("steal", thief, victim, count)``."""
        self.events.append(("steal", thief, victim, count))

    def on_exit(self, coroutine: Coroutine) -> None:
        """Record ``("exit", coroutine id)``."""
        self.events.append(("exit", coroutine.id))
