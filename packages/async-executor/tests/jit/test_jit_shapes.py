"""Cheaper code shapes the translator picks from what it knows about operands.

Each test runs a small guest loop under the interpreter and the JIT and compares the outcome
(registers, pc, instret), with operands chosen at the edges where a dropped mask, a folded
sign extension or a hoisted comparison operand would change the result if it were wrong.
"""

from __future__ import annotations

import pytest
from jit_support import CODE_BASE, DATA_BASE, EXIT, enc, machine_with_code, run_both, words

from vmkit.async_executor.engine._translate import translate_block

M64 = (1 << 64) - 1


def _source(code: bytes) -> str:
    return translate_block(machine_with_code(code).memory, CODE_BASE).source


class TestUnmaskedForwarding:
    """A W result forwarded into a use that masks anyway skips its own sign extension."""

    @pytest.mark.parametrize("start", [0, 0x7FFF_FFF8, 0xFFFF_FFFF_FFFF_FFF0, 0x1_2345_6789])
    def test_addiw_into_andi(self, start: int) -> None:
        """``addiw a5,a5,7; andi a5,a5,255`` in a loop matches the interpreter at the edges."""
        code = words(
            enc("addiw", 15, 15, imm=7),
            enc("andi", 15, 15, imm=255),
            enc("addi", 14, 14, imm=-1),
            enc("bne", 0, 14, 0, imm=-12),
            *EXIT,
        )
        assert "(x15 + 7) & 255" in _source(code)
        ref, jit = run_both(code, x={14: 40, 15: start})
        assert jit == ref

    @pytest.mark.parametrize("value", [0, 1, 0x8000_0000, M64])
    def test_neg_into_and(self, value: int) -> None:
        """``neg t1,t1; and t1,t1,a5`` ands the unmasked negation with a register value."""
        code = words(
            enc("andi", 6, 10, imm=1),
            enc("sub", 6, 0, 6),
            enc("and", 6, 6, 15),
            enc("srli", 10, 10, imm=1),
            enc("addi", 14, 14, imm=-1),
            enc("bne", 0, 14, 0, imm=-20),
            *EXIT,
        )
        ref, jit = run_both(code, x={10: value, 14: 9, 15: 0xEDB8_8320})
        assert jit == ref


class TestSignExtension:
    """addiw/addw/subw sign-extend through a biased mask with the immediate folded in."""

    @pytest.mark.parametrize(
        "a", [0, 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0xFFFF_FFFF_8000_0000, M64]
    )
    @pytest.mark.parametrize("name", ["addiw", "addw", "subw"])
    def test_edges(self, name: str, a: int) -> None:
        """Results at the 32-bit sign boundary equal the interpreter's."""
        if name == "addiw":
            op = enc("addiw", 10, 11, imm=-2048)
        else:
            op = enc(name, 10, 11, 12)
        code = words(op, *EXIT)
        ref, jit = run_both(code, x={11: a, 12: 0x8000_0001})
        assert jit == ref

    @pytest.mark.parametrize("a", [0, 1, 5, 0xFF, 0x8000_0000_0000_00FF])
    def test_narrow_operands(self, a: int) -> None:
        """``negw`` and ``addiw`` with a negative immediate of a value known to be small need no
        sign extension: the exact result is its own (``andi`` bounds the operand)."""
        code = words(
            enc("andi", 11, 11, imm=0xFF),
            enc("subw", 10, 0, 11),
            enc("addiw", 12, 11, imm=-2048),
            *EXIT,
        )
        source = _source(code)
        assert "2147483648" not in source
        ref, jit = run_both(code, x={11: a})
        assert jit == ref


class TestHoistedComparison:
    """A signed loop bound the loop never writes is sign-flipped once, before the loop."""

    @pytest.mark.parametrize(
        ("start", "bound"),
        [(0, 5), (M64 - 3, 2), (M64 - 3, M64), (3, M64 - 1), (1 << 62, (1 << 63) + 1)],
    )
    def test_blt_loop(self, start: int, bound: int) -> None:
        """``addi a0,a0,1; blt a0,a1,loop`` counts as the interpreter does, negatives included."""
        code = words(enc("addi", 10, 10, imm=1), enc("blt", 0, 10, 11, imm=-4), *EXIT)
        assert "s11 = x11 ^" in _source(code)
        ref, jit = run_both(code, x={10: start, 11: bound}, budget=200)
        assert jit == ref

    def test_bge_loop(self) -> None:
        """``addi a0,a0,-1; bge a0,a1,loop`` crosses zero into negatives exactly."""
        code = words(enc("addi", 10, 10, imm=-1), enc("bge", 0, 10, 11, imm=-4), *EXIT)
        ref, jit = run_both(code, x={10: 5, 11: M64 - 2})
        assert jit == ref


