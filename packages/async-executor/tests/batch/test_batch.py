"""async-executor batch: manifests, warm workers, streamed and resumable results, a worker killed
mid-job, hanging jobs, JUnit XML and the command line's exit status."""

from __future__ import annotations

import json
import os
import pathlib
import re
import sys
import threading
import time
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from vmkit.async_executor.batch import (
    Job,
    LocalPool,
    ManifestError,
    finished_keys,
    load_manifest,
    run_batch,
    write_junit,
)
from vmkit.async_executor.cli import main
from vmkit.async_executor.samples import path as sample_path

GUEST = pathlib.Path(__file__).resolve().parents[2] / "guest"


def write_jsonl(path: pathlib.Path, jobs: list[dict[str, Any]]) -> pathlib.Path:
    path.write_text("".join(json.dumps(job) + "\n" for job in jobs))
    return path


def guest_cases_manifest(folder: pathlib.Path) -> pathlib.Path:
    """The repository's guest programs with qemu-riscv64's recorded stdout and status."""
    spec = json.loads((GUEST / "cases.json").read_text())
    jobs = []
    for case in spec["cases"]:
        program = GUEST / "prebuilt" / case["program"]
        if not program.exists():
            program = sample_path(case["program"])
        jobs.append(
            {
                "id": case["id"],
                "program": str(program),
                "args": case["args"],
                "argv0": "./" + case["program"],
                "stdin": case.get("stdin", ""),
                "env": spec["env"],
                "max_instructions": 100_000_000,
                "expected_stdout": (GUEST / "expected" / f"{case['id']}.stdout").read_text(
                    errors="replace"
                ),
                "expected_status": int((GUEST / "expected" / f"{case['id']}.status").read_text()),
            }
        )
    return write_jsonl(folder / "cases.jsonl", jobs)


class TestManifest:
    def test_jsonl_and_toml_give_the_same_jobs(self, tmp_path: pathlib.Path) -> None:
        write_jsonl(tmp_path / "m.jsonl", [{"program": "p", "args": ["a"], "expected_status": 3}])
        (tmp_path / "m.toml").write_text(
            '[[job]]\nprogram = "p"\nargs = ["a"]\nexpected_status = 3\n'
        )
        (jsonl,) = load_manifest(tmp_path / "m.jsonl")
        (toml,) = load_manifest(tmp_path / "m.toml")
        assert jsonl == toml
        assert jsonl.program == str(tmp_path / "p")  # relative to the manifest
        assert jsonl.id == "0"

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            ('{"args": []}', "'program' is required"),
            ('{"program": "p", "colour": 1}', "unknown field(s) colour"),
            ('{"program": "p", "engine": "qemu"}', "engine must be one of"),
            ('{"program": "p", "args": "a b"}', "'args' must be list"),
            ('{"program": "p", "wall_seconds": -1}', "'wall_seconds' must be positive"),
            ("not json", "not JSON"),
        ],
    )
    def test_bad_jobs_name_the_line_and_the_problem(
        self, tmp_path: pathlib.Path, line: str, message: str
    ) -> None:
        manifest = tmp_path / "m.jsonl"
        manifest.write_text("# a comment\n\n" + line + "\n")
        with pytest.raises(ManifestError, match=re.escape(message)) as info:
            load_manifest(manifest)
        assert f"{manifest}:3" in str(info.value)

    def test_duplicate_ids_are_refused(self, tmp_path: pathlib.Path) -> None:
        write_jsonl(tmp_path / "m.jsonl", [{"id": "a", "program": "p"}] * 2)
        with pytest.raises(ManifestError, match="id 'a' is also used"):
            load_manifest(tmp_path / "m.jsonl")


