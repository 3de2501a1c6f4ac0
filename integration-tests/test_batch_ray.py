"""async-executor batches on a real Ray cluster started on this machine (``ray start --head`` on
loopback): the same results as local workers, binaries shipped through the object store, a worker
killed mid-job, a resumed batch, a hanging guest stopped, the command line's ``--cluster``.

The cluster is this module's: started once, stopped at the end with ``ray stop`` (which stops
every Ray process of this user on the machine, so do not run these tests beside a Ray cluster of
your own).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import GUEST, free_port, need_tool

from vmkit.async_executor.batch import Job, RayPool, load_manifest, run_batch
from vmkit.async_executor.cli import main
from vmkit.async_executor.samples import path as sample_path

#: What must agree between a local run and a cluster run of the same job.
SAME = ("passed", "status", "reason", "stdout_sha256", "instructions", "engine")


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """``ray://127.0.0.1:PORT`` of a two-CPU head node started for these tests."""
    ray = need_tool("ray")
    port, client_port = free_port(), free_port()
    # Ray's sockets live under its temp dir, and Unix socket paths are short: keep it near /.
    temp = tempfile.mkdtemp(prefix="vmkit-ray-", dir="/tmp")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run(
        [ray, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
         "--ray-client-server-port", str(client_port), "--num-cpus", "2",
         "--include-dashboard", "false", "--object-store-memory", str(100 << 20),
         "--temp-dir", temp, "--disable-usage-stats"],
        check=True, capture_output=True, timeout=180, env=env,
    )  # fmt: skip
    try:
        yield f"ray://127.0.0.1:{client_port}"
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120, check=False)
        shutil.rmtree(temp, ignore_errors=True)


def cases_manifest(folder: Path) -> Path:
    """The repository's guest programs with qemu-riscv64's recorded stdout and exit status."""
    spec = json.loads((GUEST / "cases.json").read_text())
    lines = []
    for case in spec["cases"]:
        program = GUEST / "prebuilt" / case["program"]
        expected = GUEST / "expected" / case["id"]
        lines.append(
            json.dumps(
                {
                    "id": case["id"],
                    "program": str(program if program.exists() else sample_path(case["program"])),
                    "args": case["args"],
                    "argv0": "./" + case["program"],
                    "stdin": case.get("stdin", ""),
                    "env": spec["env"],
                    "expected_stdout": expected.with_suffix(".stdout").read_text(errors="replace"),
                    "expected_status": int(expected.with_suffix(".status").read_text()),
                }
            )
        )
    path = folder / "cases.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def by_id(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)), "a job was reported twice"
    return {r["id"]: r for r in records}


def test_the_guest_programs_give_the_same_results_on_ray_as_locally(
    ray_address: str, tmp_path: Path
) -> None:
    jobs = load_manifest(cases_manifest(tmp_path))
    local = by_id(run_batch(jobs, tmp_path / "local.jsonl", workers=2).results)
    cluster = run_batch(jobs, tmp_path / "ray.jsonl", cluster=ray_address)
    remote = by_id(cluster.results)
    assert sorted(remote) == sorted(local) == sorted(job.id for job in jobs)
    for job_id, record in remote.items():
        assert {k: record.get(k) for k in SAME} == {k: local[job_id].get(k) for k in SAME}, job_id
        assert record["program"] == local[job_id]["program"]  # the manifest's path, not the copy
    assert cluster.passed == len(jobs)
    assert cluster.ok


def test_a_ray_worker_killed_mid_job_is_retried_and_nothing_is_lost(
    ray_address: str, tmp_path: Path
) -> None:
    exits = str(sample_path("exits"))
    slow = Job("slow", exits, ("loop",), engine="interp", max_instructions=15_000_000,
               expected_status=124)  # fmt: skip
    quick = [Job(f"q{i}", str(sample_path("hello")), expected_status=0) for i in range(4)]
    results: list[tuple[Job, dict[str, Any]]] = []
    with RayPool(ray_address) as pool:
        runner = threading.Thread(target=lambda: results.extend(pool.run([slow, *quick])))
        runner.start()
        # Once the quick jobs are in, the one busy worker is the slow job's.
        deadline = time.monotonic() + 60
        busy: list[int] = []
        while time.monotonic() < deadline:
            time.sleep(0.1)
            busy = _busy_ray_workers()
            if len(results) == len(quick) and len(busy) == 1:
                break
        assert len(results) == len(quick), "the quick jobs did not finish"
        assert len(busy) == 1, "the slow job never ran alone"
        os.kill(busy[0], 9)
        runner.join(timeout=180)
        assert not runner.is_alive()
        assert pool.retries == 1
    outcome = {job.id: result for job, result in results}
    assert sorted(outcome) == ["q0", "q1", "q2", "q3", "slow"]  # each exactly once
    assert all(r["passed"] for r in outcome.values())
    assert outcome["slow"]["reason"] == "budget"


def _busy_ray_workers() -> list[int]:
    """Pids of Ray worker processes running a batch task now (Ray sets a busy worker's
    process title to ``ray::`` and its task's name)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            title = (entry / "cmdline").read_bytes()
        except OSError:  # not a process, or gone
            continue
        if title.startswith(b"ray::_run_on_node"):
            pids.append(int(entry.name))
    return pids


def test_a_resumed_batch_on_ray_runs_only_the_rest(ray_address: str, tmp_path: Path) -> None:
    hello = str(sample_path("hello"))
    jobs = [Job(f"h{i}", hello, engine="jit", expected_status=0) for i in range(6)]
    results = tmp_path / "r.jsonl"
    assert run_batch(jobs[:3], results, cluster=ray_address).passed == 3
    second = run_batch(jobs, results, cluster=ray_address)
    assert (second.skipped, second.passed) == (3, 3)
    keys = [json.loads(line)["key"] for line in results.read_text().splitlines()]
    assert sorted(keys) == sorted(job.key for job in jobs)


def test_a_hanging_guest_on_ray_is_stopped_and_the_command_line_says_so(
    ray_address: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exits = str(sample_path("exits"))
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        json.dumps({"id": "hang", "program": exits, "args": ["loop"], "engine": "interp",
                    "wall_seconds": 0.5, "expected_status": 0}) + "\n"
        + json.dumps({"id": "ok", "program": str(sample_path("hello")), "expected_status": 0})
        + "\n"
    )  # fmt: skip
    results = tmp_path / "r.jsonl"
    status = main(["batch", str(manifest), "--cluster", ray_address, "--quiet",
                   "--results", str(results)])  # fmt: skip
    assert status == 1  # the hanging job did not give its expected status
    records = by_id([json.loads(line) for line in results.read_text().splitlines()])
    assert records["hang"]["reason"] == "wall-clock"
    assert records["ok"]["passed"]
    err = capsys.readouterr().err
    assert "FAIL hang" in err
    assert "2 jobs: 1 passed, 1 failed" in err
