"""Cron exporter against a real PostgreSQL holding the reference schema, and real pings."""

from __future__ import annotations

import asyncio
import http.client
import json
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import bcrypt
import pytest
import yaml

from devstack.exporter import Exporter, run_cli
from devstack.metrics import Samples, value
from devstack.servers import PostgresServer
from refapp.schema import schema_sql
from saasmon.cron.collectors import Queries

Run = Callable[..., Exporter]
SENTINEL = "S3ntinel-Cron-Passw0rd"
TOKEN = "T0ken-For-Heartbeats-0123456789"
MAX_TOKEN_FAILURES = 10  # saasmon.cron.heartbeat.MAX_TOKEN_FAILURES
READER = "cron_reader"


# -- fixtures and helpers -------------------------------------------------------------
@pytest.fixture(scope="module")
def shared_pg() -> Iterator[PostgresServer]:
    """One server for the tests that do not break it; each test gets its own database."""
    base = Path(tempfile.mkdtemp(prefix="saasmon-cron-"))
    base.chmod(0o755)
    server = PostgresServer(base / "pg", max_connections=30)
    server.start()
    server.psql("CREATE EXTENSION pg_stat_statements")
    server.psql(f"CREATE ROLE {READER} LOGIN PASSWORD '{SENTINEL}'")
    yield server
    server.stop("immediate")
    subprocess.run(["rm", "-rf", str(base)], check=False)


_databases = iter(range(1, 1000))


def cron_db(server: PostgresServer, name: str | None = None) -> str:
    """A database with the reference schema that only SELECT on cron_job_logs reaches."""
    if name is None:
        name = f"crm{next(_databases)}"
        server.psql(f"CREATE DATABASE {name}")
    server.psql(schema_sql(), db=name)
    server.psql(f"GRANT SELECT ON cron_job_logs TO {READER}", db=name)
    return name


def reader_dsn(server: PostgresServer, db: str) -> str:
    return f"postgresql://{READER}:{SENTINEL}@127.0.0.1:{server.port}/{db}"


def insert(server: PostgresServer, db: str, job: str, started: float,
           completed: float | None = None, status: str = "success") -> int:
    done = f"to_timestamp({completed})" if completed is not None else "NULL"
    return int(server.psql(
        "INSERT INTO cron_job_logs (job_name, started_at, completed_at, status) VALUES "
        f"('{job}', to_timestamp({started}), {done}, '{status}') RETURNING id", db=db))


def job(name: str, schedule: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "schedule": schedule, **extra}


def table_config(server: PostgresServer, db: str, jobs: list[dict[str, Any]],
                 **extra: Any) -> dict[str, Any]:
    return {"dsn": reader_dsn(server, db), "interval_seconds": 0.3, "timeout_seconds": 2,
            "bootstrap_lookback_seconds": 86400, "jobs": jobs, **extra}


def has(samples: Samples, name: str, **labels: str) -> bool:
    return any(n == name and all(dict(ls).get(k) == v for k, v in labels.items())
               for n, ls in samples)


