"""Integrations exporter: /probe against loopback stand-ins for status pages and the app,
failure counters from a real PostgreSQL that the tests fill, kill and restart."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import bcrypt
import pytest
import yaml
from aiohttp import web

from devstack.exporter import Exporter, run_cli
from devstack.metrics import Samples, parse, total, value
from devstack.servers import PostgresServer, free_port
from refapp.schema import schema_sql
from saasmon.integrations.config import IntegrationsConfig
from saasmon.runtime.config import ConfigError, load_config
from tests.support.tls import make_certificate

Run = Callable[..., Exporter]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "integrations"
TOKEN = "St4tus-T0ken-Secret-91"
URL_PASSWORD = "Url-P4ss-Secret-57"
DB_PASSWORD = "Db-P4ssw0rd-Secret-33"
STATUSES = ("operational", "degraded", "partial_outage", "major_outage", "maintenance")
SCRAPE_TIMEOUT = 2.0  # what the tests tell the exporter Prometheus' scrape timeout is


def fixture(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return doc


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    delay: float = 0.0
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_reply(doc: object, status: int = 200) -> Reply:
    return Reply(status, json.dumps(doc).encode())


class FakeInternet:
    """Status pages and the app on loopback: aiohttp in a thread with its own loop, a TLS
    site with a self-signed certificate, a socket that never accepts, a closed port."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.replies: dict[str, Reply] = {}
        self.authorization: list[str] = []
        self.port, self.tls_port, self.refused_port = free_port(), free_port(), free_port()
        self.cert, self.key = cert, key
        # Listening but never accepting: the kernel completes the handshake, nobody answers.
        self.hang = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.hang.bind(("127.0.0.1", 0))
        self.hang.listen(16)
        self.hang_port = self.hang.getsockname()[1]
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "fake internet did not start"

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.Response:
        reply = self.replies.get(request.path)
        if reply is None:
            return web.Response(status=404, text="not found")
        if "Authorization" in request.headers:
            self.authorization.append(request.headers["Authorization"])
        if reply.delay:
            await asyncio.sleep(reply.delay)
        return web.Response(status=reply.status, body=reply.body,
                            content_type=reply.content_type, headers=reply.headers)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        self.loop.run_until_complete(runner.setup())
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        for site in (web.TCPSite(runner, "127.0.0.1", self.port),
                     web.TCPSite(runner, "127.0.0.1", self.tls_port, ssl_context=context)):
            self.loop.run_until_complete(site.start())
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())
        # Handlers still sleeping (the slow page) end here, not as "Task was destroyed".
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.hang.close()


def many_components(count: int, outage_at: int) -> dict[str, Any]:
    """A Statuspage summary with `count` top-level components, one in major_outage."""
    doc = fixture("statuspage_summary_partial_outage.json")
    template = doc["components"][0]
    doc["components"] = [
        {**template, "id": f"cmp{i:010d}", "name": f"Component {i}", "position": i,
         "status": "major_outage" if i == outage_at else "operational"}
        for i in range(1, count + 1)]
    doc["status"] = {"indicator": "critical", "description": "Major System Outage"}
    return doc


@pytest.fixture(scope="module")
def internet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeInternet]:
    cert, key = make_certificate(tmp_path_factory.mktemp("tls"))
    fake = FakeInternet(cert, key)
    fake.replies.update({
        "/api/v2/summary.json": json_reply(fixture("statuspage_summary_partial_outage.json")),
        "/resend/api/v2/summary.json": json_reply(
            fixture("statuspage_status_maintenance.json")),
        "/stripe/current": json_reply(fixture("stripe_current.json")),
        "/app/api/health": json_reply(fixture("app_health_healthy.json")),
        "/big/summary.json": json_reply(many_components(8, outage_at=6)),
        "/web": Reply(204, content_type="text/plain"),
        "/page": Reply(200, b"<!doctype html><html><body>CRM</body></html>",
                       content_type="text/html"),
        "/junk": Reply(200, b"<html>We'll be right back</html>", content_type="text/html"),
        "/error": Reply(500, b'{"error": "internal"}'),
        "/slow": Reply(200, json.dumps(fixture("statuspage_status_maintenance.json")).encode(),
                       delay=30),
        "/private/summary.json": json_reply(fixture("statuspage_status_maintenance.json")),
        "/moved": Reply(301, headers={"Location": "/resend/api/v2/summary.json"}),
        # Same port, another host name: only the name differs, and that is enough.
        "/away": Reply(302, headers={
            "Location": f"http://localhost:{fake.port}/private/summary.json"}),
        "/loop": Reply(307, headers={"Location": "/loop"}),
    })
    yield fake
    fake.stop()


