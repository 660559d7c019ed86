"""The drill stack and the drill contract.

One `Stack` per test session: a real PostgreSQL primary (low max_connections,
pg_stat_statements, a pg_monitor role) with a real streaming standby, Redis with a
maxmemory, the reference app with its fault knobs under real load, its cron runner, a
status-page stand-in, every saasmon exporter, the stand-in receivers behind the real SMS
relay, a real Prometheus (scrape and evaluation every second) evaluating the GENERATED rules
with every duration scaled by `scale`, and a real Alertmanager with the SHIPPED routing and
templates (addresses swapped, timers scaled by the same factor).

A `Drill` injects a real fault, the harness waits until each `Expected` alert reached exactly
its receivers, then the drill removes the fault and the harness waits for the resolutions
(devstack/drills/runner.py).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import yaml

from alert_rules.generator.scaled import seconds
from devstack import scrape
from devstack.alertmanager import Alertmanager
from devstack.demo import STATUS_PAGE, WEBVITALS_ROUTES, spawn, wait_ready
from devstack.drills.alerting import (
    Prometheus,
    Route,
    routes,
    scale_timers,
    without_quiet_hours,
    write_rules,
)
from devstack.drills.catalog import alert_rules, mixin_jobs, receivers_for, rules_of
from devstack.drills.notifications import Delivery, ReceiverMap, Receivers
from devstack.drills.workload import LibraryCache
from devstack.exporter import Exporter
from devstack.process import Process, stop_all
from devstack.servers import PostgresServer, RedisServer, free_port
from devstack.wait import wait_until
from refapp.schema import schema_sql
from saasmon.business.config import NAMESPACE
from saasmon.business.pack import DEFAULT_PACK, load_pack

# Re-exported: drill modules import the catalog helpers from here.
__all__ = ["Drill", "DrillRun", "Expected", "Stack", "alert_rules", "expected", "receivers_for",
           "rules_of"]

REPO = Path(__file__).resolve().parents[2]
# One real minute is one drill second: `for: 5m` waits 5 s, group_interval 15m is 15 s.
DEFAULT_SCALE = 1 / 60


def resend_delay(scale: float) -> int:
    """Prometheus' --rules.alert.resend-delay for a drill, in seconds. An alert it sends
    stays active in Alertmanager for 4x this; at 1 s a rule evaluation late by 4 s on a busy
    machine let a firing level lapse there, and the lower level it muted was notified; at 4 s
    it happened again beside another pytest-xdist worker (api-error-rate-12pct). Only
    re-sends wait for it: new and resolved alerts go out at once."""
    return max(10, round(60 * scale))
SCRAPE_INTERVAL = 1.0
MAX_CONNECTIONS = 40
REDIS_MAXMEMORY = 32 * 1024 * 1024
APP_RPS = 12  # above ApiThroughputLow's 500 requests a minute, so a quiet app is healthy
MONITOR_ROLE = "saasmon"


# -- the contract ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Expected:
    """One alert a drill must page: its name, severity and exactly these receivers.

    Ladders inhibit within one guide only, so a fault may page one alert name at several
    severities, one per guide: a drill lists each (`guide` tells them apart)."""

    alertname: str
    severity: str
    receivers: frozenset[str]  # Alertmanager receivers, e.g. {"pagerduty", "sms", ...}
    text: tuple[str, ...] = ()  # in every Slack, PagerDuty and email text of it
    labels: Mapping[str, str] = field(default_factory=dict)  # identify the alert instance
    exporter: str | None = None  # also carries this exporter's job and instance (Stack.exporters)
    resolves: bool = True  # False: never resolves (Watchdog)
    guide: str | None = None  # the rules of this guide only (None: every guide's)
    guides: frozenset[str] = frozenset()  # every guide those rules cite

    @property
    def key(self) -> str:
        """Names the expectation in a run's records: alertname, severity and guide."""
        return " ".join(x for x in (self.alertname, self.severity, self.guide) if x)

    def covers(self, delivery: Delivery) -> bool:
        """A notification of this alert at this severity, about this expectation's guides
        (an SMS or ping cites none: it is told apart by severity alone)."""
        return (delivery.alertname == self.alertname and delivery.severity == self.severity
                and (not delivery.guides or not self.guides or bool(delivery.guides & self.guides)))


