"""Property-based checks: random programs give the same results on both backends."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from vmkit.coroutine_scheduler import Scheduler, VirtualClock, join, sleep, spawn, yield_now

# One program is a list of operations per coroutine: ("yield",), ("sleep", ms), ("child", n).
OPS = st.one_of(
    st.just(("yield",)),
    st.tuples(st.just("sleep"), st.integers(1, 5)),
    st.tuples(st.just("child"), st.integers(0, 4)),
)
PROGRAMS = st.lists(st.lists(OPS, max_size=8), min_size=1, max_size=12)


async def child(n: int) -> int:
    for _ in range(n):
        await yield_now()
    return n * 10


async def body(index: int, ops: list[tuple[Any, ...]]) -> int:
    acc = index
    for op in ops:
        if op[0] == "yield":
            await yield_now()
            acc += 1
        elif op[0] == "sleep":
            await sleep(op[1] / 1000)
            acc += 2
        else:
            acc += await join(await spawn(child, op[1]))
    return acc


def expected(index: int, ops: list[tuple[Any, ...]]) -> int:
    acc = index
    for op in ops:
        if op[0] == "yield":
            acc += 1
        elif op[0] == "sleep":
            acc += 2
        else:
            acc += op[1] * 10
    return acc


def run(programs: list[list[tuple[Any, ...]]], backend: str, vcpus: int, seed: int) -> list[int]:
    s = Scheduler(vcpus, backend=backend, seed=seed, clock=VirtualClock(), quantum=3)  # type: ignore[arg-type]
    cos = [s.spawn(body, i, ops) for i, ops in enumerate(programs)]
    s.run(timeout=60)
    stats = s.stats()
    assert stats.alive == 0
    assert stats.failed == 0
    return [c.result for c in cos]


class TestRandomPrograms:
    @settings(max_examples=30, deadline=None)
    @given(programs=PROGRAMS, vcpus=st.integers(1, 4), seed=st.integers(0, 2**32))
    def test_inline_results_match_the_sequential_oracle(
        self, programs: list[list[tuple[Any, ...]]], vcpus: int, seed: int
    ) -> None:
        """Whatever the placement and stealing, each coroutine computes what straight code does."""
        assert run(programs, "inline", vcpus, seed) == [
            expected(i, ops) for i, ops in enumerate(programs)
        ]

    @settings(max_examples=10, deadline=None)
    @given(programs=PROGRAMS, seed=st.integers(0, 2**32))
    def test_threads_results_match_the_sequential_oracle(
        self, programs: list[list[tuple[Any, ...]]], seed: int
    ) -> None:
        """The threads backend computes the same results as straight-line code."""
        assert run(programs, "threads", 3, seed) == [
            expected(i, ops) for i, ops in enumerate(programs)
        ]