class TestRun:
    def test_the_guest_programs_match_qemu_in_a_batch(self, tmp_path: pathlib.Path) -> None:
        jobs = load_manifest(guest_cases_manifest(tmp_path))
        summary = run_batch(jobs, tmp_path / "r.jsonl", workers=2)
        failed = [r["id"] for r in summary.results if not r["passed"]]
        assert failed == []
        assert summary.passed == len(jobs) > 20
        assert summary.ok

    def test_results_stream_and_a_resumed_batch_runs_only_the_rest(
        self, tmp_path: pathlib.Path
    ) -> None:
        hello = str(sample_path("hello"))
        jobs = [
            Job(id=f"h{i}", program=hello, engine="interp", expected_status=0) for i in range(6)
        ]
        results = tmp_path / "r.jsonl"
        first = run_batch(jobs[:4], results, workers=2)
        assert first.passed == 4
        with results.open("a") as f:
            f.write('{"key": "torn')  # an interrupted write: that job is not counted as done
        second = run_batch(jobs, results, workers=2)
        assert (second.skipped, second.passed) == (4, 2)
        keys = [json.loads(line)["key"] for line in results.read_text().splitlines()[:-0 or None]
                if line.startswith('{"')  and line.endswith("}")]  # fmt: skip
        assert sorted(keys) == sorted(job.key for job in jobs)  # each job exactly once
        assert finished_keys(results) == {job.key for job in jobs}

    def test_a_hanging_guest_is_stopped_by_its_limits(self, tmp_path: pathlib.Path) -> None:
        exits = str(sample_path("exits"))
        jobs = [
            Job("wall", exits, ("loop",), engine="interp", wall_seconds=0.3, expected_status=152),
            Job("budget", exits, ("loop",), max_instructions=200_000, expected_status=124),
        ]
        summary = run_batch(jobs, tmp_path / "r.jsonl", workers=2)
        by_id = {r["id"]: r for r in summary.results}
        assert by_id["wall"]["reason"] == "wall-clock"
        assert by_id["budget"]["reason"] == "budget"
        assert summary.ok

    def test_a_worker_killed_mid_job_is_replaced_and_the_job_retried(
        self, tmp_path: pathlib.Path
    ) -> None:
        exits = str(sample_path("exits"))
        slow = Job("slow", exits, ("loop",), engine="interp", max_instructions=3_000_000,
                   expected_status=124)  # fmt: skip
        quick = [Job(f"q{i}", str(sample_path("hello")), expected_status=0) for i in range(3)]
        results: list[tuple[Job, dict[str, Any]]] = []
        with LocalPool(2, "interp") as pool:
            runner = threading.Thread(target=lambda: results.extend(pool.run([slow, *quick])))
            runner.start()
            deadline = time.monotonic() + 60
            victim = None
            while victim is None and time.monotonic() < deadline:
                time.sleep(0.05)
                victim = next((w for w in pool._workers if w.job is slow), None)
            assert victim is not None
            time.sleep(0.3)  # the slow guest is running now
            os.kill(victim.process.pid, 9)
            runner.join(timeout=120)
            assert not runner.is_alive()
            assert pool.retries == 1
            assert pool.worker_deaths >= 1
        ids = sorted(job.id for job, _ in results)
        assert ids == ["q0", "q1", "q2", "slow"]  # nothing lost, nothing twice
        assert all(result["passed"] for _, result in results)


