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


@pytest.fixture(scope="module")
def stats():
    """Statistics of a small run on four vCPUs."""
    from vmkit.coroutine_scheduler import Scheduler
    from vmkit.coroutine_scheduler._workload import populate

    scheduler = Scheduler(4, seed=1)
    populate(scheduler, 40, skew=0.5, slices=5, work=20)
    scheduler.run(timeout=60)
    return scheduler.stats()


class TestDemoLayout:
    """The demo's table at 80, 100 and 160 columns, and complete in files and pipes."""

    @pytest.mark.parametrize("width", [80, 100, 160])
    def test_every_column_fits_and_every_vcpu_keeps_its_figures(self, stats, width):
        from vmkit.coroutine_scheduler._report import format_stats_table

        text = format_stats_table(stats, width)
        assert max(map(len, text.splitlines())) <= width
        headers = " ".join(ln for ln in text.splitlines() if ln.split()[:1] == ["vcpu"])
        for column in ("executions", "switches", "busy ms", "util %", "steals in", "spills"):
            assert column in headers
        # Each vCPU's and the total's figures: one row per table it appears in.
        rows: dict[str, list[str]] = {}
        for line in text.splitlines():
            cells = line.split()
            if cells and (cells[0].isdigit() or cells[0] == "total"):
                rows.setdefault(cells[0], []).extend(cells[1:])
        assert set(rows) == {"0", "1", "2", "3", "total"}
        assert all(len(cells) == 10 for cells in rows.values())

    def test_files_get_one_table(self, stats):
        from vmkit.coroutine_scheduler._report import format_stats_table

        text = format_stats_table(stats)
        assert sum(1 for ln in text.splitlines() if ln.split()[:1] == ["vcpu"]) == 1

    def test_piped_demo_header_is_not_one_long_line(self, capsys: pytest.CaptureFixture[str]):
        assert main(["demo", "--vcpus", "2", "--coroutines", "8", "--slices", "3"]) == 0
        out = capsys.readouterr().out
        assert max(map(len, out.splitlines())) <= 110
