"""Random programs through the command line on every engine: whatever the bytes, the run ends in
a guest outcome (an exit status, a fatal signal, the budget) or a one-line refusal of the file,
never an internal error (status 70) or a Python traceback.

Two fuzzers: random instruction words behind a valid ELF header (illegal encodings, wild
branches and accesses, system calls with garbage arguments), and random bytes written over a
real static program (corrupt headers and segments).
"""

from __future__ import annotations

import pathlib
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "loader"))
from test_loader import make_elf

from vmkit.async_executor.cli import STATUS_INTERNAL_ERROR, main
from vmkit.async_executor.samples import path as sample_path

ENGINES = ("interp", "jit", "hybrid")
_settings = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Mostly words from real encodings' neighbourhood (low opcode bits 11), some compressed.
_WORD = st.one_of(
    st.integers(0, 2**32 - 1).map(lambda w: w | 3),
    st.integers(0, 2**32 - 1),
    st.sampled_from([0x00000073, 0x0000006F, 0x00008067, 0x0000100F, 0x00100073]),
)


def _run(
    program: pathlib.Path, root: pathlib.Path, engine: str, capfd: pytest.CaptureFixture[str]
) -> None:
    status = main(
        [
            "run",
            "--engine",
            engine,
            "--max-instructions",
            "20000",
            "--root",
            str(root),
            str(program),
        ]
    )
    err = capfd.readouterr().err
    assert status != STATUS_INTERNAL_ERROR, err
    assert "Traceback" not in err
    assert "internal error" not in err


@pytest.mark.parametrize("engine", ENGINES)
@_settings
@given(words=st.lists(_WORD, min_size=1, max_size=48))
def test_random_instructions(
    engine: str, words: list[int], tmp_path: pathlib.Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code = b"".join(w.to_bytes(4, "little") for w in words)
    program = tmp_path / "random-code"
    program.write_bytes(make_elf(code=code))
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    _run(program, root, engine, capfd)


@pytest.mark.parametrize("engine", ENGINES)
@_settings
@given(edits=st.lists(st.tuples(st.integers(0, 4095), st.integers(0, 255)), min_size=1, max_size=8))
def test_corrupted_programs(
    engine: str,
    edits: list[tuple[int, int]],
    tmp_path: pathlib.Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    data = bytearray(sample_path("hello").read_bytes())
    for offset, value in edits:  # the ELF and program headers and the start of the code
        data[offset] = value
    program = tmp_path / "corrupt"
    program.write_bytes(bytes(data))
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    _run(program, root, engine, capfd)
