"""PostgreSQL at scale, for bench/bench.py: equal freshness, collector costs, background CPU
and coverage (issue 16 targets 2, 4 and 6).

The harness grows the bench database to each scale size (100 / 1,000 / 5,000 tables, each
with a primary key and one never-used index) after seeding 5,001 distinct statements into
pg_stat_statements, and measures at every size:

* equal freshness: saasmon collecting on each scrape (`interval_seconds: 0`) against
  prometheus-postgres-exporter running the very same SQL (a custom queries file generated
  here from saasmon.postgres.queries, parameters inlined; its own default metrics and
  collectors off). Per scrape: exporter CPU (its threads' run time,
  /proc/PID/task/*/schedstat), PostgreSQL CPU (every
  process of the cluster), statements (pg_stat_statements calls), latency.
* collector cost: each saasmon collector run alone, in this process, median wall time.

and, at the largest size, background CPU over a window (default modes, scraped every 15 s)
and a coverage table (series per family on both sides).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import asyncpg
import yaml

# devstack/ is not installed (never shipped): run from the checkout.
sys.path.append(str(Path(__file__).resolve().parent.parent))
from devstack.servers import PostgresServer
from saasmon.postgres import queries as q
from saasmon.postgres.collectors import ALL as COLLECTOR_CLASSES
from saasmon.postgres.config import PostgresConfig
from saasmon.runtime.overrides import Schedule
from saasmon.runtime.pgpool import collector_pool, keep_session

SIZES = (100, 1000, 5000)
QUICK_SIZES = (100, 1000)
STATEMENTS = 5001
PGSS_MAX = 10000  # room for the 5,001 seeded statements and everything else
TOP_N = 20
THRESHOLDS = [0.1, 1.0, 5.0, 30.0]  # PostgresConfig's default slow-query thresholds
BACKGROUND_SCRAPE_SECONDS = 15.0


class Proc(Protocol):
    @property
    def pid(self) -> int: ...


class Harness(Protocol):
    """What bench.py lends this module: its process handling and measuring helpers."""

    def running(self, name: str, argv: list[str], env: dict[str, str],
                port: int) -> contextlib.AbstractAsyncContextManager[Proc]: ...

    def cpu_seconds(self, pid: int) -> float: ...

    def percentile(self, values: Sequence[float], pct: float) -> float: ...

    def saasmon_argv(self) -> list[str]: ...

    def free_port(self) -> int: ...

    debian_pg: str


# ---------------------------------------------------------------------------
# The database at scale


def configure(server: PostgresServer) -> None:
    """Before the first start: pg_stat_statements must hold every seeded statement."""
    server.init()
    with (server.datadir / "postgresql.conf").open("a") as conf:
        conf.write(f"pg_stat_statements.max = {PGSS_MAX}\n")


async def seed_statements(dsn: str, count: int = STATEMENTS) -> int:
    """`count` distinct statements: pairs (and then single columns) of a 100-column temporary
    table, each its own queryid. The table goes with the session, the statements stay."""
    conn = await asyncpg.connect(dsn)
    try:
        columns = 100
        await conn.execute("CREATE TEMP TABLE stmt_seed ("
                           + ", ".join(f"c{i} int" for i in range(columns)) + ")")
        sent = 0
        pairs = ((a, b) for a in range(columns) for b in range(a + 1, columns))
        for a, b in pairs:
            if sent >= count:
                break
            await conn.execute(f"SELECT c{a}, c{b} FROM stmt_seed")
            sent += 1
        for a in range(columns):
            if sent >= count:
                break
            await conn.execute(f"SELECT c{a} FROM stmt_seed")
            sent += 1
        return int(await conn.fetchval("SELECT count(*) FROM pg_stat_statements"))
    finally:
        await conn.close()


async def grow_tables(dsn: str, tables: int) -> int:
    """Grow schema `scale` to `tables` tables (primary key, one unused index, one row)."""
    conn = await asyncpg.connect(dsn)
    try:
        # Building is not the statements under test: 3 distinct ones per table otherwise.
        await conn.execute("SET pg_stat_statements.track = 'none'")
        await conn.execute("CREATE SCHEMA IF NOT EXISTS scale")
        have = int(await conn.fetchval(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'scale'"))
        batch = 100
        for start in range(have, tables, batch):
            stop = min(tables, start + batch)
            await conn.execute("".join(
                f"CREATE TABLE scale.t{i:05d} (id int PRIMARY KEY, v int);"
                f"CREATE INDEX t{i:05d}_v ON scale.t{i:05d}(v);"
                f"INSERT INTO scale.t{i:05d} VALUES (1, 1);" for i in range(start, stop)))
        await conn.execute("ANALYZE")
        return int(await conn.fetchval("SELECT count(*) FROM pg_stat_user_tables"))
    finally:
        await conn.close()


# ---------------------------------------------------------------------------
# The same SQL for postgres_exporter


def round_queries(server_major: int) -> list[tuple[str, str, list[Any]]]:
    """(name, SQL, parameters) of one saasmon round on a primary, in collector order."""
    checkpoints = q.CHECKPOINTS_17 if server_major >= 17 else q.CHECKPOINTS_13
    return [
        ("activity", q.ACTIVITY, [THRESHOLDS]),
        ("databases", q.DATABASES, []),
        ("statements", q.STATEMENTS, [TOP_N, THRESHOLDS]),
        ("tables_top", q.TABLES_TOP, [TOP_N]),
        ("unused_indexes", q.UNUSED_INDEXES, []),
        ("replication", q.REPLICATION, []),
        ("checkpoints", checkpoints, []),
    ]


def _literal(value: Any) -> str:
    if isinstance(value, list):
        return "'{" + ",".join(f"{v:g}" for v in value) + "}'"
    return str(value)


def inline(sql: str, params: list[Any]) -> str:
    """The SQL with $n replaced by the parameter's literal (custom queries take none)."""
    return re.sub(r"\$(\d+)\b", lambda m: _literal(params[int(m.group(1)) - 1]), sql)


