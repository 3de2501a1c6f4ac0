"""The instruction table's templates as terse format strings (only the parentheses precedence
needs) and as constant folders, for the generator and the value facts."""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from typing import Final

from vmkit.async_executor.engine._translate._runtime import _NS
from vmkit.async_executor.isa._table import (
    TABLE,
    TEMPLATE_CONSTANTS,
)

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
    return ast.unparse(ast.parse(tmpl, mode="eval"))


_ALU_FORMAT: Final = {s.name: _to_format(_minimal(s.tmpl)) for s in TABLE if s.kind == "alu"}


_ALU_FOLD: Final = {s.name: _folder(s.tmpl) for s in TABLE if s.kind == "alu"}


_BRANCH_FORMAT: Final = {s.name: _to_format(_minimal(s.tmpl)) for s in TABLE if s.kind == "branch"}


_FP_FORMAT: Final = {s.name: _to_format(s.tmpl) for s in TABLE if s.kind == "fp"}
