"""Exact IEEE 754-2008 binary32/binary64 arithmetic on raw bit patterns, with integers only.

Design note
-----------
This is the slow, always-correct half of the floating-point unit; ``_fp`` puts host-float fast
paths in front of it for the common case (normal operands and results, every mode but RMM) and
falls back here for everything else: RMM arithmetic, special operands (zeros in some positions,
infinities, NaNs, subnormals), results near overflow or in the subnormal range.

Invariants:

* Every finite operand is decoded to an exact ``(sign, m, e)`` with value ``(-1)**sign * m * 2**e``
  and ``m`` a non-negative Python int, so sums, products, quotients and roots are computed exactly
  (or with an explicit sticky bit) and rounded exactly once by :func:`round_pack`.
* A sticky bit is folded into bit 0 of ``m`` only when ``m`` carries at least ``p + 2`` significant
  bits, so bit 0 always lies strictly below the rounding position, in the subnormal range too.
* Tininess is detected after rounding, as RISC-V specifies: a nonzero result is tiny when rounding
  it to ``p`` bits with an unbounded exponent range gives a magnitude below ``2**emin``. UF is
  raised when the result is tiny and inexact.
* Every NaN result is the canonical NaN; a signalling NaN operand raises NV.

Prior art: Berkeley SoftFloat's ``softfloat_roundPackToF64`` (the rounding structure) and the RISC-V
unprivileged spec, chapters F and D (the flag and NaN rules). Trade-off: Python ints make each slow
operation cost a few microseconds, which is fine because programs rarely leave the fast paths.
"""

from __future__ import annotations

import math
from typing import Protocol

__all__ = [
    "DOUBLE",
    "DZ",
    "NV",
    "NX",
    "OF",
    "RDN",
    "RMM",
    "RNE",
    "RTZ",
    "RUP",
    "SINGLE",
    "UF",
    "FlagSink",
    "Format",
    "add_slow",
    "classify",
    "convert_format",
    "div_slow",
    "fma_slow",
    "from_int",
    "mul_slow",
    "round_pack",
    "sqrt_slow",
    "to_int",
]

#: Accrued exception flags, as laid out in fflags.
NX = 1
UF = 2
OF = 4
DZ = 8
NV = 16

#: Rounding modes, as encoded in the rm field and frm.
RNE = 0
RTZ = 1
RDN = 2
RUP = 3
RMM = 4


class FlagSink(Protocol):
    """Anything with an int ``fflags`` attribute that flags can be ORed into (the Hart)."""

    fflags: int


class Format:
    """Parameters of one IEEE binary interchange format."""

    __slots__ = (
        "bias",
        "emax",
        "emin",
        "exp_all",
        "exp_mask",
        "frac_bits",
        "frac_mask",
        "hidden",
        "inf",
        "max_finite",
        "p",
        "qmin",
        "qnan",
        "quiet_bit",
        "sign_bit",
        "width",
    )

    def __init__(self, width: int, exp_bits: int) -> None:
        self.width = width
        self.frac_bits = width - 1 - exp_bits
        self.p = self.frac_bits + 1
        self.bias = (1 << (exp_bits - 1)) - 1
        self.emax = self.bias
        self.emin = 1 - self.bias
        #: Exponent of the least significant bit of a subnormal.
        self.qmin = self.emin - self.frac_bits
        self.exp_all = (1 << exp_bits) - 1
        self.exp_mask = self.exp_all << self.frac_bits
        self.frac_mask = (1 << self.frac_bits) - 1
        self.hidden = 1 << self.frac_bits
        self.sign_bit = 1 << (width - 1)
        self.inf = self.exp_mask
        self.quiet_bit = 1 << (self.frac_bits - 1)
        self.qnan = self.exp_mask | self.quiet_bit
        self.max_finite = self.exp_mask - 1


SINGLE = Format(32, 8)
DOUBLE = Format(64, 11)

# Operand classes returned by classify(): the order matters only for readability.
ZERO = 0
FINITE = 1
INF = 2
QNAN = 3
SNAN = 4


def classify(bits: int, fmt: Format) -> int:
    """Return ZERO, FINITE (nonzero), INF, QNAN or SNAN for a bit pattern of ``fmt``."""
    exp = bits & fmt.exp_mask
    frac = bits & fmt.frac_mask
    if exp == fmt.exp_mask:
        if frac == 0:
            return INF
        return QNAN if frac & fmt.quiet_bit else SNAN
    if exp == 0 and frac == 0:
        return ZERO
    return FINITE


