"""The GDB stub: driven by the real gdb-multiarch in batch mode (break at main, step, read a
local, watch a variable, continue to the exit), and by hand at the protocol level (Ctrl-C,
registers, memory, threads, malformed packets, kill and detach)."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rv_support import need_tool

from vmkit.async_executor import HybridExecutor, InterpreterExecutor, JitExecutor, load_program
from vmkit.async_executor.cli import main
from vmkit.async_executor.gdb import GdbStub
from vmkit.async_executor.gdb._packets import checksum
from vmkit.async_executor.machine._hooks import GuestStopped
from vmkit.async_executor.samples import path as sample_path

ENGINES: dict[str, Callable[[Any], Any]] = {
    "interp": InterpreterExecutor,
    "jit": JitExecutor,
    "hybrid": lambda m: HybridExecutor(m, threshold=2),
}

DEBUGGEE = r"""
#include <stdio.h>

int counter;

static int square(int v) { return v * v; }

int main(void) {
    int local = 7;
    for (int i = 0; i < 3; i++) {
        counter += square(local + i);
    }
    printf("counter=%d\n", counter);
    return counter % 256;
}
"""


@pytest.fixture(scope="module")
def debuggee(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A static RISC-V program with debug information (-g -O0)."""
    need_tool("riscv64-linux-gnu-gcc")
    folder = tmp_path_factory.mktemp("gdb")
    (folder / "dbg.c").write_text(DEBUGGEE)
    subprocess.run(
        ["riscv64-linux-gnu-gcc", "-static", "-g", "-O0", "-o", "dbg", "dbg.c"],
        cwd=folder,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return folder / "dbg"


@pytest.fixture
def root() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        yield folder


class Served:
    """A stub serving ``machine`` on a free loopback port, in a thread."""

    def __init__(self, machine: Any, executor: Any, **options: Any) -> None:
        self.machine = machine
        self.stub = GdbStub(machine, executor, **options)
        self.port = 0
        self.status: int | None = None
        listening = threading.Event()

        def ready(host: str, port: int) -> None:
            self.port = port
            listening.set()

        def serve() -> None:
            self.status = self.stub.serve("127.0.0.1", 0, ready=ready)

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        assert listening.wait(10)

    def join(self) -> int | None:
        self.thread.join(60)
        assert not self.thread.is_alive()
        return self.status


class Client:
    """gdb's side of the protocol, by hand."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buffer = b""

    def raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, payload: bytes) -> None:
        self.raw(b"$%s#%02x" % (payload, checksum(payload)))

    def reply(self) -> bytes:
        while True:
            start = self.buffer.find(b"$")
            end = self.buffer.find(b"#", start)
            if start >= 0 and end >= 0 and len(self.buffer) >= end + 3:
                payload = self.buffer[start + 1 : end]
                self.buffer = self.buffer[end + 3 :]
                self.raw(b"+")
                return payload
            chunk = self.sock.recv(65536)
            assert chunk, "the stub closed the connection"
            self.buffer += chunk

    def ask(self, payload: bytes) -> bytes:
        self.send(payload)
        return self.reply()

    def close(self) -> None:
        self.sock.close()


def gdb_batch(port: int, program: Path, *commands: str) -> str:
    need_tool("gdb-multiarch")
    argv = ["gdb-multiarch", "-nx", "-batch", "-ex", "set confirm off",
            "-ex", f"target remote 127.0.0.1:{port}"]  # fmt: skip
    for command in commands:
        argv += ["-ex", command]
    done = subprocess.run(
        [*argv, str(program)], capture_output=True, text=True, timeout=120, check=False
    )
    return done.stdout + done.stderr


class TestWithGdb:
    @pytest.mark.parametrize("engine", ENGINES)
    def test_break_step_read_watch_and_run_to_the_exit(
        self, engine: str, debuggee: Path, root: str
    ) -> None:
        machine = load_program(str(debuggee), ["dbg"], env={}, root=root)
        out = machine.linux.capture_output(1)
        served = Served(machine, ENGINES[engine](machine))
        transcript = gdb_batch(
            served.port,
            debuggee,
            "break main",
            "continue",
            "next",
            "print local",
            "watch counter",
            "continue",
            "print counter",
            "delete",
            "stepi",
            "info registers fcsr",
            "info threads",
            "continue",
        )
        assert served.join() == 194, transcript
        assert "Breakpoint 1, main () at" in transcript
        assert "$1 = 7" in transcript
        assert "Old value = 0" in transcript
        assert "New value = 49" in transcript
        assert "$2 = 49" in transcript
        assert "fcsr" in transcript
        assert "* 1    Thread" in transcript
        assert "exited with code 0302" in transcript  # gdb prints the status (194) in octal
        assert out.text() == "counter=194\n"

    def test_the_command_line_waits_for_gdb(
        self, debuggee: Path, root: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        port_box: list[int] = []
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port_box.append(probe.getsockname()[1])
        port = port_box[0]
        result: list[int] = []
        runner = threading.Thread(
            target=lambda: result.append(
                main(["run", "--root", root, "--gdb", f"127.0.0.1:{port}", str(debuggee)])
            )
        )
        runner.start()
        transcript = ""
        for _ in range(100):  # the command line binds a moment after it starts
            transcript = gdb_batch(port, debuggee, "break square", "continue", "print v",
                                   "kill")  # fmt: skip
            if "Connection refused" not in transcript:
                break
        runner.join(60)
        assert "$1 = 7" in transcript, transcript
        assert result == [137]  # killed from gdb: 128 + SIGKILL
        assert "waiting for gdb on 127.0.0.1:" in capsys.readouterr().err


class TestProtocol:
    def test_registers_memory_and_malformed_requests(self, root: str) -> None:
        machine = load_program(str(sample_path("hello")), ["hello"], env={}, root=root)
        served = Served(machine, InterpreterExecutor(machine))
        client = Client(served.port)
        entry = machine.hart.pc
        assert client.ask(b"?").startswith(b"T05thread:")
        registers = client.ask(b"g")
        assert len(registers) == 33 * 16
        assert int.from_bytes(bytes.fromhex(registers[-16:].decode()), "little") == entry
        assert client.ask(b"P5=2a00000000000000") == b"OK"
        assert machine.hart.x[5] == 42
        assert client.ask(b"p5") == b"2a00000000000000"
        assert client.ask(b"p32") == b"0000000000000000"  # f17 (numbers are hex)
        assert client.ask(b"p44") == b"00000000"  # fcsr, 32 bits
        assert client.ask(b"p99") == b"E01"  # no such register
        assert client.ask(b"m%x,4" % entry) == machine.memory.peek(entry, 4).hex().encode()
        assert client.ask(b"m0,4") == b"E14"  # page 0 is never mapped
        assert client.ask(b"mzz,4") == b"E01"  # malformed
        assert client.ask(b"qNothingLikeThis") == b""  # unknown: not supported
        assert client.ask(b"Z9,0,0") == b""
        client.raw(b"$g#00")  # a bad checksum is refused and the stub goes on
        assert client.ask(b"qC").startswith(b"QC")
        assert client.ask(b"qXfer:features:read:target.xml:0,40").startswith(b"m<?xml")
        assert client.ask(b"s").startswith(b"T05")
        assert machine.hart.instret == 1
        client.send(b"k")
        client.close()
        assert served.join() == 137

    def test_ctrl_c_interrupts_a_running_guest(self, root: str) -> None:
        machine = load_program(str(sample_path("exits")), ["exits", "loop"], env={}, root=root)
        served = Served(machine, JitExecutor(machine), slice_instructions=5_000)
        client = Client(served.port)
        client.ask(b"?")
        client.send(b"c")
        client.raw(b"\x03")
        stop = client.reply()
        assert stop.startswith(b"T02thread:"), stop  # SIGINT
        assert machine.hart.instret > 0
        client.send(b"vKill;1")
        assert client.reply() == b"OK"
        client.close()
        assert served.join() == 137
        assert machine.termination is not None
        assert machine.termination.signal == 9

    def test_detach_lets_the_guest_run_to_its_end(self, root: str) -> None:
        machine = load_program(str(sample_path("hello")), ["hello"], env={}, root=root)
        out = machine.linux.capture_output(1)
        served = Served(machine, HybridExecutor(machine))
        client = Client(served.port)
        client.ask(b"Z0,%x,4" % machine.hart.pc)  # a breakpoint, gone with the session
        assert client.ask(b"D") == b"OK"
        client.close()
        assert served.join() == 0
        assert out.text().startswith("Hello")
        assert not machine.hooks.active

    def test_threads_are_listed_and_their_registers_read(self, root: str) -> None:
        machine = load_program(str(sample_path("pthreads")), ["pthreads"], env={}, root=root)
        clones = []

        def after_clone(call: Any) -> None:
            clones.append(call.result)
            if len(clones) == 3:
                raise GuestStopped("three threads started")

        machine.hooks.add_syscall(after_clone, numbers=[220], when="after")  # clone
        served = Served(machine, InterpreterExecutor(machine))
        client = Client(served.port)
        client.ask(b"?")
        assert client.ask(b"c").startswith(b"T05")
        listed = client.ask(b"qfThreadInfo")
        assert listed.startswith(b"m")
        tids = [int(t, 16) for t in listed[1:].split(b",")]
        assert len(tids) == 4
        assert set(clones) <= set(tids)
        assert client.ask(b"qsThreadInfo") == b"l"
        other = clones[0]
        assert client.ask(b"Hg%x" % other) == b"OK"
        thread = machine.linux.threads.live[other]
        assert client.ask(b"p20") == thread.pc.to_bytes(8, "little").hex().encode()
        assert client.ask(b"T%x" % other) == b"OK"
        assert client.ask(b"T7fffffff") == b"E01"
        assert client.ask(b"Hg0") == b"OK"
        machine.hooks.remove(machine.hooks._hooks["syscall_after"][0])
        assert client.ask(b"c").startswith(b"W00")
        client.close()
        assert served.join() == 0

    @pytest.mark.parametrize(("kind", "label"), [(2, b"watch"), (3, b"rwatch"), (4, b"awatch")])
    def test_watchpoints_stop_before_the_access(self, kind: int, label: bytes) -> None:
        from rv_support import DATA_BASE, EXIT, enc, li, machine_with_code, words

        code = words(
            *li(5, DATA_BASE),
            enc("ld", 6, 5, imm=8),  # read
            enc("addi", 6, 6, imm=1),
            enc("sd", rs1=5, rs2=6, imm=8),  # write
            *EXIT,
        )
        machine = machine_with_code(code)
        served = Served(machine, JitExecutor(machine))
        client = Client(served.port)
        client.ask(b"?")
        assert client.ask(b"Z%d,%x,8" % (kind, DATA_BASE + 8)) == b"OK"
        stop = client.ask(b"c")
        assert stop.endswith(b"%s:%x;" % (label, DATA_BASE + 8)), stop
        load_pc = machine.hart.pc  # stopped before the access, which has not happened
        assert machine.memory.peek(DATA_BASE + 8, 8) == bytes(8)
        if kind == 4:  # an access watchpoint also stops at the store that follows
            assert client.ask(b"c").startswith(b"T05")
            assert machine.hart.pc == load_pc + 8
        assert client.ask(b"z%d,%x,8" % (kind, DATA_BASE + 8)) == b"OK"
        assert client.ask(b"c").startswith(b"W")
        client.close()
        served.join()
        assert machine.memory.peek(DATA_BASE + 8, 8) == (1).to_bytes(8, "little")

    def test_a_fatal_signal_is_reported_then_delivered(self, root: str) -> None:
        machine = load_program(str(sample_path("exits")), ["exits", "segv"], env={}, root=root)
        served = Served(machine, HybridExecutor(machine))
        client = Client(served.port)
        client.ask(b"?")
        assert client.ask(b"c").startswith(b"T0bthread:")  # SIGSEGV, the guest still there
        assert client.ask(b"m%x,4" % machine.hart.pc) != b"E14"  # the faulting instruction
        assert client.ask(b"c") == b"X0b"  # resumed: the signal kills it
        client.close()
        assert served.join() == 139
