"""The ``coroutine-scheduler`` command line."""

from __future__ import annotations

import re

import pytest

from vmkit.coroutine_scheduler import __version__
from vmkit.coroutine_scheduler.cli import main


def table_rows(out: str) -> dict[str, list[str]]:
    rows = {}
    for line in out.splitlines():
        cells = line.split()
        if cells and (cells[0].isdigit() or cells[0] == "total"):
            rows[cells[0]] = cells
    return rows


class TestDemo:
    @pytest.mark.parametrize("backend", ["inline", "threads"])
    def test_prints_one_row_per_vcpu_and_totals(
        self, backend: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The demo runs the workload and prints a row per vCPU whose executions add up."""
        status = main(
            ["demo", "--vcpus", "3", "--coroutines", "30", "--slices", "5", "--backend", backend]
        )
        out = capsys.readouterr().out
        assert status == 0
        assert "finished 30, failed 0" in out
        rows = table_rows(out)
        assert set(rows) == {"0", "1", "2", "total"}
        assert sum(int(rows[k][1]) for k in "012") == int(rows["total"][1])
        assert re.search(r"load imbalance of busy time: CV \d+\.\d+", out)

    def test_skew_without_stealing_leaves_vcpu_zero_doing_everything(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--skew 1 --no-steal: only vCPU 0 executes anything."""
        status = main(
            [
                "demo",
                "--vcpus",
                "2",
                "--coroutines",
                "8",
                "--slices",
                "3",
                "--skew",
                "1",
                "--no-steal",
            ]
        )
        rows = table_rows(capsys.readouterr().out)
        assert status == 0
        assert int(rows["1"][1]) == 0
        assert int(rows["0"][1]) == int(rows["total"][1]) > 0

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--vcpus", "0"], "--vcpus: expected a number >= 1"),
            (["--skew", "1.5"], "--skew: expected a number between 0 and 1"),
            (["--coroutines", "many"], "--coroutines: expected a whole number"),
            (["--backend", "gpu"], "--backend: invalid choice"),
        ],
    )
    def test_bad_arguments_give_a_one_line_error(
        self, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A bad option exits with status 2 and says which option and why."""
        with pytest.raises(SystemExit) as info:
            main(["demo", *args])
        assert info.value.code == 2
        assert message in capsys.readouterr().err


class TestTopLevel:
    def test_version(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--version prints the package version."""
        with pytest.raises(SystemExit):
            main(["--version"])
        assert __version__ in capsys.readouterr().out

    def test_no_command_prints_help(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Without a command, the help goes to stderr and the status is 2."""
        assert main([]) == 2
        assert "demo" in capsys.readouterr().err
