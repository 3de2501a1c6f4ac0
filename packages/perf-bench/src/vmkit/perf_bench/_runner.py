"""Running benchmarks: worker processes, interleaving, warm-ups and loop calibration.

Design note, after pyperf's method. Each benchmark runs in several fresh worker processes
(``python -m vmkit.perf_bench.worker``), because one process is one draw of everything that is fixed
for a process's lifetime (hash seed, memory layout, which code got specialised first); values from
one process only tell how repeatable that draw is. Processes of different benchmarks are
interleaved, round by round, in an order shuffled by a seeded generator, so that slow drift of the
machine (thermal state, other users) spreads over every benchmark instead of biasing the one that
ran last. In each process the first ``warmups`` values are measured and kept in the results file
but excluded from the statistics: they carry one-off costs (imports, cold caches, CPython's
specialisation warming up). A benchmark that asks for calibration gets a loop count, found by
doubling in the first process, that makes one value last at least ``min_time_s``; later processes
reuse it so that every value measures the same amount of work.

``isolation="inline"`` runs the same schedule in the calling process; tests use it with a fake
clock, and it helps when a debugger is attached. It is not the default because it measures a
process that has already run other benchmarks.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vmkit.perf_bench._benchmark import Benchmark, RunContext
from vmkit.perf_bench._logging import get_logger
from vmkit.perf_bench._metrics import Direction, Metrics
from vmkit.perf_bench._timer import Clock

__all__ = [
    "MAX_LOOPS",
    "BenchmarkError",
    "ProcessRun",
    "Progress",
    "RunOptions",
    "calibrate_loops",
    "machine_probe",
    "run_process",
    "run_schedule",
]

logger = get_logger(__name__)

MAX_LOOPS = 2**32
"""Calibration stops doubling here; an operation this fast is the clock's floor, not real work."""

Progress = Callable[[str, int, int], None]
"""Progress callback: (description, steps done, total steps)."""


class BenchmarkError(RuntimeError):
    """A benchmark could not be measured (it raised, its worker died, or its metrics changed)."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How much to measure. The defaults give figures worth publishing; ``quick()`` gives a demo.

    Defaults, and why: 10 processes x 5 values = 50 values per metric, enough for a bootstrap
    interval of the median a few percent wide and for Mann-Whitney to detect a shift of that size;
    pyperf uses 20 x 3, but this project's machines have 2 shared cores and 10 fresh processes
    already sample the per-process effects. One warm-up per process absorbs first-run costs.
    100 ms per value is pyperf's figure: long enough that the timer's resolution and a single
    scheduler tick are under 1% of a value, short enough that a micro benchmark costs ~8 s.
    """

    processes: int = 10
    values: int = 5
    warmups: int = 1
    min_time_s: float = 0.1
    isolation: Literal["process", "inline"] = "process"
    quick: bool = False
    seed: int = 0
    confidence: float = 0.95
    resamples: int = 2000
    worker_timeout_s: float = 600.0
    """A worker that takes longer than this is killed and reported, so a run never hangs."""

    @classmethod
    def quick_defaults(cls, **overrides: Any) -> RunOptions:
        """Options for ``--quick``: 3 processes x 3 values after 1 warm-up, 10 ms per value.

        Nine values still give a median and an interval (wide, and the report shows how wide);
        the Python suite finishes in a few seconds, most of it interpreter start-up.
        """
        settings: dict[str, Any] = {
            "processes": 3,
            "values": 3,
            "warmups": 1,
            "min_time_s": 0.01,
            "quick": True,
        }
        settings.update(overrides)
        return cls(**settings)

    def __post_init__(self) -> None:
        if self.processes < 1:
            raise ValueError(f"processes must be at least 1, got {self.processes}")
        if self.values < 1:
            raise ValueError(f"values must be at least 1, got {self.values}")
        if self.warmups < 0:
            raise ValueError(f"warmups cannot be negative, got {self.warmups}")
        if self.min_time_s <= 0:
            raise ValueError(f"min_time_s must be positive, got {self.min_time_s}")
        if self.isolation not in ("process", "inline"):
            raise ValueError(f"isolation must be 'process' or 'inline', got {self.isolation!r}")

    def to_dict(self) -> dict[str, Any]:
        """The options as JSON-ready data."""
        return {
            "processes": self.processes,
            "values": self.values,
            "warmups": self.warmups,
            "min_time_s": self.min_time_s,
            "isolation": self.isolation,
            "quick": self.quick,
            "seed": self.seed,
            "confidence": self.confidence,
            "resamples": self.resamples,
        }


