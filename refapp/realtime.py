"""Realtime websocket `/ws` with the metrics of nova-crm § 1.1 ux.realtime.

Every `interval` seconds the server sends a ping `{"type": "ping", "id": n}` and an event
`{"type": "event", "seq": n, "sent_at": <unix time of creation>}`; the event is held back
by the `ws_delay_seconds` fault first. A client answers pings with `{"type": "pong",
"id": n}` and events with `{"type": "ack", "seq": n}`:
- socket latency = ping → pong round trip (not affected by ws_delay_seconds);
- message delay = event creation → ack received (includes ws_delay_seconds).
A client that reconnects after losing its socket connects with `?reconnect=1`, which
counts one reconnection. Unanswered pings and events are forgotten after MAX_PENDING.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from aiohttp import WSMsgType, web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from refapp.faults import Faults

REALTIME_BUCKETS: tuple[float, ...] = (
    0.01, 0.025,  # no guide number: resolution under the fastest target
    0.05,  # nova-crm § 1.1 ux.realtime messageDelay target 50 ms
    0.1,  # nova-crm § 1.1 ux.realtime socketLatency target 100 ms
    0.2,  # nova-crm § 1.1 ux.realtime messageDelay alert 200 ms
    0.5,  # nova-crm § 1.1 ux.realtime socketLatency alert 500 ms
    1.0, 2.5, 5.0,  # no guide number: how far past the alerts it got
)
MAX_PENDING = 64
TRUE_VALUES = ("1", "true", "yes")


class Realtime:
    def __init__(self, faults: Faults, registry: CollectorRegistry, interval: float = 1.0) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.faults = faults
        self.interval = interval
        self.connections = Gauge("realtime_connections", "Open realtime websocket "
                                 "connections.", registry=registry)
        self.reconnections = Counter("realtime_reconnections", "Websocket connections that "
                                     "clients opened to replace a lost one (?reconnect=1).",
                                     registry=registry)
        self.socket_latency = Histogram("realtime_socket_latency_seconds", "Round trip of a "
                                        "server ping to the client's pong.",
                                        buckets=REALTIME_BUCKETS, registry=registry)
        self.message_delay = Histogram("realtime_message_delay_seconds", "From a realtime "
                                       "event's creation to the client's acknowledgement.",
                                       buckets=REALTIME_BUCKETS, registry=registry)
        self.messages = Counter("realtime_messages", "Realtime websocket messages by "
                                "direction (sent, received).", ["direction"], registry=registry)
        self.messages.labels("sent")
        self.messages.labels("received")
        self._sockets: set[web.WebSocketResponse] = set()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        if request.query.get("reconnect", "").lower() in TRUE_VALUES:
            self.reconnections.inc()
        self.connections.inc()
        self._sockets.add(ws)
        pings: dict[int, float] = {}
        events: dict[int, float] = {}
        sender = asyncio.create_task(self._send(ws, pings, events))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self.messages.labels("received").inc()
                    self._receive(msg.data, pings, events)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await sender
            self._sockets.discard(ws)
            self.connections.dec()
        return ws

    def _receive(self, data: str, pings: dict[int, float], events: dict[int, float]) -> None:
        try:
            message: Any = json.loads(data)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        now = time.perf_counter()
        kind, ident = message.get("type"), message.get("id", message.get("seq"))
        if not isinstance(ident, int):
            return
        if kind == "pong" and ident in pings:
            self.socket_latency.observe(now - pings.pop(ident))
        elif kind == "ack" and ident in events:
            self.message_delay.observe(now - events.pop(ident))

    async def _send(self, ws: web.WebSocketResponse, pings: dict[int, float],
                    events: dict[int, float]) -> None:
        seq = 0
        with contextlib.suppress(ConnectionError):  # the client went away mid-send
            while not ws.closed:
                seq += 1
                await self._send_one(ws, seq, pings, events)
                for pending in (pings, events):
                    for old in [k for k in pending if k <= seq - MAX_PENDING]:
                        del pending[old]
                await asyncio.sleep(self.interval)

    async def _send_one(self, ws: web.WebSocketResponse, seq: int, pings: dict[int, float],
                        events: dict[int, float]) -> None:
        """A ping at once, then an event held back by the ws_delay_seconds fault."""
        pings[seq] = time.perf_counter()
        await ws.send_json({"type": "ping", "id": seq})
        self.messages.labels("sent").inc()
        events[seq] = time.perf_counter()
        created = time.time()
        if self.faults.ws_delay_seconds > 0:
            await asyncio.sleep(self.faults.ws_delay_seconds)
        if ws.closed:
            return
        await ws.send_json({"type": "event", "seq": seq, "sent_at": created,
                            "kind": "notification"})
        self.messages.labels("sent").inc()

    async def close_all(self) -> None:
        """Close open sockets on shutdown so their handlers return."""
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"server shutdown")
