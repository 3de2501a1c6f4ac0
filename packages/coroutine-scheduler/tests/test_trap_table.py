"""The trap table: every opcode has a handler; odd tuples and joiners parked then cancelled."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from vmkit.coroutine_scheduler import (
    Coroutine,
    Scheduler,
    UsageError,
    VirtualClock,
    cancel,
    join,
    sleep,
    yield_now,
)
from vmkit.coroutine_scheduler._core import _traps
from vmkit.coroutine_scheduler._core._trap_table import TrapTable

OPCODES = ("SPAWN", "SLEEP", "WAIT", "NOTIFY", "JOIN", "CANCEL", "CURRENT", "PARK", "ACQUIRE")


def test_every_opcode_has_a_handler() -> None:
    """A new opcode in _traps.py without a handler would fail here, not in a user's run."""
    table = TrapTable(Scheduler(1, seed=1))
    for name in OPCODES:
        assert getattr(_traps, name) in table._handlers, name
    assert len(table._handlers) == len(OPCODES)


@pytest.mark.parametrize("trap", [(), ([1],), (99, "x")], ids=["empty", "unhashable", "unknown"])
def test_an_odd_tuple_is_thrown_back_as_an_unknown_trap(trap: tuple[Any, ...]) -> None:
    def body() -> Generator[Any, Any, None]:
        yield trap

    s = Scheduler(1, seed=1)
    co = s.spawn(body)
    s.run(timeout=10, raise_failures=False)
    assert isinstance(co.exception, UsageError)
    assert "yielded an unknown trap" in str(co.exception)


@pytest.mark.parametrize("backend", ["inline", "threads"])
def test_cancelling_a_joiner_leaves_the_joined_one_alone(backend: str) -> None:
    """A coroutine parked in join() ends cancelled; the one it joined still finishes normally."""

    async def slow() -> int:
        await sleep(5.0)
        return 7

    async def joiner(target: Coroutine) -> Any:
        return await join(target)

    async def canceller(victim: Coroutine) -> bool:
        await sleep(1.0)
        return await cancel(victim)

    s = Scheduler(2, seed=1, backend=backend, clock=VirtualClock())  # type: ignore[arg-type]
    target = s.spawn(slow, vcpu=0)
    victim = s.spawn(joiner, target, vcpu=1)
    boss = s.spawn(canceller, victim, vcpu=0)
    s.run(timeout=30)
    assert victim.cancelled
    assert boss.result is True
    assert target.result == 7
    assert target._joiners is None


def test_yield_now_is_not_in_the_table() -> None:
    """The switch path never reaches the table: yield_now yields None."""

    async def body() -> None:
        await yield_now()

    s = Scheduler(1, seed=1)
    co = s.spawn(body)
    s.run(timeout=10)
    assert co.exception is None
    assert s.stats().totals.executions == 2