@dataclass(frozen=True)
class Drill:
    name: str
    inject: Callable[[Stack], Awaitable[None]]
    remove: Callable[[Stack], Awaitable[None]]
    expect: tuple[Expected, ...]
    # Drills sharing a resource never overlap; each expected alertname is one implicitly.
    resources: frozenset[str] = frozenset()
    # Runs alone: drills listed before every non-exclusive one run first, the others last.
    exclusive: bool = False
    # Extra assertions once every expected alert was delivered, before `remove`.
    check: Callable[[Stack, DrillRun], Awaitable[None]] | None = None
    # Why its time to page may exceed the limit (shown by bench/time_to_page.py).
    note: str = ""


@dataclass
class DrillRun:
    """What happened in one drill; times are time.time()."""

    name: str
    started: float = 0.0  # inject() called
    injected: float = 0.0  # inject() returned: the fault is in place
    first: dict[str, Delivery] = field(default_factory=dict)  # Expected.key -> first delivery
    removed: float = 0.0  # remove() called
    resolved: dict[str, Delivery] = field(default_factory=dict)  # Expected.key -> last resolution
    finished: float = 0.0
    error: BaseException | None = None
    notes: list[str] = field(default_factory=list)  # what the drill saw, for the report

    def time_to_page(self, key: str) -> float:
        return self.first[key].at - self.injected


def expected(alertname: str, severity: str, *, guide: str | None = None,
             labels: Mapping[str, str] | None = None, exporter: str | None = None,
             text: tuple[str, ...] = (), summary: bool = True) -> Expected:
    """The catalog's alert: receivers from the shipped routing of every generated rule with
    this name and severity (and guide), its summary (unless summary=False) plus `text`
    required in the delivered text. The rules include a level's escalation twin: the drill
    then holds its fault until the escalation was delivered too."""
    rules = rules_of(alertname, severity, guide)
    receivers = frozenset().union(*(receivers_for({"alertname": alertname, **r["labels"]})
                                    for r in rules))
    summaries = {r["annotations"]["summary"] for r in rules}
    need = (*sorted(summaries), *text) if summary and len(summaries) == 1 else text
    guides = frozenset(g for r in rules for g in r["labels"].get("guide", "").split(",") if g)
    return Expected(alertname, severity, receivers, need, dict(labels or {}), exporter,
                    guide=guide, guides=guides)


def time_scale() -> float:
    """DRILL_TIME_SCALE overrides the default (e.g. 1/30 on a slow machine)."""
    raw = os.environ.get("DRILL_TIME_SCALE")
    if not raw:
        return DEFAULT_SCALE
    num, _, den = raw.partition("/")
    return float(num) / float(den) if den else float(num)


