"""Tests of the reports: JSON against the published schema, CSV round trip, text table."""

from __future__ import annotations

import json

import jsonschema
import pytest

from vmkit.perf_bench import (
    Direction,
    Outcome,
    ResultFileError,
    Target,
    load_result,
    read_csv,
    result_from_json,
    schema,
)

TARGET = Target(100, "us", Direction.LOWER, "100 us (simulated)", "per block")


@pytest.fixture
def result(make_result):
    """A result with a passing, a failing and a reported metric."""
    return make_result(
        {
            "JitBenchmark": {
                "translate_compile_per_block": (
                    [50.0, 51, 52, 53, 54, 55, 56, 57], "us", Direction.LOWER, TARGET,
                ),
                "jit_mips": (
                    [5.0, 5.1, 5.2, 5.3, 5.4, 5.5], "MIPS", Direction.HIGHER,
                    Target(20, "MIPS", Direction.HIGHER, "> 1 M ops/s"),
                ),
            },
            "dict_get": {"time": ([30.0, 31, 32, 33], "ns", Direction.LOWER, None)},
        }
    )  # fmt: skip


class TestJson:
    """JSON output and the published schema."""

    def test_schema_is_a_valid_draft_2020_12_schema(self):
        """The shipped schema is itself valid."""
        jsonschema.Draft202012Validator.check_schema(schema())

    def test_output_validates_against_schema(self, result):
        """A result's JSON validates against result-v1.json."""
        data = json.loads(json.dumps(result.to_json()))
        jsonschema.validate(data, schema())
        assert data["schema_version"] == 1
        assert data["summary"] == {
            "benchmarks": 2, "total": 3, "passed": 1, "failed": 1, "inconclusive": 0,
            "reported": 1, "outcome": "fail",
        }  # fmt: skip

    def test_schema_rejects_a_missing_raw_value_list(self, result):
        """The schema is strict: a metric without its runs is invalid."""
        data = result.to_json()
        del data["benchmarks"][0]["metrics"][0]["runs"]
        with pytest.raises(jsonschema.ValidationError, match="runs"):
            jsonschema.validate(data, schema())

    def test_round_trip_keeps_every_value_and_statistic(self, result):
        """Loading the JSON gives the same raw values, statistics and verdicts."""
        loaded = result_from_json(json.loads(json.dumps(result.to_json())))
        for before, after in zip(result.benchmarks, loaded.benchmarks, strict=True):
            for m1, m2 in zip(before.metrics, after.metrics, strict=True):
                assert m1.runs == m2.runs
                assert m1.summary == m2.summary
                assert m1.outcome is m2.outcome
                assert m1.target == m2.target

    def test_verdicts(self, result):
        """The target table's thresholds give pass, fail and reported."""
        jit = result.benchmark("JitBenchmark")
        assert jit.metric("translate_compile_per_block").outcome is Outcome.PASS
        assert jit.metric("jit_mips").outcome is Outcome.FAIL
        assert result.benchmark("dict_get").metric("time").outcome is Outcome.REPORTED
        assert jit.outcome is Outcome.FAIL

    def test_other_schema_version_is_refused(self, result):
        """A file of another schema version is refused with both versions named."""
        data = result.to_json()
        data["schema_version"] = 2
        with pytest.raises(ResultFileError, match=r"schema_version is 2; .* reads version 1"):
            result_from_json(data)

    def test_unreadable_files_give_one_line_errors(self, tmp_path):
        """Missing and non-JSON files are reported with their path."""
        with pytest.raises(ResultFileError, match="cannot read"):
            load_result(tmp_path / "missing.json")
        bad = tmp_path / "bad.json"
        bad.write_text("{not json", encoding="utf-8")
        with pytest.raises(ResultFileError, match=r"bad.json: not JSON \(line 1"):
            load_result(bad)
        broken = tmp_path / "broken.json"
        broken.write_text('{"schema_version": 1}', encoding="utf-8")
        with pytest.raises(ResultFileError, match="malformed result: KeyError"):
            load_result(broken)


class TestCsv:
    """CSV output."""

    def test_round_trip(self, result):
        """Reading the CSV back gives exactly the statistics that were written."""
        rows = read_csv(result.to_csv())
        assert len(rows) == 3
        for row in rows:
            m = result.benchmark(row["benchmark"]).metric(row["metric"])
            s = m.summary
            assert row["n"] == s.n
            for name in ("min", "max", "median", "mean", "stdev", "mad", "p95", "p99"):
                assert row[name] == getattr(s, name)
            assert (row["ci_low"], row["ci_high"]) == (s.ci_low, s.ci_high)
            assert row["outcome"] == m.outcome.value
            assert row["direction"] == m.direction.value

    def test_benchmark_csv_and_reference(self, result):
        """A single benchmark's CSV carries its target and seed figure."""
        rows = read_csv(result.benchmark("JitBenchmark").to_csv())
        assert rows[0]["target"] == "<= 100 us"
        assert rows[0]["reference"] == "100 us (simulated)"

    def test_foreign_csv_is_refused(self):
        """CSV with another header is not read as ours."""
        with pytest.raises(ValueError, match="not a perf-bench CSV"):
            read_csv("a,b\n1,2\n")


class TestText:
    """The text table."""

    def test_table_shows_figures_target_seed_and_verdict(self, result):
        """Each metric's row holds median, target, seed figure and verdict; summary follows."""
        text = result.report()
        line = next(ln for ln in text.splitlines() if "translate_compile_per_block" in ln)
        assert "53.5 us" in line
        assert "<= 100 us" in line
        assert "100 us (simulated)" in line
        assert "pass" in line
        assert "seed figure" in text
        assert "1 passed, 1 failed, 0 inconclusive, 1 reported; overall fail" in text

    def test_busy_machine_is_named(self, result):
        """A load average above the core count is pointed out under the table."""
        assert (
            "load average at start: 3.5 (1 min) on 2 cores; the machine was busy" in result.report()
        )

    def test_warnings_are_listed(self, make_result):
        """Spread warnings appear under the table."""
        noisy = make_result(
            {
                "b": {
                    "t": (
                        [10.0, 10.1, 10.2, 10.3, 20, 20.1, 20.2, 20.3],
                        "ns",
                        Direction.LOWER,
                        None,
                    )
                }
            }
        )
        assert "warning b.t: values form two clusters" in noisy.report()