def _decode(bits: int, fmt: Format) -> tuple[int, int, int]:
    """Return ``(sign, m, e)`` of a finite pattern: value = (-1)**sign * m * 2**e."""
    sign = bits >> (fmt.width - 1)
    exp = (bits & fmt.exp_mask) >> fmt.frac_bits
    frac = bits & fmt.frac_mask
    if exp == 0:
        return sign, frac, fmt.qmin
    return sign, frac | fmt.hidden, exp - fmt.bias - fmt.frac_bits


def _round_up(sign: int, lsb: int, rem: int, half: int, rm: int) -> bool:
    """Whether to add one unit to a truncated magnitude, given the discarded ``rem``."""
    if rm == RNE:
        return rem > half or (rem == half and lsb == 1)
    if rm == RTZ:
        return False
    if rm == RDN:
        return sign == 1
    if rm == RUP:
        return sign == 0
    return rem >= half  # RMM


def _overflow(sign: int, fmt: Format, rm: int, st: FlagSink) -> int:
    st.fflags |= OF | NX
    to_inf = rm in (RNE, RMM) or (rm == RUP and sign == 0) or (rm == RDN and sign == 1)
    return (sign << (fmt.width - 1)) | (fmt.inf if to_inf else fmt.max_finite)


def round_pack(sign: int, m: int, e: int, fmt: Format, rm: int, st: FlagSink) -> int:
    """Round ``(-1)**sign * m * 2**e`` to ``fmt`` once, OR the flags into ``st``, return bits.

    ``m == 0`` gives a zero of the given sign (callers choose the sign of exact zeros).
    """
    if m == 0:
        return sign << (fmt.width - 1)
    p = fmt.p
    top = e + m.bit_length() - 1  # exponent of the leading bit before rounding
    q = top - p + 1
    q = max(q, fmt.qmin)
    shift = q - e
    inexact = False
    if shift <= 0:
        mant = m << -shift
    else:
        mant = m >> shift
        rem = m & ((1 << shift) - 1)
        if rem:
            inexact = True
            if _round_up(sign, mant & 1, rem, 1 << (shift - 1), rm):
                mant += 1
                if mant >> p:
                    mant >>= 1
                    q += 1
    if mant >> fmt.frac_bits:  # normal (possibly rounded up from the subnormal range)
        biased = q + p - 1 + fmt.bias
        if biased >= fmt.exp_all:
            return _overflow(sign, fmt, rm, st)
        bits = (biased << fmt.frac_bits) | (mant & fmt.frac_mask)
    else:
        bits = mant
    if inexact:
        flags = NX
        if top < fmt.emin and _tiny_after_rounding(sign, m, e, top, fmt, rm):
            flags |= UF
        st.fflags |= flags
    return (sign << (fmt.width - 1)) | bits


def _tiny_after_rounding(sign: int, m: int, e: int, top: int, fmt: Format, rm: int) -> bool:
    """Whether rounding to p bits with unbounded exponent stays below 2**emin."""
    if top < fmt.emin - 1:
        return True
    # top == emin - 1: tiny unless rounding at full precision carries up to 2**emin.
    shift = top - fmt.p + 1 - e
    if shift <= 0:
        return True
    mant = m >> shift
    rem = m & ((1 << shift) - 1)
    if rem and _round_up(sign, mant & 1, rem, 1 << (shift - 1), rm):
        mant += 1
    return not (mant >> fmt.p)


def _nan_result(kinds: tuple[int, ...], fmt: Format, st: FlagSink) -> int:
    if SNAN in kinds:
        st.fflags |= NV
    return fmt.qnan


def _invalid(fmt: Format, st: FlagSink) -> int:
    st.fflags |= NV
    return fmt.qnan


