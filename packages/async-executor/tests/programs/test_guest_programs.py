"""Guest C programs (packages/async-executor/guest) under the interpreter versus qemu-riscv64.

Two independent oracles: the stdout and exit status qemu-riscv64 produced for the committed
prebuilt binaries (recorded in guest/expected/ by guest/record_expected.py), and, when the cross
compiler and qemu-riscv64 are installed, qemu-riscv64 itself on programs freshly rebuilt from the
C sources.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from typing import Any

import pytest

from vmkit.async_executor.engine import InterpreterExecutor
from vmkit.async_executor.loader import load_program
from vmkit.async_executor.samples import path as sample_path

GUEST = pathlib.Path(__file__).resolve().parents[2] / "guest"
SPEC: dict[str, Any] = json.loads((GUEST / "cases.json").read_text())
CASES = SPEC["cases"]
ENV: dict[str, str] = SPEC["env"]
BUDGET = 100_000_000


def need_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("REQUIRE_ORACLES") == "1":
            pytest.fail(f"{name} is required (REQUIRE_ORACLES=1) but not installed")
        pytest.skip(f"{name} is not installed")
    return found


def prebuilt(name: str) -> pathlib.Path:
    try:
        return sample_path(name)
    except KeyError:
        return GUEST / "prebuilt" / name


def run_interpreter(
    binary: pathlib.Path,
    case: dict[str, Any],
    root: str,
    engine: Callable[[Any], Any] = InterpreterExecutor,
) -> tuple[bytes, int]:
    """Run ``binary`` in-process with the case's argv, env and stdin; return stdout and status.

    Like run_qemu, the program runs as ``./NAME`` from a copy in ``root``, the guest's cwd.
    """
    copy = pathlib.Path(root) / case["program"]
    shutil.copy(binary, copy)
    with (
        tempfile.TemporaryFile() as stdin,
        tempfile.TemporaryFile() as stdout,
        tempfile.TemporaryFile() as stderr,
    ):
        stdin.write(case.get("stdin", "").encode())
        stdin.seek(0)
        machine = load_program(
            copy,
            ["./" + case["program"], *case["args"]],
            env=ENV,
            root=root,
            stdio=(stdin.fileno(), stdout.fileno(), stderr.fileno()),
        )
        try:
            status = engine(machine).run(machine, max_instructions=BUDGET)
        finally:
            machine.linux.close()
        stdout.seek(0)
        return stdout.read(), status


def run_qemu(binary: pathlib.Path, case: dict[str, Any], cwd: str) -> tuple[bytes, int]:
    """Run ``binary`` as ``./NAME`` from a copy in ``cwd`` under qemu-riscv64."""
    shutil.copy(binary, pathlib.Path(cwd) / case["program"])
    proc = subprocess.run(
        [need_tool("qemu-riscv64"), "./" + case["program"], *case["args"]],
        input=case.get("stdin", "").encode(),
        capture_output=True,
        env=ENV,
        cwd=cwd,
        check=False,
        timeout=120,
    )
    status = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
    return proc.stdout, status


@pytest.fixture(scope="module")
def fresh_builds(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """Every guest program rebuilt from source with the cross compiler."""
    need_tool("riscv64-linux-gnu-gcc")
    need_tool("make")
    out = tmp_path_factory.mktemp("guest-build")
    subprocess.run(
        ["make", "-s", "-j2", "-C", str(GUEST), f"OUT={out}"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


def _ids() -> list[str]:
    return [case["id"] for case in CASES]


class TestRecordedOutputs:
    """Prebuilt binaries against qemu-riscv64's recorded stdout and status."""

    @pytest.mark.parametrize("case", CASES, ids=_ids())
    def test_matches_recording(self, case: dict[str, Any], tmp_path: pathlib.Path) -> None:
        """The interpreter prints the same bytes and exits with the same status as qemu did."""
        stdout, status = run_interpreter(prebuilt(case["program"]), case, str(tmp_path))
        expected = (GUEST / "expected" / f"{case['id']}.stdout").read_bytes()
        expected_status = int((GUEST / "expected" / f"{case['id']}.status").read_text())
        assert stdout == expected
        assert status == expected_status


@pytest.mark.oracle
class TestAgainstQemu:
    """Fresh builds from the C sources, run side by side under qemu-riscv64 and the interpreter."""

    @pytest.mark.parametrize("case", CASES, ids=_ids())
    def test_matches_qemu(
        self, case: dict[str, Any], fresh_builds: pathlib.Path, tmp_path: pathlib.Path
    ) -> None:
        """stdout and exit status agree with qemu-riscv64 on a freshly compiled program."""
        binary = fresh_builds / case["program"]
        qemu_dir = tmp_path / "qemu"
        ours_dir = tmp_path / "ours"
        qemu_dir.mkdir()
        ours_dir.mkdir()
        expected = run_qemu(binary, case, str(qemu_dir))
        assert run_interpreter(binary, case, str(ours_dir)) == expected


#: The native tier's two ways in, each compiling early so native code runs the programs: the
#: native engine, and the hybrid's native tier entered from the Python tiers.
NATIVE_ENGINES: dict[str, Callable[[Any], Any]] = {}
try:
    import llvmlite  # noqa: F401 - only whether the [native] extra is installed
except ImportError:  # CI installs it; a local run without it tests the other engines
    pass
else:
    from vmkit.async_executor.engine import HybridExecutor
    from vmkit.async_executor.engine.native import NativeExecutor

    NATIVE_ENGINES["native"] = lambda m: NativeExecutor(m, threshold=25)
    NATIVE_ENGINES["hybrid-native"] = lambda m: HybridExecutor(
        m, threshold=2, native=True, native_threshold=1, native_warmup=0
    )


@pytest.mark.oracle
@pytest.mark.matrix_once
@pytest.mark.usefixtures("oracle_native_cache")
@pytest.mark.skipif(not NATIVE_ENGINES, reason="the native tier needs the [native] extra")
class TestNativeAgainstQemu:
    """Every guest program, freshly built, under the native tier against qemu-riscv64."""

    @pytest.mark.parametrize("engine", list(NATIVE_ENGINES))
    @pytest.mark.parametrize("case", CASES, ids=_ids())
    def test_matches_qemu(
        self, case: dict[str, Any], engine: str, fresh_builds: pathlib.Path, tmp_path: pathlib.Path
    ) -> None:
        binary = fresh_builds / case["program"]
        qemu_dir = tmp_path / "qemu"
        ours_dir = tmp_path / "ours"
        qemu_dir.mkdir()
        ours_dir.mkdir()
        expected = run_qemu(binary, case, str(qemu_dir))
        assert run_interpreter(binary, case, str(ours_dir), NATIVE_ENGINES[engine]) == expected
