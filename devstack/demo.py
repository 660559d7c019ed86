"""`make demo`: the reference app, its load and every exporter, scraped by a real Prometheus
that alerts through a real Alertmanager to stand-in receivers (the whole dev stack;
scripts/demo.py is its command line).

Pieces: private PostgreSQL (reference schema plus 45 days of generated data) and Redis;
the reference CRM app with a load generator (HTTP, websockets, Web Vitals beacons) and a
cron runner writing cron_job_logs on an accelerated clock; the postgres (primary and
standby), redis, cron, integrations (app health and a local status-page stand-in), business
and webvitals exporters and the SMS relay, all in one `saasmon bundle` process, each on its
own port; node_exporter and blackbox_exporter (probing an object-storage stand-in);
the stand-in receivers (refapp/receivers.py: Slack, PagerDuty, Twilio, heartbeat, SMTP with
STARTTLS) and Alertmanager with the shipped routing and templates
(refapp/standin_alertmanager.py swaps only addresses and the secrets directory);
Prometheus with the generated recording and alert rules, started on top of a SYNTHETIC
8-day history of the app's request counters (refapp/history.py) so week-over-week panels
and the traffic-baseline alert have a last week to compare with.

Everything runs from one run directory (`.run/demo` unless --run-dir says otherwise),
recreated on each start so a previous, maybe crashed, demo never leaks state into this
one. Startup registers a stop action for each piece right after starting it, so a
failure halfway, Ctrl-C or SIGTERM still stop everything that was already running.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import asyncpg
import redis.asyncio as aioredis
import yaml

from devstack import scrape
from devstack.alertmanager import ALERTMANAGER, alertmanager_argv
from devstack.process import Process, ProcessError, http_ok, stop_all
from devstack.prometheus import PROMETHEUS
from devstack.prometheus import prometheus_argv as prometheus_base_argv
from devstack.servers import PostgresServer, RedisServer, free_port
from refapp import history
from refapp.receivers import make_certificate
from refapp.schema import schema_sql
from refapp.standin_alertmanager import (
    standin_secrets,
    standin_swaps,
    write_config,
    write_secrets,
)
from saasmon.cron.config import default_jobs

REPO = Path(__file__).resolve().parent.parent
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
BLACKBOX_EXPORTER = "/usr/bin/prometheus-blackbox-exporter"
BINARIES = {PROMETHEUS: "prometheus", ALERTMANAGER: "prometheus-alertmanager",
            NODE_EXPORTER: "prometheus-node-exporter",
            BLACKBOX_EXPORTER: "prometheus-blackbox-exporter", history.PROMTOOL: "prometheus"}
SCRAPE_INTERVAL = "15s"
# Job names are the mixin's (devstack/scrape.py), so every generated alert reads the demo's
# series, as it reads compose's (deploy/prometheus/prometheus.yml).
WARM_LIBRARY_ITEMS = 150
# Providers the generated data receives webhooks from; the demo's workload keeps them coming.
WEBHOOK_PROVIDERS = ("stripe", "twilio", "resend")
# The volume size the demo's PostgreSQL exporters are told (PostgreSQL cannot read it).
DEMO_STORAGE_BYTES = 20 * 1024**3
# Blackbox modules shared with the compose stack (http_2xx for the storage probe).
BLACKBOX_CONFIG = REPO / "deploy" / "blackbox" / "blackbox.yml"
# A handful of collectors: what the host alerts and the database board read, nothing more.
NODE_COLLECTORS = ("cpu", "meminfo", "diskstats", "filesystem", "netdev", "netclass", "loadavg",
                   "vmstat")  # vmstat: oom_kill (HostOomKills)
# Above nova-crm's ApiThroughputLow level (500 requests a minute): a healthy demo.
LOAD_RPS = 12
# estimate-library's two daily scripts reach the cron exporter as heartbeat jobs (its
# catalog rules say how to register them); the demo pings each once at start, as if their
# last run had just passed. The security scan runs at 02:00 (catalog); the optimisation's
# time is not stated, 03:00 is ours.
HEARTBEAT_JOBS = [
    {"name": "security-scan", "schedule": "0 2 * * *", "source": "heartbeat"},
    {"name": "database-optimization", "schedule": "0 3 * * *", "source": "heartbeat"},
]
HISTORY_DAYS = 8.0
# Twilio's documented test SID shape and magic "from" number; the on-call numbers are
# placeholders: the Twilio stand-in receives every text.
TWILIO_SID = "AC" + "0123456789abcdef" * 2
SMS_FROM, SMS_ONCALL = "+15005550006", "+15551230001"
# Pages of the reference app the load generator reports Web Vitals for.
WEBVITALS_ROUTES = [{"name": "/", "glob": "/"}, {"name": "/customers", "glob": "/customers"},
                    {"name": "/customers/:id", "glob": "/customers/*"},
                    {"name": "/properties", "glob": "/properties"},
                    {"name": "/smart-matches", "glob": "/smart-matches"},
                    {"name": "/assistant", "glob": "/assistant"}]
# A status page in Statuspage v2 form, all operational: the stand-in for a vendor (no
# internet here); point `targets` at the real status pages in production.
STATUS_PAGE = {
    "page": {"id": "demo", "name": "Vendor (stand-in)", "url": "http://127.0.0.1"},
    "status": {"indicator": "none", "description": "All Systems Operational"},
    "components": [{"id": "api", "name": "API", "status": "operational", "group": False},
                   {"id": "sms", "name": "SMS", "status": "operational", "group": False}],
    "incidents": [], "scheduled_maintenances": [],
}
READY_TIMEOUT = 60.0


class StartupError(Exception):
    """A piece of the demo did not come up; the message says which and where its log is."""


class Interrupted(BaseException):
    """SIGTERM during the synchronous startup/shutdown, handled like Ctrl-C."""


def say(message: str = "") -> None:
    # stdout is a pipe under `make`/tests: flush so progress and URLs appear immediately.
    print(message, flush=True)


def spawn(name: str, argv: list[str], logs: Path, env: dict[str, str] | None = None) -> Process:
    """A started child of the demo, its output in logs/<name>.log; stopped by stop_all in
    reverse start order (Prometheus first, then exporters, then the watched servers)."""
    return Process(name, argv, logs / f"{name}.log", env or {}, cwd=REPO).start()


def wait_ready(child: Process, url: str, timeout: float = READY_TIMEOUT) -> None:
    child.wait_http(url, timeout)


def bundle_argv(bundle: Path) -> list[str]:
    # `-m saasmon` runs the package of this very interpreter (the venv's), whether or not
    # the `saasmon` console script is on PATH.
    return [sys.executable, "-m", "saasmon", "bundle", "--config.file", str(bundle)]


def exporter_configs(monitor_dsn: str, standby_dsn: str, redis_url: str, app_url: str,
                     statuspage_url: str) -> dict[str, dict[str, Any]]:
    """The demo's exporter configs by bundle entry name (the SMS relay's comes apart)."""
    return {
        "postgres": {"dsn": monitor_dsn, "interval_seconds": 5, "timeout_seconds": 5, "top_n": 20,
                     "allocated_storage_bytes": DEMO_STORAGE_BYTES},
        # The same exporter for the standby: a second instance of the postgres job.
        "postgres-standby": {
            "dsn": standby_dsn,
            "interval_seconds": 5, "timeout_seconds": 5, "top_n": 20,
            "allocated_storage_bytes": DEMO_STORAGE_BYTES},
        "redis": {"targets": [{"name": "demo", "url": redis_url}],
                  "interval_seconds": 5, "timeout_seconds": 5,
                  "key_patterns": [{"pattern": "library:item:*"}],
                  # The workload warms the items after the exporter's first scan.
                  "key_patterns_interval_seconds": 30},
        # expected_jobs: the demo's app runs exactly these jobs, so its registry is complete
        # (CronRegistryIncomplete and its panels have a count to compare with).
        "cron": {"dsn": monitor_dsn, "interval_seconds": 5,
                 "jobs": [*(job.model_dump() for job in default_jobs()), *HEARTBEAT_JOBS],
                 "expected_jobs": len(default_jobs()) + len(HEARTBEAT_JOBS)},
        "integrations": {
            "dsn": monitor_dsn, "interval_seconds": 5, "builtin_targets": False,
            "targets": {"app": {"url": app_url, "module": "app_health"},
                        # nova-crm § 5.1's smoke test of the frontend URL: a page, not JSON.
                        "frontend": {"url": app_url + "/", "module": "http"},
                        "vendor": {"url": statuspage_url, "module": "statuspage"},
                        # Our own status page (the same stand-in): no incident open, so
                        # StatusPageNotUpdated has a page to read.
                        "status-page": {"url": statuspage_url, "module": "statuspage"},
                        # A deliberate fault: this vendor's status page is gone (404), so
                        # the probe-failure panels have a failing target to show.
                        "retired-vendor": {"url": statuspage_url + "/retired",
                                           "module": "statuspage"}}},
        "business": {"dsn": monitor_dsn},
        "webvitals": {"allowed_origins": [app_url], "routes": WEBVITALS_ROUTES},
    }


def write_bundle(run_dir: Path, configs: dict[str, dict[str, Any]],
                 ports: dict[str, int]) -> tuple[Path, list[str]]:
    """Every exporter's config file and the bundle file that runs them all in one process
    (saasmon bundle), each on its own port; returns the bundle file and the addresses.

    One Python interpreter and one set of libraries instead of eight processes: an idle
    exporter is mostly its imports (bench/RSS.md)."""
    entries: dict[str, dict[str, Any]] = {}
    for name, config in configs.items():
        path = run_dir / f"{name}-exporter.yml"
        write_yaml(path, config)
        entries[name] = {
            # postgres-standby: a second postgres exporter, under its own name.
            "exporter": name.removesuffix("-standby"), "config.file": str(path),
            "web.listen-address": f"127.0.0.1:{ports[name.replace('sms-relay', 'smsrelay')]}"}
    bundle = run_dir / "exporters.yml"
    write_yaml(bundle, {"exporters": entries})
    return bundle, [entry["web.listen-address"] for entry in entries.values()]


def write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def storage_url(ports: dict[str, int]) -> str:
    # The status-page stand-in's web server also plays object storage (a health object):
    # one process fewer, and blackbox only needs some loopback URL answering 2xx.
    return f"http://127.0.0.1:{ports['statuspage']}/object-storage/healthz"


def prometheus_config(ports: dict[str, int]) -> dict[str, Any]:
    def at(name: str) -> list[str]:
        return [f"127.0.0.1:{ports[name]}"]

    integrations = at("integrations")[0]
    scrape_configs = scrape.scrape_configs({
        "app": at("app"), "postgres": [*at("postgres"), *at("postgres-standby")],
        "redis": at("redis"), "cron": at("cron"), "integrations": at("integrations"),
        "business": at("business"), "webvitals": at("webvitals"), "node": at("node"),
        "smsRelay": at("smsrelay"), "alertmanager": at("alertmanager"),
        "prometheus": at("prometheus"),
    }, {
        # Each named target with its own module: the API health JSON and the HTML page.
        "appProbe": (integrations, ["app", "frontend"]),
        "integrationProbe": (integrations, ["vendor", "retired-vendor",
                                            scrape.status_page_target()]),
        "storageProbe": (at("blackbox")[0], [storage_url(ports)]),
    })
    # The bundle's generated rules, so the demo also shows alerts pending and firing.
    generated = REPO / "alert_rules" / "generated"
    return scrape.prometheus_config(
        scrape_configs, SCRAPE_INTERVAL, at("alertmanager"),
        [generated / "saasmon-rules.yaml", generated / "saasmon-alerts.yaml"])


def free_ports() -> dict[str, int]:
    """A free loopback port for every listener of the demo, by name."""
    return {name: free_port() for name in (
        "postgres", "postgres-standby", "redis", "cron", "integrations", "business",
        "webvitals", "app", "statuspage", "prometheus", "alertmanager", "receivers", "smtp",
        "smsrelay", "node", "blackbox")}


def prometheus_argv(config: Path, storage: Path, port: int) -> list[str]:
    return prometheus_base_argv(
        config, storage, port,
        # The first evaluation may run before the notifier knows the Alertmanager: its
        # alerts are dropped and sent again only after this delay (default 1m).
        f"--rules.alert.resend-delay={SCRAPE_INTERVAL}",
        # The console templates live in /etc/prometheus on Debian; without these flags the
        # UI's /consoles links point nowhere. Harmless when the directories are missing.
        "--web.console.templates=/etc/prometheus/consoles",
        "--web.console.libraries=/etc/prometheus/console_libraries")


@dataclass
class Demo:
    postgres: PostgresServer
    redis: RedisServer
    children: list[Process]
    urls: dict[str, str]
    commands: list[str]


def prepare_run_dir(run_dir: Path) -> None:
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    # As root, devstack.servers runs PostgreSQL as user `postgres`, which must be able to
    # traverse into the run directory.
    run_dir.chmod(0o755)


def start_child(stack: contextlib.ExitStack, children: list[Process], name: str,
                argv: list[str], logs: Path, ready_url: str | None,
                env: dict[str, str] | None = None) -> Process:
    child = spawn(name, argv, logs, env)
    children.append(child)  # stopped by stop_all, registered before the first child
    if ready_url is not None:
        wait_ready(child, ready_url)
    return child


def start_postgres(stack: contextlib.ExitStack, run_dir: Path) -> PostgresServer:
    say("starting PostgreSQL ...")
    postgres = PostgresServer(run_dir / "postgres")
    # Register the stop before starting: pg_ctl may leave a running postmaster even when it
    # reports a failure (e.g. its wait timed out), and stop() is harmless if none runs.
    stack.callback(postgres.stop)
    try:
        postgres.start()
    except subprocess.CalledProcessError as exc:
        raise StartupError(f"PostgreSQL did not start: {exc.stderr or exc.stdout}") from None
    postgres.psql(
        "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;"
        "CREATE TABLE demo_orders (id bigserial PRIMARY KEY, customer int NOT NULL,"
        " amount numeric(10,2) NOT NULL, created_at timestamptz NOT NULL DEFAULT now());"
        "INSERT INTO demo_orders (customer, amount)"
        " SELECT g % 500, (g % 97) + 0.99 FROM generate_series(1, 5000) g;"
        "CREATE INDEX demo_orders_customer ON demo_orders (customer);"
        # The exporters log in with only pg_monitor (plus SELECT on the app's tables for
        # the app-side exporters), as recommended for production.
        "CREATE ROLE saasmon LOGIN; GRANT pg_monitor TO saasmon;"
    )
    # 45 days (datagen's default): day-30 retention and churn need 38 days of sign-ups.
    say("loading the reference schema and 45 days of generated data ...")
    postgres.psql(schema_sql())
    subprocess.run([sys.executable, "-m", "refapp.datagen", "--dsn", postgres.dsn, "--days", "45"],
                   check=True, capture_output=True, text=True, cwd=REPO)
    # The bulk load is no application traffic: its statements would count as slow ones.
    postgres.psql("GRANT SELECT ON ALL TABLES IN SCHEMA public TO saasmon;"
                  "SELECT pg_stat_statements_reset();")
    return postgres


def start_standby(stack: contextlib.ExitStack, run_dir: Path,
                  primary: PostgresServer) -> PostgresServer:
    """A streaming standby of the primary, so replication lag has a real source."""
    say("starting a PostgreSQL standby (pg_basebackup) ...")
    standby = PostgresServer(run_dir / "standby", max_connections=20)
    stack.callback(standby.stop)
    # pg_basebackup asks for a spread checkpoint; with the generated data still dirty that
    # takes about a minute. Written out first, there is next to nothing left to spread.
    primary.psql("CHECKPOINT")
    try:
        standby.init_replica_of(primary)
        standby.start()
    except subprocess.CalledProcessError as exc:
        raise StartupError(f"the standby did not start: {exc.stderr or exc.stdout}") from None
    return standby


def relay_config(secrets_dir: Path, receivers_url: str) -> dict[str, Any]:
    """The SMS relay's config: Twilio and the heartbeat on the stand-in receivers."""
    return {
        "twilio": {"account_sid": TWILIO_SID,
                   "auth_token_file": str(secrets_dir / "twilio_auth_token"),
                   "from_number": SMS_FROM, "api_url": receivers_url + "/twilio"},
        "recipients": [SMS_ONCALL],
        "bearer_token_file": str(secrets_dir / "smsrelay_token"),
        "heartbeat": {"url_file": str(secrets_dir / "heartbeat_url")},
    }


