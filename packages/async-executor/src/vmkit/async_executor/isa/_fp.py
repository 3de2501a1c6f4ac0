"""The RISC-V F and D extensions on raw bit patterns: the functions instruction templates call.

Why one module of this size: it is a flat table of small functions (one per F/D operation, in
both widths) over shared rounding and flag helpers; nothing in it is used without the rest.

Design note
-----------
Operands and results are raw IEEE bit patterns held in Python ints (doubles: 64 bits, singles:
32 bits; the caller NaN-boxes singles with :func:`box_s` / :func:`unbox_s`). ``rm`` is a resolved
static rounding mode 0..4. Functions that can raise IEEE exceptions take ``st`` last, any object
with an int ``fflags`` attribute, and OR the accrued flags into it.

Every result is exact (IEEE 754-2008 with RISC-V's choices: tininess after rounding, canonical
NaNs, minimumNumber/maximumNumber for fmin/fmax, NV for inf * 0 + qNaN). Two tiers give that at
speed; a fast path either answers exactly or hands over to the slow path, never approximates:

* Round-to-nearest-even (what compiled code runs in) does the arithmetic in host doubles, which
  are IEEE-correct in RNE, and derives NX cheaply: Fast2Sum for sums; for products, quotients and
  roots a bit test (an exact result's odd significand parts fit in 53 bits, so a low bit set in
  both normal significands proves inexactness) with an integer check behind it. Singles are
  computed in double and rounded once to single: for +, -, *, /, sqrt that double rounding is
  innocuous because 53 >= 2 * 24 + 2. Fused multiply-add builds the exact sum as an integer and
  lets CPython's correctly rounded int-to-float conversion round it once (for singles after a
  round-to-odd step to 53 bits, which makes the second rounding safe).
* Directed modes (RTZ, RDN, RUP) start from the RNE result and the side of the exact value
  relative to it (Fast2Sum's error term, an exact float product such as q * y for singles, or an
  integer comparison): the directed result is that result or its neighbour, one bit-pattern step
  away. Float-to-int conversions use int/round/floor/ceil (and an exact tie test for RMM).
* Everything else (special operands, results near overflow or in the subnormal range, RMM
  arithmetic) takes the integer slow path in :mod:`._fp_core`.

Invariants: fast paths only accept finite results well inside the normal range (or zeros that are
exact), so OF and UF are only ever raised by the slow path; every NaN an operation produces is the
canonical NaN built by the slow path, so host NaN payloads never leak (only the sign-injection
moves copy payloads, as the spec says). Bits and floats are converted through struct, which is
thread-safe (a shared memoryview would be a little faster but would race between harts).
"""

from __future__ import annotations

import math
import struct

from vmkit.async_executor.isa._fp_core import (
    DOUBLE,
    DZ,
    NV,
    NX,
    OF,
    RDN,
    RMM,
    RNE,
    RTZ,
    RUP,
    SINGLE,
    UF,
    FlagSink,
    add_slow,
    convert_format,
    div_slow,
    fma_slow,
    from_int,
    mul_slow,
    sqrt_slow,
    to_int,
)

__all__ = [
    "CANONICAL_NAN_D",
    "CANONICAL_NAN_S",
    "DZ",
    "NV",
    "NX",
    "OF",
    "RDN",
    "RMM",
    "RNE",
    "RTZ",
    "RUP",
    "UF",
    "FlagSink",
    "box_s",
    "fadd_d",
    "fadd_s",
    "fclass_d",
    "fclass_s",
    "fcvt_d_l",
    "fcvt_d_lu",
    "fcvt_d_s",
    "fcvt_d_w",
    "fcvt_d_wu",
    "fcvt_l_d",
    "fcvt_l_s",
    "fcvt_lu_d",
    "fcvt_lu_s",
    "fcvt_s_d",
    "fcvt_s_l",
    "fcvt_s_lu",
    "fcvt_s_w",
    "fcvt_s_wu",
    "fcvt_w_d",
    "fcvt_w_s",
    "fcvt_wu_d",
    "fcvt_wu_s",
    "fdiv_d",
    "fdiv_s",
    "feq_d",
    "feq_s",
    "fle_d",
    "fle_s",
    "flt_d",
    "flt_s",
    "fmadd_d",
    "fmadd_s",
    "fmax_d",
    "fmax_s",
    "fmin_d",
    "fmin_s",
    "fmsub_d",
    "fmsub_s",
    "fmul_d",
    "fmul_s",
    "fnmadd_d",
    "fnmadd_s",
    "fnmsub_d",
    "fnmsub_s",
    "fsgnj_d",
    "fsgnj_s",
    "fsgnjn_d",
    "fsgnjn_s",
    "fsgnjx_d",
    "fsgnjx_s",
    "fsqrt_d",
    "fsqrt_s",
    "fsub_d",
    "fsub_s",
    "unbox_s",
]

#: The canonical quiet NaNs every NaN-producing operation returns.
CANONICAL_NAN_S = 0x7FC00000
CANONICAL_NAN_D = 0x7FF8000000000000

_M32 = 0xFFFFFFFF
_M64 = 0xFFFFFFFFFFFFFFFF
_BOX = 0xFFFFFFFF00000000
_S32 = 0x80000000
_S64 = 0x8000000000000000
_FRAC_D = (1 << 52) - 1
_EXP_D = 0x7FF0000000000000
_HID_D = 1 << 52
_ABS_D = 0x7FFFFFFFFFFFFFFF
_QUIET_D = 1 << 51
_EXP_S = 0x7F800000
_ABS_S = 0x7FFFFFFF
_QUIET_S = 1 << 22
_LOW26 = (1 << 26) - 1

# The fast paths accept results whose magnitude lies in [_LO, _HI]: far enough from the subnormal
# range that tininess cannot arise and from the top that rounding cannot overflow.
_LO_D = 2.0**-1020
_HI_D = 2.0**1023
_LO_S = 2.0**-125
_HI_S = 2.0**127

