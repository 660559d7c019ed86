"""The paging channels of a drill: the stand-in receivers (refapp/receivers.py) in this
process, the real SMS relay in front of Twilio's stand-in, and what they received read back
as deliveries of Alertmanager's receivers (`slack-critical`, `pagerduty`, `sms`, ...).

Receiver names come from the swapped alertmanager.yml itself: a Slack post belongs to the
receiver whose webhook-URL secret names that channel, a mail to the receiver with that `to`,
a PagerDuty event to the receiver whose routing-key secret it carries, an SMS to the
receiver whose webhook is the relay's /alert, a ping to the one posting to /heartbeat.
Nothing here knows the routing tree.

A notification is about one alert group (alertname and severity), which may hold alerts of
several guides: the guides it is about are those its descriptions cite (`guide § section`).
"""

from __future__ import annotations

import secrets
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from alert_rules.generator.catalog import GUIDES
from devstack.exporter import Exporter
from devstack.servers import free_port
from devstack.standins import TWILIO_SID, LoopThread
from refapp.receivers import (
    SMS_TEXT,
    TITLE,
    Mail,
    Received,
    ReceiverServer,
    Recorded,
    Recorder,
    SmtpStandIn,
    make_certificate,
    standard_endpoints,
)
from refapp.standin_alertmanager import (
    SLACK_CHANNELS,
    standin_secrets,
    standin_swaps,
    write_config,
    write_secrets,
)

ONCALL = "+15551230001"
SMS_FROM = "+15005550006"


@dataclass(frozen=True)
class Delivery:
    """One notification as a person (or the dead man's switch) got it."""

    receiver: str  # Alertmanager receiver (alertmanager.yml), e.g. "slack-critical"
    alertname: str
    severity: str  # the alerts' severity label; "none" for a heartbeat ping
    status: str  # "firing" or "resolved"
    text: str  # what a person reads: title or subject, summary, description ("" for a ping)
    at: float  # time.time() when the stand-in received it

    @property
    def guides(self) -> frozenset[str]:
        """The guides whose sources the text cites; empty for an SMS or a ping, which
        carry no description."""
        return frozenset(g for g in GUIDES if f"{g} §" in self.text)


@dataclass(frozen=True)
class ReceiverMap:
    """How a stand-in's record names its Alertmanager receiver, read from the config."""

    slack_paths: dict[str, str]  # "/slack/critical-alerts" -> "slack-critical"
    mail_to: dict[str, str]  # "team@example.com" -> "email-team"
    pagerduty: dict[str, str]  # routing key -> "pagerduty" / "pagerduty-escalation"
    sms: str
    heartbeat: str
    send_resolved: dict[str, bool]

    @property
    def pagers(self) -> frozenset[str]:
        """Receivers that page a person: every PagerDuty service and the SMS."""
        return frozenset({*self.pagerduty.values(), self.sms})

    @classmethod
    def from_config(cls, config: dict[str, Any], secrets: Mapping[str, str]) -> ReceiverMap:
        """`secrets`: the value of each secret file by name (the routing keys)."""
        slack: dict[str, str] = {}
        mail: dict[str, str] = {}
        webhooks: dict[str, str] = {}
        pagerduty: dict[str, str] = {}
        resolved: dict[str, bool] = {}
        for receiver in config["receivers"]:
            name = receiver["name"]
            for item in receiver.get("slack_configs", []):
                secret = Path(item["api_url_file"]).name
                slack[f"/slack/{SLACK_CHANNELS[secret]}"] = name
                resolved[name] = bool(item.get("send_resolved", False))
            for item in receiver.get("email_configs", []):
                mail[item["to"]] = name
                resolved[name] = bool(item.get("send_resolved", True))
            for item in receiver.get("webhook_configs", []):
                webhooks[urllib.parse.urlsplit(item["url"]).path] = name
                resolved[name] = bool(item.get("send_resolved", True))
            for item in receiver.get("pagerduty_configs", []):
                pagerduty[secrets[Path(item["routing_key_file"]).name]] = name
                resolved[name] = bool(item.get("send_resolved", True))
        return cls(slack, mail, pagerduty, webhooks["/alert"], webhooks["/heartbeat"], resolved)


def _title_fields(title: str) -> tuple[str, str, str] | None:
    match = TITLE.match(title)
    if match is None:
        return None
    return match["alertname"], match["severity"].lower(), match["status"].lower()


