"""Reports laid out for 80, 100 and 160 columns, and the complete layout for files and logs.

The fixture has the VM suite's shape: long metric names, long seed figures, wide intervals and a
noisy metric, so the wide layout does not fit 80 or 100 columns and something must give."""

from __future__ import annotations

import pytest

from vmkit.perf_bench import Direction, Target
from vmkit.perf_bench._compare import compare
from vmkit.perf_bench._report import print_text, render_comparison, render_text

LOWER, HIGHER = Direction.LOWER, Direction.HIGHER
SEED = "100 us (simulated)"
NOISY = [10.0, 10.1, 10.2, 10.3, 20, 20.1, 20.2, 20.3]
SPEC = {
    "JitBenchmark": {
        "translate_compile_per_block": (
            [233.0, 231, 236, 240, 229, 233], "us", LOWER, Target(100, "us", LOWER, SEED),
        ),
        "jit_mips": ([13.0, 12.9, 13.4, 7.6, 13.9, 13.1], "MIPS", HIGHER,
                     Target(20, "MIPS", HIGHER, "> 1 M ops/s")),
        "imbalance_cv_uniform": ([0.02878, 0.07758, 0.04, 0.05, 0.03, 0.045], "CV", LOWER, None),
    },
    "CrossArchBenchmark": {
        "translation_per_executed_insn": ([819.9, 754.5, 1108, 800, 830, 790], "ns", LOWER, None),
        "context_switch": (NOISY, "ns", LOWER, Target(1, "us", LOWER, "< 1 us")),
    },
}  # fmt: skip
WIDTHS = (80, 100, 160)


@pytest.fixture
def result(make_result):
    return make_result(SPEC, suite="vm")


def _rows(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if line.split()[:1] == [name]]


def _metrics(result):
    return [(b.name, m) for b in result.benchmarks for m in b.metrics]


class TestResultLayout:
    """Every benchmark's name, value, target and verdict stay visible at every width."""

    @pytest.mark.parametrize("width", WIDTHS)
    def test_no_line_is_wider_than_the_terminal(self, result, width):
        text = render_text(result, width)
        too_wide = [line for line in text.splitlines() if len(line) > width]
        assert too_wide == []

    @pytest.mark.parametrize("width", WIDTHS)
    def test_name_median_target_and_verdict_share_a_line(self, result, width):
        text = render_text(result, width)
        for bench, m in _metrics(result):
            assert _rows(text, bench), f"benchmark {bench} missing at {width} columns"
            (row,) = _rows(text, m.name)
            target = m.target.describe() if m.target else "-"
            assert target in row
            assert m.outcome.value in row
            median_figure = row.split()[1]
            assert median_figure[0].isdigit(), row

    @pytest.mark.parametrize("width", WIDTHS)
    def test_seed_figure_is_kept(self, result, width):
        """The seed figure moves (own column, under the target, under the name), never drops."""
        text = render_text(result, width)
        assert "> 1 M ops/s" in text
        assert "100 us" in text
        assert "(simulated)" in text

    def test_narrow_layouts_drop_the_spread_columns(self, result):
        def header(width):
            return next(ln for ln in render_text(result, width).splitlines() if "verdict" in ln)

        assert "MAD" not in header(80)
        assert "MAD" not in header(100)
        assert "MAD" in header(160)

    def test_file_layout_is_complete_on_one_line_per_metric(self, result):
        """Files and logs: every figure of a metric on its row, whatever the terminal."""
        text = render_text(result)
        (row,) = _rows(text, "translate_compile_per_block")
        for part in ("233", "us", "..", "<= 100 us", SEED, "fail"):
            assert part in row
        assert max(map(len, text.splitlines())) <= 160

    def test_warnings_are_footnotes_at_terminal_widths(self, result):
        text = render_text(result, 80)
        (row,) = _rows(text, "context_switch")
        assert row.rstrip().endswith("pass ¹²")  # unstable, and two clusters
        unstable = [line for line in text.splitlines() if line.startswith("¹ unstable")]
        clusters = [line for line in text.splitlines() if line.startswith("² values form two")]
        assert len(unstable) == len(clusters) == 1
        assert "(1 metric), e.g. CrossArchBenchmark.context_switch" in clusters[0]

    def test_file_layout_lists_every_warning(self, result):
        text = render_text(result)
        assert "warning CrossArchBenchmark.context_switch: values form two clusters" in text

    def test_piped_output_is_the_file_layout(self, result, capsys):
        print_text(result)
        printed = capsys.readouterr().out
        assert [line.rstrip() for line in printed.splitlines()] == render_text(result).splitlines()


class TestComparisonLayout:
    """Compare: metric, values, change and verdict stay visible at every width."""

    @pytest.fixture
    def comparison(self, result, make_result):
        slower = {
            bench: {
                name: ([v * 1.5 for v in values], unit, direction, target)
                for name, (values, unit, direction, target) in metrics.items()
            }
            for bench, metrics in SPEC.items()
        }
        return compare(result, make_result(slower, suite="vm"))

    @pytest.mark.parametrize("width", WIDTHS)
    def test_verdicts_and_changes_at_every_width(self, comparison, width):
        text = render_comparison(comparison, "base.json", "new.json", width=width)
        assert max(map(len, text.splitlines())) <= width
        for row in comparison.rows:
            (line,) = _rows(text, row.metric)
            assert row.verdict.value in line
            assert f"{row.change:+.1%}" in line

    def test_file_layout_is_one_line_per_metric(self, comparison):
        text = render_comparison(comparison)
        for row in comparison.rows:
            (line,) = _rows(text, row.metric)
            assert row.verdict.value in line
            assert f"{row.p_value:.3g}" in line