def probe_config(fake: FakeInternet, **extra: Any) -> dict[str, Any]:
    base = fake.url()
    return {
        "builtin_targets": False,
        "modules": {
            "statuspage_small": {"prober": "statuspage", "max_components": 3},
            "http_200": {"prober": "http", "valid_status_codes": [200]},
            "statuspage_ca": {"prober": "statuspage", "path": "/api/v2/summary.json",
                              "tls": {"ca_file": str(fake.cert)}},
        },
        "targets": {
            # A bare host: the module's path (/api/v2/summary.json) is added.
            "twilio": {"url": base, "module": "statuspage"},
            "resend": {"url": f"{base}/resend/api/v2/summary.json", "module": "statuspage"},
            "stripe": {"url": f"{base}/stripe/current", "module": "stripe_status"},
            "app": {"url": f"{base}/app/api/health", "module": "app_health"},
            "capped": {"url": f"{base}/big/summary.json", "module": "statuspage_small"},
            "picked": {"url": f"{base}/big/summary.json", "module": "statuspage",
                       "components": ["Component 7", "component 2"]},
            "web": {"url": f"{base}/web", "module": "http"},
            "web_strict": {"url": f"{base}/web", "module": "http_200"},
            "frontend": {"url": f"{base}/page", "module": "http"},
            "junk": {"url": f"{base}/junk", "module": "statuspage"},
            "error": {"url": f"{base}/error", "module": "statuspage"},
            "slow": {"url": f"{base}/slow", "module": "statuspage"},
            "hang": {"url": f"http://127.0.0.1:{fake.hang_port}/", "module": "http"},
            "refused": {"url": f"http://127.0.0.1:{fake.refused_port}/", "module": "http"},
            "tls": {"url": f"https://127.0.0.1:{fake.tls_port}", "module": "statuspage"},
            "tls_trusted": {"url": f"https://127.0.0.1:{fake.tls_port}",
                            "module": "statuspage_ca"},
            "private": {"url": f"{base}/private/summary.json", "module": "statuspage",
                        "bearer_token": TOKEN},
            "creds": {"url": f"http://probe:{URL_PASSWORD}@127.0.0.1:{fake.refused_port}/x",
                      "module": "statuspage"},
            "moved": {"url": f"{base}/moved", "module": "statuspage"},
            "away": {"url": f"{base}/away", "module": "statuspage", "bearer_token": TOKEN},
            "loop": {"url": f"{base}/loop", "module": "statuspage"},
        },
        **extra,
    }


@pytest.fixture(scope="module")
def exporter(internet: FakeInternet,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Exporter]:
    workdir = tmp_path_factory.mktemp("integrations")
    started = Exporter("integrations", probe_config(internet), workdir,
                       ["--log.level", "debug"])
    started.start()
    yield started
    started.stop()


def probe(exporter: Exporter, target: str, module: str = "") -> Samples:
    """Probe as Prometheus would: the scrape timeout header, and a client that gives up
    at that timeout, so a slow answer fails the test rather than passing late."""
    query = f"/probe?target={quote(target, safe='')}" + (f"&module={module}" if module else "")
    status, body, _ = exporter.get(
        query, headers={"X-Prometheus-Scrape-Timeout-Seconds": str(SCRAPE_TIMEOUT)},
        timeout=SCRAPE_TIMEOUT)
    assert status == 200, body
    return parse(body)


def one_hot(samples: Samples, name: str, label: str, **labels: str) -> str | None:
    """The label value set to 1 among the five statuses (or reasons); None when all are 0."""
    series = {dict(ls)[label]: v for (n, ls), v in samples.items()
              if n == name and all(dict(ls).get(k) == w for k, w in labels.items())}
    assert set(series.values()) <= {0, 1}, series
    hot = [k for k, v in series.items() if v == 1]
    assert len(hot) <= 1, series
    return hot[0] if hot else None


def components(samples: Samples) -> dict[str, str | None]:
    names = {dict(ls)["component"] for (n, ls), _ in samples.items()
             if n == "probe_component_status"}
    for name in names:
        assert {dict(ls)["status"] for (n, ls), _ in samples.items()
                if n == "probe_component_status" and dict(ls)["component"] == name} == set(
                    STATUSES)
    return {name: one_hot(samples, "probe_component_status", "status", component=name)
            for name in names}


# -- statuspage ------------------------------------------------------------------------


