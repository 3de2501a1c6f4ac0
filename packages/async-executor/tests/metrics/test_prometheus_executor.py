"""async_executor.prometheus: the collector reads the executors' own counters at scrape time."""

from __future__ import annotations

import builtins
import json
import logging
import pathlib
import socket
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from vmkit.async_executor import cli, prometheus
from vmkit.async_executor.cli import main
from vmkit.async_executor.engine import InterpreterExecutor
from vmkit.async_executor.engine._context import AsyncExecutionContext
from vmkit.async_executor.engine._jit import JitExecutor
from vmkit.async_executor.engine._jit_hybrid import HybridExecutor
from vmkit.async_executor.loader import load_program
from vmkit.async_executor.machine import AddressSpace
from vmkit.async_executor.machine._machine import Machine
from vmkit.async_executor.prometheus import ExecutorCollector, start_metrics_server
from vmkit.async_executor.samples import path as sample_path

FAMILIES = (
    "async_executor_guest_instructions",
    "async_executor_block_executions",
    "async_executor_run_seconds",
    "async_executor_blocks_compiled",
    "async_executor_compile_seconds",
    "async_executor_translation_cache_blocks",
    "async_executor_translation_cache_lookups",
    "async_executor_tlb_lookups",
    "async_executor_syscalls",
    "async_executor_guests",
    "async_executor_guest_limit_refusals",
    "async_executor_guest_disk_bytes",
    "async_executor_guest_mapped_bytes",
)


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """main() configures logging for the process; undo it so other tests see the defaults."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the registry's exposition, parsed back: (name, labels) -> value."""
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def family_names(registry: CollectorRegistry) -> set[str]:
    """Names of the families in the registry's exposition."""
    return {f.name for f in text_string_to_metric_families(generate_latest(registry).decode())}


def crc32_machine() -> Machine:
    """The bundled crc32 guest on a small buffer, ready to run."""
    return load_program(str(sample_path("crc32")), ["crc32", "2000"], root=".")


def sample(values: dict[Any, float], name: str, **labels: str) -> float:
    """The value of one series."""
    return values[(name, tuple(sorted(labels.items())))]