def _exact_sum(
    s1: int, m1: int, e1: int, s2: int, m2: int, e2: int, p: int
) -> tuple[int, int, int]:
    """Exact (or sticky-correct) ``(sign, magnitude, e)`` of the sum of two signed values."""
    if m1 == 0:
        return s2, m2, e2
    if m2 == 0:
        return s1, m1, e1
    if e1 < e2:
        s1, m1, e1, s2, m2, e2 = s2, m2, e2, s1, m1, e1
    # Keep the alignment shift bounded. The rounding position of the sum is at least e1 - p, so an
    # addend wholly below 2**(e1 - p - 2) only acts as a sticky bit and is replaced by one at
    # e1 - p - 3 (the sum then has >= p + 3 bits, so that bit is below the round bit).
    if e2 + m2.bit_length() <= e1 - p - 2:
        m2, e2 = 1, e1 - p - 3
    v1 = m1 << (e1 - e2)
    v = (v1 if s1 == 0 else -v1) + (m2 if s2 == 0 else -m2)
    if v < 0:
        return 1, -v, e2
    return 0, v, e2


def add_slow(a: int, b: int, negate_b: bool, fmt: Format, rm: int, st: FlagSink) -> int:
    """``a + b`` (or ``a - b``) exactly rounded, with every special case."""
    ka = classify(a, fmt)
    kb = classify(b, fmt)
    if ka >= QNAN or kb >= QNAN:
        return _nan_result((ka, kb), fmt, st)
    if negate_b:
        b ^= fmt.sign_bit
    if INF in (ka, kb):
        if ka == INF and kb == INF and (a ^ b) & fmt.sign_bit:
            return _invalid(fmt, st)
        return a if ka == INF else b
    sa, ma, ea = _decode(a, fmt)
    sb, mb, eb = _decode(b, fmt)
    return _add_decoded(sa, ma, ea, sb, mb, eb, fmt, rm, st)


def _add_decoded(
    sa: int, ma: int, ea: int, sb: int, mb: int, eb: int, fmt: Format, rm: int, st: FlagSink
) -> int:
    sign, mag, e = _exact_sum(sa, ma, ea, sb, mb, eb, fmt.p)
    if mag == 0:
        # Exact zero: same-signed zeros keep their sign, otherwise +0 (-0 when rounding down).
        if sa == sb:
            return sa << (fmt.width - 1)
        return (1 << (fmt.width - 1)) if rm == RDN else 0
    return round_pack(sign, mag, e, fmt, rm, st)


def mul_slow(a: int, b: int, fmt: Format, rm: int, st: FlagSink) -> int:
    """``a * b`` exactly rounded, with every special case."""
    ka = classify(a, fmt)
    kb = classify(b, fmt)
    if ka >= QNAN or kb >= QNAN:
        return _nan_result((ka, kb), fmt, st)
    sign = (a ^ b) >> (fmt.width - 1)
    if INF in (ka, kb):
        if ZERO in (ka, kb):
            return _invalid(fmt, st)
        return (sign << (fmt.width - 1)) | fmt.inf
    if ZERO in (ka, kb):
        return sign << (fmt.width - 1)
    _, ma, ea = _decode(a, fmt)
    _, mb, eb = _decode(b, fmt)
    return round_pack(sign, ma * mb, ea + eb, fmt, rm, st)


def div_slow(a: int, b: int, fmt: Format, rm: int, st: FlagSink) -> int:  # noqa: PLR0911 - IEEE 754 special cases, one return each
    """``a / b`` exactly rounded, with every special case (DZ for finite / 0)."""
    ka = classify(a, fmt)
    kb = classify(b, fmt)
    if ka >= QNAN or kb >= QNAN:
        return _nan_result((ka, kb), fmt, st)
    sign = (a ^ b) >> (fmt.width - 1)
    signed_zero = sign << (fmt.width - 1)
    if ka == INF:
        if kb == INF:
            return _invalid(fmt, st)
        return signed_zero | fmt.inf
    if kb == INF:
        return signed_zero
    if kb == ZERO:
        if ka == ZERO:
            return _invalid(fmt, st)
        st.fflags |= DZ
        return signed_zero | fmt.inf
    if ka == ZERO:
        return signed_zero
    _, ma, ea = _decode(a, fmt)
    _, mb, eb = _decode(b, fmt)
    # Scale the dividend so the quotient has at least p + 3 bits, then keep a sticky bit.
    k = fmt.p + 3 + mb.bit_length() - ma.bit_length()
    k = max(k, 0)
    quo, rem = divmod(ma << k, mb)
    return round_pack(sign, (quo << 1) | (rem != 0), ea - eb - k - 1, fmt, rm, st)