def start_alerting(stack: contextlib.ExitStack, children: list[Process], run_dir: Path,
                   ports: dict[str, int], secrets_dir: Path) -> None:
    """Stand-in receivers and Alertmanager with the shipped routing (the SMS relay runs
    in the exporters' bundle)."""
    logs = run_dir / "logs"
    receivers_url = f"http://127.0.0.1:{ports['receivers']}"
    tls = run_dir / "tls"
    tls.mkdir()
    cert, key = make_certificate(tls)
    say("starting the stand-in receivers (Slack, PagerDuty, Twilio, heartbeat, SMTP) ...")
    start_child(stack, children, "receivers", [
        sys.executable, "-m", "refapp.receivers", "--listen", f"127.0.0.1:{ports['receivers']}",
        "--smtp-listen", f"127.0.0.1:{ports['smtp']}", "--tls-cert", str(cert),
        "--tls-key", str(key)], logs, receivers_url + "/-/healthy")

    say("starting Alertmanager ...")
    am_dir = run_dir / "alertmanager"
    config = write_alertmanager_config(am_dir, secrets_dir, ports)
    start_child(stack, children, "alertmanager",
                alertmanager_argv(config, am_dir / "data", ports["alertmanager"]),
                logs, f"http://127.0.0.1:{ports['alertmanager']}/-/ready",
                # Go trusts the SMTP stand-in's self-signed certificate (STARTTLS) through this.
                env={"SSL_CERT_FILE": str(cert)})


