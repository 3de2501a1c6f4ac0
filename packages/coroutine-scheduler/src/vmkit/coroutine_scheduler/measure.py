"""Measurements of the scheduler's costs, returning numbers (the benchmark script prints them).

Method, after pyperf: each measurement is repeated (``repeats`` samples, after one warm-up) and
reported by its median, which resists a noisy, shared machine better than the mean; ratios are
taken between numbers measured in the same process, one after the other. Nothing here asserts a
target: the numbers are for benchmarks (perf-bench wraps these functions), never for tests.

* :func:`measure_switch`: ns per context switch, two coroutines ping-ponging on one vCPU
  (each step is one switch: a yield, the run loop's bookkeeping, and the resumption of the other).
* :func:`measure_asyncio_switch`: the same ping-pong with two asyncio tasks, each yielding to
  the other through asyncio's zero-second sleep (no time passes: it is asyncio's task switch),
  the reference the scheduler is compared against.
* :func:`compare_with_asyncio`: both, interleaved sample by sample; the suite's ratio is the
  median of the per-round ratios.
* :func:`compare_primitives_with_asyncio`: a lock handed between two coroutines, and an item
  through a one-slot channel, beside asyncio.Lock and asyncio.Queue(1), interleaved.
* :func:`measure_steal`: ns for one steal (victim choice plus moving half of a queue).
* :func:`measure_imbalance`: load imbalance (CV of per-vCPU busy time) after a CPU workload.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
from collections.abc import Callable, Generator
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any, Literal

from vmkit.coroutine_scheduler._core._backend import BackendName
from vmkit.coroutine_scheduler._core._scheduler import Scheduler
from vmkit.coroutine_scheduler._core._stats import LoadImbalance
from vmkit.coroutine_scheduler._core._traps import yield_now
from vmkit.coroutine_scheduler._workload import populate

__all__ = [
    "Measurement",
    "compare_primitives_with_asyncio",
    "compare_with_asyncio",
    "measure_asyncio_switch",
    "measure_imbalance",
    "measure_steal",
    "measure_switch",
    "run_suite",
]


@dataclass(frozen=True, slots=True)
class Measurement:
    """Samples of one quantity.

    Attributes:
        name: what was measured.
        unit: unit of the samples (``"ns"``).
        samples: one value per repeat.
    """

    name: str
    unit: str
    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        """The median sample."""
        return statistics.median(self.samples)

    @property
    def minimum(self) -> float:
        """The smallest sample."""
        return min(self.samples)

    @property
    def maximum(self) -> float:
        """The largest sample."""
        return max(self.samples)


def _samples(once: Callable[[], float], repeats: int) -> tuple[float, ...]:
    once()  # warm-up: specialise the bytecode, fill caches
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection in the middle of one sample would dominate it
    try:
        return tuple(once() for _ in range(repeats))
    finally:
        if gc_was_enabled:
            gc.enable()


def _ping(n: int) -> Generator[None, None, None]:
    for _ in range(n):
        yield


async def _aping(n: int) -> None:
    for _ in range(n):
        await yield_now()


def _switch_sampler(
    switches: int, kind: str, statistics_on: bool, backend: BackendName, vcpus: int
) -> Callable[[], float]:
    per = max(1, switches // (2 * vcpus))
    body: Callable[[int], Any] = _ping if kind == "generator" else _aping

    def once() -> float:
        s = Scheduler(vcpus, backend=backend, seed=0, statistics=statistics_on)
        for i in range(2 * vcpus):
            s.spawn(body(per), vcpu=i % vcpus)
        t0 = perf_counter_ns()
        s.run(timeout=600)
        elapsed = perf_counter_ns() - t0
        return elapsed / s.stats().totals.executions

    return once


def _asyncio_sampler(switches: int) -> Callable[[], float]:
    per = max(1, switches // 2)

    async def task() -> None:
        for _ in range(per):
            await asyncio.sleep(0)  # real wait: asyncio's own task switch is what is measured

    async def main() -> float:
        t0 = perf_counter_ns()
        await asyncio.gather(task(), task())
        return (perf_counter_ns() - t0) / (2 * per)

    def once() -> float:
        return asyncio.run(main())

    return once


def _interleaved(samplers: tuple[Callable[[], float], ...], repeats: int) -> list[list[float]]:
    """``repeats`` samples of each sampler, taken in turn (one of each per round, after a
    warm-up round), so that a burst of load from other processes hits them all alike."""
    results: list[list[float]] = [[] for _ in samplers]

    def round_robin() -> float:
        for sampler, out in zip(samplers, results, strict=True):
            out.append(sampler())
        return 0.0

    _samples(round_robin, repeats)
    for out in results:
        del out[0]  # the warm-up round
    return results


def _lock_sampler(handoffs: int) -> Callable[[], float]:
    """ns per lock handoff: two coroutines take turns holding one Lock (one vCPU)."""
    from vmkit.coroutine_scheduler._core._sync import Lock

    per = max(1, handoffs // 2)

    def once() -> float:
        lock = Lock()

        async def contender() -> None:
            for _ in range(per):
                async with lock:
                    await yield_now()  # the other one queues for the lock meanwhile

        s = Scheduler(1, seed=1)
        s.spawn(contender)
        s.spawn(contender)
        t0 = perf_counter_ns()
        s.run()
        return (perf_counter_ns() - t0) / (2 * per)

    return once


def _asyncio_lock_sampler(handoffs: int) -> Callable[[], float]:
    per = max(1, handoffs // 2)

    async def main() -> float:
        lock = asyncio.Lock()

        async def contender() -> None:
            for _ in range(per):
                async with lock:
                    await asyncio.sleep(0)  # real wait: asyncio's own switch is what is measured

        t0 = perf_counter_ns()
        await asyncio.gather(contender(), contender())
        return (perf_counter_ns() - t0) / (2 * per)

    return lambda: asyncio.run(main())


def _channel_sampler(items: int) -> Callable[[], float]:
    """ns per item sent and received through a one-slot channel (one vCPU)."""
    from vmkit.coroutine_scheduler._core._channel import open_channel

    def once() -> float:
        send, receive = open_channel(1)

        async def producer() -> None:
            for i in range(items):
                await send.send(i)
            send.close()

        async def consumer() -> None:
            async for _item in receive:
                pass

        s = Scheduler(1, seed=1)
        s.spawn(producer)
        s.spawn(consumer)
        t0 = perf_counter_ns()
        s.run()
        return (perf_counter_ns() - t0) / items

    return once


def _asyncio_queue_sampler(items: int) -> Callable[[], float]:
    async def main() -> float:
        queue: asyncio.Queue[int | None] = asyncio.Queue(1)

        async def producer() -> None:
            for i in range(items):
                await queue.put(i)
            await queue.put(None)

        async def consumer() -> None:
            while await queue.get() is not None:
                pass

        t0 = perf_counter_ns()
        await asyncio.gather(producer(), consumer())
        return (perf_counter_ns() - t0) / items

    return lambda: asyncio.run(main())


def compare_primitives_with_asyncio(
    *, operations: int = 20_000, repeats: int = 9
) -> tuple[Measurement, Measurement, Measurement, Measurement]:
    """Lock handoff and channel send/receive pair, ours and asyncio's, sampled in turn."""
    results = _interleaved(
        (
            _lock_sampler(operations),
            _asyncio_lock_sampler(operations),
            _channel_sampler(operations),
            _asyncio_queue_sampler(operations),
        ),
        repeats,
    )
    labels = ("lock_handoff", "asyncio.Lock handoff", "channel_pair", "asyncio.Queue(1) pair")
    return tuple(  # type: ignore[return-value]
        Measurement(label, "ns", tuple(out)) for label, out in zip(labels, results, strict=True)
    )