TEXT_TYPES = {"text", "name", "varchar", "bpchar"}


async def go_queries_file(dsn: str, path: Path) -> int:
    """Write postgres_exporter's custom queries file from saasmon's round; returns the
    number of queries. Column usage from the result types: text is a label, numbers are
    gauges (a threshold is a label: it tells rows apart)."""
    conn = await asyncpg.connect(dsn)
    try:
        major = conn.get_server_version().major
        spec: dict[str, Any] = {}
        for name, sql, params in round_queries(major):
            stmt = await conn.prepare(sql)
            metrics = []
            for attr in stmt.get_attributes():
                label = attr.type.name in TEXT_TYPES or attr.name == "threshold"
                metrics.append({attr.name: {
                    "usage": "LABEL" if label else "GAUGE",
                    "description": f"{attr.name} of saasmon's {name} query"}})
            spec[f"saasmon_{name}"] = {"query": inline(sql, params), "metrics": metrics}
        path.write_text(yaml.safe_dump(spec, sort_keys=False, width=1000))
        return len(spec)
    finally:
        await conn.close()


# ---------------------------------------------------------------------------
# Measuring


class ServerCounters:
    """pg_stat_statements calls and the cluster's CPU, read around a run of scrapes."""

    def __init__(self, server: PostgresServer, harness: Harness) -> None:
        self.server = server
        self.harness = harness

    def calls(self) -> int:
        # Counted at the end of each statement: a read does not see itself, the next one
        # does (hence the 1 removed per window).
        return int(self.server.psql("SELECT sum(calls) FROM pg_stat_statements"))

    def cpu(self) -> float:
        """CPU time of the postmaster and its children (backends, workers)."""
        pid = int((self.server.datadir / "postmaster.pid").read_text().split()[0])
        total = 0.0
        for child in [pid, *_children(pid)]:
            with contextlib.suppress(OSError, ValueError):
                total += self.harness.cpu_seconds(child)
        return total


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            found += [int(c) for c in text]
    return found