_pack_QQ = struct.Struct("<QQ").pack
_unpack_dd = struct.Struct("<dd").unpack
_pack_Q = struct.Struct("<Q").pack
_unpack_d = struct.Struct("<d").unpack
_pack_d = struct.Struct("<d").pack
_unpack_Q = struct.Struct("<Q").unpack
_pack_II = struct.Struct("<II").pack
_unpack_ff = struct.Struct("<ff").unpack
_pack_I = struct.Struct("<I").pack
_unpack_f = struct.Struct("<f").unpack
_pack_f = struct.Struct("<f").pack
_unpack_I = struct.Struct("<I").unpack
_sqrt = math.sqrt
_ldexp = math.ldexp


# --- NaN boxing --------------------------------------------------------------------------------


def unbox_s(freg: int) -> int:
    """The single held in a 64-bit f register, or the canonical NaN if it is not NaN-boxed."""
    if freg >> 32 == _M32:
        return freg & _M32
    return CANONICAL_NAN_S


def box_s(bits: int) -> int:
    """NaN-box a 32-bit single into a 64-bit f register value."""
    return _BOX | bits


# --- double arithmetic -------------------------------------------------------------------------


def _directed_d(rb: int, cmp: int, rm: int, st: FlagSink) -> int:
    """Turn the RNE result ``rb`` of an inexact operation into the RTZ/RDN/RUP result.

    ``cmp`` is the sign of |exact| - |rb| (nonzero). The exact value lies between rb and its
    neighbour on the ``cmp`` side, so a directed result is rb or that neighbour, one step of the
    bit pattern away. Callers keep |rb| in [2**-1020, 2**1023), so no step can overflow or reach
    the subnormal range.
    """
    st.fflags |= NX
    if rm == RTZ or (rm == RDN) == (rb >> 63 == 0):  # toward the smaller magnitude
        return rb - 1 if cmp < 0 else rb
    return rb + 1 if cmp > 0 else rb


def _directed_s(sb: int, cmp: int, rm: int, st: FlagSink) -> int:
    """:func:`_directed_d` for singles: callers keep |sb| in [2**-125, 2**127]."""
    st.fflags |= NX
    if rm == RTZ or (rm == RDN) == (sb >> 31 == 0):
        return sb - 1 if cmp < 0 else sb
    return sb + 1 if cmp > 0 else sb


def _cmp_scaled(m1: int, e1: int, m2: int, e2: int) -> int:
    """The sign of m1 * 2**e1 - m2 * 2**e2 for non-negative integers."""
    if e1 >= e2:
        m1 <<= e1 - e2
    else:
        m2 <<= e2 - e1
    return (m1 > m2) - (m1 < m2)


def _ulp_exp_d(bits: int) -> int:
    """Exponent of the least significant significand bit of a finite double."""
    return (((bits >> 52) & 0x7FF) or 1) - 1075


def fadd_d(a: int, b: int, rm: int, st: FlagSink) -> int:
    """FADD.D: ``a + b`` rounded by ``rm``."""
    if rm != RMM:
        x, y = _unpack_dd(_pack_QQ(a, b))
        r = x + y
        if r - r == 0.0:  # finite, hence both operands finite and no overflow
            if rm == 0:
                # Fast2Sum: for the larger operand x, r - x is exact, so the sum is exact iff
                # it is y. Testing both orders needs no comparison of magnitudes.
                if r - x != y or r - y != x:
                    st.fflags |= NX
                return _unpack_Q(_pack_d(r))[0]  # type: ignore[no-any-return]
            if _LO_D <= abs(r) < _HI_D:
                return _add_directed_d(x, y, r, rm, st)
    return add_slow(a, b, False, DOUBLE, rm, st)


def fsub_d(a: int, b: int, rm: int, st: FlagSink) -> int:
    """FSUB.D: ``a - b`` rounded by ``rm``."""
    if rm != RMM:
        x, y = _unpack_dd(_pack_QQ(a, b))
        r = x - y
        if r - r == 0.0:
            if rm == 0:
                if r - x != -y or r + y != x:
                    st.fflags |= NX
                return _unpack_Q(_pack_d(r))[0]  # type: ignore[no-any-return]
            if _LO_D <= abs(r) < _HI_D:
                return _add_directed_d(x, -y, r, rm, st)
    return add_slow(a, b, True, DOUBLE, rm, st)


def _add_directed_d(x: float, y: float, r: float, rm: int, st: FlagSink) -> int:
    """Directed rounding of x + y from its RNE sum r, using the exact Fast2Sum error."""
    if abs(x) < abs(y):
        x, y = y, x
    err = y - (r - x)  # exact: (x + y) - r
    rb: int = _unpack_Q(_pack_d(r))[0]
    if err == 0.0:
        return rb
    return _directed_d(rb, 1 if (err > 0.0) != (r < 0.0) else -1, rm, st)


def _sig_d(bits: int) -> int:
    """Integer significand of a finite double (subnormals have no hidden bit)."""
    if bits & _EXP_D:
        return (bits & _FRAC_D) | _HID_D
    return bits & _FRAC_D


def fmul_d(a: int, b: int, rm: int, st: FlagSink) -> int:
    """FMUL.D: ``a * b`` rounded by ``rm``."""
    if rm != RMM:
        x, y = _unpack_dd(_pack_QQ(a, b))
        r = x * y
        if r - r == 0.0:
            ar = abs(r)
            if rm == 0:
                if ar >= _LO_D:
                    # The product is exact iff the odd parts of the significands multiply to at
                    # most 53 bits. A normal significand with one of its low 26 bits set has an
                    # odd part of at least 2**27, so two of them make the product inexact.
                    if (a & _LOW26 and b & _LOW26 and a & _EXP_D and b & _EXP_D) or _inexact_mul(
                        a, b
                    ):
                        st.fflags |= NX
                    return _unpack_Q(_pack_d(r))[0]  # type: ignore[no-any-return]
                if x == 0.0 or y == 0.0:
                    return _unpack_Q(_pack_d(r))[0]  # type: ignore[no-any-return]
            elif _LO_D <= ar < _HI_D:
                rb: int = _unpack_Q(_pack_d(r))[0]
                cmp = _cmp_scaled(
                    _sig_d(a) * _sig_d(b),
                    _ulp_exp_d(a) + _ulp_exp_d(b),
                    (rb & _FRAC_D) | _HID_D,
                    _ulp_exp_d(rb),
                )
                return _directed_d(rb, cmp, rm, st) if cmp else rb
    return mul_slow(a, b, DOUBLE, rm, st)


