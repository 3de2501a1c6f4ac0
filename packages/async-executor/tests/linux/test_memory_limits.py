"""The guest memory limit: mmap, the loader and a real program, none able to take the host's memory.

A file-backed mmap is mapped (and so checked against the limit) before a byte is read, and then
reads only what the file holds; the loader refuses a program whose headers ask for more memory
than the limit before it maps anything; a C program that mallocs until it gets NULL ends on its
own terms under a small limit.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import struct
import subprocess
import sys

import pytest

from vmkit.async_executor.errors import ElfLoadError
from vmkit.async_executor.limits import GuestLimits
from vmkit.async_executor.loader import load_program
from vmkit.async_executor.machine import PAGE_SIZE
from vmkit.async_executor.samples import path as sample_path

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from test_syscalls import Guest

PROT_READ, MAP_PRIVATE = 1, 2
ENOMEM = 12


@pytest.fixture
def guest(tmp_path: pathlib.Path) -> Guest:
    root = tmp_path / "root"
    root.mkdir()
    (root / "one").write_bytes(b"Z")
    g = Guest(root)
    yield g
    g.linux.close()


class TestFileMmap:
    def test_huge_length_is_refused_before_reading(self, guest: Guest) -> None:
        """mmap of a 1-byte file with a 1 TiB length: ENOMEM at once, a refusal counted."""
        fd = guest.open("/one")
        assert guest.call("mmap", 0, 1 << 40, PROT_READ, MAP_PRIVATE, fd, 0) == -ENOMEM
        assert guest.m.memory.limit_counters.memory_refused == 1

    def test_long_mapping_reads_only_the_file(self, guest: Guest) -> None:
        """A 1 GiB mapping of a 1-byte file holds that byte, zeros after it, and materialises
        one page of host memory, not a gigabyte."""
        fd = guest.open("/one")
        pages_before = len(guest.m.memory._pages)
        addr = guest.call("mmap", 0, 1 << 30, PROT_READ, MAP_PRIVATE, fd, 0)
        assert addr > 0
        assert guest.read(addr, 2) == b"Z\0"
        assert guest.read(addr + (1 << 30) - 8, 8) == bytes(8)
        assert len(guest.m.memory._pages) - pages_before <= 2

    def test_pipe_cannot_be_mapped(self, guest: Guest) -> None:
        """Linux maps regular files and devices only: a pipe gives ENODEV, nothing mapped."""
        fds = 0x100000
        assert guest.call("pipe2", fds, 0) == 0
        read_end = struct.unpack("<i", guest.read(fds, 4))[0]
        mapped = guest.m.memory.mapped_bytes
        assert guest.call("mmap", 0, PAGE_SIZE, PROT_READ, MAP_PRIVATE, read_end, 0) == -19
        assert guest.m.memory.mapped_bytes == mapped


def _with_memsz(program: bytes, memsz: int) -> bytes:
    """``program`` with the p_memsz of its last PT_LOAD header replaced."""
    (phoff,) = struct.unpack_from("<Q", program, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", program, 0x36)
    last = max(
        i for i in range(phnum) if struct.unpack_from("<I", program, phoff + i * phentsize)[0] == 1
    )
    patched = bytearray(program)
    struct.pack_into("<Q", patched, phoff + last * phentsize + 0x28, memsz)
    return bytes(patched)


class TestLoader:
    def test_segment_larger_than_the_limit_is_refused_before_mapping(
        self, tmp_path: pathlib.Path
    ) -> None:
        """A 256 GiB p_memsz in a small file: one ElfLoadError naming the segment and the limit."""
        program = tmp_path / "huge"
        program.write_bytes(_with_memsz(sample_path("hello").read_bytes(), 256 << 30))
        with pytest.raises(ElfLoadError, match=r"PT_LOAD segment at 0x[0-9a-f]+ needs \d+ bytes"):
            load_program(program, root=tmp_path)

    def test_segments_and_stack_must_fit_together(self, tmp_path: pathlib.Path) -> None:
        """A limit smaller than the program plus its 8 MiB stack is said plainly at load time."""
        with pytest.raises(ElfLoadError, match="segments and stack need"):
            load_program(
                sample_path("hello"), root=tmp_path, limits=GuestLimits(memory_bytes=8 << 20)
            )

    def test_program_within_the_limit_loads(self, tmp_path: pathlib.Path) -> None:
        """The same program under a modest limit loads and accounts for what it mapped."""
        machine = load_program(
            sample_path("hello"), root=tmp_path, limits=GuestLimits(memory_bytes=32 << 20)
        )
        try:
            assert 8 << 20 < machine.memory.mapped_bytes <= 32 << 20
        finally:
            machine.linux.close()


GREEDY = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(void) {
    size_t total = 0;
    for (;;) {
        char *p = malloc(1 << 20);
        if (!p) break;
        memset(p, 1, 4096);  /* touch one page of each megabyte */
        total += 1;
        if (total > 100000) return 3;
    }
    printf("refused after %s MiB\n", total > 16 ? "more than 16" : "too few");
    return 0;
}
"""


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("REQUIRE_ORACLES") == "1":
            pytest.fail(f"{name} is required (REQUIRE_ORACLES=1)")
        pytest.skip(f"{name} is not installed")
    return found


@pytest.mark.oracle
@pytest.mark.parametrize("engine", ["interp", "hybrid"])
def test_malloc_until_null_under_a_small_limit(tmp_path: pathlib.Path, engine: str) -> None:
    """malloc returns NULL once the limit is reached and the program ends normally (qemu-user
    has no guest memory limit to compare with: the program checks itself); the host process
    stays small."""
    gcc = _tool("riscv64-linux-gnu-gcc")
    src = tmp_path / "greedy.c"
    src.write_text(GREEDY)
    program = tmp_path / "greedy"
    subprocess.run([gcc, "-O2", "-static", "-o", str(program), str(src)], check=True)
    script = (
        "import resource, sys\n"
        "from vmkit.async_executor.cli import main\n"
        "status = main(sys.argv[1:])\n"
        "peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(f'peak-kib {peak}', file=sys.stderr)\n"
        "raise SystemExit(status)\n"
    )
    argv = ["run", "--engine", engine, "--max-memory", "96M", "--root", str(tmp_path)]
    ours = subprocess.run(
        [sys.executable, "-c", script, *argv, str(program)],
        capture_output=True,
        check=False,
        timeout=600,
    )
    assert ours.returncode == 0, ours.stderr.decode()
    assert ours.stdout == b"refused after more than 16 MiB\n"
    peak_kib = int(ours.stderr.decode().split("peak-kib ")[1].split()[0])
    # Python, the engine and the touched guest pages: far below what an unbounded run would take.
    assert peak_kib < 600 * 1024
