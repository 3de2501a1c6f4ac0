"""The instruction table's templates as terse format strings (only the parentheses precedence
needs) and as constant folders, for the generator and the value facts."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final, TypeVar

from vmkit.async_executor.engine._translate._runtime import _NS
from vmkit.async_executor.isa._table import TEMPLATE_CONSTANTS, InstrSpec, spec_by_name

_V = TypeVar("_V")


class PerName(dict[str, _V]):
    """A table keyed by instruction name whose entry for a name is made at its first lookup,
    from the name's record: made all at once, the tables parsed about sixty templates with
    ``ast`` on every start that translates anything, for the handful of names a short program
    uses. A name the table has no entry for maps to whatever ``make`` says (None, say)."""

    __slots__ = ("_make",)

    def __init__(self, make: Callable[[InstrSpec], _V]) -> None:
        super().__init__()
        self._make = make

    def __missing__(self, name: str) -> _V:
        value = self[name] = self._make(spec_by_name(name))
        return value


_CONST_TEXT: Final = {name: str(value) for name, value in TEMPLATE_CONSTANTS.items()}


_NAME_RE: Final = re.compile(
    r"X\[(rs1|rs2|rd)\]|F\[(rs1|rs2|rs3|rd)\]|\b(imm|pc|rm|M64|S64|M32|S32)\b"
)


_PLACE: Final = {
    "rs1": "{a}",
    "rs2": "{b}",
    "rd": "{d}",
    "imm": "{i}",
    "pc": "{p}",
    "rm": "{r}",
}


def _to_format(tmpl: str) -> str:
    """A template as a ``str.format`` pattern: registers, ``imm``, ``pc`` and ``rm`` become holes,
    named constants become literals."""

    def repl(m: re.Match[str]) -> str:
        if m.group(1):
            return _PLACE[m.group(1)]
        if m.group(2):
            return "F[{f" + m.group(2) + "}]"
        word = m.group(3)
        return _CONST_TEXT.get(word) or _PLACE[word]

    return _NAME_RE.sub(repl, tmpl.replace("{", "{{").replace("}", "}}"))


def _folder(tmpl: str) -> Callable[[int, int, int, int], int]:
    """``tmpl`` as a function of (X[rs1], X[rs2], imm, pc) for folding known values."""
    body = tmpl.replace("X[rs1]", "a").replace("X[rs2]", "b")
    fn: Callable[[int, int, int, int], int] = eval(f"lambda a, b, imm, pc: {body}", _NS)
    return fn


def _minimal(tmpl: str) -> str:
    """``tmpl`` with only the parentheses Python's precedence needs: the parser spends far more
    on a parenthesised group than on an operator (``(a + 1) & m`` parses about a quarter slower
    than ``a + 1 & m``), and compile time is the cost of translation."""
    import ast  # on the first translation, not at start-up

    return ast.unparse(ast.parse(tmpl, mode="eval"))


# Keyed by ALU, branch and FP instruction names respectively (the generator asks no others).
_ALU_FORMAT: Final = PerName(lambda s: _to_format(_minimal(s.tmpl)))


_ALU_FOLD: Final = PerName(lambda s: _folder(s.tmpl))


_BRANCH_FORMAT: Final = PerName(lambda s: _to_format(_minimal(s.tmpl)))


_FP_FORMAT: Final = PerName(lambda s: _to_format(s.tmpl))
