"""The SMS relay as a real process against a loopback Twilio stand-in that answers 201,
4xx, 5xx, 429 or hangs on cue."""

from __future__ import annotations

import base64
import http.server
import json
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.exporter import Exporter, run_cli
from devstack.metrics import value
from devstack.servers import free_port
from saasmon.runtime.config import ConfigError, load_config
from saasmon.smsrelay.config import SmsRelayConfig
from tests.support.alertmanager import TWILIO_SID, StandIns, wait_for, webhook_payload

Run = Callable[..., Exporter]
TOKEN = "tw1lio-Auth-T0ken-5ecret"
BEARER = "re1ay-Bearer-5ecret-value"
PING_SECRET = "9c1e7a52-4f0b-4d55-b7a3-hb5ecret"
FROM = "+15005550006"
ALICE, BOB = "+15551230001", "+15551230002"


@pytest.fixture
def stand_ins() -> Iterator[StandIns]:
    started = StandIns.start(TOKEN)
    yield started
    started.stop()


def relay_config(stand_ins: StandIns, workdir: Path, **extra: Any) -> dict[str, Any]:
    token_file = workdir / "twilio_token"
    token_file.write_text(TOKEN + "\n")
    return {
        "twilio": {"account_sid": TWILIO_SID, "auth_token_file": str(token_file),
                   "from_number": FROM, "api_url": stand_ins.twilio.url},
        "recipients": [ALICE],
        "timeout_seconds": 2,
        "retries": 2,
        "backoff_seconds": 0.05,
        **extra,
    }


