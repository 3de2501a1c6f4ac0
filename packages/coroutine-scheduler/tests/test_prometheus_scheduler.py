"""vmkit.coroutine_scheduler.prometheus: the collector reads Scheduler.stats() at scrape time."""

from __future__ import annotations

import builtins
import socket
import sys
import urllib.request
from collections.abc import Generator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from vmkit.coroutine_scheduler import Scheduler, notify, wait
from vmkit.coroutine_scheduler.cli import main
from vmkit.coroutine_scheduler.prometheus import (
    MetricsUnavailableError,
    SchedulerCollector,
    start_metrics_server,
)

Values = dict[tuple[str, tuple[tuple[str, str], ...]], float]

PER_VCPU = (
    "coroutine_scheduler_context_switches_total",
    "coroutine_scheduler_steals_total",
    "coroutine_scheduler_vcpu_busy_seconds_total",
    "coroutine_scheduler_vcpu_idle_seconds_total",
    "coroutine_scheduler_vcpu_utilization_ratio",
)


def scrape(registry: CollectorRegistry) -> Values:
    """Every sample of the registry's exposition, parsed back: (name, labels) -> value."""
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(values: Values, name: str, **labels: str) -> float:
    """The value of one series."""
    return values[(name, tuple(sorted(labels.items())))]


def spin(n: int) -> Generator[None, None, int]:
    """A coroutine of n preemption points."""
    for _ in range(n):
        yield
    return n


def skewed_run() -> Scheduler:
    """Forty coroutines all placed on vCPU 0 of four, run to the end (stealing balances them)."""
    scheduler = Scheduler(4, seed=7)
    for _ in range(40):
        scheduler.spawn(spin, 60, vcpu=0)
    return scheduler


class TestSchedulerCollector:
    """The families and their values."""

    def test_values_equal_the_schedulers_own_statistics(self) -> None:
        """After a skewed run every per-vCPU series equals the stats() snapshot, in seconds."""
        scheduler = skewed_run()
        registry = CollectorRegistry()
        SchedulerCollector(scheduler, registry=registry)
        scheduler.run(timeout=30)
        stats = scheduler.stats()
        values = scrape(registry)
        for v in stats.vcpus:
            key = {"scheduler": "0", "vcpu": str(v.vcpu)}
            assert sample(values, "coroutine_scheduler_context_switches_total", **key) == (
                v.context_switches
            )
            assert sample(values, "coroutine_scheduler_steals_total", **key) == v.steals_in
            assert sample(values, "coroutine_scheduler_stolen_total", **key) == v.steals_out
            assert sample(values, "coroutine_scheduler_executions_total", **key) == v.executions
            assert sample(values, "coroutine_scheduler_vcpu_busy_seconds_total", **key) == (
                pytest.approx(v.busy_ns / 1e9)
            )
            assert sample(values, "coroutine_scheduler_vcpu_idle_seconds_total", **key) == (
                pytest.approx(v.idle_ns / 1e9)
            )
            assert sample(values, "coroutine_scheduler_vcpu_utilization_ratio", **key) == (
                pytest.approx(v.utilization)
            )
        assert stats.totals.steals_in > 0
        assert sample(values, "coroutine_scheduler_load_imbalance_ratio", scheduler="0") == (
            pytest.approx(stats.imbalance.cv)
        )
        assert sample(values, "coroutine_scheduler_coroutines", scheduler="0", state="dead") == 40
        assert sample(values, "coroutine_scheduler_coroutines_spawned_total", scheduler="0") == 40
        assert sample(
            values, "coroutine_scheduler_coroutines_ended_total", scheduler="0", outcome="returned"
        ) == (40)
        for state in ("created", "ready", "running", "waiting"):
            assert sample(values, "coroutine_scheduler_coroutines", scheduler="0", state=state) == 0
        assert sample(values, "coroutine_scheduler_vcpus", scheduler="0", backend="inline") == 4

    def test_states_seen_from_inside_a_running_coroutine(self) -> None:
        """A scrape during the run counts the scraper running, a waiter waiting, the rest ready."""
        scheduler = Scheduler(1, seed=1)
        registry = CollectorRegistry()
        SchedulerCollector(scheduler, registry=registry)
        seen: list[Values] = []

        async def waiter() -> None:
            await wait("key")

        async def observer() -> None:
            seen.append(scrape(registry))
            await notify("key")

        scheduler.spawn(waiter)
        scheduler.spawn(observer)
        scheduler.spawn(spin, 3)
        scheduler.run(timeout=30)
        (during,) = seen
        counts = {
            state: sample(during, "coroutine_scheduler_coroutines", scheduler="0", state=state)
            for state in ("created", "ready", "running", "waiting", "dead")
        }
        assert counts == {"created": 0, "ready": 1, "running": 1, "waiting": 1, "dead": 0}
        after = scrape(registry)
        assert sample(after, "coroutine_scheduler_coroutines", scheduler="0", state="dead") == 3

    def test_several_schedulers_are_labelled_apart(self) -> None:
        """A mapping names each scheduler in the scheduler label; names must be unique."""
        first, second = Scheduler(2, seed=1), Scheduler(3, seed=2)
        registry = CollectorRegistry()
        collector = SchedulerCollector({"web": first, "batch": second}, registry=registry)
        values = scrape(registry)
        vcpus = {
            labels: v for (name, labels), v in values.items() if name == PER_VCPU[0]
        }  # one series per (scheduler, vcpu)
        assert len(vcpus) == 5
        assert sample(values, "coroutine_scheduler_vcpus", scheduler="batch", backend="inline") == 3
        with pytest.raises(ValueError, match="already watched"):
            collector.watch(Scheduler(1), name="web")
        collector.forget(first)
        assert len([k for k in scrape(registry) if k[0] == PER_VCPU[0]]) == 3

    def test_only_schedulers_are_watched(self) -> None:
        """Watching something that is not a Scheduler is a TypeError naming its type."""
        with pytest.raises(TypeError, match="got list"):
            SchedulerCollector([[]], registry=None)  # type: ignore[list-item]

    def test_empty_collector_exports_families_without_series(self) -> None:
        """With nothing watched the families exist (HELP/TYPE) and hold no samples."""
        registry = CollectorRegistry()
        SchedulerCollector([], registry=registry)
        text = generate_latest(registry).decode()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        for name in PER_VCPU:
            base = name.removesuffix("_total")
            assert base in families
            assert families[base].samples == []


