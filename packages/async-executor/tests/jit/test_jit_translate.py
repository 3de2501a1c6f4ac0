"""The translator's generated source: its shape is the contract the speed depends on."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jit_support import CODE_BASE, EXIT, enc, machine_with_code, words

from vmkit.async_executor.engine._jit import JitExecutor
from vmkit.async_executor.engine._translate import (
    DecodedBlock,
    _blocks,
    _emit,
    _facts,
    decode_block,
    translate_block,
)
from vmkit.async_executor.isa import TABLE, Instr, decode, decode32

M64 = (1 << 64) - 1


def _source(code: bytes, pc: int = CODE_BASE) -> str:
    return translate_block(machine_with_code(code).memory, pc).source


class TestBlockDiscovery:
    """Blocks end at control transfers, the length cap and the page end."""

    def test_ends_at_branch(self) -> None:
        """A block stops after its first control transfer."""
        code = words(enc("addi", 10, 0, imm=1), enc("beq", 0, 10, 0, imm=8), enc("addi", 11, 0))
        block = decode_block(machine_with_code(code).memory, CODE_BASE)
        assert [i.name for _pc, i, _raw in block.instrs if i] == ["addi", "beq"]
        assert block.end == CODE_BASE + 8

    def test_length_cap_and_page_end(self) -> None:
        """At most ``max_insns`` instructions, and never past the start page."""
        code = words(*[enc("addi", 10, 10, imm=1)] * 1100)
        mem = machine_with_code(code).memory
        assert len(decode_block(mem, CODE_BASE, 5).instrs) == 5
        near_end = CODE_BASE + 0x1000 - 8
        block = decode_block(mem, near_end, 48)
        assert len(block.instrs) == 2
        assert block.end == CODE_BASE + 0x1000


class TestGeneratedSource:
    """Registers in locals, x0 never written, folding, loops as for-range loops."""

    def test_self_loop_becomes_python_loop(self) -> None:
        """A block branching to its own start is one loop bounded by the budget."""
        src = _source(words(enc("addi", 10, 10, imm=1), enc("bne", 0, 10, 11, imm=-4)))
        assert "for i in range((lim - n) // 2):" in src
        assert "if not x10 != x11: break" in src

    def test_only_changed_registers_written_back(self) -> None:
        """Registers the block only reads are loaded but never stored back."""
        src = _source(words(enc("add", 10, 11, 12), *EXIT))
        assert "x11 = X[11]" in src
        assert "X[10] = x10" in src
        assert "X[11] =" not in src
        assert "X[12] =" not in src

    def test_x0_writes_dropped(self) -> None:
        """Writes to x0 (the sink) generate no code; loads into x0 still access memory."""
        src = _source(words(enc("add", 0, 11, 12), enc("ld", 0, 2, imm=0), *EXIT))
        assert "X[32]" not in src
        assert "X[0]" not in src
        assert "_ = U8(" in src
        assert "(x11 + x12)" not in src

    def test_constants_folded(self) -> None:
        """lui + addi + slli on known values become one literal per register."""
        code = words(
            enc("lui", 10, imm=0x12345000),
            enc("addi", 10, 10, imm=0x678),
            enc("slli", 11, 10, imm=4),
            *EXIT,
        )
        src = _source(code)
        assert f"x10 = {0x12345678}" in src
        assert f"x11 = {0x123456780}" in src
        assert "<<" not in src

    def test_memory_fast_path_inline(self) -> None:
        """A load reads the TLB dict and unpacks inline, with the slow path as the fallback."""
        src = _source(words(enc("lw", 10, 11, imm=8), *EXIT))
        assert "R((a := x11 + 8 & M64) >> 12)" in src
        assert "I4(b, o)[0]" in src
        assert "LSX(mem, a, 4)" in src

    def test_source_compiles_standalone(self) -> None:
        """The shown source is valid Python defining the block function ``b``."""
        src = _source(words(enc("addi", 10, 10, imm=1), enc("bne", 0, 10, 11, imm=-4)))
        scope: dict[str, object] = {}
        exec(compile(src, "<test>", "exec"), scope)
        assert callable(scope["b"])

    def test_execute_blocks(self) -> None:
        """execute_block runs one block and returns its successor; execute_blocks runs several."""
        code = words(
            enc("addi", 10, 0, imm=1),  # 0
            enc("jal", 0, imm=8),  # 4: to 12
            0,
            enc("addi", 10, 10, imm=2),  # 12
            enc("jal", 0, imm=8),  # 16: to 24
            0,
            *EXIT,  # 24
        )
        m = machine_with_code(code)
        ex = JitExecutor(m)
        assert ex.execute_block(CODE_BASE) == CODE_BASE + 12
        assert m.hart.pc == CODE_BASE + 12
        assert m.hart.instret == 2
        assert ex.execute_blocks([CODE_BASE, CODE_BASE + 12]) == [CODE_BASE + 12, CODE_BASE + 24]
        assert m.hart.x[10] == 3

    def test_translation_hook(self) -> None:
        """on_translate sees every block as it is compiled (what --dump-jit prints)."""
        from vmkit.async_executor.engine._context import AsyncExecutionContext

        seen: list[str] = []
        ctx = AsyncExecutionContext(on_translate=lambda block: seen.append(block.source))
        m = machine_with_code(words(enc("addi", 10, 0, imm=3), *EXIT))
        assert JitExecutor(m, ctx).run() == 3
        assert len(seen) == 1
        assert seen[0] == ctx.source(m.memory, CODE_BASE)

    def test_executor_shows_source(self) -> None:
        """JitExecutor.source shows the cached translation of a block that ran."""
        m = machine_with_code(words(enc("addi", 10, 0, imm=3), *EXIT))
        ex = JitExecutor(m)
        ex.run()
        src = ex.source(CODE_BASE)
        assert src.startswith("def b(X, F, H, lim, R, W, mem, mach):")
        assert "mach.syscall()" in src
        info = ex.context.block_info(m.memory, CODE_BASE)
        assert info is not None
        assert info.source == src
        assert info.length == 3


def _reference_forwardable(instrs: list[Instr]) -> set[int]:
    """The forwarding rule spelled out directly (quadratic, as first written): the oracle for
    the translator's single-scan version."""
    out: set[int] = set()
    reads = _facts._reads
    writes = _facts._writes
    deps: list[set[int]] = []
    feeds: dict[int, list[int]] = {}
    for i, ins in enumerate(instrs):
        sources = set(reads(ins))
        for p in feeds.get(i, ()):
            sources |= deps[p]
        deps.append(sources)
        r = writes(ins)
        if r is None or ins.spec.kind != "alu":
            continue
        redef = next((j for j in range(i + 1, len(instrs)) if writes(instrs[j]) == r), None)
        if redef is None:
            continue
        if any(x.spec.kind not in _facts._BARRIER_FREE for x in instrs[i + 1 : redef + 1]):
            continue
        uses = [j for j in range(i + 1, redef + 1) for src in reads(instrs[j]) if src == r]
        if len(uses) != 1:
            continue
        if any(writes(instrs[j]) in sources for j in range(i + 1, uses[0])):
            continue
        out.add(i)
        feeds.setdefault(uses[0], []).append(i)
    return out