def write_demo_secrets(secrets_dir: Path, receivers_url: str) -> Path:
    """Secret files as in production, with throwaway values: Slack URLs on the stand-in."""
    values = standin_secrets(receivers_url)
    values["twilio_auth_token"] = "demo-" + os.urandom(12).hex()
    values["heartbeat_url"] = receivers_url + "/heartbeat"
    write_secrets(secrets_dir, values)
    return secrets_dir


def write_alertmanager_config(am_dir: Path, secrets_dir: Path, ports: dict[str, int]) -> Path:
    """The shipped routing and templates, addresses swapped for the demo's stand-ins."""
    return write_config(am_dir, standin_swaps(
        secrets_dir, f"127.0.0.1:{ports['smsrelay']}", f"http://127.0.0.1:{ports['receivers']}",
        f"127.0.0.1:{ports['smtp']}"))


def start_host_probes(stack: contextlib.ExitStack, children: list[Process], logs: Path,
                      ports: dict[str, int]) -> None:
    say("starting node_exporter and blackbox_exporter ...")
    start_child(stack, children, "node-exporter", [
        NODE_EXPORTER, f"--web.listen-address=127.0.0.1:{ports['node']}",
        "--collector.disable-defaults", *(f"--collector.{name}" for name in NODE_COLLECTORS),
    ], logs, f"http://127.0.0.1:{ports['node']}/metrics")
    start_child(stack, children, "blackbox-exporter", [
        BLACKBOX_EXPORTER, f"--config.file={BLACKBOX_CONFIG}",
        f"--web.listen-address=127.0.0.1:{ports['blackbox']}",
    ], logs, f"http://127.0.0.1:{ports['blackbox']}/metrics")


