"""Unit tests of the FP module: known values from the RISC-V F/D chapters and IEEE 754, and
property tests against exact rational arithmetic (fractions.Fraction, rounded by CPython's
correctly rounded int/int division) for round-to-nearest-even doubles.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vmkit.async_executor.isa import _fp
from vmkit.async_executor.isa._fp import DZ, NV, NX, OF, RDN, RMM, RNE, RTZ, RUP, UF
from vmkit.async_executor.machine._hart import Hart

QNAN_D = 0x7FF8000000000000
SNAN_D = 0x7FF4000000000000
QNAN_S = 0x7FC00000
SNAN_S = 0x7FA00000
INF_D = 0x7FF0000000000000
NINF_D = 0xFFF0000000000000
INF_S = 0x7F800000
MAX_D = 0x7FEFFFFFFFFFFFFF
MIN_NORMAL_D = 0x0010000000000000
MAX_SUB_D = 0x000FFFFFFFFFFFFF
NEG_ZERO_D = 0x8000000000000000
NEG_ZERO_S = 0x80000000
M64 = (1 << 64) - 1


def d(x: float) -> int:
    """Bits of a double."""
    bits: int = struct.unpack("<Q", struct.pack("<d", x))[0]
    return bits


def s(x: float) -> int:
    """Bits of a single (x must be exactly representable)."""
    bits: int = struct.unpack("<I", struct.pack("<f", x))[0]
    return bits


def val(bits: int) -> float:
    """The double with these bits."""
    v: float = struct.unpack("<d", struct.pack("<Q", bits))[0]
    return v


def run(fn: object, *args: int) -> tuple[int, int]:
    """Call an FP function with a fresh Hart as the flag sink; return (result, fflags)."""
    hart = Hart()
    assert callable(fn)
    result = fn(*args, hart)
    assert isinstance(result, int)
    return result, hart.fflags


class TestNaNBoxing:
    """Singles live NaN-boxed in 64-bit registers."""

    def test_box_sets_upper_ones(self) -> None:
        """box_s fills the upper 32 bits with ones."""
        assert _fp.box_s(s(1.0)) == 0xFFFFFFFF3F800000

    def test_unbox_of_boxed_value(self) -> None:
        """unbox_s returns the low word of a properly boxed value."""
        assert _fp.unbox_s(0xFFFFFFFF40490FDB) == 0x40490FDB

    @pytest.mark.parametrize("reg", [0x000000003F800000, 0xFFFFFFFE3F800000, 0x3FF0000000000000])
    def test_unbox_of_unboxed_value_is_canonical_nan(self, reg: int) -> None:
        """A value whose upper word is not all ones reads as the canonical NaN."""
        assert _fp.unbox_s(reg) == QNAN_S


class TestArithmeticKnownValues:
    """Results and flags of the arithmetic operations on hand-checked operands."""

    def test_add_inexact_in_each_mode(self) -> None:
        """1 + 2**-53 is a tie below 1 + ulp: RNE/RTZ/RDN give 1, RUP and RMM round away."""
        one, tiny = d(1.0), d(2.0**-53)
        assert run(_fp.fadd_d, one, tiny, RNE) == (one, NX)
        assert run(_fp.fadd_d, one, tiny, RTZ) == (one, NX)
        assert run(_fp.fadd_d, one, tiny, RDN) == (one, NX)
        assert run(_fp.fadd_d, one, tiny, RUP) == (one + 1, NX)
        assert run(_fp.fadd_d, one, tiny, RMM) == (one + 1, NX)

    def test_exact_cancellation_sign(self) -> None:
        """x + (-x) is +0, except -0 when rounding down."""
        x = d(1.5)
        assert run(_fp.fsub_d, x, x, RNE) == (0, 0)
        assert run(_fp.fsub_d, x, x, RDN) == (NEG_ZERO_D, 0)
        assert run(_fp.fadd_s, s(2.0), s(-2.0), RUP) == (0, 0)
        assert run(_fp.fadd_s, s(2.0), s(-2.0), RDN) == (NEG_ZERO_S, 0)

    def test_signed_zero_sums(self) -> None:
        """-0 + -0 is -0; -0 + +0 is +0 (-0 when rounding down)."""
        assert run(_fp.fadd_d, NEG_ZERO_D, NEG_ZERO_D, RNE) == (NEG_ZERO_D, 0)
        assert run(_fp.fadd_d, NEG_ZERO_D, 0, RNE) == (0, 0)
        assert run(_fp.fadd_d, NEG_ZERO_D, 0, RDN) == (NEG_ZERO_D, 0)

    def test_overflow_by_rounding_mode(self) -> None:
        """max * 2 overflows: infinity or the largest finite value depending on mode and sign."""
        two = d(2.0)
        neg_two = d(-2.0)
        assert run(_fp.fmul_d, MAX_D, two, RNE) == (INF_D, OF | NX)
        assert run(_fp.fmul_d, MAX_D, two, RTZ) == (MAX_D, OF | NX)
        assert run(_fp.fmul_d, MAX_D, two, RDN) == (MAX_D, OF | NX)
        assert run(_fp.fmul_d, MAX_D, two, RUP) == (INF_D, OF | NX)
        assert run(_fp.fmul_d, MAX_D, neg_two, RUP) == (MAX_D | 1 << 63, OF | NX)
        assert run(_fp.fmul_d, MAX_D, neg_two, RDN) == (NINF_D, OF | NX)
        assert run(_fp.fmul_s, 0x7F7FFFFF, s(2.0), RNE) == (INF_S, OF | NX)

    def test_tininess_is_detected_after_rounding(self) -> None:
        """(2**27 - 1) * (2**27 + 1) * 2**-1076 = 2**-1022 - 2**-1076 rounds to the smallest
        normal in RNE without UF (not tiny after rounding), but to the largest subnormal with UF
        in RTZ."""
        a = d(math.ldexp(2**27 - 1, -538))
        b = d(math.ldexp(2**27 + 1, -538))
        assert run(_fp.fmul_d, a, b, RNE) == (MIN_NORMAL_D, NX)
        assert run(_fp.fmul_d, a, b, RTZ) == (MAX_SUB_D, UF | NX)
        assert run(_fp.fmul_d, a, b, RUP) == (MIN_NORMAL_D, NX)

    def test_exact_subnormal_result_has_no_underflow(self) -> None:
        """An exact subnormal result raises no flag: UF needs inexactness too."""
        assert run(_fp.fmul_d, MIN_NORMAL_D, d(0.5), RNE) == (MIN_NORMAL_D >> 1, 0)
        assert run(_fp.fmul_d, 1, d(0.5), RNE) == (0, UF | NX)

    def test_division_flags(self) -> None:
        """x/0 is a signed infinity with DZ, 0/0 the canonical NaN with NV, 1/3 inexact."""
        assert run(_fp.fdiv_d, d(1.0), 0, RNE) == (INF_D, DZ)
        assert run(_fp.fdiv_d, d(-1.0), 0, RNE) == (NINF_D, DZ)
        assert run(_fp.fdiv_d, d(1.0), NEG_ZERO_D, RNE) == (NINF_D, DZ)
        assert run(_fp.fdiv_d, 0, 0, RNE) == (QNAN_D, NV)
        assert run(_fp.fdiv_d, INF_D, INF_D, RNE) == (QNAN_D, NV)
        assert run(_fp.fdiv_d, d(1.0), d(3.0), RNE) == (d(1.0 / 3.0), NX)
        assert run(_fp.fdiv_d, d(1.0), d(3.0), RUP) == (d(1.0 / 3.0) + 1, NX)
        assert run(_fp.fdiv_s, s(1.0), 0, RNE) == (INF_S, DZ)
        assert run(_fp.fdiv_d, d(6.0), d(3.0), RNE) == (d(2.0), 0)

    def test_invalid_operations_give_canonical_nan(self) -> None:
        """inf - inf, 0 * inf and sqrt(-1) produce the canonical NaN and NV."""
        assert run(_fp.fsub_d, INF_D, INF_D, RNE) == (QNAN_D, NV)
        assert run(_fp.fmul_d, 0, NINF_D, RNE) == (QNAN_D, NV)
        assert run(_fp.fsqrt_d, d(-1.0), RNE) == (QNAN_D, NV)
        assert run(_fp.fsqrt_s, s(-1.0), RNE) == (QNAN_S, NV)

    def test_nan_operands(self) -> None:
        """A quiet NaN propagates as the canonical NaN silently; a signalling one raises NV."""
        payload = 0xFFF8000000001234
        assert run(_fp.fadd_d, payload, d(1.0), RNE) == (QNAN_D, 0)
        assert run(_fp.fadd_d, SNAN_D, d(1.0), RNE) == (QNAN_D, NV)
        assert run(_fp.fmul_s, SNAN_S, s(1.0), RNE) == (QNAN_S, NV)

    def test_sqrt(self) -> None:
        """sqrt(4) is exact, sqrt(2) inexact, sqrt(-0) is -0, sqrt(inf) is inf."""
        assert run(_fp.fsqrt_d, d(4.0), RNE) == (d(2.0), 0)
        assert run(_fp.fsqrt_d, d(2.0), RNE) == (d(math.sqrt(2.0)), NX)
        assert run(_fp.fsqrt_d, d(2.0), RTZ) == (d(math.sqrt(2.0)) - 1, NX)  # RNE rounded up
        assert run(_fp.fsqrt_d, NEG_ZERO_D, RNE) == (NEG_ZERO_D, 0)
        assert run(_fp.fsqrt_d, INF_D, RNE) == (INF_D, 0)
        assert run(_fp.fsqrt_s, s(2.25), RNE) == (s(1.5), 0)


class TestFusedKnownValues:
    """Fused multiply-add rounds once and follows the spec's invalid rules."""

    def test_single_rounding_keeps_the_product_error(self) -> None:
        """fma(x, y, -round(x*y)) is the exact rounding error of the product, not zero."""
        x = d(1.0 + 2.0**-30)
        prod, _ = run(_fp.fmul_d, x, x, RNE)
        err, flags = run(_fp.fmadd_d, x, x, prod ^ (1 << 63), RNE)
        assert (val(err), flags) == (2.0**-60, 0)

    def test_infinity_times_zero_is_invalid_even_with_quiet_nan_addend(self) -> None:
        """inf * 0 + qNaN raises NV (spec: 'even when the addend is a quiet NaN')."""
        assert run(_fp.fmadd_d, INF_D, 0, QNAN_D, RNE) == (QNAN_D, NV)
        assert run(_fp.fnmsub_s, 0, INF_S, QNAN_S, RNE) == (QNAN_S, NV)

    def test_infinite_product_minus_same_infinity_is_invalid(self) -> None:
        """inf * 1 - inf is invalid; inf * 1 + inf is inf."""
        one = d(1.0)
        assert run(_fp.fmsub_d, INF_D, one, INF_D, RNE) == (QNAN_D, NV)
        assert run(_fp.fmadd_d, INF_D, one, INF_D, RNE) == (INF_D, 0)

    def test_negated_forms(self) -> None:
        """fmsub, fnmsub and fnmadd negate the product and/or the addend."""
        two, three, one = d(2.0), d(3.0), d(1.0)
        assert run(_fp.fmadd_d, two, three, one, RNE) == (d(7.0), 0)
        assert run(_fp.fmsub_d, two, three, one, RNE) == (d(5.0), 0)
        assert run(_fp.fnmsub_d, two, three, one, RNE) == (d(-5.0), 0)
        assert run(_fp.fnmadd_d, two, three, one, RNE) == (d(-7.0), 0)
        assert run(_fp.fnmadd_s, s(2.0), s(3.0), s(1.0), RNE) == (s(-7.0), 0)

    def test_zero_sum_signs(self) -> None:
        """0 * x + -0 keeps -0 only when both are -0; exact cancellation is +0 (-0 in RDN)."""
        assert run(_fp.fmadd_d, NEG_ZERO_D, d(1.0), NEG_ZERO_D, RNE) == (NEG_ZERO_D, 0)
        assert run(_fp.fmadd_d, 0, d(1.0), NEG_ZERO_D, RNE) == (0, 0)
        assert run(_fp.fmsub_d, d(2.0), d(3.0), d(6.0), RNE) == (0, 0)
        assert run(_fp.fmsub_d, d(2.0), d(3.0), d(6.0), RDN) == (NEG_ZERO_D, 0)


