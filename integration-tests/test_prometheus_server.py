"""A real Prometheus server scrapes the three packages' exporter; its HTTP API has the series.

The Debian package ``prometheus`` is the oracle: the test starts it on a free loopback port with a
generated configuration (scrape every second) and a temporary data directory, waits (bounded)
until it has scraped the exporter, asks its query API for the series and for the PromQL queries
of docs/metrics.md, and always stops it.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port, need_tool

from vmkit.async_executor.loader import load_program
from vmkit.async_executor.prometheus import ExecutorCollector, start_metrics_server
from vmkit.async_executor.samples import path as sample_path
from vmkit.coroutine_scheduler import Scheduler
from vmkit.coroutine_scheduler.prometheus import SchedulerCollector
from vmkit.perf_bench import Benchmark, BenchmarkSuite, Metrics, RunContext, RunOptions
from vmkit.perf_bench.prometheus import BenchCollector, SuiteMonitor

#: Bound on every wait for the Prometheus server (start, first scrape, shutdown), in seconds.
BOUND = 60.0
JOB = "vm"

pytestmark = pytest.mark.oracle


class Size(Benchmark):
    """Reports a constant size: a result whose value the test knows."""

    name = "size"

    def run(self, ctx: RunContext) -> Sequence[Metrics]:
        return [Metrics("bytes", 4096.0, "B")]


class PrometheusServer:
    """A Prometheus process scraping one target, and a client of its query API."""

    def __init__(self, binary: str, target: str, workdir: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  scrape_timeout: 1s\n"
            "  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            f"  - job_name: {JOB}\n"
            "    static_configs:\n"
            f"      - targets: ['{target}']\n"
        )
        self.log = (workdir / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def query(self, expr: str) -> list[tuple[dict[str, str], float]]:
        """An instant query: (labels, value) per series of the result vector."""
        url = f"{self.base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as reply:
            body = json.load(reply)
        assert body["status"] == "success", body
        data = body["data"]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(r["metric"], float(r["value"][1])) for r in data["result"]]

    def wait_until(self, what: str, ready: Callable[[], bool]) -> None:
        """Poll ``ready`` until it holds; fail (with the server's log) after BOUND seconds."""
        deadline = time.monotonic() + BOUND
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"prometheus exited with {self.process.returncode}: {self.logged()}")
            try:
                if ready():
                    return
            except OSError:
                pass  # not listening yet
            time.sleep(0.2)  # polling an external process; bounded by the deadline
        pytest.fail(f"prometheus: {what} not within {BOUND} s: {self.logged()}")

    def logged(self) -> str:
        """The tail of the server's log."""
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after the bound)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(BOUND)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(BOUND)
        self.log.close()


@pytest.fixture
def prometheus_server(tmp_path: Path) -> Iterator[Callable[[str], PrometheusServer]]:
    """Start Prometheus scraping a target; it is always stopped afterwards."""
    binary = need_tool("prometheus")
    servers: list[PrometheusServer] = []

    def start(target: str) -> PrometheusServer:
        server = PrometheusServer(binary, target, tmp_path)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def workload(tmp_path: Path) -> dict[str, Any]:
    """A finished hybrid guest, a finished skewed scheduler run and a finished suite run."""
    import vmkit.async_executor.engine

    hybrid = getattr(vmkit.async_executor.engine, "HybridExecutor", None)
    if hybrid is None:
        from vmkit.async_executor.engine._jit_hybrid import HybridExecutor as hybrid
    with (tmp_path / "crc32.out").open("wb") as out:
        machine = load_program(
            str(sample_path("crc32")), ["crc32", "20000"], root=".", stdio=(0, out.fileno(), 2)
        )
        executor = hybrid(machine, threshold=20)
        assert executor.run(machine) == 0
        machine.linux.close()

    scheduler = Scheduler(4, seed=2)

    def spin(n: int) -> Iterator[None]:
        for _ in range(n):
            yield

    for _ in range(64):
        scheduler.spawn(spin, 40, vcpu=0)
    scheduler.run(timeout=BOUND)

    suite = BenchmarkSuite("probe")
    suite.register(Size)
    monitor = SuiteMonitor("probe")
    options = RunOptions(processes=2, values=3, warmups=0, isolation="inline")
    monitor.record(suite.run(None, options, progress=monitor, environment={}))
    return {"executor": executor, "scheduler": scheduler, "monitor": monitor}


class TestPrometheusScrapesTheExporter:
    """Prometheus 2 against the exporter of all three packages."""

    def test_series_and_documented_queries(
        self,
        prometheus_server: Callable[[str], PrometheusServer],
        workload: dict[str, Any],
    ) -> None:
        """After a scrape, the series hold the packages' values and the docs' queries work."""
        executor, scheduler = workload["executor"], workload["scheduler"]
        collectors = [
            ExecutorCollector([executor], registry=None),
            SchedulerCollector(scheduler, registry=None),
            BenchCollector(workload["monitor"], registry=None),
        ]
        with start_metrics_server(0, collectors=collectors) as exporter:
            prom = prometheus_server(f"127.0.0.1:{exporter.port}")
            prom.wait_until(
                "a successful scrape of the exporter",
                lambda: [v for _, v in prom.query(f'up{{job="{JOB}"}}')] == [1.0],
            )
            prom.wait_until(
                "the exporter's series",
                lambda: bool(prom.query("coroutine_scheduler_vcpu_utilization_ratio")),
            )

            def one(expr: str) -> float:
                result = prom.query(expr)
                assert len(result) == 1, f"{expr}: {result}"
                return result[0][1]

            instructions = executor.stats.instructions
            assert one("sum(async_executor_guest_instructions_total)") == instructions
            jit_share = one(
                'sum(async_executor_guest_instructions_total{tier="jit"})'
                " / sum(async_executor_guest_instructions_total)"
            )
            assert jit_share == pytest.approx(
                executor.tier_stats["jit"].instructions / instructions
            )
            assert 0.5 < jit_share <= 1.0  # a hot CRC loop runs translated
            ctx = executor.context.stats()
            hit_rate = one(
                'sum(async_executor_translation_cache_lookups_total{result="hit"})'
                " / sum(async_executor_translation_cache_lookups_total)"
            )
            assert hit_rate == pytest.approx(ctx.hit_rate)
            assert one("async_executor_blocks_compiled_total") == ctx.compilations > 0
            tlb_hit_rate = one(
                'sum(async_executor_tlb_lookups_total{result="hit"})'
                " / sum(async_executor_tlb_lookups_total)"
            )
            assert tlb_hit_rate == pytest.approx(executor.machine.memory.tlb_hit_rate)

            stats = scheduler.stats()
            utilization = {
                labels["vcpu"]: value
                for labels, value in prom.query("coroutine_scheduler_vcpu_utilization_ratio")
            }
            assert utilization == {str(v.vcpu): pytest.approx(v.utilization) for v in stats.vcpus}
            assert all(0.0 <= u <= 1.0 for u in utilization.values())
            assert one("sum(coroutine_scheduler_steals_total)") == stats.totals.steals_in > 0
            assert one('coroutine_scheduler_coroutines{state="dead"}') == 64
            assert one("coroutine_scheduler_load_imbalance_ratio") == pytest.approx(
                stats.imbalance.cv
            )
            assert one('perf_bench_metric_median{benchmark="size",metric="bytes"}') == 4096.0
            assert one('perf_bench_metric_outcome{benchmark="size",outcome="reported"}') == 1.0
            assert one('perf_bench_process_runs_total{suite="probe"}') == 2.0
