"""The scheduler on the inline backend: failures, deadlocks, fairness, stealing, statistics."""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
from collections.abc import Generator
from typing import Any

import pytest

from vmkit.coroutine_scheduler import (
    Cancelled,
    Coroutine,
    CoroutineState,
    DeadlockError,
    Event,
    Instrument,
    LoadImbalance,
    Lock,
    RunTimeoutError,
    Scheduler,
    TraceRecorder,
    UsageError,
    VirtualClock,
    join,
    notify,
    sleep,
    spawn,
    wait,
    yield_now,
)


def busy(slices: int, work: int = 50) -> Generator[None, None, int]:
    """CPU work in slices, yielding after each: the guest-program protocol."""
    total = 0
    for _ in range(slices):
        for i in range(work):
            total += i * i
        yield
    return total


class TestFailures:
    def test_a_raising_coroutine_is_dead_with_its_exception_and_others_go_on(self) -> None:
        """One coroutine's exception is recorded on it; the rest complete normally."""

        def bad() -> Generator[None, None, None]:
            yield
            raise RuntimeError("boom")

        s = Scheduler(2, seed=3)
        good = [s.spawn(busy, 5) for _ in range(4)]
        failing = s.spawn(bad)
        s.run(timeout=10, raise_failures=False)
        assert failing.state is CoroutineState.DEAD
        assert isinstance(failing.exception, RuntimeError)
        with pytest.raises(RuntimeError, match="boom"):
            _ = failing.result
        assert [g.result for g in good] == [5 * sum(i * i for i in range(50))] * 4
        stats = s.stats()
        assert (stats.finished, stats.failed, stats.alive) == (4, 1, 0)

    def test_every_coroutine_waiting_is_a_deadlock_that_names_them(self) -> None:
        """run() raises DeadlockError listing the stuck coroutines, and closes them."""

        async def stuck(key: str) -> None:
            await wait(key)

        s = Scheduler(2, seed=1)
        a = s.spawn(stuck, "left", name="alpha")
        b = s.spawn(stuck, "right", name="beta")
        with pytest.raises(DeadlockError) as info:
            s.run(timeout=10)
        message = str(info.value)
        assert "'alpha'" in message
        assert "'beta'" in message
        assert "'left'" in message
        assert info.value.coroutines == (a, b)
        assert a.cancelled
        assert b.cancelled
        assert s.alive() == ()

    @pytest.mark.parametrize("backend", ["inline", "threads"])
    def test_a_deadlock_caused_by_a_failure_names_the_failure(self, backend: str) -> None:
        """A coroutine dies holding a lock its sibling waits for: the DeadlockError says so and
        carries that failure as its cause instead of hiding it."""
        lock = Lock()

        async def holder() -> None:
            await lock.acquire()
            await yield_now()  # the waiter queues for the lock
            raise KeyError("the config entry")

        async def waiter() -> None:
            await yield_now()
            async with lock:
                pass

        s = Scheduler(1, seed=1, backend=backend)
        s.spawn(holder)
        s.spawn(waiter)
        with pytest.raises(DeadlockError) as info:
            s.run(timeout=10)
        assert isinstance(info.value.__cause__, KeyError)
        assert any("KeyError: 'the config entry'" in n for n in info.value.__notes__)

    def test_primitives_used_after_a_deadlock_skip_the_closed_waiters(self) -> None:
        """The deadlock closes the waiters; an Event set or a Lock released afterwards (say by
        another thread that came too late) finds them gone instead of reviving the dead."""
        event, lock = Event(), Lock()

        async def holder() -> None:
            async with lock:
                await event.wait()

        async def contender() -> None:
            async with lock:
                pass

        s = Scheduler(1, seed=1)
        a = s.spawn(holder)
        b = s.spawn(contender)
        with pytest.raises(DeadlockError):
            s.run(timeout=10)
        event.set()
        lock.release()
        assert a.cancelled
        assert b.cancelled
        assert not lock.locked()
        assert s.alive() == ()

    def test_a_join_cycle_is_a_deadlock(self) -> None:
        """Two coroutines joining each other are reported instead of hanging."""
        s = Scheduler(1, seed=1)
        box: dict[str, Coroutine] = {}

        async def first() -> None:
            await yield_now()
            await join(box["second"])

        async def second() -> None:
            await join(box["first"])

        box["first"] = s.spawn(first)
        box["second"] = s.spawn(second)
        with pytest.raises(DeadlockError, match="join"):
            s.run(timeout=10)

    def test_sleepers_are_not_a_deadlock(self) -> None:
        """A waiter woken by a sleeper that wakes up later is a normal run."""
        clock = VirtualClock()

        async def waiter() -> bool:
            return await wait("k")

        async def late() -> None:
            await sleep(5.0)
            await notify("k")

        s = Scheduler(2, seed=1, clock=clock)
        w = s.spawn(waiter)
        s.spawn(late)
        s.run(timeout=10)
        assert w.result is True
        assert clock.now() == pytest.approx(5.0)

    def test_timeout_stops_cleanly_and_reports_the_living(self) -> None:
        """A run that cannot finish in time raises RunTimeoutError; run() again continues."""
        stop = [False]

        def forever() -> Generator[None, None, str]:
            while not stop[0]:
                yield
            return "stopped"

        s = Scheduler(2, seed=1)
        co = s.spawn(forever, name="spinner")
        with pytest.raises(RunTimeoutError, match="'spinner'") as info:
            s.run(timeout=0.05)
        assert info.value.alive == (co,)
        assert co.state is CoroutineState.READY
        stop[0] = True
        s.run(timeout=10)
        assert co.result == "stopped"

    def test_close_ends_the_living_as_cancelled(self) -> None:
        """close() closes every live coroutine, including ones that never started."""

        async def never_started() -> None:
            await yield_now()

        s = Scheduler(2, seed=1)
        cos = [s.spawn(never_started) for _ in range(3)]
        s.close()
        assert all(c.cancelled for c in cos)
        assert s.stats().alive == 0
        s.run(timeout=10)  # nothing left: returns at once