class TestMissingExtra:
    """Without prometheus-client installed."""

    def test_asking_for_metrics_names_the_extra(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The collector and the server raise MetricsUnavailableError naming the extra."""
        real_import = builtins.__import__

        def no_client(name: str, *args: Any, **kwargs: Any) -> Any:
            if name.startswith("prometheus_client"):
                raise ImportError(f"No module named {name!r}")
            return real_import(name, *args, **kwargs)

        monkeypatch.setattr(builtins, "__import__", no_client)
        for module in [m for m in sys.modules if m.startswith("prometheus_client")]:
            monkeypatch.delitem(sys.modules, module)
        with pytest.raises(MetricsUnavailableError, match=r"coroutine-scheduler\[prometheus\]"):
            SchedulerCollector(Scheduler(1), registry=None)
        with pytest.raises(MetricsUnavailableError, match="pip install"):
            start_metrics_server(0)


class TestServing:
    """start_metrics_server and ``demo --metrics-port``."""

    def test_server_serves_the_collector(self) -> None:
        """/metrics parses and holds the per-vCPU families of the watched scheduler."""
        collector = SchedulerCollector(Scheduler(2, seed=1), registry=None)
        with (
            start_metrics_server(0, collectors=[collector]) as server,
            urllib.request.urlopen(server.url, timeout=10) as reply,
        ):
            text = reply.read().decode()
        names = {s.name for f in text_string_to_metric_families(text) for s in f.samples}
        assert set(PER_VCPU) <= names

    def test_demo_serves_metrics_while_it_runs(self, capsys: pytest.CaptureFixture[str]) -> None:
        """The demo's table is unchanged and stderr names the metrics URL."""
        status = main(["demo", "--coroutines", "8", "--slices", "3", "--metrics-port", "0"])
        out, err = capsys.readouterr()
        assert status == 0
        assert "total" in out
        assert "serving metrics on http://127.0.0.1:" in err

    def test_demo_with_a_busy_port_fails_in_one_line(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A port that cannot be bound gives one line on stderr and status 69."""
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            status = main(["demo", "--coroutines", "4", "--metrics-port", str(port)])
        err = capsys.readouterr().err
        assert status == 69
        assert err.strip().splitlines() == [
            f"coroutine-scheduler demo: cannot serve metrics on 127.0.0.1:{port}: "
            "Address already in use"
        ]


class TestPrimitives:
    """watch_primitive: a lock's and a channel's waiters and totals, read mid-run."""

    def test_waiters_parked_waits_and_channel_items_mid_run_and_after(self) -> None:
        from vmkit.coroutine_scheduler import Event, Lock, open_channel, yield_now

        lock, gate = Lock(), Event()
        send, receive = open_channel(2)
        registry = CollectorRegistry()
        s = Scheduler(1, seed=1)
        collector = SchedulerCollector({"main": s}, registry=registry)
        collector.watch_primitive(lock, name="db")
        collector.watch_primitive(send, name="jobs")
        seen: list[Values] = []

        async def holder() -> None:
            async with lock:
                await gate.wait()  # the others queue for the lock meanwhile

        async def contender() -> None:
            async with lock:
                pass

        async def producer() -> None:
            for i in range(3):  # the third waits: the buffer holds two
                await send.send(i)

        async def probe() -> None:
            for _ in range(5):
                await yield_now()  # everybody else has parked by now
            seen.append(scrape(registry))
            gate.set()
            async for _ in receive:
                if not send.statistics()["senders_waiting"]:
                    break

        s.spawn(holder)
        for _ in range(3):
            s.spawn(contender)
        s.spawn(producer)
        s.spawn(probe)
        s.run(timeout=10)
        during, after = seen[0], scrape(registry)
        waiters = "coroutine_scheduler_primitive_waiters"
        assert sample(during, waiters, primitive="db", kind="lock", side="wait") == 3
        assert sample(after, waiters, primitive="db", kind="lock", side="wait") == 0
        parked = "coroutine_scheduler_primitive_parked_total"
        assert sample(after, parked, primitive="db", kind="lock") == 3
        assert sample(during, waiters, primitive="jobs", kind="channel", side="send") == 1
        assert sample(during, "coroutine_scheduler_channel_buffered_items", primitive="jobs") == 2
        sent = sample(
            after, "coroutine_scheduler_channel_items_total", primitive="jobs", direction="sent"
        )
        assert sent == 3

    def test_only_primitives_and_unique_names(self) -> None:
        from vmkit.coroutine_scheduler import Lock

        collector = SchedulerCollector([], registry=None)
        collector.watch_primitive(Lock(), name="a")
        with pytest.raises(ValueError, match="already watched"):
            collector.watch_primitive(Lock(), name="a")
        with pytest.raises(TypeError, match="Lock, Semaphore"):
            collector.watch_primitive(object(), name="b")  # type: ignore[arg-type]
