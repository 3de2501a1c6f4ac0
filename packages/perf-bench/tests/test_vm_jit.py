"""Tests of JitBenchmark, CrossArchBenchmark and AotBenchmark on the engines as they exist."""

from __future__ import annotations

import dataclasses
import dis

import pytest

from vmkit.perf_bench import RunContext
from vmkit.perf_bench.suites._vm_aot import AotBenchmark
from vmkit.perf_bench.suites._vm_crossarch import CrossArchBenchmark, bytecode_count, census
from vmkit.perf_bench.suites._vm_engines import (
    DISABLE_JIT_ENV,
    jit_classes,
    jit_unavailable_reason,
)
from vmkit.perf_bench.suites._vm_jit import (
    JitBenchmark,
    JitRuns,
    check_agreement,
    time_cache_lookup,
)
from vmkit.perf_bench.suites._vm_workloads import GuestCheckError


@pytest.fixture
def jit_on(monkeypatch):
    """The JIT switch off; skip when this async-executor has no working JIT (with the reason)."""
    monkeypatch.delenv(DISABLE_JIT_ENV, raising=False)
    reason = jit_unavailable_reason()
    if reason is not None:
        pytest.skip(f"JIT unavailable: {reason}")


@pytest.fixture(scope="module")
def jit_runs():
    """One value's three checked runs (interpreter, cold JIT, warm JIT), shared by the tests."""
    if jit_unavailable_reason() is not None:
        pytest.skip(f"JIT unavailable: {jit_unavailable_reason()}")
    return JitBenchmark().runs(quick=True, clock=__import__("time").perf_counter_ns)


class TestJitBenchmark:
    """Figures from the execution context's statistics, cross-checked between engines."""

    def test_counts_agree_between_engines_and_context(self, jit_runs):
        """Interpreter and JIT retire the same instructions; the context counts what harts do."""
        runs = jit_runs
        assert runs.interp.instructions == runs.cold.instructions == runs.warm.instructions
        assert runs.cold_stats.instructions == runs.cold.executor.stats.instructions
        assert runs.warm_stats.instructions - runs.cold_stats.instructions == (
            runs.warm.machine.hart.instret
        )

    def test_warm_run_translates_nothing_new(self, jit_runs):
        """The warm run shares the cold run's code: every block it needs is already there."""
        runs = jit_runs
        assert runs.warm_stats.compilations == runs.cold_stats.compilations
        assert runs.warm_stats.misses == runs.cold_stats.misses

    def test_disagreement_is_refused(self, jit_runs):
        """A JIT that retired a different number of instructions fails the benchmark."""
        broken = dataclasses.replace(
            jit_runs, warm=dataclasses.replace(jit_runs.warm, instructions=1)
        )
        with pytest.raises(GuestCheckError, match="instructions"):
            check_agreement(broken)

    def test_reports_metrics_from_the_context(self, jit_on):
        """Metric names, and the ratios computed from the same value's MIPS."""
        metrics = JitBenchmark().run(RunContext(quick=True))
        by = {m.name: m for m in metrics}
        assert list(by) == [
            "translate_compile_per_block",
            "blocks_compiled",
            "cache_hit_rate",
            "cache_hit_overhead",
            "interp_mips",
            "jit_mips",
            "jit_cold_mips",
            "jit_speedup",
            "jit_cold_speedup",
        ]
        assert by["jit_speedup"].value == pytest.approx(
            by["jit_mips"].value / by["interp_mips"].value
        )
        assert by["translate_compile_per_block"].unit == "us"
        assert by["translate_compile_per_block"].operations == by["blocks_compiled"].value
        assert 0 < by["cache_hit_rate"].value < 100  # a cold run misses once per block

    def test_disabled_jit_measures_the_interpreter_and_says_so(self, monkeypatch):
        """With the switch, no translation metric is reported and the description says why."""
        monkeypatch.setenv(DISABLE_JIT_ENV, "1")
        bench = JitBenchmark()
        assert bench.available() is None
        assert "JIT DISABLED" in bench.description
        runs = bench.runs(quick=True, clock=__import__("time").perf_counter_ns)
        assert isinstance(runs, JitRuns)
        assert runs.context is None
        assert "interpreter" in runs.warm.engine
        names = [m.name for m in bench.run(RunContext(quick=True))]
        assert names == [
            "interp_mips",
            "jit_mips",
            "jit_cold_mips",
            "jit_speedup",
            "jit_cold_speedup",
        ]

    def test_cache_lookup_times_real_hits(self):
        """The lookup loop does ten gets per cached address; an empty cache is refused."""
        calls = []

        class Blocks(dict):
            def get(self, key, default=None):
                calls.append(key)
                return super().get(key, default)

        assert time_cache_lookup(Blocks({4: 1, 8: 2}), 40, lambda: 0) == 0
        assert len(calls) == 40
        with pytest.raises(ValueError, match="empty"):
            time_cache_lookup({}, 10, lambda: 0)