def _inexact_mul(a: int, b: int) -> bool:
    prod = _sig_d(a) * _sig_d(b)
    n = prod.bit_length() - 53
    return n > 0 and prod & ((1 << n) - 1) != 0


def fdiv_d(a: int, b: int, rm: int, st: FlagSink) -> int:
    """FDIV.D: ``a / b`` rounded by ``rm`` (DZ for a finite nonzero dividend over zero)."""
    if rm != RMM:
        x, y = _unpack_dd(_pack_QQ(a, b))
        if y != 0.0:
            r = x / y
            if x == 0.0 and y - y == 0.0:  # 0 / finite: an exact signed zero in every mode
                return _unpack_Q(_pack_d(r))[0]  # type: ignore[no-any-return]
            if r - r == 0.0 and _LO_D <= abs(r) < _HI_D:
                rb: int = _unpack_Q(_pack_d(r))[0]
                if rm == 0:
                    # Exact iff q * y == x, so odd(q) * odd(y) == odd(x) < 2**53: impossible
                    # when both normal significands have one of their low 26 bits set.
                    if (rb & _LOW26 and b & _LOW26 and b & _EXP_D) or _inexact_div(a, b):
                        st.fflags |= NX
                    return rb
                # |x / y| against |r|: compare |x| with |r| * |y|.
                cmp = _cmp_scaled(
                    _sig_d(a),
                    _ulp_exp_d(a),
                    ((rb & _FRAC_D) | _HID_D) * _sig_d(b),
                    _ulp_exp_d(rb) + _ulp_exp_d(b),
                )
                return _directed_d(rb, cmp, rm, st) if cmp else rb
    return div_slow(a, b, DOUBLE, rm, st)


def _inexact_div(a: int, b: int) -> bool:
    # The quotient is a dyadic rational (hence, being in range, exact) iff the odd part of the
    # divisor's significand divides the dividend's significand.
    mb = _sig_d(b)
    return _sig_d(a) % (mb >> ((mb & -mb).bit_length() - 1)) != 0


def fsqrt_d(a: int, rm: int, st: FlagSink) -> int:
    """FSQRT.D: square root rounded by ``rm`` (NV and canonical NaN for negative operands)."""
    if rm != RMM and not a >> 63 and (a & _EXP_D) != _EXP_D and a:
        r = _sqrt(_unpack_d(_pack_Q(a))[0])
        rb: int = _unpack_Q(_pack_d(r))[0]
        # An exact root's significand squares into 53 bits, so its odd part is below 2**27;
        # one of its low 26 bits set means inexact (the usual case).
        if rm == 0 and rb & _LOW26:
            st.fflags |= NX
            return rb
        # Roots of positive doubles are normal and far from both ends of the range. The root is
        # exact iff a == r * r; otherwise the sign of a - r * r says where the exact root lies.
        mr = (rb & _FRAC_D) | _HID_D
        cmp = _cmp_scaled(_sig_d(a), _ulp_exp_d(a), mr * mr, 2 * _ulp_exp_d(rb))
        if cmp == 0:
            return rb
        if rm == 0:
            st.fflags |= NX
            return rb
        return _directed_d(rb, cmp, rm, st)
    return sqrt_slow(a, DOUBLE, rm, st)


def _fma_fast_d(  # noqa: PLR0911, PLR0912 - positional for call speed; IEEE 754 special cases, one return each
    a: int, b: int, c: int, flip_product: int, flip_c: int, rm: int, st: FlagSink
) -> int | None:
    """Fused multiply-add (RNE, RTZ, RDN, RUP) of normal doubles with a normal result, or None.

    The exact sum is an integer ``n`` times ``2**e``; CPython's int-to-float conversion rounds
    ``n`` to 53 bits exactly once (half to even) and ldexp scales without rounding in range.
    Comparing that float back with ``n`` gives exactness and, for directed modes, the side of
    the exact value.
    """
    ea = (a >> 52) & 0x7FF
    eb = (b >> 52) & 0x7FF
    if not (0 < ea < 0x7FF and 0 < eb < 0x7FF):
        # A zero times a finite value plus a nonzero finite addend is exactly the addend.
        if (
            ((not a & _ABS_D and eb != 0x7FF) or (not b & _ABS_D and ea != 0x7FF))
            and c & _ABS_D
            and c & _EXP_D != _EXP_D
        ):
            return c ^ _S64 if flip_c else c
        return None
    p = ((a & _FRAC_D) | _HID_D) * ((b & _FRAC_D) | _HID_D)
    if ((a ^ b) >> 63) ^ flip_product:
        p = -p
    ec = (c >> 52) & 0x7FF
    if 0 < ec < 0x7FF:
        m = (c & _FRAC_D) | _HID_D
        if (c >> 63) ^ flip_c:
            m = -m
        # Exponents of the least significant bits: product ea + eb - 2150, addend ec - 1075.
        d = ea + eb - ec - 1075
        if d >= 0:
            if d > 200:
                return None
            n = (p << d) + m
            e = ec - 1075
        else:
            if d < -200:
                return None
            n = p + (m << -d)
            e = ea + eb - 2150
    elif c & _ABS_D:
        return None  # subnormal, infinite or NaN addend
    else:
        # A zero addend (an accumulator's first step): the nonzero product rounded once.
        n = p
        e = ea + eb - 2150
    if n == 0:
        return _S64 if rm == RDN else 0  # exact cancellation: +0, or -0 when rounding down
    top = n.bit_length() + e
    if not -1020 < top < 1023:
        return None
    f = float(n)
    rb: int = _unpack_Q(_pack_d(_ldexp(f, e)))[0]
    back = int(f)
    if back == n:
        return rb
    if rm == RNE:
        st.fflags |= NX
        return rb
    return _directed_d(rb, 1 if (n > back) == (n > 0) else -1, rm, st)


