"""PageRuns against a plain set of page numbers: the same answers for any sequence of changes."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from vmkit.async_executor.machine._ranges import PageRuns

_RANGE = st.tuples(st.integers(0, 200), st.integers(0, 40)).map(lambda t: (t[0], t[0] + t[1]))
_OPS = st.lists(st.tuples(st.booleans(), _RANGE), max_size=60)


def _runs_of(pages: set[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for page in sorted(pages):
        if runs and runs[-1][1] == page:
            runs[-1] = (runs[-1][0], page + 1)
        else:
            runs.append((page, page + 1))
    return runs


@settings(max_examples=300, deadline=None)
@given(_OPS, _RANGE, st.integers(1, 30))
@example(ops=[(True, (0, 2))], probe=(1, 1), n=1)  # an empty probe inside a run has no parts
def test_matches_a_set(ops: list[tuple[bool, tuple[int, int]]], probe: tuple[int, int], n: int):
    """add/remove keep maximal runs; overlaps, count, runs_within and first_gap agree with a set."""
    runs = PageRuns()
    model: set[int] = set()
    for adding, (lo, hi) in ops:
        if adding:
            runs.add(lo, hi)
            model |= set(range(lo, hi))
        else:
            runs.remove(lo, hi)
            model -= set(range(lo, hi))
        assert runs.runs() == _runs_of(model)
    lo, hi = probe
    inside = model & set(range(lo, hi))
    assert runs.overlaps(lo, hi) == bool(inside)
    assert runs.count(lo, hi) == len(inside)
    assert runs.runs_within(lo, hi) == _runs_of(inside)
    top = 260
    expected = next((p for p in range(lo, top - n + 1) if not model & set(range(p, p + n))), None)
    assert runs.first_gap(lo, n, top) == expected
