"""Whole guest C programs (packages/async-executor/guest) under the JIT.

The oracle is independent of both executors: the stdout and exit status qemu-riscv64 produced for
the prebuilt binaries, recorded in guest/expected/. The final pc and instret must also equal the
interpreter's, so the two executors agree instruction for instruction on real programs.
"""

from __future__ import annotations

import json
import pathlib
import tempfile
from typing import Any

import pytest

from vmkit.async_executor.engine import InterpreterExecutor
from vmkit.async_executor.engine._context import AsyncExecutionContext
from vmkit.async_executor.engine._jit import JitExecutor
from vmkit.async_executor.loader import load_program
from vmkit.async_executor.samples import path as sample_path

GUEST = pathlib.Path(__file__).resolve().parents[2] / "guest"
SPEC: dict[str, Any] = json.loads((GUEST / "cases.json").read_text())
CASES: list[dict[str, Any]] = SPEC["cases"]
BUDGET = 100_000_000
#: One context for the whole module: programs keep their blocks apart by address space, and the
#: shared cache sees many machines come and go.
CONTEXT = AsyncExecutionContext()


def _binary(name: str) -> pathlib.Path:
    try:
        return sample_path(name)
    except KeyError:
        return GUEST / "prebuilt" / name


def _run(executor: str, case: dict[str, Any], root: str) -> tuple[bytes, int, int, int]:
    binary = _binary(case["program"])
    with (
        tempfile.TemporaryFile() as stdin,
        tempfile.TemporaryFile() as stdout,
        tempfile.TemporaryFile() as stderr,
    ):
        stdin.write(case.get("stdin", "").encode())
        stdin.seek(0)
        m = load_program(
            binary,
            [str(binary), *case["args"]],
            env=SPEC["env"],
            root=root,
            stdio=(stdin.fileno(), stdout.fileno(), stderr.fileno()),
        )
        try:
            if executor == "jit":
                status = JitExecutor(m, CONTEXT).run(m, max_instructions=BUDGET)
            else:
                status = InterpreterExecutor(m).run(m, max_instructions=BUDGET)
        finally:
            m.linux.close()
        stdout.seek(0)
        return stdout.read(), status, m.hart.pc, m.hart.instret


class TestGuestPrograms:
    """Every recorded guest program case runs identically under the JIT."""

    @pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
    def test_case(self, case: dict[str, Any], tmp_path: pathlib.Path) -> None:
        """stdout and status equal qemu's recording; pc and instret equal the interpreter's."""
        (tmp_path / "jit").mkdir()
        (tmp_path / "interp").mkdir()
        out, status, pc, instret = _run("jit", case, str(tmp_path / "jit"))
        expected = (GUEST / "expected" / f"{case['id']}.stdout").read_bytes()
        expected_status = int((GUEST / "expected" / f"{case['id']}.status").read_text())
        assert out == expected
        assert status == expected_status
        _out, _status, ref_pc, ref_instret = _run("interp", case, str(tmp_path / "interp"))
        assert (pc, instret) == (ref_pc, ref_instret)
