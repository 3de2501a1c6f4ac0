"""A run's private /tmp never outlives it (issue 19, item 8): SIGTERM and SIGHUP stop the run in
order and delete it; after SIGKILL the next run reclaims it (its lock is free)."""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import sys

import pytest

from vmkit.async_executor.linux._fs import TMP_PREFIX, GuestFS, reclaim_abandoned_tmp

WRITER = r"""
#include <stdio.h>
#include <unistd.h>
int main(void) {
    FILE *f = fopen("/tmp/scratch", "w");
    for (int i = 0; i < 4096; i++) fputs("some scratch data for the private tmp\n", f);
    fclose(f);
    puts("ready");
    fflush(stdout);
    sleep(1000);
    return 0;
}
"""


@pytest.fixture(scope="module")
def writer(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    if shutil.which("riscv64-linux-gnu-gcc") is None:
        pytest.skip("needs the riscv64 cross compiler")
    folder = tmp_path_factory.mktemp("writer")
    (folder / "writer.c").write_text(WRITER)
    subprocess.run(
        [
            "riscv64-linux-gnu-gcc",
            "-O2",
            "-static",
            "-o",
            str(folder / "writer"),
            str(folder / "writer.c"),
        ],
        check=True,
        capture_output=True,
    )
    return folder / "writer"


def _start(
    writer: pathlib.Path, tmpdir: pathlib.Path, root: pathlib.Path
) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vmkit.async_executor",
            "run",
            "--engine",
            "interp",
            "--root",
            str(root),
            str(writer),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"  # the guest wrote its file and sleeps now
    return proc


def _private(tmpdir: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p for p in tmpdir.iterdir() if p.name.startswith(TMP_PREFIX))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_catchable_signals_clean_up(
    signum: signal.Signals, writer: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    tmpdir, root = tmp_path / "tmpdir", tmp_path / "root"
    tmpdir.mkdir()
    root.mkdir()
    proc = _start(writer, tmpdir, root)
    assert any(p.is_dir() for p in _private(tmpdir))
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum
    assert f"stopped by {signum.name}".encode() in err
    assert _private(tmpdir) == []


@pytest.mark.timeout(120)
def test_the_next_run_reclaims_after_sigkill(writer: pathlib.Path, tmp_path: pathlib.Path) -> None:
    tmpdir, root = tmp_path / "tmpdir", tmp_path / "root"
    tmpdir.mkdir()
    root.mkdir()
    victim = _start(writer, tmpdir, root)
    survivor = _start(writer, tmpdir, root)  # alive: its directory must be left alone
    dirs = [p for p in _private(tmpdir) if p.is_dir()]
    assert len(dirs) == 2
    victim.kill()
    victim.communicate(timeout=30)
    left = [p for p in _private(tmpdir) if p.is_dir()]
    assert len(left) == 2  # SIGKILL cannot be caught: the directory stays behind
    removed = reclaim_abandoned_tmp(str(tmpdir))
    assert len(removed) == 1
    assert len([p for p in _private(tmpdir) if p.is_dir()]) == 1
    survivor.send_signal(signal.SIGTERM)
    survivor.communicate(timeout=60)
    assert _private(tmpdir) == []


def test_a_new_private_tmp_reclaims_first(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reclaim runs when a run makes its private /tmp (no one needs to call it)."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    dead = tmp_path / f"{TMP_PREFIX}dead"
    dead.mkdir()
    (dead / "junk").write_bytes(b"x" * 1000)
    (tmp_path / f"{TMP_PREFIX}dead.lock").write_bytes(b"")
    root = tmp_path / "root"
    root.mkdir()
    fs = GuestFS(root)
    assert dead.exists()
    fs.resolve(b"/tmp/x")  # the first use of /tmp makes it, reclaiming the dead one first
    assert not dead.exists()
    fs.close()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(TMP_PREFIX)] == []


QUICK_EXITER = r"""
#include <stdio.h>
int main(void) {
    FILE *f = fopen("/tmp/scratch", "w");
    fputs("left behind on purpose\n", f);
    fclose(f);
    for (int i = 0; i < 20000; i++) printf("line %d of a long output\n", i);
    return 3;
}
"""


@pytest.mark.timeout(120)
def test_the_quick_exit_flushes_everything_and_removes_the_private_tmp(
    writer: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """The command ends with os._exit after its atexit work (cli._exit_quickly): every byte of a
    long output still arrives, the status is the guest's and the private /tmp is gone."""
    (tmp_path / "exiter.c").write_text(QUICK_EXITER)
    exiter = tmp_path / "exiter"
    subprocess.run(
        ["riscv64-linux-gnu-gcc", "-O2", "-static", "-o", str(exiter), str(tmp_path / "exiter.c")],
        check=True,
        capture_output=True,
    )
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "vmkit.async_executor", "run", "--stats", str(exiter)],
        capture_output=True,
        env={**os.environ, "TMPDIR": str(tmpdir)},
        timeout=100,
        check=False,
    )
    assert done.returncode == 3
    lines = done.stdout.decode().splitlines()
    assert len(lines) == 20000
    assert lines[-1] == "line 19999 of a long output"
    assert b"exit_status" in done.stderr  # --stats, written after the guest ended
    assert _private(tmpdir) == []