@dataclass
class Run:
    """One exporter's scrapes at one size."""

    exporter: str
    tables: int
    scrapes: int = 0
    cpu_ms: list[float] = field(default_factory=list)  # per scrape, one per repeat
    db_cpu_ms: list[float] = field(default_factory=list)
    statements: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    samples: int = 0
    errors: int = 0

    @property
    def cpu(self) -> float:
        return statistics.median(self.cpu_ms) if self.cpu_ms else float("nan")

    @property
    def db_cpu(self) -> float:
        return statistics.median(self.db_cpu_ms) if self.db_cpu_ms else float("nan")

    @property
    def stmts(self) -> float:
        return statistics.median(self.statements) if self.statements else float("nan")

    def p50(self, harness: Harness) -> float:
        return harness.percentile(self.latencies_ms, 50) if self.latencies_ms else float("nan")


def count_samples(body: str) -> int:
    return sum(1 for line in body.splitlines() if line and not line.startswith("#"))


async def _scrape(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as resp:
        body = await resp.text()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status} from {url}: {body[:300]}")
        return body


async def measure_scrapes(harness: Harness, counters: ServerCounters, proc: Proc, url: str,
                          scrapes: int, run: Run) -> None:
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for _ in range(3):  # warm: pools open, pg_extension checked, plans cached
            await _scrape(session, url)
        calls_before = await asyncio.to_thread(counters.calls)
        cpu_before, db_before = harness.cpu_seconds(proc.pid), counters.cpu()
        ok = 0
        for _ in range(scrapes):
            started = time.perf_counter()
            try:
                body = await _scrape(session, url)
            except (aiohttp.ClientError, TimeoutError, RuntimeError):
                run.errors += 1
                continue
            run.latencies_ms.append((time.perf_counter() - started) * 1000)
            run.samples = count_samples(body)
            ok += 1
        cpu_after, db_after = harness.cpu_seconds(proc.pid), counters.cpu()
        calls_after = await asyncio.to_thread(counters.calls)
    if ok:
        run.scrapes += ok
        run.cpu_ms.append((cpu_after - cpu_before) * 1000 / ok)
        run.db_cpu_ms.append((db_after - db_before) * 1000 / ok)
        run.statements.append((calls_after - calls_before - 1) / ok)


def go_equal_argv(harness: Harness, port: int, queries: Path) -> list[str]:
    return [harness.debian_pg, f"--web.listen-address=127.0.0.1:{port}",
            "--disable-default-metrics", "--disable-settings-metrics",
            "--no-collector.database", "--no-collector.bgwriter",
            f"--extend.query-path={queries}"]


def saasmon_config(path: Path, dsn: str, **extra: Any) -> Path:
    path.write_text(yaml.safe_dump({"dsn": dsn, "timeout_seconds": 5, "top_n": TOP_N,
                                    **extra}))
    return path


@dataclass
class EqualFreshness:
    runs: dict[tuple[str, int], Run] = field(default_factory=dict)
    queries: int = 0
    pgss_statements: dict[int, int] = field(default_factory=dict)
    tables: dict[int, int] = field(default_factory=dict)


GO_EQUAL = "prometheus-postgres-exporter, same queries"
OURS_EQUAL = "saasmon postgres, interval_seconds 0"


async def equal_freshness(harness: Harness, server: PostgresServer, tmp: Path, size: int,
                          result: EqualFreshness, scrapes: int, repeats: int) -> None:
    """Alternate the two exporters `repeats` times at this size: ratios from the same
    minutes of a shared machine."""
    counters = ServerCounters(server, harness)
    queries = tmp / "go-queries.yml"
    result.queries = await go_queries_file(server.dsn, queries)
    ours_cfg = saasmon_config(tmp / "saasmon-equal.yml", server.dsn, interval_seconds=0)
    env_go = {"DATA_SOURCE_NAME": f"{server.dsn}?sslmode=disable"}
    for _ in range(repeats):
        for name in (GO_EQUAL, OURS_EQUAL):
            port = harness.free_port()
            argv = (go_equal_argv(harness, port, queries) if name == GO_EQUAL else
                    [*harness.saasmon_argv(), "postgres", "--config.file", str(ours_cfg),
                     "--web.listen-address", f"127.0.0.1:{port}"])
            run = result.runs.setdefault((name, size), Run(name, size))
            async with harness.running(name, argv, env_go if name == GO_EQUAL else {},
                                       port) as proc:
                await measure_scrapes(harness, counters, proc,
                                      f"http://127.0.0.1:{port}/metrics", scrapes, run)
    result.pgss_statements[size] = int(server.psql("SELECT count(*) FROM pg_stat_statements"))
    result.tables[size] = int(server.psql("SELECT count(*) FROM pg_stat_user_tables"))


