"""PostgreSQL exporter against a real, private PostgreSQL that the tests break on purpose."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg

from devstack.exporter import Exporter
from devstack.metrics import Samples, total, value
from devstack.servers import PostgresServer
from saasmon.postgres.config import COLLECTORS

Run = Callable[..., Exporter]
SENTINEL = "S3ntinel-Pg-Passw0rd"


def monitor_dsn(postgres: PostgresServer) -> str:
    """A non-superuser with only pg_monitor, as the README tells users to create."""
    postgres.psql(f"CREATE ROLE monitor LOGIN PASSWORD '{SENTINEL}' IN ROLE pg_monitor")
    return f"postgresql://monitor:{SENTINEL}@127.0.0.1:{postgres.port}/postgres"


def config(dsn: str, **extra: Any) -> dict[str, Any]:
    """Every collector at the one interval: these tests read values after fresh rounds, not
    the cost-aware schedule (its steps are unit-tested)."""
    base = {"dsn": dsn, "interval_seconds": 1, "timeout_seconds": 2, **extra}
    if base["interval_seconds"]:  # 0 (in the scrape) is 0 for every collector already
        base.setdefault("collectors", {name: {"interval_seconds": base["interval_seconds"]}
                                       for name in COLLECTORS})
    return base


def wait_collected(exporter: Exporter) -> Samples:
    """Two fresh rounds after now, so the values reflect what the test just did."""
    first = exporter.scrape()
    stamp = max(v for (n, _), v in first.items()
                if n == "pg_exporter_collector_last_success_timestamp_seconds")
    return exporter.wait_until(
        "a newer collection",
        lambda s: min(v for (n, _), v in s.items()
                      if n == "pg_exporter_collector_last_success_timestamp_seconds") > stamp + 0.5,
    )


def test_open_connections_are_counted_by_state(postgres: PostgresServer, run_exporter: Run) -> None:
    exporter = run_exporter("postgres", config(monitor_dsn(postgres)))
    # The exporter's own pool is left out of pg_connections: it is not the app's load.
    before = total(wait_collected(exporter), "pg_connections", state="idle")
    assert before == 0

    async def hold() -> list[asyncpg.Connection]:
        return [await asyncpg.connect(postgres.dsn) for _ in range(5)]

    loop = asyncio.new_event_loop()
    conns = loop.run_until_complete(hold())
    try:
        samples = wait_collected(exporter)
        assert total(samples, "pg_connections", state="idle") == before + 5
        app_clients = total(samples, "pg_connections")
        assert value(samples, "pg_settings_max_connections") == 20
        # The share counts every client, the exporter's own pool (1..2) included.
        used = value(samples, "pg_connections_used_ratio") * 20
        assert app_clients + 1 <= round(used) <= app_clients + 2
    finally:
        for conn in conns:
            loop.run_until_complete(conn.close())
        loop.close()


def test_allocated_storage_is_exported_only_when_configured(
        postgres: PostgresServer, run_exporter: Run) -> None:
    """PostgreSQL cannot read its volume's size: the fill ratio needs the setting, and the
    rules read its absence (PostgresStorageLimitUnset) instead of a 100 GiB constant."""
    dsn = monitor_dsn(postgres)
    unset = wait_collected(run_exporter("postgres", config(dsn)))
    assert not [n for (n, _) in unset if n == "pg_storage_allocated_bytes"]
    assert total(unset, "pg_database_size_bytes") > 0
    configured = run_exporter("postgres", config(dsn, allocated_storage_bytes=5 * 1024**3))
    assert value(wait_collected(configured), "pg_storage_allocated_bytes") == 5 * 1024**3


def test_forced_deadlock_adds_exactly_one(postgres: PostgresServer, run_exporter: Run) -> None:
    postgres.psql("CREATE TABLE d(id int PRIMARY KEY, v int); INSERT INTO d VALUES (1,0),(2,0)")
    exporter = run_exporter("postgres", config(monitor_dsn(postgres)))
    before = value(wait_collected(exporter), "pg_database_deadlocks_total", database="postgres")

    async def deadlock() -> None:
        a, b = await asyncpg.connect(postgres.dsn), await asyncpg.connect(postgres.dsn)
        try:
            ta, tb = a.transaction(), b.transaction()
            await ta.start()
            await tb.start()
            await a.execute("UPDATE d SET v = 1 WHERE id = 1")
            await b.execute("UPDATE d SET v = 1 WHERE id = 2")
            results = await asyncio.gather(
                a.execute("UPDATE d SET v = 2 WHERE id = 2"),
                b.execute("UPDATE d SET v = 2 WHERE id = 1"),
                return_exceptions=True)
            assert sum(isinstance(r, asyncpg.DeadlockDetectedError) for r in results) == 1
            await ta.rollback()
            await tb.rollback()
        finally:
            await a.close()
            await b.close()

    asyncio.run(deadlock())
    samples = wait_collected(exporter)
    assert value(samples, "pg_database_deadlocks_total", database="postgres") == before + 1


def test_slow_statement_is_counted_at_the_100ms_threshold(
    postgres: PostgresServer, run_exporter: Run
) -> None:
    exporter = run_exporter("postgres", config(monitor_dsn(postgres)))
    before = wait_collected(exporter)
    assert value(before, "pg_stat_statements_available") == 1
    slow_before = value(before, "pg_stat_statements_slow", threshold_seconds="0.1")
    postgres.psql("SELECT pg_sleep(0.2)")
    samples = wait_collected(exporter)
    assert value(samples, "pg_stat_statements_slow", threshold_seconds="0.1") == slow_before + 1
    assert value(samples, "pg_stat_statements_slow", threshold_seconds="1") == 0
    mean = value(samples, "pg_stat_statements_mean_exec_seconds", query="SELECT pg_sleep($1)")
    assert 0.2 <= mean < 1.0


def test_missing_pg_stat_statements_is_a_metric_and_one_log_line(
    postgres: PostgresServer, run_exporter: Run
) -> None:
    postgres.psql("DROP EXTENSION pg_stat_statements")
    exporter = run_exporter("postgres", config(monitor_dsn(postgres)))
    wait_collected(exporter)
    samples = wait_collected(exporter)
    assert value(samples, "pg_stat_statements_available") == 0
    assert value(samples, "pg_exporter_collector_success", collector="statements") == 1
    assert value(samples, "pg_up") == 1
    assert exporter.log().count("pg_stat_statements is not installed") == 1


def test_table_scans_and_unused_indexes(postgres: PostgresServer, run_exporter: Run) -> None:
    postgres.psql(
        "CREATE TABLE big(id int, v int); CREATE INDEX big_v ON big(v);"
        "INSERT INTO big SELECT g, g FROM generate_series(1, 500) g; ANALYZE big;"
        "SELECT count(*) FROM big; SELECT count(*) FROM big;")
    exporter = run_exporter("postgres", config(monitor_dsn(postgres), top_n=5))
    samples = wait_collected(exporter)
    assert value(samples, "pg_table_seq_tup_read_total", table="big") >= 1000
    assert value(samples, "pg_table_seq_scan_total", table="big") >= 2
    assert value(samples, "pg_unused_indexes") == 1
    assert value(samples, "pg_unused_indexes_size_bytes") > 0


def test_blocked_session_and_waiting_lock_are_seen(
    postgres: PostgresServer, run_exporter: Run
) -> None:
    """Every activity family comes from one read of pg_stat_activity: a lock holder idle in
    its transaction, a session blocked by it and one sleeping (active, waiting on a timeout
    rather than a lock) are each counted where they belong."""
    postgres.psql("CREATE TABLE l(id int)")
    # 3600 s: nothing in this test runs that long, so that threshold must count none.
    exporter = run_exporter("postgres", config(monitor_dsn(postgres),
                                               slow_query_thresholds_seconds=[0.1, 1, 3600]))

    def settled(s: Samples) -> bool:
        return (value(s, "pg_connections", database="postgres", state="active") == 2
                and value(s, "pg_connections", database="postgres",
                          state="idle in transaction") == 1
                and value(s, "pg_blocked_sessions") == 1
                and value(s, "pg_locks_waiting") == 1
                # Both statements, and no statement of the exporter's other connection.
                and value(s, "pg_active_queries_longer_than", threshold_seconds="1") == 2
                and value(s, "pg_idle_in_transaction_max_age_seconds") > 0)

    async def block() -> Samples:
        holder = await asyncpg.connect(postgres.dsn)
        waiter = await asyncpg.connect(postgres.dsn)
        sleeper = await asyncpg.connect(postgres.dsn)
        tx = holder.transaction()
        await tx.start()
        await holder.execute("LOCK TABLE l IN ACCESS EXCLUSIVE MODE")
        waiting = asyncio.create_task(waiter.execute("SELECT * FROM l"))
        sleeping = asyncio.create_task(sleeper.execute("SELECT pg_sleep(600)"))
        try:
            return await asyncio.to_thread(exporter.wait_until, "a blocked session", settled)
        finally:
            postgres.psql(f"SELECT pg_cancel_backend({sleeper.get_server_pid()})")
            await asyncio.gather(sleeping, return_exceptions=True)
            await tx.rollback()
            await waiting
            for conn in (holder, waiter, sleeper):
                await conn.close()

    samples = asyncio.run(block())
    assert value(samples, "pg_active_queries_longer_than", threshold_seconds="0.1") >= 2
    assert value(samples, "pg_active_queries_longer_than", threshold_seconds="3600") == 0
    # The holder's transaction began before it went idle in it.
    assert (value(samples, "pg_oldest_transaction_age_seconds")
            >= value(samples, "pg_idle_in_transaction_max_age_seconds"))
    assert value(samples, "pg_settings_superuser_reserved_connections") == int(
        postgres.psql("SHOW superuser_reserved_connections"))


def test_killed_server_reports_up_0_and_recovers_without_restart(
    postgres: PostgresServer, run_exporter: Run
) -> None:
    exporter = run_exporter("postgres", config(monitor_dsn(postgres)))
    assert value(wait_collected(exporter), "pg_up") == 1
    postgres.kill()
    samples = exporter.wait_until("pg_up 0", lambda s: value(s, "pg_up") == 0, timeout=10)
    assert total(samples, "pg_exporter_collector_errors_total", reason="connection") >= 1
    # Failed collectors export nothing rather than stale values.
    assert not any(n == "pg_connections" for n, _ in samples)
    for _ in range(5):
        status, _, _ = exporter.get(timeout=5)
        assert status == 200
    postgres.start()
    exporter.wait_until("pg_up 1 after restart", lambda s: value(s, "pg_up") == 1, timeout=20)
    exporter.wait_until("every collector succeeding again", lambda s: all(
        v == 1 for (n, _), v in s.items() if n == "pg_exporter_collector_success"))
    assert exporter.proc is not None and exporter.proc.poll() is None
    log = exporter.log()
    # One line when a collector starts failing and one when it recovers, not one per round.
    assert log.count('"collector failed"') <= 2 * 6
    assert '"collector recovered"' in log


def test_hung_database_scrape_answers_within_deadline(
    postgres: PostgresServer, run_exporter: Run
) -> None:
    """Interval 0 collects in the scrape: a frozen server must not hold the scrape."""
    exporter = run_exporter("postgres", config(monitor_dsn(postgres), interval_seconds=0,
                                               timeout_seconds=30), wait_ready=False)
    exporter.wait_for("/-/ready")
    assert value(exporter.scrape(), "pg_up") == 1
    pids = subprocess.run(["pgrep", "-f", f"postgres.*{postgres.datadir}|postgres: "],
                          capture_output=True, text=True).stdout.split()
    frozen = [int(p) for p in pids if _belongs_to(postgres, int(p))]
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        headers = {"X-Prometheus-Scrape-Timeout-Seconds": "2"}
        for _ in range(3):
            status, body, seconds = exporter.get(headers=headers, timeout=20)
            assert status == 200
            assert "pg_up 0.0" in body.replace('{target="postgres"}', "")
            # Generous bound: the point is "not 30 s (the collector timeout)".
            assert seconds < 10
        assert 'reason="timeout",target="postgres"} ' in body
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    exporter.wait_until("recovery after thaw", lambda s: value(s, "pg_up") == 1, timeout=40)


def _belongs_to(postgres: PostgresServer, pid: int) -> bool:
    """A postgres process whose postmaster runs on this test's data directory."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        if str(postgres.datadir) in cmdline:
            return True
        ppid = int(Path(f"/proc/{pid}/stat").read_text().split(") ")[1].split()[1])
        return str(postgres.datadir) in Path(f"/proc/{ppid}/cmdline").read_bytes().decode(
            errors="replace")
    except (OSError, IndexError, ValueError):
        return False


