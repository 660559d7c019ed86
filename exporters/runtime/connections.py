"""Connection slots: how many connections an exporter serves, and who gives way when full.

Every accepted connection needs a slot. There are --web.max-connections of them, and one
client address holds at most --web.max-connections-per-address. A connection is *waiting*
while the server waits on its client: for a complete request (slow headers, idle
keep-alive), for the request's credentials to check out, or for the request body. It is
*working* while the server owes it an answer: a request fully received and authorised.

When a new connection finds no free slot (its address's share, or all of them, taken), the
connection that has been waiting longest gives way: it is closed (or, waiting for a body,
answered 408), and the newcomer takes its slot. Only when every candidate is working does
the newcomer get a 503. So slow or idle clients cannot keep a scrape out, which sends its
whole request at once: it is served before the few connections that came after it could
push it out, while the cap still bounds descriptors and memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from aiohttp import StreamReader

BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 21\r\n"
        b"\r\nToo many connections\n")
# Why admitted connections were closed early or newcomers refused: a bounded label set.
DROP_REASONS = ("displaced", "refused", "body_timeout")


class BodyTimeout(TimeoutError):
    """The request body was not received within --web.body-timeout, or its connection gave
    way to a newer one. A TimeoutError, so aiohttp's drain of an unread body stops on it."""


class Handler(Protocol):
    """What a Slot needs of the protocol serving HTTP on it (aiohttp's RequestHandler)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None: ...
    def data_received(self, data: bytes) -> None: ...
    def eof_received(self) -> bool | None: ...
    def pause_writing(self) -> None: ...
    def resume_writing(self) -> None: ...
    def connection_lost(self, exc: Exception | None) -> None: ...
    def force_close(self) -> None: ...


class Slot(asyncio.Protocol):
    """One accepted connection: admitted by the Gate when it is made, then served by an
    HTTP handler it passes everything to; refused with a 503 without one."""

    def __init__(self, gate: Gate, make_handler: Callable[[], Handler]) -> None:
        self.gate = gate
        self.make_handler = make_handler
        self.handler: Handler | None = None
        self.address = ""
        self.admitted = False
        self.body: StreamReader | None = None  # a body the running request waits for

    # -- asyncio.Protocol --------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        peer = transport.get_extra_info("peername")
        self.address = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        if not self.gate.admit(self):
            transport.write(BUSY)
            transport.close()
            return
        self.handler = self.make_handler()
        self.handler.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.handler is not None:
            self.handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self.handler.eof_received() if self.handler is not None else None

    def pause_writing(self) -> None:
        if self.handler is not None:
            self.handler.pause_writing()

    def resume_writing(self) -> None:
        if self.handler is not None:
            self.handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.gate.release(self)
        if self.handler is not None:
            self.handler.connection_lost(exc)

    # -- request lifecycle (called by the server's middleware) ------------------------
    def start_work(self) -> None:
        """The request is received and authorised: the server owes an answer."""
        self.body = None
        self.gate.stop_waiting(self)

    def await_body(self, body: StreamReader) -> None:
        """The authorised request's body is still arriving: waiting, until it has."""
        self.body = body

        def arrived() -> None:
            if self.body is body:
                self.start_work()

        body.on_eof(arrived)

    def request_done(self) -> None:
        """Answered: waiting for the client's next request from now on."""
        self.body = None
        self.gate.wait(self)

    def give_way(self) -> None:
        """Free the slot for a newer connection: stop waiting for the body (the request is
        then answered 408), or close the connection."""
        body, self.body = self.body, None
        if body is not None and not body.is_eof():
            body.set_exception(BodyTimeout())
        elif self.handler is not None:
            self.handler.force_close()


class Gate:
    """The slots of one server, and the waiting connections in the order they began to wait
    (per address too), so the longest-waiting one is found without a search."""

    def __init__(self, limit: int, per_address: int) -> None:
        self.limit = limit
        self.per_address = min(per_address, limit)
        self.open = 0
        self.at: dict[str, int] = {}  # open connections per client address
        self.waiting: dict[Slot, None] = {}  # insertion order = waiting since
        self.waiting_at: dict[str, dict[Slot, None]] = {}
        self.dropped = dict.fromkeys(DROP_REASONS, 0)

    def admit(self, slot: Slot) -> bool:
        """Take a slot for a new connection, displacing a waiting one if need be."""
        address = slot.address
        if self.at.get(address, 0) >= self.per_address:
            victims = self.waiting_at.get(address, {})
        elif self.open >= self.limit:
            victims = self.waiting
        else:
            victims = None
        if victims is not None:
            if not victims:
                self.dropped["refused"] += 1
                return False
            victim = next(iter(victims))
            self.release(victim)
            self.dropped["displaced"] += 1
            victim.give_way()
        self.open += 1
        self.at[address] = self.at.get(address, 0) + 1
        slot.admitted = True
        self.wait(slot)
        return True

    def wait(self, slot: Slot) -> None:
        """(Re)start the slot's wait: last in line to give way."""
        if slot.admitted:
            self.stop_waiting(slot)
            self.waiting[slot] = None
            self.waiting_at.setdefault(slot.address, {})[slot] = None

    def stop_waiting(self, slot: Slot) -> None:
        self.waiting.pop(slot, None)
        mine = self.waiting_at.get(slot.address)
        if mine is not None:
            mine.pop(slot, None)
            if not mine:
                del self.waiting_at[slot.address]

    def release(self, slot: Slot) -> None:
        """The slot is free again (connection closed, or given away): idempotent."""
        if not slot.admitted:
            return
        slot.admitted = False
        self.stop_waiting(slot)
        self.open -= 1
        left = self.at[slot.address] - 1
        if left:
            self.at[slot.address] = left
        else:
            del self.at[slot.address]
