from __future__ import annotations

import contextlib
import os
import pathlib
import shutil
import struct
import subprocess
from io import BytesIO

import pytest
from elftools.elf.elffile import ELFFile
from hypothesis import given, settings
from hypothesis import strategies as st

from vmkit.async_executor.engine import InterpreterExecutor
from vmkit.async_executor.errors import ElfLoadError
from vmkit.async_executor.linux._layout import STACK_TOP
from vmkit.async_executor.loader import HWCAP_RV64IMAFDC, PIE_LOAD_BASE, load_program, parse_elf
from vmkit.async_executor.loader._program import guest_exe_path
from vmkit.async_executor.machine import PERM_R, PERM_W, PERM_X
from vmkit.async_executor.samples import path as sample_path

GUEST = pathlib.Path(__file__).resolve().parents[2] / "guest"
HELLO = sample_path("hello")
AT = {"PHDR": 3, "PHENT": 4, "PHNUM": 5, "PAGESZ": 6, "ENTRY": 9, "UID": 11, "EUID": 12}
AT |= {"GID": 13, "EGID": 14, "HWCAP": 16, "CLKTCK": 17, "SECURE": 23, "RANDOM": 25}
AT |= {"EXECFN": 31}

# addi a0, x0, 7 ; addi a7, x0, 93 ; ecall  -> exit(7)
EXIT7 = struct.pack("<III", 0x00700513, 0x05D00893, 0x00000073)


def make_elf(
    *,
    e_type: int = 2,
    machine: int = 243,
    elf_class: int = 2,
    data_encoding: int = 1,
    vaddr: int = 0x10000,
    interp: bool = False,
    stack_flags: int | None = 6,
    code: bytes = EXIT7,
) -> bytes:
    """A minimal ELF: one R+X PT_LOAD holding headers and ``code``, optional INTERP/GNU_STACK."""
    phdrs = [(1, 5)]  # PT_LOAD R+X
    if interp:
        phdrs.append((3, 4))
    if stack_flags is not None:
        phdrs.append((0x6474E551, stack_flags))
    code_off = 64 + 56 * len(phdrs)
    total = code_off + len(code)
    header = b"\x7fELF" + bytes([elf_class, data_encoding, 1]) + bytes(9)
    header += struct.pack(
        "<HHIQQQIHHHHHH",
        e_type,
        machine,
        1,
        vaddr + code_off,
        64,
        0,
        0,
        64,
        56,
        len(phdrs),
        64,
        0,
        0,
    )
    table = b""
    for p_type, flags in phdrs:
        if p_type == 1:
            table += struct.pack("<IIQQQQQQ", 1, flags, 0, vaddr, vaddr, total, total, 0x1000)
        elif p_type == 3:
            table += struct.pack("<IIQQQQQQ", 3, flags, code_off, vaddr + code_off, 0, 1, 1, 1)
        else:
            table += struct.pack("<IIQQQQQQ", p_type, flags, 0, 0, 0, 0, 0, 16)
    return header + table + code


def read_words(machine, addr: int, n: int) -> list[int]:  # type: ignore[no-untyped-def]
    return list(struct.unpack(f"<{n}Q", machine.memory.read_bytes(addr, 8 * n)))


def parse_stack(machine) -> tuple[list[bytes], list[bytes], dict[int, int]]:  # type: ignore[no-untyped-def]
    """argv strings, env strings and auxv as the guest's _start would read them."""
    mem = machine.memory
    sp = machine.hart.x[2]
    argc = mem.load(sp, 8)
    pos = sp + 8
    argv = [mem.read_cstring(mem.load(pos + 8 * i, 8)) for i in range(argc)]
    pos += 8 * argc
    assert mem.load(pos, 8) == 0
    pos += 8
    envp = []
    while (ptr := mem.load(pos, 8)) != 0:
        envp.append(mem.read_cstring(ptr))
        pos += 8
    pos += 8
    auxv: dict[int, int] = {}
    while True:
        key, value = read_words(machine, pos, 2)
        pos += 16
        if key == 0:
            break
        auxv[key] = value
    return argv, envp, auxv