PROBE_ITERATIONS = 20_000
"""Iterations of the machine probe: about 3 ms of plain Python on this class of machine."""


def _probe_work(n: int) -> int:
    total = 0
    table: dict[int, int] = {}
    for i in range(n):
        total += i * i % 7
        table[i & 255] = total
    return total


def machine_probe(clock: Clock = time.perf_counter_ns, repeats: int = 3) -> int:
    """ns for a fixed piece of plain Python work (the median of ``repeats``): the machine's speed.

    The work never changes between builds, so its time only moves with the machine (load,
    frequency, neighbours). ``compare`` uses the probes of two runs to tell a slower machine
    from slower code.
    """
    times = []
    for _ in range(repeats):
        start = clock()
        _probe_work(PROBE_ITERATIONS)
        times.append(clock() - start)
    times.sort()
    return times[len(times) // 2]


@dataclass(frozen=True, slots=True)
class ProcessRun:
    """Everything one worker process measured for one benchmark."""

    process: int
    loops: int
    warmups: tuple[tuple[Metrics, ...], ...]
    values: tuple[tuple[Metrics, ...], ...]
    probe_ns: int = 0
    """The machine probe measured in this process before the benchmark (0: not measured)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, as the worker writes it."""
        return {
            "process": self.process,
            "probe_ns": self.probe_ns,
            "loops": self.loops,
            "warmups": [[_metrics_to_dict(m) for m in run] for run in self.warmups],
            "values": [[_metrics_to_dict(m) for m in run] for run in self.values],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProcessRun:
        """Inverse of ``to_dict``."""
        return cls(
            process=int(data["process"]),
            loops=int(data["loops"]),
            warmups=tuple(tuple(_metrics_from_dict(m) for m in run) for run in data["warmups"]),
            values=tuple(tuple(_metrics_from_dict(m) for m in run) for run in data["values"]),
            probe_ns=int(data.get("probe_ns", 0)),
        )


def _metrics_to_dict(m: Metrics) -> dict[str, Any]:
    return {
        "name": m.name,
        "value": m.value,
        "unit": m.unit,
        "direction": m.direction.value,
        "operations": m.operations,
        "elapsed_ns": m.elapsed_ns,
    }


def _metrics_from_dict(d: dict[str, Any]) -> Metrics:
    return Metrics(
        d["name"],
        d["value"],
        d["unit"],
        Direction(d["direction"]),
        d["operations"],
        d["elapsed_ns"],
    )


def _measure(benchmark: Benchmark, ctx: RunContext, expected: list[str] | None) -> list[Metrics]:
    try:
        metrics = list(benchmark.run(ctx))
    except Exception as exc:
        raise BenchmarkError(
            f"benchmark {benchmark.name!r} raised {type(exc).__name__}: {exc}"
        ) from exc
    names = [m.name for m in metrics]
    if not metrics:
        raise BenchmarkError(f"benchmark {benchmark.name!r} returned no metrics")
    if len(set(names)) != len(names):
        raise BenchmarkError(f"benchmark {benchmark.name!r} returned a metric twice: {names}")
    if expected is not None and names != expected:
        raise BenchmarkError(
            f"benchmark {benchmark.name!r} changed its metrics between runs: {expected} -> {names}"
        )
    return metrics


def calibrate_loops(benchmark: Benchmark, ctx: RunContext, min_time_ns: int) -> int:
    """Double the loop count until one run takes at least ``min_time_ns`` on ``ctx.clock``."""
    loops = 1
    while True:
        ctx.loops = loops
        start = ctx.clock()
        _measure(benchmark, ctx, None)
        elapsed = ctx.clock() - start
        if elapsed >= min_time_ns or loops >= MAX_LOOPS:
            return loops
        loops *= 2


def run_process(
    benchmark: Benchmark,
    *,
    process: int,
    loops: int,
    warmups: int,
    values: int,
    min_time_ns: int,
    quick: bool,
    clock: Clock = time.perf_counter_ns,
) -> ProcessRun:
    """Measure one benchmark as one worker process does: set up, calibrate, warm up, measure.

    ``loops=0`` asks for calibration (for benchmarks with ``calibrate = True``).

    Raises:
        BenchmarkError: if the benchmark raises or returns inconsistent metrics.
    """
    ctx = RunContext(loops=1, quick=quick, clock=clock, process=process)
    probe = machine_probe(clock)
    try:
        benchmark.setup(ctx)
    except Exception as exc:
        raise BenchmarkError(
            f"benchmark {benchmark.name!r} failed in setup: {type(exc).__name__}: {exc}"
        ) from exc
    try:
        if benchmark.calibrate:
            loops = loops or calibrate_loops(benchmark, ctx, min_time_ns)
        else:
            loops = 1
        ctx.loops = loops
        expected: list[str] | None = None
        warm: list[tuple[Metrics, ...]] = []
        for _ in range(warmups):
            run = _measure(benchmark, ctx, expected)
            expected = [m.name for m in run]
            warm.append(tuple(run))
        measured: list[tuple[Metrics, ...]] = []
        for _ in range(values):
            run = _measure(benchmark, ctx, expected)
            expected = [m.name for m in run]
            measured.append(tuple(run))
    finally:
        benchmark.teardown()
    return ProcessRun(process, loops, tuple(warm), tuple(measured), probe)


def _run_worker(
    suite_spec: str,
    bench: str,
    *,
    process: int,
    loops: int,
    options: RunOptions,
) -> ProcessRun:
    with tempfile.TemporaryDirectory(prefix="perf-bench-") as tmp:
        output = Path(tmp) / "run.json"
        command = [
            sys.executable,
            "-m",
            "vmkit.perf_bench.worker",
            "--suite-spec",
            suite_spec,
            "--bench",
            bench,
            "--process",
            str(process),
            "--loops",
            str(loops),
            "--warmups",
            str(options.warmups),
            "--values",
            str(options.values),
            "--min-time-ns",
            str(int(options.min_time_s * 1e9)),
            "--output",
            str(output),
        ]
        if options.quick:
            command.append("--quick")
        logger.debug("worker_started", bench=bench, process=process, loops=loops)
        # The hash seed is left random on purpose: varying it between processes is part of what
        # several processes sample.
        try:
            completed = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=options.worker_timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchmarkError(
                f"benchmark {bench!r}: worker process {process} did not finish within "
                f"{options.worker_timeout_s:g} s and was killed"
            ) from exc
        if completed.returncode != 0:
            lines = [line for line in completed.stderr.splitlines() if line.strip()]
            reason = lines[-1] if lines else f"exit status {completed.returncode}"
            raise BenchmarkError(f"benchmark {bench!r}: worker process {process} failed: {reason}")
        return ProcessRun.from_dict(json.loads(output.read_text(encoding="utf-8")))


def run_schedule(
    benchmarks: Sequence[Benchmark],
    options: RunOptions,
    *,
    suite_spec: str | None,
    clock: Clock = time.perf_counter_ns,
    progress: Progress | None = None,
) -> dict[str, list[ProcessRun]]:
    """Run every benchmark in ``options.processes`` interleaved rounds; return runs by name.

    Args:
        benchmarks: the benchmarks to run (names must be unique).
        options: how much to measure and where.
        suite_spec: ``module:function`` a worker imports to rebuild the suite (needed for
            ``isolation="process"``).
        clock: the clock for inline runs (workers use ``perf_counter_ns``).
        progress: called after each process run.

    Raises:
        BenchmarkError: if a benchmark fails, or process isolation is asked without a spec.
    """
    if options.isolation == "process" and suite_spec is None:
        raise BenchmarkError(
            "this suite was built in the calling process and cannot be rebuilt in a worker; "
            "register it as 'module:function' or run with isolation='inline'"
        )
    rng = random.Random(options.seed)
    runs: dict[str, list[ProcessRun]] = {b.name: [] for b in benchmarks}
    loops: dict[str, int] = {b.name: 0 for b in benchmarks}
    total = options.processes * len(benchmarks)
    done = 0
    min_time_ns = int(options.min_time_s * 1e9)
    for process in range(options.processes):
        order = list(benchmarks)
        rng.shuffle(order)
        for benchmark in order:
            if progress is not None:
                progress(
                    f"{benchmark.name} (process {process + 1}/{options.processes})", done, total
                )
            if options.isolation == "inline":
                run = run_process(
                    benchmark,
                    process=process,
                    loops=loops[benchmark.name],
                    warmups=options.warmups,
                    values=options.values,
                    min_time_ns=min_time_ns,
                    quick=options.quick,
                    clock=clock,
                )
            else:
                assert suite_spec is not None
                run = _run_worker(
                    suite_spec,
                    benchmark.name,
                    process=process,
                    loops=loops[benchmark.name],
                    options=options,
                )
            loops[benchmark.name] = run.loops
            runs[benchmark.name].append(run)
            done += 1
            logger.debug("process_run_finished", bench=benchmark.name, process=process)
    if progress is not None:
        progress("done", done, total)
    return runs