class TestParameters:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"vcpus": 0}, "vcpus"),
            ({"backend": "fibers"}, "backend"),
            ({"placement": "everywhere"}, "placement"),
            ({"local_queue_size": 1}, "local_queue_size"),
            ({"lifo_limit": -1}, "lifo_limit"),
            ({"quantum": 0}, "quantum"),
            ({"seed": "x"}, "seed"),
            ({"idle_poll": 0}, "idle_poll"),
        ],
    )
    def test_bad_parameters_are_refused_with_their_name(
        self, kwargs: dict[str, Any], message: str
    ) -> None:
        """Each out-of-range parameter is named in a one-line UsageError."""
        with pytest.raises(UsageError, match=message):
            Scheduler(**kwargs)

    def test_spawn_refuses_a_bad_vcpu_and_arguments_with_a_generator(self) -> None:
        """spawn() checks its vcpu index and refuses args next to a created generator."""
        s = Scheduler(2)
        with pytest.raises(UsageError, match="vcpu"):
            s.spawn(busy, 1, vcpu=5)
        with pytest.raises(UsageError, match="already-created"):
            s.spawn(busy(1), 3)
        with pytest.raises(UsageError, match="got int"):
            s.spawn(17)
        s.close()

    @pytest.mark.parametrize("placement", ["round_robin", "random", "global", "first"])
    @pytest.mark.parametrize("backend", ["inline", "threads"])
    def test_every_placement_runs_everything(self, placement: str, backend: str) -> None:
        """Whatever the placement policy, every coroutine runs to completion."""
        s = Scheduler(3, seed=4, placement=placement, backend=backend)  # type: ignore[arg-type]
        cos = [s.spawn(busy, 4) for _ in range(12)]
        s.run(timeout=60)
        assert all(c.result == 4 * sum(i * i for i in range(50)) for c in cos)
        queued_globally = s.stats().totals.global_pulls
        assert (queued_globally >= 12) is (placement == "global")

    def test_run_refuses_a_bad_timeout(self) -> None:
        """run(timeout=0) is refused."""
        with pytest.raises(UsageError, match="timeout"):
            Scheduler(1).run(timeout=0)


def traced_run(seed: int) -> tuple[list[tuple[str | int, ...]], list[int]]:
    recorder = TraceRecorder()
    clock = VirtualClock()
    s = Scheduler(4, seed=seed, placement="random", instruments=[recorder], clock=clock, quantum=3)

    async def worker(i: int) -> int:
        for k in range(i % 5 + 1):
            if k % 2:
                await sleep(0.001 * (i % 3 + 1))
            else:
                await yield_now()
        if i % 4 == 0:
            child = await spawn(busy, 3)
            await join(child)
        return i

    for i in range(40):
        s.spawn(worker, i)
    s.run(timeout=30)
    return recorder.events, [v.executions for v in s.stats().vcpus]


