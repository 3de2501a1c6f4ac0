"""Structured concurrency: task groups, cancel scopes with deadlines and shields, and failures
that surface from Scheduler.run(), on both backends and the virtual clock."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmkit.coroutine_scheduler import (
    Cancelled,
    CancelScope,
    Coroutine,
    DeadlineExceeded,
    Event,
    Scheduler,
    TaskGroup,
    UsageError,
    VirtualClock,
    cancel,
    fail_after,
    from_asyncio,
    join,
    move_on_after,
    move_on_at,
    notify,
    sleep,
    spawn,
    wait,
    yield_now,
)

BACKENDS = ("inline", "threads")


def make(backend: str, vcpus: int = 2) -> tuple[Scheduler, VirtualClock]:
    clock = VirtualClock()
    return Scheduler(vcpus, backend=backend, seed=7, clock=clock), clock


@pytest.mark.parametrize("backend", BACKENDS)
class TestTaskGroup:
    def test_the_block_waits_for_every_child(self, backend: str) -> None:
        """Leaving the block means every child ended; their results are all there."""

        async def child(n: int) -> int:
            await sleep(n)
            return n * n

        async def parent() -> list[int]:
            async with TaskGroup() as tg:
                kids = [await tg.spawn(child, n) for n in range(1, 5)]
            assert not tg.children
            return [k.result for k in kids]

        s, clock = make(backend)
        top = s.spawn(parent)
        s.run(timeout=30)
        assert top.result == [1, 4, 9, 16]
        assert clock.now() == 4

    def test_first_failure_cancels_siblings_and_is_raised(self, backend: str) -> None:
        """A child's failure cancels the others at their next checkpoint and leaves the group
        as that very exception; the cancelled siblings are not failures."""
        ended: list[str] = []

        async def sleeper(n: int) -> None:
            try:
                await sleep(100)
            except Cancelled:
                ended.append(f"cancelled {n}")
                raise

        async def failing() -> None:
            await sleep(1)
            raise KeyError("boom")

        async def parent() -> str:
            try:
                async with TaskGroup() as tg:
                    for n in range(3):
                        await tg.spawn(sleeper, n)
                    await tg.spawn(failing)
                    await sleep(50)  # the block itself is cancelled too
            except KeyError as e:
                return f"caught {e}"
            return "not raised"

        s, clock = make(backend)
        top = s.spawn(parent)
        s.run(timeout=30)
        assert top.result == "caught 'boom'"
        assert sorted(ended) == ["cancelled 0", "cancelled 1", "cancelled 2"]
        assert clock.now() == 1

    def test_several_failures_come_as_an_exception_group(self, backend: str) -> None:
        """The first failure cancels the siblings; those whose cleanup fails too are reported
        with it, as one ExceptionGroup."""

        async def failing_cleanup(n: int) -> None:
            try:
                await sleep(100)
            except Cancelled:
                raise ValueError(n) from None

        async def first() -> None:
            await sleep(1)
            raise ValueError(-1)

        async def parent() -> list[int]:
            try:
                async with TaskGroup() as tg:
                    for n in range(2):
                        await tg.spawn(failing_cleanup, n)
                    await tg.spawn(first)
            except ExceptionGroup as group:
                return sorted(e.args[0] for e in group.exceptions)
            return []

        s, _ = make(backend)
        top = s.spawn(parent)
        s.run(timeout=30)
        assert top.result == [-1, 0, 1]

    def test_cancelling_the_group_scope_ends_it_quietly(self, backend: str) -> None:
        async def parent() -> tuple[bool, list[bool]]:
            async with TaskGroup() as tg:
                kids = [await tg.spawn(sleep, 100), await tg.spawn(sleep, 200)]
                await sleep(3)
                tg.cancel_scope.cancel()
                await yield_now()  # a checkpoint: the block's Cancelled is absorbed
            return tg.cancel_scope.cancelled_caught, [k.cancelled for k in kids]

        s, clock = make(backend)
        top = s.spawn(parent)
        s.run(timeout=30)
        assert top.result == (True, [True, True])
        assert clock.now() == 3

    def test_an_outer_cancel_reaches_the_children_and_goes_on(self, backend: str) -> None:
        """cancel() on the parent while it waits at the block's end cancels the children; the
        parent ends cancelled (the Cancelled was not the group's to absorb)."""
        children: list[Coroutine] = []

        async def parent() -> None:
            async with TaskGroup() as tg:
                children.append(await tg.spawn(sleep, 100))

        async def boss(target: Coroutine) -> None:
            await sleep(2)
            await cancel(target)

        s, clock = make(backend)
        top = s.spawn(parent)
        s.spawn(boss, top)
        s.run(timeout=30)
        assert top.cancelled
        assert children[0].cancelled
        assert clock.now() == 2

    def test_spawning_into_a_finished_group_is_refused(self, backend: str) -> None:
        async def parent() -> str:
            async with TaskGroup() as tg:
                pass
            try:
                await tg.spawn(sleep, 1)
            except UsageError as e:
                return str(e)
            return "accepted"

        s, _ = make(backend)
        top = s.spawn(parent)
        s.run(timeout=30)
        assert "has ended" in top.result


@pytest.mark.parametrize("backend", BACKENDS)
class TestCancelScopes:
    def test_move_on_after_gives_up_at_the_deadline(self, backend: str) -> None:
        async def body() -> tuple[bool, str]:
            outcome = "not cancelled"
            async with move_on_after(5) as scope:
                await wait("never")
                outcome = "woken"
            return scope.cancelled_caught, outcome

        s, clock = make(backend)
        top = s.spawn(body)
        s.run(timeout=30)
        assert top.result == (True, "not cancelled")
        assert clock.now() == 5
        assert s.stats().scopes_moved_on == 1

    def test_fail_after_raises_deadline_exceeded(self, backend: str) -> None:
        async def body() -> str:
            try:
                async with fail_after(2):
                    await sleep(10)
            except DeadlineExceeded as e:
                return f"timed out ({isinstance(e, TimeoutError)})"
            return "finished"

        s, clock = make(backend)
        top = s.spawn(body)
        s.run(timeout=30)
        assert top.result == "timed out (True)"
        assert clock.now() == 2
        assert s.stats().deadlines_exceeded == 1

    def test_a_scope_that_finishes_in_time_changes_nothing(self, backend: str) -> None:
        async def body() -> bool:
            async with move_on_after(10) as scope:
                await sleep(1)
            await sleep(20)  # the old deadline must not fire
            return scope.cancelled_caught

        s, clock = make(backend)
        top = s.spawn(body)
        s.run(timeout=30)
        assert top.result is False
        assert clock.now() == 21

    def test_nested_scopes_the_outer_cancellation_passes_the_inner(self, backend: str) -> None:
        async def body() -> tuple[bool, bool]:
            async with move_on_after(1) as outer, move_on_after(5) as inner:
                await sleep(10)
            return outer.cancelled_caught, inner.cancelled_caught

        s, clock = make(backend)
        top = s.spawn(body)
        s.run(timeout=30)
        assert top.result == (True, False)
        assert clock.now() == 1

    def test_a_shield_keeps_outside_cancellation_out_until_it_is_left(self, backend: str) -> None:
        log: list[str] = []

        async def body() -> None:
            async with move_on_after(1):
                async with CancelScope(shield=True):
                    await sleep(5)
                    log.append("shielded sleep finished")
                await yield_now()  # the first checkpoint outside the shield
                log.append("not reached")
            log.append("after")

        s, clock = make(backend)
        s.spawn(body)
        s.run(timeout=30)
        assert log == ["shielded sleep finished", "after"]
        assert clock.now() == 5

    def test_cancel_from_another_coroutine(self, backend: str) -> None:
        scopes: list[CancelScope] = []

        async def worker() -> str:
            async with CancelScope() as scope:
                scopes.append(scope)
                await wait("never")
            return "moved on" if scope.cancelled_caught else "?"

        async def canceller() -> None:
            await sleep(3)
            scopes[0].cancel()

        s, clock = make(backend)
        top = s.spawn(worker)
        s.spawn(canceller)
        s.run(timeout=30)
        assert top.result == "moved on"
        assert clock.now() == 3

    def test_a_scope_cancelled_before_entry_cancels_at_once(self, backend: str) -> None:
        async def body() -> bool:
            scope = move_on_at(float("inf"))
            scope.cancel()
            async with scope:
                await yield_now()
            return scope.cancelled_caught

        s, _ = make(backend)
        top = s.spawn(body)
        s.run(timeout=30)
        assert top.result is True

    def test_a_spinning_coroutine_is_cancelled_at_its_yields(self, backend: str) -> None:
        """A coroutine that only yields (never waits) is cancelled at its next yield, and
        catching Cancelled inside the loop cannot keep it going."""
        caught = 0

        async def spinner() -> None:
            nonlocal caught
            while True:
                try:
                    await yield_now()
                except Cancelled:
                    caught += 1
                    if caught > 3:
                        raise

        async def body() -> bool:
            async with TaskGroup() as tg:
                kid = await tg.spawn(spinner)
                for _ in range(10):
                    await yield_now()
                tg.cancel_scope.cancel()
            return kid.cancelled

        s, _ = make(backend)
        top = s.spawn(body)
        s.run(timeout=30)
        assert top.result is True
        assert caught == 4


@pytest.mark.parametrize("backend", BACKENDS)
class TestRunRaises:
    def test_an_unjoined_failure_is_raised_by_run(self, backend: str) -> None:
        async def bad() -> None:
            await sleep(1)
            raise ValueError("lost?")

        s, _ = make(backend)
        s.spawn(bad, name="bad one")
        with pytest.raises(ValueError, match="lost") as info:
            s.run(timeout=30)
        assert any("'bad one'" in note for note in info.value.__notes__)

    def test_several_come_as_a_group_and_a_joined_one_is_not_reported(self, backend: str) -> None:
        async def bad(n: int) -> None:
            raise ValueError(n)

        async def joiner() -> str:
            child = await spawn(bad, 99)
            try:
                await join(child)
            except ValueError:
                return "handled"
            return "?"

        s, _ = make(backend)
        s.spawn(bad, 1)
        s.spawn(bad, 2)
        j = s.spawn(joiner)
        with pytest.raises(ExceptionGroup) as info:
            s.run(timeout=30)
        assert sorted(e.args[0] for e in info.value.exceptions) == [1, 2]
        assert j.result == "handled"

    def test_supervisors_opt_out(self, backend: str) -> None:
        async def bad() -> None:
            raise ValueError("kept on the coroutine")

        s, _ = make(backend)
        co = s.spawn(bad)
        s.run(timeout=30, raise_failures=False)
        assert isinstance(co.exception, ValueError)

    def test_event_set_from_an_os_thread_wakes_the_waiter(self, backend: str) -> None:
        """Release methods are plain calls: an OS thread may set an Event mid-run."""
        import threading

        event = Event()

        async def waiter() -> str:
            await event.wait()
            return "woken"

        async def ticker() -> None:
            # Keeps the run alive (and the event bound) until the thread has set it.
            while not event.is_set():
                await sleep(0.001)

        s = Scheduler(2, backend=backend, seed=1)
        top = s.spawn(waiter)
        s.spawn(ticker)
        timer = threading.Timer(0.05, event.set)
        timer.start()
        s.run(timeout=30)
        timer.join()
        assert top.result == "woken"


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda n: st.tuples(
            st.lists(st.integers(0, 2), min_size=n, max_size=n),  # each waiter's key
            st.lists(st.integers(0, 3 * n + 3), min_size=3 * n, max_size=3 * n, unique=True),
            st.lists(st.booleans(), min_size=n, max_size=n),  # is waiter i cancelled?
            st.sampled_from(BACKENDS),
        )
    )
)
def test_random_wait_notify_cancel_programs_match_the_model(program: tuple) -> None:  # type: ignore[type-arg]
    """Waiters wait on a key under a deadline; at distinct times the driver notifies keys (all
    waiters) or cancels a waiter. Model: each waiter ends by whichever of its deadline, its
    key's first notify or its cancel comes first."""
    keys, times, cancelled, backend = program
    n = len(keys)
    deadlines = [1 + t for t in times[:n]]
    notify_at = [1 + t for t in times[n : 2 * n]]  # notify key (i % 3) at notify_at[i]
    cancel_at = [1 + t for t in times[2 * n :]]

    async def waiter(key: int, deadline: float) -> str:
        async with move_on_after(deadline):
            await wait(key)
            return "notified"
        return "timed out"

    events: list[tuple[float, str, int]] = [(t, "notify", i % 3) for i, t in enumerate(notify_at)]
    events += [(cancel_at[i], "cancel", i) for i in range(n) if cancelled[i]]

    async def driver(targets: list[Coroutine]) -> None:
        now = 0.0
        for t, what, arg in sorted(events):
            await sleep(t - now)
            now = t
            if what == "notify":
                await notify(arg, None)
            else:
                await cancel(targets[arg])

    s, _ = make(backend)
    waiters = [s.spawn(waiter, keys[i], deadlines[i]) for i in range(n)]
    s.spawn(driver, waiters)
    s.run(timeout=60)

    for i, co in enumerate(waiters):
        options = [(deadlines[i], "timed out")]
        options += [(t, "notified") for t, what, k in events if what == "notify" and k == keys[i]]
        if cancelled[i]:
            options.append((cancel_at[i], "cancelled"))
        expected = min(options)[1]
        outcome = "cancelled" if co.cancelled else co.result
        assert outcome == expected, (i, options)


