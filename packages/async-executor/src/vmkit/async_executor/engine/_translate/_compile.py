"""From source to a running block: compile (reused by source text), finish into a function over
this machine's globals, :func:`translate_block` end to end, and :func:`recover_fault_state`, which
makes the hart exact from a faulting block's frame."""

from __future__ import annotations

import time
import types
from collections.abc import Callable
from typing import Any, Final

from vmkit.async_executor._record import Record
from vmkit.async_executor.engine._translate._blocks import (
    MAX_BLOCK_INSNS,
    decode_block,
    decode_region,
)
from vmkit.async_executor.engine._translate._emit import (
    LineMap,
    generate_region_source,
    generate_source,
)
from vmkit.async_executor.engine._translate._runtime import BLOCK_GLOBALS
from vmkit.async_executor.isa._decode import FULL_DECODER, Decoder
from vmkit.async_executor.machine._memory import AddressSpace

#: Bumped whenever generated code changes meaning (keys persistent code caches).
TRANSLATOR_VERSION: Final = 5


BlockFunction = Callable[..., int]


class TranslatedBlock(Record):
    """A compiled block with everything needed to inspect, run and invalidate it."""

    __slots__ = (
        "pc",
        "fn",
        "source",
        "length",
        "pages",
        "mem_ops",
        "loop",
        "compile_time",
        "lines",
        "pcs",
        "written",
        "syscall_line",
        "reused_code",
    )
    pc: int
    fn: BlockFunction
    source: str
    length: int
    pages: tuple[int, ...]
    mem_ops: int
    loop: bool
    #: seconds spent decoding, generating and compiling this block.
    compile_time: float
    #: source lines that may fault -> where they are in the guest code (see :data:`LineMap`).
    lines: LineMap
    #: pc of each guest instruction of the block.
    pcs: tuple[int, ...]
    #: integer registers the block writes (kept in locals ``x<r>``).
    written: tuple[int, ...]
    #: source line of the ``mach.syscall()`` call (0: none).
    syscall_line: int
    #: the compiled code came from a code cache (no ``compile()`` was needed).
    reused_code: bool

    def __init__(
        self,
        pc: int,
        fn: BlockFunction,
        source: str,
        length: int,
        pages: tuple[int, ...],
        mem_ops: int,
        loop: bool,
        compile_time: float,
        lines: LineMap | None = None,
        pcs: tuple[int, ...] = (),
        written: tuple[int, ...] = (),
        syscall_line: int = 0,
        reused_code: bool = False,
    ) -> None:
        self.pc = pc
        self.fn = fn
        self.source = source
        self.length = length
        self.pages = pages
        self.mem_ops = mem_ops
        self.loop = loop
        self.compile_time = compile_time
        self.lines = {} if lines is None else lines
        self.pcs = pcs
        self.written = written
        self.syscall_line = syscall_line
        self.reused_code = reused_code


class PreparedBlock(Record):
    """A block (or region) decoded and turned into Python source, not yet compiled: what a
    background compiler ships to another process (see :func:`prepare_block`)."""

    __slots__ = (
        "pc",
        "source",
        "length",
        "pages",
        "mem_ops",
        "loop",
        "lines",
        "pcs",
        "written",
        "syscall_line",
        "prepare_time",
    )
    pc: int
    source: str
    length: int
    pages: tuple[int, ...]
    mem_ops: int
    loop: bool
    lines: LineMap
    pcs: tuple[int, ...]
    written: tuple[int, ...]
    syscall_line: int
    #: seconds spent decoding and generating.
    prepare_time: float

    def __init__(
        self,
        pc: int,
        source: str,
        length: int,
        pages: tuple[int, ...],
        mem_ops: int,
        loop: bool,
        lines: LineMap,
        pcs: tuple[int, ...],
        written: tuple[int, ...],
        syscall_line: int,
        prepare_time: float,
    ) -> None:
        self.pc = pc
        self.source = source
        self.length = length
        self.pages = pages
        self.mem_ops = mem_ops
        self.loop = loop
        self.lines = lines
        self.pcs = pcs
        self.written = written
        self.syscall_line = syscall_line
        self.prepare_time = prepare_time

    @property
    def filename(self) -> str:
        """The file name the block's code carries (tracebacks and profilers show it)."""
        return f"<jit {self.pc:#x}>"