class TestAddressBound:
    """After an access through a register, increments of that register drop the 64-bit mask."""

    def test_pointer_increment_unmasked(self) -> None:
        """``ld a1,0(a0); addi a0,a0,8`` in a summing loop: no mask on the increment, same sum."""
        code = words(
            enc("ld", 11, 10),
            enc("add", 12, 12, 11),
            enc("addi", 10, 10, imm=8),
            enc("addi", 13, 13, imm=-1),
            enc("bne", 0, 13, 0, imm=-16),
            *EXIT,
        )
        assert "x10 = x10 + 8\n" in _source(code)
        data = b"".join(v.to_bytes(8, "little") for v in (M64, 3, 1 << 63, 7))
        ref, jit = run_both(code, x={10: DATA_BASE, 13: 4}, data=data)
        assert jit == ref

    def test_no_bound_before_the_access(self) -> None:
        """An increment before any access keeps its mask: the register may hold anything."""
        code = words(enc("addi", 10, 10, imm=8), enc("ld", 11, 10, imm=-8), *EXIT)
        assert "x10 + 8 & M64" in _source(code)
        ref, jit = run_both(code, x={10: M64 - 3})  # wraps to 4: the load faults in both
        assert jit == ref
        assert jit.status == 139

    def test_loaded_value_is_not_bounded(self) -> None:
        """``ld a0,0(a0)`` overwrites the base: the loaded value gets no bound, so
        ``addi a0,a0,8`` still wraps at 2**64 as the interpreter's does."""
        code = words(enc("ld", 10, 10), enc("addi", 10, 10, imm=8), *EXIT)
        data = (M64 - 3).to_bytes(8, "little")
        ref, jit = run_both(code, x={10: DATA_BASE}, data=data)
        assert jit == ref
        assert jit.x[10] == 4

    @pytest.mark.parametrize("imm", [-2048, 2047])
    def test_offset_extremes(self, imm: int) -> None:
        """With the largest offsets either way, the base after a store plus 2047 is exact."""
        code = words(
            enc("sd", 0, 10, 11, imm=imm),
            enc("addi", 10, 10, imm=2047),
            *EXIT,
        )
        ref, jit = run_both(code, x={10: DATA_BASE + 0x1000 - imm, 11: 5})
        assert jit == ref


class TestSignExtendedValues:
    """``sext.w`` of a value known to be sign-extended from bit 31 is a copy, and only then."""

    def test_xor_of_lw_and_srliw(self) -> None:
        """``lw a0; srliw a2,a3,8; xor a0,a0,a2; sext.w a0,a0`` (a CRC step): no re-extension."""
        code = words(
            enc("lw", 10, 11),
            enc("srliw", 12, 13, imm=8),
            enc("xor", 10, 10, 12),
            enc("addiw", 10, 10, imm=0),
            *EXIT,
        )
        source = _source(code)
        assert "x10 = (x10 ^ x12)\n" in source
        assert "2147483648" not in source
        for word in (0x8000_0000, 0x7FFF_FFFF, 0xFFFF_FFFF, 0x1234_5678):
            ref, jit = run_both(
                code, x={11: DATA_BASE, 13: 0xFFFF_FFFF_F0F0_F0F0}, data=word.to_bytes(4, "little")
            )
            assert jit == ref

    @pytest.mark.parametrize("load", ["ld", "lwu"])
    def test_other_loads_keep_the_extension(self, load: str) -> None:
        """A value from ``ld`` or ``lwu`` is not sign-extended: ``sext.w`` of it still extends."""
        code = words(enc(load, 10, 11), enc("addiw", 10, 10, imm=0), *EXIT)
        data = (0x0000_0001_8000_0000 if load == "ld" else 0x8000_0000).to_bytes(8, "little")
        ref, jit = run_both(code, x={11: DATA_BASE}, data=data)
        assert jit == ref
        assert jit.x[10] == 0xFFFF_FFFF_8000_0000

    def test_fact_dies_with_the_register(self) -> None:
        """A sign-extended value overwritten by a wide sum loses the fact, also when the sum is
        read twice (not forwarded): ``sext.w`` then still extends."""
        code = words(
            enc("lw", 10, 11),
            enc("add", 10, 10, 12),
            enc("addi", 13, 10, imm=0),
            enc("addiw", 10, 10, imm=0),
            *EXIT,
        )
        ref, jit = run_both(code, x={11: DATA_BASE, 12: 1 << 40}, data=(5).to_bytes(4, "little"))
        assert jit == ref
        assert jit.x[10] == 5

    def test_or_with_a_wide_register(self) -> None:
        """``or`` with a register of unknown width loses the fact: the extension stays."""
        code = words(
            enc("lw", 10, 11),
            enc("or", 10, 10, 12),
            enc("addiw", 10, 10, imm=0),
            *EXIT,
        )
        ref, jit = run_both(
            code, x={11: DATA_BASE, 12: 0x0000_0100_0000_0000}, data=(5).to_bytes(4, "little")
        )
        assert jit == ref
        assert jit.x[10] == 5