@pytest.fixture
def hello(tmp_path: pathlib.Path):  # type: ignore[no-untyped-def]
    machine = load_program(
        HELLO,
        ["hello", "one", "two"],
        env={"A": "1", "B": "x y"},
        root=tmp_path,
        random_bytes=bytes(range(16)),
    )
    yield machine
    machine.linux.close()


class TestInitialStack:
    def test_argv_env_and_registers(self, hello) -> None:  # type: ignore[no-untyped-def]
        """argc/argv/envp are laid out for _start; sp is 16-byte aligned; pc is the entry."""
        argv, envp, _ = parse_stack(hello)
        assert argv == [b"hello", b"one", b"two"]
        assert sorted(envp) == [b"A=1", b"B=x y"]
        assert hello.hart.x[2] % 16 == 0
        assert hello.hart.x[2] < STACK_TOP
        elf = ELFFile(BytesIO(HELLO.read_bytes()))
        assert hello.hart.pc == elf["e_entry"]

    def test_auxv_against_pyelftools(self, hello) -> None:  # type: ignore[no-untyped-def]
        """The auxv values agree with the ELF headers as pyelftools reads them."""
        _, _, auxv = parse_stack(hello)
        data = HELLO.read_bytes()
        elf = ELFFile(BytesIO(data))
        assert auxv[AT["ENTRY"]] == elf["e_entry"]
        assert auxv[AT["PHNUM"]] == elf["e_phnum"]
        assert auxv[AT["PHENT"]] == elf["e_phentsize"] == 56
        phdrs = data[elf["e_phoff"] : elf["e_phoff"] + 56 * elf["e_phnum"]]
        assert hello.memory.read_bytes(auxv[AT["PHDR"]], len(phdrs)) == phdrs
        assert auxv[AT["PAGESZ"]] == 4096
        assert auxv[AT["CLKTCK"]] == 100
        assert auxv[AT["SECURE"]] == 0
        assert auxv[AT["HWCAP"]] == HWCAP_RV64IMAFDC
        assert (auxv[AT["UID"]], auxv[AT["EUID"]]) == (os.getuid(), os.geteuid())
        assert (auxv[AT["GID"]], auxv[AT["EGID"]]) == (os.getgid(), os.getegid())
        assert hello.memory.read_bytes(auxv[AT["RANDOM"]], 16) == bytes(range(16))
        assert hello.memory.read_cstring(auxv[AT["EXECFN"]]) == b"hello"

    def test_hwcap_bits(self) -> None:
        """AT_HWCAP has exactly the I, M, A, F, D and C letter bits."""
        assert HWCAP_RV64IMAFDC == (1 << 8) | (1 << 12) | 1 | (1 << 5) | (1 << 3) | (1 << 2)


class TestSegments:
    def test_permissions_and_bss(self, hello) -> None:  # type: ignore[no-untyped-def]
        """Text is R+X, data R+W, bss reads as zero and brk starts after it."""
        elf = ELFFile(BytesIO(HELLO.read_bytes()))
        loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD"]
        text, data = loads
        mem = hello.memory
        assert mem.perms_at(text["p_vaddr"]) == PERM_R | PERM_X
        assert mem.perms_at(data["p_vaddr"]) == PERM_R | PERM_W
        bss_start = data["p_vaddr"] + data["p_filesz"]
        bss = mem.read_bytes(bss_start, data["p_memsz"] - data["p_filesz"])
        assert bss == bytes(len(bss))
        end = data["p_vaddr"] + data["p_memsz"]
        assert hello.linux.process_memory(mem).brk_start == (end + 0xFFF) & ~0xFFF
        file_bytes = HELLO.read_bytes()[text["p_offset"] : text["p_offset"] + 64]
        assert mem.read_bytes(text["p_vaddr"], 64) == file_bytes

    def test_stack_not_executable_by_default(self, hello) -> None:  # type: ignore[no-untyped-def]
        """PT_GNU_STACK without PF_X gives a non-executable stack."""
        assert hello.memory.perms_at(hello.hart.x[2]) == PERM_R | PERM_W

    def test_executable_stack_when_asked(self, tmp_path: pathlib.Path) -> None:
        """The trampoline program's PT_GNU_STACK asks for an executable stack and gets it."""
        machine = load_program(GUEST / "prebuilt" / "trampoline", ["t"], env={}, root=tmp_path)
        assert machine.memory.perms_at(machine.hart.x[2]) == PERM_R | PERM_W | PERM_X

    def test_handmade_exec(self, tmp_path: pathlib.Path) -> None:
        """A minimal ET_EXEC loads at its link address with its entry point."""
        prog = tmp_path / "exit7"
        prog.write_bytes(make_elf())
        machine = load_program(prog, ["exit7"], env={}, root=tmp_path)
        assert machine.hart.pc == 0x10000 + 64 + 2 * 56
        assert machine.memory.fetch(machine.hart.pc, 4) == 0x00700513


