"""`perf-bench demo`: real guest runs, one screen, a verdict that is the exit status."""

from __future__ import annotations

import dataclasses
import io

import pytest
from rich.console import Console

from vmkit.perf_bench import Direction
from vmkit.perf_bench._demo import EngineRun, GuestDemo, demo_verdict, print_demo
from vmkit.perf_bench.cli import main
from vmkit.perf_bench.suites import _vm_workloads
from vmkit.perf_bench.suites._vm_targets import VM_TARGETS

LOWER, HIGHER = Direction.LOWER, Direction.HIGHER


@pytest.fixture
def suite_result(make_result):
    """A VM-suite-shaped result: every targeted metric of the suite, some met, one missed."""
    spec = {}
    for bench, targets in VM_TARGETS.items():
        spec[bench] = {}
        for metric, target in targets.items():
            good = target.threshold if target.threshold is not None else 1.0
            factor = 0.5 if target.direction is LOWER else 2.0
            if metric == "jit_mips":
                factor = 0.5  # missed: below its floor
            values = [good * factor * (1 + i / 1000) for i in range(6)]
            spec[bench][metric] = (values, target.unit, target.direction, target)
    return make_result(spec, suite="vm")


def _guests(**errors: str) -> GuestDemo:
    demo = GuestDemo("crc32", (4096,), (65536,))
    for engine, short, long in (("interp", 3.0, 5.0), ("jit", 1.0, 9.0), ("hybrid", 6, 15)):
        demo.short.append(EngineRun(engine, 300_000, int(300_000 / short * 1e3)))
        demo.long.append(
            EngineRun(engine, 4_900_000, int(4_900_000 / long * 1e3), error=errors.get(engine, ""))
        )
    demo.short.append(EngineRun("native", unavailable="llvmlite is not installed"))
    demo.long.append(EngineRun("native", unavailable="llvmlite is not installed"))
    return demo


def _render(demo, result, width, suite_error=""):
    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    status = print_demo(console, demo, result, suite_error, width)
    return status, console.file.getvalue()


class TestVerdict:
    """The verdict line states the exit status and why."""

    def test_missed_targets_are_named_and_do_not_fail(self, suite_result):
        status, line = demo_verdict(_guests(), suite_result, "")
        assert status == 0
        assert line.startswith("demo passed (exit 0)")
        judged = sum(1 for t in VM_TARGETS.values() for x in t.values() if x.threshold)
        assert f"{judged - 1} of {judged} targets met, missed: jit_mips" in line
        assert "--check` exits 1" in line

    def test_a_wrong_guest_output_fails(self, suite_result):
        status, line = demo_verdict(_guests(jit="printed 'x', expected 'y'"), suite_result, "")
        assert status == 1
        assert line.startswith("demo FAILED (exit 1): jit (long): printed 'x'")

    def test_a_suite_that_cannot_run_fails(self):
        status, line = demo_verdict(_guests(), None, "no benchmark of suite 'vm' can run here")
        assert status == 1
        assert "suite: no benchmark" in line


class TestScreen:
    """What ran, each targeted figure against its target, in one screen at 80 and 100 columns."""

    @pytest.mark.parametrize("width", [80, 100])
    def test_fits_one_screen(self, suite_result, width):
        status, text = _render(_guests(), suite_result, width)
        lines = text.splitlines()
        assert status == 0
        assert max(map(len, lines)) <= width
        assert len(lines) <= 50
        for bench in VM_TARGETS.values():
            for metric, target in bench.items():
                if target.threshold is not None:
                    row = next(ln for ln in lines if ln.split()[:1] == [metric])
                    assert target.describe() in row
                    assert ("missed" if metric == "jit_mips" else "met") in row
        assert "not installed" in text
        assert "on the short run jit loses to the interpreter" in text
        assert "demo passed (exit 0)" in text.split("steal_latency")[-1]  # the last word

    def test_failed_run_is_marked_in_the_table(self, suite_result):
        status, text = _render(_guests(hybrid="crashed"), suite_result, 100)
        assert status == 1
        row = next(ln for ln in text.splitlines() if ln.split()[:1] == ["hybrid"])
        assert "failed" in row
        assert "demo FAILED (exit 1): hybrid (long): crashed" in text


class TestCommand:
    """The real command on real guests (the suite left out: it takes a minute)."""

    def test_guests_on_two_engines(self, capsys):
        status = main(["demo", "--no-suite", "--engines", "interp", "jit"])
        out = capsys.readouterr().out
        assert status == 0
        rows = {ln.split()[0]: ln.split() for ln in out.splitlines() if ln.split()[:1]}
        assert float(rows["interp"][1]) > 0
        assert float(rows["jit"][2]) > 0
        assert "demo passed (exit 0): every engine ran the guest correctly" in out

    def test_a_wrong_answer_fails_the_demo(self, capsys, monkeypatch):
        """Outputs are checked: an oracle that disagrees with the guest makes the demo exit 1."""
        crc = _vm_workloads.WORKLOADS["crc32"]
        wrong = dataclasses.replace(crc, oracle=lambda size: "crc32 0\n")
        monkeypatch.setitem(_vm_workloads.WORKLOADS, "crc32", wrong)
        monkeypatch.setattr(_vm_workloads, "_cached_oracle", lambda name, args: "crc32 0\n")
        status = main(["demo", "--no-suite", "--engines", "interp"])
        out = capsys.readouterr().out
        assert status == 1
        assert "demo FAILED (exit 1): interp (short): workload crc32 4096 under interp printed" in (
            " ".join(out.split())
        )

    def test_unknown_engine_is_a_usage_error(self, capsys):
        with pytest.raises(SystemExit) as exc:
            main(["demo", "--engines", "qemu"])
        assert exc.value.code == 2