def test_statuspage_summary_sets_component_one_hots_and_overall_status_from_indicator(
        exporter: Exporter) -> None:
    samples = probe(exporter, "twilio")
    assert value(samples, "probe_success") == 1
    assert one_hot(samples, "probe_failure_reason", "reason") == "none"
    assert value(samples, "probe_http_status_code") == 200
    # indicator "major" -> partial_outage, though a maintenance is in progress too.
    assert one_hot(samples, "probe_status", "status") == "partial_outage"
    # Top-level components only: the group stands for its children.
    assert components(samples) == {
        "REST API": "operational",
        "Messaging": "partial_outage",
        "Voice": "maintenance",
        "Console": "degraded",
    }
    assert value(samples, "probe_components") == 6
    assert value(samples, "probe_incidents") == 1


def test_statuspage_none_indicator_with_maintenance_in_progress_is_maintenance(
        exporter: Exporter) -> None:
    samples = probe(exporter, "resend")
    assert value(samples, "probe_success") == 1
    assert one_hot(samples, "probe_status", "status") == "maintenance"
    assert components(samples) == {"Email API": "operational", "Dashboard": "maintenance"}
    assert value(samples, "probe_incidents") == 0


def test_components_beyond_the_cap_fold_into_other_with_their_worst_status(
        exporter: Exporter) -> None:
    samples = probe(exporter, "capped")
    assert one_hot(samples, "probe_status", "status") == "major_outage"
    assert components(samples) == {
        "Component 1": "operational", "Component 2": "operational",
        "Component 3": "operational", "other": "major_outage"}
    assert value(samples, "probe_components") == 8


def test_configured_component_names_pick_components_case_insensitively(
        exporter: Exporter) -> None:
    samples = probe(exporter, "picked")
    assert components(samples) == {"Component 7": "operational", "Component 2": "operational"}


# -- stripe, app health, plain http ----------------------------------------------------


def test_stripe_feed_maps_up_degraded_down(exporter: Exporter) -> None:
    samples = probe(exporter, "stripe")
    assert value(samples, "probe_success") == 1
    assert one_hot(samples, "probe_status", "status") == "degraded"
    assert components(samples) == {
        "api": "operational", "dashboard": "degraded", "stripejs": "operational",
        "checkoutjs": "operational", "webhooks": "operational", "emails": "major_outage"}


def test_app_health_degraded_is_up_and_unhealthy_503_is_read_and_down(
        internet: FakeInternet, exporter: Exporter) -> None:
    try:
        samples = probe(exporter, "app")
        assert value(samples, "probe_success") == 1
        assert one_hot(samples, "probe_status", "status") == "operational"
        assert components(samples) == {"database": "operational", "cache": "operational"}
        assert value(samples, "probe_component_latency_seconds", component="database") == 0.012

        internet.replies["/app/api/health"] = json_reply(fixture("app_health_degraded.json"))
        samples = probe(exporter, "app")
        assert value(samples, "probe_success") == 1
        assert one_hot(samples, "probe_failure_reason", "reason") == "none"
        assert one_hot(samples, "probe_status", "status") == "degraded"
        assert components(samples) == {"database": "operational", "cache": "degraded"}
        assert value(samples, "probe_component_latency_seconds", component="cache") == 0.95

        internet.replies["/app/api/health"] = json_reply(
            fixture("app_health_unhealthy.json"), status=503)
        samples = probe(exporter, "app")
        assert value(samples, "probe_success") == 0
        assert one_hot(samples, "probe_failure_reason", "reason") == "unhealthy"
        assert value(samples, "probe_http_status_code") == 503
        assert one_hot(samples, "probe_status", "status") == "major_outage"
        assert components(samples) == {"database": "major_outage", "cache": "operational"}
        # A failed check reports no latency: only the passing one has a series.
        assert [dict(ls)["component"] for (n, ls), _ in samples.items()
                if n == "probe_component_latency_seconds"] == ["cache"]

        # dirt-free-crm § System Health Check's liveness body.
        internet.replies["/app/api/health"] = json_reply({"status": "ok"})
        samples = probe(exporter, "app")
        assert value(samples, "probe_success") == 1
        assert one_hot(samples, "probe_status", "status") == "operational"
        assert components(samples) == {}
    finally:
        internet.replies["/app/api/health"] = json_reply(fixture("app_health_healthy.json"))