def test_max_connections_exhausted_is_reported_not_fatal(
    postgres: PostgresServer, run_exporter: Run
) -> None:
    dsn = monitor_dsn(postgres)

    async def fill() -> list[asyncpg.Connection]:
        conns = []
        # 20 max, 3 reserved for superusers: non-superusers get 17 slots.
        for _ in range(17):
            conns.append(await asyncpg.connect(postgres.dsn.replace("postgres@", "monitor@")))
        return conns

    loop = asyncio.new_event_loop()
    conns = loop.run_until_complete(fill())
    try:
        exporter = run_exporter("postgres", config(dsn), wait_ready=False)
        exporter.wait_for("/-/healthy")
        samples = exporter.wait_until(
            "connection errors",
            lambda s: total(s, "pg_exporter_collector_errors_total", reason="connection") > 0)
        assert value(samples, "pg_up") == 0
        assert "too many" in exporter.log().lower() or "remaining connection" in exporter.log()
    finally:
        for conn in conns:
            loop.run_until_complete(conn.close())
        loop.close()
    exporter.wait_until("pg_up 1 after slots free", lambda s: value(s, "pg_up") == 1)


def test_secret_never_leaks(postgres: PostgresServer, run_exporter: Run, workdir: Path) -> None:
    from devstack.exporter import run_cli

    # A password the exporter does not know, quoted in several ways: only the SQL-side mask
    # can keep these out of the statement label.
    for role, literal in [("r1", "'Other-Secret-9'"), ("r2", "'Other''Secret''10'"),
                          ("r3", "'Other-Secret-11-with-a-long-tail-past-the-cut'")]:
        postgres.psql(f"CREATE ROLE {role} LOGIN PASSWORD {literal}")
    postgres.psql("ALTER ROLE r1 WITH ENCRYPTED PASSWORD 'Other-Secret-12'")
    exporter = run_exporter("postgres", config(monitor_dsn(postgres), top_n=200))
    wait_collected(exporter)
    text = exporter.scrape_text()
    assert "CREATE ROLE r1 LOGIN PASSWORD ***" in text
    assert "Other" not in text
    postgres.kill()
    exporter.wait_until("pg_up 0", lambda s: value(s, "pg_up") == 0)
    check = run_cli("postgres", "--config.check", "--config.file", str(exporter.config_path))
    assert check.returncode == 0
    wrong = workdir / "bad.yml"
    wrong.write_text(f"dsn: 'mysql://monitor:{SENTINEL}@x/y'\n")
    bad = run_cli("postgres", "--config.check", "--config.file", str(wrong))
    assert bad.returncode == 2
    exporter.stop()
    for where, content in [("metrics", text), ("log", exporter.log()),
                           ("check", check.stdout + check.stderr),
                           ("bad config", bad.stdout + bad.stderr)]:
        assert SENTINEL not in content, where


