"""Benchmark: the default business pack run by saasmon and by query-exporter.

Not a test. One private PostgreSQL, one generated CRM database (refapp.datagen, default
knobs), and the same 14 queries run three ways, one after another:

* `saasmon business` with the default pack (each query on its own interval, scrapes
  served from the last results);
* query-exporter 5.0.2 with the pack's intervals translated to its `interval` key;
* query-exporter with no `interval`, its default: every query runs on every scrape.

Each phase: start the exporter, wait for its first round, reset pg_stat_statements, then
scrape every second for 60 s. DB time = total_exec_time + total_plan_time of every
statement the exporter sent to the CRM database in the window (the pack's SQL, BEGIN and
COMMIT, pings), from pg_stat_statements with track_planning on, divided by scrapes.

query-exporter lives in its own venv (default .run/bench-qe-venv, git-ignored):
    python3 -m venv .run/bench-qe-venv
    .run/bench-qe-venv/bin/pip install query-exporter==5.0.2 psycopg2-binary
Run: .venv/bin/python bench/business_bench.py --out bench/BUSINESS_RESULTS.md
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import asyncpg
import yaml

# devstack/ is not installed (never shipped): run from the checkout.
sys.path.append(str(Path(__file__).resolve().parent.parent))
from devstack.process import Process
from devstack.servers import PostgresServer, free_port
from refapp.datagen import checksum, generate_into
from saasmon.business.pack import DEFAULT_PACK

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
DB = "crm"
TARGET_RATIO = 0.5  # the brief's bar: at most half of query-exporter's DB time


@dataclass
class Phase:
    name: str
    scrapes: int
    failed: int
    p50_ms: float
    p95_ms: float
    calls: int
    pack_calls: int
    exec_ms: float
    plan_ms: float
    cpu_ms: float
    startup_calls: int
    startup_db_ms: float
    # pack query name -> (runs, DB ms), for the start-up round and for the window
    startup_by_query: dict[str, tuple[int, float]]
    window_by_query: dict[str, tuple[int, float]]

    @property
    def db_ms(self) -> float:
        return self.exec_ms + self.plan_ms

    @property
    def db_ms_per_scrape(self) -> float:
        return self.db_ms / max(self.scrapes, 1)

    @property
    def calls_per_scrape(self) -> float:
        return self.calls / max(self.scrapes, 1)


def qe_config(dsn: str, with_intervals: bool) -> dict[str, Any]:
    """The default pack as query-exporter configuration: same SQL, metrics, timeouts."""
    pack = yaml.safe_load(DEFAULT_PACK.read_text())
    metrics: dict[str, Any] = {}
    queries: dict[str, Any] = {}
    for query in pack["queries"]:
        for metric in query["metrics"]:
            entry: dict[str, Any] = {"type": metric["type"], "description": metric["help"]}
            if metric.get("labels"):
                entry["labels"] = metric["labels"]
            metrics[metric["name"]] = entry
        spec: dict[str, Any] = {"databases": [DB], "metrics": [m["name"] for m in query["metrics"]],
                                "sql": query["sql"], "timeout": query["timeout_seconds"]}
        if with_intervals:
            spec["interval"] = int(query["interval_seconds"])
        queries[query["name"]] = spec
    # Pool of 2, like saasmon's default pool_max_size.
    # SQLAlchemy 2.1 maps postgresql:// to psycopg 3; query-exporter's docs use psycopg2.
    sa_dsn = dsn.replace("postgresql://", "postgresql+psycopg2://", 1)
    return {"databases": {DB: {"dsn": sa_dsn, "connection-pool": {"size": 2}}},
            "metrics": metrics, "queries": queries}


def _cpu_ms(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / CLK_TCK


def _get(url: str, timeout: float = 30) -> tuple[int, float]:
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
            status = response.status
    except OSError:
        status = 0
    return status, (time.perf_counter() - started) * 1000


async def _stats(admin_dsn: str, reset: bool) -> tuple[int, int, float, float]:
    conn = await asyncpg.connect(admin_dsn)  # the `postgres` database: never counted
    try:
        if reset:
            await conn.execute("SELECT pg_stat_statements_reset()")
            return 0, 0, 0.0, 0.0
        row = await conn.fetchrow(
            "SELECT coalesce(sum(calls), 0) AS calls,"
            " coalesce(sum(calls) FILTER (WHERE query LIKE '%business_%'), 0) AS pack_calls,"
            " coalesce(sum(total_exec_time), 0) AS exec_ms,"
            " coalesce(sum(total_plan_time), 0) AS plan_ms"
            " FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database"
            " WHERE datname = $1)", DB)
        return int(row["calls"]), int(row["pack_calls"]), float(row["exec_ms"]), \
            float(row["plan_ms"])
    finally:
        await conn.close()


async def _by_query(admin_dsn: str) -> dict[str, tuple[int, float]]:
    """Runs and DB ms (exec + plan) of each pack query, matched by its first metric's alias."""
    pack = yaml.safe_load(DEFAULT_PACK.read_text())["queries"]
    conn = await asyncpg.connect(admin_dsn)
    try:
        rows = await conn.fetch(
            "SELECT query, calls, total_exec_time + total_plan_time AS ms FROM pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)", DB)
    finally:
        await conn.close()
    out: dict[str, tuple[int, float]] = {}
    for query in pack:
        alias = query["metrics"][0]["name"]
        found = [r for r in rows if alias in r["query"]]
        out[query["name"]] = (sum(int(r["calls"]) for r in found),
                              sum(float(r["ms"]) for r in found))
    return out