class TestStaticPie:
    def test_loads_at_pie_base(self, tmp_path: pathlib.Path) -> None:
        """ET_DYN without PT_INTERP is a static PIE, relocated to PIE_LOAD_BASE."""
        prog = tmp_path / "pie"
        prog.write_bytes(make_elf(e_type=3, vaddr=0))
        machine = load_program(prog, ["pie"], env={}, root=tmp_path)
        assert machine.hart.pc == PIE_LOAD_BASE + 64 + 2 * 56
        _, _, auxv = parse_stack(machine)
        assert auxv[AT["ENTRY"]] == machine.hart.pc
        assert auxv[AT["PHDR"]] == PIE_LOAD_BASE + 64

    def test_runs(self, tmp_path: pathlib.Path) -> None:
        """The relocated static PIE runs to its exit status."""
        prog = tmp_path / "pie"
        prog.write_bytes(make_elf(e_type=3, vaddr=0))
        machine = load_program(prog, ["pie"], env={}, root=tmp_path)
        assert InterpreterExecutor(machine).run(machine) == 7

    @pytest.mark.oracle
    def test_gcc_static_pie_matches_qemu(self, tmp_path: pathlib.Path) -> None:
        """A real -static-pie hello world prints what qemu-riscv64 prints."""
        gcc, qemu = _tool("riscv64-linux-gnu-gcc"), _tool("qemu-riscv64")
        prog = tmp_path / "hello-pie"
        built = subprocess.run(
            [gcc, "-O2", "-static-pie", "-o", str(prog), str(GUEST / "hello.c")],
            capture_output=True,
            check=False,
        )
        if built.returncode != 0 and b"rcrt1.o" in built.stderr:
            pytest.skip("this cross toolchain's libc has no static-PIE start file (rcrt1.o)")
        assert built.returncode == 0, built.stderr.decode(errors="replace")
        assert parse_elf(prog.read_bytes()).is_pie
        expected = subprocess.run([qemu, str(prog)], capture_output=True, check=False, env={})
        out = tmp_path / "out"
        with open(out, "wb") as fh, open(os.devnull, "wb") as err:
            machine = load_program(
                prog, [str(prog)], env={}, root=tmp_path, stdio=(0, fh.fileno(), err.fileno())
            )
            status = InterpreterExecutor(machine).run(machine, max_instructions=10**8)
        assert (out.read_bytes(), status) == (expected.stdout, expected.returncode)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("REQUIRE_ORACLES") == "1":
            pytest.fail(f"{name} is required (REQUIRE_ORACLES=1) but not installed")
        pytest.skip(f"{name} is not installed")
    return found


def _load_error(tmp_path: pathlib.Path, data: bytes) -> str:
    prog = tmp_path / "bad"
    prog.write_bytes(data)
    with pytest.raises(ElfLoadError) as info:
        load_program(prog, ["bad"], env={}, root=tmp_path)
    message = str(info.value)
    assert "\n" not in message
    return message


