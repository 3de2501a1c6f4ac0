"""Go programs (guest/go/*.go, built with Debian's golang-go) on every engine against qemu-riscv64.

A static Go program is the hardest threaded guest: the runtime starts threads with its own
clone flags, parks them on futexes, sleeps in epoll for its timers (netpoll), preempts
goroutines with signals and exits with os.Exit or a panic's status 2. Each program is built fresh
(``make go``) and its stdout and exit status compared with qemu-riscv64's.
"""

from __future__ import annotations

import pathlib
import tempfile
from collections.abc import Callable
from typing import Any

import pytest
from guest_builds import build_guests, qemu_outputs

from vmkit.async_executor import HybridExecutor, InterpreterExecutor, JitExecutor, load_program

PROGRAMS = ("goroutines", "panic")
ENGINES: dict[str, Callable[[Any], Any]] = {
    "interp": InterpreterExecutor,
    "jit": JitExecutor,
    "hybrid": HybridExecutor,
}
try:
    import llvmlite  # noqa: F401 - only whether the [native] extra is installed
except ImportError:  # CI installs it; a local run without it tests the other engines
    pass
else:
    from vmkit.async_executor.engine.native import NativeExecutor

    # The Go runtime has hundreds of warm blocks: a higher threshold compiles the hot ones and
    # spares the test the LLVM time of the rest.
    ENGINES["native"] = lambda m: NativeExecutor(m, threshold=1000)
    # The hybrid's native tier compiling at once, entered from the Python tiers.
    ENGINES["hybrid-native"] = lambda m: HybridExecutor(
        m, native=True, native_threshold=1, native_warmup=0
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return build_guests(tmp_path_factory, "go", "go")


@pytest.fixture(scope="module")
def qemu_results(built: pathlib.Path) -> dict[str, tuple[bytes, int]]:
    return qemu_outputs(built, PROGRAMS)


#: Beyond the interpreter and the hybrid (the default engine), the engines run once in the CI
#: matrix (see the matrix_once marker).
ENGINE_PARAMS = [
    e if e in ("interp", "hybrid") else pytest.param(e, marks=pytest.mark.matrix_once)
    for e in ENGINES
]


@pytest.mark.usefixtures("oracle_native_cache")
@pytest.mark.parametrize("engine", ENGINE_PARAMS)
@pytest.mark.parametrize("program", PROGRAMS)
def test_matches_qemu(built, qemu_results, program: str, engine: str) -> None:
    with (
        tempfile.TemporaryDirectory() as root,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        machine = load_program(
            str(built / program), [program], env={}, root=root,
            stdio=(0, out.fileno(), err.fileno()),
        )  # fmt: skip
        status = ENGINES[engine](machine).run(machine, max_instructions=2_000_000_000)
        machine.linux.close()
        out.seek(0)
        err.seek(0)
        stderr = err.read()
        assert (out.read(), status) == qemu_results[program], stderr.decode()[-2000:]
    if program == "panic":
        assert b"panic: assignment to entry in nil map" in stderr
    assert machine.linux.threads.created >= 2  # the Go runtime's own threads at least
