"""Tests of BenchmarkSuite registration and the suite registry."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from vmkit.perf_bench import (
    Benchmark,
    BenchmarkError,
    BenchmarkSuite,
    Metrics,
    RunContext,
    RunOptions,
    SuiteUnavailableError,
    UnknownBenchmarkError,
    _registry,
    available_suites,
    load_suite,
    register_suite,
)


class Constant(Benchmark):
    """Reports a constant; enough to exercise registration."""

    name = "constant"

    def run(self, ctx: RunContext) -> Sequence[Metrics]:
        return [Metrics("size", 42.0, "B")]


class Unavailable(Constant):
    """A benchmark that cannot run here."""

    name = "unavailable"

    def available(self) -> str | None:
        return "needs a RISC-V toolchain"


class TestBenchmarkSuite:
    """Registration and selection."""

    def test_register_class_as_decorator(self):
        """@suite.register on a class registers an instance and returns the class."""
        suite = BenchmarkSuite("s")
        assert suite.register(Constant) is Constant
        assert [b.name for b in suite.benchmarks] == ["constant"]
        assert isinstance(suite.get("constant"), Constant)

    def test_duplicate_and_nameless_are_refused(self):
        """Two benchmarks with one name, or one without a name, are errors."""
        suite = BenchmarkSuite("s")
        suite.register(Constant())
        with pytest.raises(ValueError, match="already has a benchmark called 'constant'"):
            suite.register(Constant)

        class Nameless(Benchmark):
            def run(self, ctx: RunContext) -> Sequence[Metrics]:
                return []

        with pytest.raises(ValueError, match="has no 'name'"):
            suite.register(Nameless)

    def test_unknown_benchmark_lists_known_ones(self):
        """Asking for an unknown name says which names exist."""
        suite = BenchmarkSuite("s")
        suite.register(Constant)
        with pytest.raises(UnknownBenchmarkError, match="no benchmark 'nope'; known: constant"):
            suite.select(["nope"])

    def test_unavailable_benchmark_is_skipped_with_reason(self, fake_clock):
        """A benchmark that says it cannot run is skipped and its reason recorded."""
        suite = BenchmarkSuite("s")
        suite.register(Constant)
        suite.register(Unavailable)
        options = RunOptions(processes=1, values=2, warmups=0, isolation="inline")
        result = suite.run(None, options, clock=fake_clock, environment={})
        assert [b.name for b in result.benchmarks] == ["constant"]
        assert result.skipped == {"unavailable": "needs a RISC-V toolchain"}

    def test_nothing_runnable_is_an_error(self, fake_clock):
        """If every selected benchmark is unavailable, the run fails with the reasons."""
        suite = BenchmarkSuite("s")
        suite.register(Unavailable)
        with pytest.raises(BenchmarkError, match="RISC-V toolchain"):
            suite.run(None, RunOptions(isolation="inline"), clock=fake_clock, environment={})


class TestRegistry:
    """Suites by name."""

    def test_python_suite_loads_with_its_spec(self):
        """The built-in python suite loads and remembers how a worker rebuilds it."""
        suite = load_suite("python")
        assert suite.import_spec == "vmkit.perf_bench.suites.python:build_suite"
        assert "dict_get" in {b.name for b in suite.benchmarks}

    def test_suite_is_not_available_until_its_module_exists(self, monkeypatch):
        """A suite whose module does not exist yet says so plainly, instead of pretending."""
        monkeypatch.setitem(
            _registry.BUILTIN_SUITES,
            "ghost",
            ("vmkit.perf_bench.suites.ghost:build_suite", "later"),
        )
        with pytest.raises(SuiteUnavailableError, match="suite 'ghost' is not available"):
            load_suite("ghost")
        info = {i.name: i for i in available_suites()}
        assert not info["ghost"].available
        assert "does not exist yet" in info["ghost"].reason
        assert info["python"].available
        assert info["vm"].available

    def test_unknown_suite_lists_known_suites(self):
        """An unknown name lists the known suites."""
        with pytest.raises(
            SuiteUnavailableError, match=r"unknown suite 'nope'; known suites:.*python"
        ):
            load_suite("nope")

    def test_register_suite_by_spec(self, monkeypatch):
        """A suite registered as module:function loads under its new name."""
        monkeypatch.setattr(_registry, "_registered", {})
        register_suite("py2", "vmkit.perf_bench.suites.python:build_suite", "again")
        assert load_suite("py2").import_spec == "vmkit.perf_bench.suites.python:build_suite"

    def test_missing_function_is_named(self, monkeypatch):
        """A spec naming a function the module lacks says so."""
        monkeypatch.setattr(_registry, "_registered", {})
        register_suite("broken", "json:no_such_function")
        with pytest.raises(SuiteUnavailableError, match="has no function 'no_such_function'"):
            load_suite("broken")

    def test_missing_dependency_is_named(self, monkeypatch, tmp_path):
        """A suite whose module imports a missing package names that package."""
        (tmp_path / "pb_needs_missing.py").write_text(
            "import pb_definitely_not_installed\n", encoding="utf-8"
        )
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.setattr(_registry, "_registered", {})
        register_suite("needy", "pb_needs_missing:build_suite")
        with pytest.raises(
            SuiteUnavailableError,
            match="needs 'pb_definitely_not_installed', which is not installed",
        ):
            load_suite("needy")

    def test_failing_factory_is_reported(self, monkeypatch, tmp_path):
        """A suite function that raises makes the suite unavailable, with the reason."""
        (tmp_path / "pb_raising_suite.py").write_text(
            "def build_suite():\n    raise FileNotFoundError('guest.elf')\n", encoding="utf-8"
        )
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.setattr(_registry, "_registered", {})
        register_suite("raising", "pb_raising_suite:build_suite")
        with pytest.raises(SuiteUnavailableError, match=r"failed: FileNotFoundError: guest.elf"):
            load_suite("raising")

    def test_factory_must_return_a_suite(self, monkeypatch):
        """A suite function returning something else is refused."""
        monkeypatch.setattr(_registry, "_registered", {})
        register_suite("notasuite", "os:getcwd")
        with pytest.raises(SuiteUnavailableError, match="returned str, not a BenchmarkSuite"):
            load_suite("notasuite")

    def test_bad_spec_is_refused(self):
        """A spec without a colon is refused at registration."""
        with pytest.raises(ValueError, match="module:function"):
            register_suite("x", "just_a_module")
