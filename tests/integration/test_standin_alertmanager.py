"""The stand-in side of alerting: the committed compose variant of the Alertmanager config
is current, valid and differs from the shipped file only in addresses and secret paths; and
`python -m refapp.receivers` serves the receivers.md contract (paths, answers, /received,
one JSON log line per notification, SMTP with STARTTLS)."""

from __future__ import annotations

import base64
import json
import shutil
import smtplib
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.servers import free_port
from refapp.receivers import make_certificate
from refapp.standin_alertmanager import (
    COMPOSE,
    COMPOSE_CONFIG,
    GENERATED_HEADER,
    SHIPPED_CONFIG,
    TEMPLATES,
    compose_config,
    main,
    standin_swaps,
)
from tests.support.alertmanager import AMTOOL, TWILIO_SID, wait_for

REPO = Path(__file__).resolve().parents[2]


# -- the compose variant ----------------------------------------------------------------------
def test_compose_variant_is_current() -> None:
    assert COMPOSE_CONFIG.read_text() == compose_config(), (
        "deploy/alertmanager/alertmanager.standin.yml is stale: "
        "run .venv/bin/python -m refapp.standin_alertmanager")


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    out = tmp_path / "alertmanager.standin.yml"
    assert main(["--check", "--out", str(out)]) == 1  # missing
    assert main(["--out", str(out)]) == 0
    assert main(["--check", "--out", str(out)]) == 0
    out.write_text(out.read_text().replace("receivers:9700", "receivers:9701"))
    assert main(["--check", "--out", str(out)]) == 1


