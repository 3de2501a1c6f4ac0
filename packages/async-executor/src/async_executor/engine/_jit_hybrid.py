"""The HybridExecutor: interpret cold blocks, translate hot ones (tiered execution).

Design note
-----------
Translation costs a ``compile()`` per block (hundreds of microseconds), which most blocks of a
real program never repay: they run a handful of times. The hybrid counts how often the dispatch
loop reaches each block start and interprets a block until its count reaches ``threshold``;
then it translates it into the shared :class:`AsyncExecutionContext` and from then on runs the
translation (a dict hit, exactly as in :class:`JitExecutor`).

* One dispatch loop serves both tiers: translated blocks first (``blocks.get(pc)``), and on a
  miss the cold path counts and interprets one block through the InterpreterExecutor, which keeps
  its own pre-decoded cache. The counting costs nothing on hot code.
* Budgets stay exact: a translated block refuses to overrun (``-1 - pc``) and the interpreter
  then runs exactly up to the limit.
* Both tiers' caches watch code pages, so self-modifying code invalidates both.
* Per-tier statistics: ``tier_stats["interp"]`` and ``tier_stats["jit"]`` (blocks, instructions,
  wall time of the whole run is shared, so only counts are split).
* Blocks a loaded AOT code cache offers are taken at first sight: they cost no ``compile()``.
* Background compilation (``background=True``): a worker thread translates hot blocks while
  the interpreter keeps running them; a translation is installed when it is ready. Under the GIL
  ``compile()`` does not run in parallel with the interpreter, so this only reorders work; see
  the benchmark before turning it on.

Modes (``tier``): ``"tiered"`` (the default), ``"interp"`` (never translate) and ``"jit"``
(translate every block at first sight, i.e. a JitExecutor).

The cold path calls :meth:`InterpreterExecutor.step` to run exactly one block under an absolute
instruction limit; faults it raises reach the guest's signal handler through ``run`` and
``coroutine`` (inherited from the JIT), exactly as faults of translated blocks do.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Hashable
from typing import Final

from async_executor.engine._context import AsyncExecutionContext
from async_executor.engine._interpreter import InterpreterExecutor, MachineLike
from async_executor.engine._jit import JitExecutor, _recover
from async_executor.engine._stats import ExecutionStats
from async_executor.engine._translate import BlockFunction
from async_executor.errors import BudgetExhausted
from async_executor.machine._memory import GuestMemoryFault

__all__ = ["DEFAULT_THRESHOLD", "TIERS", "HybridExecutor"]

#: Executions of a block start before it is translated. A block compiled at 50 runs has cost
#: about as much interpreting as translating it costs, so at most about half the time is lost to
#: the wrong tier (the classic ski-rental bound).
DEFAULT_THRESHOLD: Final = 50
TIERS: Final = ("tiered", "interp", "jit")


class HybridExecutor(JitExecutor):
    """Interprets cold code and runs hot code translated; the API of :class:`JitExecutor`.

    Args:
        machine: the machine to run; may also be given to :meth:`run`.
        context: the translation cache (shared with other executors if given).
        threshold: executions of a block start before it is translated (tier ``"tiered"``).
        tier: ``"tiered"``, ``"interp"`` or ``"jit"``.
        background: translate hot blocks in a worker thread instead of inline.
        code_key: see :class:`JitExecutor`.
    """

    def __init__(
        self,
        machine: MachineLike | None = None,
        context: AsyncExecutionContext | None = None,
        *,
        threshold: int = DEFAULT_THRESHOLD,
        tier: str = "tiered",
        background: bool = False,
        code_key: Hashable | None = None,
    ) -> None:
        if tier not in TIERS:
            raise ValueError(f"tier must be one of {', '.join(TIERS)}, got {tier!r}")
        if threshold < 1:
            raise ValueError(f"threshold must be at least 1, got {threshold}")
        self.threshold = threshold
        self.tier = tier
        self.background = background
        self.tier_stats = {"interp": ExecutionStats(), "jit": ExecutionStats()}
        self._interp: InterpreterExecutor | None = None
        self._counts: dict[int, int] = {}
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._pending: set[int] = set()
        self._pending_lock = threading.Lock()
        super().__init__(machine, context, code_key=code_key)

    def _bind(self, machine: MachineLike | None) -> MachineLike:
        previous = self._machine
        m = super()._bind(machine)
        if self._interp is None or m is not previous:
            self._interp = InterpreterExecutor(m)
            self._counts = {}
        return m

    def close(self) -> None:
        """Stop the background compiler (if one was started)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _compile_later(self, machine: MachineLike, pc: int) -> None:
        with self._pending_lock:
            if pc in self._pending:
                return
            self._pending.add(pc)
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(1, "jit-compiler")

        def work() -> None:
            try:
                self.context.translate(machine.memory, pc)
            except GuestMemoryFault:
                pass  # the interpreter reports the fault when it gets there
            finally:
                with self._pending_lock:
                    self._pending.discard(pc)

        self._pool.submit(work)

    def _dispatch(self, machine: MachineLike, limit: int, budget: int | None, stop: int) -> int:
        if self.tier == "jit":
            execs_before = self.stats.executions
            instr_before = self.stats.instructions
            try:
                return super()._dispatch(machine, limit, budget, stop)
            finally:
                jit = self.tier_stats["jit"]
                jit.executions += self.stats.executions - execs_before
                jit.instructions += self.stats.instructions - instr_before
        hart = machine.hart
        x, f = hart.x, hart.f
        mem = machine.memory
        r, w = mem.tlb_read.get, mem.tlb_write.get
        ctx = self.context
        interp = self._interp
        assert interp is not None
        run_cold = interp.step  # one interpreted block under an absolute limit
        counts = self._counts
        threshold = self.threshold if self.tier == "tiered" else -1
        background = self.background
        no_blocks: dict[int, BlockFunction] = {}
        get = (no_blocks if threshold < 0 else ctx.namespace(mem, self.code_key).blocks).get
        # A loaded AOT code cache (``load_code_cache``) offers ready-made blocks: take them at
        # first sight instead of interpreting, since they cost no compile().
        offers = getattr(ctx._prebuilt.get(mem), "offers", None) if threshold > 0 else None
        pc = hart.pc
        start_instret = hart.instret
        jit_execs = cold_execs = cold_instr = misses = 0
        fn: BlockFunction | None = None
        t0 = time.perf_counter()
        try:
            while jit_execs + cold_execs != stop:
                fn = get(pc)
                if fn is None:
                    if pc < 0:
                        pc = -1 - pc  # a translated block refused to overrun the budget
                    elif threshold > 0:
                        count = counts.get(pc, 0) + 1
                        counts[pc] = count
                        if count >= threshold or (offers is not None and offers(pc)):
                            if background and count >= threshold:
                                self._compile_later(machine, pc)
                            else:
                                hart.pc = pc
                                misses += 1
                                fn = ctx.translate(mem, pc)
                                get = ctx.namespace(mem).blocks.get
                    if fn is None:
                        before = hart.instret
                        try:
                            run_cold(pc, limit)
                        except BudgetExhausted as exc:
                            raise BudgetExhausted(budget or 0, exc.pc) from None
                        finally:
                            cold_instr += hart.instret - before
                        cold_execs += 1
                        pc = hart.pc
                        continue
                pc = fn(x, f, hart, limit, r, w, mem, machine)
                jit_execs += 1
            hart.pc = pc
            return pc
        except BaseException as exc:
            if _recover(exc, fn, hart):
                jit_execs += 1
            raise
        finally:
            elapsed = time.perf_counter() - t0
            retired = hart.instret - start_instret
            self.stats.executions += jit_execs + cold_execs
            self.stats.instructions += retired
            self.stats.wall_time += elapsed
            cold, hot = self.tier_stats["interp"], self.tier_stats["jit"]
            cold.executions += cold_execs
            cold.instructions += cold_instr
            hot.executions += jit_execs
            hot.instructions += retired - cold_instr
            ctx.record_run(
                executions=jit_execs,
                instructions=retired - cold_instr,
                misses=misses,
                run_time=elapsed,
            )
