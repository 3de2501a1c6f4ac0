"""Fresh builds of the guest test programs, and what qemu-riscv64 makes of them (the oracle)."""

from __future__ import annotations

import pathlib
import subprocess
from collections.abc import Iterable

import pytest
from test_guest_programs import need_tool

GUEST = pathlib.Path(__file__).resolve().parents[2] / "guest"


def build_guests(
    tmp_path_factory: pytest.TempPathFactory, target: str, compiler: str
) -> pathlib.Path:
    """``make TARGET`` of guest/ into a fresh directory (skips, or fails under
    REQUIRE_ORACLES=1, without ``compiler``); returns the folder of the programs."""
    need_tool(compiler)
    need_tool("make")
    out = tmp_path_factory.mktemp(f"{target}-build")
    subprocess.run(
        ["make", "-s", "-C", str(GUEST), f"OUT={out}", target],
        check=True,
        capture_output=True,
        timeout=900,
    )
    return out / target


def qemu_outputs(folder: pathlib.Path, names: Iterable[str]) -> dict[str, tuple[bytes, int]]:
    """Each program's stdout and exit status under qemu-riscv64, with an empty environment."""
    qemu = need_tool("qemu-riscv64")
    results = {}
    for name in names:
        proc = subprocess.run(
            [qemu, str(folder / name)], capture_output=True, check=False, timeout=120, env={}
        )
        results[name] = (proc.stdout, proc.returncode)
    return results