def fmadd_d(a: int, b: int, c: int, rm: int, st: FlagSink) -> int:
    """FMADD.D: ``a * b + c`` with a single rounding."""
    if rm != RMM:
        r = _fma_fast_d(a, b, c, 0, 0, rm, st)
        if r is not None:
            return r
    return fma_slow(a, b, c, False, False, DOUBLE, rm, st)


def fmsub_d(a: int, b: int, c: int, rm: int, st: FlagSink) -> int:
    """FMSUB.D: ``a * b - c`` with a single rounding."""
    if rm != RMM:
        r = _fma_fast_d(a, b, c, 0, 1, rm, st)
        if r is not None:
            return r
    return fma_slow(a, b, c, False, True, DOUBLE, rm, st)


def fnmsub_d(a: int, b: int, c: int, rm: int, st: FlagSink) -> int:
    """FNMSUB.D: ``-(a * b) + c`` with a single rounding."""
    if rm != RMM:
        r = _fma_fast_d(a, b, c, 1, 0, rm, st)
        if r is not None:
            return r
    return fma_slow(a, b, c, True, False, DOUBLE, rm, st)


def fnmadd_d(a: int, b: int, c: int, rm: int, st: FlagSink) -> int:
    """FNMADD.D: ``-(a * b) - c`` with a single rounding."""
    if rm != RMM:
        r = _fma_fast_d(a, b, c, 1, 1, rm, st)
        if r is not None:
            return r
    return fma_slow(a, b, c, True, True, DOUBLE, rm, st)


# --- single arithmetic -------------------------------------------------------------------------


def fadd_s(a: int, b: int, rm: int, st: FlagSink) -> int:
    """FADD.S: ``a + b`` rounded by ``rm``."""
    if rm != RMM:
        x, y = _unpack_ff(_pack_II(a, b))
        r = x + y
        if _LO_S <= abs(r) <= _HI_S:
            packed = _pack_f(r)  # the one rounding to single (double rounding is innocuous)
            if rm == RNE:
                if r - x != y or r - y != x or _unpack_f(packed)[0] != r:
                    st.fflags |= NX
                return _unpack_I(packed)[0]  # type: ignore[no-any-return]
            return _add_directed_s(x, y, r, packed, rm, st)
        if r == 0.0 and rm == RNE:  # two singles that cancel to zero do so exactly
            return _unpack_I(_pack_f(r))[0]  # type: ignore[no-any-return]
    return add_slow(a, b, False, SINGLE, rm, st)


def fsub_s(a: int, b: int, rm: int, st: FlagSink) -> int:
    """FSUB.S: ``a - b`` rounded by ``rm``."""
    if rm != RMM:
        x, y = _unpack_ff(_pack_II(a, b))
        r = x - y
        if _LO_S <= abs(r) <= _HI_S:
            packed = _pack_f(r)
            if rm == RNE:
                if r - x != -y or r + y != x or _unpack_f(packed)[0] != r:
                    st.fflags |= NX
                return _unpack_I(packed)[0]  # type: ignore[no-any-return]
            return _add_directed_s(x, -y, r, packed, rm, st)
        if r == 0.0 and rm == RNE:
            return _unpack_I(_pack_f(r))[0]  # type: ignore[no-any-return]
    return add_slow(a, b, True, SINGLE, rm, st)


def _add_directed_s(x: float, y: float, r: float, packed: bytes, rm: int, st: FlagSink) -> int:
    """Directed rounding of the single sum x + y from its double sum r and single RNE ``packed``.

    r - s is exact (Sterbenz) and, when nonzero, at least an ulp of r, which outweighs r's own
    rounding error; when zero, the exact Fast2Sum error of r decides the side.
    """
    sb: int = _unpack_I(packed)[0]
    side = r - _unpack_f(packed)[0]
    if side == 0.0:
        if abs(x) < abs(y):
            x, y = y, x
        side = y - (r - x)
        if side == 0.0:
            return sb
    return _directed_s(sb, 1 if (side > 0.0) == (r > 0.0) else -1, rm, st)


def fmul_s(a: int, b: int, rm: int, st: FlagSink) -> int:
    """FMUL.S: ``a * b`` rounded by ``rm``."""
    if rm != RMM:
        x, y = _unpack_ff(_pack_II(a, b))
        r = x * y  # exact: 48 significand bits and an exponent well inside double's range
        if _LO_S <= abs(r) <= _HI_S:
            packed = _pack_f(r)
            q = _unpack_f(packed)[0]
            if q == r:
                return _unpack_I(packed)[0]  # type: ignore[no-any-return]
            if rm == RNE:
                st.fflags |= NX
                return _unpack_I(packed)[0]  # type: ignore[no-any-return]
            return _directed_s(_unpack_I(packed)[0], 1 if abs(r) > abs(q) else -1, rm, st)
        if r == 0.0 and (x == 0.0 or y == 0.0) and r - r == 0.0:
            return _unpack_I(_pack_f(r))[0]  # type: ignore[no-any-return]
    return mul_slow(a, b, SINGLE, rm, st)


def fdiv_s(a: int, b: int, rm: int, st: FlagSink) -> int:
    """FDIV.S: ``a / b`` rounded by ``rm``."""
    if rm != RMM:
        x, y = _unpack_ff(_pack_II(a, b))
        if y != 0.0:
            r = x / y
            if _LO_S <= abs(r) <= _HI_S:
                packed = _pack_f(r)
                q = _unpack_f(packed)[0]
                # q * y is exact in double (48 bits): q is the exact quotient iff q * y == x,
                # and otherwise |x| against |q * y| says on which side of q the quotient lies.
                qy = q * y
                if qy == x:
                    return _unpack_I(packed)[0]  # type: ignore[no-any-return]
                if rm == RNE:
                    st.fflags |= NX
                    return _unpack_I(packed)[0]  # type: ignore[no-any-return]
                return _directed_s(_unpack_I(packed)[0], 1 if abs(x) > abs(qy) else -1, rm, st)
    return div_slow(a, b, SINGLE, rm, st)