# -- the stack -----------------------------------------------------------------------------------
class Stack:
    """Everything a drill touches. Blocking controls (pg/redis/exporter stop and start) are
    plain methods of the handles: call them through `await asyncio.to_thread(...)`."""

    def __init__(self, workdir: Path, scale: float) -> None:
        self.workdir = workdir
        self.scale = scale
        self.scrape_interval = SCRAPE_INTERVAL
        self.primary = PostgresServer(workdir / "primary", max_connections=MAX_CONNECTIONS)
        self.standby = PostgresServer(workdir / "standby", max_connections=MAX_CONNECTIONS)
        self.redis = RedisServer(workdir / "redis", extra_args=[
            "--maxmemory", str(REDIS_MAXMEMORY), "--maxmemory-policy", "volatile-ttl"])
        self.receivers = Receivers(workdir)
        self.library = LibraryCache(self.redis)
        self.app_port = free_port()
        self.prometheus_port = free_port()
        self.status_page_port = free_port()
        self.exporters: dict[str, Exporter] = {}
        self.children: list[Process] = []
        self.prometheus: Prometheus | None = None
        self.alertmanager: Alertmanager | None = None
        self.am_config = workdir / "alertmanager" / "alertmanager.yml"
        self.receiver_map: ReceiverMap | None = None
        self._am_routes: dict[str, Any] = {}
        self._cleanup = contextlib.ExitStack()

    # -- addresses -----------------------------------------------------------------------------
    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    @property
    def status_page_url(self) -> str:
        return f"http://127.0.0.1:{self.status_page_port}"

    @property
    def status_page_file(self) -> Path:
        return self.workdir / "statuspage" / "api" / "v2" / "summary.json"

    @property
    def monitor_dsn(self) -> str:
        return f"postgresql://{MONITOR_ROLE}@127.0.0.1:{self.primary.port}/postgres"

    @property
    def webvitals_url(self) -> str:
        return self.exporters["webvitals"].url + "/beacon"

    @property
    def webvitals_origin(self) -> str:
        return self.app_url

    @property
    def prometheus_url(self) -> str:
        assert self.prometheus is not None
        return self.prometheus.url

    @property
    def alertmanager_urls(self) -> list[str]:
        assert self.alertmanager is not None
        return [self.alertmanager.url]

    def job(self, kind: str) -> str:
        """Prometheus job of an exporter kind or mixin job key (`postgres`, `appProbe`...)."""
        jobs = mixin_jobs()
        aliases = {"postgres-standby": "postgres", "sms-relay": "smsRelay"}
        return jobs[aliases.get(kind, kind)]

    def instance(self, kind: str) -> str:
        """The `instance` label of an exporter's series (`postgres`, `postgres-standby`...)."""
        return f"127.0.0.1:{self.exporters[kind].port}"

    def labels_of(self, exp: Expected) -> dict[str, str]:
        """The labels that identify `exp`'s alert instance in this stack."""
        found = dict(exp.labels)
        if exp.exporter is not None:
            found |= {"job": self.job(exp.exporter), "instance": self.instance(exp.exporter)}
        return found

    # -- start and stop ------------------------------------------------------------------------
    @classmethod
    def start(cls, scale: float | None = None, workdir: Path | None = None) -> Stack:
        if workdir is None:
            workdir = Path(tempfile.mkdtemp(prefix="saasmon-drills-"))
        workdir.chmod(0o755)  # initdb runs as `postgres` under root and must enter it
        stack = cls(workdir, time_scale() if scale is None else scale)
        try:
            stack._start()
        except BaseException:
            stack.stop()
            raise
        return stack

    def _start(self) -> None:
        cleanup = self._cleanup
        logs = self.workdir / "logs"
        logs.mkdir(exist_ok=True)
        cleanup.callback(self.primary.stop, "immediate")
        self.primary.start()
        self.primary.psql(
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;"
            f"CREATE ROLE {MONITOR_ROLE} LOGIN; GRANT pg_monitor TO {MONITOR_ROLE};"
            "CHECKPOINT;")
        # The standby is cloned while the primary is empty and just checkpointed (a base
        # backup waits for a spread checkpoint otherwise); the data then streams over.
        cleanup.callback(self.standby.stop, "immediate")
        self.standby.init_replica_of(self.primary)
        self.standby.start()
        self.primary.psql(schema_sql())
        self.primary.psql("CREATE TABLE drill_rows (id bigserial PRIMARY KEY, note text,"
                          " at timestamptz NOT NULL DEFAULT now());")
        # 45 days (datagen's default): the 30-day KPIs (retention, churn) need that history.
        subprocess.run([sys.executable, "-m", "refapp.datagen", "--dsn", self.primary.dsn],
                       check=True, capture_output=True, timeout=300, cwd=REPO)
        # The bulk load is no application traffic: its statements would count as slow ones.
        self.primary.psql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {MONITOR_ROLE};"
                          "SELECT pg_stat_statements_reset();")
        cleanup.callback(self.redis.kill)
        self.redis.start()
        cleanup.callback(self.library.stop)
        self.library.start()
        cleanup.callback(self.receivers.stop)
        self.receivers.start()
        self.exporters["sms-relay"] = self.receivers.relay
        cleanup.callback(stop_all, self.children)
        self._start_app(logs)
        self._start_exporters()
        self._start_load(logs)
        self._start_alerting()

    def _start_app(self, logs: Path) -> None:
        python = sys.executable
        app = spawn("refapp", [python, "-m", "refapp", "--listen", f"127.0.0.1:{self.app_port}",
                               "--dsn", self.primary.dsn, "--redis-url", self.redis.url,
                               "--health-interval", f"{SCRAPE_INTERVAL:g}"], logs)
        self.children.append(app)
        wait_ready(app, self.app_url + "/health/live")
        self.set_status_page(STATUS_PAGE)
        pages = self.workdir / "statuspage"
        page = spawn("statuspage", [python, "-m", "http.server", "--bind", "127.0.0.1",
                                    "--directory", str(pages), str(self.status_page_port)], logs)
        self.children.append(page)
        wait_ready(page, self.status_page_url + "/api/v2/summary.json")

    def _start_exporters(self) -> None:
        interval = SCRAPE_INTERVAL
        pack = load_pack(DEFAULT_PACK, NAMESPACE)
        configs: dict[str, tuple[str, dict[str, object]]] = {
            "postgres": ("postgres", {"dsn": self.monitor_dsn, "interval_seconds": interval}),
            "postgres-standby": ("postgres", {
                "dsn": f"postgresql://{MONITOR_ROLE}@127.0.0.1:{self.standby.port}/postgres",
                "interval_seconds": interval}),
            "redis": ("redis", {"targets": [{"name": "main", "url": self.redis.url}],
                                "interval_seconds": interval,
                                "key_patterns": [{"pattern": "library:item:*"}]}),
            # The harness registers all the jobs its cron runner runs: a complete registry.
            "cron": ("cron", {"dsn": self.monitor_dsn, "interval_seconds": interval,
                              "expected_jobs": 5}),
            "integrations": ("integrations", {
                "dsn": self.monitor_dsn, "interval_seconds": interval, "builtin_targets": False,
                "targets": {"app": {"url": self.app_url, "module": "app_health"},
                            "vendor": {"url": self.status_page_url, "module": "statuspage"}}}),
            # Each KPI query as often as the time scale says (an hourly one every minute).
            "business": ("business", {"dsn": self.monitor_dsn, "queries": {
                q.name: {"interval_seconds": max(1.0, q.interval_seconds * self.scale)}
                for q in pack.queries}}),
            "webvitals": ("webvitals", {"allowed_origins": [self.webvitals_origin],
                                        "routes": WEBVITALS_ROUTES}),
        }
        for name, (kind, config) in configs.items():
            exporter = Exporter(kind, config, self.workdir)
            self.exporters[name] = exporter
            self._cleanup.callback(exporter.stop)
        # Started side by side: each waits for its own /-/ready.
        with concurrent.futures.ThreadPoolExecutor(len(configs)) as pool:
            list(pool.map(Exporter.start, [self.exporters[name] for name in configs]))

    def _start_load(self, logs: Path) -> None:
        python = sys.executable
        self.children.append(spawn("cronrunner", [
            python, "-m", "refapp.cronrunner", "--dsn", self.primary.dsn, "--speed", "1",
            "--backfill-hours", "24", "--faults-url", self.app_url + "/-/faults"], logs))
        # No Web Vitals beacons: the load's random page views put the p75 near the tpt-erp
        # levels at a 15 s window; a Web Vitals drill sends the beacons it needs.
        self.children.append(spawn("load", [
            python, "-m", "refapp.load", "--url", self.app_url, "--rps", str(APP_RPS),
            "--duration", "86400", "--ws-clients", "0"], logs))

    def _start_alerting(self) -> None:
        am_dir = self.am_config.parent
        written = self.receivers.alertmanager_config(am_dir)
        assert written == self.am_config
        self.am_config.write_text(without_quiet_hours(
            scale_timers(self.am_config.read_text(), self.scale)))
        self.receiver_map = self.receivers.receiver_map(self.am_config)
        self._am_routes = yaml.safe_load(self.am_config.read_text())
        am = Alertmanager(self.am_config, self.workdir,
                          env={"SSL_CERT_FILE": str(self.receivers.cert)})
        self._cleanup.callback(am.stop)
        self.alertmanager = am.start()
        rule_files = write_rules(self.workdir / "rules", self.scale, SCRAPE_INTERVAL)
        self.prometheus = Prometheus(self.workdir, self.prometheus_config(rule_files), flags=[
            f"--rules.alert.resend-delay={resend_delay(self.scale)}s"],
            port=self.prometheus_port)
        self._cleanup.callback(self.prometheus.stop)
        self.prometheus.start()
        expected_up = len(self.prometheus_config(rule_files)["scrape_configs"]) + 1
        wait_until("every target scraped and up", lambda: len(
            self.prometheus.query("up == 1")) >= expected_up if self.prometheus else False, 60)

    def prometheus_config(self, rule_files: list[Path]) -> dict[str, Any]:
        ex = self.exporters
        every = f"{SCRAPE_INTERVAL:g}s"
        assert self.alertmanager is not None
        integrations = self.instance("integrations")
        return scrape.prometheus_config(scrape.scrape_configs({
            "postgres": [self.instance("postgres"), self.instance("postgres-standby")],
            **{key: [f"127.0.0.1:{ex[kind].port}"] for key, kind in (
                ("redis", "redis"), ("cron", "cron"), ("integrations", "integrations"),
                ("business", "business"), ("webvitals", "webvitals"),
                ("smsRelay", "sms-relay"))},
            "app": [f"127.0.0.1:{self.app_port}"],
            "alertmanager": [f"127.0.0.1:{self.alertmanager.port}"],
            "prometheus": [f"127.0.0.1:{self.prometheus_port}"],
        }, {"appProbe": (integrations, ["app"]), "integrationProbe": (integrations, ["vendor"])}),
            every, [f"127.0.0.1:{self.alertmanager.port}"], rule_files, scrape_timeout=every)

    def stop(self) -> None:
        self._cleanup.close()
        if not os.environ.get("DRILL_KEEP"):
            subprocess.run(["rm", "-rf", str(self.workdir)], check=False)

    # -- fault controls --------------------------------------------------------------------------
    async def faults(self, **knobs: Any) -> dict[str, Any]:
        """POST the reference app's /-/faults knobs; returns every knob's new value."""
        async with aiohttp.ClientSession() as http, http.post(
                self.app_url + "/-/faults", json=knobs) as response:
            body: dict[str, Any] = await response.json()
            assert response.status == 200, body
            return body

    def set_status_page(self, summary: Mapping[str, Any]) -> None:
        """Replace the status-page stand-in's Statuspage v2 summary (atomically)."""
        self.status_page_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.status_page_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(summary))
        tmp.replace(self.status_page_file)

    async def connect(self, dsn: str | None = None) -> asyncpg.Connection:
        """A superuser connection to the primary (or `dsn`)."""
        conn: asyncpg.Connection = await asyncpg.connect(dsn or self.primary.dsn, timeout=10)
        return conn

    async def query(self, promql: str) -> list[dict[str, Any]]:
        assert self.prometheus is not None
        return await asyncio.to_thread(self.prometheus.query, promql)

    async def alerts(self, **labels: str) -> list[dict[str, Any]]:
        """Alertmanager's alerts (active, inhibited and silenced) with these labels."""
        assert self.alertmanager is not None
        return await asyncio.to_thread(self.alertmanager.alerts, **labels)

    # -- notifications ---------------------------------------------------------------------------
    def deliveries(self, since: float = 0.0) -> list[Delivery]:
        assert self.receiver_map is not None
        return self.receivers.deliveries(self.receiver_map, since)

    def routes(self, labels: Mapping[str, str]) -> list[Route]:
        """Leaf routes of the running (timer-scaled) config for a label set."""
        return routes(self._am_routes, labels)

    def send_resolved(self, receiver: str) -> bool:
        assert self.receiver_map is not None
        return self.receiver_map.send_resolved[receiver]

    def page_limit(self, exp: Expected) -> float:
        """Scaled `for` + scrape + evaluation interval + group_wait: the issue's limit for
        the first notification of `exp` after its fault is in place."""
        rules = rules_of(exp.alertname, exp.severity, exp.guide)
        hold = min(max(1, int(seconds(r.get("for", "0s")) * self.scale + 1e-9))
                   if r.get("for") else 0 for r in rules)
        group_wait = min(route.group_wait for r in rules
                         for route in self.routes({"alertname": exp.alertname, **r["labels"]}))
        return hold + 2 * SCRAPE_INTERVAL + group_wait

    def resolve_limit(self) -> float:
        """The longest wait for a resolution notification: the longest scaled window in the
        rules a drill may hold (1 h) plus two group intervals."""
        intervals = [r.group_interval for r in self.routes({"severity": "critical"})]
        return 3600 * self.scale + 2 * max(intervals) + 10

    async def wait_quiet(self, alertname: str, timeout: float | None = None,
                         labels: Mapping[str, str] | None = None) -> None:
        """Until no `alertname` alert with `labels` (the drill's own series) is pending or
        firing and every receiver that was told it fires was told it resolved. A drill
        starts from there: Alertmanager does not notify again about an alert it already
        reported firing (an earlier drill's, or a side effect of one). Another series of the
        same alert (another cron job's failure) is not the drill's business."""
        timeout = timeout if timeout is not None else self.resolve_limit() + 60
        deadline = time.monotonic() + timeout
        own = dict(labels or {})
        while True:
            every = await self.query(f'ALERTS{{alertname="{alertname}"}}')
            active = [a for a in every
                      if all(a["metric"].get(k) == v for k, v in own.items())]
            last: dict[tuple[str, str], Delivery] = {}
            for d in self.deliveries():
                if d.alertname == alertname and self.send_resolved(d.receiver):
                    last[(d.receiver, d.severity)] = d
            # Notifications are per group (alertname, severity): while another series
            # keeps its group firing that group never resolves, and a new series of the
            # drill joins it with a notification of its own at the next group interval.
            # Every other group must have told its receivers it resolved.
            foreign = {a["metric"].get("severity", "") for a in every if a not in active}
            unresolved = sorted({r for (r, severity), d in last.items()
                                 if d.status == "firing" and severity not in foreign})
            if not active and not unresolved:
                return
            if time.monotonic() > deadline:
                states = sorted({(a["metric"].get("severity", ""), a["metric"]["alertstate"])
                                 for a in active})
                raise AssertionError(
                    f"{alertname} not quiet before the drill within {timeout:.0f}s: "
                    f"{states} in Prometheus, no resolution yet at {unresolved}")
            await asyncio.sleep(0.5)

    async def wait_delivery(self, exp: Expected, since: float,
                            timeout: float | None = None) -> dict[str, Delivery]:
        """First firing delivery of `exp` at each of its receivers after `since`, once
        Alertmanager showed an alert with its labels; fails naming what is missing."""
        timeout = timeout if timeout is not None else 3 * self.page_limit(exp) + 30
        deadline = time.monotonic() + timeout
        labels = self.labels_of(exp)
        seen_alert = not labels
        while True:
            if not seen_alert:
                found = await self.alerts(alertname=exp.alertname, severity=exp.severity,
                                          **labels)
                seen_alert = bool(found)
            got: dict[str, Delivery] = {}
            for d in self.deliveries(since):
                if exp.covers(d) and d.status == "firing" and d.receiver not in got:
                    got[d.receiver] = d
            if seen_alert and exp.receivers <= set(got):
                return {r: got[r] for r in exp.receivers}
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{exp.alertname} ({exp.severity}): within {timeout:.0f}s "
                    + ("no alert with labels " + str(labels) if not seen_alert else
                       f"delivered to {sorted(got)}, missing {sorted(exp.receivers - set(got))}"))
            await asyncio.sleep(0.2)

    async def wait_resolved(self, exp: Expected, since: float,
                            timeout: float | None = None) -> dict[str, Delivery]:
        """A resolution of `exp` after `since` at each receiver that sends resolutions."""
        timeout = timeout if timeout is not None else self.resolve_limit() + 30
        want = {r for r in exp.receivers if self.send_resolved(r)}
        deadline = time.monotonic() + timeout
        while True:
            got: dict[str, Delivery] = {}
            for d in self.deliveries(since):
                if exp.covers(d) and d.status == "resolved" and d.receiver in want:
                    got[d.receiver] = d
            if want <= set(got):
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"{exp.alertname}: no resolution within {timeout:.0f}s "
                                     f"at {sorted(want - set(got))}")
            await asyncio.sleep(0.2)
