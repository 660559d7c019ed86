"""Business exporter against a real PostgreSQL filled by the data generator.

Every KPI of the default pack is checked against the same KPI computed in Python from the
rows (tests/support/business.py follows the written definitions, not the SQL).
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from devstack.exporter import Exporter, run_cli
from devstack.metrics import Samples, parse, total, value
from devstack.servers import PostgresServer
from refapp.datagen import TABLES, Knobs, generate_into
from saasmon.business.config import BusinessConfig
from saasmon.business.pack import DEFAULT_PACK
from saasmon.runtime.config import ConfigError, load_config
from tests.support.business import Key, expected

Run = Callable[..., Exporter]
SECRET = "Biz-S3cret-Pw-91"
# Knobs that push KPIs across the guides' alert levels in the drill database.
DRILL = Knobs().replace(dau_scale=0.18, session_duration_seconds=200, churn_rate=0.3,
                        conversion_rate=0.02, match_accuracy=0.7, assistant_latency_seconds=7,
                        assistant_satisfaction=2.2, support_tickets_per_month=30,
                        task_completion_rate=0.6, library_adoption=0.5)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _dsn(server: PostgresServer, db: str, password: str | None = None) -> str:
    auth = f"postgres:{password}" if password else "postgres"
    return f"postgresql://{auth}@127.0.0.1:{server.port}/{db}"


@pytest.fixture(scope="module")
def module_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="saasmon-business-"))
    path.chmod(0o755)
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


@pytest.fixture(scope="module")
def crm(module_dir: Path) -> Iterator[PostgresServer]:
    """One server, two generated databases: `healthy` (default knobs) and `drill`."""
    server = PostgresServer(module_dir / "pg", max_connections=30)
    server.start()
    server.psql("CREATE EXTENSION pg_stat_statements")
    for db in ("healthy", "drill"):
        server.psql(f"CREATE DATABASE {db}")

    async def fill() -> None:
        now = _now()
        await asyncio.gather(generate_into(_dsn(server, "healthy"), now=now),
                             generate_into(_dsn(server, "drill"), now=now, knobs=DRILL))

    asyncio.run(fill())
    yield server
    server.stop("immediate")


def _start(kind_dir: Path, config: dict[str, Any], started: list[Exporter]) -> Exporter:
    exporter = Exporter("business", config, kind_dir)
    started.append(exporter)
    return exporter.start()


@pytest.fixture(scope="module")
def module_exporters() -> Iterator[list[Exporter]]:
    started: list[Exporter] = []
    yield started
    for exporter in started:
        exporter.stop()


@pytest.fixture(scope="module")
def healthy(crm: PostgresServer, module_dir: Path,
            module_exporters: list[Exporter]) -> Exporter:
    return _start(module_dir, {"dsn": _dsn(crm, "healthy")}, module_exporters)


@pytest.fixture(scope="module")
def drill(crm: PostgresServer, module_dir: Path, module_exporters: list[Exporter]) -> Exporter:
    return _start(module_dir, {"dsn": _dsn(crm, "drill"), "target": "drill"}, module_exporters)


async def _fetch_rows(dsn: str) -> dict[str, list[dict[str, Any]]]:
    conn = await asyncpg.connect(dsn)
    try:
        return {t: [dict(r) for r in await conn.fetch(f"SELECT * FROM {t}")] for t in TABLES}
    finally:
        await conn.close()


def _pack_series(samples: Samples) -> dict[Key, float]:
    names = {m["name"] for q in yaml.safe_load(DEFAULT_PACK.read_text())["queries"]
             for m in q.get("metrics", [])}
    return {(n, ls): v for (n, ls), v in samples.items() if n in names}


def _query_of_metric() -> dict[str, str]:
    pack = yaml.safe_load(DEFAULT_PACK.read_text())
    return {m["name"]: q["name"] for q in pack["queries"] for m in q.get("metrics", [])}


def test_every_default_pack_kpi_equals_its_definition_computed_from_the_rows(
        crm: PostgresServer, healthy: Exporter) -> None:
    samples = healthy.scrape()
    assert value(samples, "business_up", target="app") == 1
    rows = asyncio.run(_fetch_rows(_dsn(crm, "healthy")))
    owner = _query_of_metric()
    exported = _pack_series(samples)
    checked: set[Key] = set()
    for collector in sorted(set(owner.values())):
        assert value(samples, "business_exporter_collector_success",
                     collector=collector) == 1, healthy.log()
        # The query's now() lies between the run's start and end: compute at both ends
        # (a row crossing a window edge within those milliseconds may flip the result).
        end = value(samples, "business_exporter_collector_last_success_timestamp_seconds",
                    collector=collector)
        begin = end - value(samples, "business_exporter_collector_duration_seconds",
                            collector=collector)
        at_begin, at_end = expected(rows, begin), expected(rows, end)
        for key in at_end:
            if owner[key[0]] != collector:
                continue
            checked.add(key)
            candidates = [at_begin[key], at_end[key]]
            if all(c is None for c in candidates):
                assert key not in exported, f"{key}: NULL must export no sample"
                continue
            assert key in exported, f"{key} missing; expected {candidates}"
            assert any(c is not None and math.isclose(exported[key], c, rel_tol=1e-9,
                                                      abs_tol=1e-9) for c in candidates), (
                f"{key}: exported {exported[key]}, computed {candidates}")
    assert set(exported) <= checked
    # Every metric of the pack was exercised, with a value, on this data.
    assert {name for name, _ in exported} == set(owner)


# (metric, labels, alert level, side on which the drill must land) — nova-crm §
# postLaunchDashboard alert levels; estimate-library § Success Criteria targets.
CROSSINGS = [
    ("business_daily_active_users", 100, "below"),
    ("business_monthly_active_users", 500, "below"),
    ("business_session_duration_seconds", 300, "below"),
    ("business_churn_ratio", 0.10, "above"),
    ("business_ltv_sar", 5000, "below"),
    ("business_conversion_ratio", 0.05, "below"),
    ("business_smart_match_accuracy_ratio", 0.85, "below"),
    ("business_assistant_response_seconds", 5.0, "above"),
    ("business_assistant_satisfaction_score", 3.0, "below"),
    ("business_support_tickets_30d", 5, "above"),
    ("business_task_completion_ratio", 0.95, "below"),
    ("business_user_adoption_ratio", 0.90, "below"),
]


def test_knobs_move_kpis_across_their_alert_levels(healthy: Exporter, drill: Exporter) -> None:
    good, bad = healthy.scrape(), drill.scrape()
    for name, level, side in CROSSINGS:
        before, after = value(good, name), value(bad, name)
        if side == "below":
            assert before > level > after, f"{name}: healthy {before}, drill {after}"
        else:
            assert before < level < after, f"{name}: healthy {before}, drill {after}"


def test_output_passes_promtool_check_metrics(healthy: Exporter) -> None:
    text = healthy.scrape_text()
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                             text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


CUSTOM_PACK = {
    "queries": [
        {"name": "good", "interval_seconds": 1, "sql": "SELECT count(*) AS crm_users FROM users",
         "metrics": [{"name": "crm_users", "type": "gauge", "help": "Users."}]},
        {"name": "broken", "interval_seconds": 1,
         "sql": "SELECT count(*) AS crm_ghosts FROM no_such_table",
         "metrics": [{"name": "crm_ghosts", "type": "gauge", "help": "Never works."}]},
        {"name": "kinds", "interval_seconds": 1,
         "sql": "SELECT kind, count(*) AS crm_events FROM events GROUP BY kind "
                "ORDER BY count(*) DESC, kind",
         "metrics": [{"name": "crm_events", "type": "gauge", "help": "Events by kind.",
                      "labels": ["kind"]}]},
        {"name": "long_label", "interval_seconds": 1,
         "sql": "SELECT repeat('x', 300) AS note, max(id) AS crm_cron_runs_total "
                "FROM cron_job_logs",
         "metrics": [{"name": "crm_cron_runs_total", "type": "counter", "help": "Cron runs.",
                      "labels": ["note"]}]},
    ]
}


@pytest.fixture(scope="module")
def custom(crm: PostgresServer, module_dir: Path, module_exporters: list[Exporter]) -> Exporter:
    pack = module_dir / "custom-pack.yml"
    pack.write_text(yaml.safe_dump(CUSTOM_PACK))
    # A password the trust-auth server ignores: it must still never show.
    return _start(module_dir, {"dsn": _dsn(crm, "healthy", SECRET), "pack_file": str(pack),
                               "max_series_per_metric": 2, "label_value_max_length": 16},
                  module_exporters)


def test_a_failing_query_breaks_only_its_own_metric_and_counts_errors(
        crm: PostgresServer, custom: Exporter) -> None:
    samples = custom.wait_until(
        "two failed runs of the broken query",
        lambda s: value(s, "business_exporter_collector_errors_total", collector="broken",
                        reason="query") >= 2)
    users = int(crm.psql("SELECT count(*) FROM users", db="healthy"))
    assert value(samples, "crm_users") == users
    assert not [n for n, _ in samples if n == "crm_ghosts"]
    assert value(samples, "business_exporter_collector_success", collector="broken") == 0
    assert value(samples, "business_exporter_collector_success", collector="good") == 1
    assert total(samples, "business_exporter_collector_errors_total", collector="good") == 0
    assert value(samples, "business_up", target="app") == 1
    # One log line when the failure starts, not one per run.
    assert custom.log().count('"collector": "broken/app"') == 1


def test_label_values_from_data_are_capped_in_number_and_length(
        crm: PostgresServer, custom: Exporter) -> None:
    samples = custom.scrape()
    counts = crm.psql("SELECT kind || '=' || count(*) FROM events GROUP BY kind "
                      "ORDER BY count(*) DESC, kind", db="healthy").splitlines()
    kept = {dict(ls)["kind"]: v for (n, ls), v in samples.items() if n == "crm_events"}
    assert kept == {k: float(n) for k, n in (c.split("=") for c in counts[:2])}
    assert value(samples, "business_exporter_series_dropped",
                 metric="crm_events") == len(counts) - 2
    runs = int(crm.psql("SELECT max(id) FROM cron_job_logs", db="healthy"))
    assert value(samples, "crm_cron_runs_total", note="x" * 16) == runs


def test_secret_in_the_dsn_never_shows(custom: Exporter) -> None:
    checked = run_cli("business", "--config.file", str(custom.config_path), "--config.check")
    assert checked.returncode == 0, checked.stderr
    assert "4 of 4 queries" in checked.stdout
    for where, text in [("metrics", custom.scrape_text()), ("log", custom.log()),
                        ("config.check", checked.stdout + checked.stderr)]:
        assert SECRET not in text, f"secret leaked into the {where}"


def test_database_killed_keeps_serving_reports_down_and_recovers(
        postgres: PostgresServer, run_exporter: Run) -> None:
    asyncio.run(generate_into(postgres.dsn, days=2, now=_now()))
    fast = {name: {"interval_seconds": 1, "timeout_seconds": 2}
            for name in ("sessions_24h", "records_created", "support_open")}
    exporter = run_exporter("business", {"dsn": postgres.dsn, "queries": fast})
    before = exporter.wait_until("DAU collected",
                                 lambda s: value(s, "business_daily_active_users") > 0)
    dau = value(before, "business_daily_active_users")
    postgres.kill()
    down = exporter.wait_until("business_up 0",
                               lambda s: value(s, "business_up", target="app") == 0)
    assert total(down, "business_exporter_collector_errors_total", reason="connection") >= 1
    # Stale values would look live: the failed queries' metrics are gone, not frozen.
    exporter.wait_until("DAU withdrawn",
                        lambda s: not [n for n, _ in s if n == "business_daily_active_users"])
    status, _, _ = exporter.get()
    assert status == 200
    postgres.start()
    back = exporter.wait_until(
        "recovery", lambda s: value(s, "business_up", target="app") == 1
        and value(s, "business_exporter_collector_success", collector="sessions_24h") == 1)
    assert value(back, "business_daily_active_users") == dau
    assert '"msg": "collector recovered"' in exporter.log()


BAD: list[tuple[dict[str, Any] | None, dict[str, Any], str]] = [
    ({"queries": [{"name": "q", "sql": "SELECT 1 AS m",
                   "metrics": [{"name": "m", "type": "gauge", "help": "h", "lables": ["x"]}]}]},
     {}, "pack.queries[q].metrics[m].lables: Extra inputs are not permitted"),
    ({"queries": [{"name": "q", "sql": "SELECT 1 AS m", "interval_seconds": "hourly",
                   "metrics": [{"name": "m", "type": "gauge", "help": "h"}]}]},
     {}, "pack.queries[q].interval_seconds: Input should be a valid number"),
    ({"queries": [{"name": "q", "sql": "SELECT 1 AS m",
                   "metrics": [{"name": "m", "type": "histogram", "help": "h"}]}]},
     {}, "pack.queries[q].metrics[m].type: Input should be 'gauge' or 'counter'"),
    ({"queries": [{"name": "a", "sql": "SELECT 1 AS m",
                   "metrics": [{"name": "m", "type": "gauge", "help": "h"}]},
                  {"name": "b", "sql": "SELECT 2 AS m",
                   "metrics": [{"name": "m", "type": "gauge", "help": "h"}]}]},
     {}, "pack.queries[b].metrics[m].name: duplicate metric name (also in queries[a])"),
    ({"queries": [{"name": "q", "sql": "SELECT count(*) AS m FROM support_tickets",
                   "metrics": [{"name": "m", "type": "gauge", "help": "h",
                                "labels": ["priority"]}]}]},
     {}, "pack.queries[q].metrics[m].labels: column 'priority' is not returned by the query "
         "(it returns m)"),
    ({"queries": [{"name": "q", "sql": "SELECT 1 AS m; DELETE FROM users",
                   "metrics": [{"name": "m", "type": "gauge", "help": "h"}]}]},
     {}, "pack.queries[q].sql: must be a single statement"),
    ({"queries": [{"name": "q", "sql": "DELETE FROM users RETURNING 1 AS m",
                   "metrics": [{"name": "m", "type": "gauge", "help": "h"}]}]},
     {}, "pack.queries[q].sql: must be a SELECT (or WITH … SELECT) statement"),
    ({"queries": [{"name": "q", "sql": "SELECT 1 AS m",
                   "metrics": [{"name": "m", "type": "counter", "help": "h"}]}]},
     {}, "pack.queries[q].metrics[m].name: a counter's name must end in _total"),
    ({"queries": [{"name": "q", "sql": "SELECT 1 AS business_up",
                   "metrics": [{"name": "business_up", "type": "gauge", "help": "h"}]}]},
     {}, "pack.queries[q].metrics[business_up].name: reserved for the exporter's own metrics"),
    ({"queries": [{"name": "q", "sql": "SELECT 1 AS business_query_duration_seconds",
                   "metrics": [{"name": "business_query_duration_seconds", "type": "gauge",
                                "help": "h"}]}]},
     {}, "pack.queries[q].metrics[business_query_duration_seconds].name: reserved for the "
         "exporter's own metrics"),
    ({"queries": [{"name": "q", "sql": "SELECT 1 AS m"}]},
     {}, "pack.queries[q].metrics: list at least one metric (or set probe: true)"),
    ({"queries": [{"name": "q", "sql": "SELECT 1 AS m", "probe": True,
                   "metrics": [{"name": "m", "type": "gauge", "help": "h"}]}]},
     {}, "pack.queries[q].metrics: a probe exports only its duration; list no metrics"),
    (None, {"queries": {"nope": {"interval_seconds": 5}}},
     "queries.nope: no such query in the pack (it has assistant, audit_log_retention, "
     "conversion,"),
    (None, {"dns": "postgresql://x@h/db"}, "dns: Extra inputs are not permitted"),
    (None, {"pool_max_size": "two"}, "pool_max_size: Input should be a valid integer"),
    (None, {"pack_file": "/nonexistent/pack.yml"},
     "pack_file: cannot read '/nonexistent/pack.yml': No such file or directory"),
]
IDS = ["unknown-key", "bad-type", "bad-metric-type", "duplicate-metric", "label-not-returned",
       "two-statements", "not-a-select", "counter-name", "reserved-name",
       "reserved-duration-name", "no-metrics", "probe-with-metrics",
       "unknown-query-override", "unknown-config-key", "config-bad-type", "missing-pack"]


@pytest.mark.parametrize("pack, config, message", BAD, ids=IDS)
def test_bad_pack_or_config_is_one_line_naming_the_key(
        tmp_path: Path, pack: dict[str, Any] | None, config: dict[str, Any],
        message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(BusinessConfig, str(_write_config(tmp_path, pack, config)), "business")
    text = str(caught.value)
    assert "\n" not in text and text.startswith(message), text
    assert SECRET not in text


def _write_config(tmp_path: Path, pack: dict[str, Any] | None, config: dict[str, Any]) -> Path:
    settings: dict[str, Any] = {"dsn": f"postgresql://postgres:{SECRET}@127.0.0.1:1/db",
                                **config}
    if pack is not None:
        (tmp_path / "pack.yml").write_text(yaml.safe_dump(pack))
        settings["pack_file"] = str(tmp_path / "pack.yml")
    (tmp_path / "config.yml").write_text(yaml.safe_dump(settings))
    return tmp_path / "config.yml"


@pytest.mark.parametrize("case", ["unknown-key", "label-not-returned", "duplicate-metric",
                                  "unknown-config-key"])
def test_saasmon_business_exits_2_with_one_stderr_line(tmp_path: Path, case: str) -> None:
    pack, config, message = BAD[IDS.index(case)]
    path = _write_config(tmp_path, pack, config)
    result = run_cli("business", "--config.check", "--config.file", str(path))
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"saasmon business: {message}"), lines
    assert SECRET not in result.stderr and not result.stdout


def test_default_pack_config_check_summarises(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text("dsn: postgresql://postgres@127.0.0.1:5/crm\n")
    result = run_cli("business", "--config.check", "--config.file", str(tmp_path / "config.yml"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ("business: config ok: target 'app' at 127.0.0.1:5/crm, "
                                     "pack default: 18 of 18 queries, 38 metrics")


def test_scrapes_never_query_the_database(crm: PostgresServer, healthy: Exporter) -> None:
    def calls() -> int:
        return int(crm.psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s "
                            "JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'healthy' "
                            "AND s.query LIKE '%business_daily_active_users%'"))

    def stamp() -> float:
        return value(healthy.scrape(), "business_exporter_collector_last_success_timestamp_seconds",
                     collector="sessions_24h")

    first, before = stamp(), calls()
    for _ in range(20):
        assert value(parse(healthy.scrape_text()), "business_daily_active_users") > 0
    runs = 0 if stamp() == first else 1  # the minute interval may come round meanwhile
    assert calls() - before == runs


BIG_TABLES = ("users", "sessions", "events", "customers", "properties", "smart_matches",
              "assistant_interactions", "message_deliveries", "webhook_events", "cron_job_logs")


def test_frequent_queries_read_big_tables_through_their_time_indexes(
        crm: PostgresServer) -> None:
    async def plans() -> dict[str, str]:
        conn = await asyncpg.connect(_dsn(crm, "healthy"))
        try:
            return {q["name"]: "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {q['sql']}"))
                    for q in yaml.safe_load(DEFAULT_PACK.read_text())["queries"]
                    if q["interval_seconds"] <= 300}
        finally:
            await conn.close()

    found = asyncio.run(plans())
    assert len(found) == 11
    for name, plan in found.items():
        for table in BIG_TABLES:
            assert f"Seq Scan on {table} " not in plan, f"{name}: {plan}"


PROBES = ("critical_customer_lookup", "critical_pending_opportunities",
          "critical_opportunities_by_status")


def test_every_query_reports_its_statement_time_and_probes_only_that(
        healthy: Exporter) -> None:
    """dirt-free-crm's hand-run critical queries (under 50, 100 and 200 ms) as synthetic
    probes: their statement time, not the run's (no connection wait, BEGIN or COMMIT)."""
    samples = healthy.scrape()
    queries = [q["name"] for q in yaml.safe_load(DEFAULT_PACK.read_text())["queries"]]
    for name in queries:
        took = value(samples, "business_query_duration_seconds", query=name)
        run = value(samples, "business_exporter_collector_duration_seconds", collector=name)
        assert 0 < took <= run, (name, took, run)
    for name in PROBES:
        assert value(samples, "business_exporter_collector_success", collector=name) == 1
    assert set(PROBES) <= set(queries)