def backfill_history(run_dir: Path, app_url: str, app_instance: str, since: float) -> None:
    """The synthetic week before now, written into Prometheus' storage before it starts."""
    say(f"backfilling a SYNTHETIC {HISTORY_DAYS:.0f}-day history of the app's request "
        "counters ...")
    with urllib.request.urlopen(app_url + "/metrics", timeout=10) as response:
        snapshot = history.parse_snapshot(response.read().decode())
    now = time.time()
    rate_now = snapshot.total / max(1.0, now - since)
    openmetrics = run_dir / "history.om"
    history.write_history(openmetrics, snapshot, {"job": scrape.job("app"), "instance": app_instance},
                          rate_now, now, days=HISTORY_DAYS)
    try:
        history.create_blocks(openmetrics, run_dir / "prometheus", days=HISTORY_DAYS)
    except subprocess.CalledProcessError as exc:
        raise StartupError(f"promtool could not backfill the history: {exc.stderr}") from None
    finally:
        openmetrics.unlink()


def prime_error_series(app_url: str) -> None:
    """One deliberate 5xx before Prometheus' first scrape (and after the history's
    snapshot): the app's 5xx series exist from the start, so error ratios read 0 instead
    of nothing, and no error-rate alert fires for it (Prometheus never sees it increase)."""
    def faults(knobs: dict[str, float]) -> None:
        request = urllib.request.Request(app_url + "/-/faults", data=json.dumps(knobs).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10):
            pass

    faults({"error_rate": 1.0})
    try:
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(app_url + "/api/customers", timeout=10).close()
    finally:
        faults({"error_rate": 0.0})