def test_http_module_accepts_any_2xx_unless_status_codes_are_listed(
        exporter: Exporter) -> None:
    samples = probe(exporter, "web")
    assert value(samples, "probe_success") == 1
    assert value(samples, "probe_http_status_code") == 204
    assert one_hot(samples, "probe_status", "status") == "operational"
    strict = probe(exporter, "web_strict")  # valid_status_codes: [200]
    assert value(strict, "probe_success") == 0
    assert one_hot(strict, "probe_failure_reason", "reason") == "http_status"
    assert one_hot(strict, "probe_status", "status") == "major_outage"
    # The module can be chosen per request: the app's URL probed as plain HTTP.
    assert value(probe(exporter, "app", module="http"), "probe_success") == 1


def test_a_frontend_page_is_probed_with_its_own_module_not_the_jobs(
        exporter: Exporter) -> None:
    """i. nova-crm's frontend probe sat in a job that asked for module=app_health: an HTML
    page read as health JSON failed for ever. The shipped job names no module now, so each
    target's own one applies."""
    assert value(probe(exporter, "frontend"), "probe_success") == 1
    forced = probe(exporter, "frontend", module="app_health")
    assert value(forced, "probe_success") == 0
    assert one_hot(forced, "probe_failure_reason", "reason") == "invalid_body"
    shipped = yaml.safe_load((Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
                              / "prometheus.yml").read_text())
    (job,) = [j for j in shipped["scrape_configs"] if j["job_name"] == "saasmon-app-probe"]
    assert "module" not in (job.get("params") or {}), job


# -- failures --------------------------------------------------------------------------


@pytest.mark.parametrize(("target", "reason", "code"), [
    ("junk", "invalid_body", 200),
    ("error", "http_status", 500),
    ("refused", "connection", 0),
    ("tls", "tls", 0),
    ("slow", "timeout", 0),
    ("hang", "timeout", 0),
])
def test_failed_probe_answers_200_in_time_with_reason_and_no_status(
        exporter: Exporter, target: str, reason: str, code: int) -> None:
    samples = probe(exporter, target)  # within SCRAPE_TIMEOUT, or the client gives up
    assert value(samples, "probe_success") == 0
    assert one_hot(samples, "probe_failure_reason", "reason") == reason
    assert value(samples, "probe_http_status_code") == code
    assert one_hot(samples, "probe_status", "status") is None  # all five 0: unknown
    assert components(samples) == {}
    assert value(samples, "probe_duration_seconds") < SCRAPE_TIMEOUT


def test_tls_target_succeeds_when_the_module_trusts_its_ca(exporter: Exporter) -> None:
    samples = probe(exporter, "tls_trusted")
    assert value(samples, "probe_success") == 1
    assert one_hot(samples, "probe_status", "status") == "partial_outage"


def test_tls_probe_reports_when_the_certificate_expires(
        exporter: Exporter, internet: FakeInternet) -> None:
    """blackbox_exporter's probe_http_ssl and probe_ssl_earliest_cert_expiry, so one rule
    on certificate expiry reads our probes and blackbox's alike (saas-ops-module's weekly
    certificate check)."""
    samples = probe(exporter, "tls_trusted")
    assert value(samples, "probe_http_ssl") == 1
    end = subprocess.run(["openssl", "x509", "-enddate", "-noout", "-in", str(internet.cert)],
                         check=True, capture_output=True, text=True, timeout=30).stdout
    assert value(samples, "probe_ssl_earliest_cert_expiry") == ssl.cert_time_to_seconds(
        end.strip().removeprefix("notAfter="))
    plain = probe(exporter, "twilio")
    assert value(plain, "probe_http_ssl") == 0
    assert not [k for k in plain if k[0] == "probe_ssl_earliest_cert_expiry"]


def test_redirects_are_followed_on_the_configured_host_only(
        exporter: Exporter, internet: FakeInternet) -> None:
    samples = probe(exporter, "moved")
    assert value(samples, "probe_success") == 1
    assert one_hot(samples, "probe_status", "status") == "maintenance"
    seen = len(internet.authorization)
    for target in ("away", "loop"):
        samples = probe(exporter, target)
        assert value(samples, "probe_success") == 0, target
        assert one_hot(samples, "probe_failure_reason", "reason") == "redirect", target
    # The bearer token went to the configured host, never to the one redirected to.
    assert internet.authorization[seen:] == [f"Bearer {TOKEN}"]