def measure_switch(
    *,
    switches: int = 200_000,
    repeats: int = 7,
    kind: Literal["generator", "async"] = "generator",
    statistics_on: bool = True,
    backend: BackendName = "inline",
    vcpus: int = 1,
) -> Measurement:
    """Samples of ns per context switch: two coroutines per vCPU ping-ponging.

    Args:
        switches: total steps per sample (split over ``2 * vcpus`` coroutines).
        repeats: samples.
        kind: ``"generator"`` (bare ``yield``, the guest-program protocol) or ``"async"``
            (``await yield_now()`` in ``async def``).
        statistics_on: the scheduler's per-step timing.
        backend: ``"inline"`` or ``"threads"``.
        vcpus: vCPUs (each gets two coroutines).
    """
    once = _switch_sampler(switches, kind, statistics_on, backend, vcpus)
    label = f"switch[{backend},{kind},stats={'on' if statistics_on else 'off'},vcpus={vcpus}]"
    return Measurement(label, "ns", _samples(once, repeats))


def measure_asyncio_switch(*, switches: int = 200_000, repeats: int = 7) -> Measurement:
    """Samples of ns per task switch in asyncio: two tasks ping-ponging with ``sleep(0)``."""
    # The label names the reference (asyncio's task switch), it waits for nothing.
    return Measurement(
        "switch[asyncio.sleep(0)]", "ns", _samples(_asyncio_sampler(switches), repeats)
    )