def start(stack: contextlib.ExitStack, run_dir: Path) -> Demo:
    prepare_run_dir(run_dir)
    logs = run_dir / "logs"
    logs.mkdir()
    python = sys.executable

    postgres = start_postgres(stack, run_dir)
    monitor_dsn = f"postgresql://saasmon@127.0.0.1:{postgres.port}/postgres"
    standby = start_standby(stack, run_dir, postgres)

    say("starting Redis ...")
    # A memory limit makes used/max memory a meaningful share; LRU keeps writes working.
    redis_server = RedisServer(
        run_dir / "redis", extra_args=["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"],
    )
    stack.callback(redis_server.stop)
    redis_server.start()

    children: list[Process] = []
    # Runs before the servers stop (the stack unwinds last-in first-out).
    stack.callback(stop_all, children)
    ports = free_ports()
    app_url = f"http://127.0.0.1:{ports['app']}"

    say("starting the reference app, its cron runner and load generator ...")
    start_child(stack, children, "refapp", [
        python, "-m", "refapp", "--listen", f"127.0.0.1:{ports['app']}",
        "--dsn", postgres.dsn, "--redis-url", redis_server.url], logs, app_url + "/health/live")
    # Started early so the app has served a mix of requests when the history is shaped
    # on it; the first Web Vitals beacons fail until the webvitals exporter is up.
    load_started = time.time()
    # One simulated minute per real second: the 18-job schedule of dirt-free-crm (its five
    # named jobs) runs within the demo's first minutes instead of over a day.
    start_child(stack, children, "cronrunner", [
        python, "-m", "refapp.cronrunner", "--dsn", postgres.dsn, "--speed", "60",
        "--backfill-hours", "24", "--faults-url", app_url + "/-/faults"], logs, None)
    start_child(stack, children, "load", [
        python, "-m", "refapp.load", "--url", app_url, "--rps", str(LOAD_RPS),
        # Each client reconnects every 30 minutes: 4 an hour, under nova-crm's 5.
        "--duration", "86400", "--ws-clients", "2", "--ws-reconnect-every", "1800",
        "--webvitals-url", f"http://127.0.0.1:{ports['webvitals']}/beacon"], logs, None)

    say("starting a status-page and object-storage stand-in ...")
    pages = run_dir / "statuspage"
    (pages / "api" / "v2").mkdir(parents=True)
    (pages / "api" / "v2" / "summary.json").write_text(json.dumps(STATUS_PAGE))
    (pages / "object-storage").mkdir()
    (pages / "object-storage" / "healthz").write_text("ok\n")
    start_child(stack, children, "statuspage", [
        python, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(pages),
        str(ports["statuspage"])], logs, f"http://127.0.0.1:{ports['statuspage']}/api/v2/summary.json")

    say("starting the exporters (one process: saasmon bundle) ...")
    standby_dsn = f"postgresql://saasmon@127.0.0.1:{standby.port}/postgres"
    configs = exporter_configs(monitor_dsn, standby_dsn, redis_server.url, app_url,
                               f"http://127.0.0.1:{ports['statuspage']}")
    # Secret files as in production; the SMS relay reads its Twilio token from them.
    receivers_url = f"http://127.0.0.1:{ports['receivers']}"
    secrets_dir = write_demo_secrets(run_dir / "secrets", receivers_url)
    bundle, addresses = write_bundle(
        run_dir, {**configs, "sms-relay": relay_config(secrets_dir, receivers_url)}, ports)
    exporters = start_child(stack, children, "exporters", bundle_argv(bundle), logs, None)
    for address in addresses:
        wait_ready(exporters, f"http://{address}/-/ready")
    for job in HEARTBEAT_JOBS:
        ping = f"http://127.0.0.1:{ports['cron']}/ping/{job['name']}"
        if not http_ok(ping):
            raise StartupError(f"the cron exporter refused the heartbeat {ping}")

    start_host_probes(stack, children, logs, ports)
    start_alerting(stack, children, run_dir, ports, secrets_dir)
    backfill_history(run_dir, app_url, f"127.0.0.1:{ports['app']}", load_started)
    prime_error_series(app_url)

    say("starting Prometheus ...")
    prom_config = run_dir / "prometheus.yml"
    write_yaml(prom_config, prometheus_config(ports))
    prom_port = ports["prometheus"]
    start_child(stack, children, "prometheus",
                prometheus_argv(prom_config, run_dir / "prometheus", prom_port),
                logs, f"http://127.0.0.1:{prom_port}/-/ready")

    prom_url = f"http://127.0.0.1:{prom_port}"
    am_url = f"http://127.0.0.1:{ports['alertmanager']}"
    urls = {
        "reference app": app_url + "/",
        "app health": app_url + "/health",
        "app metrics": app_url + "/metrics",
        **{f"{name.replace('-', ' ')} exporter": f"http://127.0.0.1:{ports[name]}/metrics"
           for name in configs},
        "sms relay": f"http://127.0.0.1:{ports['smsrelay']}/metrics",
        "node exporter": f"http://127.0.0.1:{ports['node']}/metrics",
        "blackbox exporter": f"http://127.0.0.1:{ports['blackbox']}/metrics",
        "storage probe": (f"http://127.0.0.1:{ports['blackbox']}/probe?module=http_2xx&target="
                          + urllib.parse.quote(storage_url(ports), safe="")),
        "app probe": f"http://127.0.0.1:{ports['integrations']}/probe?target=app",
        **prometheus_links(prom_url),
        **alertmanager_links(am_url),
        "notifications": receivers_url + "/received",
        "smtp": f"smtp://127.0.0.1:{ports['smtp']}",
        "postgres": postgres.dsn,
        "postgres standby": standby.dsn,
        "redis": redis_server.url,
    }
    return Demo(postgres, redis_server, children, urls, alertmanager_commands(am_url))


