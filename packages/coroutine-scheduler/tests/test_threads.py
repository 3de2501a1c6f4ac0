"""The threads backend: one OS thread per vCPU, correct under the GIL."""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Generator, Iterator

import pytest

from vmkit.coroutine_scheduler import (
    Coroutine,
    DeadlockError,
    RunTimeoutError,
    Scheduler,
    VirtualClock,
    cancel,
    join,
    notify,
    sleep,
    spawn,
    wait,
    yield_now,
)


def busy(slices: int) -> Generator[None, None, int]:
    total = 0
    for s in range(slices):
        total += sum(range(30)) + s
        yield
    return total


def relay_workload(managers: int, chain: int) -> tuple[Coroutine, list[int], list[bool]]:
    """Managers spawn chains of workers; worker j waits for token j, then passes token j + 1."""
    finished: list[int] = []
    lock = threading.Lock()
    tokens = [False] * (managers * chain + 1)

    async def worker(base: int, j: int) -> int:
        me = base + j
        await yield_now()
        if j:
            # The guard is the futex compare: a notify between the check and the park is not lost.
            while not tokens[me]:
                await wait(("token", me), lambda: not tokens[me])
        await sleep(0)
        tokens[me + 1] = True
        await notify(("token", me + 1))
        with lock:
            finished.append(me)
        return me

    async def manager(m: int) -> int:
        base = m * chain
        # Spawned last-to-first, so most workers park before their token arrives.
        kids = [await spawn(worker, base, j) for j in reversed(range(chain))]
        return sum([await join(k) for k in kids])

    async def root() -> int:
        ms = [await spawn(manager, m) for m in range(managers)]
        return sum([await join(m) for m in ms])

    return root, finished, tokens  # type: ignore[return-value]