async def _warm_up(dsn: str) -> None:
    """Run every pack query once so no phase pays for a cold buffer cache."""
    conn = await asyncpg.connect(dsn)
    try:
        for query in yaml.safe_load(DEFAULT_PACK.read_text())["queries"]:
            await conn.fetch(query["sql"])
    finally:
        await conn.close()


def run_phase(name: str, argv: list[str], url: str, admin_dsn: str, seconds: int,
              period: float, settle: float, log: Path) -> Phase:
    asyncio.run(_stats(admin_dsn, reset=True))
    proc = Process(name, argv, log, cwd=REPO).start()
    try:
        proc.wait_http(url, timeout=60)
        time.sleep(settle)  # the start-up round of every query is over
        startup_calls, _, startup_exec, startup_plan = asyncio.run(_stats(admin_dsn, reset=False))
        startup_by_query = asyncio.run(_by_query(admin_dsn))
        # The window starts after start-up and is one minute long: each exporter runs each
        # 60 s query exactly once in it, whatever its start-up took.
        asyncio.run(_stats(admin_dsn, reset=True))
        cpu0 = _cpu_ms(proc.pid)
        latencies: list[float] = []
        failed = 0
        start = time.monotonic()
        for i in range(int(seconds / period)):
            status, ms = _get(url)
            if status == 200:
                latencies.append(ms)
            else:
                failed += 1
            time.sleep(max(0.0, start + (i + 1) * period - time.monotonic()))
        cpu = _cpu_ms(proc.pid) - cpu0
        calls, pack_calls, exec_ms, plan_ms = asyncio.run(_stats(admin_dsn, reset=False))
        window_by_query = asyncio.run(_by_query(admin_dsn))
    finally:
        proc.stop(15)
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] if ordered else 0
    return Phase(name, len(latencies), failed, statistics.median(ordered) if ordered else 0.0,
                 p95, calls, pack_calls, exec_ms, plan_ms, cpu, startup_calls,
                 startup_exec + startup_plan, startup_by_query, window_by_query)


def _version(argv: list[str]) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return (out.stdout or out.stderr).strip().splitlines()[0]


def hourly_estimate(phase: Phase, period: float, per_scrape: bool) -> float:
    """DB ms an hour, from measured costs: queries that ran in the window at their window
    cost per run (caches warm), the others at their start-up cost per run (planned afresh,
    as an hourly query on a connection closed meanwhile is), each times its runs an hour;
    plus the window's per-run overhead (BEGIN/COMMIT, pings). Per-scrape mode: the
    window's DB time per scrape times the scrapes an hour at the bench's scrape period."""
    if per_scrape:
        return phase.db_ms_per_scrape * 3600 / period
    total = 0.0
    runs = 0.0
    for query in yaml.safe_load(DEFAULT_PACK.read_text())["queries"]:
        per_hour = 3600 / query["interval_seconds"]
        n, ms = phase.window_by_query.get(query["name"], (0, 0.0))
        if not n:
            n, ms = phase.startup_by_query.get(query["name"], (0, 0.0))
        if n:
            total += per_hour * ms / n
            runs += per_hour
    w_runs = sum(n for n, _ in phase.window_by_query.values())
    pack_ms = sum(ms for _, ms in phase.window_by_query.values())
    overhead_per_run = (phase.db_ms - pack_ms) / w_runs if w_runs else 0.0
    return total + runs * overhead_per_run


