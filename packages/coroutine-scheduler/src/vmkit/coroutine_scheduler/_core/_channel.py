"""Memory channels: a bounded FIFO between coroutines, with backpressure and close semantics.

Design notes
------------
``send, receive = open_channel(capacity)`` gives two ends sharing one buffer of at most
``capacity`` items (0: every send waits for a receiver, a rendezvous). Items come out in the
order they went in, each exactly once.

* Backpressure: a sender parks when the buffer is full, carrying its item. A receiver that takes
  an item moves the oldest parked sender's item into the buffer and wakes that sender, so the
  FIFO order of senders is kept and nobody retries.
* A sender finding a receiver parked hands the item to it directly (the buffer is then empty).
* Closing the sending end: receivers drain what is buffered, then get :class:`EndOfChannel`
  (``async for`` stops). Closing the receiving end: senders get :class:`BrokenResourceError`
  (nobody will read), buffered items are dropped. Using an end you closed raises
  :class:`ClosedResourceError`.
* Cancellation: a parked sender that is cancelled has not sent its item; a receiver woken with an
  item gets that item before any Cancelled (nothing is lost).

All state changes run under the scheduler lock (directly, or in a park guard), so the channel is
correct on the threads backend.
"""

from __future__ import annotations

import math
import types
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Generator
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar

from vmkit.coroutine_scheduler._core._errors import (
    BrokenResourceError,
    Cancelled,
    ClosedResourceError,
    EndOfChannel,
    UsageError,
)
from vmkit.coroutine_scheduler._core._lot import PARKED, ParkingLot
from vmkit.coroutine_scheduler._core._traps import PARK, running

if TYPE_CHECKING:
    from vmkit.coroutine_scheduler._core._scheduler import Scheduler

__all__ = ["ReceiveChannel", "SendChannel", "open_channel"]

T = TypeVar("T")
_EMPTY: Any = object()


class _State:
    __slots__ = (
        "buffer",
        "capacity",
        "receive_closed",
        "received_total",
        "receivers",
        "send_closed",
        "senders",
        "sent_total",
    )

    def __init__(self, capacity: float) -> None:
        self.capacity = capacity
        self.buffer: deque[Any] = deque()
        self.senders = ParkingLot("channel send (buffer full)")
        self.receivers = ParkingLot("channel receive (buffer empty)")
        self.send_closed = False
        self.receive_closed = False
        self.sent_total = 0
        self.received_total = 0

    def bind(self) -> Scheduler:
        s = self.senders.bind()
        self.receivers._s = s
        return s

    def bound(self) -> Scheduler | None:
        return self.senders.scheduler or self.receivers.scheduler

    def statistics(self) -> dict[str, float]:
        return {
            "capacity": self.capacity,
            "buffered": len(self.buffer),
            "senders_waiting": len(self.senders),
            "receivers_waiting": len(self.receivers),
            "sent_total": self.sent_total,
            "received_total": self.received_total,
        }


def open_channel(capacity: float = 0) -> tuple[SendChannel[Any], ReceiveChannel[Any]]:
    """A connected pair of channel ends with a buffer of ``capacity`` items.

    Args:
        capacity: how many items may wait in the channel (0: a rendezvous; ``math.inf``:
            unbounded, which gives up backpressure).

    Raises:
        UsageError: ``capacity`` is negative or not a whole number.
    """
    if (
        isinstance(capacity, bool)
        or not isinstance(capacity, int | float)
        or math.isnan(capacity)
        or capacity < 0
        or (capacity != math.inf and capacity != int(capacity))
    ):
        raise UsageError(f"open_channel() needs a capacity >= 0 (or math.inf), got {capacity!r}")
    state = _State(capacity)
    return SendChannel(state), ReceiveChannel(state)


