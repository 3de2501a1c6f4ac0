from __future__ import annotations

import errno
import pathlib

import pytest

from vmkit.async_executor import samples
from vmkit.async_executor.errors import (
    BudgetExhausted,
    GuestExit,
    GuestSignal,
    IllegalInstruction,
    SegmentationFault,
)
from vmkit.async_executor.linux import Linux
from vmkit.async_executor.machine import Machine, Termination
from vmkit.async_executor.machine._machine import NoKernelError


@pytest.fixture
def machine(tmp_path: pathlib.Path) -> Machine:
    return Machine(linux=Linux(tmp_path))


class TestTerminate:
    def test_exit(self, machine: Machine) -> None:
        """GuestExit records reason exit and the guest's status."""
        assert machine.terminate(GuestExit(3)) == 3
        assert machine.termination == Termination(3, "exit", message="guest exited with status 3")

    def test_signals(self, machine: Machine) -> None:
        """Fatal signals give 128 + signal and keep the pc and message."""
        assert machine.terminate(SegmentationFault(0x10, "read", "unmapped", pc=0x400)) == 139
        term = machine.termination
        assert term is not None
        assert (term.reason, term.signal, term.pc) == ("signal", 11, 0x400)
        assert "0x10" in term.message
        assert machine.terminate(IllegalInstruction(0x1000, 0)) == 132
        assert machine.terminate(GuestSignal(6)) == 134

    def test_budget(self, machine: Machine) -> None:
        """An exhausted budget is status 124 with reason budget."""
        assert machine.terminate(BudgetExhausted(100, 0x2000)) == 124
        assert machine.termination is not None
        assert machine.termination.reason == "budget"

    def test_host_bug_is_not_swallowed(self, machine: Machine) -> None:
        """Anything that is not a guest ending propagates."""
        with pytest.raises(KeyError):
            machine.terminate(KeyError("bug"))


class TestSyscallRegisters:
    def test_result_is_unsigned(self, machine: Machine) -> None:
        """A negative errno lands in a0 as 2**64 - errno; a7 selects the call."""
        machine.hart.x[17] = 57  # close
        machine.hart.x[10] = 99
        machine.syscall()
        assert machine.hart.x[10] == 2**64 - errno.EBADF

    def test_a_machine_without_a_kernel_ends_the_guest_on_ecall(self) -> None:
        """A Machine built without a kernel: an ecall is SIGSYS with a message saying why."""
        m = Machine()
        m.hart.x[17] = 172  # getpid
        with pytest.raises(NoKernelError, match="no kernel") as info:
            m.syscall()
        assert info.value.exit_status == 128 + 31
        assert m.deliver_fault(info.value) is False


class TestSamples:
    def test_names(self) -> None:
        """The wheel bundles the benchmark workloads and hello."""
        assert {"hello", "crc32", "sieve", "matmul"} <= set(samples.names())

    def test_paths_are_elf(self) -> None:
        """Each sample is an ELF file."""
        for name in samples.names():
            assert samples.path(name).read_bytes()[:4] == b"\x7fELF"

    @pytest.mark.parametrize("name", ["nope", "../cli.py", "__init__.py"])
    def test_unknown(self, name: str) -> None:
        """Unknown names (and anything that is not a sample) raise KeyError listing choices."""
        with pytest.raises(KeyError, match="hello"):
            samples.path(name)