# ---------------------------------------------------------------------------
# Collector cost


async def collector_costs(dsn: str, runs: int) -> dict[str, float]:
    """Median wall ms of each collector run alone on a warm connection (no other round in
    flight): what a round of that collector costs the database and the exporter."""
    config = PostgresConfig(dsn=dsn, interval_seconds=0, timeout_seconds=30, top_n=TOP_N)
    pool = collector_pool(dsn, "saasmon_bench_cost", max_size=1, timeout=30.0, interval=15.0,
                          reset=keep_session)
    costs: dict[str, float] = {}
    try:
        for cls in COLLECTOR_CLASSES:
            collector = cls(pool, config, Schedule(0, 30.0))
            await collector.collect()  # warm: connection, pg_extension check
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                await collector.collect()
                times.append((time.perf_counter() - started) * 1000)
            costs[cls.name] = statistics.median(times)
    finally:
        await pool.close()
    return costs


# ---------------------------------------------------------------------------
# Background CPU and coverage (default modes)


@dataclass
class Background:
    window_seconds: float
    cpu_ms: dict[str, float] = field(default_factory=dict)  # over the window
    db_cpu_ms: float = 0.0
    scrapes: dict[str, int] = field(default_factory=dict)
    families: dict[str, dict[str, int]] = field(default_factory=dict)  # name -> series


GO_DEFAULT = "prometheus-postgres-exporter, defaults"
GO_SAME = GO_EQUAL
OURS_DEFAULT = "saasmon postgres, defaults"


def families(body: str) -> dict[str, int]:
    """Series per family, by its # TYPE line (histograms' suffixes folded in); a family
    with a TYPE line and no series (no data now, e.g. no client connections) counts 0."""
    types: dict[str, str] = {}
    for line in body.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, _kind = line.split(" ", 3)
            types[name] = name
    counts: Counter[str] = Counter(dict.fromkeys(types, 0))
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        name = re.split(r"[{ ]", line, maxsplit=1)[0]
        family = name
        for suffix in ("_total", "_bucket", "_count", "_sum", "_created", "_info"):
            if name not in types and name.endswith(suffix) and name[: -len(suffix)] in types:
                family = name[: -len(suffix)]
        counts[family] += 1
    return dict(counts)


async def background(harness: Harness, server: PostgresServer, tmp: Path,
                     window: float) -> Background:
    """The three exporters side by side, each scraped every 15 s (Prometheus' default) for
    `window` seconds; CPU of each process over the window. Scrapes are staggered so no two
    exporters' reads overlap in the database."""
    result = Background(window)
    queries = tmp / "go-queries.yml"
    ours_cfg = saasmon_config(tmp / "saasmon-default.yml", server.dsn)
    env_go = {"DATA_SOURCE_NAME": f"{server.dsn}?sslmode=disable"}
    ports = {name: harness.free_port() for name in (GO_DEFAULT, GO_SAME, OURS_DEFAULT)}
    argv = {
        GO_DEFAULT: [harness.debian_pg, f"--web.listen-address=127.0.0.1:{ports[GO_DEFAULT]}"],
        GO_SAME: go_equal_argv(harness, ports[GO_SAME], queries),
        OURS_DEFAULT: [*harness.saasmon_argv(), "postgres", "--config.file", str(ours_cfg),
                       "--web.listen-address", f"127.0.0.1:{ports[OURS_DEFAULT]}"],
    }
    counters = ServerCounters(server, harness)
    async with contextlib.AsyncExitStack() as stack:
        procs = {name: await stack.enter_async_context(
                     harness.running(name, argv[name], env_go if "prometheus" in name else {},
                                     ports[name]))
                 for name in argv}
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await asyncio.sleep(3.0)  # saasmon's first round is start-up, not background
            before = {name: harness.cpu_seconds(p.pid) for name, p in procs.items()}
            db_before = counters.cpu()
            started = time.monotonic()

            async def scraper(name: str, offset: float) -> None:
                url = f"http://127.0.0.1:{ports[name]}/metrics"
                next_at = started + offset
                while next_at < started + window:
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                    body = await _scrape(session, url)
                    result.families[name] = families(body)
                    result.scrapes[name] = result.scrapes.get(name, 0) + 1
                    next_at += BACKGROUND_SCRAPE_SECONDS

            await asyncio.gather(*(scraper(name, i * 5.0) for i, name in enumerate(argv)))
            await asyncio.sleep(max(0.0, started + window - time.monotonic()))
            for name, proc in procs.items():
                result.cpu_ms[name] = (harness.cpu_seconds(proc.pid) - before[name]) * 1000
            result.db_cpu_ms = (counters.cpu() - db_before) * 1000
    return result


