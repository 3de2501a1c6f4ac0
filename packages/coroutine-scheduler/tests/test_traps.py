"""Each trap, on the deterministic inline backend with a virtual clock."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

import pytest

from vmkit.coroutine_scheduler import (
    Cancelled,
    CancelScope,
    Coroutine,
    CoroutineState,
    Scheduler,
    TrapOutsideSchedulerError,
    UsageError,
    VirtualClock,
    cancel,
    current,
    join,
    notify,
    sleep,
    spawn,
    wait,
    yield_now,
)


def make(vcpus: int = 1, **kwargs: Any) -> Scheduler:
    kwargs.setdefault("seed", 1)
    kwargs.setdefault("clock", VirtualClock())
    return Scheduler(vcpus, **kwargs)


class TestYield:
    def test_bare_yield_and_yield_now_round_robin(self) -> None:
        """On one vCPU, coroutines that yield take turns in FIFO order."""
        order: list[str] = []

        def plain(tag: str) -> Generator[None, None, None]:
            for i in range(3):
                order.append(f"{tag}{i}")
                yield

        async def native(tag: str) -> None:
            for i in range(3):
                order.append(f"{tag}{i}")
                await yield_now()

        s = make()
        s.spawn(plain, "a")
        s.spawn(native, "b")
        s.run(timeout=10)
        assert order == ["a0", "b0", "a1", "b1", "a2", "b2"]

    def test_yielding_something_else_raises_in_the_coroutine(self) -> None:
        """A yielded value that is not a trap is thrown back as a clear UsageError."""

        def bad() -> Generator[int, None, None]:
            yield 42

        s = make()
        co = s.spawn(bad)
        s.run(timeout=10, raise_failures=False)
        assert isinstance(co.exception, UsageError)
        assert "yielded 42, which is not a trap" in str(co.exception)


class TestSleep:
    def test_sleepers_wake_in_deadline_order_on_the_virtual_clock(self) -> None:
        """Sleeps end in deadline order and the clock has advanced to the last deadline."""
        clock = VirtualClock()
        woke: list[tuple[str, float]] = []

        async def sleeper(tag: str, seconds: float) -> None:
            await sleep(seconds)
            woke.append((tag, clock.now()))

        s = make(vcpus=2, clock=clock)
        for tag, seconds in (("c", 3.0), ("a", 1.0), ("b", 2.0)):
            s.spawn(sleeper, tag, seconds)
        s.run(timeout=10)
        assert [t for t, _ in woke] == ["a", "b", "c"]
        assert all(at >= seconds for (_t, at), seconds in zip(woke, (1.0, 2.0, 3.0), strict=True))
        assert clock.now() == pytest.approx(3.0)

    @pytest.mark.parametrize("backend", ["inline", "threads"])
    def test_a_huge_virtual_sleep_is_instant(self, backend: str) -> None:
        """A million virtual seconds pass in one jump, even with a run timeout."""
        clock = VirtualClock()

        async def sleeper() -> float:
            await sleep(1e6)
            return clock.now()

        s = make(vcpus=2, clock=clock, backend=backend)
        co = s.spawn(sleeper)
        s.run(timeout=30)
        assert co.result == pytest.approx(1e6)

    def test_sleep_zero_is_a_yield(self) -> None:
        """sleep(0) lets the other coroutine run without touching the clock."""
        clock = VirtualClock()
        order: list[str] = []

        async def worker(tag: str) -> None:
            order.append(tag)
            await sleep(0)
            order.append(tag)

        s = make(clock=clock)
        s.spawn(worker, "a")
        s.spawn(worker, "b")
        s.run(timeout=10)
        assert order == ["a", "b", "a", "b"]
        assert clock.now() == 0.0

    @pytest.mark.parametrize("bad", [-1, float("nan"), "1"])
    def test_bad_durations_are_refused(self, bad: Any) -> None:
        """A negative, NaN or non-numeric duration raises UsageError in the coroutine."""

        async def sleeper() -> None:
            await sleep(bad)

        s = make()
        co = s.spawn(sleeper)
        s.run(timeout=10, raise_failures=False)
        assert isinstance(co.exception, UsageError)

    def test_plain_generators_can_yield_or_yield_from_the_trap(self) -> None:
        """``yield sleep(1)`` and ``yield from sleep(1)`` both sleep in a plain generator."""
        clock = VirtualClock()
        seen: list[float] = []

        def gen() -> Generator[Any, Any, None]:
            yield sleep(1.0)
            seen.append(clock.now())
            yield from sleep(1.0)
            seen.append(clock.now())

        s = make(clock=clock)
        s.spawn(gen)
        s.run(timeout=10)
        assert seen == [1.0, 2.0]


class TestWaitNotify:
    def test_notify_wakes_waiters_oldest_first_and_counts_them(self) -> None:
        """notify(key, 2) wakes the two oldest waiters; the count is returned to the notifier."""
        woken: list[int] = []
        counts: list[int] = []

        async def waiter(i: int) -> None:
            assert await wait("k") is True
            woken.append(i)

        async def notifier() -> None:
            for _ in range(3):
                await yield_now()
            counts.append(await notify("k", 2))
            counts.append(await notify("k", None))
            counts.append(await notify("k"))

        s = make()
        for i in range(4):
            s.spawn(waiter, i)
        s.spawn(notifier)
        s.run(timeout=10)
        assert counts == [2, 2, 0]
        assert sorted(woken[:2]) == [0, 1]
        assert sorted(woken) == [0, 1, 2, 3]

    def test_a_false_guard_does_not_park(self) -> None:
        """wait() with a guard returning False returns False at once."""

        async def waiter() -> bool:
            return await wait("k", lambda: False)

        s = make()
        co = s.spawn(waiter)
        s.run(timeout=10)
        assert co.result is False

    def test_a_guard_closes_the_lost_wake_up_window(self) -> None:
        """A consumer whose condition became true before it parked does not wait forever."""
        box: list[int] = []

        async def consumer() -> int:
            while not box:
                await wait("box", lambda: not box)
            return box[0]

        async def producer() -> None:
            box.append(5)
            await notify("box")

        s = make()
        s.spawn(producer)
        co = s.spawn(consumer)
        s.run(timeout=10)
        assert co.result == 5

    def test_a_raising_guard_raises_in_the_waiter(self) -> None:
        """An exception from the guard is thrown into the waiting coroutine."""

        def guard() -> bool:
            raise KeyError("boom")

        async def waiter() -> None:
            await wait("k", guard)

        s = make()
        co = s.spawn(waiter)
        s.run(timeout=10, raise_failures=False)
        assert isinstance(co.exception, KeyError)

    def test_notify_refuses_a_bad_count(self) -> None:
        """notify(key, 0) is a usage error."""

        async def bad() -> None:
            await notify("k", 0)

        s = make()
        co = s.spawn(bad)
        s.run(timeout=10, raise_failures=False)
        assert isinstance(co.exception, UsageError)


class TestSpawnJoin:
    def test_spawn_returns_the_child_and_join_its_result(self) -> None:
        """A parent spawns children, joins them and gets their return values."""

        async def child(n: int) -> int:
            await yield_now()
            return n * n

        async def parent() -> list[int]:
            kids = [await spawn(child, i, name=f"kid{i}") for i in range(5)]
            assert all(isinstance(k, Coroutine) for k in kids)
            assert [k.name for k in kids] == [f"kid{i}" for i in range(5)]
            return [await join(k) for k in kids]

        s = make(vcpus=2)
        top = s.spawn(parent)
        s.run(timeout=10)
        assert top.result == [0, 1, 4, 9, 16]
        assert s.stats().spawned == 6

    def test_join_reraises_the_childs_exception(self) -> None:
        """Joining a failed coroutine raises its exception in the joiner."""

        async def child() -> None:
            raise ValueError("child failed")

        async def parent() -> str:
            kid = await spawn(child)
            try:
                await join(kid)
            except ValueError as exc:
                return str(exc)
            return "no error"

        s = make()
        top = s.spawn(parent)
        s.run(timeout=10)
        assert top.result == "child failed"

    def test_join_of_a_dead_coroutine_returns_at_once(self) -> None:
        """join() on an already ended coroutine returns its result without parking."""

        def quick() -> Generator[None, None, int]:
            return 3
            yield

        s = make()
        kid = s.spawn(quick)

        def parent() -> Generator[Any, Any, int]:
            for _ in range(3):
                yield
            value: int = yield join(kid)
            return value

        top = s.spawn(parent)
        s.run(timeout=10)
        assert top.result == 3

    def test_joining_yourself_is_a_clear_error(self) -> None:
        """A coroutine that joins itself gets UsageError instead of waiting forever."""

        async def selfish() -> None:
            await join(await current())

        s = make()
        co = s.spawn(selfish)
        s.run(timeout=10, raise_failures=False)
        assert isinstance(co.exception, UsageError)
        assert "cannot join itself" in str(co.exception)

    def test_joining_another_schedulers_coroutine_is_refused(self) -> None:
        """join() across schedulers is a usage error."""
        other = make()
        foreign = other.spawn(yield_now)

        async def joiner() -> None:
            await join(foreign)

        s = make()
        co = s.spawn(joiner)
        s.run(timeout=10, raise_failures=False)
        assert isinstance(co.exception, UsageError)
        assert "another scheduler" in str(co.exception)
        other.close()

    def test_spawn_of_a_bad_target_raises_in_the_parent(self) -> None:
        """spawn(42) raises UsageError in the spawning coroutine."""

        async def parent() -> None:
            await spawn(42)

        s = make()
        co = s.spawn(parent)
        s.run(timeout=10, raise_failures=False)
        assert isinstance(co.exception, UsageError)


class TestCancel:
    def test_cancel_wakes_a_waiter_with_cancelled(self) -> None:
        """A coroutine parked in wait() ends cancelled; cancel() returns True."""

        async def waiter() -> None:
            await wait("never")

        async def canceller(target: Coroutine) -> bool:
            await yield_now()
            return await cancel(target)

        s = make()
        victim = s.spawn(waiter)
        boss = s.spawn(canceller, victim)
        s.run(timeout=10)
        assert victim.cancelled
        assert victim.state is CoroutineState.DEAD
        assert boss.result is True

    def test_cancel_wakes_a_sleeper_early(self) -> None:
        """Cancelling a sleeper ends it before its deadline: the virtual clock never reaches it."""
        clock = VirtualClock()

        async def sleeper() -> None:
            await sleep(1000.0)

        async def canceller(target: Coroutine) -> None:
            await sleep(1.0)
            await cancel(target)

        s = make(clock=clock)
        victim = s.spawn(sleeper)
        s.spawn(canceller, victim)
        s.run(timeout=10)
        assert victim.cancelled
        assert clock.now() < 1000.0

    def test_a_caught_cancel_is_raised_again_at_the_next_checkpoint(self) -> None:
        """Cancellation is level-triggered: catching Cancelled and waiting again raises it again;
        cleanup that must wait runs in a shielded scope, and a plain return still ends it."""

        async def stubborn(log: list[str]) -> str:
            try:
                await wait("never")
            except Cancelled:
                log.append("first")
            try:
                await yield_now()
                log.append("not raised again")
            except Cancelled:
                log.append("again")
            async with CancelScope(shield=True):
                await sleep(0.5)  # cleanup that waits: shielded
                log.append("cleaned up")
            return "finished"

        async def canceller(target: Coroutine) -> None:
            await cancel(target)

        s = make(clock=VirtualClock())
        log: list[str] = []
        victim = s.spawn(stubborn, log)
        s.spawn(canceller, victim)
        s.run(timeout=10)
        assert log == ["first", "again", "cleaned up"]
        assert victim.result == "finished"

    def test_cancel_of_a_ready_coroutine_and_of_a_dead_one(self) -> None:
        """A queued coroutine is cancelled at its next step; a dead one is left alone (False)."""

        async def spinner() -> None:
            while True:
                await yield_now()

        async def canceller(target: Coroutine) -> list[bool]:
            first = await cancel(target)
            await yield_now()
            await yield_now()
            return [first, await cancel(target)]

        s = make()
        victim = s.spawn(spinner)
        boss = s.spawn(canceller, victim)
        s.run(timeout=10)
        assert victim.cancelled
        assert boss.result == [True, False]

    def test_cancelling_yourself_is_refused(self) -> None:
        """cancel(current()) raises UsageError."""

        async def selfish() -> None:
            await cancel(await current())

        s = make()
        co = s.spawn(selfish)
        s.run(timeout=10, raise_failures=False)
        assert isinstance(co.exception, UsageError)


class TestOutsideAScheduler:
    def test_driving_a_trap_by_hand_is_refused(self) -> None:
        """Running sleep() without a scheduler raises TrapOutsideSchedulerError."""
        with pytest.raises(TrapOutsideSchedulerError, match="outside a coroutine-scheduler"):
            sleep(1).send(None)  # type: ignore[attr-defined]

    def test_awaiting_a_trap_under_asyncio_is_refused(self) -> None:
        """asyncio cannot run our traps; the error says so instead of a bad-yield mystery."""

        async def main() -> None:
            await wait("k")

        with pytest.raises(TrapOutsideSchedulerError):
            asyncio.run(main())


class TestCurrent:
    def test_current_returns_the_running_coroutine(self) -> None:
        """current() gives the caller's own Coroutine, in the RUNNING state."""

        async def me() -> tuple[int, CoroutineState]:
            c = await current()
            return c.id, c.state

        s = make()
        co = s.spawn(me)
        s.run(timeout=10)
        assert co.result == (co.id, CoroutineState.RUNNING)