def test_a_probe_times_its_statement(crm: PostgresServer, module_dir: Path,
                                     module_exporters: list[Exporter]) -> None:
    pack = module_dir / "probe-pack.yml"
    pack.write_text(yaml.safe_dump({"queries": [
        {"name": "sleepy", "probe": True, "interval_seconds": 1, "timeout_seconds": 5,
         "sql": "SELECT pg_sleep(0.3)"}]}))
    exporter = _start(module_dir, {"dsn": _dsn(crm, "healthy"), "pack_file": str(pack),
                                   "target": "probe"}, module_exporters)
    samples = exporter.wait_until("the probe ran", lambda s: any(
        n == "business_query_duration_seconds" for n, _ in s))
    assert 0.3 <= value(samples, "business_query_duration_seconds", query="sleepy") < 5
    # A probe's rows are no metric of their own.
    assert not [n for n, _ in samples if "sleep" in n]


def test_open_tickets_count_every_unresolved_status(crm: PostgresServer, module_dir: Path,
                                                     module_exporters: list[Exporter]) -> None:
    """saas-ops-module's pending (the customer replied) and waiting_customer are open: the
    pack listed open/in_progress/waiting and missed the ticket that most needs an answer."""
    crm.psql("CREATE DATABASE tickets")
    dsn = _dsn(crm, "tickets")
    asyncio.run(generate_into(dsn, days=2, now=_now(), knobs=Knobs().replace(
        support_tickets_per_month=0)))
    crm.psql("INSERT INTO support_tickets (priority, status) VALUES ('urgent', 'pending'), "
             "('urgent', 'waiting_customer'), ('urgent', 'resolved'), ('high', 'closed'), "
             "('high', 'in_progress')", db="tickets")
    exporter = _start(module_dir, {"dsn": dsn, "target": "tickets"}, module_exporters)
    samples = exporter.wait_until("tickets counted", lambda s: value(
        s, "business_support_open_tickets", priority="high") == 1)
    assert value(samples, "business_support_open_tickets", priority="urgent") == 2