class TestCompareKnownValues:
    """min/max, comparisons, classification and sign injection."""

    def test_min_max_signed_zeros(self) -> None:
        """-0 is smaller than +0 for fmin/fmax."""
        assert run(_fp.fmin_d, 0, NEG_ZERO_D) == (NEG_ZERO_D, 0)
        assert run(_fp.fmax_d, NEG_ZERO_D, 0) == (0, 0)
        assert run(_fp.fmin_s, 0, NEG_ZERO_S) == (NEG_ZERO_S, 0)

    def test_min_max_nan_rules(self) -> None:
        """One NaN yields the other operand; two NaNs the canonical NaN; NV only for sNaN."""
        one = d(1.0)
        assert run(_fp.fmin_d, QNAN_D, one) == (one, 0)
        assert run(_fp.fmax_d, one, SNAN_D) == (one, NV)
        assert run(_fp.fmin_d, SNAN_D, QNAN_D) == (QNAN_D, NV)
        assert run(_fp.fmax_d, 0xFFF8000000000001, QNAN_D) == (QNAN_D, 0)
        assert run(_fp.fmax_s, SNAN_S, s(-3.0)) == (s(-3.0), NV)

    def test_quiet_and_signalling_comparisons(self) -> None:
        """feq raises NV only for sNaN; flt/fle raise NV for any NaN; all give 0 with NaNs."""
        one = d(1.0)
        assert run(_fp.feq_d, QNAN_D, one) == (0, 0)
        assert run(_fp.feq_d, SNAN_D, one) == (0, NV)
        assert run(_fp.flt_d, QNAN_D, one) == (0, NV)
        assert run(_fp.fle_s, s(1.0), QNAN_S) == (0, NV)

    def test_comparison_values(self) -> None:
        """-0 == +0; ordering of negative numbers; fle includes equality."""
        assert run(_fp.feq_d, 0, NEG_ZERO_D) == (1, 0)
        assert run(_fp.flt_d, NEG_ZERO_D, 0) == (0, 0)
        assert run(_fp.fle_d, NEG_ZERO_D, 0) == (1, 0)
        assert run(_fp.flt_d, d(-2.0), d(-1.0)) == (1, 0)
        assert run(_fp.flt_s, s(-1.0), s(-2.0)) == (0, 0)
        assert run(_fp.fle_s, s(2.0), s(2.0)) == (1, 0)

    @pytest.mark.parametrize(
        ("bits", "bit"),
        [
            (NINF_D, 0),
            (d(-1.0), 1),
            (0x800FFFFFFFFFFFFF, 2),
            (NEG_ZERO_D, 3),
            (0, 4),
            (1, 5),
            (d(1.0), 6),
            (INF_D, 7),
            (SNAN_D, 8),
            (QNAN_D, 9),
        ],
    )
    def test_fclass_d(self, bits: int, bit: int) -> None:
        """fclass.d sets exactly the spec's bit for each of the ten classes."""
        assert _fp.fclass_d(bits) == 1 << bit

    @pytest.mark.parametrize(
        ("bits", "bit"),
        [
            (0xFF800000, 0),
            (s(-1.0), 1),
            (0x80000001, 2),
            (NEG_ZERO_S, 3),
            (0, 4),
            (0x7FFFFF, 5),
            (s(1.0), 6),
            (INF_S, 7),
            (SNAN_S, 8),
            (QNAN_S, 9),
        ],
    )
    def test_fclass_s(self, bits: int, bit: int) -> None:
        """fclass.s sets exactly the spec's bit for each of the ten classes."""
        assert _fp.fclass_s(bits) == 1 << bit

    def test_sign_injection(self) -> None:
        """fsgnj copies, fsgnjn negates, fsgnjx XORs the sign; NaN payloads are kept."""
        assert _fp.fsgnj_d(d(1.0), d(-2.0)) == d(-1.0)
        assert _fp.fsgnjn_d(d(1.0), d(-2.0)) == d(1.0)
        assert _fp.fsgnjx_d(d(-1.0), d(-2.0)) == d(1.0)
        assert _fp.fsgnjn_s(SNAN_S, SNAN_S) == SNAN_S | NEG_ZERO_S
        assert _fp.fsgnjx_s(s(-3.0), s(2.0)) == s(-3.0)