class TestExecutorCollector:
    """The families and their values."""

    def test_interpreter_run_is_reported_as_the_executor_counts_it(
        self, capfd: pytest.CaptureFixture[str]
    ) -> None:
        """After an interpreted run, instructions, blocks, TLB and syscalls equal the sources."""
        machine = crc32_machine()
        executor = InterpreterExecutor(machine)
        registry = CollectorRegistry()
        ExecutorCollector([executor], registry=registry)
        assert executor.run(machine) == 0
        assert "crc32" in capfd.readouterr().out
        values = scrape(registry)
        assert set(FAMILIES) <= family_names(registry)
        mem = machine.memory
        assert executor.stats.instructions > 0
        assert sample(values, "async_executor_guest_instructions_total", tier="interp") == (
            executor.stats.instructions
        )
        assert sample(values, "async_executor_block_executions_total", tier="interp") == (
            executor.stats.executions
        )
        assert sample(values, "async_executor_run_seconds_total") == pytest.approx(
            executor.stats.wall_time
        )
        assert sample(values, "async_executor_tlb_lookups_total", result="miss") == mem.tlb_misses
        assert sample(values, "async_executor_tlb_lookups_total", result="hit") == (
            mem.tlb_accesses - mem.tlb_misses
        )
        syscalls = sum(
            v for (name, _), v in values.items() if name == "async_executor_syscalls_total"
        )
        assert syscalls == sum(machine.linux.syscall_counts.values())
        assert sample(values, "async_executor_guests", state="ended") == 1
        assert sample(values, "async_executor_blocks_compiled_total") == 0
        assert ("async_executor_guest_instructions_total", (("tier", "jit"),)) not in values

    def test_hybrid_reports_each_tier_and_its_context(
        self, capfd: pytest.CaptureFixture[str]
    ) -> None:
        """A hybrid run is split by tier as its tier_stats say; cache figures match the context."""
        machine = crc32_machine()
        executor = HybridExecutor(machine, threshold=10)
        registry = CollectorRegistry()
        ExecutorCollector([executor], registry=registry)
        assert executor.run(machine) == 0
        capfd.readouterr()
        values = scrape(registry)
        ctx = executor.context.stats()
        for tier in ("interp", "jit"):
            assert sample(values, "async_executor_guest_instructions_total", tier=tier) == (
                executor.tier_stats[tier].instructions
            )
            assert sample(values, "async_executor_block_executions_total", tier=tier) == (
                executor.tier_stats[tier].executions
            )
        instructions = sum(
            sample(values, "async_executor_guest_instructions_total", tier=t)
            for t in ("interp", "jit")
        )
        assert instructions == executor.stats.instructions
        assert ctx.compilations > 0
        assert sample(values, "async_executor_blocks_compiled_total") == ctx.compilations
        assert sample(values, "async_executor_compile_seconds_total") == pytest.approx(
            ctx.compile_time
        )
        assert sample(values, "async_executor_translation_cache_blocks") == ctx.cached_blocks
        assert sample(values, "async_executor_translation_cache_lookups_total", result="hit") == (
            ctx.hits
        )
        assert sample(values, "async_executor_translation_cache_lookups_total", result="miss") == (
            ctx.misses
        )

    def test_hybrid_native_tier_reports_three_tiers_and_the_native_counters(
        self, capfd: pytest.CaptureFixture[str]
    ) -> None:
        """The hybrid with its native tier: interp, jit and native tiers summing to the
        executor's count, and the native families equal to the tier's NativeStats."""
        pytest.importorskip("llvmlite", reason="the native tier needs the [native] extra")
        from vmkit.async_executor.engine import HybridExecutor

        machine = crc32_machine()
        executor = HybridExecutor(
            machine, threshold=2, native=True, native_threshold=1, native_warmup=0
        )
        assert executor.native_tier is not None
        executor.native_tier.period = 1000
        registry = CollectorRegistry()
        ExecutorCollector([executor], registry=registry)
        assert executor.run(machine) == 0
        capfd.readouterr()
        values = scrape(registry)
        native = executor.native_stats
        assert native is not None
        assert native.instructions > 0
        tiers = {
            tier: sample(values, "async_executor_guest_instructions_total", tier=tier)
            for tier in ("interp", "jit", "native")
        }
        assert tiers["native"] == native.instructions
        assert sum(tiers.values()) == executor.stats.instructions
        assert sample(values, "async_executor_native_regions_compiled_total") == native.regions
        exits = {
            dict(labels)["reason"]: v
            for (name, labels), v in values.items()
            if name == "async_executor_native_exits_total"
        }
        assert exits == native.exits

    def test_native_executor_reports_its_tier_and_its_own_counters(
        self, capfd: pytest.CaptureFixture[str]
    ) -> None:
        """A native run is split into the interp and native tiers (summing to the executor's
        count), and the native families equal NativeStats."""
        pytest.importorskip("llvmlite", reason="the native tier needs the [native] extra")
        from vmkit.async_executor.engine.native import NativeExecutor

        machine = crc32_machine()
        executor = NativeExecutor(machine, threshold=4)
        registry = CollectorRegistry()
        ExecutorCollector([executor], registry=registry)
        assert executor.run(machine) == 0
        capfd.readouterr()
        values = scrape(registry)
        native = executor.native_stats
        assert native.regions > 0
        assert native.instructions > 0
        interp = sample(values, "async_executor_guest_instructions_total", tier="interp")
        in_native = sample(values, "async_executor_guest_instructions_total", tier="native")
        assert in_native == native.instructions
        assert interp + in_native == executor.stats.instructions
        assert sample(values, "async_executor_block_executions_total", tier="native") == (
            native.calls
        )
        assert sample(values, "async_executor_native_regions_compiled_total") == native.regions
        assert sample(values, "async_executor_native_compile_seconds_total") == pytest.approx(
            native.compile_seconds
        )
        exits = {
            dict(labels)["reason"]: v
            for (name, labels), v in values.items()
            if name == "async_executor_native_exits_total"
        }
        assert exits == native.exits
        assert sample(values, "async_executor_native_regions_declined_total", why="refused") == (
            native.refused
        )

    def test_native_cache_families(
        self, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path
    ) -> None:
        """A second run with the same native code cache: regions cached, compile time saved."""
        pytest.importorskip("llvmlite", reason="the native tier needs the [native] extra")
        from vmkit.async_executor.engine.native import NativeCodeCache, NativeExecutor

        for _ in range(2):
            machine = crc32_machine()
            executor = NativeExecutor(machine, threshold=4, cache=NativeCodeCache(tmp_path))
            registry = CollectorRegistry()
            ExecutorCollector([executor], registry=registry)
            assert executor.run(machine) == 0
        capfd.readouterr()
        values = scrape(registry)
        native = executor.native_stats
        assert native.cached > 0
        assert native.regions == 0
        assert sample(values, "async_executor_native_regions_cached_total") == native.cached
        assert sample(values, "async_executor_native_regions_compiled_total") == 0
        assert sample(values, "async_executor_native_compile_seconds_saved_total") == (
            pytest.approx(native.compile_seconds_saved)
        )
        assert native.compile_seconds_saved > 0

    def test_jit_executor_is_the_jit_tier_and_shared_context_counted_once(
        self, capfd: pytest.CaptureFixture[str]
    ) -> None:
        """Two JIT executors sharing one context: tier jit, and the context is not doubled."""
        context = AsyncExecutionContext()
        machines = [crc32_machine(), crc32_machine()]
        executors = [JitExecutor(m, context) for m in machines]
        registry = CollectorRegistry()
        ExecutorCollector(executors, contexts=[context], registry=registry)
        for executor, machine in zip(executors, machines, strict=True):
            assert executor.run(machine) == 0
        capfd.readouterr()
        values = scrape(registry)
        assert sample(values, "async_executor_guest_instructions_total", tier="jit") == sum(
            e.stats.instructions for e in executors
        )
        assert sample(values, "async_executor_blocks_compiled_total") == (
            context.stats().compilations
        )
        assert sample(values, "async_executor_guests", state="ended") == 2

    def test_nothing_watched_exports_zeros_and_no_tiers(self) -> None:
        """With nothing to watch, unlabelled counters are 0 and no tier is invented."""
        registry = CollectorRegistry()
        ExecutorCollector(registry=registry)
        values = scrape(registry)
        assert sample(values, "async_executor_blocks_compiled_total") == 0
        assert not any(name == "async_executor_guest_instructions_total" for name, _ in values)

    def test_tlb_hits_never_go_down_mid_block(self) -> None:
        """A walk counted before its access does not make the derived hit counter decrease."""
        machine = Machine(memory=AddressSpace())
        registry = CollectorRegistry()
        ExecutorCollector(machines=[machine], registry=registry)
        mem = machine.memory
        mem.tlb_accesses, mem.tlb_misses = 100, 10
        assert sample(scrape(registry), "async_executor_tlb_lookups_total", result="hit") == 90
        mem.tlb_misses = 30  # walks of a block whose accesses are not added yet
        assert sample(scrape(registry), "async_executor_tlb_lookups_total", result="hit") == 90
        mem.tlb_accesses = 150  # the block ends: exact again
        assert sample(scrape(registry), "async_executor_tlb_lookups_total", result="hit") == 120

    def test_forget_removes_an_executor_from_the_totals(
        self, capfd: pytest.CaptureFixture[str]
    ) -> None:
        """After forget(), an executor's counts leave the exported totals."""
        machine = crc32_machine()
        executor = InterpreterExecutor(machine)
        registry = CollectorRegistry()
        collector = ExecutorCollector([executor], registry=registry)
        executor.run(machine)
        capfd.readouterr()
        collector.forget(executor)
        values = scrape(registry)
        assert not any(name == "async_executor_guest_instructions_total" for name, _ in values)


