"""The ``async-executor`` command line.

``async-executor run [--engine interp|jit|hybrid|native] [--jit-threshold N] [--dump-jit]
[--code-cache CACHE] [--native-cache DIR | --no-native-cache] [--stats] [--stats-format text|json]
[--max-instructions N] [--root DIR] PROGRAM [ARGS...]`` loads a static RISC-V 64 Linux program and
runs it with the host's stdin, stdout and stderr; the process exits with the guest's status.
``async-executor aot PROGRAM -o CACHE`` translates the blocks reachable from the program's entry
point and symbols ahead of time into a code cache that ``run --code-cache`` loads. A problem (a file
that is not a runnable program, a guest fault, an exhausted budget) is one line on stderr starting
with ``async-executor:``, never a traceback; an unusable code cache is one warning line and the run
goes on without it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from vmkit.async_executor.__about__ import __version__
from vmkit.async_executor._logging import (
    add_logging_options,
    configure_logging,
    get_logger,
    stdlib_logger,
)
from vmkit.async_executor._metrics_server import add_metrics_options
from vmkit.async_executor.engine._defaults import DEFAULT_THRESHOLD
from vmkit.async_executor.errors import AsyncExecutorError, ElfLoadError, WallClockExceeded
from vmkit.async_executor.isa._isa import RV64GC, Isa, IsaError
from vmkit.async_executor.limits import DEFAULT_LIMITS, WALL_CLOCK_EXCEEDED_STATUS, GuestLimits
from vmkit.async_executor.machine._machine import Machine

if TYPE_CHECKING:
    from vmkit.async_executor.engine import Executor
    from vmkit.async_executor.linux import Linux

__all__ = ["DEFAULT_ENGINE", "ENGINES", "build_parser", "host_environment", "main"]

log = get_logger(__name__)

#: Exit status when the program cannot be executed (as a shell reports it).
STATUS_CANNOT_EXECUTE = 126
#: Exit status when the program does not exist.
STATUS_NOT_FOUND = 127
#: Exit status when metrics were asked for but cannot be served (EX_UNAVAILABLE).
STATUS_METRICS_UNAVAILABLE = 69
#: Exit status when an output file cannot be created (EX_CANTCREAT).
STATUS_CANNOT_CREATE = 73
#: Exit status for options that do not fit together (as argparse reports usage errors).
STATUS_USAGE = 2
#: Exit status for an error of this tool itself (EX_SOFTWARE).
STATUS_INTERNAL_ERROR = 70


def _interpreter(machine: Machine[Linux]) -> Executor:
    from vmkit.async_executor.engine import InterpreterExecutor

    executor: Executor = InterpreterExecutor(machine)
    return executor


def _jit(machine: Machine[Linux]) -> Executor:
    from vmkit.async_executor.engine import JitExecutor

    executor: Executor = JitExecutor(machine)
    return executor


def _hybrid(machine: Machine[Linux]) -> Executor:
    from vmkit.async_executor.engine import HybridExecutor

    executor: Executor = HybridExecutor(machine)
    return executor


def _native(machine: Machine[Linux]) -> Executor:
    # Raises NativeUnavailable (one line naming the extra) when llvmlite is missing.
    from vmkit.async_executor.engine.native import NativeExecutor

    executor: Executor = NativeExecutor(machine)
    return executor


#: Engines by ``--engine`` name: a factory from a loaded Machine to an executor. The JIT options
#: are applied to what the factory returns: ``--jit-threshold`` to an executor with a
#: ``threshold``, ``--dump-jit`` and ``--code-cache`` to one with a translation ``context``.
ENGINES: dict[str, Callable[[Machine[Linux]], Executor]] = {
    "hybrid": _hybrid,
    "interp": _interpreter,
    "jit": _jit,
    "native": _native,
}
#: The engine ``run`` uses when ``--engine`` is not given.
DEFAULT_ENGINE = "hybrid"


def _non_negative(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _gdb_address(text: str) -> tuple[str, int]:
    """``[HOST:]PORT`` of --gdb (HOST defaults to loopback)."""
    host, _, port = text.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected [HOST:]PORT, got {text!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {number}")
    return host.strip("[]") or "127.0.0.1", number


def _positive(text: str) -> int:
    value = _non_negative(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


_SIZE_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _size(text: str) -> int:
    """A byte count: a whole number with an optional K, M, G or T suffix (powers of 1024)."""
    cleaned = text.strip().upper().removesuffix("IB").removesuffix("B")
    suffix = cleaned[-1:] if cleaned[-1:] in _SIZE_SUFFIXES else ""
    number = cleaned[: len(cleaned) - len(suffix)]
    try:
        value = int(number) * _SIZE_SUFFIXES[suffix]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (examples: 512M, 4G)") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def add_limit_options(parser: argparse.ArgumentParser) -> None:
    """The resource-limit options ``run`` (and any command that runs a guest) takes."""
    d = DEFAULT_LIMITS
    parser.add_argument(
        "--max-memory",
        type=_size,
        default=d.memory_bytes,
        metavar="SIZE",
        help=f"guest memory mapped in total; mmap fails with ENOMEM past it "
        f"(default: {d.memory_bytes >> 30}G)",
    )
    parser.add_argument(
        "--max-open-files",
        type=_positive,
        default=d.open_files,
        metavar="N",
        help=f"guest file descriptors (RLIMIT_NOFILE; default: {d.open_files}, "
        f"hard limit {d.open_files_hard})",
    )
    parser.add_argument(
        "--max-disk",
        type=_size,
        default=d.disk_bytes,
        metavar="SIZE",
        help=f"bytes the guest's private /tmp may hold; writes past it fail with EDQUOT "
        f"(default: {(d.disk_bytes or 0) >> 20}M)",
    )
    parser.add_argument(
        "--wall-time",
        type=_seconds,
        default=d.wall_seconds,
        metavar="SECONDS",
        help=f"stop the guest after this much wall-clock time "
        f"(exit status {WALL_CLOCK_EXCEEDED_STATUS}; default: no limit)",
    )


def limits_from_args(args: argparse.Namespace) -> GuestLimits:
    """The GuestLimits the parsed limit options ask for (a usage error when inconsistent)."""
    hard = max(DEFAULT_LIMITS.open_files_hard, args.max_open_files)
    return GuestLimits(
        memory_bytes=args.max_memory,
        open_files=args.max_open_files,
        open_files_hard=hard,
        disk_bytes=args.max_disk,
        max_instructions=args.max_instructions,
        wall_seconds=args.wall_time,
    )


def _isa(text: str) -> Isa:
    try:
        return Isa.parse(text)
    except IsaError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _Formatter(argparse.HelpFormatter):
    """argparse's help formatter, told the terminal's width: argparse would import shutil to
    ask, a few milliseconds of every start-up, since it builds a formatter for each option."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:  # fmt: skip
        if width is None:
            width = _terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