def compare_with_asyncio(
    *, switches: int = 50_000, repeats: int = 15
) -> tuple[Measurement, Measurement, Measurement]:
    """Inline generator switches, inline ``async def`` switches and asyncio's, interleaved.

    The three are sampled in turn (ours, ours async, asyncio, ours, ...), so a burst of load
    from other processes hits all of them alike and their ratio stays meaningful.
    """
    results = _interleaved(
        (
            _switch_sampler(switches, "generator", True, "inline", 1),
            _switch_sampler(switches, "async", True, "inline", 1),
            _asyncio_sampler(switches),
        ),
        repeats,
    )
    return (
        Measurement("switch[inline,generator,stats=on,vcpus=1]", "ns", tuple(results[0])),
        Measurement("switch[inline,async,stats=on,vcpus=1]", "ns", tuple(results[1])),
        Measurement("switch[asyncio.sleep(0)]", "ns", tuple(results[2])),  # a label, no wait
    )


def measure_steal(*, queue_length: int = 128, vcpus: int = 4, repeats: int = 2001) -> Measurement:
    """Samples of ns per steal: an idle vCPU finds the one busy victim and takes half its queue.

    The victim is refilled to ``queue_length`` before every sample, so each steal moves
    ``ceil(queue_length / 2)`` coroutines; the victim order is random, so empty vCPUs are
    visited on the way as in a real run.
    """
    s = Scheduler(vcpus, seed=0, local_queue_size=max(2, queue_length))
    for _ in range(queue_length):
        s.spawn(_ping(1), vcpu=0)
    victim, thief = s.vcpus[0], s.vcpus[1]

    def once() -> float:
        t0 = perf_counter_ns()
        first = s._steal(thief)
        elapsed = perf_counter_ns() - t0
        assert first is not None
        back = [first, *thief._local]
        thief._local.clear()
        victim._local.extend(back)
        return float(elapsed)

    try:
        samples = _samples(once, repeats)
    finally:
        s.close()
    return Measurement(f"steal[queue={queue_length},vcpus={vcpus}]", "ns", samples)


def measure_imbalance(
    *,
    vcpus: int = 4,
    coroutines: int = 64,
    slices: int = 50,
    work: int = 200,
    skew: float = 0.0,
    seed: int = 0,
    backend: BackendName = "inline",
    work_stealing: bool = True,
) -> LoadImbalance:
    """Load imbalance of per-vCPU busy time after a CPU-only workload.

    ``skew`` is the share of coroutines placed on vCPU 0 (0: spread evenly; 1: all on vCPU 0).
    """
    s = Scheduler(vcpus, backend=backend, seed=seed, work_stealing=work_stealing)
    populate(s, coroutines, skew=skew, slices=slices, work=work, pairs=False)
    s.run(timeout=600)
    return s.stats().imbalance


def run_suite(*, quick: bool = False) -> dict[str, float]:
    """Every number of the benchmark script, by name (``quick`` shrinks sizes for smoke runs)."""
    n = 20_000 if quick else 200_000
    reps = 3 if quick else 7
    ours, ours_async, aio = compare_with_asyncio(
        switches=n // 4, repeats=reps if quick else 4 * reps
    )
    steal = measure_steal(repeats=201 if quick else 2001)
    threads1 = measure_switch(switches=n // 4, repeats=reps, backend="threads", vcpus=1)
    threads2 = measure_switch(switches=n // 4, repeats=reps, backend="threads", vcpus=2)
    slices = 10 if quick else 50
    uniform = measure_imbalance(skew=0.0, slices=slices)
    skewed = measure_imbalance(skew=1.0, slices=slices)
    skewed_no_steal = measure_imbalance(skew=1.0, slices=slices, work_stealing=False)
    lock, aio_lock, channel, aio_queue = compare_primitives_with_asyncio(
        operations=n // 10, repeats=reps
    )
    return {
        "lock_handoff_ns": lock.median,
        "asyncio_lock_handoff_ns": aio_lock.median,
        "asyncio_over_lock_handoff": statistics.median(
            a / o for a, o in zip(aio_lock.samples, lock.samples, strict=True)
        ),
        "channel_pair_ns": channel.median,
        "asyncio_queue_pair_ns": aio_queue.median,
        "asyncio_over_channel_pair": statistics.median(
            a / o for a, o in zip(aio_queue.samples, channel.samples, strict=True)
        ),
        "switch_inline_generator_ns": ours.median,
        "switch_inline_async_ns": ours_async.median,
        "switch_asyncio_ns": aio.median,
        "asyncio_over_inline_generator": statistics.median(
            a / o for a, o in zip(aio.samples, ours.samples, strict=True)
        ),
        "asyncio_over_inline_async": statistics.median(
            a / o for a, o in zip(aio.samples, ours_async.samples, strict=True)
        ),
        "steal_batch_ns": steal.median,
        "switch_threads_1vcpu_ns": threads1.median,
        "switch_threads_2vcpu_ns": threads2.median,
        "cv_uniform": uniform.cv,
        "cv_skewed": skewed.cv,
        "cv_skewed_no_stealing": skewed_no_steal.cv,
        "max_over_mean_skewed": skewed.max_over_mean,
    }
