"""The timer heap on its own: deadline order, lazy cancellation, stale entries."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from vmkit.coroutine_scheduler import Coroutine
from vmkit.coroutine_scheduler._core._timers import Timers


def gen() -> Generator[None, Any, None]:
    yield


def sleeper(name: str) -> Coroutine:
    return Coroutine(gen(), name=name)


def test_due_sleepers_come_out_earliest_first() -> None:
    timers = Timers()
    a, b, c = sleeper("a"), sleeper("b"), sleeper("c")
    timers.add(b, 2.0)
    timers.add(a, 1.0)
    timers.add(c, 3.0)
    assert timers.count == 3
    assert timers.next_deadline() == 1.0
    assert timers.due(1.0)
    assert not timers.due(0.5)
    assert timers.pop_due(2.5) == [a, b]
    assert timers.count == 1
    assert timers.next_deadline() == 3.0


def test_a_cancelled_sleeper_is_skipped_and_not_woken() -> None:
    timers = Timers()
    a, b = sleeper("a"), sleeper("b")
    timers.add(a, 1.0)
    timers.add(b, 2.0)
    timers.cancel(a)
    assert timers.count == 1
    assert timers.next_deadline() == 2.0
    assert timers.pop_due(5.0) == [b]
    assert timers.count == 0
    assert timers.next_deadline() is None


def test_an_old_entry_cannot_wake_a_later_sleep_of_the_same_coroutine() -> None:
    timers = Timers()
    a, b = sleeper("a"), sleeper("b")
    timers.add(b, 10.0)  # keeps the heap from being emptied when a is cancelled
    timers.add(a, 1.0)
    timers.cancel(a)
    timers.add(a, 5.0)
    assert timers.pop_due(2.0) == []
    assert timers.pop_due(5.0) == [a]
    assert timers.count == 1


def test_clear_forgets_everything() -> None:
    timers = Timers()
    timers.add(sleeper("a"), 1.0)
    timers.clear()
    assert timers.count == 0
    assert timers.next_deadline() is None
    assert timers.pop_due(2.0) == []
