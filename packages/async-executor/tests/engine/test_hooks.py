"""Hooks on every engine: system calls (observe, answer, replace), invalid memory accesses and
illegal instructions (fix and go on), stopping cleanly, and guest output kept in memory."""

from __future__ import annotations

import errno
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rv_support import CODE_BASE, EXIT, enc, machine_with_code, words

from vmkit.async_executor import HybridExecutor, InterpreterExecutor, JitExecutor, load_program
from vmkit.async_executor.machine import PAGE_SIZE, PERM_R, PERM_W
from vmkit.async_executor.machine._hooks import GuestStopped, SyscallCall
from vmkit.async_executor.samples import path as sample_path

ENGINES: dict[str, Callable[[Any], Any]] = {
    "interp": InterpreterExecutor,
    "jit": JitExecutor,
    "hybrid": HybridExecutor,
}


@pytest.fixture
def root() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        yield folder


def loaded(name: str, args: list[str], root: str) -> Any:
    """A bundled sample program with its stdout kept in memory."""
    machine = load_program(str(sample_path(name)), [name, *args], env={}, root=root)
    machine.captured = machine.linux.capture_output(1)
    return machine


class TestSyscallHooks:
    """Before and after every system call, the same on every engine."""

    def trace(self, engine: str, root: str) -> list[tuple[str, int, int | None]]:
        machine = loaded("crc32", ["512"], root)
        events: list[tuple[str, int, int | None]] = []

        def before(call: SyscallCall) -> None:
            events.append(("before", call.number, None))

        def after(call: SyscallCall) -> None:
            events.append(("after", call.number, call.result))

        machine.hooks.add_syscall(before)
        machine.hooks.add_syscall(after, when="after")
        assert ENGINES[engine](machine).run(machine) == 0
        assert machine.captured.data.startswith(b"crc32(512 bytes) = ")
        return events

    def test_every_engine_sees_the_same_calls_and_results(self, root: str) -> None:
        traces = {engine: self.trace(engine, root) for engine in ENGINES}
        assert traces["interp"] == traces["jit"] == traces["hybrid"]
        names = [n for kind, n, _ in traces["interp"] if kind == "before"]
        assert 64 in names  # write
        assert names[-1] == 94  # exit_group: its after hook never runs (the guest is gone)
        assert len(traces["interp"]) == 2 * len(names) - 1

    @pytest.mark.parametrize("engine", ENGINES)
    def test_a_before_hook_answers_instead_of_the_kernel(self, engine: str, root: str) -> None:
        """A sandbox policy: openat of anything but one path is refused before it happens."""
        machine = loaded("sandbox", ["/etc/passwd", "allowed.txt"], root)
        (Path(root) / "allowed.txt").write_text("ok")
        refused: list[bytes] = []

        def policy(call: SyscallCall) -> None:
            path = call.machine.memory.read_cstring(call.args[1], 4096)
            if path != b"allowed.txt":
                refused.append(path)
                call.result = -errno.EACCES

        machine.hooks.add_syscall(policy, numbers=[56])  # openat
        ENGINES[engine](machine).run(machine)
        out = machine.captured.text()
        assert "open /etc/passwd -> Permission denied" in out
        assert "open allowed.txt -> ok" in out
        assert b"/etc/passwd" in refused

    @pytest.mark.parametrize("engine", ENGINES)
    def test_an_after_hook_changes_the_result(self, engine: str, root: str) -> None:
        """The guest sees the result the after-hook leaves: told that its first write wrote one
        byte, stdio writes the rest again (so the capture holds the tail twice)."""
        machine = loaded("exits", ["return"], root)
        seen: list[int] = []

        def short_write(call: SyscallCall) -> None:
            if call.number == 64 and call.args[0] == 1:
                seen.append(call.result or 0)
                if len(seen) == 1:
                    call.result = 1

        machine.hooks.add_syscall(short_write, when="after")
        assert ENGINES[engine](machine).run(machine) == 42
        assert seen == [len(b"mode return\n"), len(b"ode return\n")]
        assert machine.captured.data == b"mode return\node return\n"

    @pytest.mark.parametrize("engine", ENGINES)
    def test_replaced_syscall_handler(self, engine: str, root: str) -> None:
        """write replaced from Python: the guest's bytes reach the handler, not the capture."""
        machine = loaded("hello", [], root)
        written: list[bytes] = []

        def write(m: Any, fd: int, buf: int, count: int, *_: int) -> int:
            written.append(m.memory.read_bytes(buf, count))
            return count

        machine.linux.replace_syscall("write", write)
        assert ENGINES[engine](machine).run(machine) == 0
        assert b"Hello, RISC-V!" in b"".join(written)
        assert machine.captured.data == b""
        machine.linux.replace_syscall("write", None)  # the built-in handler again

    @pytest.mark.parametrize("engine", ENGINES)
    def test_stop_before_a_call_then_resume(self, engine: str, root: str) -> None:
        """A hook stops the guest before its first write; the state is exact, and a second run
        carries on to the same end as an uninterrupted run."""
        machine = loaded("hello", [], root)

        def stop_at_write(call: SyscallCall) -> None:
            machine.hooks.remove(handle)
            raise GuestStopped("first write")

        handle = machine.hooks.add_syscall(stop_at_write, numbers=[64])
        executor = ENGINES[engine](machine)
        assert executor.run(machine) == 0
        term = machine.termination
        assert term is not None
        assert term.reason == "stopped"
        assert machine.memory.load(machine.hart.pc, 4) == 0x00000073  # at the ecall
        assert machine.captured.data == b""
        assert executor.run(machine) == 0
        assert machine.termination.reason == "exit"
        assert machine.captured.text().startswith("Hello")

    @pytest.mark.parametrize("engine", ENGINES)
    def test_stop_after_a_call_resumes_after_it(self, engine: str, root: str) -> None:
        machine = loaded("hello", [], root)

        def stop_after_write(call: SyscallCall) -> None:
            if call.args[0] == 1:  # the first write to stdout (stderr comes first)
                machine.hooks.remove(handle)
                machine.hooks.stop()

        handle = machine.hooks.add_syscall(stop_after_write, when="after", numbers=[64])
        executor = ENGINES[engine](machine)
        executor.run(machine)
        assert machine.termination.reason == "stopped"
        first = machine.captured.data
        assert first
        executor.run(machine)
        reference = loaded("hello", [], tempfile.mkdtemp())
        InterpreterExecutor(reference).run(reference)
        assert machine.captured.data == reference.captured.data  # nothing written twice