def test_unknown_module_or_target_is_a_400_with_one_line(
        internet: FakeInternet, exporter: Exporter) -> None:
    before = value(exporter.scrape(), "integration_probe_rejected_total")
    cases = {
        "/probe?target=nope": "unknown target 'nope' and no module given",
        "/probe?target=nope&module=http": "unknown target 'nope' (known: ",
        "/probe?target=twilio&module=nope": "unknown module 'nope' (known: ",
        "/probe?module=http": "target parameter is missing",
        f"/probe?module=http&target={quote(internet.url('/web'), safe='')}":
            "URL targets are disabled (allow_url_targets: false)",
    }
    for path, expected in cases.items():
        status, body, _ = exporter.get(path)
        assert status == 400, (path, body)
        assert body.startswith(expected), (path, body)
        assert body.count("\n") == 1, body
    assert value(exporter.scrape(), "integration_probe_rejected_total") == before + len(cases)


def test_probe_counters_count_each_probe_by_result_and_reason(exporter: Exporter) -> None:
    def count(samples: Samples, **labels: str) -> float:
        return total(samples, "integration_probes_total", **labels)

    before = exporter.scrape()
    for _ in range(3):
        probe(exporter, "resend")
    for _ in range(2):
        probe(exporter, "refused")
    after = exporter.scrape()
    assert count(after, target="resend", module="statuspage", result="success") - count(
        before, target="resend", module="statuspage", result="success") == 3
    assert count(after, target="refused", module="http", result="failure") - count(
        before, target="refused", module="http", result="failure") == 2
    assert total(after, "integration_probe_failures_total", target="refused",
                 reason="connection") - total(before, "integration_probe_failures_total",
                                              target="refused", reason="connection") == 2
    # Named targets have both results' series from the start: junk never succeeds.
    assert value(after, "integration_probes_total", target="junk", module="statuspage",
                 result="success") == 0


def test_url_targets_when_allowed_probe_any_http_url_behind_basic_auth(
        internet: FakeInternet, run_exporter: Run, tmp_path: Path) -> None:
    hashed = bcrypt.hashpw(b"probe-pass", bcrypt.gensalt(rounds=4)).decode()
    web_config = tmp_path / "web.yml"
    web_config.write_text(yaml.safe_dump({"basic_auth_users": {"prometheus": hashed}}))
    started = run_exporter("integrations", {"builtin_targets": False, "allow_url_targets": True},
                           extra_args=["--web.config.file", str(web_config)],
                           auth=("prometheus", "probe-pass"))
    samples = probe(started, internet.url(), module="statuspage")  # bare host: path added
    assert value(samples, "probe_success") == 1
    assert one_hot(samples, "probe_status", "status") == "partial_outage"
    metrics = started.scrape()
    assert value(metrics, "integration_probes_total", target="url", module="statuspage",
                 result="success") == 1
    status, body, _ = started.get(f"/probe?module=http&target={quote('ftp://x/y', safe='')}")
    assert (status, body) == (400, "unknown target (not an http or https URL) (known: none)\n")
    # /probe sits behind the same basic auth as /metrics.
    unauthenticated = urllib.request.Request(
        f"{started.url}/probe?module=http&target={quote(internet.url('/web'), safe='')}")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(unauthenticated, timeout=5)
    assert refused.value.code == 401
    # The refused request never reached the prober.
    assert total(started.scrape(), "integration_probes_total", module="http") == 0


def test_secrets_are_sent_but_never_shown(
        internet: FakeInternet, exporter: Exporter) -> None:
    internet.authorization.clear()
    assert value(probe(exporter, "private"), "probe_success") == 1
    assert internet.authorization == [f"Bearer {TOKEN}"]
    internet.replies["/private/summary.json"] = Reply(500, b"{}")
    try:
        assert value(probe(exporter, "private"), "probe_success") == 0  # logs a failure
    finally:
        internet.replies["/private/summary.json"] = json_reply(
            fixture("statuspage_status_maintenance.json"))
    creds = probe(exporter, "creds")
    assert one_hot(creds, "probe_failure_reason", "reason") == "connection"
    checked = run_cli("integrations", "--config.file", str(exporter.config_path),
                      "--config.check")
    assert checked.returncode == 0, checked.stderr
    assert "private (statuspage)" in checked.stdout
    _, probe_text, _ = exporter.get("/probe?target=private")
    assert '"probe failed"' in exporter.log()
    for where, text in [("metrics", exporter.scrape_text()), ("probe", probe_text),
                        ("log", exporter.log()), ("check", checked.stdout + checked.stderr)]:
        for secret in (TOKEN, URL_PASSWORD):
            assert secret not in text, f"secret leaked into the {where}"


