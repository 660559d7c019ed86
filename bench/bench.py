"""Side-by-side benchmark: saasmon exporters vs Debian's postgres/redis exporters.

Not a test: it starts one private PostgreSQL and one private Redis, runs the four
exporters against the very same servers one after another and writes a Markdown
report (`make bench` -> bench/RESULTS.md).

Per exporter it measures samples per scrape, scrape latency (sequential scrapes),
exporter CPU per scrape, peak RSS, and the load each exporter puts on the watched
server per scrape with 1 and with 8 concurrent scrapers (PostgreSQL transactions,
Redis commands).

How the server-side load is counted (why it looks the way it does):
* PostgreSQL 15 flushes a backend's statistics lazily (up to ~10 s late for an idle
  backend) but always on backend exit. So each counting window starts the exporter,
  scrapes, stops the exporter (its backends exit and flush) and only then reads
  pg_stat_database. Exporter start-up is therefore inside the window: a real cost.
* The steady workload is paused during counting windows and autovacuum is off, so
  the counter sees the exporter plus our own measuring query; the latter is removed
  by subtracting an idle window of the same shape with no exporter running.
* saasmon collects in the background every `interval_seconds` (15 s here). Those
  rounds are kept in the count; the window is long enough that at least one lands.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import asyncpg
import pg_scale
import redis.asyncio as aioredis
import report
import targets16
import yaml

# devstack/ is not installed (never shipped): run from the checkout.
sys.path.append(str(Path(__file__).resolve().parent.parent))
from devstack.process import Process, port_open
from devstack.servers import PostgresServer, RedisServer, free_port
from saasmon.postgres.config import INTERVAL_STEPS, PostgresConfig

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
DEBIAN_PG = "/usr/bin/prometheus-postgres-exporter"
DEBIAN_REDIS = "/usr/bin/prometheus-redis-exporter"
OURS_INTERVAL_SECONDS = 15
SCRAPE_PERIOD_SECONDS = 1.0  # one scrape per second per scraper: a busy but real setup
SCRAPE_TIMEOUT_SECONDS = 10.0
CONCURRENT_SCRAPERS = 8
SETTLE_SECONDS = 1.0  # time for exiting backends to flush their stats
RSS_TARGET_MIB = 64.0
REDIS_BASELINE_SECONDS = 2.0


@dataclass(frozen=True)
class Plan:
    """How long each phase runs; --quick shrinks it, the method stays the same."""

    warmup_scrapes: int
    latency_scrapes: int
    window_seconds: float
    # bench/pg_scale.py: table counts, scrapes per repeat, repeats, collector runs, window
    sizes: tuple[int, ...] = pg_scale.SIZES
    scale_scrapes: int = 40
    scale_repeats: int = 3
    cost_runs: int = 10
    background_seconds: float = 60.0


FULL_PLAN = Plan(warmup_scrapes=20, latency_scrapes=200, window_seconds=20.0)
QUICK_PLAN = Plan(warmup_scrapes=5, latency_scrapes=50, window_seconds=8.0,
                  sizes=pg_scale.QUICK_SIZES, scale_scrapes=10, scale_repeats=1, cost_runs=3,
                  background_seconds=20.0)
# The other bench scripts whose issue 16 rows this report quotes: (target, script, report,
# extra arguments). Run by `make bench` unless --skip-others; their reports are rewritten.
OTHERS: tuple[tuple[str, str, str, list[str]], ...] = (
    ("1", "bench/rss.py", "bench/RSS.md", ["--runs", "1"]),
    ("3", "bench/redis_scan.py", "bench/REDIS_SCAN.md", []),
    ("5", "bench/webvitals_bench.py", "bench/WEBVITALS_RESULTS.md", []),
)
# Too slow for `make bench` (three runs of several minutes, and query-exporter's own venv):
# quoted from its last run (`make bench-business`).
BUSINESS_REPORT = "bench/BUSINESS_RESULTS.md"


@dataclass(frozen=True)
class ExporterSpec:
    name: str
    ours: bool
    argv: list[str]
    env: dict[str, str]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"


@dataclass
class Result:
    name: str
    ours: bool
    samples: int = 0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    cpu_ms_per_scrape: float = 0.0
    cpu_ms_per_scrape_8: float = 0.0
    peak_rss_mib: float = 0.0
    load_per_scrape_1: float = 0.0
    load_per_scrape_8: float = 0.0
    scrapes_1: int = 0
    scrapes_8: int = 0
    scrape_errors: int = 0
    log_errors: list[str] = field(default_factory=list)


class LoadCounter(Protocol):
    """A monotonically growing server-side counter (transactions or commands)."""

    label: str

    async def read(self) -> int: ...


# ---------------------------------------------------------------------------
# Exporter processes


class ExporterProcess:
    """One exporter process (devstack's Process, by its bench spec); logs go to a file so a
    failing exporter can be explained."""

    def __init__(self, spec: ExporterSpec, logdir: Path) -> None:
        self.spec = spec
        # Appended: a spec run twice keeps both runs' logs.
        self.process = Process(spec.name, spec.argv, logdir / f"{spec.name.replace(' ', '-')}.log",
                               spec.env, append_log=True)

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self.process.proc

    @property
    def pid(self) -> int:
        return self.process.pid

    def start(self) -> None:
        self.process.start()

    def stop(self) -> None:
        self.process.stop()

    def log_tail(self, lines: int = 15) -> str:
        return self.process.log_tail(lines)

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until the port accepts connections; no HTTP request, so no scrape is caused."""
        await self.process.wait_until_async(
            f"127.0.0.1:{self.spec.port} accepts connections",
            lambda: port_open(self.spec.port), timeout)


class ProcessRegistry:
    """Every process we start, so the outer `finally` can stop all of them."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.live: list[ExporterProcess] = []

    @contextlib.asynccontextmanager
    async def running(self, spec: ExporterSpec) -> AsyncIterator[ExporterProcess]:
        proc = ExporterProcess(spec, self.logdir)
        self.live.append(proc)
        proc.start()
        try:
            await proc.wait_ready()
            yield proc
        finally:
            proc.stop()
            self.live.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.live):
            proc.stop()


class ScaleHarness:
    """bench/pg_scale.py's view of this module's process handling and helpers."""

    debian_pg = DEBIAN_PG

    def __init__(self, registry: ProcessRegistry) -> None:
        self.registry = registry

    def running(self, name: str, argv: list[str], env: dict[str, str],
                port: int) -> contextlib.AbstractAsyncContextManager[ExporterProcess]:
        return self.registry.running(ExporterSpec(name=name, ours=name.startswith("saasmon"),
                                                  argv=argv, env=env, port=port))

    def cpu_seconds(self, pid: int) -> float:
        return cpu_seconds(pid)

    def percentile(self, values: Sequence[float], pct: float) -> float:
        return percentile(values, pct)

    def saasmon_argv(self) -> list[str]:
        return saasmon_argv()

    def free_port(self) -> int:
        return free_port()


def cpu_seconds(pid: int) -> float:
    """CPU time of the process in nanoseconds' precision: the sum of its threads' run time
    from /proc/PID/task/*/schedstat. utime+stime count whole 10 ms ticks, which is +-6 %
    on the ~200 ms a 40-scrape repeat costs: enough to flip a growth comparison. Both
    exporters keep their threads for their lifetime (Go parks idle threads, asyncio's
    executor keeps its workers), so no run time leaves with an exited thread; the tick
    count is the fallback where schedstat is absent."""
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (FileNotFoundError, ProcessLookupError):
                continue  # a thread that ended between the listing and the read
    except FileNotFoundError:
        total = 0
    if total:
        return total / 1e9
    # Fields after the ")" of comm; utime and stime are the 12th and 13th of those.
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ---------------------------------------------------------------------------
# Scraping


def count_samples(body: str) -> int:
    return sum(1 for line in body.splitlines() if line and not line.startswith("#"))


async def scrape(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as resp:
        body = await resp.text()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status} from {url}: {body[:200]}")
        return body


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile: with 200 samples p99 is the 2nd slowest, not interpolated."""
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


async def measure_latency(
    session: aiohttp.ClientSession, proc: ExporterProcess, plan: Plan, result: Result
) -> None:
    for _ in range(plan.warmup_scrapes):
        await scrape(session, proc.spec.url)
        await asyncio.sleep(0.1)
    timings: list[float] = []
    body = ""
    cpu_before = cpu_seconds(proc.pid)
    for _ in range(plan.latency_scrapes):
        started = time.perf_counter()
        body = await scrape(session, proc.spec.url)
        timings.append(time.perf_counter() - started)
    cpu_after = cpu_seconds(proc.pid)
    result.samples = count_samples(body)
    result.p50_ms = percentile(timings, 50) * 1000
    result.p99_ms = percentile(timings, 99) * 1000
    result.cpu_ms_per_scrape = (cpu_after - cpu_before) * 1000 / plan.latency_scrapes


async def scraper_loop(
    session: aiohttp.ClientSession, url: str, offset: float, deadline: float
) -> tuple[int, int]:
    """Scrape every SCRAPE_PERIOD_SECONDS until deadline; returns (ok, failed)."""
    ok = failed = 0
    next_at = time.monotonic() + offset
    while True:
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        if time.monotonic() >= deadline:
            return ok, failed
        try:
            await scrape(session, url)
            ok += 1
        except (aiohttp.ClientError, TimeoutError, RuntimeError):
            failed += 1
        next_at += SCRAPE_PERIOD_SECONDS


async def scrape_for(
    session: aiohttp.ClientSession, url: str, scrapers: int, seconds: float
) -> tuple[int, int]:
    deadline = time.monotonic() + seconds
    # Staggered like independent Prometheus servers, not a thundering herd.
    offsets = [i * SCRAPE_PERIOD_SECONDS / scrapers for i in range(scrapers)]
    outcomes = await asyncio.gather(
        *(scraper_loop(session, url, offset, deadline) for offset in offsets)
    )
    return sum(o[0] for o in outcomes), sum(o[1] for o in outcomes)


# ---------------------------------------------------------------------------
# Phases


async def idle_baseline(counter: LoadCounter, seconds: float) -> int:
    """Counter growth with no exporter running: our own measuring query, nothing else."""
    before = await counter.read()
    await asyncio.sleep(seconds + SETTLE_SECONDS)
    return await counter.read() - before


async def counting_window(
    registry: ProcessRegistry, session: aiohttp.ClientSession, spec: ExporterSpec,
    counter: LoadCounter, scrapers: int, seconds: float, result: Result,
) -> tuple[int, int, float]:
    """Returns (counter delta, successful scrapes, exporter CPU s during scraping)."""
    before = await counter.read()
    async with registry.running(spec) as proc:
        cpu_before = cpu_seconds(proc.pid)
        ok, failed = await scrape_for(session, spec.url, scrapers, seconds)
        cpu = cpu_seconds(proc.pid) - cpu_before
        result.peak_rss_mib = max(result.peak_rss_mib, peak_rss_mib(proc.pid))
    result.scrape_errors += failed
    await asyncio.sleep(SETTLE_SECONDS)
    return await counter.read() - before, ok, cpu


async def bench_exporter(
    registry: ProcessRegistry, spec: ExporterSpec, counter: LoadCounter, baseline: int,
    workload: Callable[[], contextlib.AbstractAsyncContextManager[None]], plan: Plan,
) -> Result:
    result = Result(name=spec.name, ours=spec.ours)
    timeout = aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        print(f"  {spec.name}: latency ({plan.latency_scrapes} sequential scrapes)", flush=True)
        async with workload(), registry.running(spec) as proc:
            await measure_latency(session, proc, plan, result)
            result.peak_rss_mib = max(result.peak_rss_mib, peak_rss_mib(proc.pid))
            log_path = proc.log_path
        await asyncio.sleep(SETTLE_SECONDS)
        for scrapers in (1, CONCURRENT_SCRAPERS):
            print(f"  {spec.name}: {counter.label} with {scrapers} scraper(s), "
                  f"{plan.window_seconds:.0f}s", flush=True)
            delta, ok, cpu = await counting_window(
                registry, session, spec, counter, scrapers, plan.window_seconds, result
            )
            per_scrape = (delta - baseline) / ok if ok else float("nan")
            if scrapers == 1:
                result.load_per_scrape_1, result.scrapes_1 = per_scrape, ok
            else:
                result.load_per_scrape_8, result.scrapes_8 = per_scrape, ok
                result.cpu_ms_per_scrape_8 = cpu * 1000 / ok if ok else float("nan")
    result.log_errors = error_lines(log_path)
    return result


def error_lines(log_path: Path, limit: int = 5) -> list[str]:
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    hits = [ln for ln in lines if any(w in ln.lower() for w in ("error", "traceback", "panic"))]
    return hits[:limit] + ([f"... {len(hits) - limit} more"] if len(hits) > limit else [])


# ---------------------------------------------------------------------------
# PostgreSQL


PG_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE TABLE accounts (id serial PRIMARY KEY, name text NOT NULL, balance int NOT NULL);
CREATE TABLE orders (id serial PRIMARY KEY, account_id int REFERENCES accounts(id),
                     amount int NOT NULL, created_at timestamptz DEFAULT now());
CREATE TABLE events (id bigserial PRIMARY KEY, kind text NOT NULL, payload jsonb);
CREATE INDEX orders_account_idx ON orders(account_id);
INSERT INTO accounts(name, balance) SELECT 'acct' || g, g % 1000 FROM generate_series(1, 5000) g;
INSERT INTO orders(account_id, amount) SELECT 1 + g % 5000, g % 97 FROM generate_series(1, 20000) g;
INSERT INTO events(kind, payload) SELECT 'seed', jsonb_build_object('n', g)
  FROM generate_series(1, 5000) g;
ANALYZE;
"""

PG_WORKLOAD = (
    "SELECT name, balance FROM accounts WHERE id = $1",
    "SELECT count(*), sum(amount) FROM orders WHERE account_id = $1",
    "UPDATE accounts SET balance = balance + 1 WHERE id = $1",
    "INSERT INTO orders(account_id, amount) VALUES ($1, 10)",
    "INSERT INTO events(kind, payload) VALUES ('click', jsonb_build_object('a', $1::int))",
)


class PgXactCounter:
    label = "DB xacts/scrape"

    def __init__(self, server: PostgresServer) -> None:
        self.server = server

    async def read(self) -> int:
        # psql exits after the query, so its own backend's stats are flushed right away.
        sql = "SELECT sum(xact_commit + xact_rollback) FROM pg_stat_database"
        return int(await asyncio.to_thread(self.server.psql, sql))


def setup_postgres(server: PostgresServer) -> None:
    pg_scale.configure(server)
    server.start()
    server.psql(PG_SCHEMA)
    # Autovacuum workers commit transactions at random times: noise in the counter.
    server.psql("ALTER SYSTEM SET autovacuum = off")
    server.psql("SELECT pg_reload_conf()")


@contextlib.contextmanager
def scratch_postgres(prefix: str) -> Iterator[tuple[PostgresServer, Path]]:
    """A private PostgreSQL set up for the bench in a scratch directory, gone afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    tmp.chmod(0o755)  # initdb runs as user postgres when we are root
    server = PostgresServer(tmp / "pg")
    try:
        setup_postgres(server)
        yield server, tmp
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.asynccontextmanager
async def pg_workload(dsn: str) -> AsyncIterator[None]:
    """A few queries per second in the background, so stats views are not empty."""

    async def loop() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            rng = random.Random(42)
            while True:
                await conn.execute(rng.choice(PG_WORKLOAD), rng.randint(1, 5000))
                await asyncio.sleep(0.2)
        finally:
            # Closing ends the backend, which flushes its stats before a counting window.
            await conn.close()

    async with run_background(loop):
        yield


def pg_specs(server: PostgresServer, tmp: Path) -> list[ExporterSpec]:
    config = tmp / "saasmon-postgres.yml"
    config.write_text(yaml.safe_dump({
        "dsn": server.dsn, "interval_seconds": OURS_INTERVAL_SECONDS,
        "timeout_seconds": 5, "top_n": 20,
    }))
    debian_port, ours_port = free_port(), free_port()
    return [
        ExporterSpec(
            name="prometheus-postgres-exporter (Debian)", ours=False,
            argv=[DEBIAN_PG, f"--web.listen-address=127.0.0.1:{debian_port}"],
            env={"DATA_SOURCE_NAME": f"{server.dsn}?sslmode=disable"}, port=debian_port,
        ),
        ExporterSpec(
            name="saasmon postgres", ours=True,
            argv=[*saasmon_argv(), "postgres", "--config.file", str(config),
                  "--web.listen-address", f"127.0.0.1:{ours_port}"],
            env={}, port=ours_port,
        ),
    ]


# ---------------------------------------------------------------------------
# Redis


class RedisCommandCounter:
    label = "Redis cmds/scrape"

    def __init__(self, url: str) -> None:
        self.client = aioredis.Redis.from_url(url)

    async def read(self) -> int:
        # One persistent connection: each read adds exactly one INFO to the count.
        stats = await self.client.info("stats")
        return int(stats["total_commands_processed"])

    async def close(self) -> None:
        await self.client.aclose()


async def seed_redis(url: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        pipe = client.pipeline()
        for i in range(500):
            pipe.set(f"session:{i}", "x" * 64, ex=3600)
            pipe.hset(f"user:{i}", mapping={"name": f"u{i}", "plan": "pro"})
        for i in range(50):
            pipe.rpush(f"queue:{i % 5}", f"job{i}")
        await pipe.execute()
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def redis_workload(url: str) -> AsyncIterator[None]:
    async def loop() -> None:
        client = aioredis.Redis.from_url(url)
        try:
            rng = random.Random(42)
            while True:
                key = rng.randint(0, 499)
                await client.get(f"session:{key}")
                await client.hincrby(f"user:{key}", "hits", 1)
                await client.lpush("queue:0", "job")
                await client.rpop("queue:0")
                await asyncio.sleep(0.2)
        finally:
            await client.aclose()

    async with run_background(loop):
        yield


def redis_specs(server: RedisServer, tmp: Path) -> list[ExporterSpec]:
    config = tmp / "saasmon-redis.yml"
    config.write_text(yaml.safe_dump({
        "targets": [{"name": "main", "url": server.url}],
        "interval_seconds": OURS_INTERVAL_SECONDS, "timeout_seconds": 5,
    }))
    debian_port, ours_port = free_port(), free_port()
    return [
        ExporterSpec(
            name="prometheus-redis-exporter (Debian)", ours=False,
            argv=[DEBIAN_REDIS, f"--redis.addr=redis://127.0.0.1:{server.port}",
                  f"--web.listen-address=127.0.0.1:{debian_port}"],
            env={}, port=debian_port,
        ),
        ExporterSpec(
            name="saasmon redis", ours=True,
            argv=[*saasmon_argv(), "redis", "--config.file", str(config),
                  "--web.listen-address", f"127.0.0.1:{ours_port}"],
            env={}, port=ours_port,
        ),
    ]


# ---------------------------------------------------------------------------
# Helpers


@contextlib.asynccontextmanager
async def run_background(loop: Callable[[], Coroutine[Any, Any, None]]) -> AsyncIterator[None]:
    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def saasmon_argv() -> list[str]:
    # The console script next to the running interpreter is what users run.
    script = Path(sys.executable).with_name("saasmon")
    return [str(script)] if script.exists() else [sys.executable, "-m", "saasmon"]


def command_output(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (out.stdout + out.stderr).strip()
    first = text.splitlines()[0] if text else "unknown"
    # redis_exporter prints its version as a log line: keep only the message.
    logged = re.search(r'msg="([^"]*)"', first)
    return " ".join(logged.group(1).split()) if logged else first


def machine_info(pg: PostgresServer | None) -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    try:
        ours_version = importlib.metadata.version("saasmon")
    except importlib.metadata.PackageNotFoundError:
        ours_version = "unknown"
    git = ["git", "-C", str(REPO)]
    info = {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "kernel": platform.release(),
        # Other work on the machine skews latency and CPU: record how busy it was.
        "uptime at end": report.uptime(),
        "python": platform.python_version(),
        "saasmon": f"{ours_version} (git {command_output([*git, 'rev-parse', '--short', 'HEAD'])})",
        "prometheus-postgres-exporter": command_output([DEBIAN_PG, "--version"]),
        "prometheus-redis-exporter": command_output([DEBIAN_REDIS, "-version"]),
        "redis-server": command_output(["redis-server", "--version"]),
    }
    if pg is not None:
        info["postgresql"] = pg.psql("SHOW server_version")
    return info


# ---------------------------------------------------------------------------
# Report


def fmt(value: float, digits: int = 2) -> str:
    return "n/a" if value != value else f"{value:.{digits}f}"  # NaN check without math


def ratio(ours: float, theirs: float) -> float:
    return ours / theirs if theirs else float("nan")


COLUMNS = (
    ("samples/scrape", "samples", 0),
    ("p50 ms", "p50_ms", 2),
    ("p99 ms", "p99_ms", 2),
    ("CPU ms/scrape", "cpu_ms_per_scrape", 2),
    ("CPU ms/scrape @8", "cpu_ms_per_scrape_8", 2),
    ("peak RSS MiB", "peak_rss_mib", 1),
    ("{load} @1", "load_per_scrape_1", 2),
    ("{load} @8", "load_per_scrape_8", 2),
)


def result_table(results: list[Result], load_label: str) -> list[str]:
    headers = ["exporter", *(title.format(load=load_label) for title, _, _ in COLUMNS)]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for res in results:
        cells = [fmt(float(getattr(res, attr)), digits) for _, attr, digits in COLUMNS]
        lines.append(f"| {res.name} | " + " | ".join(cells) + " |")
    ours = next(r for r in results if r.ours)
    theirs = next(r for r in results if not r.ours)
    cells = [fmt(ratio(float(getattr(ours, a)), float(getattr(theirs, a))), 3) + "x"
             for _, a, _ in COLUMNS]
    lines.append("| **ratio ours / Debian** | " + " | ".join(cells) + " |")
    return lines


@dataclass(frozen=True)
class Target:
    what: str
    value: float
    limit: float
    unit: str

    @property
    def passed(self) -> bool:
        return self.value <= self.limit  # NaN compares False: a missing number is a MISS


def targets(pg: list[Result] | None, rd: list[Result] | None) -> list[Target]:
    found: list[Target] = []
    if pg:
        ours, theirs = pg[1], pg[0]
        found += [
            Target("PostgreSQL p50 latency, ours/Debian", ratio(ours.p50_ms, theirs.p50_ms),
                   0.5, "x"),
            Target("PostgreSQL CPU/scrape, ours/Debian",
                   ratio(ours.cpu_ms_per_scrape, theirs.cpu_ms_per_scrape), 0.5, "x"),
            Target("PostgreSQL DB xacts/scrape @8, ours/Debian",
                   ratio(ours.load_per_scrape_8, theirs.load_per_scrape_8), 0.1, "x"),
            Target("saasmon postgres peak RSS", ours.peak_rss_mib, RSS_TARGET_MIB, " MiB"),
        ]
    if rd:
        ours, theirs = rd[1], rd[0]
        found += [
            Target("Redis p50 latency, ours/Debian", ratio(ours.p50_ms, theirs.p50_ms), 1.0, "x"),
            Target("saasmon redis peak RSS", ours.peak_rss_mib, RSS_TARGET_MIB, " MiB"),
        ]
    return found


def render(
    pg: list[Result] | None, rd: list[Result] | None, info: dict[str, str], plan: Plan,
    command: str, pg_baseline: int | None, rd_baseline: int | None, started: dt.datetime,
    extra: list[str] | None = None,
) -> str:
    out = [
        *report.header("saasmon exporter benchmark", "bench/bench.py", [command],
                       generated=f"{started:%Y-%m-%d %H:%M UTC}",
                       note="; `make bench`"),
        *(extra or []),
        "## Machine",
        "",
        *(f"- {key}: `{value}`" for key, value in info.items()),
        "",
        "## Method",
        "",
        "- One private PostgreSQL and one private Redis (devstack/servers.py); every "
        "exporter scrapes the same servers, one exporter at a time, over loopback.",
        f"- Latency and CPU: {plan.warmup_scrapes} warm-up scrapes, then "
        f"{plan.latency_scrapes} back-to-back scrapes over one keep-alive connection, while a "
        "steady workload (~5 queries or ~20 commands/s, seeded tables and keys) runs. "
        "CPU = run time of the exporter's threads (/proc/PID/task/*/schedstat), per scrape. "
        "`CPU ms/scrape @8` is the same over the 8-scraper window, so it includes "
        "saasmon's background collection rounds.",
        "- Peak RSS: VmHWM of the exporter process, max over its runs.",
        f"- Server load per scrape: a {plan.window_seconds:.0f} s window with 1 and with "
        f"{CONCURRENT_SCRAPERS} scrapers, each scraping every {SCRAPE_PERIOD_SECONDS:.0f} s "
        "(staggered). The exporter is started inside the window and stopped at its end "
        "(PostgreSQL flushes a backend's stats on exit), so start-up cost is included. "
        "PostgreSQL: delta of sum(xact_commit + xact_rollback) over pg_stat_database; Redis: "
        "delta of INFO total_commands_processed. The workload is paused and autovacuum is "
        "off during windows; the growth over an idle window without exporter (our own "
        f"measuring query: PostgreSQL {pg_baseline} xacts over {plan.window_seconds:.0f} s, "
        f"Redis {rd_baseline} command over {REDIS_BASELINE_SECONDS:.0f} s) is subtracted. "
        "Divided by successful scrapes.",
        f"- saasmon runs with interval_seconds={OURS_INTERVAL_SECONDS}: every background "
        "collection round inside the window is counted, including the one at start-up (that "
        f"is its real cost). A {plan.window_seconds:.0f} s window therefore over-weights "
        "start-up relative to a long-running exporter; it errs against saasmon.",
        "",
    ]
    for title, results, label in (("PostgreSQL", pg, PgXactCounter.label),
                                  ("Redis", rd, RedisCommandCounter.label)):
        if results:
            out += [f"## {title}: default modes", "", *result_table(results, label), ""]
            counts = ", ".join(f"{r.name}: {r.scrapes_1} @1 / {r.scrapes_8} @8"
                               f" ({r.scrape_errors} failed)" for r in results)
            out += [f"Scrapes in the windows: {counts}.", ""]
    out += ["## Targets (default modes, small database)", "",
            "| target | value | limit | result |", "|---|---|---|---|"]
    for target in targets(pg, rd):
        verdict = "PASS" if target.passed else "**MISS**"
        out.append(f"| {target.what} | {fmt(target.value, 3)}{target.unit} | "
                   f"≤ {target.limit:g}{target.unit} | {verdict} |")
    logs = [(r.name, r.log_errors) for r in (pg or []) + (rd or []) if r.log_errors]
    if logs:
        out += ["", "## Error lines in exporter logs", ""]
        for name, lines in logs:
            out += [f"- {name}:", *(f"  - `{line[:300]}`" for line in lines)]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# Main


