"""Every metric our exporters export, read from a live run against private servers.

The dead-alert test compares the rules with this, so a renamed metric fails the rules'
tests instead of silently muting an alert. Exporters are started as real processes and
scraped after their first round.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack.exporter import Exporter
from devstack.process import Process
from devstack.servers import PostgresServer, RedisServer, free_port
from refapp.schema import schema_sql

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "integrations"
ORIGIN = "https://app.example.com"


def send_beacons(exporter: Exporter) -> None:
    """One report per Web Vitals metric, as the browser library sends them."""
    values = {"FCP": 1200, "LCP": 2100, "FID": 40, "INP": 150, "TTFB": 300, "CLS": 0.05}
    body = json.dumps([{"name": n, "value": v, "id": f"v1-{n}", "route": "/"}
                       for n, v in values.items()]).encode()
    request = urllib.request.Request(exporter.url + "/beacon", data=body, method="POST",
                                     headers={"Content-Type": "text/plain", "Origin": ORIGIN})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204, response.status


class _StatusPage(http.server.BaseHTTPRequestHandler):
    """Serves a recorded-format Statuspage summary, so /probe output can be read."""

    def do_GET(self) -> None:
        body = (FIXTURES / "statuspage_summary_partial_outage.json").read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def sample_types(text: str) -> dict[str, str]:
    """Sample name (with _total/_bucket/... suffixes) -> the family's type."""
    out: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        out[family.name] = family.type
        if family.type == "counter":
            out[family.name + "_total"] = "counter"
        if family.type in ("histogram", "summary"):
            for suffix in ("_bucket", "_sum", "_count"):
                out[family.name + suffix] = family.type
        for sample in family.samples:
            out.setdefault(sample.name, family.type)
    return out


@pytest.fixture(scope="module")
def live_metrics() -> Iterator[dict[str, str]]:
    base = Path(tempfile.mkdtemp(prefix="saasmon-live-"))
    base.chmod(0o755)
    pg = PostgresServer(base / "pg", max_connections=30)
    pg.start()
    # A streaming standby too: replication lag metrics only exist on a standby.
    standby = PostgresServer(base / "standby")
    standby.init_replica_of(pg)
    standby.start()
    # maxmemory set: the used/max ratio only exists when there is a max.
    redis = RedisServer(base / "redis", extra_args=["--maxmemory", "64mb"])
    redis.start()
    started: list[Exporter] = []
    status_page = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _StatusPage)
    threading.Thread(target=status_page.serve_forever, daemon=True).start()
    try:
        pg.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        pg.psql(schema_sql())
        # A couple of weeks of generated app data, so business KPIs have values.
        subprocess.run([sys.executable, "-m", "refapp.datagen", "--dsn", pg.dsn, "--days", "14"],
                       check=True, capture_output=True, timeout=120)
        # One finished run per default job so every per-job series exists.
        pg.psql("INSERT INTO cron_job_logs (job_name, started_at, completed_at, status) "
                "SELECT name, now() - interval '2 minutes', now() - interval '1 minute', 'success' "
                "FROM unnest(ARRAY['process-opportunity-offers', 'process-promotion-deliveries', "
                "'send-review-requests', 'check-system-health', 'generate-scheduled-reports']) AS name")
        configs: list[tuple[str, dict[str, object]]] = [
            # allocated_storage_bytes is opt-in; set, it exports what PostgresStorageHigh reads.
            ("postgres", {"dsn": pg.dsn, "interval_seconds": 1,
                          "allocated_storage_bytes": 10 * 1024**3}),
            ("postgres", {"dsn": standby.dsn, "interval_seconds": 1}),
            ("redis", {"targets": [{"name": "main", "url": redis.url}], "interval_seconds": 1,
                       "key_patterns": [{"pattern": "library:item:*"}]}),
            # expected_jobs is opt-in; set, it exports the gauge CronRegistryIncomplete reads.
            ("cron", {"dsn": pg.dsn, "interval_seconds": 1, "expected_jobs": 18}),
            ("integrations", {"dsn": pg.dsn, "interval_seconds": 1, "builtin_targets": False,
                              "targets": {"vendor": {
                                  "url": f"http://127.0.0.1:{status_page.server_port}",
                                  "module": "statuspage"}}}),
            ("business", {"dsn": pg.dsn}),
            ("webvitals", {"allowed_origins": [ORIGIN]}),
            ("sms-relay", {"twilio": {"account_sid": "AC" + "0" * 32, "auth_token": "x" * 32,
                                      "from_number": "+15005550006"},
                           "recipients": ["+15005550001"]}),
        ]
        types: dict[str, str] = {}
        for kind, config in configs:
            exporter = Exporter(kind, config, base)
            started.append(exporter)
            exporter.start()
            types.update(sample_types(exporter.scrape_text()))
            if kind == "webvitals":
                send_beacons(exporter)
                types.update(sample_types(exporter.scrape_text()))
            if kind == "integrations":
                status, body, _ = exporter.get("/probe?target=vendor")
                assert status == 200, body
                types.update(sample_types(body))
        types.update(app_metrics(pg.dsn, redis.url, base))
        yield types
    finally:
        status_page.shutdown()
        for exporter in started:
            exporter.stop()
        redis.kill()
        standby.stop("immediate")
        pg.stop("immediate")
        subprocess.run(["rm", "-rf", str(base)], check=False)


def app_metrics(dsn: str, redis_url: str, base: Path) -> dict[str, str]:
    """The reference app's own /metrics (middleware, realtime, health) after some traffic."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = Process("refapp", [sys.executable, "-m", "refapp", "--listen", f"127.0.0.1:{port}",
                             "--dsn", dsn, "--redis-url", redis_url], base / "refapp.log").start()
    try:
        app.wait_http(url + "/health/live", timeout=30)
        # Traffic through the load generator: HTTP routes and a websocket client.
        subprocess.run([sys.executable, "-m", "refapp.load", "--url", url, "--rps", "20",
                        "--duration", "3", "--ws-clients", "1"],
                       check=True, capture_output=True, timeout=60)
        with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
            return sample_types(response.read().decode())
    finally:
        app.stop()