class TestConversionKnownValues:
    """Float-to-integer saturation, rounding and flags; integer-to-float rounding."""

    def test_nan_and_infinity_saturate(self) -> None:
        """NaN and +inf give the maximum, -inf the minimum, all with NV (spec table)."""
        assert run(_fp.fcvt_w_d, QNAN_D, RTZ) == (0x7FFFFFFF, NV)
        assert run(_fp.fcvt_w_d, NINF_D, RTZ) == (0xFFFFFFFF80000000, NV)
        assert run(_fp.fcvt_wu_d, QNAN_D, RTZ) == (M64, NV)
        assert run(_fp.fcvt_wu_d, NINF_D, RTZ) == (0, NV)
        assert run(_fp.fcvt_l_s, INF_S, RTZ) == (0x7FFFFFFFFFFFFFFF, NV)
        assert run(_fp.fcvt_lu_d, QNAN_D, RTZ) == (M64, NV)
        assert run(_fp.fcvt_lu_s, 0xFF800000, RTZ) == (0, NV)

    def test_out_of_range_saturates(self) -> None:
        """2**31 does not fit W (NV, max); -1.0 does not fit WU (NV, 0)."""
        assert run(_fp.fcvt_w_d, d(2.0**31), RTZ) == (0x7FFFFFFF, NV)
        assert run(_fp.fcvt_w_d, d(-(2.0**31)), RTZ) == (0xFFFFFFFF80000000, 0)
        assert run(_fp.fcvt_w_d, d(-(2.0**31) - 1), RTZ) == (0xFFFFFFFF80000000, NV)
        assert run(_fp.fcvt_wu_d, d(-1.0), RTZ) == (0, NV)
        assert run(_fp.fcvt_l_d, d(2.0**63), RTZ) == (0x7FFFFFFFFFFFFFFF, NV)
        assert run(_fp.fcvt_lu_d, d(2.0**64), RTZ) == (M64, NV)

    def test_unsigned_word_results_are_sign_extended(self) -> None:
        """fcvt.wu writes its 32-bit result sign-extended to 64 bits."""
        assert run(_fp.fcvt_wu_d, d(4294967295.0), RTZ) == (M64, 0)
        assert run(_fp.fcvt_wu_s, s(2.0**31), RTZ) == (0xFFFFFFFF80000000, 0)

    def test_small_negative_to_unsigned_rounds_to_zero_inexactly(self) -> None:
        """-0.5 rounds to 0 in RTZ: in range, so NX, not NV; in RDN it is -1: NV."""
        assert run(_fp.fcvt_wu_d, d(-0.5), RTZ) == (0, NX)
        assert run(_fp.fcvt_wu_d, d(-0.5), RDN) == (0, NV)

    @pytest.mark.parametrize(("rm", "want"), [(RNE, 2), (RTZ, 2), (RDN, 2), (RUP, 3), (RMM, 3)])
    def test_rounding_of_two_and_a_half(self, rm: int, want: int) -> None:
        """2.5 rounds per mode: ties to even give 2, ties away give 3."""
        assert run(_fp.fcvt_l_d, d(2.5), rm) == (want, NX)

    @pytest.mark.parametrize(
        ("rm", "want"), [(RNE, -2), (RTZ, -2), (RDN, -3), (RUP, -2), (RMM, -3)]
    )
    def test_rounding_of_minus_two_and_a_half(self, rm: int, want: int) -> None:
        """-2.5 rounds per mode, the result as a 64-bit two's complement pattern."""
        assert run(_fp.fcvt_w_s, s(-2.5), rm) == (want & M64, NX)

    def test_int_to_float(self) -> None:
        """Word conversions to double are exact; 2**53 + 1 rounds per mode."""
        assert run(_fp.fcvt_d_w, 0xFFFFFFFF, RNE) == (d(-1.0), 0)
        assert run(_fp.fcvt_d_wu, 0xFFFFFFFF, RNE) == (d(4294967295.0), 0)
        assert run(_fp.fcvt_d_w, 0x123456780000000F, RNE) == (d(15.0), 0)
        assert run(_fp.fcvt_d_l, 2**53 + 1, RNE) == (d(2.0**53), NX)
        assert run(_fp.fcvt_d_l, 2**53 + 1, RUP) == (d(2.0**53 + 2), NX)
        assert run(_fp.fcvt_d_lu, M64, RNE) == (d(2.0**64), NX)
        assert run(_fp.fcvt_d_l, M64, RNE) == (d(-1.0), 0)
        assert run(_fp.fcvt_s_w, 2**24 + 1, RNE) == (s(2.0**24), NX)
        assert run(_fp.fcvt_s_lu, M64, RTZ) == (0x5F7FFFFF, NX)

    def test_double_single_conversions(self) -> None:
        """Narrowing rounds and can overflow or underflow; widening is exact; NaNs canonical."""
        assert run(_fp.fcvt_s_d, d(1.0 + 2.0**-30), RNE) == (s(1.0), NX)
        assert run(_fp.fcvt_s_d, d(1.0 + 2.0**-30), RUP) == (s(1.0) + 1, NX)
        assert run(_fp.fcvt_s_d, d(1e300), RNE) == (INF_S, OF | NX)
        assert run(_fp.fcvt_s_d, d(1e-300), RNE) == (0, UF | NX)
        assert run(_fp.fcvt_s_d, d(1e-300), RUP) == (1, UF | NX)
        assert run(_fp.fcvt_s_d, SNAN_D, RNE) == (QNAN_S, NV)
        assert run(_fp.fcvt_d_s, 1) == (d(2.0**-149), 0)
        assert run(_fp.fcvt_d_s, SNAN_S) == (QNAN_D, NV)
        assert run(_fp.fcvt_d_s, 0xFFC00001) == (QNAN_D, 0)


