"""The GDB remote serial protocol's framing: ``$payload#checksum`` packets, acknowledgements,
the interrupt byte, and binary escaping.

A connection reads bytes as they come and hands out whole packets; a packet with a wrong
checksum is answered ``-`` (gdb sends it again) and never reaches the stub. Malformed input
(bytes outside any packet, an overlong packet) is dropped, never raised.
"""

from __future__ import annotations

import select
import socket
from typing import Final

__all__ = ["INTERRUPT", "MAX_PACKET", "Connection", "checksum", "escape", "unescape"]

#: What gdb sends when the user presses Ctrl-C while the guest runs.
INTERRUPT: Final = b"\x03"
#: Largest packet accepted (and announced in qSupported): bigger input is a protocol error.
MAX_PACKET: Final = 0x4000
_ESCAPED: Final = frozenset(b"$#}*")


def checksum(payload: bytes) -> int:
    """The packet checksum: the sum of the payload's bytes modulo 256."""
    return sum(payload) & 0xFF


def escape(data: bytes) -> bytes:
    """Binary data as a packet may carry it (``}`` then the byte XOR 0x20 for ``$#}*``)."""
    out = bytearray()
    for b in data:
        if b in _ESCAPED:
            out += bytes((0x7D, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out)


def unescape(data: bytes) -> bytes:
    """The binary data of an ``X`` packet's payload."""
    out = bytearray()
    it = iter(data)
    for b in it:
        if b == 0x7D:
            nxt = next(it, None)
            if nxt is None:
                raise ValueError("binary data ends inside an escape")
            out.append(nxt ^ 0x20)
        else:
            out.append(b)
    return bytes(out)


class Connection:
    """One gdb connection: whole packets in, packets out, interrupts noticed."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        self._interrupted = False
        self.closed = False

    def _fill(self, timeout: float | None) -> bool:
        """Read what is available (waiting up to ``timeout``; None: until something comes).
        False when nothing came; marks the connection closed at end of stream."""
        if self.closed:
            return False
        ready, _, _ = select.select([self._sock], [], [], timeout)
        if not ready:
            return False
        try:
            data = self._sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            self.closed = True
            return False
        self._buffer += data
        return True

    def _take_packet(self) -> bytes | None:
        """A whole packet from the buffer, answering its acknowledgement; None if none yet."""
        buf = self._buffer
        while buf:
            first = buf[0]
            if first == INTERRUPT[0]:
                self._interrupted = True
                del buf[0]
                continue
            if first != ord("$"):
                del buf[0]  # acks (+/-) and noise between packets
                continue
            end = buf.find(b"#")
            if end < 0:
                if len(buf) > MAX_PACKET + 4:
                    del buf[:]  # no end in sight: drop it
                return None
            if len(buf) < end + 3:
                return None
            payload = bytes(buf[1:end])
            sent = bytes(buf[end + 1 : end + 3])
            del buf[: end + 3]
            try:
                good = int(sent, 16) == checksum(payload)
            except ValueError:
                good = False
            self._send_raw(b"+" if good else b"-")
            if good:
                return payload
        return None

    def receive(self) -> bytes | None:
        """The next packet (waiting for it); None when gdb went away."""
        while True:
            packet = self._take_packet()
            if packet is not None:
                return packet
            if not self._fill(None) and self.closed:
                return None

    def interrupted(self) -> bool:
        """Whether gdb sent Ctrl-C since the last call (looks at the socket without waiting)."""
        self._fill(0)
        self._take_interrupts()
        seen, self._interrupted = self._interrupted, False
        return seen

    def _take_interrupts(self) -> None:
        while self._buffer[:1] == INTERRUPT:
            self._interrupted = True
            del self._buffer[0]

    def send(self, payload: bytes) -> None:
        """Send a packet (gdb acknowledges it; a lost connection is noticed at the next read)."""
        self._send_raw(b"$" + payload + b"#%02x" % checksum(payload))

    def _send_raw(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError:
            self.closed = True