def fsqrt_s(a: int, rm: int, st: FlagSink) -> int:
    """FSQRT.S: square root rounded by ``rm``."""
    if rm != RMM and not a >> 31 and (a & 0x7F800000) != 0x7F800000 and a:
        x = _unpack_f(_pack_I(a))[0]
        packed = _pack_f(_sqrt(x))  # roots of singles are normal singles
        q = _unpack_f(packed)[0]
        qq = q * q  # exact in double
        if qq == x:
            return _unpack_I(packed)[0]  # type: ignore[no-any-return]
        if rm == RNE:
            st.fflags |= NX
            return _unpack_I(packed)[0]  # type: ignore[no-any-return]
        return _directed_s(_unpack_I(packed)[0], 1 if x > qq else -1, rm, st)
    return sqrt_slow(a, SINGLE, rm, st)


def _fma_fast_s(  # noqa: PLR0911, PLR0912 - positional for call speed; IEEE 754 special cases, one return each
    a: int, b: int, c: int, flip_product: int, flip_c: int, rm: int, st: FlagSink
) -> int | None:
    """Fused multiply-add (RNE, RTZ, RDN, RUP) of normal singles with a normal result, or None.

    The exact integer sum is first rounded to 53 bits with round-to-odd (a sticky bit), which
    makes the final RNE rounding to 24 bits correct (53 >= 24 + 2), then converted exactly.
    """
    ea = (a >> 23) & 0xFF
    eb = (b >> 23) & 0xFF
    if not (0 < ea < 0xFF and 0 < eb < 0xFF):
        if (
            ((not a & _ABS_S and eb != 0xFF) or (not b & _ABS_S and ea != 0xFF))
            and c & _ABS_S
            and c & _EXP_S != _EXP_S
        ):
            return c ^ _S32 if flip_c else c
        return None
    p = ((a & 0x7FFFFF) | 0x800000) * ((b & 0x7FFFFF) | 0x800000)
    ec = (c >> 23) & 0xFF
    if 0 < ec < 0xFF:
        m = (c & 0x7FFFFF) | 0x800000
        # Exponents of the least significant bits: product ea + eb - 300, addend ec - 150.
        d = ea + eb - ec - 150
        if d >= 0:
            if d > 100:
                return None
            p <<= d
            e = ec - 150
        else:
            if d < -100:
                return None
            m <<= -d
            e = ea + eb - 300
        if (c >> 31) ^ flip_c:
            m = -m
    elif c & _ABS_S:
        return None  # subnormal, infinite or NaN addend
    else:
        m = 0  # a zero addend: the nonzero product rounded once
        e = ea + eb - 300
    n = (-p if ((a ^ b) >> 31) ^ flip_product else p) + m
    if n == 0:
        return _S32 if rm == RDN else 0
    nbits = n.bit_length()
    top = nbits + e
    if not -124 < top < 127:
        return None
    inexact = False
    if nbits > 53:
        shift = nbits - 53
        mag = -n if n < 0 else n
        hi = mag >> shift
        if mag & ((1 << shift) - 1):
            hi |= 1
            inexact = True
        n = -hi if n < 0 else hi
        e += shift
    v = _ldexp(float(n), e)  # exact: at most 53 bits, well inside double's range
    packed = _pack_f(v)
    sb: int = _unpack_I(packed)[0]
    sv = _unpack_f(packed)[0]
    if sv == v and not inexact:
        return sb
    if rm == RNE:
        st.fflags |= NX
        return sb
    # Round-to-odd kept v on the same side of every single as the exact sum.
    return _directed_s(sb, 1 if abs(v) > abs(sv) else -1, rm, st)


def fmadd_s(a: int, b: int, c: int, rm: int, st: FlagSink) -> int:
    """FMADD.S: ``a * b + c`` with a single rounding."""
    if rm != RMM:
        r = _fma_fast_s(a, b, c, 0, 0, rm, st)
        if r is not None:
            return r
    return fma_slow(a, b, c, False, False, SINGLE, rm, st)


def fmsub_s(a: int, b: int, c: int, rm: int, st: FlagSink) -> int:
    """FMSUB.S: ``a * b - c`` with a single rounding."""
    if rm != RMM:
        r = _fma_fast_s(a, b, c, 0, 1, rm, st)
        if r is not None:
            return r
    return fma_slow(a, b, c, False, True, SINGLE, rm, st)


def fnmsub_s(a: int, b: int, c: int, rm: int, st: FlagSink) -> int:
    """FNMSUB.S: ``-(a * b) + c`` with a single rounding."""
    if rm != RMM:
        r = _fma_fast_s(a, b, c, 1, 0, rm, st)
        if r is not None:
            return r
    return fma_slow(a, b, c, True, False, SINGLE, rm, st)


def fnmadd_s(a: int, b: int, c: int, rm: int, st: FlagSink) -> int:
    """FNMADD.S: ``-(a * b) - c`` with a single rounding."""
    if rm != RMM:
        r = _fma_fast_s(a, b, c, 1, 1, rm, st)
        if r is not None:
            return r
    return fma_slow(a, b, c, True, True, SINGLE, rm, st)


# --- sign injection, min/max, compares, classify --------------------------------------------------


def fsgnj_d(a: int, b: int) -> int:
    """FSGNJ.D: ``a`` with the sign of ``b``."""
    return (a & ~_S64) | (b & _S64)


def fsgnjn_d(a: int, b: int) -> int:
    """FSGNJN.D: ``a`` with the opposite of ``b``'s sign."""
    return (a & ~_S64) | (~b & _S64)


def fsgnjx_d(a: int, b: int) -> int:
    """FSGNJX.D: ``a`` with the XOR of both signs."""
    return a ^ (b & _S64)


def fsgnj_s(a: int, b: int) -> int:
    """FSGNJ.S: ``a`` with the sign of ``b``."""
    return (a & 0x7FFFFFFF) | (b & _S32)


def fsgnjn_s(a: int, b: int) -> int:
    """FSGNJN.S: ``a`` with the opposite of ``b``'s sign."""
    return (a & 0x7FFFFFFF) | (~b & _S32)


def fsgnjx_s(a: int, b: int) -> int:
    """FSGNJX.S: ``a`` with the XOR of both signs."""
    return a ^ (b & _S32)