async def bench_postgres(
    registry: ProcessRegistry, server: PostgresServer, tmp: Path, plan: Plan
) -> tuple[list[Result], int]:
    counter = PgXactCounter(server)
    print(f"postgres: idle baseline {plan.window_seconds:.0f}s", flush=True)
    baseline = await idle_baseline(counter, plan.window_seconds)
    results = [
        await bench_exporter(registry, spec, counter, baseline,
                             lambda: pg_workload(server.dsn), plan)
        for spec in pg_specs(server, tmp)
    ]
    return results, baseline


async def bench_redis(
    registry: ProcessRegistry, server: RedisServer, tmp: Path, plan: Plan
) -> tuple[list[Result], int]:
    await seed_redis(server.url)
    counter = RedisCommandCounter(server.url)
    try:
        # Redis runs no commands of its own, so the baseline is just our INFO: no need to
        # wait a whole window for it.
        print(f"redis: idle baseline {REDIS_BASELINE_SECONDS:.0f}s", flush=True)
        baseline = await idle_baseline(counter, REDIS_BASELINE_SECONDS)
        results = [
            await bench_exporter(registry, spec, counter, baseline,
                                 lambda: redis_workload(server.url), plan)
            for spec in redis_specs(server, tmp)
        ]
    finally:
        await counter.close()
    return results, baseline


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "RESULTS.md")
    parser.add_argument("--json", type=Path, help="also write the raw numbers as JSON")
    parser.add_argument("--quick", action="store_true", help="shorter run, same method")
    parser.add_argument("--only", choices=("postgres", "redis"), help="benchmark one server")
    parser.add_argument("--skip-scale", action="store_true",
                        help="no PostgreSQL scale phase (issue 16 targets 2, 4, 6)")
    parser.add_argument("--skip-others", action="store_true",
                        help="quote the reports of OTHERS (rss, redis_scan, webvitals) instead "
                        "of re-running them")
    parser.add_argument("--keep-tmp", action="store_true", help="keep server data and logs")
    return parser.parse_args(argv)


