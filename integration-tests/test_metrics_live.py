"""Scraping /metrics while guests run: families present, counters monotonic, totals exact.

A guest runs in a thread while the test scrapes the exporter over HTTP again and again, as
Prometheus would. Every counter must never go down between two scrapes, and once the guest has
ended the exported values must equal the packages' own statistics.
"""

from __future__ import annotations

import contextlib
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SeriesKey, parse_exposition, series, total

from vmkit.async_executor.engine import InterpreterExecutor
from vmkit.async_executor.loader import load_program
from vmkit.async_executor.machine._machine import Machine
from vmkit.async_executor.prometheus import ExecutorCollector, start_metrics_server
from vmkit.async_executor.samples import path as sample_path
from vmkit.coroutine_scheduler import Scheduler
from vmkit.coroutine_scheduler.prometheus import SchedulerCollector

#: Every bound on waiting in this module (seconds); far above the few seconds the runs take.
BOUND = 120.0

EXECUTOR_FAMILIES = {
    "async_executor_guest_instructions",
    "async_executor_block_executions",
    "async_executor_blocks_compiled",
    "async_executor_compile_seconds",
    "async_executor_translation_cache_blocks",
    "async_executor_translation_cache_lookups",
    "async_executor_tlb_lookups",
}
SCHEDULER_FAMILIES = {
    "coroutine_scheduler_context_switches",
    "coroutine_scheduler_steals",
    "coroutine_scheduler_vcpu_busy_seconds",
    "coroutine_scheduler_vcpu_idle_seconds",
    "coroutine_scheduler_vcpu_utilization_ratio",
    "coroutine_scheduler_coroutines",
    "coroutine_scheduler_load_imbalance_ratio",
}


def hybrid_class() -> type[Any]:
    """async-executor's HybridExecutor (public API first, the engine module until exported)."""
    import vmkit.async_executor.engine

    cls = getattr(vmkit.async_executor.engine, "HybridExecutor", None)
    if cls is None:
        from vmkit.async_executor.engine._jit_hybrid import HybridExecutor as cls
    if not hasattr(cls, "coroutine"):
        pytest.skip("async-executor's HybridExecutor has no coroutine() yet")
    return cls


@pytest.fixture
def crc32(tmp_path: Path) -> Iterator[Callable[..., Machine]]:
    """Load the crc32 sample over a given size, its stdout into a file; close all afterwards."""
    with contextlib.ExitStack() as stack:

        def load(size: int, name: str = "crc32") -> Machine:
            out = stack.enter_context((tmp_path / f"{name}.out").open("wb"))
            machine = load_program(
                str(sample_path("crc32")),
                ["crc32", str(size)],
                root=".",
                stdio=(0, out.fileno(), 2),
            )
            stack.callback(machine.linux.close)
            return machine

        yield load


class Scraper:
    """Scrapes a URL and checks every counter against the previous scrape."""

    def __init__(self, url: str, families: set[str]) -> None:
        self.url = url
        self.families = families
        self.previous: dict[SeriesKey, float] = {}
        self.count = 0

    def __call__(self) -> dict[SeriesKey, float]:
        with urllib.request.urlopen(self.url, timeout=BOUND) as reply:
            values, types = parse_exposition(reply.read().decode())
        missing = self.families - set(types)
        assert not missing, f"families missing from the scrape: {sorted(missing)}"
        for key, value in values.items():
            family = key[0].removesuffix("_total")
            if types.get(family) == "counter" and key in self.previous:
                assert value >= self.previous[key], f"counter {key} went down: {value}"
        self.previous = values
        self.count += 1
        return values


@pytest.fixture
def serve() -> Iterator[Callable[..., Scraper]]:
    """Serve the given collectors on a free loopback port; stop the server afterwards."""
    servers = []

    def start(*collectors: Any, families: set[str]) -> Scraper:
        server = start_metrics_server(0, collectors=list(collectors))
        servers.append(server)
        return Scraper(server.url, families)

    yield start
    for server in servers:
        server.stop()


def scrape_until_done(scrape: Scraper, worker: threading.Thread) -> dict[SeriesKey, float]:
    """Scrape while the started ``worker`` runs, then once more after it ended; return that."""
    while worker.is_alive():
        scrape()
        worker.join(0.05)  # scrape about every 50 ms, as a very eager Prometheus would
    worker.join(BOUND)
    assert not worker.is_alive(), f"the guest did not finish within {BOUND} s"
    return scrape()


def started(target: Callable[..., Any], **kwargs: Any) -> threading.Thread:
    """A started daemon thread running ``target(**kwargs)``."""
    thread = threading.Thread(target=target, kwargs=kwargs, daemon=True)
    thread.start()
    return thread