def prometheus_ui(prom_url: str) -> str:
    """Where this Prometheus serves its pages.

    Debian's package (2.42) ships only the classic UI, under /classic: its /targets, /alerts
    and /rules answer 404 and / redirects to /classic/graph. A build with the React UI serves
    them at the root.
    """
    classic = prom_url + "/classic"
    return classic if http_ok(classic + "/targets") else prom_url


def prometheus_links(prom_url: str) -> dict[str, str]:
    """The demo's Prometheus links, for the UI this Prometheus serves.

    "prometheus" stays the bare address: it is the Grafana datasource URL (and the browser
    lands on the graph page from it).
    """
    ui = prometheus_ui(prom_url)
    requests = f'http_requests_total{{job="{scrape.job("app")}"}}'
    return {
        "prometheus": f"{prom_url}/",
        "targets": f"{ui}/targets",
        "alerts": f"{ui}/alerts",
        "rules": f"{ui}/rules",
        "query up": graph_url(ui, "up"),
        "query p95": graph_url(ui, "job:http_request_duration_seconds:p95_5m"),
        "query dau": graph_url(ui, "business_daily_active_users"),
        "query week over week": graph_url(
            ui, f"sum(rate({requests}[5m])) / sum(rate({requests}[5m] offset 1w))", "8d"),
    }