# ---------------------------------------------------------------------------
# All of it


@dataclass
class Scale:
    equal: EqualFreshness
    costs: dict[int, dict[str, float]]
    background: Background | None
    build_seconds: dict[int, float]
    seeded_statements: int


@contextlib.asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield


async def run(harness: Harness, server: PostgresServer, tmp: Path, *, sizes: Sequence[int],
              scrapes: int, repeats: int, cost_runs: int, window: float,
              log: Callable[[str], None]) -> Scale:
    log(f"postgres scale: seeding {STATEMENTS} statements")
    seeded = await seed_statements(server.dsn)
    equal = EqualFreshness()
    costs: dict[int, dict[str, float]] = {}
    build: dict[int, float] = {}
    for size in sizes:
        log(f"postgres scale: {size} tables")
        started = time.monotonic()
        await grow_tables(server.dsn, size)
        build[size] = time.monotonic() - started
        log(f"  equal freshness, {repeats} x {scrapes} scrapes per exporter")
        await equal_freshness(harness, server, tmp, size, equal, scrapes, repeats)
        log(f"  collector costs, {cost_runs} runs each")
        costs[size] = await collector_costs(server.dsn, cost_runs)
    bg = None
    if window > 0:
        log(f"postgres scale: background CPU over {window:.0f} s at {sizes[-1]} tables")
        bg = await background(harness, server, tmp, window)
    return Scale(equal, costs, bg, build, seeded)


# ---------------------------------------------------------------------------
# Report

# saasmon family -> postgres_exporter family (its defaults) holding the same fact. Used
# only to pair rows in the coverage table; a family in neither column of a pair is listed
# as one side's own.
EQUIVALENT = {
    "pg_up": "pg_up",
    "pg_connections": "pg_stat_activity_count",
    "pg_settings_max_connections": "pg_settings_max_connections",
    "pg_settings_superuser_reserved_connections": "pg_settings_superuser_reserved_connections",
    "pg_oldest_transaction_age_seconds": "pg_stat_activity_max_tx_duration",
    "pg_locks_waiting": "pg_locks_count",
    "pg_database_xact_commit_total": "pg_stat_database_xact_commit",
    "pg_database_xact_rollback_total": "pg_stat_database_xact_rollback",
    "pg_database_deadlocks_total": "pg_stat_database_deadlocks",
    "pg_database_blocks_hit_total": "pg_stat_database_blks_hit",
    "pg_database_blocks_read_total": "pg_stat_database_blks_read",
    "pg_database_temp_bytes_total": "pg_stat_database_temp_bytes",
    "pg_database_size_bytes": "pg_database_size_bytes",
    "pg_replication_slot_retained_bytes": "pg_replication_slots_pg_wal_lsn_diff",
    "pg_replication_slot_active": "pg_replication_slots_active",
    "pg_replication_lag_seconds": "pg_replication_lag",
    "pg_replication_is_replica": "pg_replication_is_replica",
    "pg_checkpoints_timed_total": "pg_stat_bgwriter_checkpoints_timed_total",
    "pg_checkpoints_requested_total": "pg_stat_bgwriter_checkpoints_req_total",
    "pg_checkpoint_write_seconds_total": "pg_stat_bgwriter_checkpoint_write_time_total",
    "pg_checkpoint_sync_seconds_total": "pg_stat_bgwriter_checkpoint_sync_time_total",
    "pg_checkpoint_buffers_written_total": "pg_stat_bgwriter_buffers_checkpoint_total",
    "pg_exporter_collector_success": "pg_scrape_collector_success",
    "pg_exporter_collector_duration_seconds": "pg_scrape_collector_duration_seconds",
    "pg_exporter_build_info": "postgres_exporter_build_info",
}