class TestReports:
    def test_junit_counts_failures_and_errors(self, tmp_path: pathlib.Path) -> None:
        records = [
            {"id": "a", "program": "/x/p", "outcome": "ran", "passed": True, "seconds": 0.1},
            {"id": "b", "program": "/x/p", "outcome": "ran", "passed": False, "status": 1},
            {"id": "c", "program": "/x/q", "outcome": "crashed", "passed": False, "error": "e"},
        ]
        write_junit(records, tmp_path / "j.xml")
        suite = ET.parse(tmp_path / "j.xml").getroot()
        assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
        assert [c.get("name") for c in suite.iter("testcase")] == ["a", "b", "c"]

    def test_command_line_exit_status_and_junit(
        self, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        hello = str(sample_path("hello"))
        manifest = write_jsonl(
            tmp_path / "m.jsonl",
            [
                {"id": "ok", "program": hello, "expected_status": 0},
                {"id": "wrong", "program": hello, "expected_status": 3},
            ],
        )
        junit = tmp_path / "j.xml"
        status = main(["batch", str(manifest), "--workers", "1", "--junit", str(junit)])
        err = capsys.readouterr().err
        assert status == 1
        assert "FAIL wrong (ran): status 0" in err
        assert "2 jobs: 1 passed, 1 failed" in err
        assert (tmp_path / "m.results.jsonl").exists()
        assert ET.parse(junit).getroot().get("failures") == "1"

    def test_bad_manifest_is_a_usage_error(
        self, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        (tmp_path / "m.jsonl").write_text("{}\n")
        assert main(["batch", str(tmp_path / "m.jsonl")]) == 2
        assert "'program' is required" in capsys.readouterr().err

    def test_an_unwritable_results_file_is_refused_before_anything_runs(
        self, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        manifest = write_jsonl(tmp_path / "m.jsonl", [{"program": str(sample_path("hello"))}])
        status = main(["batch", str(manifest), "--results", str(tmp_path / "no" / "r.jsonl")])
        assert status == 2
        assert "cannot write the results file" in capsys.readouterr().err

    def test_a_cluster_without_ray_installed_names_the_extra(
        self,
        tmp_path: pathlib.Path,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails, as without the extra
        manifest = write_jsonl(tmp_path / "m.jsonl", [{"program": str(sample_path("hello"))}])
        assert main(["batch", str(manifest), "--cluster", "auto", "--quiet"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert err == [
            "async-executor: running a batch on a Ray cluster needs Ray: "
            "pip install 'vmkit-async-executor[ray]'"
        ]


class TestMetrics:
    def test_batch_families_count_what_the_batch_did(self, tmp_path: pathlib.Path) -> None:
        pytest.importorskip("prometheus_client")
        from vmkit.async_executor.prometheus import BatchCollector

        hello, exits = str(sample_path("hello")), str(sample_path("exits"))
        jobs = [
            Job("ok1", hello, expected_status=0),
            Job("ok2", hello, expected_status=0),
            Job("bad", hello, expected_status=7),
            Job("missing", str(tmp_path / "nothing-here")),
            Job("budget", exits, ("loop",), max_instructions=50_000, expected_status=124),
        ]
        collector = BatchCollector(registry=None)
        seen_running: list[float] = []

        def progress(done: int, total: int, job: Job, record: dict[str, Any]) -> None:
            seen_running.append(samples(collector)[("async_executor_batch_jobs", "running")])

        run_batch(jobs, tmp_path / "r.jsonl", workers=2, progress=progress,
                  on_start=collector.watch)  # fmt: skip
        values = samples(collector)
        finished = "async_executor_batch_jobs_finished_total"
        assert {o: values[(finished, o)] for o in BatchCollector.OUTCOMES} == {
            "passed": 3, "failed": 1, "crashed": 0, "timeout": 0, "error": 1,
        }  # fmt: skip
        assert values[("async_executor_batch_jobs", "queued")] == 0
        assert values[("async_executor_batch_jobs", "running")] == 0
        assert max(seen_running) >= 1  # jobs were seen running while the batch went on
        assert values[("async_executor_batch_jobs_retried_total", "")] == 0
        run_batch(jobs, tmp_path / "r.jsonl", workers=1, on_start=collector.watch)  # resumed
        assert samples(collector)[("async_executor_batch_jobs_skipped_total", "")] == len(jobs)


def samples(collector: Any) -> dict[tuple[str, str], float]:
    """A collector's samples by (name, the value of its one label or "")."""
    return {
        (s.name, next(iter(s.labels.values()), "")): s.value
        for family in collector.collect()
        for s in family.samples
    }