class TestAsyncio:
    def test_awaiting_an_asyncio_future_names_it(self) -> None:
        import asyncio

        loop = asyncio.new_event_loop()
        try:
            future = loop.create_future()

            async def body() -> None:
                await future

            s = Scheduler(1, seed=1)
            co = s.spawn(body)
            s.run(timeout=10, raise_failures=False)
        finally:
            loop.close()
        assert isinstance(co.exception, UsageError)
        assert "awaited an asyncio future" in str(co.exception)

    def test_an_asyncio_call_says_why_it_failed(self) -> None:
        import asyncio

        async def body() -> None:
            await asyncio.sleep(0.01)

        s = Scheduler(1, seed=1)
        s.spawn(body)
        with pytest.raises(RuntimeError) as info:
            s.run(timeout=10)
        assert any("needs an asyncio event loop" in n for n in info.value.__notes__)

    def test_asyncio_runs_a_scheduler_in_a_thread(self) -> None:
        """The documented bridge: asyncio awaits a whole scheduler run without blocking its loop."""
        import asyncio

        async def child(n: int) -> int:
            await sleep(0.001)
            return n

        async def main() -> tuple[list[int], int]:
            s = Scheduler(2, seed=1)
            kids = [s.spawn(child, n) for n in range(5)]
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0)

            task = asyncio.create_task(ticker())
            await asyncio.to_thread(s.run, 10)
            task.cancel()
            return [k.result for k in kids], ticks

        results, ticks = asyncio.run(main())
        assert results == [0, 1, 2, 3, 4]
        assert ticks > 0  # the event loop kept running meanwhile


