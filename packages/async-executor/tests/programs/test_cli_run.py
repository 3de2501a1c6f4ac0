"""``async-executor run`` end to end: exit statuses, one-line errors, statistics, the sandbox."""

from __future__ import annotations

import json
import logging
import os
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import pytest

from vmkit.async_executor.cli import main
from vmkit.async_executor.samples import path as sample_path

GUEST = pathlib.Path(__file__).resolve().parents[2] / "guest"
EXITS = str(GUEST / "prebuilt" / "exits")


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """main() configures logging for the process; undo it so other tests see the defaults."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def run(capfd: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(["run", *argv])
    out, err = capfd.readouterr()
    return status, out, err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("async-executor:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


class TestRun:
    def test_hello(self, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
        """The guest's stdout and stderr pass through and the status is the guest's."""
        status, out, err = run(capfd, "--root", str(tmp_path), str(sample_path("hello")))
        assert status == 0
        assert out == (GUEST / "expected" / "hello.stdout").read_text()
        assert "to stderr" in err

    def test_exit_status(self, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
        """exit(3) and return 42 become the process status, with no error message."""
        assert run(capfd, "--root", str(tmp_path), EXITS, "exit")[0] == 3
        status, _, err = run(capfd, "--root", str(tmp_path), EXITS)
        assert status == 42
        assert "async-executor:" not in err

    def test_guest_args_are_not_options(
        self, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path
    ) -> None:
        """Arguments after PROGRAM go to the guest even when they look like options."""
        status, out, _ = run(
            capfd, "--root", str(tmp_path), str(GUEST / "prebuilt" / "args"), "--stats", "-x"
        )
        assert status == 3
        assert "argv[1] = [--stats]" in out
        assert "argv[2] = [-x]" in out

    def test_abort(self, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
        """abort() ends the guest with SIGABRT: status 134 and one line naming the signal."""
        status, out, err = run(capfd, "--root", str(tmp_path), EXITS, "abort")
        assert status == 134
        assert out == "mode abort\n"
        assert "SIGABRT (signal 6)" in one_error_line(err)

    def test_wild_pointer(self, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
        """A store to an unmapped address is SIGSEGV (139) naming the address and access."""
        status, _, err = run(capfd, "--root", str(tmp_path), EXITS, "segv")
        assert status == 139
        line = one_error_line(err)
        assert "0xdead0000" in line
        assert "write" in line

    def test_runaway_loop(self, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
        """An endless loop stops at --max-instructions with status 124 and a clear message."""
        status, out, err = run(
            capfd, "--root", str(tmp_path), "--max-instructions", "200000", EXITS, "loop"
        )
        assert status == 124
        assert out == "mode loop\n"
        line = one_error_line(err)
        assert "budget of 200000" in line
        assert "--max-instructions" in line

    def test_stats_text_and_json(
        self, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path
    ) -> None:
        """--stats prints counters to stderr after the guest; json is one parseable object."""
        sieve = str(sample_path("sieve"))
        _, out, err = run(capfd, "--root", str(tmp_path), "--stats", sieve, "1000")
        assert out == "primes up to 1000: 168 (largest 997)\n"
        assert "instructions" in err
        assert "mips" in err
        _, _, err = run(
            capfd, "--root", str(tmp_path), "--stats", "--stats-format", "json", sieve, "1000"
        )
        data = json.loads(err.strip().splitlines()[-1])
        assert data["exit_status"] == 0
        assert data["instructions"] > 10_000
        assert 0.0 < data["tlb_hit_rate"] <= 1.0
        assert data["engine"] == "hybrid"  # the default engine


class TestRunErrors:
    def test_not_an_elf(self, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
        """A text file is refused with status 126 and one line."""
        bad = tmp_path / "script.sh"
        bad.write_text("#!/bin/sh\n")
        status, _, err = run(capfd, str(bad))
        assert status == 126
        assert "not an ELF" in one_error_line(err)

    def test_host_binary(self, capfd: pytest.CaptureFixture[str]) -> None:
        """A host (x86-64) program names the wrong machine."""
        status, _, err = run(capfd, sys.executable)
        assert status == 126
        assert "wrong machine" in one_error_line(err)

    def test_truncated(self, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
        """A truncated program is reported as truncated."""
        bad = tmp_path / "half"
        bad.write_bytes(sample_path("hello").read_bytes()[:5000])
        status, _, err = run(capfd, str(bad))
        assert status == 126
        assert "truncated" in one_error_line(err)

    def test_missing(self, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
        """A missing program is status 127."""
        status, _, err = run(capfd, str(tmp_path / "nothing"))
        assert status == 127
        assert "no such file" in one_error_line(err)

    def test_unknown_engine(self, capfd: pytest.CaptureFixture[str]) -> None:
        """Only the engines that exist are accepted."""
        with pytest.raises(SystemExit) as info:
            main(["run", "--engine", "warp", EXITS])
        assert info.value.code == 2
        assert "invalid choice" in capfd.readouterr().err

    def test_bad_root(self, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path) -> None:
        """A --root that is not a directory is one line, status 126."""
        status, _, err = run(capfd, "--root", str(tmp_path / "none"), EXITS)
        assert status == 126
        assert "not a directory" in one_error_line(err)


class TestSandboxProgram:
    def test_escapes_fail_inside_root(
        self, capfd: pytest.CaptureFixture[str], tmp_path: pathlib.Path
    ) -> None:
        """A real program cannot open files outside --root by .., absolute paths or symlinks."""
        root = tmp_path / "root"
        root.mkdir()
        (tmp_path / "secret").write_text("no")
        (root / "inside").write_text("yes")
        (root / "link").symlink_to(tmp_path / "secret")
        status, out, _ = run(
            capfd,
            "--root",
            str(root),
            str(GUEST / "prebuilt" / "sandbox"),
            "../secret",
            str(tmp_path / "secret"),
            "/link",
            "/inside",
            "../../inside",
            "/tmp",
            "/dev/null",
        )
        assert status == 0
        assert out.splitlines() == [
            "open ../secret -> No such file or directory",
            f"open {tmp_path / 'secret'} -> No such file or directory",
            "open /link -> No such file or directory",
            "open /inside -> ok",
            "open ../../inside -> ok",
            "open /tmp -> ok",
            "open /dev/null -> ok",
            "readlink /proc/self/exe ok 1",
            "cwd /",
            "chdir .. 0",
            "cwd /",
        ]


class TestModuleEntryPoint:
    def test_python_dash_m(self, tmp_path: pathlib.Path) -> None:
        """``python -m vmkit.async_executor run`` works and exits with the guest's status."""
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "vmkit.async_executor",
                "run",
                "--root",
                str(tmp_path),
                EXITS,
                "exit",
            ],
            capture_output=True,
            check=False,
            timeout=120,
            env={**os.environ, "PYTHONWARNINGS": "error"},
        )
        assert proc.returncode == 3
        assert proc.stdout == b"mode exit\n"
