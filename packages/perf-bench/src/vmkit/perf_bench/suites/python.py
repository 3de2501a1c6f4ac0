"""The ``python`` suite: what CPython charges for the operations the VM design is built on.

The architecture notes (``shared/ARCHITECTURE.md``) decide how translated code touches guest
memory and state from rough costs: a dict hit for the translation cache, a precompiled
``struct.Struct`` or a ``memoryview`` cast for loads and stores (and not a slice plus
``int.from_bytes``), a function call per block, a generator resume per coroutine switch. This
suite measures those costs on the machine at hand, so the design rests on numbers.

Each benchmark is one statement run ten times per loop iteration (:func:`unrolled` builds that
loop once for all of them, as timeit does), so the ``for`` loop's own cost is a small share of
the per-operation figure; the architecture's figures were taken through a lambda call
(~25 ns), so ours should come out lower by about that much. Inputs are prepared in ``setup``.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Generator, Mapping
from typing import Any, ClassVar, Final

from vmkit.perf_bench._benchmark import MicroBenchmark, RunContext
from vmkit.perf_bench._metrics import Direction
from vmkit.perf_bench._suite import BenchmarkSuite
from vmkit.perf_bench._targets import Target, freeze_targets

__all__ = [
    "PYTHON_REFERENCES",
    "DictGet",
    "FunctionCall",
    "GeneratorSwitch",
    "IntFromBytesSlice",
    "MemoryviewIndex",
    "StructUnpackFrom",
    "build_suite",
]


_LOWER: Final = Direction.LOWER

PYTHON_REFERENCES: Final[Mapping[str, Mapping[str, Target]]] = freeze_targets(
    {
        "dict_get": {
            "time": Target(None, "ns", _LOWER, "~37 ns", "ARCHITECTURE.md, incl. a ~25 ns call"),
        },
        "struct_unpack_from": {
            "time": Target(None, "ns", _LOWER, "~55 ns", "ARCHITECTURE.md, incl. a ~25 ns call"),
        },
        "memoryview_index": {
            "time": Target(None, "ns", _LOWER, "~30 ns", "ARCHITECTURE.md, incl. a ~25 ns call"),
        },
        "int_from_bytes_slice": {
            "time": Target(None, "ns", _LOWER, "~175 ns", "ARCHITECTURE.md, incl. a ~25 ns call"),
        },
        "function_call": {
            "time": Target(None, "ns", _LOWER, "~50-80 ns", "ARCHITECTURE.md implementer notes"),
        },
        "generator_switch": {
            "time": Target(None, "ns", _LOWER, "< 1 us", "context-switch target, ARCHITECTURE.md"),
        },
    }
)
"""Reference figures for the Python suite: the rough costs in ARCHITECTURE.md's implementer
notes (measured there through a lambda call of about 25 ns, so ours, measured in an unrolled
loop, should come out lower)."""


def unrolled(statement: str, times: int, names: Mapping[str, object]) -> Callable[[int], None]:
    """A function running ``statement`` ``times`` times per iteration of a ``loops``-long loop,
    with ``names`` as its locals (as timeit builds its inner loop): every benchmark of the suite
    measures the same loop shape, written once."""
    params = "".join(f", {name}" for name in names)
    body = "; ".join([statement] * times)
    source = f"def loop(loops{params}):\n    for _ in range(loops):\n        {body}\n"
    scope: dict[str, Any] = {}
    exec(compile(source, f"<unrolled: {statement}>", "exec"), {}, scope)
    return functools.partial(scope["loop"], **names)


class _Unrolled(MicroBenchmark):
    """One statement, ten times per loop iteration, over the names :meth:`prepare` returns."""

    statement: ClassVar[str]
    operations_per_loop = 10

    def prepare(self, ctx: RunContext) -> Mapping[str, object]:
        """Build the inputs; return the names the statement uses."""
        return {}

    def setup(self, ctx: RunContext) -> None:
        """Prepare the inputs and build the unrolled loop over them."""
        self._loop = unrolled(self.statement, self.operations_per_loop, self.prepare(ctx))

    def loop(self, loops: int) -> None:
        """``loops`` iterations of the unrolled statement."""
        self._loop(loops)


class DictGet(_Unrolled):
    """``dict.get`` hit on an int key: the translation cache's lookup by guest PC."""

    name = "dict_get"
    description = "dict.get hit on an int key (translation-cache lookup)"
    targets = PYTHON_REFERENCES["dict_get"]
    statement = "get(key)"

    def prepare(self, ctx: RunContext) -> Mapping[str, object]:
        """A 1024-entry table keyed like guest PCs, and a key that hits."""
        table = {0x10000 + 4 * i: i for i in range(1024)}
        return {"get": table.get, "key": 0x10000 + 4 * 512}


