"""Code, block and memory hooks: the same events on every engine, an exact hart at each one,
hooks that change the pc, stop the guest, or come and go while it runs, and translated code that
still runs outside what the hooks cover."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rv_support import CODE_BASE, DATA_BASE, EXIT, enc, li, machine_with_code, words

from vmkit.async_executor import HybridExecutor, InterpreterExecutor, JitExecutor, load_program
from vmkit.async_executor.machine._hooks import GuestStopped
from vmkit.async_executor.samples import path as sample_path

ENGINES: dict[str, Callable[[Any], Any]] = {
    "interp": InterpreterExecutor,
    "jit": JitExecutor,
    "hybrid": lambda m: HybridExecutor(m, threshold=2),
}
try:
    import llvmlite  # noqa: F401 - the [native] extra; CI installs it

    from vmkit.async_executor.engine.native import NativeExecutor

    ENGINES["native"] = lambda m: NativeExecutor(m, threshold=2)
except ImportError:  # pragma: no cover - without the extra the other engines are tested
    pass


@pytest.fixture
def root() -> Iterator[str]:
    with tempfile.TemporaryDirectory() as folder:
        yield folder


def crc32_machine(root: str) -> Any:
    """The crc32 sample over 64 bytes, deterministic (AT_RANDOM fixed), stdout kept."""
    machine = load_program(
        str(sample_path("crc32")), ["crc32", "64"], env={}, root=root, random_bytes=bytes(16)
    )
    machine.captured = machine.linux.capture_output(1)
    return machine


def run_traced(engine: str, root: str, setup: Callable[[Any, list[Any]], None]) -> list[Any]:
    machine = crc32_machine(root)
    events: list[Any] = []
    setup(machine, events)
    assert ENGINES[engine](machine).run(machine) == 0
    assert machine.captured.text() == "crc32(64 bytes) = 5c7dd37c\n"
    events.append(("instret", machine.hart.instret))
    return events


def every_block(machine: Any, events: list[Any]) -> None:
    machine.hooks.add_block(lambda m, pc: events.append((pc, m.hart.instret)))


def every_instruction(machine: Any, events: list[Any]) -> None:
    machine.hooks.add_code(lambda m, pc: events.append((pc, m.hart.pc, m.hart.instret)))


def stack_accesses(machine: Any, events: list[Any]) -> None:
    sp = machine.hart.x[2]

    def seen(m: Any, access: str, addr: int, size: int, value: int) -> None:
        events.append((access, addr, size, value, m.hart.pc, m.hart.instret))

    machine.hooks.add_memory(seen, sp - 0x10000, sp, access="access")


def all_memory(machine: Any, events: list[Any]) -> None:
    """Every load and store (glibc's start-up has LR/SC loops: an SC whose store the engine
    hands to the stepper must still succeed there)."""

    def seen(m: Any, access: str, addr: int, size: int, value: int) -> None:
        events.append((access, addr, size, m.hart.pc))

    machine.hooks.add_memory(seen, access="access")


class TestSameEventsOnEveryEngine:
    @pytest.mark.parametrize("setup", [every_block, every_instruction, stack_accesses, all_memory])
    def test_traces_are_identical(self, setup: Callable[..., None], root: str) -> None:
        traces = {engine: run_traced(engine, root, setup) for engine in ENGINES}
        reference = traces["interp"]
        assert len(reference) > 100
        for engine, trace in traces.items():
            assert trace == reference, engine

    def test_an_instruction_hook_sees_every_instruction_once_with_an_exact_hart(
        self, root: str
    ) -> None:
        events = run_traced("jit", root, every_instruction)
        (_, total) = events.pop()
        assert len(events) == total  # one event per retired instruction
        assert all(pc == hart_pc for pc, hart_pc, _ in events)
        assert [n for _, _, n in events] == list(range(total))

    def test_blocks_start_after_control_transfers(self, root: str) -> None:
        blocks = run_traced("interp", root, every_block)[:-1]
        code = run_traced("interp", root, every_instruction)[:-1]
        starts = {instret for _, instret in blocks}
        # Where a block starts, the previous instruction did not fall through to a new block
        # start in the middle of straight-line code: each block is at least one instruction,
        # and blocks partition the instruction stream in order.
        assert [instret for _, instret in blocks] == sorted(starts)
        assert blocks[0] == (code[0][0], 0)
        by_instret = {n: pc for pc, _, n in code}
        assert all(by_instret[n] == pc for pc, n in blocks)


class TestMemoryHooks:
    """A hand-written program: store 0x1234 to DATA_BASE + 8, load it back, exit with it."""

    CODE = words(
        *li(5, DATA_BASE),
        *li(6, 0x1234),
        enc("sd", rs1=5, rs2=6, imm=8),
        enc("ld", 10, 5, imm=8),
        enc("sd", rs1=5, rs2=6, imm=64),  # outside the watched range
        *EXIT,
    )

    @pytest.mark.parametrize("engine", ENGINES)
    def test_reads_and_writes_with_values_and_pcs(self, engine: str) -> None:
        machine = machine_with_code(self.CODE)
        seen: list[tuple[str, int, int, int, int]] = []
        machine.hooks.add_memory(
            lambda m, a, addr, size, v: seen.append((a, addr, size, v, m.hart.pc)),
            DATA_BASE,
            DATA_BASE + 16,
            access="access",
        )
        assert ENGINES[engine](machine).run(machine) == 0x34  # the exit status keeps the low byte
        store_pc = CODE_BASE + 4 * (len(li(5, DATA_BASE)) + len(li(6, 0x1234)))
        assert seen == [
            ("write", DATA_BASE + 8, 8, 0x1234, store_pc),
            ("read", DATA_BASE + 8, 8, 0x1234, store_pc + 4),
        ]

    @pytest.mark.parametrize("engine", ENGINES)
    def test_a_write_hook_does_not_see_reads(self, engine: str) -> None:
        machine = machine_with_code(self.CODE)
        seen: list[str] = []
        machine.hooks.add_memory(lambda m, a, *_: seen.append(a), DATA_BASE, DATA_BASE + 16)
        assert ENGINES[engine](machine).run(machine) == 0x34  # the exit status keeps the low byte
        assert seen == ["write"]


class TestControl:
    @pytest.mark.parametrize("engine", ENGINES)
    def test_a_code_hook_that_moves_the_pc_skips_an_instruction(self, engine: str) -> None:
        code = words(enc("addi", 10, 0, imm=1), enc("addi", 10, 10, imm=40), *EXIT)
        machine = machine_with_code(code)

        def skip(m: Any, pc: int) -> None:
            m.hart.pc = pc + 4

        machine.hooks.add_code(skip, CODE_BASE + 4, CODE_BASE + 8)
        assert ENGINES[engine](machine).run(machine) == 1

    @pytest.mark.parametrize("engine", ENGINES)
    def test_stop_at_a_pc_then_resume(self, engine: str, root: str) -> None:
        machine = crc32_machine(root)
        entry = machine.image.entry
        target = None

        def stop_on_tenth(m: Any, pc: int) -> None:
            nonlocal target
            if m.hart.instret == 10:
                target = pc
                raise GuestStopped("at the tenth instruction")

        handle = machine.hooks.add_code(stop_on_tenth, entry, entry + 0x1000)
        executor = ENGINES[engine](machine)
        executor.run(machine)
        assert machine.termination.reason == "stopped"
        assert (machine.hart.pc, machine.hart.instret) == (target, 10)
        machine.hooks.remove(handle)
        assert executor.run(machine) == 0
        assert machine.captured.text() == "crc32(64 bytes) = 5c7dd37c\n"

    @pytest.mark.parametrize("engine", ENGINES)
    def test_hooks_added_and_removed_while_the_guest_runs(self, engine: str, root: str) -> None:
        """A system call hook adds a block hook at the first write; the block hook removes
        itself after 50 blocks: the same 50 events on every engine, already translated code
        included."""
        machine = crc32_machine(root)
        events: list[tuple[int, int]] = []
        handles: list[Any] = []

        def block(m: Any, pc: int) -> None:
            events.append((pc, m.hart.instret))
            if len(events) == 50:
                m.hooks.remove(handles[0])

        def on_write(call: Any) -> None:
            if not handles:
                handles.append(call.machine.hooks.add_block(block))

        machine.hooks.add_syscall(on_write, numbers=[64], when="after")
        assert ENGINES[engine](machine).run(machine) == 0
        assert len(events) == 50
        assert machine.captured.text() == "crc32(64 bytes) = 5c7dd37c\n"
        reference = getattr(type(self), "_reference", None)
        if reference is None:
            type(self)._reference = events  # type: ignore[attr-defined]
        else:
            assert events == reference


class TestTranslationAroundHooks:
    def test_the_jit_translates_what_no_hook_covers(self, root: str) -> None:
        machine = crc32_machine(root)
        entry = machine.image.entry
        hits: list[int] = []
        machine.hooks.add_code(lambda m, pc: hits.append(pc), entry, entry + 8)
        executor = JitExecutor(machine)
        assert executor.run(machine) == 0
        stats = executor.context.stats()
        assert stats.compilations > 50  # the rest of the program ran translated
        assert hits[0] == entry
        assert all(entry <= pc < entry + 8 for pc in hits)

    def test_no_hooks_no_stepper(self, root: str) -> None:
        machine = crc32_machine(root)
        executor = JitExecutor(machine)
        assert executor.run(machine) == 0
        assert getattr(executor, "_hook_stepper", None) is None
        assert machine.memory.access_hook is None
        assert machine.memory.code_hooked is None


class TestKernelAccesses:
    def test_the_kernels_reads_and_writes_are_not_guest_accesses(self) -> None:
        """System calls read and write guest memory with read_word/write_word (thread ids,
        signal masks, robust lists): memory hooks see only what guest instructions do."""
        machine = machine_with_code(words(*EXIT))
        seen: list[str] = []
        machine.hooks.add_memory(lambda m, a, *_: seen.append(a), DATA_BASE, DATA_BASE + 8,
                                 access="access")  # fmt: skip
        memory = machine.memory
        memory.write_word(DATA_BASE, 8, 5)
        assert memory.read_word(DATA_BASE, 8) == 5
        assert seen == []
        machine.hooks.stepping = True  # as while the stepper runs a guest instruction
        memory.store(DATA_BASE, 8, 6)
        assert memory.load(DATA_BASE, 8) == 6
        assert seen == ["write", "read"]