def test_metrics_pass_promtool_check(postgres: PostgresServer, run_exporter: Run) -> None:
    postgres.psql("CREATE TABLE p(id int); SELECT pg_sleep(0.15)")
    exporter = run_exporter("postgres", config(monitor_dsn(postgres)))
    text = exporter.scrape_text()
    result = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                            capture_output=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "pg_stat_statements_calls_total" in text


def test_scrapes_do_not_touch_the_database(postgres: PostgresServer, run_exporter: Run) -> None:
    """Background collection: 50 scrapes add no transactions beyond the interval's own."""
    exporter = run_exporter("postgres", config(monitor_dsn(postgres), interval_seconds=3600))
    wait = exporter.scrape()
    commits = value(wait, "pg_database_xact_commit_total", database="postgres")
    for _ in range(50):
        exporter.scrape()
    time.sleep(0.5)
    after = int(postgres.psql(
        "SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'"))
    # Only psql's own query and the first round may appear; 50 scrapes would add >= 50.
    assert after - commits < 10


def test_utility_statement_literals_never_reach_the_query_label(
        postgres: PostgresServer, run_exporter: Run) -> None:
    """pg_stat_statements keeps utility statements verbatim: every string literal and
    dollar-quoted body is masked, whatever key or statement it sits in (issue 15 item 6)."""
    postgres.psql("CREATE TABLE t(id int)")
    for statement in [
        "SET my.api_key = 'sk_live_set1'",
        "SET my.other = sk_live_bare2",
        "DO $$ BEGIN PERFORM 'sk_live_do3'; END $$",
        "DO $tag$ BEGIN RAISE NOTICE 'x'; PERFORM 1; END $tag$ -- sk_live_do4",
        "COMMENT ON TABLE t IS 'sk_live_comment5'",
        "COMMENT ON TABLE t IS E'it\\'s sk_live_escaped6'",
    ]:
        postgres.psql(statement)
    exporter = run_exporter("postgres", config(monitor_dsn(postgres), top_n=200))
    text = exporter.scrape_text()
    queries = {dict(ls)["query"] for (n, ls), _ in wait_collected(exporter).items()
               if n == "pg_stat_statements_calls_total"}
    assert "SET my.api_key = ***" in queries, sorted(queries)
    assert "COMMENT ON TABLE t IS ***" in queries, sorted(queries)
    assert "DO ***" in queries, sorted(queries)
    assert "sk_live" not in text, [q for q in queries if "sk_live" in q]


