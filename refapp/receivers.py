"""Loopback stand-ins for the services Alertmanager and the SMS relay notify.

`python -m refapp.receivers --listen HOST:PORT [--smtp-listen HOST:PORT]
[--tls-cert F --tls-key F]` serves, on one HTTP port:

- POST /slack/<channel>                                   Slack incoming webhook
- POST /pagerduty/v2/enqueue                              PagerDuty Events v2 (202)
- POST /twilio/2010-04-01/Accounts/<sid>/Messages.json    Twilio Messages API (201)
- ANY  /heartbeat                                         dead man's switch ping
- GET  /received                                          everything recorded, as JSON
- GET  /-/healthy

and, with --smtp-listen, an SMTP server (aiosmtpd; STARTTLS required when a certificate is
given). Every notification is kept in memory and logged as one JSON line on stdout.

The pieces (endpoints, server, SMTP) are also used in-process by the tests and the drills
(devstack/standins.py), one endpoint per server there.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import email
import email.policy
import json
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from refapp.cli import OneLineParser, parse_listen

# "[FIRING:2] CRITICAL ApiErrorRateHigh" (alertmanager/templates: saasmon.title), the start
# of Slack titles and email subjects.
TITLE = re.compile(r"^\[(?P<status>FIRING|RESOLVED)(?::\d+)?\] (?P<severity>\S+) (?P<alertname>\w+)")
# "CRITICAL ApiErrorRateHigh (1 firing): ..." (exporters/smsrelay DEFAULT_TEMPLATE).
SMS_TEXT = re.compile(r"^(?P<severity>[A-Z]+) (?P<alertname>\w+) \(\d+ (?P<status>\w+)\)")
TWILIO_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")
# Body fields that are credentials: never shown by /received or the log.
REDACTED_FIELDS = ("routing_key",)

Behaviour = int | str  # a Twilio answer: an HTTP status, "hang", or "ok" (201 with a message)


@dataclass(frozen=True)
class Notification:
    """What one line of the log says about a notification."""

    receiver: str
    channel: str | None = None
    severity: str | None = None
    alertname: str | None = None
    status: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"receiver": self.receiver, "channel": self.channel, "severity": self.severity,
                "alertname": self.alertname, "status": self.status}


def from_title(receiver: str, channel: str | None, title: str) -> Notification:
    match = TITLE.match(title)
    if match is None:
        return Notification(receiver, channel)
    return Notification(receiver, channel, match["severity"].lower(), match["alertname"],
                        match["status"].lower())


@dataclass(frozen=True)
class Received:
    """One HTTP request as it arrived (path is the full request path)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    receiver: str = ""
    time: float = field(default_factory=time.time)

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(self.body.decode()))

    def shown_body(self) -> Any:
        """The body for /received: parsed where possible, credentials redacted."""
        if not self.body:
            return None
        try:
            parsed = self.json()
        except ValueError:
            # Twilio's API takes forms; anything else is shown as text.
            if self.headers.get("Content-Type", "").startswith("application/x-www-form"):
                return self.form()
            return self.body.decode(errors="replace")
        if isinstance(parsed, dict):
            return {k: "<redacted>" if k in REDACTED_FIELDS else v for k, v in parsed.items()}
        return parsed


# -- HTTP endpoints -----------------------------------------------------------------------------
class Endpoint:
    """One stand-in service: how it answers and how a request reads as a notification.
    `subpath` is the request path below the prefix the endpoint is mounted at."""

    name = "http"

    async def answer(self, received: Received, subpath: str) -> web.StreamResponse:
        return web.Response(text="ok")

    def describe(self, received: Received, subpath: str) -> Notification:
        return Notification(self.name)


def _json_or_none(received: Received) -> dict[str, Any] | None:
    try:
        parsed = received.json()
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


class Slack(Endpoint):
    """Incoming webhooks: any path is a webhook URL, answered `ok` like Slack does."""

    name = "slack"

    def describe(self, received: Received, subpath: str) -> Notification:
        body = _json_or_none(received) or {}
        channel = body.get("channel") or urllib.parse.unquote(subpath.strip("/")) or None
        attachments = body.get("attachments") or [{}]
        return from_title(self.name, channel, str(attachments[0].get("title", "")))


class PagerDuty(Endpoint):
    """Events API v2: answers 202 with the event's dedup key, as PagerDuty does."""

    name = "pagerduty"

    async def answer(self, received: Received, subpath: str) -> web.StreamResponse:
        event = _json_or_none(received)
        if event is None:
            return web.json_response({"status": "invalid event"}, status=400)
        return web.json_response({"status": "success", "message": "Event processed",
                                  "dedup_key": event.get("dedup_key")}, status=202)

    def describe(self, received: Received, subpath: str) -> Notification:
        event = _json_or_none(received) or {}
        payload = event.get("payload") or {}
        return Notification(self.name, None, payload.get("severity"), payload.get("class"),
                            event.get("event_action"))