# --- properties against exact rational arithmetic (RNE doubles) ---------------------------------

_finite_d = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True)


def _exact(bits: int) -> Fraction:
    return Fraction(val(bits))


def _reference(exact: Fraction) -> tuple[int, int]:
    """Round an exact rational to a double in RNE with CPython and derive NX/OF/UF."""
    try:
        result = exact.numerator / exact.denominator  # correctly rounded (half to even)
    except OverflowError:
        return INF_D | (1 << 63 if exact < 0 else 0), OF | NX
    flags = 0
    if Fraction(result) != exact:
        flags |= NX
        # Tiny after rounding: |exact| rounded to 53 significant bits with an unbounded exponent
        # range is still below 2**-1022.
        if abs(result) <= 2.0**-1022:
            mag = abs(exact)
            top = mag.numerator.bit_length() - mag.denominator.bit_length()
            if Fraction(2) ** top > mag:
                top -= 1
            quantum = Fraction(2) ** (top - 52)
            if round(mag / quantum) * quantum < Fraction(2) ** -1022:
                flags |= UF
    return d(result), flags


class TestAgainstRationalArithmetic:
    """RNE double results equal exact rational arithmetic rounded once, flags included."""

    @settings(max_examples=300, deadline=None)
    @given(x=_finite_d, y=_finite_d)
    def test_add_mul_div(self, x: float, y: float) -> None:
        """fadd/fmul/fdiv.d agree with Fraction results rounded by CPython (nonzero results;
        the signs of zeros are covered by the known-value tests)."""
        a, b = d(x), d(y)
        ea, eb = _exact(a), _exact(b)
        if ea + eb != 0:
            assert run(_fp.fadd_d, a, b, RNE) == _reference(ea + eb)
        if ea * eb != 0:
            assert run(_fp.fmul_d, a, b, RNE) == _reference(ea * eb)
        if ea != 0 and eb != 0:
            assert run(_fp.fdiv_d, a, b, RNE) == _reference(ea / eb)

    @settings(max_examples=300, deadline=None)
    @given(x=_finite_d, y=_finite_d, z=_finite_d)
    def test_fmadd(self, x: float, y: float, z: float) -> None:
        """fmadd.d agrees with the exact x*y+z rounded once (nonzero exact results)."""
        exact = Fraction(x) * Fraction(y) + Fraction(z)
        if exact != 0:
            assert run(_fp.fmadd_d, d(x), d(y), d(z), RNE) == _reference(exact)

    @settings(max_examples=300, deadline=None)
    @given(x=st.floats(min_value=0.0, allow_nan=False, allow_infinity=False, exclude_min=True))
    def test_sqrt_exactness(self, x: float) -> None:
        """fsqrt.d gives math.sqrt's correctly rounded root, with NX iff root * root != x."""
        root = math.sqrt(x)
        flags = NX if Fraction(root) ** 2 != Fraction(x) else 0
        assert run(_fp.fsqrt_d, d(x), RNE) == (d(root), flags)


