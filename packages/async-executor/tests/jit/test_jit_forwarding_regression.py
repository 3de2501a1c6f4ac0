"""A forwarded expression must not read a register that was redefined before its use.

Found while testing ``run --metrics-port`` slices: crc32's inner loop truncated by a budget
(``andi a5,a2,1; negw a5,a5; srliw a2,a2,1; and a5,a5,a3``) computed ``a5`` from the new ``a2``.
The same happens in any block where a chain of forwarded results ends after its first source is
overwritten by an instruction that is not itself forwarded.
"""

from __future__ import annotations

import pytest
from jit_support import EXIT, enc, run_both, words

#: a5 = -(a2 & 1) & a3 with a2 shifted right in between; a2 = 5 makes old and new a2 differ in
#: bit 0, so reading the new a2 gives 0 instead of a3.
CODE = words(
    enc("andi", 15, 12, imm=1),
    enc("subw", 15, 0, 15),  # negw
    enc("srliw", 12, 12, imm=1),
    enc("and", 15, 15, 13),
    enc("bne", 0, 14, 0, imm=8),  # a4 = 0: falls through to exit
    *EXIT,
)


class TestForwardingAcrossRedefinition:
    """The JIT computes what the interpreter computes when a forwarded source is overwritten."""

    @pytest.mark.parametrize("budget", [None, 4])
    def test_matches_interpreter(self, budget: int | None) -> None:
        """Whole block and budget-truncated block give the interpreter's registers."""
        ref, jit = run_both(CODE, x={12: 5, 13: 0xEDB88320, 14: 0}, budget=budget)
        assert ref.x[15] == 0xEDB88320
        assert jit == ref