def _terminal_columns() -> int:
    """What shutil.get_terminal_size() says: $COLUMNS, else stdout's terminal, else 80."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser (and its subcommands') with :class:`_Formatter`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every subcommand."""
    parser = _Parser(
        prog="async-executor",
        description="Run static RISC-V RV64GC Linux programs in pure Python.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_logging_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = sub.add_parser(
        "run",
        help="run a static RISC-V 64 Linux program",
        description="Run a static RISC-V 64 Linux program; exit with its status.",
    )
    run.add_argument(
        "--engine",
        choices=sorted(ENGINES),
        default=DEFAULT_ENGINE,
        help="executor: interpreter, JIT, tiered hybrid of both, or native (hot regions as "
        f"machine code; needs the [native] extra) (default: {DEFAULT_ENGINE})",
    )
    run.add_argument(
        "--jit-threshold",
        type=_positive,
        default=None,
        metavar="N",
        help="hybrid/native: translate (native: compile) a block's code once it has run N "
        f"times (default: {DEFAULT_THRESHOLD}; native: 200)",
    )
    run.add_argument(
        "--native",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="hybrid: compile the hottest translated regions to machine code (needs the "
        "[native] extra; default: on when llvmlite is installed)",
    )
    run.add_argument(
        "--native-threshold",
        type=_positive,
        default=None,
        metavar="N",
        help="hybrid: samples (one per 100000 translated instructions) of a region before it "
        "is compiled natively (default: 4)",
    )
    run.add_argument(
        "--native-warmup",
        type=_non_negative,
        default=None,
        metavar="N",
        help="hybrid: translated and interpreted instructions before the first native compile, "
        "which starts LLVM (default: 8000000)",
    )
    run.add_argument(
        "--dump-jit",
        action="store_true",
        help="jit/hybrid: write the Python source of every translated block to stderr",
    )
    run.add_argument(
        "--code-cache",
        default=None,
        metavar="CACHE",
        help="jit/hybrid: take translated blocks from this cache (made by `aot`)",
    )
    native_cache = run.add_mutually_exclusive_group()
    native_cache.add_argument(
        "--native-cache",
        default=None,
        metavar="DIR",
        help="native: keep compiled regions in this directory (default: $VMKIT_NATIVE_CACHE, "
        "else ~/.cache/vmkit/native)",
    )
    native_cache.add_argument(
        "--no-native-cache",
        action="store_true",
        help="native: compile every region, reading and writing no code cache",
    )
    run.add_argument("--stats", action="store_true", help="print statistics to stderr at the end")
    run.add_argument(
        "--stats-format", choices=("text", "json"), default="text", help="format of --stats"
    )
    run.add_argument(
        "--max-instructions",
        type=_non_negative,
        default=None,
        metavar="N",
        help="stop the guest after N instructions (exit status 124)",
    )
    add_limit_options(run)
    run.add_argument(
        "--isa",
        type=_isa,
        default=RV64GC,
        metavar="ISA",
        help="the extensions the hart implements, as an ISA string such as rv64imac; "
        "instructions of others are illegal (SIGILL) (default: rv64gc)",
    )
    run.add_argument(
        "--root", default=".", metavar="DIR", help="directory the guest sees as / (default: .)"
    )
    add_metrics_options(run, serving="metrics on this port while the guest runs")
    run.add_argument(
        "--gdb",
        type=_gdb_address,
        metavar="[HOST:]PORT",
        help="wait for gdb-multiarch on this port (HOST: 127.0.0.1 unless given) before the "
        "first instruction; `target remote HOST:PORT` in gdb (the wall-clock limit is off)",
    )
    run.add_argument("program", metavar="PROGRAM", help="the ELF executable")
    run.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS", help="guest arguments")
    run.set_defaults(handler=_run)
    aot = sub.add_parser(
        "aot",
        help="translate a program ahead of time into a code cache",
        description=(
            "Translate the blocks reachable from the program's entry point and the functions of "
            "its symbol table into a code cache for `run --code-cache`. With --profile, run the "
            "program once (with ARGS; its output is discarded) and cache the blocks that run "
            "translated instead: a far smaller cache holding the code runs like it use."
        ),
    )
    aot.add_argument(
        "-o", "--output", required=True, metavar="CACHE", help="the code cache file to write"
    )
    aot.add_argument(
        "--max-blocks",
        type=_positive,
        default=None,
        metavar="N",
        help="translate at most N blocks, those nearest the entry points first",
    )
    aot.add_argument(
        "--profile",
        action="store_true",
        help="cache the blocks a run of the program uses instead of all reachable ones",
    )
    aot.add_argument(
        "--max-instructions",
        type=_positive,
        default=None,
        metavar="N",
        help="--profile: stop the profiling run after N guest instructions",
    )
    add_limit_options(aot)
    aot.add_argument(
        "--root",
        default=".",
        metavar="DIR",
        help="--profile: directory the guest sees as / (default: .)",
    )
    aot.add_argument("program", metavar="PROGRAM", help="the ELF executable")
    aot.add_argument(
        "args",
        nargs="*",
        metavar="ARGS",
        help="--profile: guest arguments (after `--` when one starts with a dash)",
    )
    aot.set_defaults(handler=_aot)
    batch = sub.add_parser(
        "batch",
        help="run many guest programs on warm worker processes",
        description="Run every job of MANIFEST (JSON Lines, or TOML with [[job]] tables) on a "
        "pool of worker processes that import once and run many guests. Results stream to a "
        "JSON Lines file as jobs finish; run again with the same file to resume. Exit status: "
        "0 when every job passed, 1 when one failed, crashed or timed out, 2 for a bad manifest.",
    )
    batch.add_argument("manifest", metavar="MANIFEST", help="the jobs (.jsonl, or .toml)")
    batch.add_argument(
        "--workers",
        type=_positive,
        default=None,
        metavar="N",
        help="worker processes (default: the CPUs this process may use); with --cluster, "
        "tasks in flight (default: the cluster's CPUs)",
    )
    batch.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="run the jobs as tasks on a Ray cluster: ray://HOST:PORT, HOST:PORT, or auto "
        "(the cluster this machine belongs to); needs the [ray] extra",
    )
    batch.add_argument(
        "--results",
        metavar="FILE",
        help="JSON Lines results, appended as jobs finish; existing results are skipped "
        "(default: MANIFEST with .results.jsonl)",
    )
    batch.add_argument("--junit", metavar="FILE", help="also write JUnit XML for CI systems")
    batch.add_argument(
        "--engine",
        choices=sorted(ENGINES),
        default=DEFAULT_ENGINE,
        help=f"engine of jobs that do not name one (default: {DEFAULT_ENGINE})",
    )
    batch.add_argument("--quiet", action="store_true", help="no progress display")
    add_metrics_options(batch, serving="metrics on this port while the batch runs")
    batch.set_defaults(handler=_batch)
    return parser


