"""External waits: coroutines parked on events outside the scheduler (the protocol async-executor's
guest threads use), woken from other threads, by deadline, or cancelled, on both backends."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from typing import Any

import pytest

from vmkit.coroutine_scheduler import (
    Cancelled,
    ExternalWait,
    Scheduler,
    cancel,
    sleep,
    spawn,
)

BACKENDS = ("inline", "threads")


class Flag:
    """An external event: ``fire()`` from any thread wakes whoever armed it."""

    def __init__(self, deadline: float | None = None, already: bool = False) -> None:
        self.deadline = deadline
        self.fired = already
        self.armed = 0
        self.disarmed = 0
        self._wake: Callable[[], None] | None = None
        self._lock = threading.Lock()

    def arm(self, wake: Callable[[], None]) -> bool:
        with self._lock:
            self.armed += 1
            if self.fired:
                return False
            self._wake = wake
            return True

    def disarm(self) -> None:
        self.disarmed += 1
        self._wake = None

    def fire(self) -> None:
        with self._lock:
            self.fired = True
            wake, self._wake = self._wake, None
        if wake is not None:
            wake()


def test_flag_follows_the_protocol() -> None:
    assert isinstance(Flag(), ExternalWait)


@pytest.mark.parametrize("backend", BACKENDS)
def test_woken_from_another_os_thread(backend: str) -> None:
    """The coroutine parks (no slices) until a plain thread fires the flag; it then sees True."""
    flag = Flag()
    seen: list[Any] = []

    def waiter() -> Generator[Any, Any, None]:
        seen.append((yield flag))

    s = Scheduler(2, backend=backend)
    co = s.spawn(waiter())
    timer = threading.Timer(0.05, flag.fire)
    timer.start()
    started = time.monotonic()
    s.run(timeout=10)
    timer.join()
    assert seen == [True]
    assert time.monotonic() - started >= 0.04
    assert co.switches <= 3  # parked: it was not resumed again and again while it waited


@pytest.mark.parametrize("backend", BACKENDS)
def test_woken_by_another_coroutine(backend: str) -> None:
    flag = Flag()
    order: list[str] = []

    def waiter() -> Generator[Any, Any, None]:
        woken = yield flag
        order.append(f"woken {woken}")

    async def waker() -> None:
        await sleep(0.01)
        order.append("fire")
        flag.fire()

    s = Scheduler(2, backend=backend)
    s.spawn(waiter())
    s.spawn(waker)
    s.run(timeout=10)
    assert order == ["fire", "woken True"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_deadline_resumes_with_false_and_disarms(backend: str) -> None:
    flag = Flag(deadline=time.monotonic() + 0.03)
    seen: list[Any] = []

    def waiter() -> Generator[Any, Any, None]:
        seen.append((yield flag))

    s = Scheduler(1, backend=backend)
    s.spawn(waiter())
    s.run(timeout=10)
    assert seen == [False]
    assert flag.disarmed == 1
    flag.fire()  # a late event wakes nobody and breaks nothing


def test_event_that_already_happened_does_not_park() -> None:
    flag = Flag(already=True)
    seen: list[Any] = []

    def waiter() -> Generator[Any, Any, None]:
        seen.append((yield flag))

    s = Scheduler(1)
    s.spawn(waiter())
    s.run(timeout=10)
    assert seen == [True]


@pytest.mark.parametrize("backend", BACKENDS)
def test_wake_between_arm_and_park_is_not_lost(backend: str) -> None:
    """A wake that lands after ``arm`` returned but before the coroutine parked still counts."""

    class Eager(Flag):
        def arm(self, wake: Callable[[], None]) -> bool:
            armed = super().arm(wake)
            fire = threading.Thread(target=self.fire)
            fire.start()
            fire.join()  # the wake has run before the scheduler parks the coroutine
            return armed

    flag = Eager()
    seen: list[Any] = []

    def waiter() -> Generator[Any, Any, None]:
        seen.append((yield flag))

    s = Scheduler(1, backend=backend)
    s.spawn(waiter())
    s.run(timeout=10)
    assert seen == [True]


@pytest.mark.parametrize("backend", BACKENDS)
def test_cancelling_a_waiter_disarms_it(backend: str) -> None:
    flag = Flag()
    outcome: list[str] = []

    def waiter() -> Generator[Any, Any, None]:
        try:
            yield flag
        except Cancelled:
            outcome.append("cancelled")
            raise

    async def canceller() -> None:
        target = await spawn(waiter)
        await sleep(0.01)
        await cancel(target)

    s = Scheduler(2, backend=backend)
    s.spawn(canceller)
    s.run(timeout=10)
    assert outcome == ["cancelled"]
    assert flag.disarmed == 1


def test_arm_that_raises_raises_in_the_coroutine() -> None:
    class Broken(Flag):
        def arm(self, wake: Callable[[], None]) -> bool:
            raise RuntimeError("cannot wait on this")

    caught: list[str] = []

    def waiter() -> Generator[Any, Any, None]:
        try:
            yield Broken()
        except RuntimeError as exc:
            caught.append(str(exc))

    s = Scheduler(1)
    s.spawn(waiter())
    s.run(timeout=10)
    assert caught == ["cannot wait on this"]