def test_promtool_accepts_metrics_and_probe_output(exporter: Exporter) -> None:
    probe(exporter, "refused")
    texts = {"/metrics": exporter.scrape_text()}
    for target in ("twilio", "app", "stripe", "capped", "hang"):
        _, texts[target], _ = exporter.get(
            f"/probe?target={target}",
            headers={"X-Prometheus-Scrape-Timeout-Seconds": str(SCRAPE_TIMEOUT)})
    assert "integration_probes_total" in texts["/metrics"]
    assert "probe_component_latency_seconds" in texts["app"]
    for name, text in texts.items():
        promtool(text, name)


def promtool(text: str, name: str) -> None:
    checked = subprocess.run(["/usr/bin/promtool", "check", "metrics"], input=text,
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, f"{name}: {checked.stdout}{checked.stderr}"


# -- config errors ---------------------------------------------------------------------

SECRET = "Sup3r-Secret-Value-8"
T = "targets:\n  x:\n    url: https://status.example.test\n    module: statuspage\n"
CONFIG_CASES = [
    ("targetz: {}\n", "targetz: Extra inputs are not permitted"),
    ("allow_url_targets: maybe\n", "allow_url_targets: Input should be a valid boolean"),
    ("targets:\n  x: {url: 'ftp://h/', module: http}\n",
     "targets.x.url: Value error, must be an http:// or https:// URL with a host"),
    ("targets:\n  x: {url: 'https://h/', module: nope}\n",
     "targets.x.module: unknown module 'nope' (known: app_health, http, statuspage, "
     "stripe_status)"),
    ("targets:\n  Bad Name: {url: 'https://h/', module: http}\n",
     "targets.Bad Name.[key]: String should match pattern"),
    (T + "    bearer_tokn: x\n", "targets.x.bearer_tokn: Extra inputs are not permitted"),
    (T + "    bearer_token_file: /nonexistent/token\n",
     "bearer_token_file: cannot read file '/nonexistent/token'"),
    ("modules:\n  m: {prober: blackbox}\n", "modules.m.prober: Input should be 'statuspage'"),
    ("modules:\n  m: {prober: http, path: health}\n",
     "modules.m.path: Value error, must start with /"),
    ("modules:\n  m: {prober: http, timeout_seconds: 0}\n",
     "modules.m.timeout_seconds: Input should be greater than 0"),
    ("modules:\n  m: {prober: http, valid_status_codes: [700]}\n",
     "modules.m.valid_status_codes.0: Input should be less than or equal to 599"),
    ("modules:\n  m: {prober: statuspage, method: HEAD}\n",
     "modules.m: Value error, method HEAD has no body for the statuspage prober"),
    ("modules:\n  m: {prober: http, tls: {ca_file: /nonexistent/ca.pem}}\n",
     "modules.m.tls.ca_file: Value error, cannot load CA file '/nonexistent/ca.pem'"),
    (f"dsn: mysql://u:{SECRET}@h/db\n", "(top level): Value error, dsn must be a postgresql://"),
    (f"dsn: postgresql://u:{SECRET}@h:99999/db\n", "(top level): Value error, dsn has an "
                                                   "invalid port"),
    ("dsn_file: /nonexistent/dsn\n", "dsn_file: cannot read file '/nonexistent/dsn'"),
    (f"dsn: postgresql://u:{SECRET}@h/db\ncollectors:\n  paymentz: {{enabled: false}}\n",
     "collectors.paymentz: no such collector (known: message_deliveries, payments, "
     "webhook_events)"),
    (f"dsn: postgresql://u:{SECRET}@h/db\ntop_n_reasons: 0\n",
     "top_n_reasons: Input should be greater than or equal to 1"),
]


@pytest.mark.parametrize(("text", "expected"), CONFIG_CASES,
                         ids=[e.split(":")[0] for _, e in CONFIG_CASES])
def test_bad_config_is_one_line_naming_the_key(text: str, expected: str,
                                               tmp_path: Path) -> None:
    """In-process: the same loader the CLI runs, without a process start per case."""
    path = tmp_path / "config.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(IntegrationsConfig, str(path), "integrations")
    message = str(error.value)
    assert message.startswith(expected), message
    assert "\n" not in message
    assert SECRET not in message


@pytest.mark.parametrize("case", [0, 3, 13])
def test_bad_config_exits_2_with_one_line(case: int, tmp_path: Path) -> None:
    text, expected = CONFIG_CASES[case]
    path = tmp_path / "config.yml"
    path.write_text(text)
    result = run_cli("integrations", "--config.check", "--config.file", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"saasmon integrations: {expected}"), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stderr + result.stdout


def test_default_config_has_the_vendor_status_pages(tmp_path: Path) -> None:
    result = run_cli("integrations", "--config.check")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "integrations: config ok: 4 module(s), 5 target(s) [resend (statuspage), "
        "sentry (statuspage), stripe (stripe_status), supabase (statuspage), "
        "twilio (statuspage)], url targets off")