def fmin_d(a: int, b: int, st: FlagSink) -> int:
    """FMIN.D (minimumNumber): a NaN operand yields the other; -0 < +0; NV on sNaN."""
    if (a & _ABS_D) > _EXP_D or (b & _ABS_D) > _EXP_D:
        return _minmax_nan_d(a, b, st)
    if (a ^ b) >> 63:  # opposite signs (-0 and +0 included): the negative one
        return a if a >> 63 else b
    if a >> 63:  # both negative: the larger pattern is the smaller value
        return a if a >= b else b
    return a if a <= b else b


def fmax_d(a: int, b: int, st: FlagSink) -> int:
    """FMAX.D (maximumNumber): a NaN operand yields the other; +0 > -0; NV on sNaN."""
    if (a & _ABS_D) > _EXP_D or (b & _ABS_D) > _EXP_D:
        return _minmax_nan_d(a, b, st)
    if (a ^ b) >> 63:
        return b if a >> 63 else a
    if a >> 63:
        return a if a <= b else b
    return a if a >= b else b


def _minmax_nan_d(a: int, b: int, st: FlagSink) -> int:
    na = (a & _ABS_D) > _EXP_D
    nb = (b & _ABS_D) > _EXP_D
    if (na and not a & _QUIET_D) or (nb and not b & _QUIET_D):
        st.fflags |= NV
    if na and nb:
        return CANONICAL_NAN_D
    return b if na else a


def _unordered_d(a: int, b: int, st: FlagSink, quiet: bool) -> int:
    """Comparison result 0 with a NaN operand: NV for sNaN, or for any NaN unless quiet."""
    if (
        not quiet
        or ((a & _ABS_D) > _EXP_D and not a & _QUIET_D)
        or ((b & _ABS_D) > _EXP_D and not b & _QUIET_D)
    ):
        st.fflags |= NV
    return 0


def feq_d(a: int, b: int, st: FlagSink) -> int:
    """FEQ.D: quiet equality (NV only for a signalling NaN operand)."""
    if (a & _ABS_D) > _EXP_D or (b & _ABS_D) > _EXP_D:
        return _unordered_d(a, b, st, True)
    return 1 if a == b or not (a | b) & _ABS_D else 0


def flt_d(a: int, b: int, st: FlagSink) -> int:
    """FLT.D: signalling less-than (NV for any NaN operand)."""
    if (a & _ABS_D) > _EXP_D or (b & _ABS_D) > _EXP_D:
        return _unordered_d(a, b, st, False)
    if (a ^ b) >> 63:  # opposite signs: a < b iff a is the negative one, unless both are zeros
        return 1 if a >> 63 and (a | b) & _ABS_D else 0
    if a >> 63:
        return 1 if a > b else 0
    return 1 if a < b else 0


def fle_d(a: int, b: int, st: FlagSink) -> int:
    """FLE.D: signalling less-or-equal (NV for any NaN operand)."""
    if (a & _ABS_D) > _EXP_D or (b & _ABS_D) > _EXP_D:
        return _unordered_d(a, b, st, False)
    if (a ^ b) >> 63:
        return 1 if a >> 63 or not (a | b) & _ABS_D else 0
    if a >> 63:
        return 1 if a >= b else 0
    return 1 if a <= b else 0


def fmin_s(a: int, b: int, st: FlagSink) -> int:
    """FMIN.S (minimumNumber): a NaN operand yields the other; -0 < +0; NV on sNaN."""
    if (a & _ABS_S) > _EXP_S or (b & _ABS_S) > _EXP_S:
        return _minmax_nan_s(a, b, st)
    if (a ^ b) >> 31:  # opposite signs (-0 and +0 included): the negative one
        return a if a >> 31 else b
    if a >> 31:  # both negative: the larger pattern is the smaller value
        return a if a >= b else b
    return a if a <= b else b


def fmax_s(a: int, b: int, st: FlagSink) -> int:
    """FMAX.S (maximumNumber): a NaN operand yields the other; +0 > -0; NV on sNaN."""
    if (a & _ABS_S) > _EXP_S or (b & _ABS_S) > _EXP_S:
        return _minmax_nan_s(a, b, st)
    if (a ^ b) >> 31:
        return b if a >> 31 else a
    if a >> 31:
        return a if a <= b else b
    return a if a >= b else b


def _minmax_nan_s(a: int, b: int, st: FlagSink) -> int:
    na = (a & _ABS_S) > _EXP_S
    nb = (b & _ABS_S) > _EXP_S
    if (na and not a & _QUIET_S) or (nb and not b & _QUIET_S):
        st.fflags |= NV
    if na and nb:
        return CANONICAL_NAN_S
    return b if na else a


def _unordered_s(a: int, b: int, st: FlagSink, quiet: bool) -> int:
    """Comparison result 0 with a NaN operand: NV for sNaN, or for any NaN unless quiet."""
    if (
        not quiet
        or ((a & _ABS_S) > _EXP_S and not a & _QUIET_S)
        or ((b & _ABS_S) > _EXP_S and not b & _QUIET_S)
    ):
        st.fflags |= NV
    return 0


def feq_s(a: int, b: int, st: FlagSink) -> int:
    """FEQ.S: quiet equality (NV only for a signalling NaN operand)."""
    if (a & _ABS_S) > _EXP_S or (b & _ABS_S) > _EXP_S:
        return _unordered_s(a, b, st, True)
    return 1 if a == b or not (a | b) & _ABS_S else 0


def flt_s(a: int, b: int, st: FlagSink) -> int:
    """FLT.S: signalling less-than (NV for any NaN operand)."""
    if (a & _ABS_S) > _EXP_S or (b & _ABS_S) > _EXP_S:
        return _unordered_s(a, b, st, False)
    if (a ^ b) >> 31:  # opposite signs: a < b iff a is the negative one, unless both are zeros
        return 1 if a >> 31 and (a | b) & _ABS_S else 0
    if a >> 31:
        return 1 if a > b else 0
    return 1 if a < b else 0


def fle_s(a: int, b: int, st: FlagSink) -> int:
    """FLE.S: signalling less-or-equal (NV for any NaN operand)."""
    if (a & _ABS_S) > _EXP_S or (b & _ABS_S) > _EXP_S:
        return _unordered_s(a, b, st, False)
    if (a ^ b) >> 31:
        return 1 if a >> 31 or not (a | b) & _ABS_S else 0
    if a >> 31:
        return 1 if a >= b else 0
    return 1 if a <= b else 0


