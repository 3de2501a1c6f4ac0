"""``PageRuns``: the mapped pages of an address space as sorted runs, for searches by mapping.

Design notes
------------
* The page table (a dict per page) answers "is this page mapped" in one lookup, which is what the
  TLB's slow path needs; it cannot answer "where is the next hole of N pages" without looking at
  pages one by one, so a search cost grew with the *size* of the mappings it stepped over (a guest
  could make one ``mmap`` run for minutes). This index keeps the same set of pages as maximal
  runs ``[start, end)`` of page numbers, in two parallel sorted lists, so every question the
  allocator asks costs a binary search plus one step per run it passes: proportional to the
  number of mappings, never to their sizes.
* Runs are disjoint and never adjacent (adjacent runs merge), so the lists stay as short as the
  address space's shape allows. Insertion and removal splice Python lists (a memmove), which is
  cheap at the few thousand mappings real programs make.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right

__all__ = ["PageRuns"]


class PageRuns:
    """A set of page numbers kept as sorted, disjoint, non-adjacent ``[start, end)`` runs."""

    __slots__ = ("_ends", "_starts")

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def __len__(self) -> int:
        """Number of runs."""
        return len(self._starts)

    def runs(self) -> list[tuple[int, int]]:
        """The runs, lowest first."""
        return list(zip(self._starts, self._ends, strict=True))

    def add(self, lo: int, hi: int) -> None:
        """Add pages ``[lo, hi)``, merging with every run they touch or overlap."""
        if lo >= hi:
            return
        i = bisect_left(self._ends, lo)  # first run ending at or after lo: touches or overlaps
        j = bisect_right(self._starts, hi)  # runs starting at or before hi: touch or overlap
        if i < j:
            lo = min(lo, self._starts[i])
            hi = max(hi, self._ends[j - 1])
        self._starts[i:j] = [lo]
        self._ends[i:j] = [hi]

    def remove(self, lo: int, hi: int) -> None:
        """Remove pages ``[lo, hi)``; pages not in the set are ignored."""
        if lo >= hi:
            return
        i = bisect_right(self._ends, lo)  # first run ending after lo
        j = bisect_left(self._starts, hi)  # runs starting before hi
        if i >= j:
            return
        starts: list[int] = []
        ends: list[int] = []
        if self._starts[i] < lo:
            starts.append(self._starts[i])
            ends.append(lo)
        if self._ends[j - 1] > hi:
            starts.append(hi)
            ends.append(self._ends[j - 1])
        self._starts[i:j] = starts
        self._ends[i:j] = ends

    def overlaps(self, lo: int, hi: int) -> bool:
        """Whether any page of ``[lo, hi)`` is in the set."""
        i = bisect_right(self._ends, lo)
        return lo < hi and i < len(self._starts) and self._starts[i] < hi

    def count(self, lo: int, hi: int) -> int:
        """How many pages of ``[lo, hi)`` are in the set."""
        return sum(end - start for start, end in self.runs_within(lo, hi))

    def runs_within(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """The parts of the runs that lie in ``[lo, hi)``, lowest first."""
        found: list[tuple[int, int]] = []
        if hi <= lo:
            return found
        i = bisect_right(self._ends, lo)
        while i < len(self._starts) and self._starts[i] < hi:
            found.append((max(lo, self._starts[i]), min(hi, self._ends[i])))
            i += 1
        return found

    def first_gap(self, lo: int, pages: int, top: int) -> int | None:
        """The lowest page ``p >= lo`` with ``[p, p + pages)`` free and ``p + pages <= top``."""
        candidate = lo
        i = bisect_right(self._ends, candidate)  # first run ending after the candidate
        starts, ends = self._starts, self._ends
        while i < len(starts) and starts[i] < candidate + pages:
            candidate = ends[i]  # the run overlaps the candidate range: try just past it
            i += 1
        return candidate if candidate + pages <= top else None
