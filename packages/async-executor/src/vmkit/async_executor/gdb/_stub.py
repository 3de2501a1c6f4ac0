"""The GDB stub: a guest under gdb's control through the remote serial protocol.

Design notes
------------
* All-stop, one hart: when the guest stops, every guest thread stops; gdb sees each guest
  thread as a thread (``info threads``), reads and writes the registers of any of them, and
  resumes the guest as a whole.
* Breakpoints and watchpoints are hooks (``machine.hooks``), so they work on every engine
  without writing to guest memory: a breakpoint is a code hook on one address, a watchpoint a
  memory hook on its range; both stop the guest with ``GuestStopped`` before the instruction
  runs (the hart exact), as RISC-V debug triggers do, and gdb steps over the access itself.
  Resuming from a stop never stops again at the very instruction it resumes from.
* Running is ``executor.advance``: a step is one instruction; a continue runs slices of
  ``slice_instructions`` and looks for gdb's Ctrl-C between them.
* Every request gets an answer: an unknown one the empty reply (gdb's "not supported"), a
  malformed one ``E01``, memory that cannot be read ``E14`` (EFAULT). Nothing gdb sends can
  raise out of the stub.
"""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable
from typing import Any, Final

from vmkit.async_executor._logging import get_logger
from vmkit.async_executor.errors import GuestExit, GuestFault, GuestSignal
from vmkit.async_executor.gdb._packets import MAX_PACKET, Connection, escape, unescape
from vmkit.async_executor.gdb._target import (
    TARGET_XML,
    read_register,
    register_size,
    write_register,
)
from vmkit.async_executor.machine._hooks import GuestStopped, HookHandle
from vmkit.async_executor.machine._memory import GuestMemoryFault

__all__ = ["DEFAULT_HOST", "GdbStub"]

_log = get_logger(__name__)

#: Where the stub listens unless told otherwise: a debugger port is not for the network.
DEFAULT_HOST: Final = "127.0.0.1"
SIGINT: Final = int(signal.SIGINT)
SIGTRAP: Final = int(signal.SIGTRAP)
SIGKILL: Final = int(signal.SIGKILL)
_WATCH_KINDS: Final = {2: ("write", "watch"), 3: ("read", "rwatch"), 4: ("access", "awatch")}
_E_MALFORMED: Final = b"E01"
_E_FAULT: Final = b"E14"


class _Malformed(ValueError):
    """A request gdb should not have sent: answered E01."""


def _hex_int(text: bytes) -> int:
    try:
        return int(text, 16)
    except ValueError:
        raise _Malformed(text) from None


def _le(value: int, size: int) -> bytes:
    return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little").hex().encode()