def post(relay: Exporter, path: str, payload: Any, token: str | None = None,
         timeout: float = 30) -> tuple[int, dict[str, Any]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(relay.url + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_firing_group_is_one_text_to_every_recipient(
        stand_ins: StandIns, workdir: Path, run_exporter: Run) -> None:
    relay = run_exporter("sms-relay", relay_config(stand_ins, workdir, recipients=[ALICE, BOB]))
    status, answer = post(relay, "/alert", webhook_payload(alerts=2))
    assert (status, answer) == (200, {"results": {"sent": 2}, "truncated": False})
    text = "CRITICAL ApiErrorRateHigh (2 firing): API error rate 7% over the 5% limit"
    sent = stand_ins.twilio.messages()
    assert sorted((m["To"], m["From"], m["Body"]) for m in sent) == [
        (ALICE, FROM, text), (BOB, FROM, text)]
    samples = relay.scrape()
    assert value(samples, "smsrelay_messages_total", result="sent") == 2
    assert value(samples, "smsrelay_messages_total", result="failed") == 0
    assert value(samples, "smsrelay_twilio_requests_total", outcome="2xx") == 2
    assert value(samples, "smsrelay_twilio_request_duration_seconds_count") == 2
    assert value(samples, "smsrelay_twilio_up") == 1
    assert value(samples, "smsrelay_twilio_last_success_timestamp_seconds") > 0
    assert value(samples, "smsrelay_webhook_requests_total", endpoint="alert", result="ok") == 1
    assert value(samples, "smsrelay_messages_truncated_total") == 0


def test_twilio_500_then_success_is_retried_once_and_output_passes_promtool(
        stand_ins: StandIns, workdir: Path, run_exporter: Run) -> None:
    relay = run_exporter("sms-relay", relay_config(stand_ins, workdir))
    stand_ins.twilio.script = [500]
    status, answer = post(relay, "/alert", webhook_payload())
    assert (status, answer["results"]) == (200, {"sent": 1})
    bodies = [m["Body"] for m in stand_ins.twilio.messages()]
    assert len(bodies) == 2 and bodies[0] == bodies[1]
    samples = relay.scrape()
    assert value(samples, "smsrelay_twilio_requests_total", outcome="5xx") == 1
    assert value(samples, "smsrelay_twilio_requests_total", outcome="2xx") == 1
    assert value(samples, "smsrelay_messages_total", result="sent") == 1
    assert value(samples, "smsrelay_twilio_up") == 1
    checked = subprocess.run(["/usr/bin/promtool", "check", "metrics"],
                             input=relay.scrape_text(), capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_twilio_429_is_retried_like_a_5xx(
        stand_ins: StandIns, workdir: Path, run_exporter: Run) -> None:
    relay = run_exporter("sms-relay", relay_config(stand_ins, workdir))
    stand_ins.twilio.script = [429]
    stand_ins.twilio.retry_after = "0"
    status, _ = post(relay, "/alert", webhook_payload())
    assert status == 200
    samples = relay.scrape()
    assert value(samples, "smsrelay_twilio_requests_total", outcome="429") == 1
    assert value(samples, "smsrelay_messages_total", result="sent") == 1
    assert len(stand_ins.twilio.messages()) == 2


def test_twilio_400_is_not_retried_and_counted_as_rejected(
        stand_ins: StandIns, workdir: Path, run_exporter: Run) -> None:
    relay = run_exporter("sms-relay", relay_config(stand_ins, workdir, retries=3))
    stand_ins.twilio.script = [400]
    status, answer = post(relay, "/alert", webhook_payload())
    # A retry cannot fix a rejected number: a 4xx tells Alertmanager the page failed
    # without making it retry (which would text the other recipients again and again).
    assert (status, answer["results"]) == (422, {"rejected": 1})
    assert len(stand_ins.twilio.messages()) == 1
    samples = relay.scrape()
    assert value(samples, "smsrelay_messages_total", result="rejected") == 1
    assert value(samples, "smsrelay_twilio_requests_total", outcome="4xx") == 1
    assert value(samples, "smsrelay_twilio_up") == 1  # Twilio answered; the number was bad
    log = relay.log()
    assert '"result": "rejected"' in log and "...0001" in log and ALICE not in log


def test_twilio_401_is_an_undelivered_page_alertmanager_retries(
        stand_ins: StandIns, workdir: Path, run_exporter: Run) -> None:
    relay = run_exporter("sms-relay", relay_config(stand_ins, workdir, retries=3))
    stand_ins.twilio.script = [401]
    status, answer = post(relay, "/alert", webhook_payload())
    # Our credentials are wrong: nobody got the page, a fixed token lets a retry deliver.
    assert (status, answer["results"]) == (502, {"rejected": 1})
    assert len(stand_ins.twilio.messages()) == 1  # retrying at once cannot help
    samples = relay.scrape()
    assert value(samples, "smsrelay_twilio_up") == 0
    assert value(samples, "smsrelay_webhook_requests_total",
                 endpoint="alert", result="failed") == 1


@pytest.fixture
def redirector(stand_ins: StandIns) -> Iterator[str]:
    """A loopback 'Twilio' that redirects every request to the real stand-in."""
    target = stand_ins.twilio.url

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(307)
            self.send_header("Location", target + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_redirects_are_not_followed_nor_counted_as_sent(
        stand_ins: StandIns, workdir: Path, run_exporter: Run, redirector: str) -> None:
    config = relay_config(stand_ins, workdir, retries=2)
    config["twilio"]["api_url"] = redirector
    relay = run_exporter("sms-relay", config)
    status, answer = post(relay, "/alert", webhook_payload())
    assert (status, answer["results"]) == (502, {"failed": 1})
    assert stand_ins.twilio.messages() == []  # the credentials never went elsewhere
    samples = relay.scrape()
    assert value(samples, "smsrelay_messages_total", result="sent") == 0
    assert value(samples, "smsrelay_twilio_requests_total", outcome="error") == 1


def test_retry_after_beyond_the_deadline_is_not_waited_for(
        stand_ins: StandIns, workdir: Path, run_exporter: Run) -> None:
    relay = run_exporter("sms-relay", relay_config(stand_ins, workdir, retries=2))
    stand_ins.twilio.script = [429, 429, 429]
    stand_ins.twilio.retry_after = "3600"
    # The client gives up long before an hour (or the old 2 x 60 s cap) would pass.
    status, answer = post(relay, "/alert", webhook_payload(), timeout=20)
    assert (status, answer["results"]) == (502, {"failed": 1})
    assert len(stand_ins.twilio.messages()) == 1
    stand_ins.twilio.script = [503, 503, 503, 503]
    stand_ins.twilio.retry_after = None
    # Every retry happens within the deadline; the last attempt is cut to what is left.
    status, answer = post(relay, "/alert", webhook_payload(), timeout=20)
    assert (status, answer["results"]) == (502, {"failed": 1})
    assert len(stand_ins.twilio.messages()) == 4


def test_5xx_until_retries_run_out_fails_and_asks_alertmanager_to_retry(
        stand_ins: StandIns, workdir: Path, run_exporter: Run) -> None:
    relay = run_exporter("sms-relay", relay_config(stand_ins, workdir, retries=2))
    stand_ins.twilio.script = [503, 503, 503, 503]
    status, answer = post(relay, "/alert", webhook_payload())
    assert (status, answer["results"]) == (502, {"failed": 1})
    assert len(stand_ins.twilio.messages()) == 3  # the first try and two retries
    samples = relay.scrape()
    assert value(samples, "smsrelay_messages_total", result="failed") == 1
    assert value(samples, "smsrelay_twilio_up") == 0
    assert value(samples, "smsrelay_webhook_requests_total",
                 endpoint="alert", result="failed") == 1
    # Alertmanager's retry, once Twilio is back, delivers.
    status, answer = post(relay, "/alert", webhook_payload())
    assert (status, answer["results"]) == (200, {"sent": 1})
    assert value(relay.scrape(), "smsrelay_twilio_up") == 1


def test_unreachable_twilio_counts_connection_failures(
        stand_ins: StandIns, workdir: Path, run_exporter: Run) -> None:
    config = relay_config(stand_ins, workdir, retries=1)
    config["twilio"]["api_url"] = f"http://127.0.0.1:{free_port()}"
    relay = run_exporter("sms-relay", config)
    status, answer = post(relay, "/alert", webhook_payload())
    assert (status, answer["results"]) == (502, {"failed": 1})
    samples = relay.scrape()
    assert value(samples, "smsrelay_twilio_requests_total", outcome="connection") == 2
    assert value(samples, "smsrelay_twilio_up") == 0


def test_hanging_twilio_times_out_and_the_relay_keeps_serving(
        stand_ins: StandIns, workdir: Path, run_exporter: Run) -> None:
    relay = run_exporter("sms-relay", relay_config(stand_ins, workdir, timeout_seconds=3))
    stand_ins.twilio.script = ["hang"]
    answers: list[tuple[int, dict[str, Any]]] = []
    sender = threading.Thread(target=lambda: answers.append(
        post(relay, "/alert", webhook_payload())))
    sender.start()
    wait_for("the request reaches the hanging Twilio", lambda: stand_ins.twilio.messages(),
             timeout=10)
    # While one request hangs on Twilio, the relay answers scrapes and health checks.
    samples = relay.scrape()
    assert value(samples, "smsrelay_messages_total", result="timeout") == 0
    assert relay.get("/-/healthy")[0] == 200
    sender.join(20)
    # A timeout may have sent the message: not retried by the relay, but Alertmanager is
    # asked to retry (a duplicate page beats a missing one).
    assert answers == [(502, {"results": {"timeout": 1}, "truncated": False})]
    assert len(stand_ins.twilio.messages()) == 1
    samples = relay.scrape()
    assert value(samples, "smsrelay_messages_total", result="timeout") == 1
    assert value(samples, "smsrelay_twilio_requests_total", outcome="timeout") == 1
    assert value(samples, "smsrelay_twilio_up") == 0
    assert value(samples, "smsrelay_twilio_request_duration_seconds_bucket", le="2.5") == 0
    assert value(samples, "smsrelay_twilio_request_duration_seconds_bucket", le="5.0") == 1
    status, answer = post(relay, "/alert", webhook_payload())
    assert (status, answer["results"]) == (200, {"sent": 1})
    assert value(relay.scrape(), "smsrelay_twilio_up") == 1


def test_bearer_token_is_required_when_configured(
        stand_ins: StandIns, workdir: Path, run_exporter: Run) -> None:
    token_file = workdir / "bearer"
    token_file.write_text(BEARER)
    relay = run_exporter("sms-relay", relay_config(stand_ins, workdir,
                                                   bearer_token_file=str(token_file)))
    assert post(relay, "/alert", webhook_payload())[0] == 401
    assert post(relay, "/alert", webhook_payload(), token="guess")[0] == 401
    assert post(relay, "/alert", webhook_payload(), token=BEARER)[0] == 200
    assert len(stand_ins.twilio.messages()) == 1
    samples = relay.scrape()
    assert value(samples, "smsrelay_webhook_requests_total",
                 endpoint="alert", result="unauthorized") == 2
    assert value(samples, "smsrelay_webhook_requests_total", endpoint="alert", result="ok") == 1


INVALID_PAYLOADS = [
    b"not json",
    b"[1, 2]",
    json.dumps({**webhook_payload(), "version": "3"}).encode(),
    json.dumps({**webhook_payload(), "alerts": []}).encode(),
]


def test_a_payload_that_is_not_an_alertmanager_webhook_is_refused_and_heartbeat_is_off(
        stand_ins: StandIns, workdir: Path, run_exporter: Run) -> None:
    relay = run_exporter("sms-relay", relay_config(stand_ins, workdir))
    for payload in INVALID_PAYLOADS:
        status, answer = post(relay, "/alert", payload)
        assert status == 400 and "Alertmanager webhook" in answer["error"], payload
    assert stand_ins.twilio.messages() == []
    # Without a heartbeat section, /heartbeat is not found (and counted as invalid too).
    assert post(relay, "/heartbeat", webhook_payload(alertname="Watchdog"))[0] == 404
    samples = relay.scrape()
    assert value(samples, "smsrelay_webhook_requests_total",
                 endpoint="alert", result="invalid") == len(INVALID_PAYLOADS)
    assert value(samples, "smsrelay_webhook_requests_total",
                 endpoint="heartbeat", result="invalid") == 1
    assert value(samples, "smsrelay_heartbeat_configured") == 0


def test_a_long_text_is_cut_to_one_gsm_segment_and_counted(
        stand_ins: StandIns, workdir: Path, run_exporter: Run) -> None:
    relay = run_exporter("sms-relay", relay_config(stand_ins, workdir))
    summary = "Disk \u2018/var\u2019 \u2192 full \u2014 " + "more words " * 30
    status, answer = post(relay, "/alert", webhook_payload(severity="high", summary=summary))
    assert (status, answer["truncated"]) == (200, True)
    (body,) = [m["Body"] for m in stand_ins.twilio.messages()]
    # Curly quotes and dashes become GSM lookalikes, an arrow (no lookalike) becomes "?".
    assert body.startswith("HIGH ApiErrorRateHigh (1 firing): Disk '/var' ? full - more words")
    assert len(body) == 160 and body.endswith("...")
    assert value(relay.scrape(), "smsrelay_messages_truncated_total") == 1


def test_a_custom_template_and_length_are_used(
        stand_ins: StandIns, workdir: Path, run_exporter: Run) -> None:
    relay = run_exporter("sms-relay", relay_config(
        stand_ins, workdir, template="{guide} {guide_level}: {alertname} on {instance}",
        max_length=40))
    post(relay, "/alert", webhook_payload(instance="db-1"))
    (body,) = [m["Body"] for m in stand_ins.twilio.messages()]
    assert body == "nova-crm critical: ApiErrorRateHigh o..."


def test_heartbeat_is_forwarded_to_the_ping_url_read_from_its_file(
        stand_ins: StandIns, workdir: Path, run_exporter: Run) -> None:
    url_file = workdir / "heartbeat_url"
    url_file.write_text(f"{stand_ins.heartbeat.url}/ping/{PING_SECRET}\n")
    relay = run_exporter("sms-relay", relay_config(
        stand_ins, workdir, heartbeat={"url_file": str(url_file), "timeout_seconds": 2}))
    status, answer = post(relay, "/heartbeat", webhook_payload(alertname="Watchdog"))
    assert (status, answer) == (200, {"result": "ok"})
    assert [(r.method, r.path) for r in stand_ins.heartbeat.received] == [
        ("GET", f"/ping/{PING_SECRET}")]
    samples = relay.scrape()
    assert value(samples, "smsrelay_heartbeat_forwards_total", result="ok") == 1
    assert value(samples, "smsrelay_heartbeat_last_success_timestamp_seconds") > 0
    assert value(samples, "smsrelay_heartbeat_configured") == 1
    assert stand_ins.twilio.messages() == []  # a heartbeat is never an SMS

    stand_ins.heartbeat.stop()
    status, answer = post(relay, "/heartbeat", webhook_payload(alertname="Watchdog"))
    assert (status, answer) == (502, {"result": "failed"})
    samples = relay.scrape()
    assert value(samples, "smsrelay_heartbeat_forwards_total", result="failed") == 1
    assert value(samples, "smsrelay_webhook_requests_total",
                 endpoint="heartbeat", result="failed") == 1
    assert PING_SECRET not in relay.log() + relay.scrape_text()


def test_secrets_never_appear_in_logs_metrics_or_config_check(
        stand_ins: StandIns, workdir: Path, run_exporter: Run) -> None:
    bearer_file, url_file = workdir / "bearer", workdir / "heartbeat_url"
    bearer_file.write_text(BEARER)
    url_file.write_text(f"http://127.0.0.1:{free_port()}/ping/{PING_SECRET}")
    relay = run_exporter("sms-relay", relay_config(
        stand_ins, workdir, bearer_token_file=str(bearer_file),
        heartbeat={"url_file": str(url_file), "timeout_seconds": 1}),
        extra_args=["--log.level", "debug"])
    stand_ins.twilio.auth_token = "a-different-token"  # Twilio answers 401: logged, counted
    status, answer = post(relay, "/alert", webhook_payload(), token=BEARER)
    assert (status, answer["results"]) == (502, {"rejected": 1})  # undelivered: never 2xx
    assert post(relay, "/heartbeat", {}, token=BEARER)[0] == 502
    samples = relay.scrape()
    assert value(samples, "smsrelay_twilio_up") == 0  # credentials refused: SMS is down
    checked = run_cli("sms-relay", "--config.file", str(relay.config_path), "--config.check")
    assert checked.returncode == 0, checked.stderr
    assert "1 recipient(s)" in checked.stdout and "bearer token" in checked.stdout
    basic = base64.b64encode(f"{TWILIO_SID}:{TOKEN}".encode()).decode()
    for where, text in [("log", relay.log()), ("metrics", relay.scrape_text()),
                        ("config.check", checked.stdout + checked.stderr)]:
        for secret in (TOKEN, basic, BEARER, PING_SECRET):
            assert secret not in text, f"{secret[:6]}... leaked into the {where}"
    assert "HTTP 401" in relay.log()


VALID = (f'twilio: {{account_sid: {TWILIO_SID}, auth_token: "{TOKEN}", '
         f'from_number: "{FROM}"}}\nrecipients: ["{ALICE}"]\n')
BAD_CONFIGS = [
    (f'recipients: ["{ALICE}"]\n', "twilio: Field required"),
    (VALID.replace(TWILIO_SID, "AC123"), "twilio.account_sid: String should match pattern"),
    (VALID.replace(ALICE, "0151 2345"), "recipients.0: String should match pattern"),
    (VALID.replace(f'auth_token: "{TOKEN}"', "auth_token_file: /nonexistent/token"),
     "twilio.auth_token_file: cannot read file '/nonexistent/token'"),
    (VALID.replace("from_number", "auth_token_file: /x, from_number"),
     "twilio: Value error, set only one of auth_token and auth_token_file"),
    (VALID.replace(f'auth_token: "{TOKEN}", ', ""),
     "twilio: Value error, auth_token is required (or auth_token_file)"),
    (VALID.replace("from_number", "api_url: ftp://api.example, from_number"),
     "twilio.api_url: Value error, api_url must be an http:// or https:// URL"),
    (VALID + 'template: "{severity} {secret_field}"\n',
     "template: Value error, unknown field {secret_field}"),
    (VALID + 'template: "{severity"\n', "template: Value error, invalid template"),
    (VALID + "retries: 11\n", "retries: Input should be less than or equal to 10"),
    (VALID + "max_length: 10\n", "max_length: Input should be greater than or equal to 20"),
    (VALID + "retry: 3\n", "retry: Extra inputs are not permitted"),
    (VALID.replace(f'["{ALICE}"]', f'["{ALICE}", "{ALICE}"]'),
     "recipients: Value error, recipients must be unique"),
    (VALID + "heartbeat: {url_file: /nonexistent/ping}\n",
     "heartbeat.url_file: cannot read file '/nonexistent/ping'"),
    (VALID + "heartbeat: {url_file: /x, method: DELETE}\n", "heartbeat.method: Input should be"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_CONFIGS,
                         ids=[e.split(":")[0] + f"-{i}" for i, (_, e) in enumerate(BAD_CONFIGS)])
def test_bad_config_names_the_key_and_the_problem(text: str, expected: str,
                                                  tmp_path: Path) -> None:
    # In-process: the same loader and one-line message the CLI prints (checked below).
    path = tmp_path / "relay.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(SmsRelayConfig, str(path), "sms-relay")
    assert str(raised.value).startswith(expected), str(raised.value)
    assert "\n" not in str(raised.value) and TOKEN not in str(raised.value)


@pytest.mark.parametrize("index", [0, 3, 7])
def test_bad_config_gives_one_line_and_exit_2(index: int, tmp_path: Path) -> None:
    text, expected = BAD_CONFIGS[index]
    path = tmp_path / "relay.yml"
    path.write_text(text)
    result = run_cli("sms-relay", "--config.check", "--config.file", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"saasmon sms-relay: {expected}"), lines[0]
    assert "Traceback" not in result.stderr
    assert TOKEN not in result.stderr + result.stdout


# -- slow clients (issue 15 item 9) ------------------------------------------------------

def test_an_alert_body_trickled_past_the_body_timeout_gets_a_408_and_no_text(
        stand_ins: StandIns, workdir: Path, run_exporter: Run) -> None:
    relay = run_exporter("sms-relay", relay_config(stand_ins, workdir),
                         extra_args=["--web.body-timeout", "1"])
    body = json.dumps(webhook_payload()).encode()
    head = (f"POST /alert HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", relay.port), timeout=10) as sock:
        sock.sendall(head + body[:10])
        began = time.monotonic()
        sock.settimeout(0.2)
        answer, sent = b"", 10
        while time.monotonic() - began < 8 and not answer:
            try:
                answer = sock.recv(4096)
            except TimeoutError:
                sock.sendall(body[sent:sent + 1])  # one byte of the rest every 0.2 s
                sent += 1
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        # Not cut before the configured second (a 408 after 8 s would have ended the loop).
        assert time.monotonic() - began >= 1
    assert stand_ins.twilio.messages() == []
    samples = relay.scrape()
    assert value(samples, "smsrelay_exporter_http_connections_dropped_total",
                 reason="body_timeout") == 1
    # The next webhook, sent whole, is delivered.
    assert post(relay, "/alert", webhook_payload())[0] == 200
    assert "Traceback" not in relay.log()


def test_a_new_connection_gets_a_503_only_when_every_slot_is_answering(
        stand_ins: StandIns, workdir: Path, run_exporter: Run) -> None:
    relay = run_exporter("sms-relay", relay_config(stand_ins, workdir, timeout_seconds=3),
                         extra_args=["--web.max-connections", "2",
                                     "--web.max-connections-per-address", "2"])
    stand_ins.twilio.script = ["hang", "hang"]
    answers: list[tuple[int, dict[str, Any]]] = []
    senders = [threading.Thread(target=lambda: answers.append(post(relay, "/alert",
                                                                   webhook_payload())))
               for _ in range(2)]
    for sender in senders:
        sender.start()
    wait_for("both requests reach the hanging Twilio",
             lambda: len(stand_ins.twilio.messages()) == 2, timeout=10)
    # Both slots owe an answer (nothing to displace): a third connection is refused.
    assert relay.get("/-/healthy")[:2] == (503, "Too many connections\n")
    for sender in senders:
        sender.join(20)
    assert [status for status, _ in answers] == [502, 502]
    assert relay.get("/-/healthy")[0] == 200
    assert value(relay.scrape(), "smsrelay_exporter_http_connections_dropped_total",
                 reason="refused") == 1
