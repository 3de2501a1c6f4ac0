"""End-to-end tests of the perf-bench command line."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import jsonschema
import pytest

from vmkit.perf_bench import Direction, _registry, read_csv, schema
from vmkit.perf_bench.cli import main

# Two benchmarks, two fresh worker processes each, 2 ms per value: a real run in a few seconds.
QUICK = ["run", "--suite", "python", "--quick", "--repeat", "2", "--min-time", "0.002", "--quiet"]


@pytest.fixture(scope="module")
def quick_json(tmp_path_factory):
    """A real quick run of two Python-suite benchmarks in worker processes, as JSON."""
    path = tmp_path_factory.mktemp("run") / "r.json"
    status = main([*QUICK, "--bench", "dict_get", "generator_switch", "--format", "json",
                   "-o", str(path)])  # fmt: skip
    assert status == 0
    return path


class TestRun:
    """perf-bench run."""

    def test_json_validates_and_holds_real_values(self, quick_json):
        """The JSON of a real run validates against the schema and holds every raw value."""
        data = json.loads(quick_json.read_text(encoding="utf-8"))
        jsonschema.validate(data, schema())
        assert [b["name"] for b in data["benchmarks"]] == ["dict_get", "generator_switch"]
        for bench in data["benchmarks"]:
            (metric,) = bench["metrics"]
            assert metric["unit"] == "ns"
            assert len(metric["runs"]) == 2
            assert all(len(r["values"]) == 3 and len(r["warmups"]) == 1 for r in metric["runs"])
            assert metric["stats"]["n"] == 6
            assert all(v > 0 for r in metric["runs"] for v in r["values"])
            assert metric["runs"][0]["loops"] == metric["runs"][1]["loops"] >= 1
        assert data["options"]["isolation"] == "process"
        assert data["environment"]["packages"]["perf-bench"] is not None
        assert len(data["environment"]["load_average"]) == 3
        assert data["environment"]["python"]["version"] == "{}.{}.{}".format(*sys.version_info[:3])

    def test_csv_output(self, tmp_path):
        """--format csv writes one row per metric that reads back."""
        out = tmp_path / "r.csv"
        assert main([*QUICK, "--inline", "--bench", "function_call", "--format", "csv",
                     "-o", str(out)]) == 0  # fmt: skip
        (row,) = read_csv(out.read_text(encoding="utf-8"))
        assert row["benchmark"] == "function_call"
        assert row["reference"] == "~50-80 ns"

    def test_text_output(self, capsys):
        """The text report prints the table with the seed figure to stdout."""
        assert main([*QUICK, "--inline", "--bench", "memoryview_index"]) == 0
        out = capsys.readouterr().out
        assert "memoryview_index" in out
        assert "~30 ns" in out
        assert "1 benchmarks, 1 metrics" in out

    def test_unavailable_suite_is_a_one_line_error(self, capsys, monkeypatch):
        """A suite whose module does not exist exits 2 and says it is not available."""
        monkeypatch.setitem(
            _registry.BUILTIN_SUITES,
            "ghost",
            ("vmkit.perf_bench.suites.ghost:build_suite", "later"),
        )
        assert main(["run", "--suite", "ghost", "--quick"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("perf-bench: error: suite 'ghost' is not available")
        assert err.count("\n") == 1

    def test_an_unwritable_output_fails_before_anything_runs(self, tmp_path, capsys, monkeypatch):
        """-o into a missing directory, onto a directory or a read-only file: one line, exit 2,
        and no benchmark was run (the suite's run is never called)."""
        from vmkit.perf_bench import _suite

        def must_not_run(*_args, **_kwargs):
            raise AssertionError("a benchmark ran before the output was checked")

        monkeypatch.setattr(_suite.BenchmarkSuite, "run", must_not_run)
        read_only = tmp_path / "ro.json"
        read_only.write_text("")
        read_only.chmod(0o444)
        cases = {
            str(tmp_path / "missing" / "x.json"): "no directory",
            str(tmp_path): "is a directory",
        }
        if os.geteuid() != 0:  # root may write anything
            cases[str(read_only)] = "permission denied"
        for output, message in cases.items():
            assert main([*QUICK, "--bench", "dict_get", "-o", output]) == 2
            err = capsys.readouterr().err
            assert message in err
            assert len(err.strip().splitlines()) == 1

    def test_unknown_benchmark(self, capsys):
        """An unknown --bench is a one-line error listing the known benchmarks."""
        assert main([*QUICK, "--bench", "nope"]) == 2
        assert "no benchmark 'nope'; known: dict_get" in capsys.readouterr().err

    def test_bad_repeat_is_a_usage_error(self, capsys):
        """--repeat 0 is refused by the parser."""
        with pytest.raises(SystemExit) as exc:
            main(["run", "--repeat", "0"])
        assert exc.value.code == 2
        assert "must be at least 1" in capsys.readouterr().err


class TestList:
    """perf-bench list."""

    def test_lists_suites_with_availability(self, capsys, monkeypatch):
        """Every suite is listed; one that cannot load says why."""
        monkeypatch.setitem(
            _registry.BUILTIN_SUITES,
            "ghost",
            ("vmkit.perf_bench.suites.ghost:build_suite", "later"),
        )
        assert main(["list"]) == 0
        out = capsys.readouterr().out
        assert "python     available" in out
        assert "vm         available" in out
        assert (
            "ghost      not available (module 'vmkit.perf_bench.suites.ghost' does not exist yet)"
            in out
        )

    def test_lists_benchmarks_with_references(self, capsys):
        """list --suite python shows each benchmark and its reference figure."""
        assert main(["list", "--suite", "python"]) == 0
        out = capsys.readouterr().out
        assert "dict_get: dict.get hit" in out
        assert "time: reported, seed ~37 ns" in out


def _write(path, result):
    path.write_text(json.dumps(result.to_json()), encoding="utf-8")
    return str(path)


class TestCompare:
    """perf-bench compare and its exit status."""

    def test_exit_status(self, make_result, tmp_path, capsys):
        """Exit 1 on a significant regression, 0 for no change or an improvement."""
        fast = make_result(
            {"b": {"t": ([100.0 + i for i in range(10)], "ns", Direction.LOWER, None)}}
        )
        fast2 = make_result(
            {"b": {"t": ([100.5 + i for i in range(10)], "ns", Direction.LOWER, None)}}
        )
        slow = make_result(
            {"b": {"t": ([200.0 + i for i in range(10)], "ns", Direction.LOWER, None)}}
        )
        a, a2, b = (
            _write(tmp_path / "a.json", fast),
            _write(tmp_path / "a2.json", fast2),
            _write(tmp_path / "b.json", slow),
        )
        assert main(["compare", a, a2]) == 0
        assert main(["compare", a, b]) == 1
        out = capsys.readouterr().out
        assert "worse" in out
        assert "0 better, 1 worse" in out
        assert main(["compare", b, a]) == 0
        assert "1 better, 0 worse" in capsys.readouterr().out

    def test_json_and_csv_output(self, make_result, tmp_path, capsys):
        """Comparisons can be written as JSON and CSV."""
        r = make_result({"b": {"t": ([100.0 + i for i in range(10)], "ns", Direction.LOWER, None)}})
        a = _write(tmp_path / "a.json", r)
        assert main(["compare", a, a, "--format", "json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["metrics"][0]["verdict"] == "same"
        assert data["geometric_mean"] == 1.0
        assert main(["compare", a, a, "--format", "csv"]) == 0
        assert capsys.readouterr().out.startswith("benchmark,metric,unit,direction,base_median")

    def test_results_of_different_suites_are_refused(self, make_result, tmp_path, capsys):
        """Comparing a python-suite result with a vm-suite one is one clear line, exit 2."""
        spec = {"b": {"t": ([100.0 + i for i in range(10)], "ns", Direction.LOWER, None)}}
        a = _write(tmp_path / "a.json", make_result(spec, suite="python"))
        b = _write(tmp_path / "b.json", make_result(spec, suite="vm"))
        assert main(["compare", a, b]) == 2
        err = capsys.readouterr().err
        assert "'python' suite" in err
        assert "same suite" in err

    def test_missing_file_is_one_line(self, tmp_path, capsys):
        """A missing results file is a one-line error with exit 2."""
        assert main(["compare", str(tmp_path / "x.json"), str(tmp_path / "y.json")]) == 2
        err = capsys.readouterr().err
        assert "x.json: cannot read" in err
        assert err.count("\n") == 1


class TestPlot:
    """perf-bench plot."""

    def test_plots_distribution_and_comparison(self, make_result, tmp_path):
        """With matplotlib, one result or two give a PNG."""
        pytest.importorskip("matplotlib")
        r = make_result({"b": {"t": ([100.0 + i for i in range(10)], "ns", Direction.LOWER, None)}})
        a = _write(tmp_path / "a.json", r)
        assert main(["plot", a, "-o", str(tmp_path / "one.png")]) == 0
        assert main(["plot", a, a, "-o", str(tmp_path / "two.png")]) == 0
        for name in ("one.png", "two.png"):
            assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def test_missing_matplotlib_names_the_extra(self, make_result, tmp_path, monkeypatch, capsys):
        """Without matplotlib, plot says to install the 'plot' extra."""
        monkeypatch.setitem(sys.modules, "matplotlib", None)
        r = make_result({"b": {"t": ([1.0, 2.0], "ns", Direction.LOWER, None)}})
        a = _write(tmp_path / "a.json", r)
        assert main(["plot", a, "-o", str(tmp_path / "x.png")]) == 2
        assert "pip install 'vmkit-perf-bench[plot]'" in capsys.readouterr().err

    def test_three_results_are_refused(self, make_result, tmp_path, capsys):
        """plot takes one or two results."""
        r = make_result({"b": {"t": ([1.0, 2.0], "ns", Direction.LOWER, None)}})
        a = _write(tmp_path / "a.json", r)
        assert main(["plot", a, a, a, "-o", str(tmp_path / "x.png")]) == 2
        assert "one result or two" in capsys.readouterr().err


class TestNoCommand:
    """perf-bench without a command."""

    def test_prints_help(self, capsys):
        """No subcommand prints the help and exits 2."""
        assert main([]) == 2
        assert "run" in capsys.readouterr().err


FAILING_SUITE = """
from vmkit.perf_bench import Benchmark, BenchmarkSuite, Direction, Metrics, Target


class Hit(Benchmark):
    name = "hit"
    targets = {"hit_rate": Target(98, "%", Direction.HIGHER, "> 98%")}

    def run(self, ctx):
        return [Metrics("hit_rate", 50.0 + ctx.process, "%", Direction.HIGHER)]


def build_suite():
    suite = BenchmarkSuite("external")
    suite.register(Hit)
    return suite
"""


class TestExternalSuite:
    """A suite defined outside perf-bench, registered by spec, as the VM suite will plug in."""

    @pytest.fixture
    def external(self, tmp_path, monkeypatch):
        """Register a suite module that lives in a temporary directory."""
        from vmkit.perf_bench import _registry, register_suite

        (tmp_path / "pb_external_suite.py").write_text(FAILING_SUITE, encoding="utf-8")
        monkeypatch.syspath_prepend(str(tmp_path))
        monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # for the worker processes
        monkeypatch.setattr(_registry, "_registered", {})
        register_suite("external", "pb_external_suite:build_suite", "a test suite")

    @pytest.mark.usefixtures("external")
    def test_runs_in_worker_processes_and_check_fails(self, tmp_path):
        """Workers rebuild the suite from its spec; --check exits 1 on a failed target."""
        out = tmp_path / "r.json"
        args = ["run", "--suite", "external", "--repeat", "2", "--values", "2", "--warmups", "0",
                "--quiet", "--format", "json", "-o", str(out)]  # fmt: skip
        assert main(args) == 0
        assert main([*args, "--check"]) == 1
        data = json.loads(out.read_text(encoding="utf-8"))
        (metric,) = data["benchmarks"][0]["metrics"]
        assert [r["values"] for r in metric["runs"]] == [[50.0, 50.0], [51.0, 51.0]]
        assert metric["outcome"] == "fail"
        assert metric["target"]["reference"] == "> 98%"

    @pytest.mark.usefixtures("external")
    def test_progress_lines_when_not_a_terminal(self, capsys):
        """Without --quiet, progress goes to stderr, one line per process run."""
        assert main(["run", "--suite", "external", "--inline", "--repeat", "2"]) == 0
        err = capsys.readouterr().err.splitlines()
        assert err == ["[1/2] hit (process 1/2)", "[2/2] hit (process 2/2)"]


class TestShow:
    """perf-bench show: a saved result again, in every format, with histograms."""

    def _saved(self, make_result, tmp_path):
        values = [100.0, 101.0, 101.5, 102.0, 102.0, 103.0, 110.0, 111.0, 112.0, 140.0]
        result = make_result({"b": {"t": (values, "ns", Direction.LOWER, None)}})
        return result, _write(tmp_path / "saved.json", result)

    def test_json_round_trips_the_saved_file(self, make_result, tmp_path, capsys):
        _result, saved = self._saved(make_result, tmp_path)
        assert main(["show", saved, "--format", "json"]) == 0
        shown = json.loads(capsys.readouterr().out)
        with open(saved, encoding="utf-8") as f:
            original = json.load(f)
        assert shown == original

    def test_text_is_the_run_report_and_hist_counts_every_value(
        self, make_result, tmp_path, capsys
    ):
        result, saved = self._saved(make_result, tmp_path)
        out = tmp_path / "shown.txt"
        assert main(["show", saved, "-o", str(out)]) == 0
        assert out.read_text(encoding="utf-8") == result.report()
        assert main(["show", saved, "--hist", "-o", str(out)]) == 0
        text = out.read_text(encoding="utf-8")
        assert "b / t (10 values)" in text
        bars = [line for line in text.splitlines() if " ns | " in line]
        assert len(bars) == 10
        assert sum(int(line.rsplit(" ", 1)[1]) for line in bars) == 10

    def test_the_output_suffix_picks_the_format_unless_format_is_given(self, make_result, tmp_path):
        result, saved = self._saved(make_result, tmp_path)
        as_json, as_csv = tmp_path / "again.json", tmp_path / "again.CSV"
        assert main(["show", saved, "-o", str(as_json)]) == 0
        assert json.loads(as_json.read_text(encoding="utf-8")) == json.loads(
            Path(saved).read_text(encoding="utf-8")
        )
        assert main(["show", saved, "-o", str(as_csv)]) == 0
        assert as_csv.read_text(encoding="utf-8").splitlines()[0].startswith("benchmark,")
        assert main(["show", saved, "--format", "text", "-o", str(as_json)]) == 0
        assert as_json.read_text(encoding="utf-8") == result.report()

    def test_a_missing_or_broken_file_is_one_line(self, tmp_path, capsys):
        broken = tmp_path / "broken.json"
        broken.write_text("{not json", encoding="utf-8")
        for path in (tmp_path / "none.json", broken):
            assert main(["show", str(path)]) == 2
            assert len(capsys.readouterr().err.strip().splitlines()) == 1


class TestTextHistogram:
    def test_bins_cover_every_value_and_the_top_one_lands_in_the_last_bin(self):
        from vmkit.perf_bench._hist import text_histogram

        values = [1.0, 2.0, 2.0, 3.0, 9.0, 10.0]
        lines = text_histogram(values, "s", bins=3, width=10).splitlines()
        counts = [int(line.rsplit(" ", 1)[1]) for line in lines]
        assert counts == [4, 0, 2]
        assert lines[0].endswith("#" * 10 + " 4")  # the fullest bin gets the whole width
        assert lines[1].endswith("|  0")  # an empty bin has no bar

    def test_equal_values_and_bad_arguments(self):
        from vmkit.perf_bench._hist import text_histogram

        assert text_histogram([5.0, 5.0], "ms", width=4) == "5 ms | #### 2\n"
        with pytest.raises(ValueError, match="at least one value"):
            text_histogram([], "ms")
        with pytest.raises(ValueError, match=">= 1"):
            text_histogram([1.0], "ms", bins=0)


class TestPyperfExport:
    """show --format pyperf: pyperf itself loads the file and compares two of them."""

    def test_pyperf_reads_our_results_and_compares_them(self, make_result, tmp_path, capsys):
        import subprocess

        pyperf = pytest.importorskip("pyperf")  # a test dependency under nox (cross-checks)
        spec_fast = {
            "b": {
                "t": ([100.0 + i for i in range(10)], "ns", Direction.LOWER, None),
                "rate": ([5.0] * 10, "MIPS", Direction.HIGHER, None),
            }
        }
        spec_slow = {"b": {"t": ([200.0 + i for i in range(10)], "ns", Direction.LOWER, None)}}
        fast = _write(tmp_path / "fast.json", make_result(spec_fast))
        slow = _write(tmp_path / "slow.json", make_result(spec_slow))
        out_fast, out_slow = tmp_path / "fast.pyperf.json", tmp_path / "slow.pyperf.json"
        assert main(["show", fast, "--format", "pyperf", "-o", str(out_fast)]) == 0
        assert main(["show", slow, "--format", "pyperf", "-o", str(out_slow)]) == 0
        suite = pyperf.BenchmarkSuite.load(str(out_fast))
        assert suite.get_benchmark_names() == ["b.t"]  # the MIPS rate has no pyperf unit
        values = suite.get_benchmark("b.t").get_values()
        assert sorted(values) == pytest.approx([(100.0 + i) * 1e-9 for i in range(10)])
        compared = subprocess.run(
            [sys.executable, "-m", "pyperf", "compare_to", str(out_fast), str(out_slow)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert compared.returncode == 0, compared.stderr
        assert "slower" in compared.stdout
