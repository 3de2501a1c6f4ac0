"""Scheduler benchmark: context switch, steal latency, threads backend cost, load imbalance.

Run from the repository root:

    python packages/coroutine-scheduler/benchmarks/bench_switch.py [--quick] [--json]

The measuring lives in ``vmkit.coroutine_scheduler.measure`` (perf-bench wraps the same functions);
this script only configures logging, calls them and prints the numbers with the targets of the
design (docs/coroutine-scheduler/design.md). Medians of several repeats; the asyncio reference is
measured in the same process so the ratio compares like with like.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys

import structlog

from vmkit.coroutine_scheduler import __version__
from vmkit.coroutine_scheduler.measure import run_suite

TARGETS = {
    "switch_inline_generator_ns": ("<", 500.0),
    "asyncio_over_inline_generator": (">=", 3.0),
    "steal_batch_ns": ("<", 5000.0),
    "asyncio_over_lock_handoff": (">=", 3.0),
    "asyncio_over_channel_pair": (">=", 3.0),
}

LABELS = {
    "switch_inline_generator_ns": "context switch, inline, stats on, generators (ns)",
    "switch_inline_async_ns": "context switch, inline, stats on, async def + yield_now (ns)",
    "switch_asyncio_ns": "asyncio task switch, sleep(0) ping-pong (ns)",
    "asyncio_over_inline_generator": "asyncio / inline (generators)",
    "asyncio_over_inline_async": "asyncio / inline (async def)",
    "steal_batch_ns": "steal of a batch (64 of 128 coroutines) (ns)",
    "switch_threads_1vcpu_ns": "threads backend, 1 vCPU, per switch (ns)",
    "switch_threads_2vcpu_ns": "threads backend, 2 vCPUs, per switch (ns)",
    "cv_uniform": "load imbalance CV, uniform work",
    "cv_skewed": "load imbalance CV, all placed on vCPU 0, stealing on",
    "cv_skewed_no_stealing": "load imbalance CV, all on vCPU 0, stealing off",
    "max_over_mean_skewed": "max/mean busy, all on vCPU 0, stealing on",
    "lock_handoff_ns": "Lock handed between two coroutines, inline (ns)",
    "asyncio_lock_handoff_ns": "asyncio.Lock handed between two tasks (ns)",
    "asyncio_over_lock_handoff": "asyncio / inline (lock handoff)",
    "channel_pair_ns": "channel send + receive, one-slot buffer, inline (ns)",
    "asyncio_queue_pair_ns": "asyncio.Queue(1) put + get (ns)",
    "asyncio_over_channel_pair": "asyncio / inline (channel pair)",
}


def main() -> int:
    """Measure and print; the exit status is 0 even if a target is missed (it is reported)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    numbers = run_suite(quick=args.quick)
    if args.json:
        print(json.dumps(numbers, indent=2, sort_keys=True))
        return 0
    print(
        f"coroutine-scheduler {__version__}, Python {platform.python_version()} "
        f"({sys.implementation.name}), {platform.machine()}"
    )
    for key, value in numbers.items():
        line = f"{LABELS.get(key, key):<62} {value:>12.3f}"
        if key in TARGETS:
            op, bound = TARGETS[key]
            ok = value < bound if op == "<" else value >= bound
            line += f"   target {op} {bound:g}: {'met' if ok else 'MISSED'}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