def _batch(args: argparse.Namespace) -> int:
    from pathlib import Path  # start-up: the batch command's imports are its own

    from vmkit.async_executor.batch import (
        ManifestError,
        RayUnavailableError,
        load_manifest,
        run_batch,
    )

    try:
        jobs = load_manifest(args.manifest)
    except ManifestError as exc:
        _error(str(exc))
        return STATUS_USAGE
    results = args.results or str(Path(args.manifest).with_suffix(".results.jsonl"))
    try:
        Path(results).open("a").close()  # checked before any job runs
    except OSError as exc:
        _error(f"cannot write the results file: {exc}")
        return STATUS_USAGE
    server = collector = None
    if args.metrics_port is not None:
        served = _serve_metrics(args, lambda p: p.BatchCollector(registry=None))
        if served is None:
            return STATUS_METRICS_UNAVAILABLE
        server, collector = served
    if args.cluster is not None:
        # Ray logs its connection steps at INFO on the terminal (the summary says what matters).
        # It resets its "ray" logger when it connects, but leaves the levels of its modules'.
        for name in ("ray.client_builder", "ray._private.worker"):
            stdlib_logger(name).setLevel("WARNING")
    progress = None if args.quiet else _batch_progress()
    try:
        with progress or contextlib.nullcontext() as bar:
            summary = run_batch(
                jobs,
                results,
                workers=args.workers,
                engine=args.engine,
                cluster=args.cluster,
                progress=None if bar is None else bar.update,
                on_start=None if collector is None else collector.watch,
            )
    except RayUnavailableError as exc:
        _error(str(exc))
        return STATUS_USAGE
    finally:
        if server is not None:
            server.stop()
    return _batch_report(args, summary, jobs, results)