def test_missing_database_is_down_for_every_database_exporter(
        postgres: PostgresServer, run_exporter: Run) -> None:
    """A DSN naming a database that does not exist never reaches its target: up 0 with a
    connection reason, in each exporter that reads PostgreSQL (issue 15 item 8)."""
    dsn = monitor_dsn(postgres).rsplit("/", 1)[0] + "/no_such_database"
    cases = [("postgres", "pg", config(dsn)),
             ("cron", "cron", {"dsn": dsn, "interval_seconds": 1, "timeout_seconds": 2}),
             ("integrations", "integration", {"builtin_targets": False, "dsn": dsn,
                                              "interval_seconds": 1, "timeout_seconds": 2}),
             ("business", "business", {"dsn": dsn})]
    for kind, ns, conf in cases:
        exporter = run_exporter(kind, conf)
        samples = exporter.scrape()
        ups = [v for (n, _), v in samples.items() if n == f"{ns}_up"]
        assert ups and all(v == 0 for v in ups), (kind, ups)
        assert total(samples, f"{ns}_exporter_collector_errors_total", reason="query") == 0, kind
        assert total(samples, f"{ns}_exporter_collector_errors_total",
                     reason="connection") >= 1, kind
        assert "no_such_database" in exporter.log(), kind
        exporter.stop()