def report(phases: list[Phase], meta: dict[str, str], seconds: int, period: float) -> str:
    ours, qe_interval, qe_scrape = phases
    hourly = [hourly_estimate(p, period, per_scrape=i == 2)
              for i, p in enumerate(phases)]
    lines = [
        "# Business exporter benchmark: saasmon vs query-exporter",
        "",
        f"Generated {meta['when']} by `bench/business_bench.py`. Reproduce:",
        "",
        "```sh",
        "python3 -m venv .run/bench-qe-venv",
        ".run/bench-qe-venv/bin/pip install query-exporter==5.0.2 psycopg2-binary",
        ".venv/bin/python bench/business_bench.py --out bench/BUSINESS_RESULTS.md",
        "```",
        "",
        "## Machine",
        "",
        *[f"- {k}: `{v}`" for k, v in meta.items() if k != "when"],
        "",
        "## Method",
        "",
        "- One private PostgreSQL 15 (devstack/servers.py, pg_stat_statements with "
        "track_planning on) and one CRM database generated by `refapp.datagen` (seed 1, 45 "
        "days, default knobs); each exporter runs alone against it, one after another.",
        "- The same default pack (exporters/business/default_pack.yaml, 14 queries, 36 "
        "metrics) three ways: saasmon business; query-exporter with each query's "
        "`interval` set to the pack's interval_seconds; query-exporter without `interval` "
        "(its default: the query runs on every scrape). query-exporter gets a pool of 2 "
        "connections; saasmon its default two lanes of one (frequent / hourly queries).",
        f"- Per phase: reset pg_stat_statements, start the exporter, wait until /metrics "
        f"answers and a few seconds more; that is the start-up round (every query once, "
        f"reported apart). Reset again, then one client scrapes every {period:g} s for "
        f"{seconds} s: in that window each exporter with intervals runs its five 60 s queries "
        f"once, per-scrape query-exporter runs all 14 on every scrape.",
        "- DB time = sum of total_exec_time + total_plan_time over every statement the "
        "exporter sent to the CRM database in the window (the pack's SQL plus BEGIN/COMMIT "
        "and connection pings); calls = their executions. Divided by successful scrapes.",
        "- Latency: wall time of each scrape (one client, new connection per scrape). "
        "CPU: utime+stime of the exporter process over the window.",
        "",
        "## Results",
        "",
        "| exporter | scrapes | DB ms/scrape | of which planning | DB calls/scrape | "
        "pack SQL runs | DB ms/pack SQL run | scrape p50 ms | scrape p95 ms | exporter CPU ms | "
        "start-up round DB ms (calls) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for phase in phases:
        lines.append(
            f"| {phase.name} | {phase.scrapes} ({phase.failed} failed) | "
            f"{phase.db_ms_per_scrape:.3f} | {phase.plan_ms / phase.db_ms if phase.db_ms else 0:.0%} | "
            f"{phase.calls_per_scrape:.2f} | {phase.pack_calls} | "
            f"{phase.db_ms / max(phase.pack_calls, 1):.3f} | {phase.p50_ms:.2f} | "
            f"{phase.p95_ms:.2f} | {phase.cpu_ms:.0f} | "
            f"{phase.startup_db_ms:.1f} ({phase.startup_calls}) |")

    def ratio(a: float, b: float) -> str:
        return f"{a / b:.3f}x" if b else "n/a"

    lines += [
        f"| **saasmon / query-exporter (intervals)** | | "
        f"{ratio(ours.db_ms_per_scrape, qe_interval.db_ms_per_scrape)} | | "
        f"{ratio(ours.calls_per_scrape, qe_interval.calls_per_scrape)} | | | "
        f"{ratio(ours.p50_ms, qe_interval.p50_ms)} | {ratio(ours.p95_ms, qe_interval.p95_ms)} | | "
        f"{ratio(ours.startup_db_ms, qe_interval.startup_db_ms)} |",
        f"| **saasmon / query-exporter (per scrape)** | | "
        f"{ratio(ours.db_ms_per_scrape, qe_scrape.db_ms_per_scrape)} | | "
        f"{ratio(ours.calls_per_scrape, qe_scrape.calls_per_scrape)} | | | "
        f"{ratio(ours.p50_ms, qe_scrape.p50_ms)} | {ratio(ours.p95_ms, qe_scrape.p95_ms)} | | "
        f"{ratio(ours.startup_db_ms, qe_scrape.startup_db_ms)} |",
        "",
        "Estimated DB time per hour (from the measured per-run costs above, see "
        "`hourly_estimate`; per-scrape mode at one scrape per second):",
        "",
        "| exporter | DB ms / hour |",
        "|---|---|",
        *[f"| {p.name} | {hourly[i]:.0f} |" for i, p in enumerate(phases)],
        f"| **saasmon / query-exporter (intervals)** | {ratio(hourly[0], hourly[1])} |",
        f"| **saasmon / query-exporter (per scrape)** | {ratio(hourly[0], hourly[2])} |",
        "",
        "## Reading",
        "",
    ]
    vs_scrape = ours.db_ms_per_scrape / qe_scrape.db_ms_per_scrape if qe_scrape.db_ms else 0
    vs_interval = (ours.db_ms_per_scrape / qe_interval.db_ms_per_scrape
                   if qe_interval.db_ms else float("inf"))
    lines += [
        f"- Against query-exporter's default (no `interval`: every scrape runs all 14 "
        f"queries) saasmon uses {vs_scrape:.3f}x its DB time per scrape: the target of at "
        f"most {TARGET_RATIO}x is {'met' if vs_scrape <= TARGET_RATIO else 'NOT met'}. "
        f"Its database load is set by the queries' intervals, so it stays the same with "
        f"more scrapers or a shorter scrape interval, while the per-scrape load of that "
        f"mode grows with both.",
        f"- Against query-exporter given the same intervals, both run the same SQL on the "
        f"same schedule ({ours.pack_calls} and {qe_interval.pack_calls} runs of the pack's "
        f"queries in the window), and saasmon uses {vs_interval:.3f}x its DB time per "
        f"scrape: the target is "
        f"{'met in that mode too' if vs_interval <= TARGET_RATIO else 'NOT met in that mode'}. "
        f"The difference is per run ({ours.db_ms / max(ours.pack_calls, 1):.3f} "
        f"vs {qe_interval.db_ms / max(qe_interval.pack_calls, 1):.3f} ms): saasmon sends "
        f"BEGIN READ ONLY, the query and COMMIT, the query as a prepared statement that its "
        f"connection already holds, so PostgreSQL executes it without planning it again "
        f"(planning: {ours.plan_ms / ours.db_ms if ours.db_ms else 0:.0%} of saasmon's DB "
        f"time, {qe_interval.plan_ms / qe_interval.db_ms if qe_interval.db_ms else 0:.0%} "
        f"of query-exporter's); query-exporter sends SELECT 1 (its pool's pre-ping), BEGIN, "
        f"the query as text, planned on every run, and COMMIT.",
        "- The window's DB times are sub-millisecond totals over five runs per exporter; on "
        "a shared 2-core machine they move by tens of percent between runs of this script. "
        "The stable part is the planning share (none left for saasmon's repeated queries) "
        "and the extra statements per run.",
        f"- The start-up round (every query once, the hourly 30-day ones included, plans "
        f"built for the first time) cost saasmon {ours.startup_db_ms:.1f} ms and "
        f"query-exporter {qe_interval.startup_db_ms:.1f} / {qe_scrape.startup_db_ms:.1f} ms "
        f"of DB time; it is paid once per exporter start (saasmon re-runs the hourly "
        f"queries once an hour, on their own connection).",
        f"- The window holds only the minute queries. Over an hour the 5-, 15- and "
        f"60-minute queries add their runs for both exporters (the hourly ones are planned "
        f"afresh by both: saasmon's slow lane closes its idle connection in between). "
        f"Estimated from the measured costs, saasmon's DB time per hour is "
        f"{ratio(hourly[0], hourly[1])} of interval-mode "
        f"query-exporter's and {ratio(hourly[0], hourly[2])} of per-scrape query-exporter's "
        f"(scraped every {period:g} s).",
        "- Scrape latency: saasmon and interval-mode query-exporter both answer from "
        "memory; per-scrape query-exporter waits for the 14 queries on every scrape.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "BUSINESS_RESULTS.md")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "business.json")
    parser.add_argument("--qe-venv", type=Path, default=REPO / ".run" / "bench-qe-venv")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--period", type=float, default=1.0)
    parser.add_argument("--settle", type=float, default=4.0)
    args = parser.parse_args()
    qe = args.qe_venv / "bin" / "query-exporter"
    if not qe.exists():
        print(f"business_bench: {qe} missing; see the module docstring to install it",
              file=sys.stderr)
        return 2
    load_at_start = " ".join(f"{x:.2f}" for x in os.getloadavg())
    base = Path(tempfile.mkdtemp(prefix="saasmon-bizbench-"))
    base.chmod(0o755)
    server = PostgresServer(base / "pg", max_connections=20)
    server.init()
    with (server.datadir / "postgresql.conf").open("a") as conf:
        conf.write("pg_stat_statements.track_planning = on\nautovacuum = off\n")
    server.start()
    try:
        server.psql("CREATE EXTENSION pg_stat_statements")
        server.psql(f"CREATE DATABASE {DB}")
        dsn = server.dsn.rsplit("/", 1)[0] + f"/{DB}"
        data = asyncio.run(generate_into(dsn, seed=1, days=45))
        server.psql("VACUUM ANALYZE", db=DB)
        asyncio.run(_warm_up(dsn))
        ours_cfg = base / "business.yml"
        ours_cfg.write_text(yaml.safe_dump({"dsn": dsn}))
        phases: list[Phase] = []
        port = free_port()
        phases.append(run_phase(
            "saasmon business",
            [sys.executable, "-m", "saasmon", "business", "--config.file", str(ours_cfg),
             "--web.listen-address", f"127.0.0.1:{port}"],
            f"http://127.0.0.1:{port}/metrics", server.dsn, args.seconds, args.period,
            args.settle, base / "ours.log"))
        for name, with_intervals in (("query-exporter 5.0.2, pack intervals", True),
                                     ("query-exporter 5.0.2, per scrape (no interval)", False)):
            cfg = base / f"qe-{with_intervals}.yml"
            cfg.write_text(yaml.safe_dump(qe_config(dsn, with_intervals), sort_keys=False))
            port = free_port()
            phases.append(run_phase(
                name, [str(qe), "--config", str(cfg), "-H", "127.0.0.1", "-p", str(port),
                       "-L", "warning"],
                f"http://127.0.0.1:{port}/metrics", server.dsn, args.seconds, args.period,
                args.settle, base / f"qe-{with_intervals}.log"))
        meta = {
            "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "nproc": str(os.cpu_count()),
            "loadavg at start / end": f"{load_at_start} / "
                                      + " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "python": platform.python_version(),
            "query-exporter": _version([str(qe), "--version"]),
            "postgresql": server.psql("SHOW server_version"),
            "data": f"{sum(len(t.rows) for t in data.values())} rows, checksum "
                    f"{checksum(data)[:16]}",
        }
        text = report(phases, meta, args.seconds, args.period)
        args.out.write_text(text)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"meta": meta, "phases": [
            {**asdict(p), "db_ms_per_scrape": p.db_ms_per_scrape} for p in phases]}, indent=2))
        print(text)
        noisy = False
        for phase, log_name in zip(phases, ("ours.log", "qe-True.log", "qe-False.log"),
                                   strict=True):
            errors = (base / log_name).read_text().count("error")
            if errors:
                noisy = True
                print(f"note: {phase.name} logged {errors} error line(s); see {base / log_name}")
    finally:
        server.stop("immediate")
    if not noisy:
        shutil.rmtree(base, ignore_errors=True)  # keep the logs only when there is news
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