def _batch_report(args: argparse.Namespace, summary: Any, jobs: list[Any], results: str) -> int:
    """FAIL lines, the JUnit file and the summary line of a finished batch; its exit status."""
    import json
    from pathlib import Path

    from vmkit.async_executor.batch import write_junit

    for record in summary.results:
        if not record.get("passed"):
            why = record.get("error") or (
                f"status {record.get('status')}, stdout "
                f"{'as expected' if _stdout_ok(record, jobs) else 'differs'}"
            )
            sys.stderr.write(f"FAIL {record['id']} ({record.get('outcome')}): {why}\n")
    if args.junit:
        records = []
        for line in Path(results).read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                records.append(json.loads(line))
        write_junit(records, args.junit)
    sys.stderr.write(f"{summary.line()}; results in {results}\n")
    return 0 if summary.ok else 1


def _serve_metrics(
    args: argparse.Namespace, make_collector: Callable[[Any], Any]
) -> tuple[Any, Any] | None:
    """(server, collector) serving ``make_collector(prometheus)``'s metrics on
    ``--metrics-port``, or None after saying why it cannot."""
    from vmkit.async_executor import prometheus  # only when metrics are asked for

    try:
        collector = make_collector(prometheus)
        server = prometheus.start_metrics_server(
            args.metrics_port, args.metrics_addr, collectors=[collector]
        )
    except (prometheus.MetricsUnavailableError, OSError) as exc:
        _error(str(exc))
        return None
    sys.stderr.write(f"async-executor: serving metrics on {server.url}\n")
    sys.stderr.flush()
    return server, collector


def _stdout_ok(record: dict[str, Any], jobs: list[Any]) -> bool:
    job = next((j for j in jobs if j.id == record["id"]), None)
    return job is None or job.expected_stdout is None or record.get("stdout") == job.expected_stdout


class _batch_progress:
    """Progress of a batch on stderr: a rich bar on a terminal, one line per job otherwise."""

    def __init__(self) -> None:
        self._bar: Any = None

    def __enter__(self) -> _batch_progress:
        if sys.stderr.isatty():
            try:
                from rich.progress import Progress
            except ImportError:  # rich is optional here: plain lines instead
                return self
            self._bar = Progress(transient=True)
            self._task = self._bar.add_task("batch", total=None)
            self._bar.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def update(self, done: int, total: int, job: Any, record: dict[str, Any]) -> None:
        verdict = "pass" if record.get("passed") else record.get("outcome", "fail")
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total, description=str(job.id))
        else:
            sys.stderr.write(f"[{done}/{total}] {job.id}: {verdict}\n")


