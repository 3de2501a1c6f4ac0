"""Translation of RISC-V basic blocks into Python functions (the JIT's code generator).

Design note
-----------
A *block* starts at a guest pc and runs straight to the first control transfer (branch, jump,
``ecall``, ``ebreak``, ``fence.i``), a length cap, the end of the start page, or an instruction
that cannot be decoded. Each block becomes the source of one Python function

    def b(X, F, H, lim, R, W, mem, mach) -> next_pc

over the hart's register lists ``X``/``F``, the hart ``H``, the instruction limit ``lim`` (the
value ``H.instret`` may reach), the TLB ``get`` methods ``R``/``W``, the AddressSpace ``mem`` and
the Machine ``mach``. Nothing machine-specific is baked into the code, so one compiled block can
serve every machine whose guest bytes are the same.

Invariants of the generated code:

* Semantics come from the instruction table's templates (``InstrSpec.tmpl``), pasted with the
  operands bound: ``X[rs1]`` becomes a local ``x5`` (or the literal ``0`` for x0), ``imm``/``pc``
  and the constants become literals, so CPython's own constant folder folds immediate arithmetic.
  Registers whose value is known inside the block (after ``lui``, ``li``, ``auipc``, a link) are
  folded into literals by evaluating the template at translation time.
* Cheaper forms replace a template only where provably equal: a bound on each register's bit
  length (``_Gen.bits``: after ``andi``, ``lbu``, shifts ...) drops masks and sign extensions
  that cannot change the value (:func:`_narrow`). A register used as a memory base has at most
  48 bits once the access completed (:meth:`_Gen.accessed`: mappings lie below ``USER_TOP``),
  so pointer increments after it need no mask; a register known to be sign-extended from bit 31
  (:attr:`_Gen.sext`: W results, ``lw``/``lh``/``lb``, bitwise combinations of such values)
  makes ``sext.w`` a copy. An ALU result used exactly once before its
  register is overwritten, with nothing that can fault in between and none of the registers its
  expression reads (forwarded chains included) overwritten before the use, is pasted into its
  use (:func:`_forwardable`). A use that masks anyway (``andi``, ``and`` with a register, a W
  operation, which reads only the low 32 bits) takes the forwarded result unmasked
  (:meth:`_Gen.rs_low`): ``addiw a5,a5,7; andi a5,a5,255`` is ``(x15 + 7) & 255``. W results
  are sign-extended as ``(v + 2**31 & M32) - 2**31 & M64`` with ``addiw``'s immediate folded
  into the bias; ``blt``/``bge`` compare plainly when both operands are below 2**63, and in a
  self-loop an operand the loop never writes is sign-flipped once, before the loop.
* Terse source, because ``compile()`` is the cost of translation and the parser pays per token
  and most per parenthesised group: templates are stored with only the parentheses precedence
  needs (:func:`_minimal`), the 64- and 32-bit masks are the globals ``M64``/``M32`` (a global
  load costs about what a constant does), forwarded atoms go in bare.
* A straight block loads into locals only the registers it reads before writing them; registers
  the block writes are stored back at each exit, and only those. Writes to the x0 sink (index 32)
  are dropped; loads into it still access memory, because the access may fault.
* Budget: a block runs only whole. On entry it returns ``-1 - pc`` when ``H.instret + length``
  would pass ``lim``; the executor then runs a shorter, uncached translation. ``H.instret`` is set
  exactly at every exit.
* A block whose last instruction branches or jumps back to its own start becomes a
  ``for i in range((lim - n) // length)`` loop: the budget bounds the iterations up front, so an
  iteration pays for no count and no check, and a hot guest loop stays inside one Python frame.
* Regions: a loop through several blocks on one page (the entry block and the blocks on a cycle
  back to it, :func:`decode_region`) becomes one function, a ``while`` loop over a local guest pc
  that selects the block to run, each block with its own budget check (self-loops inside stay
  ``for`` loops).
* Decoding memoises per instruction word (raw word -> instruction, length, whether it ends a
  block: :data:`_DECODED`), a pure function of its key, so it cannot go stale when the guest
  rewrites code; it is bounded. Decoded blocks and generated source are never cached across
  calls: a translation always reads the bytes in memory at that moment.
* Loads and stores use the TLB fast path inline (``R(vpn)`` then ``struct`` ``unpack_from`` /
  ``pack_into``, or plain indexing for bytes) and fall back to ``mem.load``/``mem.store`` out of
  line (page crossing, TLB miss, fault, or a store into a watched code page: such pages are never
  in ``tlb_write``, which is how self-modifying code reaches the invalidation listener). In loops
  each access site remembers its page across iterations (``v<j>``, ``m<j>``): bytes by page
  number, wider accesses by page base and a typed ``memoryview`` of the page, so one mask
  (``a & ~(4096 - w) == v<j>``) tests page and alignment; misaligned accesses take the slow
  path. On a new page the typed view comes from the AddressSpace's view TLB (``mem.vrQ[vpn]``,
  ``mem.vwI[vpn]`` ...), one dict lookup instead of building a ``memoryview.cast`` per page
  change (a column walk through a matrix changes page every few iterations).
* Precise faults at zero cost on the hot path, and no handler code to compile: when a guest fault
  leaves a block, the executor finds the block's frame in the traceback, maps its line number to
  the faulting instruction (a table built with the source) and, from the frame's locals, stores the
  changed registers back and sets ``H.pc`` and ``H.instret`` exactly
  (:func:`recover_fault_state`). Lines that are not in the table (``ecall``) make the state exact
  themselves before they call out.

Example: ``lbu a1,0(a4); addi a4,a4,1; add s0,s0,a1; bne a4,a3,<itself>`` (a byte-sum loop)::

    def b(X, F, H, lim, R, W, mem, mach):
     n = H.instret
     if n > lim - 4: return -65537
     x8 = X[8]; x13 = X[13]; x14 = X[14]
     v1 = -1
     for i in range((lim - n) // 4):
      x11 = m1[a & 4095] if (a := x14) >> 12 == v1 else ((m1 := b)[a & 4095] if ... else ...)
      x14 = x14 + 1 & M64
      x8 = x8 + x11 & M64
      if not x14 != x13: break
     else:
      X[8] = x8; X[11] = x11; X[14] = x14; H.instret = n + (i + 1) * 4; ...
      return 65536
     X[8] = x8; X[11] = x11; X[14] = x14; H.instret = n + (i + 1) * 4; ...
     return 65552

Trade-off: ``compile()`` dominates translation (about 0.3 us per source character on the
reference machine; measured per statement: ~4.5 us for an ALU line, ~30 us for an inline load,
~35 us for an inline store), so the source is kept terse, blocks are capped at
:data:`MAX_BLOCK_INSNS` instructions, regions are formed only for loops, and compiled code is
reused by source text. The front end is cheaper: decoding a translation's blocks and generating
its source take about 22 us and 51 us (medians over the libc programs' blocks, against about
240 us in ``compile()``: ``benchmarks/bench_jit.py``'s translate phases, same machine).
"""