class TestFaultHooks:
    """Invalid memory and illegal instructions: a hook fixes the cause and the guest goes on."""

    @pytest.mark.parametrize("engine", ENGINES)
    def test_mapping_the_page_lets_the_guest_continue(self, engine: str, root: str) -> None:
        """`exits segv` stores to 0xdead0000: with the page mapped by the hook it returns 42."""
        machine = loaded("exits", ["segv"], root)
        faults: list[tuple[int, str]] = []

        def map_page(m: Any, fault: Any) -> bool:
            faults.append((fault.addr, fault.access))
            m.memory.map(fault.addr & ~(PAGE_SIZE - 1), PAGE_SIZE, PERM_R | PERM_W)
            return True

        machine.hooks.add_invalid_memory(map_page)
        assert ENGINES[engine](machine).run(machine) == 42
        assert faults == [(0xDEAD0000, "write")]
        assert machine.memory.load(0xDEAD0000, 8) == 1

    @pytest.mark.parametrize("engine", ENGINES)
    def test_unhandled_fault_still_ends_the_guest(self, engine: str, root: str) -> None:
        machine = loaded("exits", ["segv"], root)
        machine.hooks.add_invalid_memory(lambda m, fault: False)
        assert ENGINES[engine](machine).run(machine) == 139

    @pytest.mark.parametrize("engine", ENGINES)
    def test_skipping_an_illegal_instruction(self, engine: str) -> None:
        code = words(
            enc("addi", 10, 0, imm=5),
            0xFFFFFFFF,  # illegal
            enc("addi", 10, 10, imm=2),
            *EXIT,
        )
        machine = machine_with_code(code)
        seen: list[int] = []

        def skip(m: Any, fault: Any) -> bool:
            seen.append(fault.pc)
            m.hart.pc = fault.pc + 4
            return True

        machine.hooks.add_illegal_instruction(skip)
        assert ENGINES[engine](machine).run(machine) == 7
        assert seen == [CODE_BASE + 4]


class TestCapture:
    """Guest output kept in memory, with a callback and a limit."""

    def test_callback_sees_each_write_and_stat_says_pipe(self, root: str) -> None:
        machine = load_program(str(sample_path("hello")), ["hello"], env={}, root=root)
        chunks: list[bytes] = []
        capture = machine.linux.capture_output(1, chunks.append)
        assert InterpreterExecutor(machine).run(machine) == 0
        assert b"".join(chunks) == capture.data
        assert capture.written == len(capture.data) > 0
        assert stat.S_ISFIFO(machine.linux._stat_fd(1).st_mode)

    def test_limit_refuses_the_write_past_it(self, root: str) -> None:
        machine = load_program(str(sample_path("hello")), ["hello"], env={}, root=root)
        capture = machine.linux.capture_output(1, limit=4)
        InterpreterExecutor(machine).run(machine)
        assert capture.truncated
        assert len(capture.data) <= 4