def run_others(skip: bool) -> dict[str, bool]:
    """Run the other bench scripts whose issue 16 rows are quoted; report -> re-run now."""
    fresh: dict[str, bool] = {}
    for _, script, out, extra in OTHERS:
        if skip:
            fresh[out] = False
            continue
        print(f"{script}: running (its report: {out})", flush=True)
        done = subprocess.run([sys.executable, str(REPO / script), "--out", out, *extra],
                              cwd=REPO, check=False)
        fresh[out] = done.returncode == 0
        if done.returncode != 0:
            print(f"{script} failed ({done.returncode}): its last report is quoted",
                  file=sys.stderr)
    return fresh


def issue16_rows(scale: pg_scale.Scale | None, fresh: dict[str, bool]) -> list[targets16.Row]:
    rows: list[targets16.Row] = []
    for target, script, out, _ in OTHERS:
        if script == "bench/webvitals_bench.py":
            rows += targets16.webvitals(REPO / out, fresh.get(out, False))
        else:
            rows += targets16.from_report(target, REPO / out, fresh.get(out, False))
    rows += targets16.business(REPO / BUSINESS_REPORT)
    if scale is not None:
        rows += targets16.scale_rows(scale, INTERVAL_STEPS)
    else:
        rows += [targets16.Row(t, "PostgreSQL scale phase", "skipped (--skip-scale)",
                               "not measured", "") for t in ("2", "4", "6")]
    return rows


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    # `kill` should clean up like Ctrl-C does: both unwind through the finally blocks.
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = QUICK_PLAN if args.quick else FULL_PLAN
    started = dt.datetime.now(dt.UTC)
    uptime_start = report.uptime()
    command = ".venv/bin/python bench/bench.py " + " ".join(sys.argv[1:] if argv is None else argv)
    tmp = Path(tempfile.mkdtemp(prefix="saasmon-bench-"))
    tmp.chmod(0o755)  # initdb runs as user postgres when we are root
    registry = ProcessRegistry(tmp)
    pg = PostgresServer(tmp / "pg") if args.only in (None, "postgres") else None
    rd = RedisServer(tmp / "redis") if args.only in (None, "redis") else None
    pg_results = rd_results = None
    pg_baseline = rd_baseline = None
    scale: pg_scale.Scale | None = None
    try:
        with sigterm_as_interrupt():
            if pg is not None:
                setup_postgres(pg)
                pg_results, pg_baseline = asyncio.run(bench_postgres(registry, pg, tmp, plan))
                if not args.skip_scale:
                    scale = asyncio.run(pg_scale.run(
                        ScaleHarness(registry), pg, tmp, sizes=plan.sizes,
                        scrapes=plan.scale_scrapes, repeats=plan.scale_repeats,
                        cost_runs=plan.cost_runs, window=plan.background_seconds,
                        log=lambda line: print(line, flush=True)))
            if rd is not None:
                rd.start()
                rd_results, rd_baseline = asyncio.run(bench_redis(registry, rd, tmp, plan))
            info = machine_info(pg)
    except KeyboardInterrupt:
        print("interrupted: stopping everything", file=sys.stderr)
        return 130
    finally:
        registry.stop_all()
        if pg is not None:
            pg.stop()
        if rd is not None:
            rd.stop()
        if args.keep_tmp:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    # After our servers are gone: the other scripts start their own.
    fresh = run_others(args.skip_others or args.quick)
    info = {"uptime at start": uptime_start, **info, "uptime at end": report.uptime()}
    extra = targets16.render(issue16_rows(scale, fresh))
    if scale is not None:
        extra += pg_scale.render(scale, ScaleHarness(registry), INTERVAL_STEPS,
                                 PostgresConfig.model_fields["interval_seconds"].default,
                                 plan.scale_scrapes, plan.scale_repeats)
    text = render(pg_results, rd_results, info, plan, command, pg_baseline, rd_baseline,
                  started, extra)
    args.out.write_text(text)
    if args.json:
        raw = {"postgres": [asdict(r) for r in pg_results or []],
               "redis": [asdict(r) for r in rd_results or []], "machine": info,
               "scale": asdict(scale) if scale else None}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(raw, indent=2, default=str))
    print(text)
    misses = [t for t in targets(pg_results, rd_results) if not t.passed]
    print(f"{len(misses)} target(s) missed; report written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