class TestRegistration:
    """Where a collector registers."""

    def test_registry_none_registers_nowhere(self) -> None:
        """registry=None leaves the global registry untouched."""
        before = set(REGISTRY._collector_to_names)
        ExecutorCollector(registry=None)
        assert set(REGISTRY._collector_to_names) == before

    def test_default_is_the_global_registry(self) -> None:
        """Without registry=, the collector joins prometheus_client's global registry."""
        collector = ExecutorCollector()
        try:
            assert "async_executor_guest_instructions" in family_names(REGISTRY)
        finally:
            REGISTRY.unregister(collector)

    def test_two_collectors_in_one_registry_collide(self) -> None:
        """describe() names the families, so a second collector in the same registry is refused."""
        registry = CollectorRegistry()
        ExecutorCollector(registry=registry)
        with pytest.raises(ValueError, match="Duplicated timeseries"):
            ExecutorCollector(registry=registry)


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
        with pytest.raises(
            prometheus.MetricsUnavailableError, match=r"async-executor\[prometheus\]"
        ):
            ExecutorCollector(registry=None)
        with pytest.raises(prometheus.MetricsUnavailableError, match="pip install"):
            start_metrics_server(0)


class TestMetricsServer:
    """start_metrics_server serves /metrics until stopped."""

    def test_serves_the_collectors_then_stops(self) -> None:
        """The page parses and holds the families; after stop() the port refuses connections."""
        collector = ExecutorCollector(registry=None)
        server = start_metrics_server(0, collectors=[collector])
        try:
            assert server.addr == "127.0.0.1"
            assert server.url == f"http://127.0.0.1:{server.port}/metrics"
            with urllib.request.urlopen(server.url, timeout=10) as reply:
                text = reply.read().decode()
            names = {f.name for f in text_string_to_metric_families(text)}
            assert set(FAMILIES) <= names
        finally:
            server.stop()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", server.port), timeout=2).close()
        server.stop()  # idempotent

    def test_port_in_use_is_one_clear_error(self) -> None:
        """Binding a busy port raises OSError naming the address and the reason."""
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            with pytest.raises(OSError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
                start_metrics_server(port)

    def test_registry_and_collectors_together_are_refused(self) -> None:
        """Giving both a registry and collectors is a usage error."""
        with pytest.raises(ValueError, match="not both"):
            start_metrics_server(0, registry=CollectorRegistry(), collectors=[object()])


class TestRunMetricsOption:
    """``async-executor run --metrics-port``."""

    def test_guest_runs_unchanged_while_metrics_are_served(
        self, capfd: pytest.CaptureFixture[str]
    ) -> None:
        """The guest's output and status are the same; stderr names the metrics URL."""
        hello = str(sample_path("hello"))
        status = main(["run", "--metrics-port", "0", hello])
        out, err = capfd.readouterr()
        assert status == 0
        assert "Hello, RISC-V!" in out
        assert "serving metrics on http://127.0.0.1:" in err

    @pytest.mark.parametrize("budget", [None, 100_000])
    def test_sliced_engine_gives_the_same_result(
        self, budget: int | None, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An engine with coroutine() runs in slices under --metrics-port: identical results."""
        monkeypatch.setitem(cli.ENGINES, "hybrid", HybridExecutor)
        monkeypatch.setattr(cli, "_METRICS_SLICE", 10_000)  # many slices, and one cut by the budget
        argv = ["run", "--engine", "hybrid", "--stats", "--stats-format", "json"]
        if budget is not None:
            argv += ["--max-instructions", str(budget)]
        crc = [str(sample_path("crc32")), "5000"]
        plain = main([*argv, *crc]), *capfd.readouterr()
        served = main([*argv, "--metrics-port", "0", *crc]), *capfd.readouterr()
        assert served[0] == plain[0] == (0 if budget is None else 124)
        assert served[1] == plain[1]
        stats = [json.loads(out[2].strip().splitlines()[-1]) for out in (plain, served)]
        assert stats[0]["instructions"] == stats[1]["instructions"]
        assert stats[0]["exit_status"] == stats[1]["exit_status"]

    def test_busy_port_is_one_line_and_status_69(self, capfd: pytest.CaptureFixture[str]) -> None:
        """A port that cannot be bound is reported in one line; the guest does not run."""
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            status = main(["run", "--metrics-port", str(port), str(sample_path("hello"))])
        out, err = capfd.readouterr()
        assert status == 69
        assert out == ""
        assert err.strip() == f"async-executor: cannot serve metrics on 127.0.0.1:{port}: " + (
            "Address already in use"
        )

    def test_port_out_of_range_is_a_usage_error(self, capfd: pytest.CaptureFixture[str]) -> None:
        """--metrics-port 70000 is refused by the argument parser."""
        with pytest.raises(SystemExit) as exit_info:
            main(["run", "--metrics-port", "70000", str(sample_path("hello"))])
        assert exit_info.value.code == 2
        assert "TCP port" in capfd.readouterr().err


class TestLimitFamilies:
    def test_refusals_disk_and_memory_are_exported(self, tmp_path: pathlib.Path) -> None:
        """A guest refused by its limits shows in the limit families of a scrape."""
        from vmkit.async_executor.limits import GuestLimits
        from vmkit.async_executor.linux import Linux
        from vmkit.async_executor.machine import PERM_R, PERM_W, AddressSpace, Hart
        from vmkit.async_executor.machine._machine import Machine

        limits = GuestLimits(open_files=4, open_files_hard=4)
        memory = AddressSpace(limits)
        memory.map(0x10000, 0x2000, PERM_R | PERM_W)
        linux = Linux(tmp_path, limits=limits)
        machine = Machine(memory, Hart(), linux)
        x = machine.hart.x
        for _ in range(3):  # pipe2: the first fills the table, the rest are refused
            x[17], x[10], x[11] = 59, 0x10000, 0
            machine.syscall()
        registry = CollectorRegistry()
        ExecutorCollector([], machines=[machine], registry=registry)
        samples = scrape(registry)
        assert samples[("async_executor_guest_limit_refusals_total", (("limit", "files"),))] >= 2
        assert samples[("async_executor_guest_mapped_bytes", ())] == 0x2000
        assert samples[("async_executor_guest_disk_bytes", ())] == 0
        linux.close()