def fclass_d(a: int) -> int:
    """FCLASS.D: the one-hot 10-bit class mask (bit 0 -inf ... bit 9 quiet NaN)."""
    exp = a & _EXP_D
    if exp == _EXP_D:
        if a & _FRAC_D == 0:
            return 0x001 if a >> 63 else 0x080
        return 0x200 if a & _QUIET_D else 0x100
    if exp == 0:
        if a & _FRAC_D == 0:
            return 0x008 if a >> 63 else 0x010
        return 0x004 if a >> 63 else 0x020
    return 0x002 if a >> 63 else 0x040


def fclass_s(a: int) -> int:
    """FCLASS.S: the one-hot 10-bit class mask (bit 0 -inf ... bit 9 quiet NaN)."""
    exp = a & _EXP_S
    if exp == _EXP_S:
        if a & 0x7FFFFF == 0:
            return 0x001 if a >> 31 else 0x080
        return 0x200 if a & _QUIET_S else 0x100
    if exp == 0:
        if a & 0x7FFFFF == 0:
            return 0x008 if a >> 31 else 0x010
        return 0x004 if a >> 31 else 0x020
    return 0x002 if a >> 31 else 0x040


# --- conversions -------------------------------------------------------------------------------

_W_MIN = -(1 << 31)
_W_MAX = (1 << 31) - 1
_L_MIN = -(1 << 63)
_L_MAX = (1 << 63) - 1


def _to_int_fast(x: float, rm: int) -> int | None:  # noqa: PLR0911 - IEEE 754 special cases, one return each
    """Round a host float to an integer by ``rm``; None when it is NaN or infinite."""
    if x - x != 0.0:
        return None
    if rm == RTZ:
        return int(x)
    if rm == RNE:
        return round(x)  # Python rounds half to even
    if rm == RDN:
        return math.floor(x)
    if rm == RUP:
        return math.ceil(x)
    # RMM: x - trunc(x) is exact (below 2**52 both share x's exponent range; above, x is
    # already an integer), so comparing it with one half finds the ties exactly.
    t = int(x)
    f = x - t
    if f >= 0.5:
        return t + 1
    if f <= -0.5:
        return t - 1
    return t


def _cvt_to_int(x: float, a: int, fmt_single: bool, lo: int, hi: int, rm: int, st: FlagSink) -> int:
    v = _to_int_fast(x, rm)
    if v is None:
        fmt = SINGLE if fmt_single else DOUBLE
        return to_int(a, fmt, hi.bit_length() + (lo != 0), lo != 0, rm, st)
    if v < lo or v > hi:
        st.fflags |= NV
        return lo if x < 0 else hi
    if v != x:
        st.fflags |= NX
    return v


def fcvt_w_d(a: int, rm: int, st: FlagSink) -> int:
    """FCVT.W.D: to a signed 32-bit int, saturating with NV, sign-extended to 64 bits."""
    x = _unpack_d(_pack_Q(a))[0]
    if rm == RTZ and -2147483649.0 < x < 2147483648.0:  # in range once truncated
        v = int(x)
        if v != x:
            st.fflags |= NX
        return v & _M64
    return _cvt_to_int(x, a, False, _W_MIN, _W_MAX, rm, st) & _M64


def fcvt_wu_d(a: int, rm: int, st: FlagSink) -> int:
    """FCVT.WU.D: to an unsigned 32-bit int, saturating with NV, sign-extended to 64 bits."""
    x = _unpack_d(_pack_Q(a))[0]
    if rm == RTZ and -1.0 < x < 4294967296.0:  # in range once truncated
        v = int(x)
        if v != x:
            st.fflags |= NX
        return v | _BOX if v >> 31 else v
    v = _cvt_to_int(x, a, False, 0, _M32, rm, st)
    return v | _BOX if v >> 31 else v


def fcvt_l_d(a: int, rm: int, st: FlagSink) -> int:
    """FCVT.L.D: to a signed 64-bit int, saturating with NV."""
    x = _unpack_d(_pack_Q(a))[0]
    if rm == RTZ and -9223372036854775808.0 <= x < 9223372036854775808.0:  # in range once truncated
        v = int(x)
        if v != x:
            st.fflags |= NX
        return v & _M64
    return _cvt_to_int(x, a, False, _L_MIN, _L_MAX, rm, st) & _M64


def fcvt_lu_d(a: int, rm: int, st: FlagSink) -> int:
    """FCVT.LU.D: to an unsigned 64-bit int, saturating with NV."""
    x = _unpack_d(_pack_Q(a))[0]
    if rm == RTZ and -1.0 < x < 18446744073709551616.0:  # in range once truncated
        v = int(x)
        if v != x:
            st.fflags |= NX
        return v
    return _cvt_to_int(x, a, False, 0, _M64, rm, st)


def fcvt_w_s(a: int, rm: int, st: FlagSink) -> int:
    """FCVT.W.S: to a signed 32-bit int, saturating with NV, sign-extended to 64 bits."""
    x = _unpack_f(_pack_I(a))[0]
    if rm == RTZ and -2147483649.0 < x < 2147483648.0:  # in range once truncated
        v = int(x)
        if v != x:
            st.fflags |= NX
        return v & _M64
    return _cvt_to_int(x, a, True, _W_MIN, _W_MAX, rm, st) & _M64


def fcvt_wu_s(a: int, rm: int, st: FlagSink) -> int:
    """FCVT.WU.S: to an unsigned 32-bit int, saturating with NV, sign-extended to 64 bits."""
    x = _unpack_f(_pack_I(a))[0]
    if rm == RTZ and -1.0 < x < 4294967296.0:  # in range once truncated
        v = int(x)
        if v != x:
            st.fflags |= NX
        return v | _BOX if v >> 31 else v
    v = _cvt_to_int(x, a, True, 0, _M32, rm, st)
    return v | _BOX if v >> 31 else v


