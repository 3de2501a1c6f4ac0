"""Tests of the VM suite's shipped guest workloads and the checks on what they print."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess

import pytest
from elftools.elf.elffile import ELFFile

from vmkit.perf_bench.suites._vm_engines import interpreter_factory
from vmkit.perf_bench.suites._vm_gc import GcRecorder
from vmkit.perf_bench.suites._vm_workloads import (
    WORKLOADS,
    GuestCheckError,
    run_guest,
    workload_path,
)


def _require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        if os.environ.get("REQUIRE_ORACLES") == "1":
            pytest.fail(f"{tool} is required (REQUIRE_ORACLES=1) but not installed")
        pytest.skip(f"{tool} is not installed")
    return found


class TestShippedPrograms:
    """The prebuilt ELFs ship with the package, small and runnable."""

    @pytest.mark.parametrize("name", sorted(WORKLOADS))
    def test_is_a_stripped_static_riscv64_executable(self, name):
        """Each workload is a static RV64 executable without a symbol table (stripped)."""
        with workload_path(name).open("rb") as fh:
            elf = ELFFile(fh)
            assert elf["e_machine"] == "EM_RISCV"
            assert elf.elfclass == 64
            assert elf["e_type"] == "ET_EXEC"
            assert elf.get_section_by_name(".symtab") is None
            assert not any(seg["p_type"] == "PT_INTERP" for seg in elf.iter_segments())

    def test_missing_program_is_a_clear_error(self):
        """Asking for a program that is not shipped names it and says how to rebuild."""
        with pytest.raises(GuestCheckError, match=r"'nope' is missing .* `make install`"):
            workload_path("nope")

    @pytest.mark.oracle
    @pytest.mark.parametrize("name", sorted(WORKLOADS))
    def test_oracle_agrees_with_qemu(self, name):
        """qemu-riscv64 running the shipped program prints exactly what the Python oracle says."""
        qemu = _require("qemu-riscv64")
        workload = WORKLOADS[name]
        argv = workload.argv(quick=True)
        done = subprocess.run(
            [qemu, str(workload_path(name)), *argv[1:]],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0
        assert done.stdout.decode() == workload.expected_output(workload.quick_args)


class TestRunGuest:
    """run_guest runs a checked guest and reports what it cost."""

    @pytest.mark.parametrize("name", sorted(WORKLOADS))
    def test_quick_run_passes_its_check_on_the_interpreter(self, name):
        """Every workload exits 0 with the oracle's output; instret matches the executor's count."""
        run = run_guest(WORKLOADS[name], "interpreter", interpreter_factory(), quick=True)
        assert run.status == 0
        assert run.stdout == WORKLOADS[name].expected_output(run.args)
        assert run.instructions == run.executor.stats.instructions > 0
        assert run.elapsed_ns > 0

    def test_a_full_collection_precedes_the_timed_run(self):
        """The run starts from a collected heap: a generation-2 collection happens first."""
        with GcRecorder() as recorder:
            run_guest(WORKLOADS["matmul"], "interpreter", interpreter_factory(), quick=True)
        assert 2 in recorder.generations

    def test_wrong_output_fails_the_check(self):
        """A run whose output differs from the oracle's raises, quoting both."""
        run = run_guest(WORKLOADS["matmul"], "interpreter", interpreter_factory(), quick=True)
        bad = dataclasses.replace(run, stdout="matmul 16 0\n")
        with pytest.raises(GuestCheckError, match="printed 'matmul 16 0\\\\n', expected"):
            WORKLOADS["matmul"].check(bad)

    def test_bad_status_fails_the_check(self):
        """A guest that exits non-zero (here: its own usage error) fails the check."""
        with pytest.raises(GuestCheckError, match="ended with status 2"):
            run_guest(
                WORKLOADS["sieve"], "interpreter", interpreter_factory(), quick=True, args=(1,)
            )

    def test_budget_stop_fails_the_check(self):
        """A guest stopped by its instruction budget is not a finished benchmark."""

        def make(machine):
            executor = interpreter_factory()(machine)
            run = executor.run

            def limited(m, max_instructions=None):
                return run(m, max_instructions=1000)

            executor.run = limited
            return executor

        with pytest.raises(GuestCheckError, match="ended with status 124"):
            run_guest(WORKLOADS["crc32"], "interpreter", make, quick=True)


class TestOracles:
    """The Python oracles against facts known independently."""

    def test_sieve_oracle(self):
        """There are 25 primes up to 100, the largest 97; 9592 up to 100000."""
        assert WORKLOADS["sieve"].expected_output((100,)) == "sieve 100 25 97\n"
        assert WORKLOADS["sieve"].expected_output((100000,)) == "sieve 100000 9592 99991\n"

    def test_matmul_oracle_on_one_element(self):
        """For N = 1: A = -8, B = -6, C = 48, checksum 48 * 1."""
        assert WORKLOADS["matmul"].expected_output((1,)) == "matmul 1 48\n"

    def test_pagewalk_oracle(self):
        """Two pages, one pass: words 0 and 2654435761."""
        assert WORKLOADS["pagewalk"].expected_output((2, 1)) == "pagewalk 2 1 2654435761\n"