def test_slow_collector_override_outlasts_the_exporter_timeout(
        postgres: PostgresServer, run_exporter: Run) -> None:
    """SLOW (~12 s). `collectors.tables.timeout_seconds: 30` reaches the database: a tables
    round that takes 10 s succeeds though the exporter's own timeout is 2 s (issue 14).

    The monitor role's search_path puts a view in front of pg_catalog.pg_stat_user_tables
    that sleeps 10 s; the tables collector reads it once, so its round takes 10 s."""
    dsn = monitor_dsn(postgres)
    postgres.psql(
        "CREATE SCHEMA slow; CREATE VIEW slow.pg_stat_user_tables AS "
        "SELECT * FROM pg_catalog.pg_stat_user_tables WHERE (SELECT true FROM pg_sleep(10)); "
        "GRANT USAGE ON SCHEMA slow TO monitor; GRANT SELECT ON ALL TABLES IN SCHEMA slow "
        "TO monitor; ALTER ROLE monitor SET search_path = slow, pg_catalog, public")
    # A long interval for tables: its one slow round stays the snapshot we read.
    exporter = run_exporter("postgres", config(dsn, collectors={
        "tables": {"interval_seconds": 600, "timeout_seconds": 30}}))
    samples = exporter.scrape()  # ready: every collector has finished its first round
    assert value(samples, "pg_exporter_collector_success", collector="tables") == 1, \
        exporter.log()
    assert total(samples, "pg_exporter_collector_errors_total", collector="tables") == 0
    # pg_sleep sleeps at least what it is asked: a lower bound, never tight.
    assert value(samples, "pg_exporter_collector_duration_seconds", collector="tables") >= 9.5
    assert value(samples, "pg_tables_untracked") >= 0
    # The other collectors keep the exporter's 2 s timeout and are not held up.
    assert value(samples, "pg_exporter_collector_success", collector="activity") == 1