# -- database --------------------------------------------------------------------------


def db_dsn(server: PostgresServer) -> str:
    # Trust auth ignores the password: it is here to prove it never shows.
    return f"postgresql://postgres:{DB_PASSWORD}@127.0.0.1:{server.port}/postgres"


def prepare(server: PostgresServer) -> None:
    server.psql(schema_sql())
    server.psql("INSERT INTO users (email) VALUES ('owner@example.test');"
                "INSERT INTO subscriptions (user_id, plan, mrr_sar) VALUES (1, 'pro', 99)")


def payments(*rows: tuple[str, str | None]) -> str:
    values = ", ".join(f"(1, 99, '{s}', {repr(r) if r else 'NULL'})" for s, r in rows)
    return f"INSERT INTO payments (subscription_id, amount_sar, status, failure_reason) " \
           f"VALUES {values};"


def deliveries(*rows: tuple[str, str, str], age: str = "10 minutes") -> str:
    """Rows `age` old: past the 5-minute settle time message deliveries wait by default."""
    values = ", ".join(f"('{c}', '{p}', '{s}', now() - interval '{age}')" for c, p, s in rows)
    return (f"INSERT INTO message_deliveries (channel, provider, status, created_at) "
            f"VALUES {values};")


def webhooks(*rows: tuple[str, str]) -> str:
    values = ", ".join(f"('{p}', 'event', '{s}')" for p, s in rows)
    return f"INSERT INTO webhook_events (provider, event_type, status) VALUES {values};"


def db_config(server: PostgresServer, **extra: Any) -> dict[str, Any]:
    return {"builtin_targets": False, "dsn": db_dsn(server), "interval_seconds": 0.3,
            "timeout_seconds": 2, **extra}


def counted(samples: Samples, name: str) -> dict[tuple[str, ...], float]:
    return {tuple(v for _, v in ls): val for (n, ls), val in samples.items() if n == name}


def test_database_counts_exact_failures_inserted_after_start(
        postgres: PostgresServer, run_exporter: Run) -> None:
    prepare(postgres)
    # Before the start: not counted, but their reasons and providers get 0 series at once.
    postgres.psql(payments(("failed", "expired_card"), ("succeeded", None))
                  + deliveries(("sms", "twilio", "delivered"))
                  + webhooks(("stripe", "processed")))
    exporter = run_exporter("integrations", db_config(postgres, top_n_reasons=2),
                            extra_args=["--log.level", "debug"])
    start = exporter.wait_until("first round", lambda s: value(
        s, "integration_up", target="database") == 1 and counted(
            s, "integration_payments_total"))
    assert counted(start, "integration_payments_total") == {
        ("failed",): 0, ("refunded",): 0, ("succeeded",): 0}
    assert counted(start, "integration_payment_failures_total") == {
        ("expired_card",): 0, ("other",): 0}
    assert counted(start, "integration_message_deliveries_total") == {
        ("sms", "twilio", s): 0 for s in ("queued", "sent", "delivered", "failed")}
    assert counted(start, "integration_webhook_events_total") == {
        ("stripe", "failed"): 0, ("stripe", "processed"): 0}

    # In insert order: card_declined takes the second reason slot, the rest fold to other.
    postgres.psql(
        payments(*[("failed", "card_declined")] * 3, *[("failed", "insufficient_funds")] * 2,
                 ("failed", None), ("failed", "expired_card"), *[("succeeded", None)] * 4,
                 ("refunded", None))
        + deliveries(*[("sms", "twilio", "failed")] * 2, *[("sms", "twilio", "delivered")] * 3,
                     ("email", "resend", "failed"), ("email", "Resend", "sent"))
        # Still in flight: its status may yet change, so it is not counted yet.
        + deliveries(("sms", "twilio", "queued"), age="0 seconds")
        + webhooks(*[("stripe", "failed")] * 2, ("stripe", "processed"), ("twilio", "failed")))
    samples = exporter.wait_until("every insert counted", lambda s: total(
        s, "integration_rows_read_total") == 12 + 7 + 4)
    assert counted(samples, "integration_payments_total") == {
        ("failed",): 7, ("refunded",): 1, ("succeeded",): 4}
    assert counted(samples, "integration_payment_failures_total") == {
        ("expired_card",): 1, ("card_declined",): 3, ("other",): 3}
    # Declines are the customer's card, even folded into "other" (insufficient_funds); a
    # failure without a reason is not known to be one, so it counts as an error (pages).
    assert value(start, "integration_payment_errors_total") == 0
    assert value(samples, "integration_payment_errors_total") == 1
    assert counted(samples, "integration_message_deliveries_total") == {
        ("sms", "twilio", "queued"): 0, ("sms", "twilio", "sent"): 0,
        ("sms", "twilio", "delivered"): 3, ("sms", "twilio", "failed"): 2,
        ("email", "resend", "queued"): 0, ("email", "resend", "sent"): 1,
        ("email", "resend", "delivered"): 0, ("email", "resend", "failed"): 1}
    assert counted(samples, "integration_webhook_events_total") == {
        ("stripe", "failed"): 2, ("stripe", "processed"): 1,
        ("twilio", "failed"): 1, ("twilio", "processed"): 0}
    assert value(samples, "integration_rows_read_total", table="payments") == 12
    text = exporter.scrape_text()
    promtool(text, "/metrics with database counters")
    for shown in (text, exporter.log()):
        assert DB_PASSWORD not in shown