def _error(message: str) -> None:
    sys.stderr.write(f"async-executor: {message}\n")
    sys.stderr.flush()


def _describe(message: str, signum: int | None) -> str:
    """Name the signal in a termination message: ``guest killed by SIGABRT (signal 6)``."""
    if signum is None:
        return message
    try:
        name = signal.Signals(signum).name
    except ValueError:
        return message
    return message.replace(f"by signal {signum}", f"by {name} (signal {signum})")


def _stats(
    args: argparse.Namespace, machine: Machine[Linux], executor: Executor, status: int
) -> None:
    mem = machine.memory
    data: dict[str, Any] = {"engine": args.engine, "exit_status": status}
    data.update(executor.stats.as_dict())
    data.update(
        {
            "tlb_accesses": mem.tlb_accesses,
            "tlb_misses": mem.tlb_misses,
            "tlb_hit_rate": mem.tlb_hit_rate,
            "syscalls": sum(machine.linux.syscall_counts.values()),
        }
    )
    sections: dict[str, dict[str, Any]] = {}
    tier_stats = getattr(executor, "tier_stats", None)
    if isinstance(tier_stats, dict):
        total = max(1, executor.stats.instructions)
        for tier, counts in sorted(tier_stats.items()):
            sections[f"tier {tier}"] = {
                "executions": counts.executions,
                "instructions": counts.instructions,
                "instruction_share": counts.instructions / total,
            }
    context = getattr(executor, "context", None)
    if context is not None:
        sections["jit"] = context.stats().as_dict()
    sections.update(_native_sections(executor))
    linux = machine.linux
    threads = linux.threads
    if threads.created:
        sections["threads"] = {
            "created": threads.created,
            "switches": threads.switches,
            "futex_waits": threads.futex_waits,
            "futex_wakes": threads.futex_wakes,
            **{
                f"thread {t.tid}": (
                    f"{t.instructions} instructions, {t.switches} times run, "
                    f"{t.futex_waits} futex waits"
                )
                for t in threads.all_threads()
            },
        }
    sections["limits"] = {
        **{f"limit_{k}": v for k, v in linux.limits.as_dict().items()},
        **linux.limit_counters.as_dict(),
        "disk_bytes_used": linux.disk_used,
        "memory_bytes_mapped": machine.memory.mapped_bytes,
    }
    if args.stats_format == "json":
        if "threads" in sections:
            sections["threads"] = {
                **{k: v for k, v in sections["threads"].items() if not k.startswith("thread ")},
                "per_thread": [
                    {
                        "tid": t.tid,
                        "instructions": t.instructions,
                        "times_run": t.switches,
                        "futex_waits": t.futex_waits,
                    }
                    for t in threads.all_threads()
                ],
            }
        if "native tier-up" in sections:
            data["native_tierup"] = sections["native tier-up"]
        for name in ("jit", "native", "limits", "threads"):
            if name in sections:
                data[name] = sections[name]
        tiers = {name[5:]: v for name, v in sections.items() if name.startswith("tier ")}
        if tiers:
            data["tiers"] = tiers
        import json

        sys.stderr.write(json.dumps(data, sort_keys=True) + "\n")
    else:
        lines = ["async-executor statistics:", *_stat_lines(data, "  ")]
        for name, values in sections.items():
            lines.append(f"  {name}:")
            lines += _stat_lines(values, "    ")
        sys.stderr.write("\n".join(lines) + "\n")
    sys.stderr.flush()


def _native_sections(executor: Executor) -> dict[str, dict[str, Any]]:
    """The native tier's counters (``--engine native``, or the hybrid's third tier once it
    compiled something) and the hybrid's tier-up counters."""
    sections = {}
    native = getattr(executor, "native_stats", None)
    if native is not None:
        sections["native"] = native.as_dict()
    tierup = getattr(executor, "native_tier", None)
    if tierup is not None:
        sections["native tier-up"] = tierup.as_dict()
    return sections


def _stat_lines(values: dict[str, Any], indent: str) -> list[str]:
    lines = []
    for key, value in values.items():
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        lines.append(f"{indent}{key:<28} {shown}")
    return lines


