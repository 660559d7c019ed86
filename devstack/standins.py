"""In-process loopback stand-ins for the services Alertmanager and the SMS relay talk to
(Slack, PagerDuty, Twilio, a heartbeat, SMTP), used by the tests and the drills.

The endpoints are the reference app's receivers (refapp/receivers.py, which the demo and
compose run as a process); here each HTTP stand-in gets a server of its own at the root
path, and they share one event loop in a daemon thread, so a caller can block on
subprocesses while they answer.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from devstack.servers import free_port
from refapp.receivers import (
    Behaviour,
    Endpoint,
    Heartbeat,
    Notification,
    PagerDuty,
    Received,
    ReceiverServer,
    Recorder,
    Slack,
    SmtpStandIn,
    Twilio,
)

# Twilio's documented test SID shape.
TWILIO_SID = "AC" + "0123456789abcdef" * 2
T = TypeVar("T")


# -- HTTP stand-ins -------------------------------------------------------------------------
class LoopThread:
    """An asyncio loop in a daemon thread that serves every HTTP stand-in of a test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class _Answer(Endpoint):
    """Mounts a stand-in's endpoint through StandIn.answer, so a subclass may override it."""

    def __init__(self, stand_in: StandIn) -> None:
        self.stand_in = stand_in
        self.name = stand_in.endpoint.name

    async def answer(self, received: Received, subpath: str) -> web.StreamResponse:
        return await self.stand_in.answer(received)

    def describe(self, received: Received, subpath: str) -> Notification:
        return self.stand_in.endpoint.describe(received, subpath)


class StandIn:
    """A loopback HTTP server with one shipped endpoint at its root, recording every request."""

    def __init__(self, loop: LoopThread, endpoint: Endpoint | None = None) -> None:
        self.loop = loop
        self.port = free_port()
        self.endpoint = endpoint if endpoint is not None else Endpoint()
        self.recorder = Recorder()
        self.server = ReceiverServer({"": _Answer(self)}, self.recorder)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StandIn:
        self.loop.run(self.server.start("127.0.0.1", self.port))
        return self

    def stop(self) -> None:
        self.loop.run(self.server.stop())

    async def answer(self, received: Received) -> web.StreamResponse:
        return await self.endpoint.answer(received, received.path)

    @property
    def received(self) -> list[Received]:
        return [item for item in self.recorder.items() if isinstance(item, Received)]


class SlackStandIn(StandIn):
    """Incoming webhooks: one URL path per channel, answered `ok` like Slack does."""

    def __init__(self, loop: LoopThread) -> None:
        super().__init__(loop, Slack())

    def posts(self, path: str | None = None) -> list[dict[str, Any]]:
        return [r.json() for r in self.received if path is None or r.path == path]


class PagerDutyStandIn(StandIn):
    def __init__(self, loop: LoopThread) -> None:
        super().__init__(loop, PagerDuty())

    def events(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.received if r.path == "/v2/enqueue"]


class TwilioStandIn(StandIn):
    """The Messages API for one SID and auth token; `script` and `retry_after` script its
    answers (see refapp.receivers.Twilio)."""

    endpoint: Twilio

    def __init__(self, loop: LoopThread, auth_token: str, sid: str = TWILIO_SID) -> None:
        super().__init__(loop, Twilio(sid, auth_token))

    @property
    def sid(self) -> str:
        assert self.endpoint.sid is not None
        return self.endpoint.sid

    @property
    def auth_token(self) -> str:
        assert self.endpoint.auth_token is not None
        return self.endpoint.auth_token

    @auth_token.setter
    def auth_token(self, value: str) -> None:
        self.endpoint.auth_token = value

    @property
    def script(self) -> list[Behaviour]:
        return self.endpoint.script

    @script.setter
    def script(self, value: list[Behaviour]) -> None:
        self.endpoint.script = value

    @property
    def retry_after(self) -> str | None:
        return self.endpoint.retry_after

    @retry_after.setter
    def retry_after(self, value: str | None) -> None:
        self.endpoint.retry_after = value

    @property
    def messages_path(self) -> str:
        return f"/2010-04-01/Accounts/{self.sid}/Messages.json"

    def release(self) -> None:
        """End every hanging request (they then answer 503)."""
        self.loop.loop.call_soon_threadsafe(self.endpoint.release)

    def messages(self) -> list[dict[str, str]]:
        return [r.form() for r in self.received if r.path == self.messages_path]


class HeartbeatStandIn(StandIn):
    """A dead man's switch: any request to its ping URL is a ping."""

    def __init__(self, loop: LoopThread) -> None:
        super().__init__(loop, Heartbeat())


@dataclass
class StandIns:
    """Every stand-in of one test run, started together and stopped together."""

    loop: LoopThread
    slack: SlackStandIn
    pagerduty: PagerDutyStandIn
    twilio: TwilioStandIn
    heartbeat: HeartbeatStandIn
    smtp: SmtpStandIn | None = None

    @classmethod
    def start(cls, twilio_token: str, certificate: tuple[Path, Path] | None = None) -> StandIns:
        loop = LoopThread()
        stand_ins = cls(loop, SlackStandIn(loop), PagerDutyStandIn(loop),
                        TwilioStandIn(loop, twilio_token), HeartbeatStandIn(loop))
        for server in (stand_ins.slack, stand_ins.pagerduty, stand_ins.twilio,
                       stand_ins.heartbeat):
            server.start()
        if certificate is not None:
            stand_ins.smtp = SmtpStandIn(*certificate).start()
        return stand_ins

    def stop(self) -> None:
        self.twilio.release()
        for server in (self.slack, self.pagerduty, self.twilio, self.heartbeat):
            server.stop()
        if self.smtp is not None:
            self.smtp.stop()
        self.loop.stop()