@pytest.fixture
def eager_gil_switches() -> Iterator[None]:
    """Switch the GIL between threads every few microseconds, so races show up under the GIL."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


class TestThreadsBackend:
    def test_runs_a_simple_workload_to_completion(self) -> None:
        """Coroutines placed on four vCPU threads all finish with their results."""
        s = Scheduler(4, backend="threads", seed=1)
        cos = [s.spawn(busy, 10) for _ in range(40)]
        s.run(timeout=60)
        assert [c.result for c in cos] == [busy_total(10)] * 40
        stats = s.stats()
        assert stats.totals.executions == 40 * 11
        assert stats.alive == 0

    @pytest.mark.parametrize("backend", ["inline", "threads"])
    @pytest.mark.usefixtures("eager_gil_switches")
    def test_stress_spawn_wait_notify_every_coroutine_completes_exactly_once(
        self, backend: str
    ) -> None:
        """About 2,000 coroutines spawn, wait and notify across vCPUs: each ends exactly once.

        A lost wake-up would leave a worker parked forever: the run would then fail with
        DeadlockError or RunTimeoutError instead of hanging.
        """
        managers, chain = 40, 50
        root_fn, finished, _tokens = relay_workload(managers, chain)
        s = Scheduler(4, backend=backend, seed=7)  # type: ignore[arg-type]
        top = s.spawn(root_fn)
        s.run(timeout=120)
        n = managers * chain
        assert top.result == n * (n - 1) // 2
        counts = Counter(finished)
        assert len(counts) == n
        assert set(counts.values()) == {1}
        stats = s.stats()
        assert stats.spawned == 1 + managers + n
        assert stats.finished == stats.spawned
        assert stats.alive == 0
        if backend == "threads":
            assert sum(1 for v in stats.vcpus if v.executions) >= 2

    @pytest.mark.parametrize("backend", ["inline", "threads"])
    @pytest.mark.usefixtures("eager_gil_switches")
    def test_stress_bounded_buffer_loses_no_item_and_no_wake_up(self, backend: str) -> None:
        """Producers and consumers share a 4-slot buffer through wait/notify on two keys.

        Every item is consumed exactly once; a lost wake-up would park someone forever and end
        the run in DeadlockError or RunTimeoutError.
        """
        producers, consumers, per_producer, capacity = 12, 12, 150, 4
        buf: list[int] = []
        lock = threading.Lock()
        consumed: list[int] = []
        total = producers * per_producer

        def room() -> bool:
            return len(buf) >= capacity

        def empty() -> bool:
            return not buf and len(consumed) < total

        async def producer(p: int) -> None:
            for k in range(per_producer):
                while True:
                    with lock:
                        if len(buf) < capacity:
                            buf.append(p * per_producer + k)
                            break
                    await wait("not_full", room)
                await notify("not_empty")

        async def consumer() -> int:
            taken = 0
            while True:
                with lock:
                    if buf:
                        consumed.append(buf.pop(0))
                        taken += 1
                        item = True
                    elif len(consumed) >= total:
                        break
                    else:
                        item = False
                if item:
                    await notify("not_full")
                else:
                    await wait("not_empty", empty)
            await notify("not_empty", None)  # let the other consumers see the end
            return taken

        s = Scheduler(4, backend=backend, seed=5)  # type: ignore[arg-type]
        cs = [s.spawn(consumer) for _ in range(consumers)]
        for p in range(producers):
            s.spawn(producer, p)
        s.run(timeout=120)
        assert sorted(consumed) == list(range(total))
        assert sum(c.result for c in cs) == total

    def test_skewed_placement_is_stolen_by_other_threads(self) -> None:
        """Work placed on vCPU 0 is stolen and run by the other vCPU threads.

        Each coroutine keeps yielding until it has seen steps run on two different threads (or
        a large cap): on the GIL build the first thread may run for a whole switch interval before
        the others wake, so the test waits for them rather than guessing how long that takes.
        """
        seen: set[str] = set()

        def worker() -> Generator[None, None, None]:
            for _ in range(200_000):
                seen.add(threading.current_thread().name)
                if len(seen) >= 2:
                    return
                yield

        s = Scheduler(4, backend="threads", seed=3, placement="first")
        cos = [s.spawn(worker) for _ in range(32)]
        s.run(timeout=60)
        assert all(c.done for c in cos)
        assert len(seen) >= 2
        stats = s.stats()
        assert stats.totals.steals_in > 0
        assert stats.totals.steals_in == stats.totals.steals_out

    def test_a_spawn_from_plain_code_during_a_run_goes_through_the_global_queue(self) -> None:
        """Scheduler.spawn() called by running code (not the trap) is picked up by some vCPU."""
        s = Scheduler(3, backend="threads", seed=1)
        box: list[int] = []

        async def late() -> None:
            box.append(1)
            await notify("late")

        async def starter() -> bool:
            s.spawn(late)
            while not box:
                await wait("late", lambda: not box)
            return True

        co = s.spawn(starter)
        s.run(timeout=60)
        assert co.result is True
        assert s.stats().totals.global_pulls >= 1

    def test_a_raising_coroutine_does_not_stop_the_threads(self) -> None:
        """An exception in one coroutine is recorded; the others finish."""

        def bad() -> Generator[None, None, None]:
            yield
            raise ValueError("nope")

        s = Scheduler(2, backend="threads", seed=1)
        b = s.spawn(bad)
        good = [s.spawn(busy, 5) for _ in range(6)]
        s.run(timeout=60, raise_failures=False)
        assert isinstance(b.exception, ValueError)
        assert all(g.result == busy_total(5) for g in good)

    def test_deadlock_is_detected(self) -> None:
        """Every coroutine waiting on the threads backend raises DeadlockError, no hang."""

        async def stuck() -> None:
            await wait("nobody-notifies")

        s = Scheduler(3, backend="threads", seed=1)
        cos = [s.spawn(stuck) for _ in range(5)]
        with pytest.raises(DeadlockError, match="nobody-notifies"):
            s.run(timeout=60)
        assert all(c.cancelled for c in cos)

    def test_timeout_stops_the_threads_and_reports_the_living(self) -> None:
        """A run that cannot end raises RunTimeoutError listing what is alive."""
        stop = [False]

        def spinner() -> Generator[None, None, None]:
            while not stop[0]:
                yield

        s = Scheduler(2, backend="threads", seed=1)
        co = s.spawn(spinner, name="spin")
        with pytest.raises(RunTimeoutError, match="'spin'"):
            s.run(timeout=0.1)
        stop[0] = True
        s.run(timeout=60)
        assert co.done

    def test_sleep_with_a_virtual_clock(self) -> None:
        """Sleepers wake in order when every vCPU idles; the virtual clock jumps, no real wait."""
        clock = VirtualClock()
        woke: list[float] = []
        lock = threading.Lock()

        async def sleeper(seconds: float) -> None:
            await sleep(seconds)
            with lock:
                woke.append(seconds)

        s = Scheduler(2, backend="threads", seed=1, clock=clock)
        for seconds in (30.0, 10.0, 20.0):
            s.spawn(sleeper, seconds)
        s.run(timeout=60)
        assert sorted(woke) == [10.0, 20.0, 30.0]
        assert clock.now() >= 30.0

    @pytest.mark.parametrize("backend", ["inline", "threads"])
    def test_sleep_with_the_real_clock(self, backend: str) -> None:
        """A short real sleep ends and the run finishes (the idle vCPUs wait for the timer)."""

        async def napper() -> str:
            await sleep(0.001)
            return "rested"

        s = Scheduler(2, backend=backend, seed=1)  # type: ignore[arg-type]
        co = s.spawn(napper)
        s.run(timeout=60)
        assert co.result == "rested"
        idle = [v.idle_ns > 0 for v in s.stats().vcpus]
        # Inline: every vCPU idles through the real wait. Threads: a vCPU thread that started
        # after the wait began may never have idled, but the one that waited did.
        assert all(idle) if backend == "inline" else any(idle)

    @pytest.mark.usefixtures("eager_gil_switches")
    def test_cancel_across_vcpus(self) -> None:
        """A coroutine spinning on one vCPU is cancelled from another."""

        async def spinner() -> None:
            while True:
                await yield_now()

        async def canceller(target: Coroutine) -> bool:
            for _ in range(20):
                await yield_now()
            return await cancel(target)

        s = Scheduler(2, backend="threads", seed=1)
        victim = s.spawn(spinner, vcpu=0)
        boss = s.spawn(canceller, victim, vcpu=1)
        s.run(timeout=60)
        assert boss.result is True
        assert victim.cancelled


def busy_total(slices: int) -> int:
    return sum(sum(range(30)) + s for s in range(slices))