def ping(exporter: Exporter, path: str, *, method: str = "POST",
         headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(exporter.url + path, method=method, headers=headers or {},
                                     data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


BEARER = {"Authorization": f"Bearer {TOKEN}"}


def reload(exporter: Exporter) -> None:
    request = urllib.request.Request(exporter.url + "/-/reload", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def statement_rows(server: PostgresServer, db: str, fragment: str) -> int:
    """Rows returned so far by our statements containing `fragment` in database `db`."""
    return int(server.psql(
        "SELECT coalesce(sum(s.rows), 0) FROM pg_stat_statements s "
        f"JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = '{db}' "
        f"AND s.query LIKE '%{fragment}%' AND s.query NOT LIKE '%pg_stat_statements%'"))


# -- table source ---------------------------------------------------------------------
def test_table_rows_give_exact_times_durations_counts_and_failure_streak(
    shared_pg: PostgresServer, run_exporter: Run
) -> None:
    db = cron_db(shared_pg)
    now = float(int(time.time()))
    insert(shared_pg, db, "sync", now - 3000, now - 2990)
    insert(shared_pg, db, "sync", now - 2000, now - 1990.5, "failed")
    insert(shared_pg, db, "sync", now - 1000, now - 958, "failed")
    insert(shared_pg, db, "report", now - 2 * 86400, now - 2 * 86400 + 5)  # beyond lookback
    insert(shared_pg, db, "mystery", now - 500, now - 400)  # not registered
    exporter = run_exporter("cron", table_config(shared_pg, db, [
        job("sync", "*/5 * * * *"), job("report", "0 6 * * *")]))

    # Start-up: the latest state from history, counters at zero (history is not counted).
    s = exporter.scrape()
    assert value(s, "cron_up") == 1
    assert value(s, "cron_job_last_start_timestamp_seconds", cron_job="sync") == now - 1000
    assert value(s, "cron_job_last_success_timestamp_seconds", cron_job="sync") == now - 2990
    assert value(s, "cron_job_last_failure_timestamp_seconds", cron_job="sync") == now - 958
    assert value(s, "cron_job_last_duration_seconds", cron_job="sync") == 42
    assert value(s, "cron_job_consecutive_failures", cron_job="sync") == 2
    assert value(s, "cron_job_failed", cron_job="sync") == 1
    assert value(s, "cron_job_running", cron_job="sync") == 0
    assert value(s, "cron_job_runs_total", cron_job="sync", status="success") == 0
    assert value(s, "cron_job_runs_total", cron_job="sync", status="failed") == 0
    # The 2-day-old run is outside the bounded look-back: nothing known about "report".
    assert not has(s, "cron_job_last_start_timestamp_seconds", cron_job="report")
    assert value(s, "cron_job_running", cron_job="report") == 0
    assert value(s, "cron_table_unknown_job_rows_total") == 0  # start-up reads only our jobs
    bootstrap_new_rows = statement_rows(shared_pg, db, "WHERE id > $1")

    # New rows are counted by status; a success ends the failure streak.
    insert(shared_pg, db, "sync", now - 900, now - 890)
    insert(shared_pg, db, "sync", now - 800, now - 790, "failed")
    insert(shared_pg, db, "mystery", now - 700, now - 600)
    s = exporter.wait_until("two new runs read", lambda s: value(
        s, "cron_job_runs_total", cron_job="sync", status="failed") == 1)
    assert value(s, "cron_job_runs_total", cron_job="sync", status="success") == 1
    assert value(s, "cron_job_consecutive_failures", cron_job="sync") == 1
    assert value(s, "cron_job_last_success_timestamp_seconds", cron_job="sync") == now - 890
    assert value(s, "cron_job_last_failure_timestamp_seconds", cron_job="sync") == now - 790
    assert value(s, "cron_job_last_duration_seconds", cron_job="sync") == 10
    assert value(s, "cron_table_unknown_job_rows_total") == 1

    # A running row is updated in place when the run ends: the id mark alone would miss it.
    row = insert(shared_pg, db, "sync", now - 60, None, "running")
    s = exporter.wait_until("running", lambda s: value(s, "cron_job_running", cron_job="sync") == 1)
    assert value(s, "cron_job_last_start_timestamp_seconds", cron_job="sync") == now - 60
    assert value(s, "cron_table_open_runs_tracked") == 1
    shared_pg.psql(f"UPDATE cron_job_logs SET status = 'success', completed_at = "
                   f"to_timestamp({now - 60 + 30.25}) WHERE id = {row}", db=db)
    s = exporter.wait_until("run ended", lambda s: value(s, "cron_job_running", cron_job="sync") == 0)
    assert value(s, "cron_job_last_duration_seconds", cron_job="sync") == 30.25
    assert value(s, "cron_job_runs_total", cron_job="sync", status="success") == 2
    assert value(s, "cron_job_runs_total", cron_job="sync", status="failed") == 1
    assert value(s, "cron_job_consecutive_failures", cron_job="sync") == 0
    assert value(s, "cron_job_failed", cron_job="sync") == 0
    assert value(s, "cron_table_open_runs_tracked") == 0

    # Incremental: the reads above the id mark returned each of the 4 new rows exactly once
    # over many rounds (pg_stat_statements' own count), never the 5 old ones again.
    time.sleep(1)  # a few more rounds
    assert statement_rows(shared_pg, db, "WHERE id > $1") - bootstrap_new_rows == 4
    assert value(exporter.scrape(), "cron_table_rows_read_total", phase="new") == 4
    assert "mystery" not in exporter.scrape_text()


def test_queries_read_through_indexes_never_the_whole_table(shared_pg: PostgresServer) -> None:
    """60 days of minutely history: start-up and follow-up plans use the indexes."""
    db = cron_db(shared_pg)
    shared_pg.psql(
        "INSERT INTO cron_job_logs (job_name, started_at, completed_at, status) "
        "SELECT 'job' || (g % 20), now() - g * interval '1 minute', "
        "now() - g * interval '1 minute' + interval '5 seconds', 'success' "
        "FROM generate_series(1, 86400) g; ANALYZE cron_job_logs", db=db)
    sql = Queries("cron_job_logs")
    jobs, lookback = ["job1", "job2"], 86400.0
    plans = [(sql.summary, (jobs, lookback)), (sql.latest_finished, (jobs, lookback)),
             (sql.running, (jobs, lookback, 20)), (sql.max_id, ()),
             (sql.by_ids, ([5, 6],)), (sql.after, (86000, 1000))]

    async def explain() -> list[str]:
        conn = await asyncpg.connect(shared_pg.dsn.rsplit("/", 1)[0] + f"/{db}")
        try:
            return [str(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {q}", *args))
                    for q, args in plans]
        finally:
            await conn.close()

    for (query, _), plan in zip(plans, asyncio.run(explain()), strict=True):
        assert '"Seq Scan"' not in plan, query
        assert "Index" in plan, query


def test_row_committed_after_a_later_id_is_not_lost(
    shared_pg: PostgresServer, run_exporter: Run
) -> None:
    db = cron_db(shared_pg)
    exporter = run_exporter("cron", table_config(shared_pg, db, [job("a", "* * * * *")]))
    now = float(int(time.time()))

    async def out_of_order() -> None:
        slow = await asyncpg.connect(shared_pg.dsn.rsplit("/", 1)[0] + f"/{db}")
        tx = slow.transaction()
        await tx.start()
        # Takes an id first but commits last, after the exporter has moved past that id.
        await slow.execute("INSERT INTO cron_job_logs (job_name, started_at, completed_at, "
                           f"status) VALUES ('a', to_timestamp({now - 20}), "
                           f"to_timestamp({now - 19}), 'failed')")
        await asyncio.to_thread(insert, shared_pg, db, "a", now - 10, now - 9)
        await asyncio.to_thread(exporter.wait_until, "later id read", lambda s: value(
            s, "cron_job_runs_total", cron_job="a", status="success") == 1)
        assert value(exporter.scrape(), "cron_table_id_gaps_tracked") == 1
        await tx.commit()
        await slow.close()

    asyncio.run(out_of_order())
    s = exporter.wait_until("late commit read", lambda s: value(
        s, "cron_job_runs_total", cron_job="a", status="failed") == 1)
    assert value(s, "cron_job_last_failure_timestamp_seconds", cron_job="a") == now - 19
    assert value(s, "cron_table_id_gaps_tracked") == 0


def test_missed_and_slow_are_computed_without_waiting(
    shared_pg: PostgresServer, run_exporter: Run
) -> None:
    db = cron_db(shared_pg)
    now = float(int(time.time()))
    insert(shared_pg, db, "hourly", now - 7200, now - 7190)  # 2 h ago: the last hour missed
    insert(shared_pg, db, "minutely", now - 10, None, "running")
    insert(shared_pg, db, "stuck", now - 3 * 3600, None, "running")
    insert(shared_pg, db, "took-long", now - 1000, now - 100)
    exporter = run_exporter("cron", table_config(shared_pg, db, [
        job("hourly", "0 * * * *", grace_seconds=60),
        job("minutely", "* * * * *", grace_seconds=120, max_runtime_seconds=600),
        job("stuck", "0 3 * * *", max_runtime_seconds=600),
        job("took-long", "0 3 * * *", max_runtime_seconds=60),
        job("never", "* * * * *", grace_seconds=0),
    ]))
    s = exporter.scrape()
    assert value(s, "cron_job_missed", cron_job="hourly") == 1
    assert value(s, "cron_job_failed", cron_job="hourly") == 0
    assert value(s, "cron_job_slow", cron_job="hourly") == 0
    assert value(s, "cron_job_missed", cron_job="minutely") == 0
    assert value(s, "cron_job_running", cron_job="minutely") == 1
    assert value(s, "cron_job_slow", cron_job="minutely") == 0
    # Running for 3 h against a 10 min limit; finished in 900 s against a 60 s limit.
    assert value(s, "cron_job_slow", cron_job="stuck") == 1
    assert value(s, "cron_job_running", cron_job="stuck") == 1
    assert value(s, "cron_job_slow", cron_job="took-long") == 1
    assert value(s, "cron_job_running", cron_job="took-long") == 0
    assert value(s, "cron_job_last_duration_seconds", cron_job="took-long") == 900
    # No run at all within the look-back, and a minute has passed.
    assert value(s, "cron_job_missed", cron_job="never") == 1
    assert value(s, "cron_job_max_runtime_seconds", cron_job="took-long") == 60
    assert value(s, "cron_job_grace_seconds", cron_job="hourly") == 60


def test_default_registry_is_the_guides_five_jobs_and_output_passes_promtool(
    shared_pg: PostgresServer, run_exporter: Run
) -> None:
    db = cron_db(shared_pg)
    now = float(int(time.time()))
    insert(shared_pg, db, "check-system-health", now - 100, now - 95)
    insert(shared_pg, db, "send-review-requests", now - 50, None, "running")
    exporter = run_exporter("cron", {"dsn": reader_dsn(shared_pg, db),
                                     "heartbeat_token": TOKEN})
    assert ping(exporter, "/ping/nope", headers=BEARER) == 404
    text = exporter.scrape_text()
    s = exporter.scrape()
    assert value(s, "cron_jobs_registered") == 5
    # Unset by default: 18 against the 5 shipped jobs would fire CronRegistryIncomplete
    # for ever on the shipped registry.
    assert not [n for (n, _) in s if n == "cron_jobs_expected"]
    schedules = {dict(ls)["cron_job"]: dict(ls)["schedule"] for (n, ls) in s
                 if n == "cron_job_info"}
    assert schedules == {"process-opportunity-offers": "0 8 * * *",
                         "process-promotion-deliveries": "*/30 * * * *",
                         "send-review-requests": "0 */6 * * *",
                         "check-system-health": "*/15 * * * *",
                         "generate-scheduled-reports": "0 6 * * *"}
    assert value(s, "cron_job_info", cron_job="check-system-health", severity="high",
                 source="table", timezone="UTC") == 1
    assert value(s, "cron_job_last_duration_seconds", cron_job="check-system-health") == 5
    result = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                            capture_output=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'cron_job_runs_total{cron_job="check-system-health",status="success"} 0.0' in text


def test_killed_database_reports_up_0_keeps_heartbeats_and_recovers(
    postgres: PostgresServer, run_exporter: Run
) -> None:
    postgres.psql(f"CREATE ROLE {READER} LOGIN PASSWORD '{SENTINEL}'")
    cron_db(postgres, "postgres")
    now = float(int(time.time()))
    insert(postgres, "postgres", "nightly", now - 100, now - 90)
    exporter = run_exporter("cron", table_config(
        postgres, "postgres", [job("nightly", "0 2 * * *"),
                               job("backup", "0 3 * * *", source="heartbeat")],
        timeout_seconds=1))
    s = exporter.scrape()
    assert value(s, "cron_up") == 1
    assert value(s, "cron_job_last_start_timestamp_seconds", cron_job="nightly") == now - 100

    postgres.kill()
    s = exporter.wait_until("cron_up 0", lambda s: value(s, "cron_up") == 0, timeout=15)
    # The table job's run state is not exported while the table cannot vouch for it...
    assert not has(s, "cron_job_last_start_timestamp_seconds", cron_job="nightly")
    assert not has(s, "cron_job_missed", cron_job="nightly")
    assert value(s, "cron_job_info", cron_job="nightly") == 1
    # ...while heartbeats are still taken and shown.
    assert ping(exporter, "/ping/backup") == 200
    assert ping(exporter, "/ping/nightly") == 409  # a table job does not take pings
    s = exporter.scrape()
    assert value(s, "cron_job_runs_total", cron_job="backup", status="success") == 1
    assert value(s, "cron_heartbeat_rejected_total", reason="not_heartbeat_job") == 1

    postgres.start()
    insert(postgres, "postgres", "nightly", now - 10, now - 4, "failed")
    s = exporter.wait_until("recovered and read on", lambda s: value(s, "cron_up") == 1 and value(
        s, "cron_job_runs_total", cron_job="nightly", status="failed") == 1, timeout=30)
    assert value(s, "cron_job_last_start_timestamp_seconds", cron_job="nightly") == now - 10
    assert value(s, "cron_job_last_success_timestamp_seconds", cron_job="nightly") == now - 90
    assert value(s, "cron_job_runs_total", cron_job="backup", status="success") == 1
    assert exporter.proc is not None and exporter.proc.poll() is None
    exporter.stop()
    assert SENTINEL not in exporter.log()
    assert '"collector failed"' in exporter.log()


# -- schedule ---------------------------------------------------------------------------
def _next_daily(hour: int, minute: int, tz: ZoneInfo, now: float) -> float:
    """Independent of cronsim: the first local hour:minute after now."""
    today = datetime.fromtimestamp(now, tz).date()
    for days in range(3):
        d = today + timedelta(days=days)
        at = datetime(d.year, d.month, d.day, hour, minute, tzinfo=tz).timestamp()
        if at > now:
            return at
    raise AssertionError("unreachable")


def _next_weekly(weekday: int, hour: int, tz: ZoneInfo, now: float) -> float:
    today = datetime.fromtimestamp(now, tz).date()
    for days in range(9):
        d = today + timedelta(days=days)
        at = datetime(d.year, d.month, d.day, hour, 0, tzinfo=tz).timestamp()
        if d.weekday() == weekday and at > now:
            return at
    raise AssertionError("unreachable")


def test_next_expected_run_is_computed_in_the_jobs_time_zone(run_exporter: Run) -> None:
    exporter = run_exporter("cron", {"jobs": [
        job("ny", "0 8 * * *", timezone="America/New_York"),
        job("riyadh", "30 2 * * *", timezone="Asia/Riyadh"),
        job("berlin-monday", "0 9 * * 1", timezone="Europe/Berlin"),
    ]})
    before = time.time()
    s = exporter.scrape()
    after = time.time()
    ny, riyadh, berlin = (ZoneInfo(z) for z in ("America/New_York", "Asia/Riyadh",
                                                "Europe/Berlin"))
    got = value(s, "cron_job_next_expected_run_timestamp_seconds", cron_job="ny")
    assert got in {_next_daily(8, 0, ny, before), _next_daily(8, 0, ny, after)}
    got = value(s, "cron_job_next_expected_run_timestamp_seconds", cron_job="riyadh")
    assert got in {_next_daily(2, 30, riyadh, before), _next_daily(2, 30, riyadh, after)}
    got = value(s, "cron_job_next_expected_run_timestamp_seconds", cron_job="berlin-monday")
    assert got in {_next_weekly(0, 9, berlin, before), _next_weekly(0, 9, berlin, after)}
    # The latest expected run is one day (Riyadh has no DST) before the next one.
    last = value(s, "cron_job_last_expected_run_timestamp_seconds", cron_job="riyadh")
    assert last == value(s, "cron_job_next_expected_run_timestamp_seconds",
                         cron_job="riyadh") - 86400
    assert value(s, "cron_job_info", cron_job="ny", timezone="America/New_York",
                 source="heartbeat") == 1


# -- heartbeats -------------------------------------------------------------------------
def test_heartbeats_need_the_token_count_unknown_jobs_and_survive_reload(
    run_exporter: Run, workdir: Path
) -> None:
    token_file = workdir / "token"
    token_file.write_text(TOKEN + "\n")
    config = {"heartbeat_token_file": str(token_file),
              "jobs": [job("backup", "0 3 * * *", severity="critical")]}
    exporter = run_exporter("cron", config)
    assert ping(exporter, "/ping/backup") == 401
    assert ping(exporter, "/ping/backup?token=wrong-token-wrong-token") == 401
    s = exporter.scrape()
    assert value(s, "cron_heartbeat_rejected_total", reason="unauthorized") == 2
    assert value(s, "cron_job_runs_total", cron_job="backup", status="success") == 0
    assert not has(s, "cron_job_last_start_timestamp_seconds", cron_job="backup")

    assert ping(exporter, "/ping/backup/start", headers=BEARER) == 200
    s = exporter.scrape()
    assert value(s, "cron_job_running", cron_job="backup") == 1
    assert ping(exporter, f"/ping/backup?token={TOKEN}", method="GET") == 200
    s = exporter.scrape()
    start = value(s, "cron_job_last_start_timestamp_seconds", cron_job="backup")
    end = value(s, "cron_job_last_success_timestamp_seconds", cron_job="backup")
    assert value(s, "cron_job_running", cron_job="backup") == 0
    assert value(s, "cron_job_last_duration_seconds", cron_job="backup") == pytest.approx(
        end - start, abs=1e-6)
    assert value(s, "cron_job_runs_total", cron_job="backup", status="success") == 1

    assert ping(exporter, "/ping/backup/fail", headers=BEARER) == 200
    assert ping(exporter, "/ping/backup/fail", method="GET", headers=BEARER) == 200
    assert ping(exporter, "/ping/no-such-job", headers=BEARER) == 404
    assert ping(exporter, "/ping/no-such-job/start", headers=BEARER) == 404
    s = exporter.scrape()
    assert value(s, "cron_job_runs_total", cron_job="backup", status="failed") == 2
    assert value(s, "cron_job_consecutive_failures", cron_job="backup") == 2
    assert value(s, "cron_job_failed", cron_job="backup") == 1
    # A /fail without /start: the latest run's duration is unknown, so no series.
    assert not has(s, "cron_job_last_duration_seconds", cron_job="backup")
    assert value(s, "cron_heartbeat_rejected_total", reason="unknown_job") == 2
    assert "no-such-job" not in exporter.scrape_text()

    # A reload swaps the instance; the heartbeat state stays.
    exporter.write_config({**config, "jobs": [*config["jobs"], job("extra", "*/5 * * * *")]})
    reload(exporter)
    s = exporter.scrape()
    assert value(s, "cron_jobs_registered") == 2
    assert value(s, "cron_job_runs_total", cron_job="backup", status="success") == 1
    assert value(s, "cron_job_runs_total", cron_job="backup", status="failed") == 2
    assert value(s, "cron_job_last_start_timestamp_seconds", cron_job="backup") == start
    assert value(s, "cron_heartbeat_rejected_total", reason="unknown_job") == 2
    assert ping(exporter, "/ping/extra", headers=BEARER) == 200
    exporter.stop()
    assert TOKEN not in exporter.log()


def ping_from(exporter: Exporter, source: str, path: str) -> int:
    """A GET from a chosen loopback address (all of 127/8 is this host on Linux)."""
    conn = http.client.HTTPConnection("127.0.0.1", exporter.port, timeout=5,
                                      source_address=(source, 0))
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def test_token_guessing_is_cut_off_per_client(run_exporter: Run, workdir: Path) -> None:
    token_file = workdir / "token"
    token_file.write_text(TOKEN + "\n")
    exporter = run_exporter("cron", {"heartbeat_token_file": str(token_file),
                                     "jobs": [job("backup", "0 3 * * *")]})
    guesser, other = "127.0.0.2", "127.0.0.3"
    answers = [ping_from(exporter, guesser, f"/ping/backup?token=guess-{i}")
               for i in range(MAX_TOKEN_FAILURES + 3)]
    assert answers == [401] * MAX_TOKEN_FAILURES + [429] * 3
    # Locked out: even the right token is not checked, so guessing it teaches nothing.
    assert ping_from(exporter, guesser, f"/ping/backup?token={TOKEN}") == 429
    # Another client is not affected.
    assert ping_from(exporter, other, f"/ping/backup?token={TOKEN}") == 200
    s = exporter.scrape()
    assert value(s, "cron_heartbeat_rejected_total", reason="unauthorized") \
        == MAX_TOKEN_FAILURES
    assert value(s, "cron_heartbeat_rejected_total", reason="rate_limited") == 4
    assert value(s, "cron_job_runs_total", cron_job="backup", status="success") == 1


def test_token_failure_limit_forgets_a_client_after_its_window() -> None:
    from saasmon.cron.heartbeat import FailureLimiter

    now = [1000.0]
    limiter = FailureLimiter(max_failures=3, window=60.0, max_clients=2,
                             clock=lambda: now[0])
    for _ in range(3):
        assert not limiter.blocked("a")
        limiter.failed("a")
    assert limiter.blocked("a")
    now[0] += 59.0
    assert limiter.blocked("a")
    now[0] += 2.0
    assert not limiter.blocked("a")  # the window since its first failure has passed
    for client in ("b", "c", "d"):  # bounded: old clients are forgotten, not kept forever
        limiter.failed(client)
    assert len(limiter) <= 2


def test_pings_stay_public_when_metrics_need_basic_auth(run_exporter: Run, workdir: Path) -> None:
    web = workdir / "web.yml"
    hashed = bcrypt.hashpw(b"scrape-pass", bcrypt.gensalt(rounds=4)).decode()
    web.write_text(yaml.safe_dump({"basic_auth_users": {"prometheus": hashed}}))
    exporter = run_exporter("cron", {"jobs": [job("backup", "0 3 * * *")]},
                            auth=("prometheus", "scrape-pass"),
                            extra_args=["--web.config.file", str(web)])
    assert ping(exporter, "/ping/backup") == 200  # no credentials: cron jobs cannot log in
    status, _, _ = exporter.get(headers={"Authorization": "Basic Zm9vOmJhcg=="})
    assert status == 401
    assert value(exporter.scrape(), "cron_job_runs_total", cron_job="backup",
                 status="success") == 1


def test_state_file_keeps_heartbeat_state_across_restarts(
    run_exporter: Run, workdir: Path
) -> None:
    state = workdir / "cron-state.json"
    config = {"state_file": str(state), "jobs": [job("backup", "0 3 * * *")]}
    first = run_exporter("cron", config)
    assert ping(first, "/ping/backup/start") == 200
    assert ping(first, "/ping/backup") == 200
    before = first.scrape()
    first.stop()  # writes the state on shutdown at the latest
    assert json.loads(state.read_text())["jobs"]["backup"]["runs"]["success"] == 1

    second = run_exporter("cron", config)
    after = second.scrape()
    for name in ("cron_job_last_start_timestamp_seconds", "cron_job_last_success_timestamp_seconds",
                 "cron_job_last_duration_seconds"):
        assert value(after, name, cron_job="backup") == value(before, name, cron_job="backup")
    assert value(after, "cron_job_runs_total", cron_job="backup", status="success") == 1
    second.stop()

    state.write_text("{not json")
    third = run_exporter("cron", config)
    assert value(third.scrape(), "cron_job_runs_total", cron_job="backup", status="success") == 0
    assert third.log().count("heartbeat state file unreadable") == 1


def _state(last_success: str) -> str:
    return ('{"version": 1, "jobs": {"backup": {"known_since": 1700000000, "last_start": '
            f'1700000100, "last_success": {last_success}, "runs": {{"success": 1}}}}}}}}')


HOSTILE_STATES = {
    "deep": '{"version": 1, "jobs": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "nan": _state("NaN"),
    "huge": _state("1e308"),
    "infinity": _state("Infinity"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_STATES))
def test_hostile_state_file_is_moved_aside_and_the_exporter_starts_clean(
        case: str, run_exporter: Run, workdir: Path) -> None:
    state = workdir / "cron-state.json"
    state.write_text(HOSTILE_STATES[case])
    exporter = run_exporter("cron", {"state_file": str(state),
                                     "jobs": [job("backup", "0 3 * * *")]})
    samples = exporter.scrape()
    assert not has(samples, "cron_job_last_success_timestamp_seconds", cron_job="backup")
    assert value(samples, "cron_job_runs_total", cron_job="backup", status="success") == 0
    assert exporter.log().count("heartbeat state file unreadable") == 1
    assert "Traceback" not in exporter.log()
    aside = workdir / "cron-state.json.bad"
    assert aside.read_text() == HOSTILE_STATES[case]
    # Started clean: a ping is recorded and persisted to a fresh, valid file.
    assert ping(exporter, "/ping/backup") == 200
    exporter.stop()
    assert json.loads(state.read_text())["jobs"]["backup"]["runs"]["success"] == 1


# -- config ---------------------------------------------------------------------------
JOB = "jobs:\n  - name: a\n    schedule: '*/5 * * * *'\n"
BAD_CONFIGS = [
    (JOB.replace("*/5 * * * *", "61 * * * *"),
     "jobs.0.schedule: Value error, invalid cron expression '61 * * * *'"),
    (JOB.replace("*/5 * * * *", "* * * *"), "jobs.0.schedule: Value error, cron expression"),
    (JOB + "    timezone: Mars/Olympus_Mons\n",
     "jobs.0.timezone: Value error, unknown time zone 'Mars/Olympus_Mons'"),
    (JOB + "    grace_seconds: -5\n",
     "jobs.0.grace_seconds: Input should be greater than or equal to 0"),
    (JOB + JOB.replace("jobs:\n", ""), "jobs: Value error, job names must be unique, repeated: a"),
    (JOB + "    graze_seconds: 5\n", "jobs.0.graze_seconds: Extra inputs are not permitted"),
    (JOB + "    severity: urgent\n", "jobs.0.severity: Input should be 'critical'"),
    (JOB + "    source: table\n", "(top level): Value error, jobs.0.source: table needs dsn"),
    (JOB + "heartbeat_token: short\n",
     "(top level): Value error, heartbeat_token must be at least 16 characters"),
    (JOB + f"dsn: mysql://u:{SENTINEL}@h/db\n", "(top level): Value error, dsn must be"),
    (JOB + "state_file: /nonexistent/dir/state.json\n", "state_file: Value error, directory"),
    (JOB + "table: 'logs; DROP TABLE x'\n", "table: String should match pattern"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_CONFIGS,
                         ids=[e.split(":")[0] + str(i) for i, (_, e) in enumerate(BAD_CONFIGS)])
def test_bad_config_gives_one_line_and_exit_2(text: str, expected: str, tmp_path: Path) -> None:
    path = tmp_path / "cron.yml"
    path.write_text(text)
    result = run_cli("cron", "--config.check", "--config.file", str(path))
    assert result.returncode == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"saasmon cron: {expected}"), lines[0]
    assert SENTINEL not in result.stderr


def test_default_jobs_file_is_valid_and_names_the_guides_schedules() -> None:
    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "exporters" / "cron"
                          / "default_jobs.yaml").read_text())
    assert [j["schedule"] for j in raw] == ["0 8 * * *", "*/30 * * * *", "0 */6 * * *",
                                            "*/15 * * * *", "0 6 * * *"]
    check = run_cli("cron", "--config.check")
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip().startswith("cron: config ok: 5 job(s) (0 table, 5 heartbeat) "
                                           "of unstated expected")
