"""Loopback stand-ins for the services Alertmanager and the SMS relay talk to, a real
Alertmanager process, and the shipped config with only secrets and addresses swapped.

The stand-ins and the config swap are the shipped ones (refapp/receivers.py,
refapp/standin_alertmanager.py); here each HTTP stand-in gets a server of its own at the
root path, and they share one event loop in a daemon thread, so a test can block on
subprocesses while they answer.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from exporters.devservers import free_port
from refapp.receivers import (
    Behaviour,
    Endpoint,
    Heartbeat,
    Mail,
    Notification,
    PagerDuty,
    Received,
    ReceiverServer,
    Recorder,
    Slack,
    SmtpStandIn,
    Twilio,
    make_certificate,
)
from refapp.standin_alertmanager import (
    REPO,
    SECRET_NAMES,
    SECRETS_PREFIX,
    SHIPPED_CONFIG,
    TEMPLATES,
    Swap,
    shipped_swaps,
    substitute,
)
from refapp.standin_alertmanager import write_config as write_test_config
from tests.support.processes import read_log, ready, stop_process

__all__ = [
    "ALERTMANAGER", "AMTOOL", "REPO", "SECRETS_PREFIX", "SECRET_NAMES", "SHIPPED_CONFIG",
    "TEMPLATES", "TWILIO_SID", "Alertmanager", "Behaviour", "HeartbeatStandIn", "LoopThread",
    "Mail", "PagerDutyStandIn", "Received", "SlackStandIn", "SmtpStandIn", "StandIn", "StandIns",
    "Swap", "TwilioStandIn", "alert", "amtool", "make_certificate", "rendered", "shipped_swaps",
    "substitute", "wait_for", "webhook_payload", "write_test_config",
]

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
AMTOOL = "/usr/bin/amtool"
TWILIO_SID = "AC" + "0123456789abcdef" * 2
T = TypeVar("T")


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 60,
             interval: float = 0.1) -> T:
    """Poll until check() returns something truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(interval)


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


# -- a real Alertmanager ----------------------------------------------------------------------
@dataclass
class Alertmanager:
    config: Path
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"alertmanager-{self.port}.log"

    def start(self) -> Alertmanager:
        storage = self.workdir / f"am-data-{self.port}"
        storage.mkdir(parents=True, exist_ok=True)
        argv = [ALERTMANAGER, f"--config.file={self.config}", f"--storage.path={storage}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--web.external-url={self.url}", *self.cluster_flags(), "--log.level=debug"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=self.log_path.open("wb"),
                                     env={**os.environ, **self.env})
        wait_for("alertmanager ready", self._ready, timeout=30)
        return self

    def cluster_flags(self) -> list[str]:
        return ["--cluster.listen-address="]  # no HA gossip, no settle wait

    def _ready(self) -> bool:
        return ready(self.proc, self.url, self.log_path)

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        request = urllib.request.Request(
            self.url + "/api/v2/alerts", data=json.dumps(alerts).encode(), method="POST",
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def alerts(self, **labels: str) -> list[dict[str, Any]]:
        """Alerts (active, silenced and inhibited) whose labels include `labels`."""
        query = [("filter", f'{k}="{v}"') for k, v in labels.items()]
        query += [("active", "true"), ("silenced", "true"), ("inhibited", "true")]
        url = self.url + "/api/v2/alerts?" + urllib.parse.urlencode(query)
        with urllib.request.urlopen(url, timeout=10) as response:
            found: list[dict[str, Any]] = json.loads(response.read())
        return found

    def log(self) -> str:
        return read_log(self.log_path)

    def stop(self) -> None:
        stop_process(self.proc)


def alert(alertname: str, severity: str, annotations: dict[str, str] | None = None, /,
          **labels: str) -> dict[str, Any]:
    """An alert for the v2 API, firing from now until Alertmanager's resolve_timeout."""
    return {"labels": {"alertname": alertname, "severity": severity, **labels},
            "annotations": annotations or {"summary": f"{alertname} test alert"},
            "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


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


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AMTOOL, *args], capture_output=True, text=True, timeout=60)


def rendered(template_text: str, data: dict[str, Any], workdir: Path,
             kind: str = "text") -> str:
    """`amtool template render` of the shipped templates for one alert group's data."""
    data_file = workdir / f"data-{time.monotonic_ns()}.json"
    data_file.write_text(json.dumps(data))
    result = amtool("template", "render", f"--template.glob={TEMPLATES}/*.tmpl",
                    f"--template.data={data_file}", f"--template.type={kind}",
                    f"--template.text={template_text}")
    assert result.returncode == 0, result.stderr
    # amtool ends the output with a newline of its own.
    return result.stdout.removesuffix("\n")


def webhook_payload(severity: str = "critical", status: str = "firing", alerts: int = 1,
                    summary: str = "API error rate 7% over the 5% limit",
                    annotations: dict[str, str] | None = None, **labels: str) -> dict[str, Any]:
    """Alertmanager template data for one group (the webhook payload has the same shape)."""
    common = {"alertname": "ApiErrorRateHigh", "severity": severity, "area": "api",
              "guide": "nova-crm", "guide_level": "critical", "job": "api", **labels}
    notes = {"summary": summary, "description": "5xx share above the guide's limit.",
             "runbook_url": "https://runbooks.example/ApiErrorRateHigh"}
    if annotations is not None:
        notes = annotations
    items = [{"status": status, "labels": {**common, "instance": f"web-{i}:8080"},
              "annotations": notes, "startsAt": "2024-05-01T10:00:00Z",
              "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": f"f{i}"}
             for i in range(alerts)]
    return {"version": "4", "receiver": "sms", "status": status,
            "externalURL": "http://am.example:9093", "groupKey": "{}:{}", "truncatedAlerts": 0,
            "groupLabels": {"alertname": common["alertname"], "severity": severity},
            "commonLabels": common, "commonAnnotations": notes, "alerts": items}
