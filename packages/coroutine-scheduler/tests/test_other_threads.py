"""Calls from other OS threads during a run: they take effect between two steps, never inside one;
a knocking call (an answer or an error for its caller) gets in while the run is busy; a posted
wake (``Event.set``, an external wait's ``wake``) never waits for the run, so a step that blocks
on the thread setting it cannot deadlock. On both backends; the inline one is where the run
thread holds the scheduler lock across steps (see ``_guard.py``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from vmkit.coroutine_scheduler import (
    CancelScope,
    Event,
    Lock,
    Scheduler,
    Semaphore,
    UsageError,
    open_channel,
    yield_now,
)

BACKENDS = ("inline", "threads")
PATIENCE = 20.0  # seconds a busy run waits for another thread's call before the test fails


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Start ``fn`` on an OS thread; the list receives its result or its exception."""
    out: list[Any] = []

    def main() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # reported to the test, not lost in the thread
            out.append(exc)

    t = threading.Thread(target=main)
    t.start()
    return t, out


async def busy_until(done: Callable[[], bool]) -> None:
    """Keep the run busy (never idle, so the lock is never released for an idle wait)."""
    give_up = time.monotonic() + PATIENCE
    while not done():
        if time.monotonic() > give_up:
            raise AssertionError("another thread's call never took effect during a busy run")
        await yield_now()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "call", ["spawn", "lock.release", "semaphore.release", "scope.cancel", "channel.close"]
)
def test_a_knocking_call_gets_in_while_the_run_is_busy(backend: str, call: str) -> None:
    lock = Lock()
    sem = Semaphore(0)
    send, receive = open_channel(1)
    scope = CancelScope()
    ran: list[str] = []
    effect: list[str] = []
    started = threading.Event()

    async def holder() -> None:
        await lock.acquire()  # released by the other thread
        started.set()
        await busy_until(lambda: not lock.locked())
        effect.append("released")

    async def sem_waiter() -> None:
        started.set()
        await sem.acquire()
        effect.append("acquired")

    async def scoped() -> None:
        async with scope:
            started.set()
            await busy_until(lambda: False)  # until cancelled at one of its checkpoints
        if scope.cancelled_caught:
            effect.append("cancelled")

    async def receiver() -> None:
        started.set()
        await send.send(1)
        async for _ in receive:  # ends when the sending end closes
            pass
        effect.append("closed")

    async def spin() -> None:
        started.set()
        await busy_until(lambda: bool(effect))

    def spawned() -> Any:
        ran.append("spawned")
        effect.append("spawned")
        yield

    s = Scheduler(2, backend=backend, seed=3)
    target: Any = {
        "spawn": lambda: s.spawn(spawned),
        "lock.release": lock.release,
        "semaphore.release": sem.release,
        "scope.cancel": scope.cancel,
        "channel.close": send.close,
    }[call]
    main = {
        "spawn": spin,
        "lock.release": holder,
        "semaphore.release": sem_waiter,
        "scope.cancel": scoped,
        "channel.close": receiver,
    }[call]
    s.spawn(main)
    s.spawn(busy_until, lambda: bool(effect))  # a second busy coroutine: no idle vCPU

    def from_thread() -> Any:
        started.wait(PATIENCE)
        time.sleep(0.01)  # the run is inside its busy loop by now
        return target()

    t, out = in_thread(from_thread)
    s.run(timeout=PATIENCE + 10)
    t.join(PATIENCE)
    assert len(out) == 1
    assert not isinstance(out[0], BaseException), out
    assert effect, "the call from the thread had no effect"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_call_from_another_thread_never_lands_inside_a_step(backend: str) -> None:
    """A step that lets go of the GIL (a real sleep) sees no spawn from a thread mid-step."""
    stop = threading.Event()
    started = threading.Event()
    torn: list[tuple[int, int]] = []
    s = Scheduler(1, backend=backend, seed=1)

    def noop() -> Any:
        yield

    async def observer() -> None:
        started.set()
        while not stop.is_set():
            before = s.stats().spawned
            time.sleep(0.0005)  # inside one step: the spawning thread gets the GIL meanwhile
            after = s.stats().spawned
            if before != after and backend == "inline":
                torn.append((before, after))
            await yield_now()

    def spawner() -> None:
        started.wait(PATIENCE)
        for _ in range(200):
            s.spawn(noop)
            time.sleep(0.0002)  # spread over the observer's steps
        stop.set()

    s.spawn(observer)
    t, out = in_thread(spawner)
    s.run(timeout=PATIENCE + 10)
    t.join(PATIENCE)
    assert out == [None]
    assert s.stats().spawned == 201
    assert torn == []  # inline: every spawn landed between two steps


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_posted_wake_never_waits_for_the_run(backend: str) -> None:
    """A step blocks its thread until an OS thread has set an Event: the set must not wait for
    the step to end (it would never end), and the waiter is woken afterwards."""
    event = Event()
    seen: list[Any] = []

    async def waiter() -> None:
        await event.wait()
        seen.append("woken")

    async def blocker() -> None:
        await yield_now()  # the waiter parks first (and binds the event)
        t, _out = in_thread(event.set)
        # Blocks this step (and, on the inline backend, the run) until the thread's set returns.
        t.join(10)
        seen.append(("set returned", not t.is_alive()))

    s = Scheduler(1, backend=backend, seed=1)
    s.spawn(waiter)
    s.spawn(blocker)
    s.run(timeout=30)
    assert seen == [("set returned", True), "woken"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_many_threads_knock_and_post_during_a_busy_run(backend: str) -> None:
    """Four threads release a semaphore 500 times each (knocking) and two set events (posting)
    while coroutines keep the run busy: every unit arrives, each once, nothing waits forever."""
    sem = Semaphore(0)
    events = [Event() for _ in range(200)]
    got = [0]
    woken = [0]

    async def taker() -> None:
        for _ in range(1000):
            await sem.acquire()
            got[0] += 1

    async def event_waiter(e: Event) -> None:
        await e.wait()
        woken[0] += 1

    s = Scheduler(3, backend=backend, seed=2)
    s.spawn(taker)
    s.spawn(taker)
    for e in events:
        s.spawn(event_waiter, e)
    s.spawn(busy_until, lambda: got[0] == 2000 and woken[0] == len(events))

    def releaser() -> None:
        for _ in range(500):
            sem.release()

    def setter(part: list[Event]) -> None:
        time.sleep(0.02)  # the waiters have parked (and bound their events)
        for e in part:
            e.set()

    threads = [in_thread(releaser) for _ in range(4)]
    threads += [in_thread(lambda p=part: setter(p)) for part in (events[::2], events[1::2])]
    s.run(timeout=PATIENCE + 10)
    for t, out in threads:
        t.join(PATIENCE)
        assert out == [None]
    assert got[0] == 2000
    assert woken[0] == len(events)
    assert sem.value == 0


def test_a_nested_run_on_the_run_thread_uses_the_outer_schedulers_lock_directly() -> None:
    """A coroutine of one inline run runs a second scheduler, whose coroutine releases a lock of
    the first: the run thread already owns the first lock, so nothing knocks or waits."""
    outer_lock = Lock()
    order: list[str] = []

    async def inner() -> None:
        outer_lock.release()
        order.append("released from the inner run")

    async def owner() -> None:
        await outer_lock.acquire()
        inner_s = Scheduler(1)
        inner_s.spawn(inner)
        inner_s.run(timeout=10)
        async with outer_lock:  # free again
            order.append("taken again")

    s = Scheduler(1)
    s.spawn(owner)
    s.run(timeout=10)
    assert order == ["released from the inner run", "taken again"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_error_of_a_knocking_call_is_raised_in_its_thread(backend: str) -> None:
    lock = Lock()
    finished = threading.Event()

    async def user() -> None:
        async with lock:
            pass  # binds the lock to the scheduler; it is free afterwards
        await busy_until(finished.is_set)

    s = Scheduler(1, backend=backend)
    s.spawn(user)

    def release_unlocked() -> Any:
        time.sleep(0.02)
        try:
            lock.release()
        finally:
            finished.set()

    t, out = in_thread(release_unlocked)
    s.run(timeout=PATIENCE + 10)
    t.join(PATIENCE)
    assert len(out) == 1
    assert isinstance(out[0], UsageError)