# --- the two tiers agree ------------------------------------------------------------------------


def _patterned(width: int) -> st.SearchStrategy[int]:
    """Bit patterns with edge exponents and sparse or saturated significands, or random bits."""
    frac = 52 if width == 64 else 23
    emax = (1 << (width - 1 - frac)) - 1
    exps = st.one_of(
        st.sampled_from([0, 1, 2, emax >> 1, (emax >> 1) + 1, emax - 2, emax - 1, emax]),
        st.integers(0, emax),
    )
    fracs = st.one_of(
        st.sampled_from([0, 1, (1 << frac) - 1, 1 << (frac - 1)]),
        st.builds(
            lambda k, sh: (k << sh) & ((1 << frac) - 1), st.integers(1, 15), st.integers(0, frac)
        ),
        st.integers(0, (1 << frac) - 1),
    )
    return st.one_of(
        st.builds(
            lambda sg, e, f: (sg << (width - 1)) | (e << frac) | f, st.integers(0, 1), exps, fracs
        ),
        st.integers(0, (1 << width) - 1),
    )


class TestFastPathsAgreeWithSlowPath:
    """Every fast path gives the bits and flags of the exact integer slow path, in every mode."""

    @pytest.mark.parametrize(("sfx", "width"), [("d", 64), ("s", 32)])
    def test_arithmetic(self, sfx: str, width: int) -> None:
        """add/sub/mul/div/sqrt/fmadd/fnmsub agree with _fp_core for patterned operands."""
        from vmkit.async_executor.isa import _fp_core as core

        fmt = core.DOUBLE if width == 64 else core.SINGLE
        pairs: list[tuple[str, Callable[..., int], int]] = [
            ("fadd", lambda a, b, c, rm, f: core.add_slow(a, b, False, fmt, rm, f), 2),
            ("fsub", lambda a, b, c, rm, f: core.add_slow(a, b, True, fmt, rm, f), 2),
            ("fmul", lambda a, b, c, rm, f: core.mul_slow(a, b, fmt, rm, f), 2),
            ("fdiv", lambda a, b, c, rm, f: core.div_slow(a, b, fmt, rm, f), 2),
            ("fsqrt", lambda a, b, c, rm, f: core.sqrt_slow(a, fmt, rm, f), 1),
            ("fmadd", lambda a, b, c, rm, f: core.fma_slow(a, b, c, False, False, fmt, rm, f), 3),
            ("fnmsub", lambda a, b, c, rm, f: core.fma_slow(a, b, c, True, False, fmt, rm, f), 3),
        ]

        @settings(max_examples=400, deadline=None)
        @given(a=_patterned(width), b=_patterned(width), c=_patterned(width), rm=st.integers(0, 4))
        def check(a: int, b: int, c: int, rm: int) -> None:
            for name, slow, nargs in pairs:
                fast = getattr(_fp, f"{name}_{sfx}")
                args = (a, b, c)[:nargs]
                want_flags = Hart()
                want = slow(a, b, c, rm, want_flags)
                assert run(fast, *args, rm) == (want, want_flags.fflags), name

        check()