def fcvt_l_s(a: int, rm: int, st: FlagSink) -> int:
    """FCVT.L.S: to a signed 64-bit int, saturating with NV."""
    x = _unpack_f(_pack_I(a))[0]
    if rm == RTZ and -9223372036854775808.0 <= x < 9223372036854775808.0:  # in range once truncated
        v = int(x)
        if v != x:
            st.fflags |= NX
        return v & _M64
    return _cvt_to_int(x, a, True, _L_MIN, _L_MAX, rm, st) & _M64


def fcvt_lu_s(a: int, rm: int, st: FlagSink) -> int:
    """FCVT.LU.S: to an unsigned 64-bit int, saturating with NV."""
    x = _unpack_f(_pack_I(a))[0]
    if rm == RTZ and -1.0 < x < 18446744073709551616.0:  # in range once truncated
        v = int(x)
        if v != x:
            st.fflags |= NX
        return v
    return _cvt_to_int(x, a, True, 0, _M64, rm, st)


def _int_to_d(v: int, rm: int, st: FlagSink) -> int:
    """An integer (|v| < 2**64) to double: exact up to 2**53, else float() rounds it in RNE."""
    if -(1 << 53) <= v <= 1 << 53:
        return _unpack_Q(_pack_d(float(v)))[0]  # type: ignore[no-any-return]
    if rm == RMM:
        return from_int(v, DOUBLE, rm, st)
    f = float(v)  # correctly rounded, half to even
    rb: int = _unpack_Q(_pack_d(f))[0]
    back = int(f)
    if back == v:
        return rb
    if rm == RNE:
        st.fflags |= NX
        return rb
    return _directed_d(rb, 1 if (v > back) == (v > 0) else -1, rm, st)


def _int_to_s(v: int, rm: int, st: FlagSink) -> int:
    """An integer (|v| < 2**64) to single, through an exact or round-to-odd double."""
    if -(1 << 24) <= v <= 1 << 24:
        return _unpack_I(_pack_f(float(v)))[0]  # type: ignore[no-any-return]
    if rm == RMM:
        return from_int(v, SINGLE, rm, st)
    mag = -v if v < 0 else v
    shift = mag.bit_length() - 53
    if shift > 0 and mag & ((1 << shift) - 1):
        # Round to odd at 53 bits: the sticky bit keeps the value off every single and on the
        # same side of each as v, so rounding it to single below is rounding v.
        mag = ((mag >> shift) | 1) << shift
    x = float(-mag if v < 0 else mag)  # exact
    packed = _pack_f(x)
    q = _unpack_f(packed)[0]
    if q == x and mag == (-v if v < 0 else v):
        return _unpack_I(packed)[0]  # type: ignore[no-any-return]
    if rm == RNE:
        st.fflags |= NX
        return _unpack_I(packed)[0]  # type: ignore[no-any-return]
    return _directed_s(_unpack_I(packed)[0], 1 if abs(x) > abs(q) else -1, rm, st)


def fcvt_d_w(x: int, rm: int, st: FlagSink) -> int:
    """FCVT.D.W: the low 32 bits of ``x`` as a signed int, to double (always exact)."""
    return _int_to_d(((x & _M32) ^ _S32) - _S32, rm, st)


def fcvt_d_wu(x: int, rm: int, st: FlagSink) -> int:
    """FCVT.D.WU: the low 32 bits of ``x`` as an unsigned int, to double (always exact)."""
    return _int_to_d(x & _M32, rm, st)


def fcvt_d_l(x: int, rm: int, st: FlagSink) -> int:
    """FCVT.D.L: ``x`` as a signed 64-bit int, to double rounded by ``rm``."""
    return _int_to_d(((x & _M64) ^ _S64) - _S64, rm, st)


def fcvt_d_lu(x: int, rm: int, st: FlagSink) -> int:
    """FCVT.D.LU: ``x`` as an unsigned 64-bit int, to double rounded by ``rm``."""
    return _int_to_d(x & _M64, rm, st)


def fcvt_s_w(x: int, rm: int, st: FlagSink) -> int:
    """FCVT.S.W: the low 32 bits of ``x`` as a signed int, to single rounded by ``rm``."""
    return _int_to_s(((x & _M32) ^ _S32) - _S32, rm, st)


def fcvt_s_wu(x: int, rm: int, st: FlagSink) -> int:
    """FCVT.S.WU: the low 32 bits of ``x`` as an unsigned int, to single rounded by ``rm``."""
    return _int_to_s(x & _M32, rm, st)


def fcvt_s_l(x: int, rm: int, st: FlagSink) -> int:
    """FCVT.S.L: ``x`` as a signed 64-bit int, to single rounded by ``rm``."""
    return _int_to_s(((x & _M64) ^ _S64) - _S64, rm, st)


def fcvt_s_lu(x: int, rm: int, st: FlagSink) -> int:
    """FCVT.S.LU: ``x`` as an unsigned 64-bit int, to single rounded by ``rm``."""
    return _int_to_s(x & _M64, rm, st)


def fcvt_s_d(a: int, rm: int, st: FlagSink) -> int:
    """FCVT.S.D: narrow a double to single, rounded by ``rm``."""
    if rm != RMM:
        x = _unpack_d(_pack_Q(a))[0]
        if _LO_S <= abs(x) <= _HI_S:
            packed = _pack_f(x)
            q = _unpack_f(packed)[0]
            if q == x:
                return _unpack_I(packed)[0]  # type: ignore[no-any-return]
            if rm == RNE:
                st.fflags |= NX
                return _unpack_I(packed)[0]  # type: ignore[no-any-return]
            return _directed_s(_unpack_I(packed)[0], 1 if abs(x) > abs(q) else -1, rm, st)
        if x == 0.0:
            return (a >> 32) & _S32
    return convert_format(a, DOUBLE, SINGLE, rm, st)


def fcvt_d_s(a: int, st: FlagSink) -> int:
    """FCVT.D.S: widen a single to double (exact; NaNs become the canonical NaN)."""
    if (a & 0x7F800000) != 0x7F800000:
        return _unpack_Q(_pack_d(_unpack_f(_pack_I(a))[0]))[0]  # type: ignore[no-any-return]
    return convert_format(a, SINGLE, DOUBLE, RNE, st)
