"""Tests of the vm suite as a whole: registration, a real run end to end, the JSON schema."""

from __future__ import annotations

import json
import os

import jsonschema
import pytest

from vmkit.perf_bench import load_suite, schema
from vmkit.perf_bench.cli import main
from vmkit.perf_bench.suites import vm
from vmkit.perf_bench.suites._vm_engines import (
    DISABLE_JIT_ENV,
    aot_unavailable_reason,
    jit_unavailable_reason,
)
from vmkit.perf_bench.suites._vm_gc import GC_ENGINE_ENV

TINY = ["--quick", "--repeat", "1", "--values", "1", "--warmups", "0", "--quiet"]


@pytest.fixture(scope="module")
def vm_json(tmp_path_factory):
    """Every vm benchmark once, in this process, as JSON (a few seconds)."""
    path = tmp_path_factory.mktemp("vm") / "r.json"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(GC_ENGINE_ENV, "")  # restored afterwards: the run sets it for its workers
        argv = ["run", "--suite", "vm", *TINY, "--inline", "--format", "json", "-o", str(path)]
        assert main(argv) == 0
    return json.loads(path.read_text())


class TestBuildSuite:
    """The suite plugs into the registry with the seed's benchmark names."""

    def test_registry_finds_it(self):
        """--suite vm loads this module's suite, rebuildable in workers from its spec."""
        suite = load_suite("vm")
        assert suite.import_spec == "vmkit.perf_bench.suites.vm:build_suite"
        assert [b.name for b in suite.benchmarks] == [
            "JitBenchmark",
            "AotBenchmark",
            "GcBenchmark",
            "TlbBenchmark",
            "CrossArchBenchmark",
            "SchedulerBenchmark",
            "BatchBenchmark",
        ]
        assert [b.name for b in suite.benchmarks if suite.on_request(b.name)] == ["BatchBenchmark"]

    def test_building_measures_nothing(self):
        """Building the suite imports no engine (workers rebuild it for every process)."""
        suite = vm.build_suite()
        assert len(suite.benchmarks) == 7


class TestVmRun:
    """A real run of the whole suite."""

    def test_json_validates_against_the_schema(self, vm_json):
        """The results file of a vm run follows the published schema."""
        jsonschema.validate(vm_json, schema())
        assert vm_json["suite"] == "vm"
        # One machine probe per worker process run (here: one per benchmark that ran).
        assert len(vm_json["environment"]["machine_probe_ns"]) == len(vm_json["benchmarks"])

    def test_unavailable_benchmarks_are_listed_with_reasons(self, vm_json):
        """A benchmark runs exactly when its engine works here; otherwise it is skipped, why."""
        skipped = {s["name"]: s["reason"] for s in vm_json["skipped"]}
        ran = {b["name"] for b in vm_json["benchmarks"]}
        assert {"GcBenchmark", "TlbBenchmark", "SchedulerBenchmark"} <= ran
        jit_works = jit_unavailable_reason() is None
        assert ("JitBenchmark" in ran) is jit_works
        assert ("CrossArchBenchmark" in ran) is jit_works
        aot_reason = aot_unavailable_reason()
        assert ("AotBenchmark" in ran) is (aot_reason is None)
        if aot_reason is not None:
            assert skipped["AotBenchmark"] == aot_reason
        assert set(skipped) | ran == {b.name for b in vm.build_suite().select()}

    def test_targets_from_the_architecture_apply(self, vm_json):
        """Metrics named in the target table carry their target and the seed's figure."""
        metrics = {(b["name"], m["name"]): m for b in vm_json["benchmarks"] for m in b["metrics"]}
        assert metrics[("TlbBenchmark", "tlb_hit_rate")]["target"]["reference"] == "> 98%"
        assert metrics[("SchedulerBenchmark", "context_switch")]["target"]["threshold"] == 1

    def test_worker_processes_find_the_shipped_workloads(self, tmp_path, monkeypatch):
        """In fresh worker processes (the default) a benchmark runs its guests and reports."""
        monkeypatch.setenv(GC_ENGINE_ENV, "")
        path = tmp_path / "tlb.json"
        argv = ["run", "--suite", "vm", "--bench", "TlbBenchmark", *TINY, "--format", "json"]
        assert main([*argv, "-o", str(path)]) == 0
        data = json.loads(path.read_text())
        (bench,) = data["benchmarks"]
        assert bench["metrics"][0]["name"] == "tlb_hit_rate"


class TestDisableJit:
    """perf-bench run --disable-jit measures the interpreter in the JIT's place, labelled."""

    def test_flag_sets_the_switch_and_labels_the_result(self, tmp_path, monkeypatch):
        """The JIT benchmark's description says it is disabled; CrossArch is skipped."""
        # Recorded by monkeypatch, so the variables the run sets are restored after the test.
        monkeypatch.setenv(DISABLE_JIT_ENV, "0")
        monkeypatch.setenv(GC_ENGINE_ENV, "")
        path = tmp_path / "nojit.json"
        argv = [
            "run",
            "--suite",
            "vm",
            "--bench",
            "JitBenchmark",
            "CrossArchBenchmark",
            "AotBenchmark",
            *TINY,
        ]
        assert main([*argv, "--inline", "--disable-jit", "--format", "json", "-o", str(path)]) == 0
        assert os.environ[DISABLE_JIT_ENV] == "1"
        data = json.loads(path.read_text())
        (bench,) = data["benchmarks"]
        assert bench["name"] == "JitBenchmark"
        assert "JIT DISABLED" in bench["description"]
        skipped = {s["name"]: s["reason"] for s in data["skipped"]}
        assert "disabled" in skipped["CrossArchBenchmark"]
        assert "disabled" in skipped["AotBenchmark"]


class TestQuickOverrides:
    """The vm suite takes 2 values per process with --quick; explicit options still win."""

    def _suite(self, seen):
        from vmkit.perf_bench import Benchmark, BenchmarkSuite, Metrics

        class Probe(Benchmark):
            name = "probe"

            def run(self, ctx):
                seen.append(ctx.quick)
                return [Metrics("one", 1.0, "x")]

        suite = BenchmarkSuite("probe", quick_overrides={"values": 2, "processes": 1})
        suite.register(Probe)
        return suite

    def test_vm_declares_two_quick_values(self):
        """The suite's own quick setting is two values per process."""
        assert load_suite("vm").quick_overrides == {"values": 2}

    def test_overrides_apply_and_command_line_wins(self, monkeypatch, tmp_path):
        """--quick uses the suite's overrides; --values on the command line beats them."""
        from vmkit.perf_bench import _registry

        seen: list[bool] = []
        monkeypatch.setattr(_registry, "load_suite", lambda name: self._suite(seen))
        out = tmp_path / "r.json"
        argv = ["run", "--suite", "probe", "--quick", "--inline", "--quiet", "--format", "json"]
        assert main([*argv, "-o", str(out)]) == 0
        options = json.loads(out.read_text())["options"]
        assert (options["values"], options["processes"], options["warmups"]) == (2, 1, 1)
        assert seen == [True, True, True]
        assert main([*argv, "--values", "4", "-o", str(out)]) == 0
        assert json.loads(out.read_text())["options"]["values"] == 4