#: Instructions over four registers (x0 and an ecall argument register included), so that
#: reads, redefinitions and instructions that can fault between them are frequent; every kind
#: the forwarding rule treats differently appears (ALU with one, two or no register operands,
#: loads, stores, branches, jumps, fences, CSR accesses, ecall).
_REG = st.sampled_from([0, 5, 6, 10])
_INSTR = st.one_of(
    st.builds(lambda d, a, b: enc("add", d, a, b), _REG, _REG, _REG),
    st.builds(lambda d, a: enc("addi", d, a, imm=3), _REG, _REG),
    st.builds(lambda d, a, b: enc("sub", d, a, b), _REG, _REG, _REG),
    st.builds(lambda d: enc("lui", d, imm=0x5000), _REG),
    st.builds(lambda d, a: enc("ld", d, a, imm=8), _REG, _REG),
    st.builds(lambda a, b: enc("sd", 0, a, b, imm=8), _REG, _REG),
    st.builds(lambda a, b: enc("mul", 5, a, b), _REG, _REG),
    st.builds(lambda a, b: enc("beq", 0, a, b, imm=8), _REG, _REG),
    st.builds(lambda d, a: enc("jalr", d, a, imm=0), _REG, _REG),
    st.builds(lambda d: enc("jal", d, imm=8), _REG),
    st.just(enc("fence")),
    st.just(enc("ecall")),
    st.builds(lambda d, a: enc("csrrs", d, a, imm=3), _REG, _REG),
)