class TestScrapingWhileGuestsRun:
    """The exporter under a running guest."""

    def test_interpreter_guest_in_a_thread(
        self, crc32: Callable[..., Machine], serve: Callable[..., Scraper]
    ) -> None:
        """An interpreted guest: counters monotonic while it runs, equal to its stats after."""
        machine = crc32(30_000)
        executor = InterpreterExecutor(machine)
        scrape = serve(ExecutorCollector([executor], registry=None), families=EXECUTOR_FAMILIES)
        statuses: list[int] = []
        worker = started(lambda: statuses.append(executor.run(machine)))
        final = scrape_until_done(scrape, worker)
        assert statuses == [0]
        assert scrape.count >= 2
        mem = machine.memory
        assert series(final, "async_executor_guest_instructions_total", tier="interp") == (
            executor.stats.instructions
        )
        assert series(final, "async_executor_block_executions_total", tier="interp") == (
            executor.stats.executions
        )
        assert series(final, "async_executor_tlb_lookups_total", result="miss") == mem.tlb_misses
        assert series(final, "async_executor_tlb_lookups_total", result="hit") == (
            mem.tlb_accesses - mem.tlb_misses
        )
        assert series(final, "async_executor_guests", state="ended") == 1

    def test_hybrid_guest_in_slices_is_seen_mid_run(
        self, crc32: Callable[..., Machine], serve: Callable[..., Scraper]
    ) -> None:
        """A hybrid guest driven slice by slice: a scrape mid-run sees part of the final work."""
        hybrid = hybrid_class()
        machine = crc32(60_000)
        executor = hybrid(machine, threshold=20)
        scrape = serve(ExecutorCollector([executor], registry=None), families=EXECUTOR_FAMILIES)
        first_slice, scraped = threading.Event(), threading.Event()
        statuses: list[int] = []

        def drive() -> None:
            steps = executor.coroutine(machine, slice_instructions=50_000)
            next(steps)
            first_slice.set()
            scraped.wait(BOUND)  # the guest is paused mid-run while the test scrapes
            try:
                while True:
                    next(steps)
            except StopIteration as done:
                statuses.append(done.value)

        worker = started(drive)
        assert first_slice.wait(BOUND)
        middle = scrape()
        scraped.set()
        final = scrape_until_done(scrape, worker)
        assert statuses == [0]
        assert series(middle, "async_executor_guests", state="running") == 1
        mid_instructions = total(middle, "async_executor_guest_instructions_total")
        end_instructions = total(final, "async_executor_guest_instructions_total")
        assert 0 < mid_instructions < end_instructions
        assert end_instructions == executor.stats.instructions
        for tier, stats in executor.tier_stats.items():
            assert series(final, "async_executor_guest_instructions_total", tier=tier) == (
                stats.instructions
            )
        ctx = executor.context.stats()
        assert series(final, "async_executor_blocks_compiled_total") == ctx.compilations > 0
        assert series(final, "async_executor_translation_cache_lookups_total", result="hit") == (
            ctx.hits
        )

    def test_guests_on_the_scheduler_scraped_together(
        self, crc32: Callable[..., Machine], serve: Callable[..., Scraper]
    ) -> None:
        """Four guests on two vCPUs, one exporter for both packages: exact totals at the end."""
        hybrid = hybrid_class()
        machines = [crc32(8_000 + 2_000 * i, f"crc32-{i}") for i in range(4)]
        executors = [hybrid(m, threshold=20) for m in machines]
        scheduler = Scheduler(2, seed=3, quantum=4)
        scrape = serve(
            ExecutorCollector(executors, registry=None),
            SchedulerCollector(scheduler, registry=None),
            families=EXECUTOR_FAMILIES | SCHEDULER_FAMILIES,
        )
        guests = [
            scheduler.spawn(e.coroutine(m, slice_instructions=20_000), name=f"crc32-{i}", vcpu=0)
            for i, (e, m) in enumerate(zip(executors, machines, strict=True))
        ]
        final = scrape_until_done(scrape, started(scheduler.run, timeout=BOUND))
        assert [g.result for g in guests] == [0, 0, 0, 0]
        stats = scheduler.stats()
        assert total(final, "async_executor_guest_instructions_total") == sum(
            e.stats.instructions for e in executors
        )
        for v in stats.vcpus:
            key = {"scheduler": "0", "vcpu": str(v.vcpu)}
            assert series(final, "coroutine_scheduler_context_switches_total", **key) == (
                v.context_switches
            )
            assert series(final, "coroutine_scheduler_steals_total", **key) == v.steals_in
            assert series(final, "coroutine_scheduler_vcpu_busy_seconds_total", **key) == (
                pytest.approx(v.busy_ns / 1e9)
            )
        assert series(final, "coroutine_scheduler_coroutines", scheduler="0", state="dead") == 4
        assert series(final, "async_executor_guests", state="ended") == 4