def graph_url(ui: str, expr: str, range_input: str = "15m") -> str:
    query = urllib.parse.urlencode({"g0.expr": expr, "g0.tab": "0", "g0.range_input": range_input})
    return f"{ui}/graph?{query}"


def alertmanager_links(am_url: str) -> dict[str, str]:
    """Alertmanager's API: Debian's package has no web UI (its / is a page saying so)."""
    return {
        "alertmanager alerts": f"{am_url}/api/v2/alerts",
        "alertmanager groups": f"{am_url}/api/v2/alerts/groups",
        "alertmanager silences": f"{am_url}/api/v2/silences",
        "alertmanager status": f"{am_url}/api/v2/status",
    }


def alertmanager_commands(am_url: str) -> list[str]:
    """amtool (Debian's prometheus-alertmanager) in place of the missing web UI."""
    amtool = f"amtool --alertmanager.url={am_url}"
    return [f"{amtool} alert query", f"{amtool} silence query", f"{amtool} config routes"]


def print_urls(demo: Demo, run_dir: Path) -> None:
    say()
    say(f"saasmon demo is running (run dir {run_dir}, logs in {run_dir / 'logs'})")
    width = max(len(label) for label in demo.urls)
    for label, url in demo.urls.items():
        say(f"  {label:<{width}}  {url}")
    say("Debian's Alertmanager has no web UI: read it through the API links above or amtool:")
    for command in demo.commands:
        say(f"  {command}")
    say(f"Prometheus scrapes every {SCRAPE_INTERVAL}: the first samples need up to that long.")
    say("Alerts go Prometheus -> Alertmanager (shipped routing and templates) -> stand-in "
        "receivers: see them at 'notifications' (JSON) or one JSON line each in "
        f"{run_dir / 'logs' / 'receivers.log'}; the Watchdog pings the heartbeat stand-in "
        "every minute through the SMS relay.")
    say(f"The {HISTORY_DAYS:.0f} days before the start of http_requests_total and "
        "http_request_duration_seconds_* are SYNTHETIC (refapp/history.py): a made-up daily "
        "shape, so `offset 1w` queries have a last week; everything after the start is live.")
    say("Dashboards: in any Grafana, add a Prometheus datasource with URL "
        f"{demo.urls['prometheus'].rstrip('/')} and import {REPO / 'dashboards' / 'generated'}/*.json "
        f"(or point grafana/provisioning's datasource URL at it and mount the JSON files).")
    say("Press Ctrl-C to stop.")
    say()