class TestDecodeMemo:
    """The translator's memo of decoded words is pure, agrees with the decoder, and is bounded."""

    def test_rewritten_code_decodes_afresh(self) -> None:
        """After the guest overwrites an instruction, decoding its pc yields the new one: the
        memo is keyed by the instruction's bytes, never by its address."""
        m = machine_with_code(words(enc("addi", 10, 0, imm=1), *EXIT), writable_code=True)
        first = decode_block(m.memory, CODE_BASE).instrs[0][1]
        assert first is not None
        assert first.imm == 1
        m.memory.store(CODE_BASE, 4, enc("addi", 10, 0, imm=2))
        again = decode_block(m.memory, CODE_BASE).instrs[0]
        assert again[1] is not None
        assert again[1].imm == 2
        assert again[2] == enc("addi", 10, 0, imm=2)

    def test_compressed_and_full_words_do_not_clash(self) -> None:
        """Half-words and words (whose low two bits tell them apart) share one memo, and each
        entry is what the decoder itself says, also when a word contains a half-word's bits."""
        half = 0x4505  # c.li a0,1
        full = enc("addi", 11, 0, imm=7)
        for raw in (half, full, half << 16 | full & 0xFFFF, half, full):
            instr, length, ends = _blocks._decode_raw(raw)
            expected = decode(raw)
            assert repr(instr) == repr(expected)
            assert length == (4 if raw & 3 == 3 else 2)
            assert ends == (expected is None or expected.spec.ends_block)

    def test_memo_is_bounded(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The memo never grows past its bound, and lookups stay right after it is cleared."""
        monkeypatch.setattr(_blocks, "_DECODED_MAX", 16)
        monkeypatch.setattr(_blocks, "_DECODED", {})
        for imm in range(100):
            instr = _blocks._decode_raw(enc("addi", 10, 11, imm=imm))[0]
            assert instr is not None
            assert instr.imm == imm
            assert len(_blocks._DECODED) <= 16
        block = decode_block(machine_with_code(words(enc("addi", 10, 0, imm=99))).memory, CODE_BASE)
        assert block.instrs[0][1] is not None
        assert block.instrs[0][1].imm == 99


class TestForwarding:
    """The single-scan forwarding analysis equals the rule as first written."""

    @settings(max_examples=300, deadline=None)
    @given(st.lists(_INSTR, min_size=1, max_size=12))
    def test_matches_reference(self, raws: list[int]) -> None:
        """Forwarded indices agree with the quadratic reference on random straight code."""
        instrs = [decode32(raw) for raw in raws]
        assert all(i is not None for i in instrs)
        decoded = [i for i in instrs if i is not None]
        assert _facts._forwardable(decoded) == _reference_forwardable(decoded)


class TestNamedMasks:
    """Mask literals become the globals M64/M32, and only whole literals do."""

    def test_whole_literals_named(self) -> None:
        """``& <M64>`` and ``& <M32>`` become ``& M64`` and ``& M32``."""
        src = f"x = (a & {M64}) + (b & {0xFFFFFFFF})\n"
        assert _emit._named_masks(src) == "x = (a & M64) + (b & M32)\n"

    def test_longer_numbers_kept(self) -> None:
        """A literal that only starts with a mask's digits is another number, left alone."""
        src = f"x = a & {M64}0 | b & {M64}\n"
        assert _emit._named_masks(src) == f"x = a & {M64}0 | b & M64\n"


class TestNarrowRules:
    """``_narrow``'s rules are keyed by operation: nothing to keep in step by hand."""

    def test_every_rule_names_an_alu_operation(self) -> None:
        assert set(_facts._NARROW_RULES) <= {s.name for s in TABLE if s.kind == "alu"}

    def test_other_operations_have_no_rule(self) -> None:
        """For ALU operations without a rule, ``_narrow`` gives None at any operand widths."""
        names = {s.name for s in TABLE if s.kind == "alu"} - set(_facts._NARROW_RULES)
        assert names
        for name in sorted(names):
            for wa in range(0, 65, 8):
                for wb in range(0, 65, 8):
                    for imm in (-5, 0, 1, 31, 63, 2047):
                        assert _facts._narrow(name, "a", "b", wa, wb, imm) is None

    def test_every_template_table_entry_builds(self) -> None:
        """The per-name tables are made on first lookup: make every entry the generator can ask
        for, so a template that does not parse or format fails here, not mid-translation."""
        from vmkit.async_executor.engine._translate import _templates

        for spec in TABLE:
            if spec.kind == "alu":
                assert "{" in _templates._ALU_FORMAT[spec.name] or "X[" not in spec.tmpl
                assert callable(_templates._ALU_FOLD[spec.name])
                assert (_facts._LAZY[spec.name] is None) == (not spec.wrap)
            elif spec.kind == "branch":
                assert "{a}" in _templates._BRANCH_FORMAT[spec.name]
            elif spec.kind == "fp":
                assert _templates._FP_FORMAT[spec.name]

    def test_sign_extension_ops_come_from_the_table(self) -> None:
        """The biased sign-extension forms are exactly the W sums and differences."""
        with_form = {s.name for s in TABLE if _facts._SEXT_OPS[s.name] is not None}
        assert with_form == {"addw", "addiw", "subw"}
        assert _facts._SEXT_OPS["addiw"] == "{a} + {i}"
        assert _facts._SEXT_OPS["subw"] == "{a} - {b} + 2147483648"


def _reference_loop(blocks: list[DecodedBlock], succ: list[list[int]]) -> list[DecodedBlock]:
    """The region's loop through its entry by the fixpoint first written: the oracle."""
    entry = blocks[0].start
    reaches = {entry}
    changed = True
    while changed:
        changed = False
        for b, targets in zip(blocks, succ, strict=True):
            if b.start not in reaches and any(t in reaches for t in targets):
                reaches.add(b.start)
                changed = True
    kept = [k for k, b in enumerate(blocks) if b.start in reaches]
    if len(kept) > 1 and any(t == entry for k in kept[1:] for t in succ[k]):
        return [blocks[k] for k in kept]
    return [blocks[0]]


class TestRegionLoop:
    """The blocks kept for a region are the entry and those on a cycle back to it."""

    @settings(max_examples=300, deadline=None)
    @given(
        st.integers(min_value=1, max_value=6).flatmap(
            lambda n: st.lists(
                st.lists(st.integers(min_value=0, max_value=n), min_size=1, max_size=2),
                min_size=n,
                max_size=n,
            )
        )
    )
    def test_matches_fixpoint(self, edges: list[list[int]]) -> None:
        """On random successor graphs (index n: a target outside the region) the kept blocks
        equal the fixpoint's."""
        blocks = [DecodedBlock(0x1000 + 4 * k, [], 0x1004 + 4 * k, (1,)) for k in range(len(edges))]
        succ = [[0x1000 + 4 * t for t in targets] for targets in edges]
        got = _blocks._loop_through_entry(blocks, succ)
        assert got == _reference_loop(blocks, succ)

    def test_full_region_without_loop(self) -> None:
        """A chain of forward branches longer than the region cap is no region: the entry block
        alone is translated (a region's blocks must loop back to its entry)."""
        chain = [
            w for _ in range(10) for w in (enc("addi", 10, 10, imm=1), enc("beq", 0, 11, 12, imm=8))
        ]
        m = machine_with_code(words(*chain, *EXIT))
        blocks = _blocks.decode_region(m.memory, CODE_BASE)
        assert [b.start for b in blocks] == [CODE_BASE]

    def test_full_region_keeps_its_loop(self) -> None:
        """At the cap, the entry and the block looping back to it are kept, the rest dropped."""
        chain = [
            w for _ in range(6) for w in (enc("addi", 10, 10, imm=1), enc("beq", 0, 11, 12, imm=8))
        ]
        code = words(
            enc("addi", 13, 13, imm=1),  # 0: entry
            enc("beq", 0, 11, 12, imm=12),  # 4: into the chain at 16
            enc("jal", 0, imm=-8),  # 8: back to the entry
            enc("addi", 0, 0, imm=0),  # 12: never reached
            *chain,  # 16: forward branches, enough blocks to fill the region
            *EXIT,
        )
        m = machine_with_code(code)
        blocks = _blocks.decode_region(m.memory, CODE_BASE)
        assert [b.start for b in blocks] == [CODE_BASE, CODE_BASE + 8]