def read(item: Recorded, receivers: ReceiverMap) -> list[Delivery]:
    """The deliveries one recorded request or mail stands for (a mail to two lists is two)."""
    if isinstance(item, Mail):
        subject = str(item.message["Subject"] or "")
        fields = _title_fields(subject)
        if fields is None:
            return []
        text = subject + "\n" + item.text()
        return [Delivery(receivers.mail_to[to], *fields, text=text, at=item.time)
                for to in item.rcpt_tos if to in receivers.mail_to]
    return _read_http(item, receivers)


def _read_http(item: Received, receivers: ReceiverMap) -> list[Delivery]:
    if item.receiver == "slack" and item.path in receivers.slack_paths:
        attachment = (item.json().get("attachments") or [{}])[0]
        title = str(attachment.get("title", ""))
        fields = _title_fields(title)
        if fields is None:
            return []
        text = title + "\n" + str(attachment.get("text", ""))
        return [Delivery(receivers.slack_paths[item.path], *fields, text=text, at=item.time)]
    if item.receiver == "pagerduty":
        event = item.json()
        receiver = receivers.pagerduty.get(str(event.get("routing_key")))
        if receiver is None:
            return []
        payload = event.get("payload") or {}
        details = payload.get("custom_details") or {}
        status = {"trigger": "firing", "resolve": "resolved"}.get(event.get("event_action"), "")
        text = "\n".join(str(x) for x in (payload.get("summary"), details.get("summary"),
                                          details.get("description")) if x)
        return [Delivery(receiver, str(payload.get("class", "")),
                         str(details.get("severity", "")), status, text, item.time)]
    if item.receiver == "twilio":
        body = item.form().get("Body", "")
        match = SMS_TEXT.match(body)
        if match is None:
            return []
        return [Delivery(receivers.sms, match["alertname"], match["severity"].lower(),
                         match["status"], body, item.time)]
    if item.receiver == "heartbeat":
        # The relay forwards only its /heartbeat webhook, which only the Watchdog's
        # receiver posts to: a ping is a Watchdog notification.
        return [Delivery(receivers.heartbeat, "Watchdog", "none", "firing", "", item.time)]
    return []


class Receivers:
    """The stand-ins of refapp/receivers.py on one loopback port plus SMTP (STARTTLS on a
    self-signed certificate), and the real `saasmon sms-relay` in front of Twilio's."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.loop = LoopThread()
        self.recorder = Recorder()
        self.port = free_port()
        self.server = ReceiverServer(standard_endpoints(), self.recorder)
        self.cert, self.key = make_certificate(workdir)
        self.smtp = SmtpStandIn(self.cert, self.key, recorder=self.recorder)
        self.secrets_dir = workdir / "am-secrets"
        self.secrets = standin_secrets(self.url)
        self.relay = Exporter("sms-relay", {}, workdir)
        # Parsed once: drills poll the deliveries several times a second.
        self._parsed: list[Delivery] = []
        self._read = 0
        self._parse_lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Receivers:
        self.loop.run(self.server.start("127.0.0.1", self.port))
        self.smtp.start()
        write_secrets(self.secrets_dir, self.secrets)
        twilio_token = self.workdir / "twilio_token"
        twilio_token.write_text(secrets.token_hex(16))
        heartbeat = self.workdir / "heartbeat_url"
        heartbeat.write_text(f"{self.url}/heartbeat/ping")
        self.relay.config = {
            "twilio": {"account_sid": TWILIO_SID, "auth_token_file": str(twilio_token),
                       "from_number": SMS_FROM, "api_url": f"{self.url}/twilio"},
            "recipients": [ONCALL],
            "bearer_token_file": str(self.secrets_dir / "smsrelay_token"),
            "heartbeat": {"url_file": str(heartbeat)},
            "timeout_seconds": 5,
        }
        self.relay.start()
        return self

    def alertmanager_config(self, directory: Path) -> Path:
        """The shipped alertmanager.yml with only addresses and secret paths swapped."""
        swaps = standin_swaps(self.secrets_dir, f"127.0.0.1:{self.relay.port}", self.url,
                              f"127.0.0.1:{self.smtp.port}")
        return write_config(directory, swaps)

    def receiver_map(self, config: Path) -> ReceiverMap:
        return ReceiverMap.from_config(yaml.safe_load(config.read_text()), self.secrets)

    def deliveries(self, receivers: ReceiverMap, since: float = 0.0) -> list[Delivery]:
        """Everything received at or after `since`, in arrival order."""
        with self._parse_lock:
            items = self.recorder.items()  # append-only: parse what is new
            for item in items[self._read:]:
                self._parsed.extend(read(item, receivers))
            self._read = len(items)
            return [d for d in self._parsed if d.at >= since]

    def stop(self) -> None:
        self.relay.stop()
        self.smtp.stop()
        self.loop.run(self.server.stop())
        self.loop.stop()