class Workload:
    """A small steady load, so the exporters have something to report.

    PostgreSQL: a few reads and writes per second plus an occasional slow statement
    (pg_sleep) that stands out in the pg_stat_statements top-N. Redis: SET with TTLs and
    GETs that mostly hit (a healthy cache), and a cache-sized pre-fill so the share of
    maxmemory in use is visibly non-zero.
    """

    def __init__(self, pg_dsn: str, redis_url: str) -> None:
        self.pg_dsn = pg_dsn
        self.redis_url = redis_url
        self.reported: set[str] = set()

    def report_once(self, where: str, exc: BaseException) -> None:
        # The servers are private and local, so errors are unexpected; say so once, not
        # on every tick, and keep going: the demo is about the exporters, not the load.
        if where not in self.reported:
            self.reported.add(where)
            print(f"workload: {where} error: {exc!r} (continuing)", file=sys.stderr, flush=True)

    async def postgres_loop(self) -> None:
        rng = random.Random(1)
        conn: Any = None
        tick = 0
        while True:
            try:
                if conn is None:
                    conn = await asyncpg.connect(self.pg_dsn)
                tick += 1
                customer = rng.randrange(500)
                await conn.fetch(
                    "SELECT id, amount FROM demo_orders WHERE customer = $1 "
                    "ORDER BY created_at DESC LIMIT 10", customer)
                await conn.execute(
                    "INSERT INTO demo_orders (customer, amount) VALUES ($1, $2)",
                    customer, rng.randrange(100, 10000) / 100)
                await conn.fetchval("SELECT count(*) FROM demo_orders WHERE amount > $1", 50)
                if tick % 20 == 0:
                    # Stands out in the top-N by mean, under nova-crm's 100 ms slow level.
                    await conn.execute("SELECT pg_sleep(0.05)")
                if tick % 60 == 0:
                    # The app's providers call its webhooks (dirt-free-crm § Integration
                    # Health: webhooks received): one each about every 15 s.
                    await conn.executemany(
                        "INSERT INTO webhook_events (provider, event_type, status) "
                        "VALUES ($1, 'demo.event', 'processed')",
                        [(p,) for p in WEBHOOK_PROVIDERS])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.report_once("postgres", exc)
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()
                conn = None
                await asyncio.sleep(1)
            await asyncio.sleep(0.25)

    async def redis_loop(self) -> None:
        rng = random.Random(2)
        client: Any = aioredis.from_url(self.redis_url)
        try:
            # ~8 MB of cache entries: an eighth of maxmemory, expiring over the next minutes.
            with contextlib.suppress(Exception):
                async with client.pipeline(transaction=False) as pipe:
                    for i in range(2000):
                        pipe.set(f"demo:cache:{i}", os.urandom(4096), ex=300 + i % 300)
                    # estimate-library's cache warming: its popular library items (at
                    # least 100 warm, RedisCacheWarmItemsLow).
                    for i in range(WARM_LIBRARY_ITEMS):
                        pipe.set(f"library:item:{i}", os.urandom(256))
                    await pipe.execute()
            sessions: list[int] = []
            while True:
                try:
                    session = rng.randrange(1000)
                    await client.set(f"demo:session:{session}", os.urandom(512), ex=120)
                    sessions = [*sessions[-49:], session]
                    # A healthy cache (nova-crm: hit rate above 80 %): sessions are read back
                    # while they live, and a cache miss is filled (cache-aside), so after
                    # the warm-up almost every read hits.
                    await client.get(f"demo:session:{rng.choice(sessions)}")
                    key = f"demo:cache:{rng.randrange(2000)}"
                    if await client.get(key) is None:
                        await client.set(key, os.urandom(4096), ex=600)
                    await client.get(f"library:item:{rng.randrange(WARM_LIBRARY_ITEMS)}")
                    await client.incr("demo:counter")
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.report_once("redis", exc)
                    await asyncio.sleep(1)
                await asyncio.sleep(0.1)
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()


async def run(demo: Demo, duration: float | None) -> int:
    """Run the workload until a signal, the duration or a dead child ends the demo."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    workload = Workload(demo.postgres.dsn, demo.redis.url)
    tasks = [asyncio.create_task(workload.postgres_loop()),
             asyncio.create_task(workload.redis_loop())]
    deadline = None if duration is None else loop.time() + duration
    status = 0
    try:
        while not stop.is_set():
            dead = [child for child in demo.children if not child.running]
            if dead:
                for child in dead:
                    print(child.failure(f"exited unexpectedly with status {child.returncode}"),
                          file=sys.stderr, flush=True)
                status = 1
                break
            if deadline is not None and loop.time() >= deadline:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=1.0)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return status


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def install_sync_handlers() -> None:
    # Outside the event loop (startup, shutdown) a signal must unwind through the ExitStack
    # so everything started so far is stopped; SIGTERM's default would just kill us.
    handler: Callable[[int, FrameType | None], None] = _interrupt
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                        help="stop cleanly this many seconds after everything is up "
                             "(default: run until Ctrl-C or SIGTERM)")
    parser.add_argument("--run-dir", type=Path, default=REPO / ".run" / "demo",
                        help="directory for data, configs and logs; recreated on start "
                             "(default: .run/demo)")
    args = parser.parse_args(argv)
    if args.duration is not None and args.duration <= 0:
        parser.error("--duration must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_dir: Path = args.run_dir.resolve()
    missing = [f"{path} (apt-get install {package})" for path, package in BINARIES.items()
               if not Path(path).exists()]
    if missing:
        print(f"not found: {', '.join(missing)}; or run `make deps`", file=sys.stderr)
        return 1
    install_sync_handlers()
    status = 0
    try:
        with contextlib.ExitStack() as stack:
            try:
                demo = start(stack, run_dir)
                print_urls(demo, run_dir)
                status = asyncio.run(run(demo, args.duration))
                # asyncio.run restored default dispositions; shutdown must be interruptible
                # only the same careful way as startup.
                install_sync_handlers()
            except (StartupError, ProcessError) as exc:
                print(f"demo failed to start: {exc}", file=sys.stderr, flush=True)
                status = 1
            except subprocess.CalledProcessError as exc:
                # psql/pg_ctl: their stderr is the useful part, not our traceback.
                print(f"demo failed to start: {' '.join(map(str, exc.cmd))} failed: "
                      f"{(exc.stderr or exc.stdout or '').strip()}", file=sys.stderr, flush=True)
                status = 1
            say("stopping ...")
    except (KeyboardInterrupt, Interrupted):
        # Interrupted during startup or shutdown: the ExitStack has stopped what ran.
        status = 0
    say("demo stopped")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
