"""A healthy production, minute by minute, as the raw series the exporters and the
third-party exporters (node, blackbox) expose: the input of the behaviour suite's world
shapes (tests/integration/test_alert_shapes.py).

Every value sits inside every guide's targets. A shape (an idle gap, a brand-new deployment,
a counter reset, an exporter restart, one failed probe, a declined card) changes the
timeline, never the healthy values; the suite then asks the real rules, through
`promtool test rules`, whether anyone is paged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from alert_rules.generator.promtool_tests import fmt
from tests.support.rule_scenarios import series

APP = {"job": "saasmon-app", "instance": "app-1:8080"}
ROUTE = {**APP, "route": "/api/contacts", "method": "GET"}
PG = {"job": "saasmon-postgres", "instance": "pg-exporter:9187", "target": "main"}
REDIS = {"job": "saasmon-redis", "instance": "redis-exporter:9121", "target": "cache"}
NODE = {"job": "node", "instance": "app-1:9100"}
INTEGRATIONS = {"job": "saasmon-integrations", "instance": "integrations:9632"}
CRON = {"job": "saasmon-cron", "instance": "cron:9631"}
WEBVITALS = {"job": "saasmon-webvitals", "instance": "webvitals:9634"}
MINUTE = 60

# Records a healthy production with the shipped defaults does not have, and why.
ABSENT_BY_DEFAULT = {
    # cron exporter: expected_jobs is unset by default (its README says to set it).
    "job:cron_jobs_unregistered:count": "expected_jobs unset",
    # only exists while a database size has no configured storage limit (it is set here).
    "instance:pg_storage_allocated:unset": "storage limit configured",
    # a ratio to last week's traffic: the world is shorter than a week; a quiet or missing
    # last week is test_alert_behaviour.py's test_traffic_surge_needs_a_baseline.
    "job:http_requests:rate5m_vs_1w": "no last week",
    "job:http_requests:rate5m_1w_ago": "no last week",
    # cloudwatch_exporter is not part of the bundle (it needs AWS credentials).
    "distribution:aws_cloudfront_cache_hit:ratio_avg30m": "no CloudWatch",
    # both read firing alerts (ALERTS, ALERTS_FOR_STATE): a healthy world has none.
    "job:status_page_silent_sev12:bool": "no alert firing",
    "alert:alerts_firing_age:seconds": "no alert firing",
}


@dataclass(frozen=True)
class Line:
    """One raw series: a counter (`per_minute`), a gauge (`value`) or a timestamp gauge
    (`age`: seconds behind the evaluation clock, or `period`/`lag` for a periodic job)."""

    name: str
    labels: dict[str, str]
    per_minute: float | None = None
    value: float | None = None
    age: float | None = None
    period: float | None = None  # a job that succeeds every `period` s, `lag` s after its start
    lag: float = 0.0
    traffic: bool = False  # grows with user traffic: flat during an idle gap

    @property
    def counter(self) -> bool:
        return self.per_minute is not None


def _histogram(name: str, labels: dict[str, str], per_minute: float,
               shares: Iterable[tuple[str, float]]) -> list[Line]:
    """Cumulative buckets of a histogram with `per_minute` observations (shares per le)."""
    lines = [Line(f"{name}_bucket", {**labels, "le": le}, per_minute=per_minute * share, traffic=True)
             for le, share in shares]
    return [*lines, Line(f"{name}_bucket", {**labels, "le": "+Inf"}, per_minute=per_minute, traffic=True)]


# Fast requests: median ~30 ms, p99 under 0.5 s, nothing slower than 5 s.
LATENCY = (("0.05", 0.8), ("0.1", 0.93), ("0.2", 0.98), ("0.5", 0.999), ("1.0", 1.0), ("2.5", 1.0),
           ("5.0", 1.0), ("10.0", 1.0), ("30.0", 1.0))
# Good Web Vitals (seconds; CLS unitless) and realtime delays, as shares at each bucket.
GOOD_SECONDS = (("0.05", 0.6), ("0.1", 0.9), ("0.2", 0.97), ("0.5", 0.99), ("0.8", 1.0), ("1.0", 1.0),
                ("1.8", 1.0), ("2.5", 1.0), ("4.0", 1.0))
GOOD_CLS = (("0.01", 0.7), ("0.05", 0.95), ("0.1", 1.0), ("0.25", 1.0))


def healthy() -> list[Line]:
    requests = 600.0  # per minute: 10 requests/s
    lines = [
        Line("http_requests_total", {**ROUTE, "status": "200"}, per_minute=requests, traffic=True),
        Line("http_requests_total", {**ROUTE, "status": "500"}, per_minute=0.0, traffic=True),
        Line("http_request_duration_seconds_sum", ROUTE, per_minute=requests * 0.03, traffic=True),
        Line("http_request_duration_seconds_count", ROUTE, per_minute=requests, traffic=True),
        *_histogram("http_request_duration_seconds", ROUTE, requests, LATENCY),
        Line("http_request_errors_total", {**APP, "class": "exception"}, per_minute=0.0, traffic=True),
        # Sign-ins succeed; the app counts its database statements, none failing.
        Line("http_requests_total", {**APP, "route": "/api/login", "method": "POST", "status": "200"},
             per_minute=20.0, traffic=True),
        Line("db_statements_total", APP, per_minute=6000.0, traffic=True),
        Line("db_statement_errors_total", {**APP, "class": "40"}, per_minute=0.0, traffic=True),
        # Our own certificate has two months left.
        Line("probe_ssl_earliest_cert_expiry", {"job": "saasmon-app-probe", "instance": "https://app/health"},
             age=-60 * 86400.0),
        *_histogram("realtime_message_delay_seconds", APP, 120, GOOD_SECONDS),
        *_histogram("realtime_socket_latency_seconds", APP, 120, GOOD_SECONDS),
        Line("realtime_reconnections_total", APP, per_minute=0.0, traffic=True),
        # Node: 30 % CPU on 2 cores, half the memory, light disk and network on a 1 Gbit NIC.
        *[Line("node_cpu_seconds_total", {**NODE, "cpu": c, "mode": "idle"}, per_minute=42.0)
          for c in ("0", "1")],
        Line("node_memory_MemAvailable_bytes", NODE, value=8e9),
        Line("node_vmstat_oom_kill", NODE, per_minute=0.0),
        Line("node_memory_MemTotal_bytes", NODE, value=16e9),
        Line("node_disk_reads_completed_total", {**NODE, "device": "sda"}, per_minute=600.0),
        Line("node_disk_writes_completed_total", {**NODE, "device": "sda"}, per_minute=600.0),
        Line("node_network_receive_bytes_total", {**NODE, "device": "eth0"}, per_minute=6e6, traffic=True),
        Line("node_network_transmit_bytes_total", {**NODE, "device": "eth0"}, per_minute=6e6, traffic=True),
        Line("node_network_speed_bytes", {**NODE, "device": "eth0"}, value=125e6),
        # PostgreSQL: 20 of 100 connections, 10 ms statements, no deadlocks, a primary.
        Line("pg_up", PG, value=1.0),
        Line("pg_connections", {**PG, "state": "active"}, value=5.0),
        Line("pg_connections", {**PG, "state": "idle"}, value=15.0),
        Line("pg_connections_used_ratio", PG, value=0.2),
        Line("pg_settings_max_connections", PG, value=100.0),
        Line("pg_settings_superuser_reserved_connections", PG, value=3.0),
        Line("pg_database_deadlocks_total", {**PG, "datname": "app"}, per_minute=0.0),
        Line("pg_database_size_bytes", {**PG, "datname": "app"}, value=10e9),
        Line("pg_storage_allocated_bytes", PG, value=100e9),
        Line("pg_database_xact_commit_total", {**PG, "datname": "app"}, per_minute=6000.0, traffic=True),
        Line("pg_database_xact_rollback_total", {**PG, "datname": "app"}, per_minute=0.0, traffic=True),
        Line("pg_replication_is_replica", PG, value=0.0),
        Line("pg_stat_statements_all_calls_total", PG, per_minute=6000.0, traffic=True),
        Line("pg_stat_statements_all_exec_seconds_total", PG, per_minute=60.0, traffic=True),
        Line("pg_stat_statements_calls_total", {**PG, "queryid": "101"}, per_minute=3000.0, traffic=True),
        Line("pg_stat_statements_exec_seconds_total", {**PG, "queryid": "101"}, per_minute=30.0,
             traffic=True),
        Line("pg_stat_statements_mean_exec_seconds", {**PG, "queryid": "101"}, value=0.01),
        Line("pg_table_seq_scan_total", {**PG, "relname": "contacts"}, per_minute=10.0, traffic=True),
        Line("pg_table_seq_tup_read_total", {**PG, "relname": "contacts"}, per_minute=1000.0,
             traffic=True),
        Line("pg_unused_indexes", PG, value=0.0),
        # Redis: 95 % hits, no evictions, a finished scan of the warmed items.
        Line("redis_up", REDIS, value=1.0),
        Line("redis_evicted_keys_total", REDIS, per_minute=0.0),
        Line("redis_keyspace_hits_total", REDIS, per_minute=5700.0, traffic=True),
        Line("redis_keyspace_misses_total", REDIS, per_minute=300.0, traffic=True),
        Line("redis_key_pattern_keys", {**REDIS, "pattern": "library:item:*"}, value=5000.0),
        Line("redis_key_pattern_scan_complete", {**REDIS, "pattern": "library:item:*"}, value=1.0),
        # Probes: storage and the app answer; health pages say operational.
        Line("probe_success", {"job": "blackbox-storage", "instance": "s3"}, value=1.0),
        Line("probe_success", {"job": "saasmon-app-probe", "instance": "https://app/health"}, value=1.0),
        *[Line("probe_status", {"job": job, "instance": instance, "status": status},
               value=1.0 if status == "operational" else 0.0)
          for job, instance in (("saasmon-app-probe", "https://app/health"),
                                ("saasmon-integration-probe", "stripe"))
          for status in ("operational", "degraded", "partial_outage", "major_outage")],
        *[Line("probe_component_status", {"job": "saasmon-app-probe", "instance": "https://app/health",
                                          "component": "database", "status": status},
               value=1.0 if status == "operational" else 0.0)
          for status in ("operational", "degraded")],
        # Integrations: payments succeed, messages and webhooks flow, no provider errors.
        Line("integration_payments_total", {**INTEGRATIONS, "status": "succeeded"}, per_minute=20.0,
             traffic=True),
        Line("integration_payments_total", {**INTEGRATIONS, "status": "failed"}, per_minute=0.0,
             traffic=True),
        Line("integration_payment_errors_total", {**INTEGRATIONS, "code": "api_error"}, per_minute=0.0),
        Line("integration_message_deliveries_total", {**INTEGRATIONS, "channel": "sms",
                                                      "status": "delivered"}, per_minute=10.0,
             traffic=True),
        Line("integration_message_deliveries_total", {**INTEGRATIONS, "channel": "sms",
                                                      "status": "failed"}, per_minute=0.0, traffic=True),
        Line("integration_webhook_events_total", {**INTEGRATIONS, "provider": "stripe",
                                                  "status": "processed"}, per_minute=5.0, traffic=True),
        Line("integration_webhook_events_total", {**INTEGRATIONS, "provider": "stripe",
                                                  "status": "failed"}, per_minute=0.0, traffic=True),
        # A */30 job whose healthy runs finish 8 minutes after they start.
        Line("cron_job_last_success_timestamp_seconds", {**CRON, "cron_job": "sync-contacts"},
             period=1800.0, lag=480.0),
        Line("cron_job_max_runtime_seconds", {**CRON, "cron_job": "sync-contacts"}, value=1800.0),
        Line("cron_job_grace_seconds", {**CRON, "cron_job": "sync-contacts"}, value=300.0),
        *[Line(f"{exporter}_exporter_collector_last_success_timestamp_seconds",
               {"job": f"saasmon-{exporter}", "instance": f"{exporter}:9000", "collector": "main"},
               age=10.0)
          for exporter in ("postgres", "redis", "business")],
        # The guides' critical test queries answer in 10 ms; audit rows are purged at 90 days.
        *[Line("business_query_duration_seconds", {"job": "saasmon-business", "instance": "business:9634",
                                                    "query": query}, value=0.01)
          for query in ("critical_customer_lookup", "critical_pending_opportunities",
                        "critical_opportunities_by_status")],
        Line("business_audit_log_oldest_timestamp_seconds",
             {"job": "saasmon-business", "instance": "business:9634"}, age=60 * 86400.0),
        # Our status page lists no incident.
        Line("probe_incidents", {"job": "saasmon-integration-probe", "instance": "status-page"}, value=0.0),
        Line("prometheus_rule_evaluation_failures_total", {"job": "prometheus", "instance": "prom:9090",
                                                            "rule_group": "saasmon-api"}, per_minute=0.0),
        Line("alertmanager_notifications_failed_total", {"job": "alertmanager", "instance": "am:9093",
                                                         "integration": "slack"}, per_minute=0.0),
    ]
    for vital, shares in (("cls", GOOD_CLS), ("fcp_seconds", GOOD_SECONDS), ("fid_seconds", GOOD_SECONDS),
                          ("inp_seconds", GOOD_SECONDS), ("lcp_seconds", GOOD_SECONDS),
                          ("ttfb_seconds", GOOD_SECONDS)):
        lines += _histogram(f"webvitals_{vital}", WEBVITALS, 60, shares)
    return lines


# A sample is a value, or None for "not scraped" (promtool's `_`).
Sample = float | None


@dataclass
class Timeline:
    """The healthy world over `minutes`, and what the shape does to it."""

    minutes: int
    idle: set[int] = field(default_factory=set)  # minutes without user traffic
    start: int = 0  # first scraped minute (a brand-new deployment has nothing before)
    resets: set[int] = field(default_factory=set)  # counters restart from 0 at these minutes
    missing: set[int] = field(default_factory=set)  # minutes with no scrape (a restart)
    # (name, label subset) -> minute -> value: one series' samples replaced.
    overrides: dict[tuple[str, tuple[tuple[str, str], ...]], dict[int, float]] = field(default_factory=dict)
    # Extra counters: (line, increments per minute) for faults and one-off events.
    extra: list[tuple[Line, Callable[[int], float]]] = field(default_factory=list)

    def override(self, name: str, labels: dict[str, str], samples: dict[int, float]) -> Timeline:
        self.overrides[(name, tuple(sorted(labels.items())))] = samples
        return self

    def add(self, line: Line, increments: Callable[[int], float]) -> Timeline:
        self.extra.append((line, increments))
        return self

    def samples(self, line: Line, increments: Callable[[int], float] | None = None) -> list[Sample]:
        out: list[Sample] = []
        total = 0.0
        override = next((o for (name, labels), o in self.overrides.items()
                         if name == line.name and set(labels) <= set(line.labels.items())), {})
        for minute in range(self.minutes + 1):
            if minute < self.start or minute in self.missing:
                out.append(None)
                continue
            if minute in self.resets:
                total = 0.0
            if increments is not None:
                total += increments(minute)
                value = total
            elif line.counter:
                assert line.per_minute is not None
                total += 0.0 if (line.traffic and minute in self.idle) else line.per_minute
                value = total
            elif line.period is not None:
                now = minute * MINUTE
                value = (now - line.lag) // line.period * line.period + line.lag
            elif line.age is not None:
                value = minute * MINUTE - line.age
            else:
                assert line.value is not None
                value = line.value
            out.append(override.get(minute, value))
        return out

    def input_series(self, labels: dict[str, str] | None = None) -> list[dict[str, str]]:
        """Every series of the world; `labels` added to each (e.g. the cluster it runs in)."""
        lines = [(line, None) for line in healthy()] + list(self.extra)
        return [series(line.name, {**line.labels, **(labels or {})}, text(self.samples(line, inc)))
                for line, inc in lines]


def text(samples: list[Sample]) -> str:
    """promtool's expanding notation: runs of a constant step as `a+bxn`, gaps as `_xn`."""
    parts: list[str] = []
    i = 0
    while i < len(samples):
        if samples[i] is None:
            j = i
            while j + 1 < len(samples) and samples[j + 1] is None:
                j += 1
            parts.append("_" if j == i else f"_x{j - i + 1}")
            i = j + 1
            continue
        first = samples[i]
        assert first is not None
        j, step = i, None
        while j + 1 < len(samples) and samples[j + 1] is not None:
            nxt = samples[j + 1]
            assert nxt is not None
            current = samples[j]
            assert current is not None
            delta = nxt - current
            if step is None:
                step = delta
            elif delta != step:
                break
            j += 1
        if j == i:
            parts.append(fmt(first))
        else:
            assert step is not None
            sign = "+" if step >= 0 else "-"
            parts.append(f"{fmt(first)}{sign}{fmt(abs(step))}x{j - i}")
        i = j + 1
    return " ".join(parts)


def with_traffic(line: Line, per_minute: float) -> Line:
    return replace(line, per_minute=per_minute)
