"""A long syscall fuzz: 100,000 calls across seeds, 0 internal errors, 0 host-side leaks.

``test_syscall_fuzz.py`` lets hypothesis shrink short call sequences; this campaign is the
volume run the sandbox promises to survive. Each seed drives a stream of 5,000 calls with
arguments biased towards what breaks kernels (valid fds, paths that climb out of the root or
through ``/proc/self/fd``, buffers on a page edge, sizes near 2**64, AT_FDCWD) through guest
processes that die and are replaced whenever a call ends one. Everything outside the root is a
canary; after each seed the host must hold exactly the fds, files and private ``/tmp``
directories it held before, and no process may have mapped more than its memory limit.

A failure names the seed and the call, so ``pytest -k 'seed_N'`` replays it exactly.
"""

from __future__ import annotations

import os
import pathlib
import random
import resource
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from vmkit.async_executor.errors import GuestExit, GuestSignal
from vmkit.async_executor.limits import GuestLimits
from vmkit.async_executor.linux import SYSCALL_NUMBERS, Linux
from vmkit.async_executor.machine import PERM_R, PERM_W, AddressSpace, Hart, Machine

SEEDS = range(20)
CALLS_PER_SEED = 5_000
BUF = 0x100000
BUF_SIZE = 0x10000
# Every blocking call (sleep, poll, a read on an empty pipe) waits at most this long: the
# wall-clock limit is re-armed before each call, so blocking ends the process instead.
WAIT = 0.001
LIMITS = GuestLimits(memory_bytes=64 << 20, open_files=48, open_files_hard=64, disk_bytes=4 << 20)
CANARY = b"canary: must never change"
PATHS = [
    b"/proc/self/fd/3",
    b"/proc/self/exe",
    b"/proc/self/fd/0",
    b"../../outside/canary",
    b"/../../../outside/canary",
    b"escape",  # a symlink in the root to the canary's host path
    b"/tmp/f",
    b"/tmp",
    b"/dev/null",
    b"/dev/full",
    b"/etc/localtime",
    b"a/b/../../..",
    b"",
    b"/",
    b"dir",
    b"file",
]
RESULT_PTR = BUF + 0x8000  # scratch the guest's calls may overwrite freely
EDGES = [BUF + BUF_SIZE - 8, BUF + BUF_SIZE - 1, BUF + BUF_SIZE, BUF - 1, 0, 0xDEAD0000]
SIZES = [0, 1, 8, 4096, 1 << 20, 1 << 30, 1 << 40, 2**63, 2**64 - 1]
AT_FDCWD = 2**64 - 100


def _path_ptr(index: int) -> int:
    return BUF + 0x100 * index


def _argument(rng: random.Random) -> int:  # noqa: PLR0911 - one return per kind of fuzzed argument
    kind = rng.random()
    if kind < 0.25:
        return rng.randrange(0, 12)  # fds and small flags
    if kind < 0.45:
        return _path_ptr(rng.randrange(len(PATHS)))
    if kind < 0.55:
        return RESULT_PTR + rng.randrange(0, 0x100) * 8
    if kind < 0.65:
        return rng.choice(EDGES)
    if kind < 0.75:
        return rng.choice(SIZES)
    if kind < 0.80:
        return AT_FDCWD
    if kind < 0.90:
        return rng.getrandbits(rng.choice((8, 16, 32)))  # flag words
    return rng.getrandbits(64)


_KNOWN = sorted(SYSCALL_NUMBERS.values())


def _number(rng: random.Random) -> int:
    kind = rng.random()
    if kind < 0.93:
        return rng.choice(_KNOWN)
    if kind < 0.99:
        return rng.randrange(0, 512)
    return rng.getrandbits(64)


@dataclass
class _World:
    """The host side of the campaign: a root, canaries outside it and stand-in devices."""

    base: pathlib.Path
    root: pathlib.Path
    outside: pathlib.Path
    stdio: int

    def snapshot(self) -> dict[str, tuple[bytes, int, int]]:
        """Content, mode and mtime of every file outside the root."""
        seen = {}
        for path in sorted(self.outside.rglob("*")):
            if path.is_file():
                st = path.stat()
                seen[str(path)] = (path.read_bytes(), st.st_mode, st.st_mtime_ns)
        return seen