def _f(value: float, digits: int = 2) -> str:
    return "n/a" if value != value else f"{value:.{digits}f}"


def ratio(ours: float, theirs: float) -> float:
    return ours / theirs if theirs else float("nan")


def growth(runs: dict[tuple[str, int], Run], name: str, small: int, large: int) -> float:
    return ratio(runs[(name, large)].cpu, runs[(name, small)].cpu)


def render(scale: Scale, harness: Harness, steps: dict[str, int], base_interval: float,
           scrapes: int, repeats: int) -> list[str]:
    eq = scale.equal
    sizes = sorted({size for _, size in eq.runs})
    out = [
        "## PostgreSQL at scale: equal freshness (issue 16 target 2)", "",
        "- Scale sizes built by the harness (bench/pg_scale.py): tables in `scale`, each with "
        "a primary key, one never-scanned index and one row (tables seen in "
        "pg_stat_user_tables: " + ", ".join(f"{eq.tables.get(s, 0):,}" for s in sizes)
        + f"); {STATEMENTS:,} distinct statements seeded into pg_stat_statements "
        f"(pg_stat_statements.max {PGSS_MAX}; entries held: "
        + ", ".join(f"{eq.pgss_statements.get(s, 0):,}" for s in sizes) + "). Build time: "
        + ", ".join(f"{s:,} tables {scale.build_seconds.get(s, 0):.0f} s" for s in sizes) + ".",
        "- saasmon collects on each scrape (`interval_seconds: 0`: all collectors inside the "
        "scrape). prometheus-postgres-exporter runs the same SQL: a custom queries file "
        f"generated from saasmon.postgres.queries ({eq.queries} queries, one saasmon round on "
        "a primary, parameters inlined), with `--disable-default-metrics "
        "--disable-settings-metrics --no-collector.database --no-collector.bgwriter`.",
        f"- Per exporter and size: 3 warm-up scrapes, then {scrapes} sequential scrapes, "
        f"{repeats} times, the two exporters alternating; medians of the repeats. CPU: "
        "run time of every thread of the exporter process (/proc/PID/task/*/schedstat, in "
        "ns; utime+stime's 10 ms ticks were +-6 % of a repeat), and of every process of the "
        "PostgreSQL cluster (PostgreSQL CPU). Statements: the growth of sum(calls) in "
        "pg_stat_statements (track = all), less the one read of our own. No workload runs "
        "during these scrapes.",
        "",
        "| tables | exporter | CPU ms/scrape | PostgreSQL CPU ms/scrape | statements/collection "
        "| p50 ms | samples/scrape | scrapes (failed) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size in sizes:
        for name in (GO_EQUAL, OURS_EQUAL):
            r = eq.runs[(name, size)]
            out.append(f"| {size:,} | {name} | {_f(r.cpu)} | {_f(r.db_cpu)} | {_f(r.stmts, 1)} | "
                       f"{_f(r.p50(harness))} | {r.samples} | {r.scrapes} ({r.errors}) |")
        go, ours = eq.runs[(GO_EQUAL, size)], eq.runs[(OURS_EQUAL, size)]
        out.append(f"| {size:,} | **ratio saasmon / Go** | {_f(ratio(ours.cpu, go.cpu), 3)}x | "
                   f"{_f(ratio(ours.db_cpu, go.db_cpu), 3)}x | "
                   f"{_f(ratio(ours.stmts, go.stmts), 3)}x | "
                   f"{_f(ratio(ours.p50(harness), go.p50(harness)), 3)}x | | |")
    small, large = sizes[0], sizes[-1]
    out += ["", f"CPU per scrape growth from {small:,} to {large:,} tables: saasmon "
            f"{_f(growth(eq.runs, OURS_EQUAL, small, large), 3)}x, Go "
            f"{_f(growth(eq.runs, GO_EQUAL, small, large), 3)}x. The rows, statements and "
            "system calls per scrape are the same at every size; what grows is how long each "
            "statement keeps the exporter waiting, and a longer wait costs more CPU on wake "
            "(bench/WAIT_COST.md, `bench/wait_cost.py`: same rows, slower server).", ""]
    out += ["## Collector cost and default intervals (issue 16 target 4)", "",
            "Each collector run alone in the bench process on a warm connection, median wall "
            "ms of the runs (database and client time; one collector at a time). Default "
            f"interval at `interval_seconds: {base_interval:g}` (exporters/postgres/config.py "
            "INTERVAL_STEPS).", "",
            "| collector | default interval s | " + " | ".join(f"ms @ {s:,} tables" for s in sizes)
            + " |", "|---|---|" + "---|" * len(sizes)]
    for name in sorted(steps, key=lambda n: (steps[n], scale.costs[large].get(n, 0))):
        out.append(f"| {name} | {steps[name] * base_interval:g} | "
                   + " | ".join(_f(scale.costs[s].get(name, float("nan"))) for s in sizes)
                   + " |")
    out.append("")
    bg = scale.background
    if bg is not None:
        out += ["## Background collection CPU (issue 16 target 6)", "",
                f"The three exporters side by side at {large:,} tables, each scraped every "
                f"{BACKGROUND_SCRAPE_SECONDS:g} s (Prometheus' default) for a "
                f"{bg.window_seconds:.0f} s window, scrapes staggered; CPU of each process "
                "over the window (saasmon's first round, at start-up, is before it). "
                f"PostgreSQL's CPU over the same window, all three together: "
                f"{bg.db_cpu_ms:.0f} ms.", "",
                "| exporter | scrapes | CPU ms in window | CPU s per hour |", "|---|---|---|---|"]
        for name, cpu in bg.cpu_ms.items():
            out.append(f"| {name} | {bg.scrapes.get(name, 0)} | {cpu:.0f} | "
                       f"{cpu / 1000 * 3600 / bg.window_seconds:.1f} |")
        out += ["", *coverage(bg)]
    return out


def coverage(bg: Background) -> list[str]:
    ours = bg.families.get(OURS_DEFAULT, {})
    go = bg.families.get(GO_DEFAULT, {})
    ours = {k: v for k, v in ours.items() if not k.startswith(("process_", "python_"))}
    go = {k: v for k, v in go.items() if not k.startswith(("process_", "go_", "promhttp_"))}
    paired = [(o, g) for o, g in EQUIVALENT.items() if o in ours and g in go]
    only_ours = sorted(set(ours) - {o for o, _ in paired})
    only_go = sorted(set(go) - {g for _, g in paired})
    out = ["## Coverage (default modes; issue 16 target 6)", "",
           "Series per metric family in one scrape of each exporter's defaults (process_, "
           "python_, go_ and promhttp_ families left out). A pair is the same fact under two "
           "names (bench/pg_scale.py EQUIVALENT).", "",
           f"Totals: saasmon {sum(ours.values())} series in {len(ours)} families; "
           f"postgres_exporter {sum(go.values())} series in {len(go)} families.", "",
           "| fact | saasmon family | series | postgres_exporter family | series |",
           "|---|---|---|---|---|"]
    out += [f"| both | `{o}` | {ours[o]} | `{g}` | {go[g]} |" for o, g in paired]
    out += [f"| saasmon only | `{o}` | {ours[o]} | | |" for o in only_ours]
    settings = [g for g in only_go if g.startswith("pg_settings_")]
    out += [f"| postgres_exporter only | | | `{g}` | {go[g]} |" for g in only_go
            if g not in settings]
    if settings:  # one row for the server settings, one family per setting
        out.append(f"| postgres_exporter only | | | `pg_settings_*` ({len(settings)} "
                   f"families: every numeric setting) | {sum(go[g] for g in settings)} |")
    return [*out, ""]