class TestDeterminism:
    def test_two_runs_with_one_seed_give_identical_traces(self) -> None:
        """Same seed, same workload: the same steps on the same vCPUs, steals included."""
        trace_a, per_vcpu_a = traced_run(seed=42)
        trace_b, per_vcpu_b = traced_run(seed=42)
        assert any(e[0] == "steal" for e in trace_a)
        assert trace_a == trace_b
        assert per_vcpu_a == per_vcpu_b

    def test_the_seed_drives_the_choices(self) -> None:
        """A different seed places and steals differently (the trace is not fixed by accident)."""
        trace_a, _ = traced_run(seed=1)
        trace_b, _ = traced_run(seed=2)
        assert trace_a != trace_b


class TestFastAndGeneralPathsAgree:
    def test_an_instrument_does_not_change_the_schedule(self) -> None:
        """The switch path and the instrumented path make the same choices for one seed."""

        def outcome(instrumented: bool) -> tuple[list[tuple[int, ...]], list[Any]]:
            s = Scheduler(
                3,
                seed=8,
                placement="random",
                clock=VirtualClock(),
                quantum=5,
                global_queue_interval=7,
                instruments=[Instrument()] if instrumented else [],
            )

            async def worker(i: int) -> int:
                for k in range(i % 7 + 2):
                    if k % 3 == 2:
                        await sleep(0.001)
                    else:
                        await yield_now()
                    if i % 5 == 0 and k == 1:
                        await join(await spawn(busy, 2))
                return i

            cos = [s.spawn(worker, i) for i in range(30)]
            s.run(timeout=30)
            per_vcpu = [
                (v.executions, v.context_switches, v.steals_in, v.steals_out, v.global_pulls)
                for v in s.stats().vcpus
            ]
            return per_vcpu, [c.result for c in cos]

        fast = outcome(instrumented=False)
        assert sum(row[2] for row in fast[0]) > 0  # steals happened, so the test has teeth
        assert fast == outcome(instrumented=True)


class TestFairness:
    @staticmethod
    def respawn_chain(interval: int) -> tuple[int, bool]:
        """Run a self-respawning chain plus one coroutine in the global queue; report when."""
        s = Scheduler(1, seed=1, global_queue_interval=interval)
        marker_ran = [False]
        generations = [0]

        async def marker() -> None:
            marker_ran[0] = True

        async def link(first: bool) -> None:
            generations[0] += 1
            if first:
                s.spawn(marker)  # spawned while running: goes to the global queue
            if not marker_ran[0] and generations[0] < 5000:
                await spawn(link, False)

        s.spawn(link, True)
        s.run(timeout=30)
        return generations[0], marker_ran[0]

    def test_a_self_respawning_coroutine_cannot_starve_the_global_queue(self) -> None:
        """The global queue is served within global_queue_interval ticks despite local work."""
        generations, ran = self.respawn_chain(interval=61)
        assert ran
        assert generations <= 61 + 1

    def test_without_the_periodic_check_the_global_queue_starves(self) -> None:
        """Control: with the check pushed out of reach the chain runs to its cap first."""
        generations, ran = self.respawn_chain(interval=10**9)
        assert ran
        assert generations == 5000

    def test_the_next_to_run_slot_cannot_starve_the_queue(self) -> None:
        """Two coroutines waking each other through the slot still let a third one run."""
        s = Scheduler(1, seed=1, lifo_limit=3)
        done = [False]
        rounds = [0]

        async def ping(me: str, other: str) -> None:
            while not done[0] and rounds[0] < 10_000:
                rounds[0] += 1
                await notify(other)
                await wait(me, lambda: not done[0])
            await notify(other)

        async def third() -> None:
            done[0] = True

        s.spawn(ping, "a", "b")
        s.spawn(ping, "b", "a")
        s.spawn(third)
        s.run(timeout=30)
        assert rounds[0] < 20