from __future__ import annotations

from vmkit.async_executor.engine._translate._blocks import (
    MAX_BLOCK_INSNS,
    MAX_REGION_BLOCKS,
    MAX_REGION_INSNS,
    DecodedBlock,
    decode_block,
    decode_region,
)
from vmkit.async_executor.engine._translate._compile import (
    TRANSLATOR_VERSION,
    BlockFunction,
    PreparedBlock,
    TranslatedBlock,
    compile_block_code,
    finish_block,
    function_code,
    prepare_block,
    recover_fault_state,
    translate_block,
)
from vmkit.async_executor.engine._translate._emit import (
    LineMap,
    generate_region_source,
    generate_source,
)
from vmkit.async_executor.engine._translate._runtime import BLOCK_GLOBALS

__all__ = [
    "BLOCK_GLOBALS",
    "MAX_BLOCK_INSNS",
    "MAX_REGION_BLOCKS",
    "MAX_REGION_INSNS",
    "TRANSLATOR_VERSION",
    "BlockFunction",
    "DecodedBlock",
    "GeneratedSource",
    "LineMap",
    "PreparedBlock",
    "TranslatedBlock",
    "compile_block_code",
    "decode_block",
    "decode_region",
    "finish_block",
    "function_code",
    "generate_region_source",
    "generate_source",
    "prepare_block",
    "recover_fault_state",
    "translate_block",
]
