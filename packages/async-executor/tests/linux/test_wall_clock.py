"""The wall-clock limit (issue 19, item 11): a guest that sleeps, waits on an empty pipe or spins
without system calls is stopped with status 152 and one line, on every engine."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import time

import pytest

from vmkit.async_executor.cli import ENGINES, main
from vmkit.async_executor.limits import WALL_CLOCK_EXCEEDED_STATUS

PROGRAMS = {
    "sleep": "#include <unistd.h>\nint main(void) { sleep(100000); return 0; }\n",
    "empty-pipe": (
        "#include <unistd.h>\n"
        "int main(void) { int p[2]; char c; pipe(p); return (int)read(p[0], &c, 1); }\n"
    ),
    "poll-forever": ("#include <poll.h>\nint main(void) { return poll(0, 0, -1); }\n"),
    "spin": "int main(void) { for (;;); }\n",
}


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    if shutil.which("riscv64-linux-gnu-gcc") is None:
        pytest.skip("needs the riscv64 cross compiler")
    folder = tmp_path_factory.mktemp("wall")
    built = {}
    for name, source in PROGRAMS.items():
        (folder / f"{name}.c").write_text(source)
        built[name] = folder / name
        subprocess.run(
            [
                "riscv64-linux-gnu-gcc",
                "-O2",
                "-static",
                "-o",
                str(built[name]),
                str(folder / f"{name}.c"),
            ],
            check=True,
            capture_output=True,
        )
    return built


@pytest.mark.timeout(60)
@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_stopped_on_time(
    engine: str,
    program: str,
    programs: dict[str, pathlib.Path],
    tmp_path: pathlib.Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    if engine == "native":
        pytest.importorskip("llvmlite")
    t0 = time.monotonic()
    status = main(
        [
            "run",
            "--engine",
            engine,
            "--wall-time",
            "0.4",
            "--root",
            str(tmp_path),
            str(programs[program]),
        ]
    )
    elapsed = time.monotonic() - t0
    assert status == WALL_CLOCK_EXCEEDED_STATUS
    assert "wall-clock limit of 0.4 s exceeded" in capfd.readouterr().err
    assert elapsed < 20  # stopped, not run to the end (generous: a loaded CI machine)


def test_a_quick_guest_is_unaffected(
    tmp_path: pathlib.Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from vmkit.async_executor.samples import path as sample_path

    assert (
        main(["run", "--wall-time", "60", "--root", str(tmp_path), str(sample_path("hello"))]) == 0
    )
    assert "Hello" in capfd.readouterr().out