class TestStealing:
    def run_skewed(self, stealing: bool) -> Scheduler:
        s = Scheduler(4, seed=5, placement="first", work_stealing=stealing)
        for _ in range(64):
            s.spawn(busy, 20)
        s.run(timeout=30)
        return s

    def test_skewed_placement_gets_balanced(self) -> None:
        """All work placed on vCPU 0 ends up spread: every vCPU runs a fair share."""
        stats = self.run_skewed(stealing=True).stats()
        executions = [v.executions for v in stats.vcpus]
        assert sum(executions) == 64 * 21
        assert min(executions) > 0.15 * sum(executions)
        assert stats.totals.steals_in == stats.totals.steals_out > 0
        assert stats.vcpus[0].steals_out > 0

    def test_without_stealing_the_skew_stays(self) -> None:
        """Control: with stealing off, vCPU 0 runs everything and the CV is sqrt(3)."""
        stats = self.run_skewed(stealing=False).stats()
        assert [v.executions for v in stats.vcpus][1:] == [0, 0, 0]
        assert stats.imbalance.cv == pytest.approx(math.sqrt(3))
        assert stats.imbalance.max_over_mean == pytest.approx(4.0)

    def test_a_steal_takes_the_older_half_rounded_up(self) -> None:
        """An idle vCPU takes ceil(n/2) coroutines from the head of a victim's queue."""
        s = Scheduler(2, seed=1)
        cos = [s.spawn(busy, 1, vcpu=0) for _ in range(7)]
        thief, victim = s.vcpus[1], s.vcpus[0]
        first = s._steal(thief)
        assert first is cos[0]
        assert list(thief._local) == cos[1:4]
        assert list(victim._local) == cos[4:]
        assert (thief.stats().steals_in, victim.stats().steals_out) == (4, 4)
        s.close()

    def test_a_full_local_queue_spills_half_to_the_global_queue(self) -> None:
        """Past local_queue_size, the older half moves to the global queue; all still finish."""
        s = Scheduler(2, seed=1, local_queue_size=4, work_stealing=False)
        cos = [s.spawn(busy, 2, vcpu=0) for _ in range(9)]
        assert s.stats().global_queue_length > 0
        assert s.vcpus[0].queue_length <= 4
        s.run(timeout=10)
        assert all(c.done and c.exception is None for c in cos)
        assert s.stats().totals.global_pulls > 0


class TestStatistics:
    def test_snapshots_are_frozen_and_totals_add_up(self) -> None:
        """stats() records are immutable and the totals are the per-vCPU sums."""
        s = Scheduler(3, seed=2)
        for _ in range(12):
            s.spawn(busy, 10)
        s.run(timeout=10)
        stats = s.stats()
        with pytest.raises(dataclasses.FrozenInstanceError):
            stats.alive = 3  # type: ignore[misc]
        for field in ("executions", "context_switches", "busy_ns", "idle_ns", "steals_in"):
            assert getattr(stats.totals, field) == sum(getattr(v, field) for v in stats.vcpus)
        assert stats.totals.executions == 12 * 11
        assert all(0.0 <= v.utilization <= 1.0 for v in stats.vcpus)
        assert stats.vcpus[0].busy_ns > 0

    def test_load_imbalance_matches_an_independent_computation(self) -> None:
        """variance, max/mean and CV agree with the statistics module."""
        busy_ns = [10.0, 20.0, 30.0, 60.0]
        got = LoadImbalance.of(busy_ns)
        mean = statistics.fmean(busy_ns)
        assert got.variance == pytest.approx(statistics.pvariance(busy_ns))
        assert got.max_over_mean == pytest.approx(60.0 / mean)
        assert got.cv == pytest.approx(statistics.pstdev(busy_ns) / mean)
        assert LoadImbalance.of([0.0, 0.0]) == LoadImbalance(0.0, 0.0, 0.0)

    def test_coroutines_account_their_steps_and_time(self) -> None:
        """Each coroutine counts its steps; run time is measured with statistics on only."""
        for stats_on in (True, False):
            s = Scheduler(1, seed=1, statistics=stats_on)
            co = s.spawn(busy, 9)
            s.run(timeout=10)
            assert co.switches == 10
            assert (co.run_ns > 0) is stats_on
            assert s.stats().totals.executions == 10

    def test_context_switches_count_changes_of_coroutine(self) -> None:
        """A lone coroutine never switches; two alternating ones switch at every step."""
        s = Scheduler(1, seed=1)
        s.spawn(busy, 9)
        s.run(timeout=10)
        assert s.stats().totals.context_switches == 1
        s = Scheduler(1, seed=1)
        s.spawn(busy, 9)
        s.spawn(busy, 9)
        s.run(timeout=10)
        assert s.stats().totals.context_switches == 20