class GdbStub:
    """Serves one gdb session for ``machine`` run by ``executor``.

    Args:
        machine: the guest (loaded, not yet run, or stopped somewhere).
        executor: any engine; it runs the guest between stops.
        slice_instructions: instructions between two looks for gdb's Ctrl-C while running.
    """

    def __init__(self, machine: Any, executor: Any, *, slice_instructions: int = 20_000) -> None:
        self.machine = machine
        self.executor = executor
        self.slice_instructions = slice_instructions
        self._breakpoints: dict[int, HookHandle] = {}
        self._watchpoints: dict[tuple[int, int, int], HookHandle] = {}
        #: (pc, instret) the guest resumed from: no breakpoint or watchpoint fires there.
        self._resumed_at: tuple[int, int] | None = None
        #: What the last stop was, as gdb's stop reply says it.
        self._stop_reply = b""
        self._stop_extra = b""
        self._fatal: GuestFault | None = None
        self._ended: int | None = None
        self._thread: int | None = None  # Hg: whose registers gdb reads (None: the running one)
        self._conn: Connection | None = None
        self.detached = False
        self.killed = False

    # ------------------------------------------------------------------ serving

    def serve(
        self,
        host: str = DEFAULT_HOST,
        port: int = 0,
        *,
        ready: Callable[[str, int], None] | None = None,
    ) -> int:
        """Listen on ``host:port`` (0: a free port), serve the first gdb that connects, and
        return the guest's exit status once the session ends: the guest exited, gdb killed it
        (128 + SIGKILL), or gdb detached (the guest then runs to its end without the stub).
        ``ready(host, port)`` is called once the stub listens."""
        with socket.create_server((host, port)) as server:
            bound_host, bound_port = server.getsockname()[:2]
            if ready is not None:
                ready(bound_host, bound_port)
            _log.info("gdb_stub_listening", host=bound_host, port=bound_port)
            client, peer = server.accept()
        _log.info("gdb_connected", peer=f"{peer[0]}:{peer[1]}")
        with client:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.session(Connection(client))
        return self._finish()

    def session(self, conn: Connection) -> None:
        """Answer ``conn``'s requests until gdb detaches, kills the guest, or goes away."""
        self._conn = conn
        self._stop(SIGTRAP)
        while not (self.detached or self.killed):
            packet = conn.receive()
            if packet is None:
                break  # gdb went away: as a detach
            try:
                reply = self._answer(packet)
            except _Malformed:
                reply = _E_MALFORMED
            except GuestMemoryFault:
                reply = _E_FAULT
            if reply is not None:
                conn.send(reply)
        for handle in [*self._breakpoints.values(), *self._watchpoints.values()]:
            self.machine.hooks.remove(handle)
        self._breakpoints.clear()
        self._watchpoints.clear()

    def _finish(self) -> int:
        """The guest's exit status at the end of the session."""
        machine = self.machine
        if self._ended is not None:
            return self._ended
        if self.killed:
            return int(machine.terminate(GuestSignal(SIGKILL, pc=machine.hart.pc)))
        if self._fatal is not None:
            return int(machine.terminate(self._fatal))
        return int(self.executor.run(machine))  # detached: the guest goes on alone

    # ------------------------------------------------------------------ requests

    def _answer(self, packet: bytes) -> bytes | None:  # noqa: PLR0911, PLR0912 - one case per request: a table written as code
        """The reply to one request (None: no reply, as after ``k``)."""
        head, rest = packet[:1], packet[1:]
        if head == b"?":
            return self._stop_reply
        if head == b"g":
            state = self._registers()
            return b"".join(_le(read_register(state, n), 8) for n in range(33))
        if head == b"G":
            return self._write_all(rest)
        if head == b"p":
            return self._read_one(rest)
        if head == b"P":
            return self._write_one(rest)
        if head == b"m":
            addr, length = (_hex_int(v) for v in _split(rest, b",", 2))
            data: bytes = self.machine.memory.peek(addr, min(length, MAX_PACKET // 2))
            return data.hex().encode()
        if head == b"M":
            where, data = _split(rest, b":", 2)
            addr, length = (_hex_int(v) for v in _split(where, b",", 2))
            return self._poke(addr, length, _from_hex(data))
        if head == b"X":
            where, _, data = rest.partition(b":")
            addr, length = (_hex_int(v) for v in _split(where, b",", 2))
            return self._poke(addr, length, unescape(data))
        if head in (b"Z", b"z"):
            return self._point(head == b"Z", rest)
        if head in (b"c", b"s"):
            return self._resume(step=head == b"s", addr=rest)
        if head in (b"C", b"S"):
            _sig, _, resume_at = rest.partition(b";")
            return self._resume(step=head == b"S", addr=resume_at)
        if head == b"H":
            return self._select_thread(rest[1:])
        if head == b"T":
            return b"OK" if _hex_int(rest) in self._thread_ids() else b"E01"
        if head == b"D":
            self.detached = True
            return b"OK"
        if head == b"k":
            self.killed = True
            return None
        if head == b"q":
            return self._query(packet)
        if head == b"v":
            return self._v(packet)
        return b""

    def _query(self, packet: bytes) -> bytes:  # noqa: PLR0911 - one case per query
        if packet.startswith(b"qSupported"):
            return (
                b"PacketSize=%x;qXfer:features:read+;swbreak+;hwbreak+;vContSupported+" % MAX_PACKET
            )
        if packet.startswith(b"qXfer:features:read:target.xml:"):
            offset, length = (_hex_int(v) for v in _split(packet.rsplit(b":", 1)[1], b",", 2))
            chunk = TARGET_XML[offset : offset + length]
            more = offset + length < len(TARGET_XML)
            return (b"m" if more else b"l") + escape(chunk)
        if packet.startswith(b"qXfer:"):
            return b"E00"  # an object we do not have
        if packet == b"qfThreadInfo":
            return b"m" + b",".join(b"%x" % tid for tid in self._thread_ids())
        if packet == b"qsThreadInfo":
            return b"l"
        if packet == b"qC":
            return b"QC%x" % self._current_tid()
        if packet == b"qAttached":
            return b"1"
        if packet.startswith(b"qThreadExtraInfo,"):
            return self._thread_info(_hex_int(packet.split(b",", 1)[1])).encode().hex().encode()
        if packet.startswith(b"qSymbol"):
            return b"OK"
        return b""

    def _v(self, packet: bytes) -> bytes | None:
        if packet == b"vCont?":
            return b"vCont;c;C;s;S"
        if packet.startswith(b"vCont;"):
            # All-stop on one hart: the first action decides (gdb lists the stepped thread's
            # action first when it steps one and continues the others).
            action = packet[6:].split(b";", 1)[0].split(b":", 1)[0]
            if action[:1] in (b"s", b"S"):
                return self._resume(step=True, addr=b"")
            if action[:1] in (b"c", b"C"):
                return self._resume(step=False, addr=b"")
            raise _Malformed(packet)
        if packet.startswith(b"vKill"):
            self.killed = True
            return b"OK"
        return b""

    # ------------------------------------------------------------------ registers and memory

    def _threads(self) -> Any:
        return getattr(getattr(self.machine, "linux", None), "threads", None)

    def _current_tid(self) -> int:
        threads = self._threads()
        return int(threads.current.tid) if threads is not None else 1

    def _thread_ids(self) -> list[int]:
        threads = self._threads()
        if threads is None:
            return [1]
        return sorted(int(tid) for tid in threads.live)

    def _thread_info(self, tid: int) -> str:
        threads = self._threads()
        thread = None if threads is None else threads.live.get(tid)
        if thread is None:
            return "gone"
        if thread is threads.current:
            return "running"
        blocked = getattr(thread, "blocked_on", "")
        return f"blocked: {blocked}" if blocked else str(thread.state.value)

    def _registers(self) -> Any:
        """Where the selected thread's registers are: the hart for the running thread, its
        saved state for another."""
        threads = self._threads()
        tid = self._thread
        if threads is None or tid is None or tid == threads.current.tid:
            return self.machine.hart
        thread = threads.live.get(tid)
        if thread is None:
            raise _Malformed(b"no such thread")
        return thread

    def _select_thread(self, tid: bytes) -> bytes:
        value = -1 if tid == b"-1" else _hex_int(tid)
        if value in (0, -1):
            self._thread = None
        elif value in self._thread_ids():
            self._thread = value
        else:
            return b"E01"
        return b"OK"

    def _read_one(self, text: bytes) -> bytes:
        regnum = _hex_int(text)
        size = register_size(regnum)
        if size is None:
            return b"E01"
        return _le(read_register(self._registers(), regnum), size)

    def _write_one(self, text: bytes) -> bytes:
        number, value = _split(text, b"=", 2)
        regnum = _hex_int(number)
        size = register_size(regnum)
        data = _from_hex(value)
        if size is None or len(data) != size:
            return b"E01"
        write_register(self._registers(), regnum, int.from_bytes(data, "little"))
        return b"OK"

    def _write_all(self, text: bytes) -> bytes:
        data = _from_hex(text)
        if len(data) % 8 or len(data) > 33 * 8:
            return b"E01"
        state = self._registers()
        for regnum in range(len(data) // 8):
            write_register(
                state, regnum, int.from_bytes(data[8 * regnum : 8 * regnum + 8], "little")
            )
        return b"OK"

    def _poke(self, addr: int, length: int, data: bytes) -> bytes:
        if len(data) != length:
            return b"E01"
        self.machine.memory.poke(addr, data)
        return b"OK"

    # ------------------------------------------------------------------ breakpoints, watchpoints

    def _point(self, insert: bool, text: bytes) -> bytes:
        kind_text, addr_text, size_text = _split(text.split(b";", 1)[0], b",", 3)
        kind, addr, size = _hex_int(kind_text), _hex_int(addr_text), _hex_int(size_text)
        hooks = self.machine.hooks
        if kind in (0, 1):  # software and hardware breakpoints: the same code hook
            if insert and addr not in self._breakpoints:
                self._breakpoints[addr] = hooks.add_code(self._breakpoint_hit, addr, addr + 1)
            elif not insert and addr in self._breakpoints:
                hooks.remove(self._breakpoints.pop(addr))
            return b"OK"
        if kind in _WATCH_KINDS:
            if size < 1:
                return b"E01"
            key = (kind, addr, size)
            access, label = _WATCH_KINDS[kind]
            if insert and key not in self._watchpoints:

                def hit(m: Any, _access: str, at: int, _size: int, _value: int) -> None:
                    self._watch_hit(label, at)

                self._watchpoints[key] = hooks.add_memory(hit, addr, addr + size, access=access)
            elif not insert and key in self._watchpoints:
                hooks.remove(self._watchpoints.pop(key))
            return b"OK"
        return b""

    def _at_resume_point(self) -> bool:
        hart = self.machine.hart
        return self._resumed_at == (hart.pc, hart.instret)

    def _breakpoint_hit(self, machine: Any, pc: int) -> None:
        if self._at_resume_point():
            return
        self._stop_extra = b"swbreak:;"
        raise GuestStopped(f"breakpoint at {pc:#x}")

    def _watch_hit(self, label: str, addr: int) -> None:
        if self._at_resume_point():
            return
        self._stop_extra = b"%s:%x;" % (label.encode(), addr)
        raise GuestStopped(f"{label}point at {addr:#x}")

    # ------------------------------------------------------------------ running

    def _resume(self, *, step: bool, addr: bytes) -> bytes:
        machine = self.machine
        hart = machine.hart
        if self._ended is not None:
            return b"W%02x" % (self._ended & 0xFF)
        if addr:
            hart.pc = _hex_int(addr)
        if self._fatal is not None:  # resuming a guest stopped by a fatal signal: it dies
            fatal, self._fatal = self._fatal, None
            self._ended = int(machine.terminate(fatal))
            return b"X%02x" % fatal.signal
        self._resumed_at = (hart.pc, hart.instret)
        self._stop_extra = b""
        self._thread = None
        conn = self._conn
        try:
            while True:
                end = self.executor.advance(machine, 1 if step else self.slice_instructions)
                if end is not None or step:
                    break
                if conn is not None and (conn.interrupted() or conn.closed):
                    self._stop(SIGINT)
                    return self._stop_reply
        finally:
            self._resumed_at = None
        if end is None or isinstance(end, GuestStopped):
            self._stop(SIGTRAP)
        elif isinstance(end, GuestExit):
            self._ended = int(machine.terminate(end))
            return b"W%02x" % (self._ended & 0xFF)
        elif isinstance(end, GuestFault):
            self._fatal = end  # reported now; the guest dies when gdb resumes it
            self._stop(end.signal)
        return self._stop_reply

    def _stop(self, signum: int) -> None:
        self._stop_reply = b"T%02xthread:%x;%s" % (signum, self._current_tid(), self._stop_extra)
        self._stop_extra = b""


def _split(text: bytes, sep: bytes, parts: int) -> list[bytes]:
    pieces = text.split(sep, parts - 1)
    if len(pieces) != parts:
        raise _Malformed(text)
    return pieces


def _from_hex(text: bytes) -> bytes:
    try:
        return bytes.fromhex(text.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        raise _Malformed(text) from None