def test_compose_variant_passes_amtool_check_config(tmp_path: Path) -> None:
    # The templates path is relative to the config, as in the compose mount.
    shutil.copy(COMPOSE_CONFIG, tmp_path / "alertmanager.yml")
    shutil.copytree(TEMPLATES, tmp_path / "templates")
    result = subprocess.run([AMTOOL, "check-config", str(tmp_path / "alertmanager.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 templates" in result.stdout


def test_compose_variant_differs_only_in_addresses_and_secret_paths() -> None:
    generated = COMPOSE_CONFIG.read_text()
    assert generated.startswith(GENERATED_HEADER)
    body = generated.removeprefix(GENERATED_HEADER)
    original = SHIPPED_CONFIG.read_text()
    swaps = standin_swaps(COMPOSE.secrets_dir, COMPOSE.relay, COMPOSE.receivers, COMPOSE.smtp)
    back = body
    for swap in swaps:
        back = back.replace(swap.new, swap.old)
    assert back == original
    config: dict[str, Any] = yaml.safe_load(body)
    assert config["global"]["smtp_smarthost"] == "receivers:2525"
    assert config["global"]["pagerduty_url"] == "http://receivers:9700/pagerduty/v2/enqueue"
    files = [value for receiver in config["receivers"] for kind, items in receiver.items()
             if kind.endswith("_configs") for item in items for key, value in item.items()
             if key.endswith("_file")]
    assert files and all(path.startswith("/run/secrets/") for path in files), files
    assert "/etc/alertmanager" not in body


# -- python -m refapp.receivers ----------------------------------------------------------------
@dataclass
class Receivers:
    proc: subprocess.Popen[str]
    url: str
    smtp_port: int
    cert: Path

    def post(self, path: str, body: bytes, content_type: str,
             headers: dict[str, str] | None = None) -> tuple[int, str]:
        request = urllib.request.Request(self.url + path, data=body, method="POST",
                                         headers={"Content-Type": content_type, **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def received(self, receiver: str | None = None) -> list[dict[str, Any]]:
        url = self.url + "/received" + (f"?receiver={receiver}" if receiver else "")
        with urllib.request.urlopen(url, timeout=10) as response:
            found: list[dict[str, Any]] = json.load(response)
        return found


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/-/healthy", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError):
        return False


@pytest.fixture
def receivers(tmp_path: Path) -> Iterator[Receivers]:
    cert, key = make_certificate(tmp_path)
    port, smtp_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "refapp.receivers", "--listen", f"127.0.0.1:{port}",
         "--smtp-listen", f"127.0.0.1:{smtp_port}", "--tls-cert", str(cert), "--tls-key", str(key)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for("receivers healthy", lambda: proc.poll() is None and healthy(url), timeout=30)
        yield Receivers(proc, url, smtp_port, cert)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(10)


SLACK_POST = {"channel": "#critical-alerts", "attachments": [
    {"title": "[FIRING:2] CRITICAL ApiErrorRateHigh", "text": "*5xx above 5%*"}]}
PAGERDUTY_EVENT = {"routing_key": "pd-secret-key", "event_action": "resolve",
                   "dedup_key": "abc", "payload": {"class": "ApiErrorRateHigh",
                                                   "severity": "critical", "summary": "x"}}


def test_receivers_answer_like_the_services_and_record_every_notification(
        receivers: Receivers) -> None:
    assert receivers.post("/slack/critical-alerts", json.dumps(SLACK_POST).encode(),
                          "application/json") == (200, "ok")
    status, answer = receivers.post("/pagerduty/v2/enqueue",
                                    json.dumps(PAGERDUTY_EVENT).encode(), "application/json")
    assert (status, json.loads(answer)["dedup_key"]) == (202, "abc")
    sms = "Body=HIGH+DiskSpaceLow+%281+firing%29%3A+disk&To=%2B15551230001&From=%2B15005550006"
    basic = base64.b64encode(f"{TWILIO_SID}:any-token".encode()).decode()
    twilio = f"/twilio/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    status, answer = receivers.post(twilio, sms.encode(), "application/x-www-form-urlencoded",
                                    {"Authorization": f"Basic {basic}"})
    assert (status, json.loads(answer)["to"]) == (201, "+15551230001")
    # Twilio refuses a request without credentials, and the stand-in records it anyway.
    assert receivers.post(twilio, sms.encode(), "application/x-www-form-urlencoded")[0] == 401
    with urllib.request.urlopen(receivers.url + "/heartbeat", timeout=10) as response:
        assert response.status == 200  # the relay's ping is a GET
    assert receivers.post("/nowhere", b"{}", "application/json")[0] == 404

    entries = receivers.received()
    assert [(e["receiver"], e["method"], e["path"]) for e in entries] == [
        ("slack", "POST", "/slack/critical-alerts"),
        ("pagerduty", "POST", "/pagerduty/v2/enqueue"),
        ("twilio", "POST", twilio), ("twilio", "POST", twilio),
        ("heartbeat", "GET", "/heartbeat")]
    slack, pagerduty, sent, _, ping = entries
    assert (slack["channel"], slack["severity"], slack["alertname"], slack["status"]) == (
        "#critical-alerts", "critical", "ApiErrorRateHigh", "firing")
    assert slack["body"] == SLACK_POST
    assert (pagerduty["alertname"], pagerduty["status"]) == ("ApiErrorRateHigh", "resolve")
    assert pagerduty["body"]["routing_key"] == "<redacted>"
    assert (sent["channel"], sent["severity"], sent["alertname"], sent["status"]) == (
        "+15551230001", "high", "DiskSpaceLow", "firing")
    assert sent["body"]["Body"] == "HIGH DiskSpaceLow (1 firing): disk"
    assert (ping["status"], ping["body"]) == ("ping", None)
    assert [e["path"] for e in receivers.received("heartbeat")] == ["/heartbeat"]

    receivers.proc.terminate()
    stdout, _ = receivers.proc.communicate(timeout=10)
    assert receivers.proc.returncode == 0
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert [(x["receiver"], x["alertname"], x["status"]) for x in lines] == [
        ("slack", "ApiErrorRateHigh", "firing"), ("pagerduty", "ApiErrorRateHigh", "resolve"),
        ("twilio", "DiskSpaceLow", "firing"), ("twilio", "DiskSpaceLow", "firing"),
        ("heartbeat", None, "ping")]
    assert "pd-secret-key" not in stdout and "any-token" not in stdout


def test_smtp_requires_starttls_and_records_the_mail(receivers: Receivers) -> None:
    with smtplib.SMTP("127.0.0.1", receivers.smtp_port, timeout=10) as plain:
        plain.ehlo()
        with pytest.raises(smtplib.SMTPException):
            plain.login("alertmanager@example.com", "smtp-password")
    context = ssl.create_default_context(cafile=str(receivers.cert))
    with smtplib.SMTP("127.0.0.1", receivers.smtp_port, timeout=10) as client:
        client.starttls(context=context)
        client.login("alertmanager@example.com", "smtp-password")
        client.sendmail("alertmanager@example.com", ["team@example.com"],
                        "Subject: [RESOLVED] HIGH QueueBacklogHigh: drained\r\n\r\nAll clear.\r\n")
    (mail,) = wait_for("the mail recorded", lambda: receivers.received("email"), timeout=10)
    assert (mail["channel"], mail["severity"], mail["alertname"], mail["status"]) == (
        "team@example.com", "high", "QueueBacklogHigh", "resolved")
    assert mail["body"]["subject"] == "[RESOLVED] HIGH QueueBacklogHigh: drained"
    assert mail["body"]["text"].strip() == "All clear."
    assert "smtp-password" not in json.dumps(receivers.received())


def test_bad_command_lines_exit_2_with_one_line() -> None:
    for argv in (["--listen", "nowhere"], ["--listen", "127.0.0.1:1", "--tls-cert", "c"],
                 ["--listen", "127.0.0.1:1", "--tls-cert", "c", "--tls-key", "k"]):
        result = subprocess.run([sys.executable, "-m", "refapp.receivers", *argv],
                                capture_output=True, text=True, timeout=30, cwd=REPO)
        assert result.returncode == 2, (argv, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