def prepare_block(
    mem: AddressSpace,
    pc: int,
    max_insns: int = MAX_BLOCK_INSNS,
    *,
    region: bool = True,
    decoder: Decoder = FULL_DECODER,
) -> PreparedBlock:
    """Decode the block (or, with ``region``, the region) at ``pc`` with ``decoder`` (the
    hart's ISA) and generate its source.

    Raises GuestMemoryFault when ``pc`` itself cannot be fetched.
    """
    t0 = time.perf_counter()
    blocks = (
        decode_region(mem, pc, max_insns, decoder=decoder)
        if region
        else [decode_block(mem, pc, max_insns, decoder)]
    )
    block = blocks[0]
    if len(blocks) > 1:
        generated = generate_region_source(blocks)
        pages = tuple(sorted({vpn for b in blocks for vpn in b.pages}))
    else:
        generated = generate_source(block)
        pages = block.pages
    return PreparedBlock(
        pc=pc,
        source=generated.source,
        length=sum(len(b.instrs) for b in blocks),
        pages=pages,
        mem_ops=generated.mem_ops,
        loop=generated.loop,
        lines=generated.lines,
        pcs=tuple(ipc for b in blocks for ipc, _i, _r in b.instrs),
        written=generated.written,
        syscall_line=generated.syscall_line,
        prepare_time=time.perf_counter() - t0,
    )


def function_code(module: types.CodeType) -> types.CodeType:
    """The code of the block function ``b`` in the module code ``compile()`` made of its source."""
    return next(c for c in module.co_consts if isinstance(c, types.CodeType))


def compile_block_code(source: str, filename: str) -> types.CodeType:
    """``compile()`` of a block's source: the code object of its function ``b``."""
    return function_code(compile(source, filename, "exec"))


def finish_block(
    prepared: PreparedBlock, code: types.CodeType, compile_time: float, *, reused: bool
) -> TranslatedBlock:
    """The runnable block: ``prepared``'s compiled ``code`` bound to the block globals.

    ``compile_time`` is what compiling took (0 when ``reused`` code came from a cache); the
    block's ``compile_time`` adds the preparation.
    """
    fn: BlockFunction = types.FunctionType(code, BLOCK_GLOBALS, "b")
    result = TranslatedBlock(
        pc=prepared.pc,
        fn=fn,
        source=prepared.source,
        length=prepared.length,
        pages=prepared.pages,
        mem_ops=prepared.mem_ops,
        loop=prepared.loop,
        compile_time=prepared.prepare_time + compile_time,
        lines=prepared.lines,
        pcs=prepared.pcs,
        written=prepared.written,
        syscall_line=prepared.syscall_line,
        reused_code=reused,
    )
    fn.jit_block = result  # type: ignore[attr-defined]  # the executor's way back on faults
    return result


def translate_block(
    mem: AddressSpace,
    pc: int,
    max_insns: int = MAX_BLOCK_INSNS,
    *,
    region: bool = True,
    code_cache: dict[str, types.CodeType] | None = None,
    decoder: Decoder = FULL_DECODER,
) -> TranslatedBlock:
    """Decode, generate and compile the block (or, with ``region``, the region) at ``pc``.

    ``code_cache`` maps generated source to its compiled code: the source determines the
    function completely, so identical guest code (the same program in another machine, or
    translated again after a flush) skips ``compile()``, the dominant cost.

    Raises GuestMemoryFault when ``pc`` itself cannot be fetched.
    """
    prepared = prepare_block(mem, pc, max_insns, region=region, decoder=decoder)
    t0 = time.perf_counter()
    code = code_cache.get(prepared.source) if code_cache is not None else None
    reused = code is not None
    if code is None:
        code = compile_block_code(prepared.source, prepared.filename)
        if code_cache is not None:
            code_cache[prepared.source] = code
    return finish_block(prepared, code, time.perf_counter() - t0, reused=reused)


def recover_fault_state(
    block: TranslatedBlock, frame_locals: dict[str, Any], lineno: int, hart: Any
) -> bool:
    """Make the hart's state precise after a guest fault inside ``block``'s function.

    ``frame_locals`` and ``lineno`` come from the block's frame in the exception's traceback. The
    registers the block changed are stored back, ``hart.pc`` is set to the faulting instruction
    and ``hart.instret`` counts exactly the instructions before it. Returns False when the line is
    not a faulting instruction (the block already made the state exact, e.g. around ``ecall``).
    """
    where = block.lines.get(lineno)
    if where is None:
        return False
    retired, pc, loop_length = where
    x = hart.x
    for r in block.written:
        value = frame_locals.get(f"x{r}")
        if value is not None:
            x[r] = value
    base = frame_locals["n"]
    if loop_length:
        base += frame_locals.get("i", 0) * loop_length
    hart.instret = base + retired
    hart.pc = pc
    return True
