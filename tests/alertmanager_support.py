"""Loopback stand-ins for the services Alertmanager and the SMS relay talk to, a real
Alertmanager process, and the shipped config with only secrets and addresses swapped.

Stand-ins (each records what it receives): Slack incoming webhooks, the PagerDuty Events
API v2, an SMTP server with STARTTLS and AUTH (aiosmtpd), the Twilio Messages API and a
dead man's switch ping endpoint. The HTTP ones share one event loop in a daemon thread, so
a test can block on subprocesses while they answer.
"""

from __future__ import annotations

import asyncio
import base64
import email
import email.policy
import json
import os
import shutil
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from exporters.devservers import free_port

REPO = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = REPO / "alertmanager" / "alertmanager.yml"
TEMPLATES = REPO / "alertmanager" / "templates"
ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
AMTOOL = "/usr/bin/amtool"
SECRETS_PREFIX = "/etc/alertmanager/secrets/"
SECRET_NAMES = ("slack_critical_alerts_url", "slack_alerts_url", "slack_monitoring_url",
                "slack_user_feedback_url",
                "slack_production_alerts_url", "pagerduty_routing_key", "smtp_password",
                "smsrelay_token")
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


# -- the shipped config, with secrets and addresses swapped -------------------------------
@dataclass(frozen=True)
class Swap:
    old: str
    new: str
    count: int  # occurrences in the shipped file; a different number means it changed shape


def substitute(text: str, swaps: list[Swap]) -> str:
    for swap in swaps:
        found = text.count(swap.old)
        if found != swap.count:
            raise AssertionError(
                f"alertmanager/alertmanager.yml changed shape: {swap.old!r} occurs {found} "
                f"times, the tests expect {swap.count}; update tests/alertmanager_support.py")
        text = text.replace(swap.old, swap.new)
    if "/etc/alertmanager" in text:
        raise AssertionError("a path under /etc/alertmanager was not substituted")
    return text


def shipped_swaps(secrets_dir: Path, relay: str, pagerduty_url: str, smtp: str) -> list[Swap]:
    """Only secret-file paths and service addresses; routing, inhibition, timings and
    templates stay exactly as shipped."""
    return [
        # The secret files, the token file used by both webhooks, and the header comment.
        Swap(SECRETS_PREFIX, f"{secrets_dir}/", len(SECRET_NAMES) + 2),
        Swap("127.0.0.1:9636", relay, 2),
        Swap("https://events.pagerduty.com/v2/enqueue", pagerduty_url, 1),
        Swap("smtp.example.com:587", smtp, 1),
    ]