class CountingInstrument(Instrument):
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.stolen = 0

    def bump(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def before_run(self) -> None:
        self.bump("before_run")

    def after_run(self) -> None:
        self.bump("after_run")

    def on_spawn(self, coroutine: Coroutine, vcpu: int | None) -> None:
        self.bump("spawn")

    def before_step(self, vcpu: int, coroutine: Coroutine) -> None:
        self.bump("before_step")

    def after_step(self, vcpu: int, coroutine: Coroutine) -> None:
        self.bump("after_step")

    def on_steal(self, thief: int, victim: int, count: int) -> None:
        self.stolen += count

    def on_exit(self, coroutine: Coroutine) -> None:
        self.bump("exit")


class TestInstruments:
    def test_hooks_see_every_step_spawn_steal_and_exit(self) -> None:
        """Hook counts agree with the scheduler's own counters."""
        inst = CountingInstrument()
        s = Scheduler(4, seed=9, placement="first", instruments=[inst])

        async def parent() -> None:
            kids = [await spawn(busy, 4) for _ in range(3)]
            for k in kids:
                await join(k)

        for _ in range(20):
            s.spawn(busy, 6)
        s.spawn(parent)
        s.run(timeout=10)
        stats = s.stats()
        assert inst.counts["before_run"] == inst.counts["after_run"] == 1
        assert inst.counts["spawn"] == stats.spawned == 24
        assert inst.counts["exit"] == 24
        assert inst.counts["before_step"] == inst.counts["after_step"] == stats.totals.executions
        assert inst.stolen == stats.totals.steals_in > 0


class TestLogging:
    def test_debug_events_carry_vcpu_and_coroutine_ids(
        self, debug_log: list[dict[str, Any]]
    ) -> None:
        """Spawns, steals and ends are logged at debug level with their ids bound."""
        s = Scheduler(2, seed=1, placement="first", quantum=2)
        for _ in range(8):
            s.spawn(busy, 3)
        s.run(timeout=10)
        events = {e["event"] for e in debug_log}
        assert {"run_started", "coroutine_finished", "steal", "run_finished"} <= events
        for e in debug_log:
            if e["event"] in ("coroutine_finished", "steal"):
                assert "vcpu" in e
            if e["event"] == "coroutine_finished":
                assert "coroutine" in e
        assert all(e["log_level"] == "debug" for e in debug_log)

    def test_no_events_when_debug_is_off(self, debug_log: list[dict[str, Any]]) -> None:
        """With the level above debug, the run logs nothing."""
        logging.getLogger("vmkit.coroutine_scheduler").setLevel(logging.INFO)
        s = Scheduler(2, seed=1, placement="first")
        for _ in range(8):
            s.spawn(busy, 3)
        s.run(timeout=10)
        assert debug_log == []

    def test_unconfigured_library_writes_nothing_to_stdout(
        self, capfd: pytest.CaptureFixture[str]
    ) -> None:
        """Without logging configured, a run prints nothing: debug events stay unrendered."""
        s = Scheduler(2, seed=1)
        for _ in range(8):
            s.spawn(busy, 3)
        s.run(timeout=10)
        out, err = capfd.readouterr()
        assert (out, err) == ("", "")


class TestGuestPrograms:
    def test_generators_yielding_none_per_slice_return_their_exit_status(self) -> None:
        """Eight guest-like generators on four vCPUs each produce their output and status."""
        outputs: dict[int, list[str]] = {}

        def guest(n: int) -> Generator[None, None, int]:
            out = outputs.setdefault(n, [])
            a, b = 0, 1
            for _ in range(n * 10):
                a, b = b, a + b
                if a % 7 == 0:
                    out.append(str(a))
                yield  # end of a slice
            return a % 256

        def expected(n: int) -> tuple[list[str], int]:
            out: list[str] = []
            a, b = 0, 1
            for _ in range(n * 10):
                a, b = b, a + b
                if a % 7 == 0:
                    out.append(str(a))
            return out, a % 256

        s = Scheduler(4, seed=11)
        cos = {n: s.spawn(guest, n, name=f"guest{n}") for n in range(1, 9)}
        s.run(timeout=30)
        for n, co in cos.items():
            want_out, want_status = expected(n)
            assert co.result == want_status
            assert outputs[n] == want_out
        assert all(v.executions > 0 for v in s.stats().vcpus)

    def test_a_guest_object_with_only_send_and_throw(self) -> None:
        """Any object with the generator shape runs: its StopIteration value is the status."""

        class Guest:
            def __init__(self, slices: int) -> None:
                self.left = slices

            def send(self, value: object) -> None:
                if self.left == 0:
                    raise StopIteration(42)
                self.left -= 1

            def throw(self, exc: BaseException) -> None:
                raise exc

        s = Scheduler(2, seed=1)
        co = s.spawn(Guest(5))
        s.run(timeout=10)
        assert co.result == 42
        assert co.switches == 6

    def test_cancelling_a_guest_closes_it(self) -> None:
        """A guest generator cancelled mid-run ends with Cancelled and runs its finally block."""
        cleaned = [False]

        def guest() -> Generator[None, None, int]:
            try:
                while True:
                    yield
            finally:
                cleaned[0] = True

        async def killer(target: Coroutine) -> None:
            await yield_now()
            from vmkit.coroutine_scheduler import cancel

            await cancel(target)

        s = Scheduler(1, seed=1)
        g = s.spawn(guest)
        s.spawn(killer, g)
        s.run(timeout=10)
        assert isinstance(g.exception, Cancelled)
        assert cleaned[0]