class _ChannelEnd(ABC):
    """What both ends share: the channel's state, being closed, statistics, and closing as a
    (sync or async) context manager."""

    __slots__ = ("_closed", "_state")

    def __init__(self, state: _State) -> None:
        self._state = state
        self._closed = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.statistics()}>"

    def statistics(self) -> dict[str, float]:
        """Capacity, items buffered, senders and receivers waiting, totals sent and received."""
        return self._state.statistics()

    @abstractmethod
    def close(self) -> None:
        """Close this end (see the subclass)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class SendChannel(_ChannelEnd, Generic[T]):
    """The sending end of a channel (made by :func:`open_channel`)."""

    __slots__ = ()

    @types.coroutine
    def send(self, value: T) -> Generator[Any, Any, None]:
        """Put ``value`` in the channel (``await`` it), waiting while the buffer is full.

        Raises:
            ClosedResourceError: this end was closed.
            BrokenResourceError: the receiving end was closed.
        """
        state = self._state
        s = state.senders._s
        if s is None or s is not running.scheduler:
            s = state.bind()
        if s._run_owns_lock:  # the inline run thread: the scheduler lock is already its own
            if self._try_send(s, value) is None:
                return
        else:
            with s._lock:
                if self._try_send(s, value) is None:
                    return
        # Parked with [item, taken]: a receiver takes the item from here and ticks "taken".
        ticket = [value, False]
        try:
            # The guard is the same attempt again, under the lock with the parking; a partial
            # rather than a lambda: no Python frame of its own.
            yield (PARK, state.senders, partial(self._try_send, s, value), ticket, True)
        except Cancelled:
            if not ticket[1]:
                raise  # not sent
            # Taken, then cancelled before it ran: the send happened; the cancellation is
            # raised again at the next checkpoint.

    def _try_send(self, s: Scheduler, value: Any) -> Any:
        """Deliver or buffer ``value`` if it can go at once (caller holds the scheduler lock):
        None if it went, PARKED if the sender must wait (so it serves as the park guard too)."""
        state = self._state
        if self._closed:
            raise ClosedResourceError("send() on a channel end you closed")
        if state.receive_closed:
            raise BrokenResourceError("send() on a channel whose receiving end is closed")
        # ParkingLot.pop_first_locked written out (a call less per item): the oldest live
        # receiver; stale entries of withdrawn (cancelled) ones are dropped.
        receivers = state.receivers
        entries = receivers._entries
        while entries:
            receiver = entries.popleft()
            if receiver[1]._wait_key is receiver:
                state.sent_total += 1
                state.received_total += 1
                receiver[2][0] = value  # into its ticket
                receivers.wake_locked(s, receiver)
                return None
        if len(state.buffer) < state.capacity:
            state.buffer.append(value)
            state.sent_total += 1
            return None
        return PARKED

    def close(self) -> None:
        """Close the sending end: receivers get what is buffered, then EndOfChannel."""
        state = self._state
        s = state.bound()
        if s is None:
            self._closed = state.send_closed = True
            return
        with s._guard:
            if self._closed:
                return
            self._closed = state.send_closed = True
            state.receivers.unpark_locked(s, None, exc=EndOfChannel())
            state.senders.unpark_locked(
                s, None, exc=ClosedResourceError("the channel end was closed while sending")
            )


class ReceiveChannel(_ChannelEnd, Generic[T]):
    """The receiving end of a channel (made by :func:`open_channel`); ``async for`` reads it."""

    __slots__ = ()

    def receive(self) -> Awaitable[T]:
        """The oldest item (``await`` it), waiting while the channel is empty.

        Raises:
            EndOfChannel: the sending end is closed and nothing is left.
            ClosedResourceError: this end was closed.
        """
        return self._receive(False)

    @types.coroutine
    def _receive(self, iterating: bool = True) -> Generator[Any, Any, T]:
        """:meth:`receive`; when ``iterating`` (``async for``, which calls it directly as
        ``__anext__``: the default), the end of the channel is StopAsyncIteration instead of
        EndOfChannel. One frame per item, not a wrapper's two."""
        state = self._state
        s = state.senders._s
        if s is None or s is not running.scheduler:
            s = state.bind()
        try:
            if s._run_owns_lock:  # the inline run thread: the scheduler lock is its own
                value = self._try_receive(s)
            else:
                with s._lock:
                    value = self._try_receive(s)
            if value is not PARKED:
                return value  # type: ignore[no-any-return]
            ticket = [_EMPTY]  # a sender puts the item here
            try:
                # The guard is the same attempt again, under the lock with the parking.
                value = yield (PARK, state.receivers, partial(self._try_receive, s), ticket, True)
            except Cancelled:
                if ticket[0] is _EMPTY:
                    raise
                # Handed an item, then cancelled before it ran: the item is not lost; the
                # cancellation is raised again at the next checkpoint.
        except EndOfChannel:
            if iterating:
                raise StopAsyncIteration from None
            raise
        item = ticket[0]
        return value if item is _EMPTY else item  # type: ignore[no-any-return]

    def _try_receive(self, s: Scheduler) -> Any:
        """The oldest item if one can be taken at once, else PARKED (so it serves as the park
        guard too); the caller holds the scheduler lock. PARKED is private to the package, so
        no item can be mistaken for it."""
        state = self._state
        if self._closed:
            raise ClosedResourceError("receive() on a channel end you closed")
        senders = state.senders
        # ParkingLot.pop_first_locked written out (a call less per item): the oldest live
        # sender, if any; stale entries of withdrawn (cancelled) ones are dropped.
        entries = senders._entries
        sender = None
        while entries:
            entry = entries.popleft()
            if entry[1]._wait_key is entry:
                sender = entry
                break
        buffer = state.buffer
        if buffer:
            value = buffer.popleft()
            state.received_total += 1
            if sender is not None:
                # Room again: the oldest waiting sender's item goes in, and it goes on.
                ticket = sender[2]
                buffer.append(ticket[0])
                ticket[1] = True
                state.sent_total += 1
                senders.wake_locked(s, sender)
            return value
        if sender is not None:  # a rendezvous: take the item from the sender
            ticket = sender[2]
            ticket[1] = True
            state.sent_total += 1
            state.received_total += 1
            senders.wake_locked(s, sender)
            return ticket[0]
        if state.send_closed:
            raise EndOfChannel()
        return PARKED

    def close(self) -> None:
        """Close the receiving end: buffered items are dropped, senders get BrokenResourceError."""
        state = self._state
        s = state.bound()
        if s is None:
            self._closed = state.receive_closed = True
            state.buffer.clear()
            return
        with s._guard:
            if self._closed:
                return
            self._closed = state.receive_closed = True
            state.buffer.clear()
            state.senders.unpark_locked(
                s, None, exc=BrokenResourceError("the receiving end of the channel was closed")
            )
            state.receivers.unpark_locked(
                s, None, exc=ClosedResourceError("the channel end was closed while receiving")
            )

    def __aiter__(self) -> ReceiveChannel[T]:
        return self

    # The generator function itself, not a method returning its generator: one Python call
    # less per item of an ``async for``.
    __anext__ = _receive