@pytest.mark.parametrize("backend", BACKENDS)
class TestFromAsyncio:
    """Scheduler coroutines awaiting asyncio work, with the scheduler run from asyncio."""

    @staticmethod
    def _run(backend: str, body: Any) -> tuple[Coroutine, Scheduler]:
        import asyncio

        async def main() -> tuple[Coroutine, Scheduler]:
            loop = asyncio.get_running_loop()
            s = Scheduler(2, backend=backend, seed=1)
            co = s.spawn(body, loop)
            await asyncio.to_thread(s.run, 20, raise_failures=False)
            return co, s

        return asyncio.run(main())

    def test_a_result_comes_back_and_the_run_waits_for_it(self, backend: str) -> None:
        import asyncio

        async def body(loop: asyncio.AbstractEventLoop) -> int:
            first = await from_asyncio(asyncio.sleep(0.05, result=20), loop)
            second = await from_asyncio(asyncio.sleep(0, result=22), loop)
            return first + second

        co, _ = self._run(backend, body)
        assert co.result == 42

    def test_an_asyncio_failure_is_raised_in_the_coroutine(self, backend: str) -> None:
        import asyncio

        async def failing() -> None:
            await asyncio.sleep(0.01)
            raise LookupError("from asyncio")

        async def body(loop: asyncio.AbstractEventLoop) -> str:
            try:
                await from_asyncio(failing(), loop)
            except LookupError as e:
                return str(e)
            return "?"

        co, _ = self._run(backend, body)
        assert co.result == "from asyncio"

    def test_cancelling_the_coroutine_cancels_the_asyncio_task(self, backend: str) -> None:
        import asyncio

        cancelled_on_asyncio_side: list[bool] = []

        async def slow() -> None:
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled_on_asyncio_side.append(True)
                raise

        async def body(loop: asyncio.AbstractEventLoop) -> bool:
            async with move_on_after(0.1) as scope:
                await from_asyncio(slow(), loop)
            return scope.cancelled_caught

        co, s = self._run(backend, body)
        assert co.result is True
        assert s.stats().blocked == 0
        for _ in range(100):  # the asyncio side learns of it on its own loop
            if cancelled_on_asyncio_side:
                break
            import time

            time.sleep(0.01)
        assert cancelled_on_asyncio_side == [True]

    def test_the_loop_of_this_thread_is_refused(self, backend: str) -> None:
        import asyncio

        loop = asyncio.new_event_loop()

        async def body() -> None:
            await from_asyncio(asyncio.sleep(0), loop)

        s = Scheduler(1, backend=backend, seed=1)
        co = s.spawn(body)
        s.run(timeout=10, raise_failures=False)
        loop.close()
        assert isinstance(co.exception, UsageError)
        assert "running" in str(co.exception)