def host_environment() -> list[bytes]:
    """The environment this process was started with, in its original order.

    Python may add variables to ``os.environ`` at start-up (PEP 538 sets LC_CTYPE when the locale
    is C), which qemu-riscv64 would not pass on; ``/proc/self/environ`` still holds what exec gave
    us, so the guest sees exactly that. Elsewhere ``os.environ`` is used.
    """
    try:
        with open("/proc/self/environ", "rb") as fh:
            raw = fh.read()
    except OSError:
        return [os.fsencode(f"{k}={v}") for k, v in os.environ.items()]
    return [item for item in raw.split(b"\0") if item]


def _configure(args: argparse.Namespace, machine: Machine[Linux], executor: Executor) -> str | None:
    """Apply the JIT options to ``executor``; returns a usage problem, or None."""
    context: Any = getattr(executor, "context", None)
    if args.jit_threshold is not None:
        if not hasattr(executor, "threshold"):
            return f"--jit-threshold needs --engine hybrid, not {args.engine}"
        executor.threshold = args.jit_threshold
    native = getattr(args, "native", None)
    native_threshold = getattr(args, "native_threshold", None)
    native_warmup = getattr(args, "native_warmup", None)
    if native is not None or native_threshold is not None or native_warmup is not None:
        if not hasattr(executor, "use_native"):
            option = "--[no-]native" if native is not None else "--native-threshold/-warmup"
            return f"{option} needs --engine hybrid, not {args.engine}"
        executor.use_native(native)  # raises NativeUnavailable without llvmlite
        tier = getattr(executor, "native_tier", None)
        if tier is not None and native_threshold is not None:
            tier.threshold = native_threshold
        if tier is not None and native_warmup is not None:
            tier.warmup = native_warmup
    if context is None and (args.dump_jit or args.code_cache is not None):
        option = "--dump-jit" if args.dump_jit else "--code-cache"
        return f"{option} needs --engine jit or hybrid, not {args.engine}"
    if args.dump_jit:
        context.on_translate = _dump_block
    problem = _configure_native_cache(args, executor)
    if problem is not None:
        return problem
    if args.code_cache is not None:
        from vmkit.async_executor.engine import load_code_cache

        # An unusable cache logs one warning saying why; the run goes on translating.
        load_code_cache(context, machine.memory, args.code_cache)
    return None


def _configure_native_cache(args: argparse.Namespace, executor: Executor) -> str | None:
    """``--native-cache``/``--no-native-cache`` for the native engine or the hybrid's native
    tier; returns a usage problem, or None."""
    if args.native_cache is None and not args.no_native_cache:
        return None
    option = "--native-cache" if args.native_cache is not None else "--no-native-cache"
    tier = getattr(executor, "native_tier", None)
    if tier is None and not hasattr(executor, "native_stats"):
        return f"{option} needs --engine native, or hybrid with its native tier"
    from vmkit.async_executor.engine.native._cache import resolve_cache

    # An unusable directory logs one warning saying why; the run goes on compiling.
    cache = resolve_cache(False if args.no_native_cache else args.native_cache)
    if tier is not None:
        tier.cache = cache
    else:
        executor.cache = cache  # type: ignore[attr-defined]  # a NativeExecutor
    return None


def _dump_block(block: Any) -> None:
    """``--dump-jit``: one translated block's source, headed by a comment naming it."""
    sys.stderr.write(
        f"# jit block {block.pc:#x}: {len(block.pcs)} instructions\n{block.source.rstrip()}\n\n"
    )
    sys.stderr.flush()


def _load(
    args: argparse.Namespace, argv: list[str], stdio: tuple[int, int, int] = (0, 1, 2)
) -> Machine[Linux] | int:
    """The loaded program, or the exit status after a one-line error."""
    from vmkit.async_executor.loader import load_program

    program: str = args.program
    if not os.path.exists(program):
        _error(f"{program}: no such file")
        return STATUS_NOT_FOUND
    try:
        return load_program(
            program,
            argv,
            env=host_environment(),
            root=args.root,
            stdio=stdio,
            limits=limits_from_args(args),
            isa=getattr(args, "isa", RV64GC),
        )
    except ElfLoadError as exc:
        _error(str(exc))
        return STATUS_CANNOT_EXECUTE