class StructUnpackFrom(_Unrolled):
    """A precompiled ``Struct('<Q').unpack_from``: a 64-bit little-endian guest load."""

    name = "struct_unpack_from"
    description = "Struct('<Q').unpack_from(buffer, offset) (64-bit guest load)"
    targets = PYTHON_REFERENCES["struct_unpack_from"]
    statement = "unpack(page, 64)"

    def prepare(self, ctx: RunContext) -> Mapping[str, object]:
        """A 4 KiB page and a precompiled struct."""
        return {"unpack": struct.Struct("<Q").unpack_from, "page": bytearray(range(256)) * 16}


class MemoryviewIndex(_Unrolled):
    """Indexing a ``memoryview`` cast to ``'Q'``: an aligned 64-bit guest load."""

    name = "memoryview_index"
    description = "memoryview(page).cast('Q')[i] (aligned 64-bit guest load)"
    targets = PYTHON_REFERENCES["memoryview_index"]
    statement = "w[8]"

    def prepare(self, ctx: RunContext) -> Mapping[str, object]:
        """A 4 KiB page viewed as 512 unsigned 64-bit words."""
        self._words = memoryview(bytearray(range(256)) * 16).cast("Q")
        return {"w": self._words}

    def teardown(self) -> None:
        """Release the view so the page can be freed."""
        self._words.release()


class IntFromBytesSlice(_Unrolled):
    """``int.from_bytes(page[a:b], 'little')``: the slow way to load, kept as the contrast."""

    name = "int_from_bytes_slice"
    description = "int.from_bytes(page[a:a+8], 'little') (slice copies; the contrast)"
    targets = PYTHON_REFERENCES["int_from_bytes_slice"]
    statement = 'from_bytes(page[64:72], "little")'

    def prepare(self, ctx: RunContext) -> Mapping[str, object]:
        """A 4 KiB page."""
        return {"from_bytes": int.from_bytes, "page": bytearray(range(256)) * 16}


def _block(x: int) -> int:
    return x


class FunctionCall(_Unrolled):
    """Calling a one-argument Python function: the price of entering a translated block."""

    name = "function_call"
    description = "call of a one-argument Python function (entering a translated block)"
    targets = PYTHON_REFERENCES["function_call"]
    statement = "f(1)"

    def prepare(self, ctx: RunContext) -> Mapping[str, object]:
        """The function."""
        return {"f": _block}


def _coroutine() -> Generator[None, None, None]:
    while True:
        yield


class GeneratorSwitch(_Unrolled):
    """``gen.send(None)`` into a suspended generator and back: one coroutine switch pair."""

    name = "generator_switch"
    description = "generator send(None) + yield (one coroutine switch in and out)"
    targets = PYTHON_REFERENCES["generator_switch"]
    statement = "send(None)"

    def prepare(self, ctx: RunContext) -> Mapping[str, object]:
        """A generator run to its first ``yield``."""
        self._gen = _coroutine()
        next(self._gen)
        return {"send": self._gen.send}

    def teardown(self) -> None:
        """Close the generator."""
        self._gen.close()


def build_suite() -> BenchmarkSuite:
    """The ``python`` suite."""
    suite = BenchmarkSuite(
        "python", "CPython costs behind the VM design: dict, struct, memoryview, calls, generators"
    )
    for benchmark in (
        DictGet,
        StructUnpackFrom,
        MemoryviewIndex,
        IntFromBytesSlice,
        FunctionCall,
        GeneratorSwitch,
    ):
        suite.register(benchmark)
    return suite
