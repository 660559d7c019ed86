"""Alerts on production-shaped data (issue 13 §2): idle gaps, no history, one bad sample,
healthy runs that take their time, declined cards. Each scenario runs the generated rules
through the real `promtool test rules`; each failed on the rules before its fix."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from alert_rules.generator.promtool_tests import values_text
from tests.support.rule_scenarios import Scenario, run, series

# Weeks of samples through an area's rules: one to two minutes each alone, more beside another
# xdist worker.
pytestmark = pytest.mark.timeout(600)

APP = {"job": "saasmon-app", "instance": "app:8080", "route": "/api/x", "method": "GET"}


def counter(increments: Sequence[float], start: float = 0.0) -> str:
    """promtool values of a counter that grows by each increment per interval, runs of the
    same increment folded into `a+bxn`."""
    parts, value, i = [f"{start:g}"], start, 0
    while i < len(increments):
        j = i
        while j + 1 < len(increments) and increments[j + 1] == increments[i]:
            j += 1
        step, n = increments[i], j - i + 1
        parts.append(f"{value + step:g}+{step:g}x{n - 1}" if n > 1 else f"{value + step:g}")
        value += step * n
        i = j + 1
    return " ".join(parts)


def requests(ok: Sequence[float], errors: Sequence[float]) -> list[dict[str, str]]:
    return [series("http_requests_total", {**APP, "status": "200"}, counter(ok)),
            series("http_requests_total", {**APP, "status": "500"}, counter(errors))]


DAY = 1440  # minutes


def test_availability_is_request_weighted_and_survives_an_idle_gap() -> None:
    """a. One idle 5-minute window made the day's mean of ratios NaN (blind for 24 h); and a
    quiet hour's errors weighed like a busy hour's."""
    # 1 % errors all day at 10 req/s, with 10 idle minutes: availability 99 % < 99.5 %.
    ok = [594.0] * 700 + [0.0] * 10 + [594.0] * 800
    errors = [6.0] * 700 + [0.0] * 10 + [6.0] * 800
    blind = Scenario("1 % errors with an idle gap", requests(ok, errors))
    blind.fires(f"{DAY + 60}m", "ApiAvailabilityLow", "high")
    # 23 h at 100 req/s without an error, one night hour at 1 req/min all failing: 60
    # failures of 8.3 M requests are 99.999 % available.
    ok = [6000.0] * (23 * 60) + [0.0] * 60 + [6000.0] * 120
    errors = [0.0] * (23 * 60) + [1.0] * 60 + [0.0] * 120
    weighted = Scenario("a failing quiet hour in a busy day", requests(ok, errors))
    weighted.quiet(f"{DAY + 90}m", ["ApiAvailabilityLow"])
    run([blind, weighted], areas=["api"])


def test_one_failed_storage_probe_pages_no_one() -> None:
    """b. A 99.99 % objective on a 15 s probe: one failed probe paged critical (burn rate) and
    fired StorageAvailabilityLow."""
    probe = {"job": "blackbox-storage", "instance": "s3"}
    day = 4 * DAY  # samples at 15 s
    blip = [1.0] * (day + 40) + [0.0] + [1.0] * 600
    one = Scenario("one failed probe", [series("probe_success", probe, values_text(blip))], interval="15s")
    for minutes in (2, 5, 16, 40, 100):
        one.quiet(f"{DAY + 10 + minutes}m", ["StorageErrorBudgetBurn", "StorageAvailabilityLow"])
    # A real outage: five minutes of failures pages.
    outage = [1.0] * (day + 40) + [0.0] * 20 + [1.0] * 200
    down = Scenario("five minutes down", [series("probe_success", probe, values_text(outage))],
                    interval="15s")
    down.fires(f"{DAY + 10 + 5}m", "StorageErrorBudgetBurn", "high")
    run([one, down], areas=["storage", "slo-storage"])


def test_traffic_surge_needs_a_baseline() -> None:
    """c. Last week's quiet hour (rate 0) made the ratio +Inf: one request a minute paged."""
    week = 7 * DAY
    # Last week: 1 req/s, but silent from 2 h to 6 h; now, a week later, one request a minute.
    ok = [60.0] * 120 + [0.0] * 240 + [60.0] * (week - 240) + [1.0] * 240
    quiet = Scenario("a quiet hour last week", [
        series("http_requests_total", {**APP, "status": "200"}, counter(ok))])
    quiet.quiet(f"{week + 230}m", ["ApiTrafficSurge", "ApiTrafficDrop"])
    # A new app: two hours of history and no last week at all.
    fresh = Scenario("a brand-new app", [
        series("http_requests_total", {**APP, "status": "200"},
               "_x10080 " + counter([60.0] * 120))])
    fresh.quiet(f"{week + 115}m", ["ApiTrafficSurge", "ApiTrafficDrop"])
    # A real surge against a real baseline still pages.
    surge_ok = [60.0] * week + [60.0] * 60 + [1200.0] * 60
    surge = Scenario("20x last week", [
        series("http_requests_total", {**APP, "status": "200"}, counter(surge_ok))])
    surge.fires(f"{week + 115}m", "ApiTrafficSurge", "critical")
    run([quiet, fresh, surge], areas=["api"])