def _run(args: argparse.Namespace) -> int:
    machine = _load(args, [args.program, *args.args])
    if isinstance(machine, int):
        return machine
    try:
        try:
            executor = ENGINES[args.engine](machine)
        except AsyncExecutorError as exc:  # an engine this installation lacks
            _error(str(exc))
            return STATUS_USAGE
        try:
            problem = _configure(args, machine, executor)
        except AsyncExecutorError as exc:  # --native without the extra
            _error(str(exc))
            return STATUS_USAGE
        if problem is not None:
            _error(problem)
            return STATUS_USAGE
        if args.gdb is not None:
            status = _run_under_gdb(args, machine, executor)
        elif args.metrics_port is None:
            status = _drive(args, machine, executor)
        else:
            status = _run_with_metrics(args, machine, executor)
        term = machine.termination
        if term is not None and term.reason != "exit":
            _error(_describe(term.message, term.signal))
        if args.stats:
            _stats(args, machine, executor, status)
        return status
    finally:
        machine.linux.close()


def _run_under_gdb(args: argparse.Namespace, machine: Machine[Linux], executor: Executor) -> int:
    """Serve one gdb session for the guest; its exit status when the session ends."""
    from vmkit.async_executor.gdb import GdbStub

    host, port = args.gdb
    machine.linux.deadline = None  # a person at a debugger is not a runaway guest

    def ready(bound_host: str, bound_port: int) -> None:
        sys.stderr.write(f"async-executor: waiting for gdb on {bound_host}:{bound_port}\n")
        sys.stderr.flush()

    try:
        return GdbStub(machine, executor).serve(host, port, ready=ready)
    except OSError as exc:
        _error(f"cannot serve gdb on {host}:{port}: {exc}")
        return STATUS_USAGE


def _drive(args: argparse.Namespace, machine: Machine[Linux], executor: Executor) -> int:
    """Run the guest (the executor keeps a wall-clock limit itself, looking at the clock between
    slices, so a guest that makes no system call is still stopped on time)."""
    return executor.run(machine, max_instructions=args.max_instructions)


#: Guest instructions between two updates of the served counters when an executor runs in
#: slices: about a tenth of a second of guest time on the JIT, so a 1 s scrape sees progress.
_METRICS_SLICE = 2_000_000


def _run_with_metrics(args: argparse.Namespace, machine: Machine[Linux], executor: Executor) -> int:
    """Run the guest while serving its metrics; executors that can run in slices do so."""
    served = _serve_metrics(
        args, lambda p: p.ExecutorCollector([executor], machines=[machine], registry=None)
    )
    if served is None:
        return STATUS_METRICS_UNAVAILABLE
    server = served[0]
    try:
        slices = getattr(executor, "coroutine", None)
        if slices is None:
            return executor.run(machine, max_instructions=args.max_instructions)
        # Executors publish their counters once per run, so a long run() would look frozen to
        # Prometheus; slices publish them as the guest goes, with identical results.
        steps = slices(
            machine, slice_instructions=_METRICS_SLICE, max_instructions=args.max_instructions
        )
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return int(done.value)
            try:
                machine.check_wall_clock()
            except WallClockExceeded as exc:
                steps.close()
                return machine.terminate(exc)
    finally:
        server.stop()


def _aot(args: argparse.Namespace) -> int:
    """``aot PROGRAM -o CACHE``: translate reachable blocks and save them."""
    from vmkit.async_executor.engine import AsyncExecutionContext, build_code_cache, save_code_cache
    from vmkit.async_executor.engine._jit_aot import DEFAULT_MAX_AOT_BLOCKS, function_symbols
    from vmkit.async_executor.engine._signing import CacheTrustError

    if args.args and not args.profile:
        _error("guest arguments are only used with --profile")
        return STATUS_USAGE
    if args.profile:
        return _aot_profile(args)
    args.root = "."
    machine = _load(args, [args.program])
    if isinstance(machine, int):
        return machine
    try:
        with open(args.program, "rb") as fh:
            data = fh.read()
        entry = machine.hart.pc
        # Symbols are link-time addresses; a position-independent program was loaded elsewhere.
        base = entry - _elf_entry(data)
        entries = [entry, *(base + addr for addr in function_symbols(data))]
        context = AsyncExecutionContext()
        t0 = time.perf_counter()
        info = build_code_cache(
            context, machine.memory, entries, args.max_blocks or DEFAULT_MAX_AOT_BLOCKS
        )
        try:
            size = save_code_cache(info, machine.memory, args.output)
        except CacheTrustError as exc:
            _error(f"cannot sign the code cache: {exc}")
            return STATUS_CANNOT_CREATE
        except OSError as exc:
            _error(f"{args.output}: cannot write the code cache: {exc.strerror or exc}")
            return STATUS_CANNOT_CREATE
        elapsed = time.perf_counter() - t0
        sys.stdout.write(
            f"{args.output}: {len(info)} blocks from {len(entries)} entry points, "
            f"{size} bytes, {elapsed:.2f} s\n"
        )
        return 0
    finally:
        machine.linux.close()


