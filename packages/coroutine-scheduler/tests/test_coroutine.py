"""The Coroutine record and its state machine."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from vmkit.coroutine_scheduler import (
    Coroutine,
    CoroutineState,
    InvalidTransitionError,
    UsageError,
)

S = CoroutineState

# The state diagram of the design, written out independently of the implementation's table.
EXPECTED_LEGAL = {
    (S.CREATED, S.READY),
    (S.CREATED, S.DEAD),
    (S.READY, S.RUNNING),
    (S.READY, S.DEAD),
    (S.RUNNING, S.READY),
    (S.RUNNING, S.WAITING),
    (S.RUNNING, S.DEAD),
    (S.WAITING, S.READY),
    (S.WAITING, S.DEAD),
}
ALL_PAIRS = [(a, b) for a in S for b in S]


def gen() -> Generator[None, Any, int]:
    yield
    return 7


def coroutine_in(state: CoroutineState) -> Coroutine:
    co = Coroutine(gen(), name="probe")
    co._state = state
    return co


class TestCoroutineState:
    @pytest.mark.parametrize(("old", "new"), ALL_PAIRS, ids=lambda s: s.name)
    def test_every_transition_is_legal_exactly_when_the_design_says(
        self, old: CoroutineState, new: CoroutineState
    ) -> None:
        """Each of the 25 (from, to) pairs is accepted iff it is an edge of the state diagram."""
        co = coroutine_in(old)
        assert old.can_transition_to(new) == ((old, new) in EXPECTED_LEGAL)
        if (old, new) in EXPECTED_LEGAL:
            co._transition(new)
            assert co.state is new
        else:
            with pytest.raises(InvalidTransitionError, match=f"{old.name} -> {new.name}"):
                co._transition(new)
            assert co.state is old

    def test_a_new_coroutine_is_created(self) -> None:
        """A freshly wrapped coroutine starts in CREATED with no result and no time spent."""
        co = Coroutine(gen())
        assert co.state is S.CREATED
        assert not co.done
        assert co.run_ns == 0
        assert co.switches == 0
        assert co.exception is None


class TestCoroutineWrapping:
    def test_wraps_a_generator_an_async_coroutine_and_a_look_alike(self) -> None:
        """Generators, coroutine objects and any object with send/throw are accepted."""

        async def native() -> int:
            return 1

        class LookAlike:
            def send(self, value: object) -> object:
                raise StopIteration(3)

            def throw(self, exc: BaseException) -> object:
                raise exc

        coro = native()
        for target in (gen(), coro, LookAlike()):
            assert Coroutine(target).state is S.CREATED
        coro.close()

    def test_rejects_something_without_send_and_throw(self) -> None:
        """A non-generator gives a one-line error naming what was passed."""
        with pytest.raises(UsageError, match="got int 5"):
            Coroutine(5)  # type: ignore[arg-type]

    def test_hints_when_the_function_itself_is_passed(self) -> None:
        """Passing the generator function instead of calling it suggests the fix."""
        with pytest.raises(UsageError, match="did you pass the function"):
            Coroutine(gen)  # type: ignore[arg-type]

    def test_name_defaults_to_the_qualified_name(self) -> None:
        """Without a name, the generator's qualified name is used."""
        assert Coroutine(gen()).name == "gen"
        assert Coroutine(gen(), name="x").name == "x"

    def test_result_before_the_end_is_an_error(self) -> None:
        """Asking a live coroutine for its result says it has none yet."""
        with pytest.raises(UsageError, match="no result yet"):
            _ = Coroutine(gen()).result