@pytest.fixture
def world(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_World]:
    outside = tmp_path / "outside"
    (outside / "dev").mkdir(parents=True)
    for name in ("null", "zero", "full", "random", "urandom", "tty"):
        (outside / "dev" / name).write_bytes(CANARY)
    (outside / "canary").write_bytes(CANARY)
    (outside / "prog").write_bytes(CANARY)
    (outside / "ro" / "etc").mkdir(parents=True)
    (outside / "ro" / "etc" / "localtime").write_bytes(CANARY)
    (outside / "stdio").write_bytes(CANARY)
    root = tmp_path / "root"
    (root / "dir").mkdir(parents=True)
    (root / "file").write_bytes(b"inside the root")
    (root / "escape").symlink_to(outside / "canary")
    # Private /tmp directories go here, where the test can count them.
    host_tmp = tmp_path / "host-tmp"
    host_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(host_tmp))
    # The guest's stdio is a canary opened read-only: writes to it fail, nothing changes it.
    stdio = os.open(outside / "stdio", os.O_RDONLY)
    yield _World(tmp_path, root, outside, stdio)
    os.close(stdio)


class _Process:
    """One guest process of the campaign; replaced when a call ends it."""

    def __init__(self, world: _World) -> None:
        mem = AddressSpace(LIMITS)
        mem.map(BUF, BUF_SIZE, PERM_R | PERM_W)
        for index, path in enumerate(PATHS):
            mem.write_bytes(_path_ptr(index), path + b"\0")
        self.linux = Linux(
            world.root,
            exe_host=bytes(world.outside / "prog"),
            exe_guest=b"/prog",
            stdio=(world.stdio, world.stdio, world.stdio),
            host_dev=bytes(world.outside / "dev"),
            host_ro=bytes(world.outside / "ro"),
            limits=LIMITS,
        )
        vm = self.linux.process_memory(mem)
        vm.brk_start = vm.brk = 0x200000
        self.mem = mem
        self.machine = Machine(mem, Hart(), self.linux)

    def call(self, number: int, args: list[int]) -> bool:
        """Run one syscall; False when it ended the process."""
        x = self.machine.hart.x
        x[17] = number
        x[10:16] = args
        self.linux.deadline = time.monotonic() + WAIT
        try:
            self.machine.syscall()
        except (GuestExit, GuestSignal):
            return False
        assert 0 <= x[10] < 2**64
        return True


def _host_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed_{s}" for s in SEEDS])
def test_campaign(world: _World, seed: int) -> None:
    rng = random.Random(seed)
    canaries = world.snapshot()
    outside_names = sorted(p.name for p in world.base.iterdir())
    fds_before = _host_fds()
    nofile_before = resource.getrlimit(resource.RLIMIT_NOFILE)
    rss_before = _rss_bytes()
    processes = 0
    process = _Process(world)
    try:
        for index in range(CALLS_PER_SEED):
            number = _number(rng)
            args = [_argument(rng) for _ in range(6)]
            try:
                alive = process.call(number, args)
                assert process.mem.mapped_bytes <= LIMITS.memory_bytes
            except Exception as exc:
                raise AssertionError(
                    f"seed {seed}, call {index}: syscall {number} with "
                    f"{[hex(a) for a in args]} raised {type(exc).__name__}: {exc}"
                ) from exc
            if not alive:
                process.linux.close()
                processes += 1
                process = _Process(world)
    finally:
        process.linux.close()
    assert _host_fds() == fds_before, "host fds leaked"
    assert world.snapshot() == canaries, "a file outside the root changed"
    assert sorted(p.name for p in world.base.iterdir()) == outside_names
    assert list((world.base / "host-tmp").iterdir()) == [], "a private /tmp was left behind"
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == nofile_before
    # Each process may map at most 64 MiB; the host keeps no more than a few of them alive.
    assert _rss_bytes() - rss_before < 512 << 20
    # The campaign must reach past the first process, or it tests one long-lived guest only.
    assert processes > 0