def sqrt_slow(a: int, fmt: Format, rm: int, st: FlagSink) -> int:
    """Square root exactly rounded: NV for negative nonzero operands, sqrt(-0) = -0."""
    ka = classify(a, fmt)
    if ka >= QNAN:
        return _nan_result((ka,), fmt, st)
    if ka == ZERO:
        return a
    if a & fmt.sign_bit:
        return _invalid(fmt, st)
    if ka == INF:
        return a
    _, m, e = _decode(a, fmt)
    if e & 1:
        m <<= 1
        e -= 1
    # Scale by an even power of two so the root has at least p + 3 bits.
    k = fmt.p + 4 - (m.bit_length() >> 1)
    k = max(k, 0)
    scaled = m << (2 * k)
    root = math.isqrt(scaled)
    sticky = scaled != root * root
    return round_pack(0, (root << 1) | sticky, ((e - 2 * k) >> 1) - 1, fmt, rm, st)


def fma_slow(
    a: int, b: int, c: int, negate_product: bool, negate_c: bool, fmt: Format, rm: int, st: FlagSink
) -> int:
    """``(+/-)(a * b) (+/-) c`` with a single rounding (FMADD, FMSUB, FNMSUB, FNMADD)."""
    ka = classify(a, fmt)
    kb = classify(b, fmt)
    kc = classify(c, fmt)
    # The spec makes inf * 0 invalid even when the addend is a quiet NaN.
    if (ka == INF and kb == ZERO) or (ka == ZERO and kb == INF):
        return _invalid(fmt, st)
    if ka >= QNAN or kb >= QNAN or kc >= QNAN:
        return _nan_result((ka, kb, kc), fmt, st)
    sp = ((a ^ b) >> (fmt.width - 1)) ^ negate_product
    sc = (c >> (fmt.width - 1)) ^ negate_c
    if INF in (ka, kb):
        if kc == INF and sc != sp:
            return _invalid(fmt, st)
        return (sp << (fmt.width - 1)) | fmt.inf
    if kc == INF:
        return (sc << (fmt.width - 1)) | fmt.inf
    if ZERO in (ka, kb):
        mp, ep = 0, 0
    else:
        _, ma, ea = _decode(a, fmt)
        _, mb, eb = _decode(b, fmt)
        mp, ep = ma * mb, ea + eb
    if kc == ZERO:
        mc, ec = 0, 0
    else:
        _, mc, ec = _decode(c, fmt)
    return _add_decoded(sp, mp, ep, sc, mc, ec, fmt, rm, st)


def convert_format(a: int, src: Format, dst: Format, rm: int, st: FlagSink) -> int:
    """Convert between SINGLE and DOUBLE (widening is exact; narrowing rounds once)."""
    ka = classify(a, src)
    if ka >= QNAN:
        return _nan_result((ka,), dst, st)
    sign = a >> (src.width - 1)
    if ka == INF:
        return (sign << (dst.width - 1)) | dst.inf
    if ka == ZERO:
        return sign << (dst.width - 1)
    _, m, e = _decode(a, src)
    return round_pack(sign, m, e, dst, rm, st)


def to_int(a: int, fmt: Format, bits: int, signed: bool, rm: int, st: FlagSink) -> int:
    """Round ``a`` to an integer and saturate to ``bits``-wide (un)signed range.

    Returns the mathematical integer result (possibly negative); NaN gives the maximum, as the
    spec's table says, and out-of-range values the nearest bound, both with NV.
    """
    lo = -(1 << (bits - 1)) if signed else 0
    hi = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
    ka = classify(a, fmt)
    if ka >= QNAN:
        st.fflags |= NV
        return hi
    sign = a >> (fmt.width - 1)
    if ka == INF:
        st.fflags |= NV
        return lo if sign else hi
    if ka == ZERO:
        return 0
    _, m, e = _decode(a, fmt)
    inexact = False
    if e >= 0:
        value = m << e
    else:
        value = m >> -e
        rem = m & ((1 << -e) - 1)
        if rem:
            inexact = True
            if _round_up(sign, value & 1, rem, 1 << (-e - 1), rm):
                value += 1
    if sign:
        value = -value
    if value < lo or value > hi:
        st.fflags |= NV
        return lo if sign else hi
    if inexact:
        st.fflags |= NX
    return value


def from_int(value: int, fmt: Format, rm: int, st: FlagSink) -> int:
    """Convert a mathematical integer to ``fmt`` with one rounding."""
    if value < 0:
        return round_pack(1, -value, 0, fmt, rm, st)
    return round_pack(0, value, 0, fmt, rm, st)