def _aot_profile(args: argparse.Namespace) -> int:
    """``aot --profile PROGRAM ARGS -o CACHE``: run the program once, save the blocks it used."""
    from vmkit.async_executor.engine import AsyncExecutionContext, JitExecutor, save_code_cache
    from vmkit.async_executor.engine._jit_aot import profiled_code_cache
    from vmkit.async_executor.engine._signing import CacheTrustError

    with open(os.devnull, "wb") as sink:
        machine = _load(args, [args.program, *args.args], (0, sink.fileno(), sink.fileno()))
        if isinstance(machine, int):
            return machine
        try:
            context = AsyncExecutionContext()
            t0 = time.perf_counter()
            status = JitExecutor(machine, context).run(max_instructions=args.max_instructions)
            info = profiled_code_cache(context, machine.memory)
            try:
                size = save_code_cache(info, machine.memory, args.output)
            except CacheTrustError as exc:
                _error(f"cannot sign the code cache: {exc}")
                return STATUS_CANNOT_CREATE
            except OSError as exc:
                _error(f"{args.output}: cannot write the code cache: {exc.strerror or exc}")
                return STATUS_CANNOT_CREATE
            elapsed = time.perf_counter() - t0
        finally:
            machine.linux.close()
    sys.stdout.write(
        f"{args.output}: {len(info)} blocks used by a run of {args.program} "
        f"(exit status {status}, {machine.hart.instret} instructions), {size} bytes, "
        f"{elapsed:.2f} s\n"
    )
    return 0


def _elf_entry(data: bytes) -> int:
    """The entry point the ELF header of ``data`` names (before any load bias)."""
    return int.from_bytes(data[24:32], "little")


class _Stopped(BaseException):
    """SIGTERM or SIGHUP arrived: unwind (closing the guest's files and its private /tmp)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop_on_signals() -> dict[int, Any]:
    """Turn SIGTERM and SIGHUP into an orderly stop while a command runs (the main thread
    only: handlers cannot be set elsewhere); returns the handlers to put back."""
    previous: dict[int, Any] = {}

    def stop(signum: int, _frame: object) -> None:
        raise _Stopped(signum)

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGHUP):
            previous[signum] = signal.signal(signum, stop)
    return previous


def console_main() -> NoReturn:
    """The ``async-executor`` command and ``python -m vmkit.async_executor``: :func:`main` as
    the process, with the collector tuned for it and a quick exit."""
    import gc

    # A guest's blocks and translations (tens of thousands of closures) live until the process
    # ends, and the cyclic collector would walk them again and again: collect young objects a
    # fourteenth as often (the default threshold is 700). The engines make few cycles, so
    # memory hardly grows; a short guest runs about 5 ms sooner. The process's choice, not a
    # library's: main() leaves the collector alone.
    gc.set_threshold(10_000)
    _exit_quickly(main())


def _exit_quickly(status: int) -> NoReturn:
    """End the process as ``sys.exit(status)`` would, without the interpreter's teardown.

    Tearing down collects garbage once more and frees every object one by one: about 15 ms
    after a short guest, more than the guest itself ran. Once standard output and error are
    flushed and the atexit callbacks have run (temporary directories' finalizers, logging,
    multiprocessing, Ray), nothing of this process needs it. A failed flush, or a non-daemon
    thread still running, takes the ordinary way out, which reports or waits as Python does.
    """
    import atexit

    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if run_exitfuncs is None or any(t.is_alive() and not t.daemon for t in others):
        sys.exit(status)
    run_exitfuncs()  # and forgets them: a fallback to sys.exit below does not run them twice
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(status)
    os._exit(status)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line as a function: run the command ``argv`` names and return its exit
    status (:func:`console_main` is the process's entry point)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(json=args.log_json, level=args.log_level)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    previous = _stop_on_signals()
    try:
        return int(handler(args))
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except _Stopped as stop:
        _error(f"stopped by {signal.Signals(stop.signum).name}; the guest's files are cleaned up")
        return 128 + stop.signum
    except Exception as exc:
        # A bug of this tool, never the guest's doing: one line, details in the debug log.
        log.debug("internal_error", exc_info=True)
        _error(f"internal error: {type(exc).__name__}: {exc} (rerun with --log-level debug)")
        return STATUS_INTERNAL_ERROR
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