class TestFusedCycles:
    """A loop whose body spans several blocks runs its turns in one ``for`` loop."""

    # t0 counts down; odd values add to a0, even ones to a1:
    #   loop: andi t1,t0,1; beqz t1,even; add a0,a0,t0; j next
    #   even: add a1,a1,t0
    #   next: addi t0,t0,-1; bnez t0,loop
    CODE = words(
        enc("andi", 6, 5, imm=1),
        enc("beq", 0, 6, 0, imm=12),
        enc("add", 10, 10, 5),
        enc("jal", 0, imm=8),
        enc("add", 11, 11, 5),
        enc("addi", 5, 5, imm=-1),
        enc("bne", 0, 5, 0, imm=-24),
        *EXIT,
    )

    def test_shape(self) -> None:
        """The region's first case is the fused cycle, with side exits to the other path."""
        source = _source(self.CODE)
        assert f"  if p == {CODE_BASE}:\n" in source
        head = source.split(f"  if p == {CODE_BASE}:\n")[1]
        assert head.splitlines()[1].lstrip().startswith("for i in range((lim - n) // ")
        assert "; break" in head.splitlines()[3]  # the side exit of the first block

    @pytest.mark.parametrize("count", [1, 2, 7, 40])
    def test_matches_interpreter(self, count: int) -> None:
        """Sums, pc and instret match the interpreter for both paths through the body."""
        ref, jit = run_both(self.CODE, x={5: count})
        assert jit == ref
        assert jit.x[10] == sum(v for v in range(1, count + 1) if v % 2)

    @pytest.mark.parametrize("budget", [0, 1, 3, 5, 6, 11, 12, 50])
    def test_budget_mid_turn(self, budget: int) -> None:
        """A budget ending inside a turn stops at the interpreter's pc and instret."""
        ref, jit = run_both(self.CODE, x={5: 20}, budget=budget)
        assert jit == ref

    # A cycle loop -> b -> c -> loop whose b always branches away (to a self-loop): fusing it
    # would leave every turn by the same side exit.
    ALWAYS_LEAVES = words(
        enc("addi", 10, 10, imm=1),  # 0: loop
        enc("beq", 0, 10, 11, imm=28),  # 4: to exit
        enc("addi", 14, 0, imm=7),  # 8
        enc("bne", 0, 14, 0, imm=8),  # 12: always to other
        enc("jal", 0, imm=-16),  # 16: never reached
        enc("addi", 13, 13, imm=-1),  # 20: other, a self-loop
        enc("bne", 0, 13, 0, imm=-4),  # 24
        enc("jal", 0, imm=-28),  # 28
        *EXIT,  # 32: exit
    )

    def test_cycle_that_always_leaves_is_not_fused(self) -> None:
        """No case of the region leaves its loop by a side exit whose condition is a constant."""
        source = _source(self.ALWAYS_LEAVES)
        assert "if 7:" not in source
        # The self-loop wraps its counter after the first pass, so a budget ends the run.
        ref, jit = run_both(self.ALWAYS_LEAVES, x={11: 6, 13: 2}, budget=500)
        assert jit == ref
        assert jit.status == 124