def test_killed_database_reports_up_0_and_recovers_counting_on(
        postgres: PostgresServer, run_exporter: Run) -> None:
    prepare(postgres)
    exporter = run_exporter("integrations", db_config(postgres))
    postgres.psql(payments(("failed", "card_declined")))
    exporter.wait_until("one failure", lambda s: value(
        s, "integration_payments_total", status="failed") == 1)

    postgres.kill()
    down = exporter.wait_until("integration_up 0", lambda s: value(
        s, "integration_up", target="database") == 0, timeout=15)
    assert total(down, "integration_exporter_collector_errors_total",
                 collector="payments", reason="connection") >= 1
    # Probes do not depend on the database.
    status, _, _ = exporter.get("/probe?target=nope")
    assert status == 400

    postgres.start()
    exporter.wait_until("integration_up 1 after restart", lambda s: value(
        s, "integration_up", target="database") == 1, timeout=30)
    postgres.psql(payments(("failed", "card_declined"), ("failed", "card_declined")))
    back = exporter.wait_until("the new failures counted on", lambda s: value(
        s, "integration_payments_total", status="failed") == 3, timeout=15)
    assert value(back, "integration_payment_failures_total", reason="card_declined") == 3
    assert exporter.proc is not None and exporter.proc.poll() is None
    assert '"collector recovered"' in exporter.log()


def test_delivery_updated_in_place_is_counted_with_its_settled_status(
        postgres: PostgresServer, run_exporter: Run) -> None:
    prepare(postgres)
    exporter = run_exporter("integrations", db_config(
        postgres, collectors={"message_deliveries": {"settle_seconds": 2}}))
    exporter.wait_until("first round", lambda s: value(s, "integration_up", target="database"))
    # The app queues the message, the provider's callback marks it failed moments later.
    postgres.psql(deliveries(("sms", "twilio", "queued"), age="0 seconds"))
    postgres.psql("UPDATE message_deliveries SET status = 'failed'")
    samples = exporter.wait_until("the delivery counted", lambda s: total(
        s, "integration_rows_read_total", table="message_deliveries") == 1)
    assert counted(samples, "integration_message_deliveries_total") == {
        ("sms", "twilio", "queued"): 0, ("sms", "twilio", "sent"): 0,
        ("sms", "twilio", "delivered"): 0, ("sms", "twilio", "failed"): 1}


def test_fixture_files_keep_the_public_formats() -> None:
    """The samples carry the fields the parsers rely on, as the public formats have them."""
    summary = fixture("statuspage_summary_partial_outage.json")
    assert set(summary) == {"page", "components", "incidents", "scheduled_maintenances",
                            "status"}
    assert {c["status"] for c in summary["components"]} <= {
        "operational", "degraded_performance", "partial_outage", "major_outage",
        "under_maintenance"}
    stripe = fixture("stripe_current.json")
    assert set(stripe["statuses"].values()) <= {"up", "degraded", "down"}
    for name in ("healthy", "degraded", "unhealthy"):
        health = fixture(f"app_health_{name}.json")
        assert health["status"] == name
        assert set(health) == {"status", "timestamp", "version", "checks"}