def test_reconnections_are_counted_per_hour() -> None:
    """d. nova-crm's 5 per hour was a 5-minute rate: 4 in 10 minutes fired, 6 an hour
    spread evenly never did."""
    burst = [0.0] * 60 + [1.0, 0, 1.0, 0, 1.0, 0, 1.0] + [0.0] * 60
    spread = ([0.0] * 9 + [1.0]) * 18
    name = "realtime_reconnections_total"
    labels = {"job": "saasmon-app", "instance": "app:8080"}
    run([
        Scenario("4 in 10 minutes", [series(name, labels, counter(burst))])
        .quiet("75m", ["RealtimeReconnectionsHigh"]).quiet("80m", ["RealtimeReconnectionsHigh"]),
        Scenario("6 an hour, spread", [series(name, labels, counter(spread))])
        .fires("150m", "RealtimeReconnectionsHigh", "high"),
    ])


def test_a_healthy_slow_cron_run_is_not_a_missed_success() -> None:
    """e. A */30 job whose healthy runs take 1 to 9 minutes: the last success is stamped at
    the end of a run, so 38 minutes pass between a quick run and a slow one; the bare
    30-minute period fired high."""
    job = {"job": "saasmon-cron", "instance": "cron:9", "cron_job": "process-promotion-deliveries"}
    # Runs start at :00 and :30; they take 1 minute, then 9, then 1 ...
    done = sorted(start + (1 if (start // 30) % 2 == 0 else 9) for start in range(0, 240, 30))
    ends = [max([d for d in done if d <= m], default=0) * 60 for m in range(240)]
    healthy = [
        series("cron_job_last_success_timestamp_seconds", job, values_text([float(e) for e in ends])),
        series("cron_job_max_runtime_seconds", job, "600+0x240"),
        series("cron_job_grace_seconds", job, "300+0x240"),
    ]
    ok = Scenario("runs of 8 minutes every 30", healthy)
    for minute in range(40, 240, 7):
        ok.quiet(f"{minute}m", ["CronJobNoRecentSuccess"])
    # The job stops succeeding after 2 h: it fires once period + max runtime + grace passed.
    stalled = [float(e) if m < 120 else float(ends[119]) for m, e in enumerate(ends)]
    stopped = Scenario("no success after two hours", [
        series("cron_job_last_success_timestamp_seconds", job, values_text(stalled)), *healthy[1:]])
    stopped.fires("235m", "CronJobNoRecentSuccess", "high")
    run([ok, stopped])


def test_a_declined_card_pages_no_one() -> None:
    """u. PaymentFailures (P0, "any Stripe error") paged on every declined card."""
    labels = {"job": "saasmon-integrations", "instance": "int:9"}
    steady = [0.0] * 30 + [1.0] + [0.0] * 30
    declined = Scenario("a declined card", [
        series("integration_payments_total", {**labels, "status": "failed"}, counter(steady)),
        series("integration_payment_errors_total", labels, counter([0.0] * 61)),
    ]).quiet("33m", ["PaymentFailures"]).quiet("40m", ["PaymentFailures"])
    error = Scenario("a Stripe API error", [
        series("integration_payments_total", {**labels, "status": "failed"}, counter(steady)),
        series("integration_payment_errors_total", labels, counter(steady)),
    ]).fires("33m", "PaymentFailures", "critical")
    run([declined, error])


def test_connection_ceiling_fires_when_the_app_has_no_slot_left() -> None:
    """h. `connections >= 100` could never be reached: superuser slots are reserved."""
    pg = {"job": "saasmon-postgres", "instance": "db:5432"}
    settings = [series("pg_settings_max_connections", pg, "100+0x30"),
                series("pg_settings_superuser_reserved_connections", pg, "3+0x30")]
    full = Scenario("97 of 100 taken", [
        *settings, series("pg_connections_used_ratio", pg, "0.5+0x10 0.97+0x20")])
    full.fires("14m", "PostgresConnectionsExhausted", "critical")
    room = Scenario("96 of 100 taken", [
        *settings, series("pg_connections_used_ratio", pg, "0.96+0x30")])
    room.quiet("20m", ["PostgresConnectionsExhausted"])
    run([full, room])


def test_postgres_down_and_its_budget_burn_share_the_labels_that_mute() -> None:
    """q. DatabaseErrorBudgetBurn had no `target`, so PostgresDown (area, job, instance,
    target: alertmanager.yml's Down rule) never muted it: two pages for one outage."""
    labels = {"job": "saasmon-postgres", "instance": "db:9630", "target": "postgres"}
    down = Scenario("the database goes down", [
        series("pg_up", labels, "1+0x60 0+0x30")], interval="1m")
    for alert in ("PostgresDown", "DatabaseErrorBudgetBurn"):
        down.firing.append(("85m", alert, "critical"))
    matchers = ",".join(f'{k}="{v}"' for k, v in labels.items())
    down.exprs.append((
        "85m", f'group by (alertname, area) (ALERTS{{alertstate="firing",{matchers}}})',
        [{"labels": f'{{alertname="{a}",area="database"}}', "value": 1}
         for a in ("DatabaseErrorBudgetBurn", "PostgresDown")]))
    run([down], areas=["database", "slo-database"])


def test_cache_warm_items_are_judged_on_finished_scans_only() -> None:
    """l. A SCAN cut short by its budget reports a lower bound: 40 of a million keys seen
    is not "fewer than 100 warmed items"."""
    labels = {"job": "saasmon-redis", "instance": "r:9", "target": "main",
              "pattern": "library:item:*"}
    partial = Scenario("scan cut short", [
        series("redis_key_pattern_keys", labels, "40+0x60"),
        series("redis_key_pattern_scan_complete", labels, "0+0x60")])
    partial.quiet("50m", ["RedisCacheWarmItemsLow"])
    complete = Scenario("a finished scan", [
        series("redis_key_pattern_keys", labels, "40+0x60"),
        series("redis_key_pattern_scan_complete", labels, "1+0x60")])
    complete.fires("50m", "RedisCacheWarmItemsLow", "low")
    run([partial, complete], areas=["redis"])


def test_a_down_server_pages_tpt_erp_server_down_within_its_escalation() -> None:
    """t. "server_down" was the mean request latency > 30 s: a down server sends no
    requests, so it never fired. The probe fails instead, and pages inside 2 minutes."""
    probe = {"job": "saasmon-app-probe", "instance": "https://app.example/health"}
    requests_stop = [series("http_requests_total", {**APP, "status": "200"},
                            counter([600.0] * 20 + [0.0] * 10)),
                     series("probe_success", probe, "1+0x20 0+0x10")]
    down = Scenario("the server stops answering", requests_stop)
    down.exprs.append(("22m", 'group(ALERTS{alertname="AppEndpointDown",guide=~"(.+,)?tpt-erp(,.+)?",'
                              'severity="critical",alertstate="firing"})',
                       [{"labels": "{}", "value": 1}]))
    run([down], areas=["api", "health"])


def test_network_saturation_is_per_direction() -> None:
    """j. rx + tx against a per-direction link speed overstated use up to 2x: a full-duplex
    link half used each way read as 100 %."""
    node = {"job": "node", "instance": "h:9100", "device": "eth0"}
    speed = 125_000_000.0  # 1 Gbit/s
    half = speed * 0.5 * 60
    both_half = Scenario("half the link each way", [
        series("node_network_receive_bytes_total", node, counter([half] * 30)),
        series("node_network_transmit_bytes_total", node, counter([half] * 30)),
        series("node_network_speed_bytes", node, f"{speed:g}+0x30")])
    both_half.quiet("25m", ["HostNetworkSaturated"])
    full_rx = Scenario("receive at 97 %", [
        series("node_network_receive_bytes_total", node, counter([speed * 0.97 * 60] * 30)),
        series("node_network_transmit_bytes_total", node, counter([half / 10] * 30)),
        series("node_network_speed_bytes", node, f"{speed:g}+0x30")])
    full_rx.fires("25m", "HostNetworkSaturated", "critical")
    run([both_half, full_rx], areas=["host"])


def test_storage_fill_reads_the_configured_volume_and_says_when_it_is_unset() -> None:
    """n. The fill ratio divided by a 100 GiB constant: a 1 TiB volume paged at 80 GiB
    and a 20 GiB one never did. Now the exporter's allocated_storage_bytes, and a bundle
    alert while it is unset."""
    pg = {"job": "saasmon-postgres", "instance": "db:9630"}
    size = series("pg_database_size_bytes", {**pg, "database": "app"}, "19e9+0x90")
    small = Scenario("a 20 GB volume at 95 %", [
        size, series("pg_storage_allocated_bytes", pg, "20e9+0x90")])
    small.fires("30m", "PostgresStorageHigh", "medium").quiet("30m", ["PostgresStorageLimitUnset"])
    unset = Scenario("no volume size configured", [size])
    unset.fires("80m", "PostgresStorageLimitUnset", "low").quiet("80m", ["PostgresStorageHigh"])
    run([small, unset], areas=["database"])


def test_unused_indexes_are_judged_on_primaries_only() -> None:
    """A standby's index statistics count only its own scans: every index looked unused
    there (18 on the demo's standby)."""
    def node(instance: str, replica: int) -> list[dict[str, str]]:
        labels = {"job": "saasmon-postgres", "instance": instance}
        return [series("pg_unused_indexes", labels, "4+0x1500"),
                series("pg_replication_is_replica", labels, f"{replica}+0x1500")]
    scenario = Scenario("a primary and its standby", [*node("primary:9630", 0),
                                                      *node("standby:9630", 1)])
    scenario.exprs.append(("1450m", 'count by (instance) (ALERTS{alertname="PostgresUnusedIndexes",'
                                    'alertstate="firing"})',
                           [{"labels": '{instance="primary:9630"}', "value": 1}]))
    run([scenario], areas=["database"])


def test_slow_queries_are_judged_on_recent_executions() -> None:
    """g. The mean since the statistics' reset: a one-off slow load kept the 100 ms level
    firing for ever, and a fixed statement never cleared."""
    labels = {"job": "saasmon-postgres", "instance": "db:9630", "database": "app",
              "queryid": "1", "query": "SELECT ..."}
    # A 40 s data load once (mean 40 s for ever after), then 10 fast calls a minute.
    calls = series("pg_stat_statements_calls_total", labels, counter([1.0] + [10.0] * 60))
    spent = series("pg_stat_statements_exec_seconds_total", labels,
                   counter([40.0] + [0.1] * 60))
    mean = series("pg_stat_statements_mean_exec_seconds", labels, "40+0x61")
    quiet = Scenario("a one-off slow load, then fast calls", [calls, spent, mean])
    quiet.quiet("20m", ["PostgresSlowQueries"]).quiet("50m", ["PostgresSlowQueries"])
    # A statement that is slow now (2 s a call) pages, and clears once it is fixed.
    slow_calls = series("pg_stat_statements_calls_total", labels, counter([5.0] * 60))
    slow_spent = series("pg_stat_statements_exec_seconds_total", labels,
                        counter([10.0] * 20 + [0.05] * 40))
    slow = Scenario("slow, then fixed", [slow_calls, slow_spent])
    slow.fires("15m", "PostgresSlowQueries", "medium").quiet("40m", ["PostgresSlowQueries"])
    # A statement first seen now, run once for 6 s: its only run made its series (rate()
    # sees no increase), so its mean stands for it while it is new: medium (tpt-erp 5 s).
    other = {**labels, "queryid": "2", "query": "SELECT report ..."}
    new = Scenario("a new statement, slow once", [
        calls, spent,
        series("pg_stat_statements_calls_total", other, "_x30 1+0x30"),
        series("pg_stat_statements_exec_seconds_total", other, "_x30 6+0x30"),
        series("pg_stat_statements_mean_exec_seconds", other, "_x30 6+0x30")])
    new.fires("33m", "PostgresSlowQueries", "medium").quiet("45m", ["PostgresSlowQueries"])
    run([quiet, slow, new], areas=["database"])


def test_routine_rollbacks_are_not_database_errors() -> None:
    """v. estimate-library's "DB errors < 0.01 %" was PostgresRollbackRateHigh, the rolled-back
    share of transactions: an ORM rolling back its read-only requests kept it firing. The
    app's failed statements are the errors; routine rollbacks and users' duplicates are not."""
    pg = {"job": "saasmon-postgres", "instance": "db:9630", "database": "app"}
    app = {"job": "saasmon-app", "instance": "app:8080"}
    minutes = 90
    # 100 transactions a second, one in five rolled back by the ORM; 300 statements a second.
    traffic = [series("pg_database_xact_commit_total", pg, counter([4800.0] * minutes)),
               series("pg_database_xact_rollback_total", pg, counter([1200.0] * minutes)),
               series("db_statements_total", app, counter([18000.0] * minutes)),
               # A duplicate email now and then, answered 409: the users' input, not a fault.
               series("db_statement_errors_total", {**app, "class": "23"},
                      counter([3.0] * minutes))]
    routine = Scenario("an ORM's routine rollbacks", [
        *traffic, series("db_statement_errors_total", {**app, "class": "40"},
                         counter([0.0] * minutes))])
    for at in ("20m", "45m", "85m"):
        routine.quiet(at, ["PostgresRollbackRateHigh", "DatabaseErrorRateHigh"])
    # Deadlocks: 9 a minute of 18,000 statements is 0.05 %, over the 0.01 % target.
    failing = Scenario("deadlocks aborting statements", [
        *traffic, series("db_statement_errors_total", {**app, "class": "40"},
                         counter([9.0] * minutes))])
    failing.fires("85m", "DatabaseErrorRateHigh", "low")
    run([routine, failing], areas=["database"])


def _status_page(incidents: str) -> dict[str, str]:
    return series("probe_incidents", {"job": "saasmon-integration-probe",
                                      "instance": "status-page"}, incidents)


def test_a_sev1_without_a_status_page_incident_is_flagged_after_30_minutes() -> None:
    """§7: saas-ops-module's "status page update within 30 minutes" for SEV1/2, on the real
    ALERTS series promtool's rule evaluation writes: the app probe fails (AppEndpointDown,
    critical for saas-ops-module) and our status page lists no incident."""
    probe = {"job": "saasmon-app-probe", "instance": "app"}
    down = [series("probe_success", probe, "1+0x10 0+0x80")]
    silent = Scenario("an outage nobody posts", [*down, _status_page("0+0x90")])
    # AppEndpointDown fires at ~12 m (its `for`); 30 minutes of it without an incident.
    silent.quiet("35m", ["StatusPageNotUpdated"]).fires("50m", "StatusPageNotUpdated", "high")
    posted = Scenario("an outage posted at 20 minutes", [*down, _status_page("0+0x20 1+0x70")])
    posted.quiet("50m", ["StatusPageNotUpdated"]).quiet("85m", ["StatusPageNotUpdated"])
    healthy = Scenario("nothing fires", [series("probe_success", probe, "1+0x90"),
                                         _status_page("0+0x90")])
    healthy.quiet("85m", ["StatusPageNotUpdated"])
    # The alert is high itself: it must not keep itself going once the outage ends.
    recovers = Scenario("the outage ends", [series("probe_success", probe, "1+0x10 0+0x50 1+0x40"),
                                            _status_page("0+0x100")])
    recovers.fires("55m", "StatusPageNotUpdated", "high").quiet("95m", ["StatusPageNotUpdated"])
    run([silent, posted, healthy, recovers], areas=["health", "incident"])


def test_an_incident_open_past_its_p_level_window_is_overdue() -> None:
    """§7: tpt-erp's resolution times (P1 4 h ...), on ALERTS_FOR_STATE: tpt-erp's critical
    AppEndpointDown ("server down") still firing after 4 hours."""
    probe = {"job": "saasmon-app-probe", "instance": "app"}
    long = Scenario("down for five hours", [series("probe_success", probe, "1+0x10 0+0x300")],
                    interval="1m")
    long.quiet("200m", ["IncidentResolutionOverdue"])
    long.exprs.append(("260m", 'ALERTS{alertname="IncidentResolutionOverdue",alertstate="firing",'
                               'guide="tpt-erp",alert="AppEndpointDown"}',
                       [{"labels": '{__name__="ALERTS",alertname="IncidentResolutionOverdue",'
                                   'alert="AppEndpointDown",alertstate="firing",area="incident",'
                                   'guide="tpt-erp",guide_level="P1 resolution 4 h",'
                                   'job="saasmon-app-probe",severity="critical"}', "value": 1}]))
    fixed = Scenario("fixed after three hours", [
        series("probe_success", probe, "1+0x10 0+0x180 1+0x110")])
    fixed.quiet("250m", ["IncidentResolutionOverdue"]).quiet("300m", ["IncidentResolutionOverdue"])
    run([long, fixed], areas=["health", "incident"])