GUARD_PACK = {
    "queries": [
        # Turns its session's read-only default off: a later statement outside BEGIN READ
        # ONLY on that connection could write, were the connection kept.
        {"name": "flip", "interval_seconds": 1,
         "sql": "SELECT length(set_config('default_transaction_read_only', 'off', false)) "
                "AS crm_flip",
         "metrics": [{"name": "crm_flip", "type": "gauge", "help": "Never exported."}]},
        {"name": "write", "interval_seconds": 1,
         "sql": "WITH w AS (INSERT INTO guard_log (note) VALUES ('written') RETURNING id) "
                "SELECT count(*) AS crm_written FROM w",
         "metrics": [{"name": "crm_written", "type": "gauge", "help": "Never exported."}]},
        {"name": "count", "interval_seconds": 1,
         "sql": "SELECT count(*) AS crm_guard_rows FROM guard_log",
         "metrics": [{"name": "crm_guard_rows", "type": "gauge", "help": "Rows."}]},
    ]
}


def test_pack_sql_can_neither_write_nor_make_the_session_writable(
        crm: PostgresServer, module_dir: Path, module_exporters: list[Exporter]) -> None:
    """All three queries share one connection (one lane of one) and run every second in
    varying order, so `write` keeps coming right after `flip`: it must still fail."""
    crm.psql("CREATE DATABASE guard")
    crm.psql("CREATE TABLE guard_log (id serial PRIMARY KEY, note text)", db="guard")
    pack = module_dir / "guard-pack.yml"
    pack.write_text(yaml.safe_dump(GUARD_PACK))
    exporter = _start(module_dir, {"dsn": _dsn(crm, "guard"), "pack_file": str(pack),
                                   "target": "guard"}, module_exporters)

    def errors(s: Samples, collector: str) -> float:
        return value(s, "business_exporter_collector_errors_total", collector=collector,
                     reason="query")

    samples = exporter.wait_until("five failed runs of flip and of write", lambda s: (
        errors(s, "flip") >= 5 and errors(s, "write") >= 5
        and value(s, "business_exporter_collector_success", collector="count") == 1))
    assert crm.psql("SELECT count(*) FROM guard_log", db="guard") == "0"
    assert value(samples, "crm_guard_rows") == 0
    assert not [n for n, _ in samples if n in ("crm_flip", "crm_written")]
    log = exporter.log()
    assert "read-only transaction" in log, log
    assert "changed its session (default_transaction_read_only)" in log, log
    # The runs are single statements: no BEGIN or COMMIT reached the server.
    sent = crm.psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s JOIN "
                    "pg_database d ON d.oid = s.dbid WHERE d.datname = 'guard' AND "
                    "(s.query ILIKE 'BEGIN%' OR s.query ILIKE 'COMMIT%')")
    assert sent == "0"