class TestCrossArch:
    """Bytecodes are counted from real code objects; totals agree with the context."""

    def test_bytecode_count_matches_dis_and_includes_nested_code(self):
        """A function's count is dis's, plus the code objects nested in it."""

        def outer(x):
            # A nested def, not a comprehension: Python 3.12 inlines comprehensions (PEP 709).
            def inner(y):
                return y + 1

            return [inner(y) for y in x]

        direct = len(list(dis.get_instructions(outer.__code__)))
        nested = sum(
            len(list(dis.get_instructions(c)))
            for c in outer.__code__.co_consts
            if hasattr(c, "co_code")
        )
        assert nested > 0
        assert bytecode_count(outer.__code__) == direct + nested

    def test_census_covers_every_cached_block(self, jit_runs):
        """The census reads as many blocks as the context cached in the cold run."""
        runs = jit_runs
        found = census(runs.context, runs.cold.machine.memory)
        assert found.blocks == runs.cold_stats.cached_blocks
        assert found.guest_instructions >= found.blocks
        assert found.bytecodes > found.guest_instructions

    def test_reports_every_metric(self, jit_on):
        """Translation time per guest instruction and bytecodes per guest instruction."""
        metrics = CrossArchBenchmark().run(RunContext(quick=True))
        by = {m.name: m.value for m in metrics}
        assert list(by) == [
            "translation_per_guest_insn",
            "translation_per_executed_insn",
            "translation_share",
            "bytecodes_per_guest_insn",
        ]
        assert 0 < by["translation_share"] < 100
        assert by["bytecodes_per_guest_insn"] > 1

    def test_unavailable_when_the_jit_is_disabled(self, monkeypatch):
        """The interpreter translates nothing, so the benchmark steps aside, saying why."""
        monkeypatch.setenv(DISABLE_JIT_ENV, "1")
        assert "disabled" in CrossArchBenchmark().available()


class TinyAot(AotBenchmark):
    """The AOT benchmark with a 64-block cache, for tests."""

    max_blocks = (64, 64)


class TestAot:
    """The AOT code cache: built, saved, loaded, and faster or not, measured."""

    def test_reports_every_metric(self, jit_on):
        """Build time, size, cold and warm starts from one value; the ratio is theirs."""
        if AotBenchmark().available() is not None:
            pytest.skip(f"AOT unavailable: {AotBenchmark().available()}")
        metrics = TinyAot().run(RunContext(quick=True))
        by = {m.name: m for m in metrics}
        assert list(by) == [
            "aot_compile_time",
            "aot_compile_per_block",
            "aot_blocks",
            "code_cache_size",
            "cold_start",
            "warm_start",
            "warm_start_speedup",
            "aot_coverage",
            "profiled_cache_size",
            "profiled_warm_start",
            "profiled_warm_start_speedup",
            "profiled_coverage",
        ]
        assert by["aot_blocks"].value == 64
        assert by["warm_start_speedup"].value == pytest.approx(
            by["cold_start"].value / by["warm_start"].value
        )
        assert by["aot_compile_per_block"].value * 64 == pytest.approx(
            by["aot_compile_time"].value * 1000
        )
        assert 0 < by["aot_coverage"].value <= 100
        assert by["profiled_warm_start_speedup"].value == pytest.approx(
            by["cold_start"].value / by["profiled_warm_start"].value
        )
        # The profile holds every block the same run translates: all of them come ready-made.
        assert by["profiled_coverage"].value == pytest.approx(100)

    def test_evidence_agrees_with_the_cache(self, jit_on):
        """Blocks served from the cache never exceed those built; the cache file is non-empty."""
        if AotBenchmark().available() is not None:
            pytest.skip(f"AOT unavailable: {AotBenchmark().available()}")
        found = TinyAot().measure(quick=True, clock=__import__("time").perf_counter_ns)
        assert 0 < found["prebuilt"] <= found["blocks"] == 64
        assert found["size"] > 0
        assert found["coverage"] == pytest.approx(
            found["prebuilt"] / (found["prebuilt"] + found["compilations"])
        )

    def test_unavailable_when_the_jit_is_disabled(self, monkeypatch):
        """AOT code is the JIT's code: with the JIT disabled the benchmark steps aside."""
        monkeypatch.setenv(DISABLE_JIT_ENV, "1")
        assert "disabled" in AotBenchmark().available()


class TestEngines:
    """The JIT is found where it is committed."""

    def test_jit_classes_are_the_executor_and_context(self, jit_on):
        """jit_classes returns a JIT executor class and an execution-context class."""
        executor, context = jit_classes()
        assert executor.__name__ == "JitExecutor"
        assert context.__name__ == "AsyncExecutionContext"