def write_test_config(directory: Path, swaps: list[Swap]) -> Path:
    """The shipped config under `directory`, templates beside it (the path is relative)."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copytree(TEMPLATES, directory / "templates", dirs_exist_ok=True)
    path = directory / "alertmanager.yml"
    path.write_text(substitute(SHIPPED_CONFIG.read_text(), swaps))
    return path


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


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(self.body.decode()))


class StandIn:
    """A loopback HTTP server that records every request; subclasses choose the answer."""

    def __init__(self, loop: LoopThread) -> None:
        self.loop = loop
        self.port = free_port()
        self._received: list[Received] = []
        self._lock = threading.Lock()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StandIn:
        self.loop.run(self._start())
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            self.loop.run(runner.cleanup())

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        received = Received(request.method, request.path, dict(request.headers),
                            await request.read())
        with self._lock:
            self._received.append(received)
        return await self.answer(received)

    async def answer(self, received: Received) -> web.StreamResponse:
        return web.Response(text="ok")

    @property
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)


class SlackStandIn(StandIn):
    """Incoming webhooks: one URL path per channel, answered `ok` like Slack does."""

    def posts(self, path: str | None = None) -> list[dict[str, Any]]:
        return [r.json() for r in self.received if path is None or r.path == path]


class PagerDutyStandIn(StandIn):
    async def answer(self, received: Received) -> web.StreamResponse:
        event = received.json()
        return web.json_response({"status": "success", "message": "Event processed",
                                  "dedup_key": event.get("dedup_key")}, status=202)

    def events(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.received if r.path == "/v2/enqueue"]


Behaviour = int | str  # an HTTP status to answer, "hang", or "ok" (201 with a message)


class TwilioStandIn(StandIn):
    """The Messages API: checks HTTP basic auth, answers per a scripted list of behaviours
    (first request takes the first item; when the list runs out, it accepts)."""

    def __init__(self, loop: LoopThread, auth_token: str, sid: str = TWILIO_SID) -> None:
        super().__init__(loop)
        self.sid = sid
        self.auth_token = auth_token
        self.script: list[Behaviour] = []
        self.retry_after: str | None = None
        self._release = asyncio.Event()

    @property
    def messages_path(self) -> str:
        return f"/2010-04-01/Accounts/{self.sid}/Messages.json"

    def release(self) -> None:
        """End every hanging request (they then answer 503)."""
        self.loop.loop.call_soon_threadsafe(self._release.set)

    async def answer(self, received: Received) -> web.StreamResponse:
        expected = "Basic " + base64.b64encode(f"{self.sid}:{self.auth_token}".encode()).decode()
        if received.path != self.messages_path:
            return web.json_response({"code": 20404, "message": "not found"}, status=404)
        if received.headers.get("Authorization") != expected:
            return web.json_response({"code": 20003, "message": "Authenticate"}, status=401)
        behaviour: Behaviour = self.script.pop(0) if self.script else "ok"
        if behaviour == "hang":
            await self._release.wait()
            behaviour = 503
        if behaviour == "ok":
            form = received.form()
            return web.json_response({"sid": "SM" + "0" * 32, "status": "queued",
                                      "to": form.get("To"), "body": form.get("Body")},
                                     status=201)
        assert isinstance(behaviour, int)
        headers = {"Retry-After": self.retry_after} if self.retry_after else {}
        return web.json_response({"code": 21211 if behaviour == 400 else 20500,
                                  "message": f"scripted {behaviour}", "status": behaviour},
                                 status=behaviour, headers=headers)

    def messages(self) -> list[dict[str, str]]:
        return [r.form() for r in self.received if r.path == self.messages_path]


class HeartbeatStandIn(StandIn):
    """A dead man's switch: any request to its ping URL is a ping."""


# -- SMTP stand-in ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str
    password: str

    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        assert part is not None, "no HTML part"
        return str(part.get_content())

    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert part is not None, "no text part"
        return str(part.get_content())


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cert, key): the SMTP stand-in's STARTTLS,
    trusted by Alertmanager through SSL_CERT_FILE."""
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:TRUE",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30)
    return cert, key


class SmtpStandIn:
    """aiosmtpd with STARTTLS required and AUTH offered only after it, as a submission
    server does; records each message with the login and password it was sent with."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.port = free_port()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self._lock = threading.Lock()
        self._mails: list[Mail] = []
        self._auth: dict[int, tuple[str, str]] = {}
        self.controller = Controller(
            self, hostname="127.0.0.1", port=self.port, tls_context=context,
            require_starttls=True, auth_require_tls=True, authenticator=self._authenticate,
            # Alertmanager's LOGIN expects the "Username:" challenge most servers send, not
            # aiosmtpd's "User Name"; PLAIN, which every submission server offers, is used.
            auth_exclude_mechanism=["LOGIN"])

    def start(self) -> SmtpStandIn:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            self._auth[id(session)] = (auth_data.login.decode(), auth_data.password.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        login, password = self._auth.get(id(session), ("", ""))
        with self._lock:
            self._mails.append(Mail(str(envelope.mail_from), list(envelope.rcpt_tos),
                                    message, login, password))
        return "250 OK"

    @property
    def mails(self) -> list[Mail]:
        with self._lock:
            return list(self._mails)


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
                f"--web.external-url={self.url}",
                "--cluster.listen-address=",  # no HA gossip, no settle wait
                "--log.level=debug"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=self.log_path.open("wb"),
                                     env={**os.environ, **self.env})
        wait_for("alertmanager ready", self._ready, timeout=30)
        return self

    def _ready(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log()
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

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
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


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