class TestElfErrors:
    def test_not_an_elf(self, tmp_path: pathlib.Path) -> None:
        """A text file is rejected as not an ELF."""
        assert "not an ELF" in _load_error(tmp_path, b"#!/bin/sh\necho hi\n")

    def test_empty(self, tmp_path: pathlib.Path) -> None:
        """An empty file is rejected as not an ELF."""
        assert "not an ELF" in _load_error(tmp_path, b"")

    @pytest.mark.parametrize("length", [5, 40, 63, 100, 1000, 200_000])
    def test_truncated(self, tmp_path: pathlib.Path, length: int) -> None:
        """Every prefix of a real program is reported as truncated."""
        assert "truncated" in _load_error(tmp_path, HELLO.read_bytes()[:length])

    def test_wrong_machine(self, tmp_path: pathlib.Path) -> None:
        """An x86-64 program names the machine it was built for."""
        message = _load_error(tmp_path, make_elf(machine=62))
        assert "wrong machine" in message
        assert "x86-64" in message

    def test_32_bit(self, tmp_path: pathlib.Path) -> None:
        """A 32-bit ELF is refused as 32-bit."""
        assert "32-bit" in _load_error(tmp_path, make_elf(elf_class=1))

    def test_big_endian(self, tmp_path: pathlib.Path) -> None:
        """A big-endian ELF is refused."""
        assert "big-endian" in _load_error(tmp_path, make_elf(data_encoding=2))

    def test_dynamically_linked(self, tmp_path: pathlib.Path) -> None:
        """PT_INTERP means dynamically linked, and the message says to use -static."""
        message = _load_error(tmp_path, make_elf(interp=True))
        assert "dynamically linked" in message
        assert "-static" in message

    def test_object_file(self, tmp_path: pathlib.Path) -> None:
        """An ET_REL object file is not an executable."""
        assert "not an executable" in _load_error(tmp_path, make_elf(e_type=1))

    @pytest.mark.oracle
    def test_real_dynamic_binary(self, tmp_path: pathlib.Path) -> None:
        """A dynamically linked program from the cross compiler is refused with a clear reason."""
        gcc = _tool("riscv64-linux-gnu-gcc")
        prog = tmp_path / "dyn"
        subprocess.run(
            [gcc, "-O2", "-o", str(prog), str(GUEST / "hello.c")], check=True, capture_output=True
        )
        with pytest.raises(ElfLoadError, match="dynamically linked"):
            load_program(prog, ["dyn"], env={}, root=tmp_path)

    def test_missing_file(self, tmp_path: pathlib.Path) -> None:
        """A path that does not exist is an ElfLoadError naming it."""
        with pytest.raises(ElfLoadError, match="cannot read"):
            load_program(tmp_path / "nope", env={}, root=tmp_path)

    @settings(max_examples=60, deadline=None)
    @given(st.binary(max_size=300))
    def test_random_bytes(self, data: bytes) -> None:
        """Random bytes, with or without the ELF magic, fail with ElfLoadError and nothing else."""
        for blob in (data, b"\x7fELF" + data, b"\x7fELF\x02\x01\x01" + data):
            with pytest.raises(ElfLoadError):
                parse_elf(blob)

    @settings(max_examples=60, deadline=None)
    @given(st.integers(0, 64 + 2 * 56 - 1), st.integers(0, 255))
    def test_corrupted_header_byte(self, index: int, value: int) -> None:
        """A program with one header byte changed either parses or fails with ElfLoadError."""
        blob = bytearray(make_elf())
        blob[index] = value
        with contextlib.suppress(ElfLoadError):
            parse_elf(bytes(blob))


class TestGuestExePath:
    """What /proc/self/exe names: never a host path outside the guest root."""

    def test_a_program_outside_the_root_is_named_by_its_file_name(
        self, tmp_path: pathlib.Path
    ) -> None:
        root = tmp_path / "root"
        root.mkdir()
        machine = load_program(str(sample_path("hello")), ["hello"], env={}, root=str(root))
        assert machine.linux.fs.exe_guest == b"/hello"
        machine.linux.close()

    def test_a_program_inside_the_root_is_named_by_its_guest_path(
        self, tmp_path: pathlib.Path
    ) -> None:
        (tmp_path / "bin").mkdir()
        program = tmp_path / "bin" / "hello"
        program.write_bytes(pathlib.Path(sample_path("hello")).read_bytes())
        machine = load_program(str(program), ["hello"], env={}, root=str(tmp_path))
        assert machine.linux.fs.exe_guest == b"/bin/hello"
        machine.linux.close()
        assert guest_exe_path(str(program), str(tmp_path / "bin")) == "/hello"
        assert guest_exe_path("/elsewhere/deep/prog", str(tmp_path)) == "/prog"