class Twilio(Endpoint):
    """The Messages API. Checks HTTP basic auth: with `auth_token` the exact SID and token,
    without it any token for the SID in the path. Answers per `script` (the first request
    takes the first item; when the list runs out, it accepts)."""

    name = "twilio"

    def __init__(self, sid: str | None = None, auth_token: str | None = None) -> None:
        self.sid = sid
        self.auth_token = auth_token
        self.script: list[Behaviour] = []
        self.retry_after: str | None = None
        self._release = asyncio.Event()

    def release(self) -> None:
        """End every hanging request (they then answer 503); call it in the server's loop."""
        self._release.set()

    def _authorized(self, sid: str, header: str | None) -> bool:
        if self.auth_token is not None:
            token = f"{sid}:{self.auth_token}".encode()
            return header == "Basic " + base64.b64encode(token).decode()
        scheme, _, encoded = (header or "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return scheme == "Basic" and user == sid and bool(password)

    async def answer(self, received: Received, subpath: str) -> web.StreamResponse:
        match = TWILIO_MESSAGES.match(subpath)
        if match is None or (self.sid is not None and match["sid"] != self.sid):
            return web.json_response({"code": 20404, "message": "not found"}, status=404)
        if not self._authorized(match["sid"], received.headers.get("Authorization")):
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
        if not isinstance(behaviour, int):
            raise ValueError(f"unknown Twilio behaviour {behaviour!r}")
        headers = {"Retry-After": self.retry_after} if self.retry_after else {}
        return web.json_response({"code": 21211 if behaviour == 400 else 20500,
                                  "message": f"scripted {behaviour}", "status": behaviour},
                                 status=behaviour, headers=headers)

    def describe(self, received: Received, subpath: str) -> Notification:
        form = received.form() if TWILIO_MESSAGES.match(subpath) else {}
        match = SMS_TEXT.match(form.get("Body", ""))
        if match is None:
            return Notification(self.name, form.get("To"))
        return Notification(self.name, form.get("To"), match["severity"].lower(),
                            match["alertname"], match["status"])


class Heartbeat(Endpoint):
    """A dead man's switch: any request is a ping. A ping forwarded by the SMS relay carries
    no body; an Alertmanager webhook posted here directly names its alert."""

    name = "heartbeat"

    def describe(self, received: Received, subpath: str) -> Notification:
        payload = _json_or_none(received)
        if payload is None:
            return Notification(self.name, status="ping")
        labels = payload.get("commonLabels") or {}
        return Notification(self.name, None, labels.get("severity"), labels.get("alertname"),
                            payload.get("status"))


# -- recording ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mail:
    """One message the SMTP stand-in accepted, with the login it was sent with."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str
    password: str
    receiver: str = "email"
    time: float = field(default_factory=time.time)

    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        if part is None:
            raise ValueError("no HTML part")
        return str(part.get_content())

    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        if part is None:
            raise ValueError("no text part")
        return str(part.get_content())


Recorded = Received | Mail


def entry(item: Recorded, notification: Notification) -> dict[str, Any]:
    """An item of GET /received (never a password or an Authorization header)."""
    shown: dict[str, Any] = {**notification.as_dict(), "time": item.time}
    if isinstance(item, Mail):
        body = item.message.get_body(preferencelist=("plain",))
        return {**shown, "path": "smtp", "method": "SMTP", "body": {
            "from": item.mail_from, "to": item.rcpt_tos, "subject": str(item.message["Subject"]),
            "text": str(body.get_content()) if body is not None else None}}
    return {**shown, "path": item.path, "method": item.method, "body": item.shown_body()}


class Recorder:
    """Everything received, in arrival order; shared by the HTTP server and the SMTP thread."""

    def __init__(self, log: Callable[[dict[str, Any]], None] | None = None) -> None:
        self._lock = threading.Lock()
        self._items: list[tuple[Recorded, Notification]] = []
        self._log = log

    def add(self, item: Recorded, notification: Notification) -> None:
        with self._lock:
            self._items.append((item, notification))
        if self._log is not None:
            self._log(notification.as_dict())

    def items(self) -> list[Recorded]:
        with self._lock:
            return [item for item, _ in self._items]

    def entries(self, receiver: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            found = list(self._items)
        return [entry(item, n) for item, n in found if receiver in (None, n.receiver)]


# -- HTTP server -------------------------------------------------------------------------------
def _mounted(prefix: str, path: str) -> bool:
    return prefix == "" or path == prefix or path.startswith(prefix + "/")


class ReceiverServer:
    """One aiohttp app: endpoints mounted at path prefixes ("" = every path), plus
    GET /received and GET /-/healthy, which are not recorded."""

    def __init__(self, endpoints: dict[str, Endpoint], recorder: Recorder) -> None:
        # Longest prefix first, so a prefix never hides a more specific one.
        self.endpoints = sorted(endpoints.items(), key=lambda item: -len(item[0]))
        self.recorder = recorder
        self._runner: web.AppRunner | None = None

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/received", self._received)
        app.router.add_get("/-/healthy", self._healthy)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def start(self, host: str, port: int) -> None:
        self._runner = web.AppRunner(self.application(), handle_signals=False,
                                     shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def _received(self, request: web.Request) -> web.Response:
        return web.json_response(self.recorder.entries(request.query.get("receiver")))

    async def _healthy(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        found = next(((p, e) for p, e in self.endpoints if _mounted(p, request.path)), None)
        if found is None:
            return web.json_response({"error": "no stand-in at this path"}, status=404)
        prefix, endpoint = found
        subpath = request.path[len(prefix):] or "/"
        received = Received(request.method, request.path, dict(request.headers),
                            await request.read(), endpoint.name)
        self.recorder.add(received, endpoint.describe(received, subpath))
        return await endpoint.answer(received, subpath)


def standard_endpoints() -> dict[str, Endpoint]:
    """The layout of `python -m refapp.receivers` (receivers.md)."""
    return {"/slack": Slack(), "/pagerduty": PagerDuty(), "/twilio": Twilio(),
            "/heartbeat": Heartbeat()}


# -- SMTP --------------------------------------------------------------------------------------
def make_certificate(directory: Path, hosts: Sequence[str] = ("127.0.0.1",)) -> tuple[Path, Path]:
    """A self-signed certificate (cert, key) for the SMTP stand-in's STARTTLS; its clients
    trust it as a CA (Alertmanager through SSL_CERT_FILE)."""
    cert, key = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    names = ",".join(("IP:" if re.fullmatch(r"[\d.]+|[\da-fA-F:]+", h) else "DNS:") + h
                     for h in hosts)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", f"/CN={hosts[0]}",
         "-addext", f"subjectAltName={names}", "-addext", "basicConstraints=critical,CA:TRUE",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=30)
    return cert, key


def describe_mail(mail: Mail) -> Notification:
    return from_title("email", ",".join(mail.rcpt_tos), str(mail.message["Subject"] or ""))


class SmtpStandIn:
    """aiosmtpd in its own thread. With a certificate, STARTTLS is required and AUTH offered
    only after it, as a submission server does; any login is accepted and recorded."""

    def __init__(self, cert: Path | None = None, key: Path | None = None,
                 host: str = "127.0.0.1", port: int = 0, recorder: Recorder | None = None) -> None:
        if not port:
            # In-process users (tests, drills) take any free loopback port; the command
            # line always names one.
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.bind((host, 0))
                port = int(sock.getsockname()[1])
        self.port = port
        self.recorder = recorder if recorder is not None else Recorder()
        self._auth: dict[int, tuple[str, str]] = {}
        context: ssl.SSLContext | None = None
        if cert is not None and key is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
        self.controller = Controller(
            self, hostname=host, port=self.port, tls_context=context,
            require_starttls=context is not None, auth_require_tls=context is not None,
            authenticator=self._authenticate,
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
        if not isinstance(message, EmailMessage):
            return "554 unreadable message"
        mail = Mail(str(envelope.mail_from), list(envelope.rcpt_tos), message, login, password)
        self.recorder.add(mail, describe_mail(mail))
        return "250 OK"

    @property
    def mails(self) -> list[Mail]:
        return [item for item in self.recorder.items() if isinstance(item, Mail)]


# -- command line --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = OneLineParser(prog="refapp.receivers", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--listen", type=parse_listen, required=True, metavar="HOST:PORT",
                   help="HTTP address of the Slack/PagerDuty/Twilio/heartbeat stand-ins")
    p.add_argument("--smtp-listen", type=parse_listen, metavar="HOST:PORT",
                   help="also run the SMTP stand-in here")
    p.add_argument("--tls-cert", type=Path, help="certificate for SMTP STARTTLS (PEM)")
    p.add_argument("--tls-key", type=Path, help="its private key (PEM)")
    args = p.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        p.error("--tls-cert and --tls-key go together")
    if args.tls_cert is not None and args.smtp_listen is None:
        p.error("--tls-cert needs --smtp-listen")
    return args


def log_line(fields: dict[str, Any]) -> None:
    print(json.dumps(fields), flush=True)


async def serve(args: argparse.Namespace) -> None:
    recorder = Recorder(log_line)
    server = ReceiverServer(standard_endpoints(), recorder)
    smtp: SmtpStandIn | None = None
    if args.smtp_listen is not None:
        host, port = args.smtp_listen
        smtp = SmtpStandIn(args.tls_cert, args.tls_key, host, port, recorder).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await server.start(*args.listen)
        where = "http://{}:{}".format(*args.listen)
        smtp_note = f", SMTP on {args.smtp_listen[0]}:{args.smtp_listen[1]}" if smtp else ""
        print(f"stand-in receivers on {where}{smtp_note}", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        await server.stop()
        if smtp is not None:
            smtp.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
