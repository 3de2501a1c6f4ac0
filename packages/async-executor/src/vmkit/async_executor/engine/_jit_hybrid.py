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
* Background compilation: hot blocks keep being interpreted while their translation is made
  elsewhere, and are installed when ready. ``background="process"`` (the one that helps)
  decodes and generates the source on the guest's thread, where the guest's memory is
  consistent, and ships the source to a compiler process (:class:`CompileWorker`): the
  guest's thread pays about a tenth of ``compile()``, the rest runs on another core. A code
  write between the two halves is caught by the context's write serial (the pages are watched
  from the moment they are decoded) and the block is simply translated again later.
  ``background="thread"`` (or True) translates in a worker thread: under the GIL that only
  reorders work, and measured slower than compiling inline; it stays for platforms where no
  child interpreter can be started, where ``"process"`` falls back to it.

Modes (``tier``): ``"tiered"`` (the default), ``"interp"`` (never translate) and ``"jit"``
(translate every block at first sight, i.e. a JitExecutor).

The cold path calls :meth:`InterpreterExecutor.step` to run exactly one block under an absolute
instruction limit; faults it raises reach the guest's signal handler through ``run`` and
``coroutine`` (inherited from the JIT), exactly as faults of translated blocks do.
"""

from __future__ import annotations

import threading
import time
import types
import weakref
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, Final

from vmkit.async_executor._logging import get_logger
from vmkit.async_executor.engine import _native_tierup
from vmkit.async_executor.engine._compile_worker import CompileWorker
from vmkit.async_executor.engine._context import AsyncExecutionContext
from vmkit.async_executor.engine._defaults import DEFAULT_THRESHOLD, TIERS
from vmkit.async_executor.engine._executor import MachineLike
from vmkit.async_executor.engine._interpreter import InterpreterExecutor
from vmkit.async_executor.engine._jit import JitExecutor, _recover
from vmkit.async_executor.engine._native_tierup import (
    DEFAULT_NATIVE_SAMPLES,
    DEFAULT_NATIVE_WARMUP,
    NativeTierUp,
)
from vmkit.async_executor.engine._stats import ExecutionStats
from vmkit.async_executor.engine._translate import BlockFunction, PreparedBlock, function_code
from vmkit.async_executor.errors import BudgetExhausted
from vmkit.async_executor.machine._hooks import EnterHookedCode
from vmkit.async_executor.machine._memory import GuestMemoryFault

if TYPE_CHECKING:
    import concurrent.futures

__all__ = ["BACKGROUND_MODES", "DEFAULT_THRESHOLD", "TIERS", "HybridExecutor"]

_log = get_logger(__name__)

#: The native-region lookup while the native tier is off or has nothing compiled.
_NO_REGIONS: Final[dict[int, object]] = {}
#: Where background translation runs (see the module notes).
BACKGROUND_MODES: Final = ("process", "thread")


class HybridExecutor(JitExecutor):
    """Interprets cold code and runs hot code translated; the API of :class:`JitExecutor`.

    Args:
        machine: the machine to run; may also be given to :meth:`run`.
        context: the translation cache (shared with other executors if given).
        threshold: executions of a block start before it is translated (tier ``"tiered"``).
        tier: ``"tiered"``, ``"interp"`` or ``"jit"``.
        background: translate hot blocks in the background instead of inline: ``"process"``
            (compile in a child process), ``"thread"`` or True (a worker thread), or
            False (inline, the default).
        code_key: see :class:`JitExecutor`.
        native: the third tier, hot translated regions compiled to machine code (see
            ``_native_tierup``): None (the default) turns it on when llvmlite is installed,
            True requires it (raises NativeUnavailable, naming the extra, without llvmlite),
            False turns it off. Only the ``"tiered"`` mode tiers up.
        native_threshold: samples of a translated entry before its region is compiled.
        native_warmup: Python-tier instructions before the first region is compiled.
    """

    def __init__(
        self,
        machine: MachineLike | None = None,
        context: AsyncExecutionContext | None = None,
        *,
        threshold: int = DEFAULT_THRESHOLD,
        tier: str = "tiered",
        background: bool | str = False,
        code_key: Hashable | None = None,
        native: bool | None = None,
        native_threshold: int = DEFAULT_NATIVE_SAMPLES,
        native_warmup: int = DEFAULT_NATIVE_WARMUP,
    ) -> None:
        if tier not in TIERS:
            raise ValueError(f"tier must be one of {', '.join(TIERS)}, got {tier!r}")
        if threshold < 1:
            raise ValueError(f"threshold must be at least 1, got {threshold}")
        mode = "thread" if background is True else background or None
        if mode is not None and mode not in BACKGROUND_MODES:
            raise ValueError(
                f"background must be one of {', '.join(BACKGROUND_MODES)}, True or False, "
                f"got {background!r}"
            )
        if mode == "process" and not CompileWorker.available():
            _log.info("jit_background_process_unavailable", fallback="thread")
            mode = "thread"
        self.threshold = threshold
        self.tier = tier
        #: ``"process"``, ``"thread"`` or None (translate inline).
        self.background = mode
        self._worker: CompileWorker | None = None
        self.tier_stats = {"interp": ExecutionStats(), "jit": ExecutionStats()}
        #: The native tier (None when off); see :class:`NativeTierUp`.
        self.native_tier: NativeTierUp | None = None
        self._native_options = (native_threshold, native_warmup)
        self.use_native(native)
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
        if self.native_tier is not None:
            self.native_tier.bind(m)
        return m

    def use_native(self, native: bool | None = None) -> None:
        """Turn the native tier on (True; raises NativeUnavailable, naming the extra to
        install, without llvmlite), off (False), or on when llvmlite is installed (None)."""
        if native is True and not _native_tierup.native_available():
            # Raises NativeUnavailable: one line naming the extra to install.
            from vmkit.async_executor.engine.native import NATIVE_EXTRA  # noqa: F401
        if native is False or (native is None and not _native_tierup.native_available()):
            self.native_tier = None
            self.tier_stats.pop("native", None)
            return
        if self.native_tier is None:
            threshold, warmup = self._native_options
            self.native_tier = NativeTierUp(threshold=threshold, warmup=warmup)
            self.tier_stats["native"] = ExecutionStats()
            machine = getattr(self, "_machine", None)  # None while __init__ runs
            if machine is not None:
                self.native_tier.bind(machine)

    @property
    def native_stats(self) -> Any:
        """The native tier's counters (a NativeStats, as ``--engine native`` keeps), None while
        the tier is off or has compiled nothing yet."""
        return None if self.native_tier is None else self.native_tier.native_stats

    def close(self) -> None:
        """Stop the background compiler (if one was started)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._worker is not None:
            self._worker.close()
            self._worker = None

    def _compile_in_process(self, machine: MachineLike, pc: int) -> None:
        """Prepare the block at ``pc`` here, compile it in the worker process, install it when
        the worker answers (from the worker's reader thread)."""
        if not self._claim(pc):
            return
        ctx = self.context
        mem = machine.memory
        try:
            prepared, serial = ctx.prepare(mem, pc)
        except (GuestMemoryFault, EnterHookedCode):
            self._settled(pc)  # the interpreter gets there and reports the fault, or hands over
            return
        code = ctx.cached_code(prepared.source)
        if code is not None:
            ctx.install_compiled(mem, prepared, code, 0.0, serial, reused=True)
            self._settled(pc)
            return
        if self._worker is None:
            self._worker = CompileWorker()
            # An executor dropped without close() still stops its child.
            weakref.finalize(self, self._worker.close)

        def done(code: types.CodeType | None, seconds: float, p: PreparedBlock = prepared) -> None:
            try:
                if code is not None:
                    ctx.install_compiled(mem, p, function_code(code), seconds, serial)
            finally:
                self._settled(pc)

        if not self._worker.submit(prepared.source, prepared.filename, done):
            self._settled(pc)
            ctx.translate(mem, pc)  # the worker is gone: compile inline, as without one

    def _claim(self, pc: int) -> bool:
        """Mark ``pc`` as being compiled in the background; False if it already is."""
        with self._pending_lock:
            if pc in self._pending:
                return False
            self._pending.add(pc)
            return True

    def _settled(self, pc: int) -> None:
        with self._pending_lock:
            self._pending.discard(pc)

    def _compile_later(self, machine: MachineLike, pc: int) -> None:
        if not self._claim(pc):
            return
        if self._pool is None:
            import concurrent.futures  # background compiling only: not on start-up

            self._pool = concurrent.futures.ThreadPoolExecutor(1, "jit-compiler")

        def work() -> None:
            try:
                self.context.translate(machine.memory, pc)
            except (GuestMemoryFault, EnterHookedCode):
                pass  # the interpreter gets there and reports the fault, or hands over
            finally:
                self._settled(pc)

        self._pool.submit(work)

    def _dispatch(self, machine: MachineLike, limit: int, budget: int | None, stop: int) -> int:  # noqa: PLR0912, PLR0915 - the tiering dispatch loop, one frame on purpose: it is the hot path
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
        decoder = getattr(machine, "decoder", None)
        get = (
            no_blocks if threshold < 0 else ctx.namespace(mem, self.code_key, decoder).blocks
        ).get
        # A loaded AOT code cache (``load_code_cache``) offers ready-made blocks: take them at
        # first sight instead of interpreting, since they cost no compile().
        offers = getattr(ctx._prebuilt.get(mem), "offers", None) if threshold > 0 else None
        pc = hart.pc
        start_instret = hart.instret
        jit_execs = cold_execs = cold_instr = misses = 0
        native_execs = native_instr = 0
        fn: BlockFunction | None = None
        fn_before: BlockFunction | None = None  # the translated block that ran last
        # The native tier (see _native_tierup): the Python tiers run under a sampling tick
        # ``lim`` <= ``limit``; native region entries are looked up before translated blocks.
        tierup = self.native_tier if threshold > 0 and stop < 0 else None
        tick = limit
        period = 0
        nget: Any = _NO_REGIONS.get
        if tierup is not None:
            period = tierup.period
            tick = hart.instret + min(tierup.until_tick, period)
            nget = tierup.regions.get
        lim = min(tick, limit)
        t0 = time.perf_counter()
        try:
            while jit_execs + cold_execs != stop:
                nfn = nget(pc)
                if nfn is not None:
                    assert tierup is not None
                    fn = None
                    before = hart.instret
                    pc = tierup.enter(hart, pc, nfn, limit)
                    retired = hart.instret - before
                    native_execs += 1
                    native_instr += retired
                    # Native instructions do not count towards the next sample.
                    tick += retired
                    lim = min(tick, limit)
                    if pc >= 0:
                        continue
                    pc = -1 - pc  # one block for the interpreter: the budget, or an access
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
                fn = get(pc)
                if fn is None:
                    if pc < 0:
                        pc = -1 - pc  # a translated block refused to overrun the budget
                        if lim < limit:
                            # ... or the sampling tick: sample, move it on, run the block.
                            assert tierup is not None
                            block = getattr(fn_before, "jit_block", None)
                            tierup.sample(None if block is None else block.pc)
                            nget = tierup.regions.get
                            tick = hart.instret + period
                            lim = min(tick, limit)
                            continue
                    elif threshold > 0:
                        count = counts.get(pc, 0) + 1
                        counts[pc] = count
                        if count >= threshold or (offers is not None and offers(pc)):
                            if background == "process" and count >= threshold:
                                self._compile_in_process(machine, pc)
                                get = ctx.namespace(mem).blocks.get
                                fn = get(pc)  # ready at once when the code was cached
                            elif background and count >= threshold:
                                self._compile_later(machine, pc)
                            else:
                                hart.pc = pc
                                misses += 1
                                fn = ctx.translate(mem, pc)
                                get = ctx.namespace(mem).blocks.get
                    if fn is None:
                        before = hart.instret
                        try:
                            run_cold(pc, lim)
                        except BudgetExhausted as exc:
                            if lim == limit:
                                raise BudgetExhausted(budget or 0, exc.pc) from None
                            assert tierup is not None
                            tierup.sample(None)  # the tick, in cold code
                            tick = hart.instret + period
                            lim = min(tick, limit)
                        finally:
                            cold_instr += hart.instret - before
                        cold_execs += 1
                        pc = hart.pc
                        continue
                fn_before = fn
                pc = fn(x, f, hart, lim, r, w, mem, machine)
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
            self.stats.executions += jit_execs + cold_execs + native_execs
            self.stats.instructions += retired
            self.stats.wall_time += elapsed
            cold, hot = self.tier_stats["interp"], self.tier_stats["jit"]
            cold.executions += cold_execs
            cold.instructions += cold_instr
            hot.executions += jit_execs
            hot.instructions += retired - cold_instr - native_instr
            if tierup is not None:
                tierup.until_tick = max(1, tick - hart.instret)
                native = self.tier_stats["native"]
                native.executions += native_execs
                native.instructions += native_instr
            ctx.record_run(
                executions=jit_execs,
                instructions=retired - cold_instr - native_instr,
                misses=misses,
                run_time=elapsed,
            )
