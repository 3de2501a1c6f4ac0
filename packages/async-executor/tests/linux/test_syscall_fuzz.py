"""Random syscalls with random arguments: the Linux layer answers, it never breaks the host."""

from __future__ import annotations

import pathlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vmkit.async_executor.errors import GuestExit, GuestSignal
from vmkit.async_executor.linux import SYSCALL_NUMBERS, Linux
from vmkit.async_executor.machine import PERM_R, PERM_W, AddressSpace, Hart, Machine

BUF = 0x100000
# Calls that legitimately block or sleep for as long as the guest asks.
BLOCKING = {"nanosleep", "clock_nanosleep", "ppoll", "read", "readv", "pread64"}
NUMBERS = sorted(n for name, n in SYSCALL_NUMBERS.items() if name not in BLOCKING)

_ARG = st.one_of(
    st.integers(0, 16),
    st.sampled_from([BUF, BUF + 0x800, BUF + 0xFFF8, 0xDEAD0000, 2**64 - 100, 2**64 - 1]),
    st.integers(0, 2**64 - 1),
)
_PATHS = st.lists(
    st.sampled_from([b"..", b".", b"tmp", b"dev", b"proc", b"a", b"b", b"null", b"self", b"exe"]),
    min_size=1,
    max_size=5,
).map(b"/".join)


class TestSyscallFuzz:
    @settings(
        max_examples=300,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        st.lists(st.tuples(st.sampled_from(NUMBERS), st.lists(_ARG, min_size=6, max_size=6))),
        _PATHS,
        st.booleans(),
    )
    def test_never_crashes_or_escapes(
        self,
        tmp_path: pathlib.Path,
        calls: list[tuple[int, list[int]]],
        path: bytes,
        absolute: bool,
    ) -> None:
        """Every call returns a value in a0 or ends the guest; nothing appears outside the root."""
        root = tmp_path / "root"
        root.mkdir(exist_ok=True)
        # Stand-in devices: the fuzz must never be able to reach the host's real /dev.
        dev = tmp_path / "dev"
        dev.mkdir(exist_ok=True)
        for name in ("null", "zero", "random", "urandom", "tty"):
            (dev / name).write_bytes(b"")
        (tmp_path / "stdio").touch()
        outside_before = sorted(p.name for p in tmp_path.iterdir())
        # A scratch file, not /dev/null, behind the guest's stdio: nothing the guest does to its
        # stdio can then reach a host device.
        with open(tmp_path / "stdio", "w+b") as stdio:
            fd = stdio.fileno()
            mem = AddressSpace()
            mem.map(BUF, 0x10000, PERM_R | PERM_W)
            mem.write_bytes(BUF, (b"/" if absolute else b"") + path + b"\0")
            mem.write_bytes(BUF + 0x800, path + b"/../.." + b"\0")
            linux = Linux(root, stdio=(fd, fd, fd), host_dev=bytes(dev))
            vm = linux.process_memory(mem)
            vm.brk_start = vm.brk = 0x200000
            machine = Machine(mem, Hart(), linux)
            try:
                for number, args in calls:
                    x = machine.hart.x
                    x[17] = number
                    x[10:16] = args
                    try:
                        machine.syscall()
                    except (GuestExit, GuestSignal):
                        break
                    assert 0 <= x[10] < 2**64
            finally:
                linux.close()
        assert sorted(p.name for p in tmp_path.iterdir()) == outside_before
        for name in ("null", "zero", "random", "urandom", "tty"):
            st = (dev / name).stat()
            assert (st.st_size, st.st_nlink) == (0, 1)
