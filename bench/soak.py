"""Soak benchmark: hours of scrapes compressed into minutes, watching RSS and open FDs.

Not a test: it starts one private PostgreSQL (the watched server plus the reference app's
schema in database `app`) and one private Redis on free loopback ports, runs the postgres,
redis, cron, integrations, business and webvitals exporters side by side with
interval_seconds 1 (so collection rounds pile up as fast as scrapes do), and scrapes each
one's /metrics back to back until --scrapes per exporter or --minutes, whichever comes
first. The webvitals exporter also receives --beacons Web Vitals reports, each from a new
page path, spread over its scrapes. Every --sample-seconds it reads each exporter's VmRSS
and open file descriptors from /proc and finally writes a Markdown report (bench/SOAK.md).

Why it looks the way it does:
* A leak shows as growth per unit of work, so the slope is fitted against scrapes done,
  not time, and only after a warm-up (caches, pools, the dedupe table and interned label
  sets fill first and then must stay put).
* Every 10th scrape asks for `Connection: close`, so connection set-up and teardown are
  exercised too: a descriptor leaked per connection shows in the FD column.
* Background workloads keep the watched servers changing (bench.py's steady queries and
  commands, plus cron runs and webhook events written to the app tables), so the exporters
  see new rows, statements and keys rather than the same snapshot over and over.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import yaml

# devstack/ is not installed (never shipped): run from the checkout.
sys.path.append(str(Path(__file__).resolve().parent.parent))
from bench import (
    REPO,
    ExporterProcess,
    ExporterSpec,
    ProcessRegistry,
    count_samples,
    error_lines,
    redis_workload,
    run_background,
    saasmon_argv,
    seed_redis,
    setup_postgres,
    sigterm_as_interrupt,
)
from devstack.servers import PostgresServer, RedisServer, free_port
from refapp.schema import schema_sql
from saasmon.business.pack import DEFAULT_PACK, load_pack
from saasmon.cron.config import default_jobs

INTERVAL_SECONDS = 1
SCRAPE_TIMEOUT_SECONDS = 10.0
FRESH_CONNECTION_EVERY = 10  # every Nth scrape on a new connection
PROMETHEUS_INTERVAL_SECONDS = 15  # to express scrape counts as hours of one Prometheus
ORIGIN = "https://app.example.com"
METRIC_NAMES = ("LCP", "FCP", "TTFB", "CLS", "INP")
# Tolerance of the "flat" verdict: end against after-warm-up.
RSS_TOLERANCE_MIB = 5.0
RSS_TOLERANCE_RATIO = 0.10
FD_TOLERANCE = 2


@dataclass(frozen=True)
class Sample:
    seconds: float  # since the exporter's scraping started
    scrapes: int
    rss_kib: int
    fds: int

    @property
    def rss_mib(self) -> float:
        return self.rss_kib / 1024


@dataclass
class Soak:
    """One exporter under soak: its process, its counters and its /proc samples."""

    name: str
    proc: ExporterProcess
    scrapes: int = 0
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)
    series_first: int = 0
    series_last: int = 0
    beacons: int = 0
    beacon_statuses: dict[int, int] = field(default_factory=dict)
    started: float = 0.0
    finished: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)  # webvitals: route labels at the end
    exited: int | None = None  # exit code when the exporter died during the run
    log_errors: list[str] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.finished == 0.0

    def sample(self) -> None:
        pid = self.proc.pid
        try:
            rss = proc_status_kib(pid, "VmRSS")
            fds = len(os.listdir(f"/proc/{pid}/fd"))
        except (OSError, KeyError):
            return  # the process is gone: its exit is reported instead
        elapsed = time.monotonic() - self.started if self.started else 0.0
        self.samples.append(Sample(elapsed, self.scrapes, rss, fds))


def proc_status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


# ---------------------------------------------------------------------------
# Servers and exporters


APP_DB = "app"


def setup_app_db(server: PostgresServer) -> str:
    """The reference app's schema in its own database: bench.py's tables live in postgres."""
    server.psql(f"CREATE DATABASE {APP_DB}")
    server.psql(schema_sql(), db=APP_DB)
    return server.dsn.rsplit("/", 1)[0] + f"/{APP_DB}"


@contextlib.asynccontextmanager
async def app_workload(dsn: str) -> AsyncIterator[None]:
    """Cron runs and webhook events arriving, so the table readers always have new rows."""
    jobs = [job.name for job in default_jobs()]

    async def loop() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            rng = random.Random(7)
            while True:
                status = "failed" if rng.random() < 0.1 else "success"
                await conn.execute(
                    "INSERT INTO cron_job_logs(job_name, started_at, completed_at, status) "
                    "VALUES ($1, now() - interval '2 seconds', now(), $2)",
                    rng.choice(jobs), status)
                await conn.execute(
                    "INSERT INTO webhook_events(provider, event_type, status) "
                    "VALUES ($1, 'payment.updated', $2)",
                    rng.choice(("stripe", "twilio", "resend")),
                    "failed" if rng.random() < 0.05 else "processed")
                await asyncio.sleep(0.5)
        finally:
            await conn.close()

    async with run_background(loop):
        yield


def exporter_configs(pg: PostgresServer, app_dsn: str, redis_url: str) -> dict[str, Any]:
    pack = load_pack(DEFAULT_PACK, "business")
    return {
        "postgres": {"dsn": pg.dsn, "interval_seconds": INTERVAL_SECONDS, "top_n": 20},
        "redis": {"targets": [{"name": "main", "url": redis_url}],
                  "interval_seconds": INTERVAL_SECONDS},
        "cron": {"dsn": app_dsn, "interval_seconds": INTERVAL_SECONDS},
        "integrations": {"dsn": app_dsn, "interval_seconds": INTERVAL_SECONDS},
        # Every pack query every second (1 is the floor): hourly scans included.
        "business": {"dsn": app_dsn, "queries": {
            q.name: {"interval_seconds": INTERVAL_SECONDS} for q in pack.queries}},
        "webvitals": {
            "allowed_origins": [ORIGIN],
            "routes": [{"name": "/deals/:id", "glob": "/deals/*"},
                       {"name": "/contacts/:id", "glob": "/contacts/*"}],
            # One loopback client sends everything: the limiter must not be what we measure.
            "rate_limit": {"per_client_rate": 1e6, "per_client_burst": 1_000_000,
                           "global_rate": 1e7, "global_burst": 10_000_000},
        },
    }


def specs(configs: dict[str, Any], tmp: Path) -> list[ExporterSpec]:
    out = []
    for kind, config in configs.items():
        path = tmp / f"soak-{kind}.yml"
        path.write_text(yaml.safe_dump(config))
        port = free_port()
        out.append(ExporterSpec(
            name=kind, ours=True,
            argv=[*saasmon_argv(), kind, "--config.file", str(path),
                  "--web.listen-address", f"127.0.0.1:{port}"],
            env={}, port=port))
    return out


async def wait_collected(session: aiohttp.ClientSession, spec: ExporterSpec,
                         timeout: float = 60.0) -> None:
    """Until /-/ready: the first collection round is done, so start-up is not the baseline."""
    url = f"http://127.0.0.1:{spec.port}/-/ready"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.get(url) as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{spec.name} not ready within {timeout:.0f}s")


# ---------------------------------------------------------------------------
# Load


def beacon_body(n: int) -> bytes:
    """A web-vitals report from a page path no earlier beacon used (ids are new too)."""
    name = METRIC_NAMES[n % len(METRIC_NAMES)]
    value = (n % 50) / 100 if name == "CLS" else 100.0 + (n * 37) % 5000
    # Two thirds hit a route rule, the rest fall to `other`: label sets must stay bounded.
    path = (f"/deals/{n}", f"/contacts/{n}", f"/soak/unrouted/{n}")[n % 3]
    return (f'{{"name":"{name}","value":{value},"id":"v4-soak-{n}",'
            f'"route":"{path}?q={n}"}}').encode()


async def post_beacon(session: aiohttp.ClientSession, soak: Soak) -> None:
    url = f"http://127.0.0.1:{soak.proc.spec.port}/beacon"
    headers = {"Origin": ORIGIN, "Content-Type": "text/plain;charset=UTF-8"}
    try:
        async with session.post(url, data=beacon_body(soak.beacons), headers=headers) as resp:
            await resp.read()
            status = resp.status
    except (aiohttp.ClientError, TimeoutError):
        status = 0
    soak.beacons += 1
    soak.beacon_statuses[status] = soak.beacon_statuses.get(status, 0) + 1


async def scrape_loop(session: aiohttp.ClientSession, soak: Soak, limit: int, deadline: float,
                      beacons: int) -> None:
    """Back to back until `limit` attempts or the deadline; beacons spread over the attempts."""
    url = soak.proc.spec.url
    soak.started = time.monotonic()
    attempt = 0
    while attempt < limit and time.monotonic() < deadline:
        while soak.beacons < beacons * (attempt + 1) // limit:
            await post_beacon(session, soak)
        attempt += 1
        close = {"Connection": "close"} if attempt % FRESH_CONNECTION_EVERY == 0 else {}
        try:
            async with session.get(url, headers=close) as resp:
                body = await resp.text()
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}: {body[:120]!r}")
        except (aiohttp.ClientError, TimeoutError, RuntimeError) as exc:
            soak.errors += 1
            if len(soak.error_examples) < 3:
                soak.error_examples.append(f"{type(exc).__name__}: {exc}"[:200])
            if soak.proc.proc is not None and soak.proc.proc.poll() is not None:
                soak.exited = soak.proc.proc.returncode
                break
            continue
        soak.scrapes += 1
        soak.series_last = count_samples(body)
        if soak.scrapes == 1:
            soak.series_first = soak.series_last
    if beacons and soak.scrapes:
        soak.routes = sorted(set(re.findall(r'route="([^"]*)"', body)))
    soak.sample()  # the end point, taken while the process is still up
    soak.finished = time.monotonic()


async def sampler(soaks: Sequence[Soak], every: float) -> None:
    while True:
        await asyncio.sleep(every)
        for soak in soaks:
            if soak.running:
                soak.sample()


Workload = contextlib.AbstractAsyncContextManager[None]


async def soak_all(registry: ProcessRegistry, exporter_specs: list[ExporterSpec],
                   args: argparse.Namespace, workloads: Sequence[Workload]) -> list[Soak]:
    timeout = aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT_SECONDS)
    async with contextlib.AsyncExitStack() as stack:
        for workload in workloads:
            await stack.enter_async_context(workload)
        procs = [await stack.enter_async_context(registry.running(spec))
                 for spec in exporter_specs]
        soaks = [Soak(proc.spec.name, proc) for proc in procs]
        # One session (connection pool) per exporter, as each Prometheus target has.
        sessions = [await stack.enter_async_context(aiohttp.ClientSession(timeout=timeout))
                    for _ in soaks]
        for session, proc in zip(sessions, procs, strict=True):
            await wait_collected(session, proc.spec)
        for soak in soaks:
            soak.sample()  # the start point: ready, not yet scraped
        deadline = time.monotonic() + args.minutes * 60
        print(f"soaking {len(soaks)} exporters: up to {args.scrapes} scrapes each or "
              f"{args.minutes:g} min", flush=True)
        async with run_background(lambda: sampler(soaks, args.sample_seconds)):
            await asyncio.gather(*(
                scrape_loop(session, soak, args.scrapes, deadline,
                            args.beacons if soak.name == "webvitals" else 0)
                for session, soak in zip(sessions, soaks, strict=True)))
    # Leaving the stack stopped the exporters: their logs are complete now.
    for soak in soaks:
        soak.log_errors = error_lines(soak.proc.log_path)
    return soaks


# ---------------------------------------------------------------------------
# Analysis


def warmup_sample(soak: Soak, fraction: float) -> Sample | None:
    """The first sample at or past `fraction` of the scrapes this exporter did."""
    target = soak.scrapes * fraction
    return next((s for s in soak.samples if s.scrapes >= target and s.scrapes > 0), None)


def slope_mib_per_1000(samples: Sequence[Sample]) -> float:
    """Least-squares RSS growth per 1000 scrapes; NaN when there is nothing to fit."""
    xs = [s.scrapes / 1000 for s in samples]
    ys = [s.rss_mib for s in samples]
    if len(xs) < 3:
        return float("nan")
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return float("nan")
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


@dataclass(frozen=True)
class Verdict:
    start: Sample
    warm: Sample
    end: Sample
    max_rss_mib: float
    max_fds: int
    slope: float
    rss_ok: bool
    fd_ok: bool

    @property
    def flat(self) -> bool:
        return self.rss_ok and self.fd_ok


def judge(soak: Soak, fraction: float) -> Verdict | None:
    warm = warmup_sample(soak, fraction)
    if not soak.samples or warm is None:
        return None
    start, end = soak.samples[0], soak.samples[-1]
    growth = end.rss_mib - warm.rss_mib
    after = [s for s in soak.samples if s.scrapes >= warm.scrapes]
    return Verdict(
        start=start, warm=warm, end=end,
        max_rss_mib=max(s.rss_mib for s in soak.samples),
        max_fds=max(s.fds for s in soak.samples),
        slope=slope_mib_per_1000(after),
        rss_ok=growth < RSS_TOLERANCE_MIB or growth < RSS_TOLERANCE_RATIO * warm.rss_mib,
        fd_ok=abs(end.fds - warm.fds) <= FD_TOLERANCE,
    )


# ---------------------------------------------------------------------------
# Report


def fmt(value: float, digits: int = 1) -> str:
    return "n/a" if value != value else f"{value:.{digits}f}"  # NaN check without math


def trace(soak: Soak, points: int = 6) -> str:
    """RSS at evenly spaced samples: enough to see a ramp without a table per exporter."""
    if not soak.samples:
        return "no samples"
    step = max(1, (len(soak.samples) - 1) // (points - 1))
    picked = soak.samples[::step]
    if picked[-1] is not soak.samples[-1]:
        picked.append(soak.samples[-1])
    return ", ".join(f"{s.scrapes}: {s.rss_mib:.1f}/{s.fds}" for s in picked)


def git_rev() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()


def render(soaks: list[Soak], args: argparse.Namespace, command: str, started: dt.datetime,
           pg_version: str) -> str:
    out = [
        "# saasmon soak benchmark",
        "",
        f"Generated {started:%Y-%m-%d %H:%M UTC} by `bench/soak.py` (saasmon git {git_rev()}). "
        "Reproduce with:",
        "",
        "```sh",
        command,
        "```",
        "",
        "## Machine",
        "",
        f"- nproc `{os.cpu_count()}`, kernel `{platform.release()}`, python "
        f"`{platform.python_version()}`, PostgreSQL `{pg_version}`",
        f"- loadavg at end: `{' '.join(Path('/proc/loadavg').read_text().split()[:3])}`",
        "",
        "## Method",
        "",
        "- One private PostgreSQL (bench.py's seeded tables and steady queries in `postgres`, the "
        "reference app schema in `app` with a cron run and a webhook event written every 0.5 s) "
        "and one private Redis with bench.py's steady commands, all on loopback.",
        f"- Six exporters run side by side with `interval_seconds: {INTERVAL_SECONDS}` (business: "
        "every pack query every second), so collection rounds pile up too. Each is scraped back "
        f"to back by its own client until {args.scrapes} scrapes or {args.minutes:g} minutes, "
        f"whichever first; every {FRESH_CONNECTION_EVERY}th scrape on a new connection.",
        f"- webvitals also receives up to {args.beacons} beacons spread over its scrapes, one "
        "report each, every one from a page path no other beacon used (two thirds match a "
        "route rule, the rest fall to `other`) and with a new id.",
        f"- Every {args.sample_seconds:g} s: VmRSS from /proc/PID/status and the number of "
        "entries in /proc/PID/fd of each exporter. *start* = ready (first collection round "
        f"done), before any scrape; *warm-up* = the first sample past {args.warmup:.0%} of the "
        "exporter's scrapes; *end* = after its last scrape.",
        "- Slope: least squares of RSS (MiB) against scrapes (thousands) over the samples from "
        f"warm-up on. Verdict **flat** when RSS grew less than {RSS_TOLERANCE_MIB:g} MiB or "
        f"{RSS_TOLERANCE_RATIO:.0%} from warm-up to end and FDs stayed within "
        f"±{FD_TOLERANCE}; otherwise **GROWS**.",
        f"- Hours equivalent: scrapes x {PROMETHEUS_INTERVAL_SECONDS} s, one Prometheus at the "
        "usual interval. The machine's two cores are saturated throughout: absolute timings "
        "here say nothing; see bench/RESULTS.md for latency.",
        "",
        "## Results",
        "",
        "| exporter | scrapes (failed) | ~hours @15 s | seconds | series first / last "
        "| RSS MiB start / warm-up / end / max | slope MiB per 1000 scrapes "
        "| FDs start / warm-up / end / max | verdict |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for soak in soaks:
        verdict = judge(soak, args.warmup)
        seconds = (soak.finished - soak.started) if soak.finished else 0.0
        hours = soak.scrapes * PROMETHEUS_INTERVAL_SECONDS / 3600
        head = (f"| {soak.name} | {soak.scrapes} ({soak.errors}) | {hours:.1f} | {seconds:.0f} "
                f"| {soak.series_first} / {soak.series_last} ")
        if verdict is None:
            out.append(head + "| no samples | n/a | n/a | **n/a** |")
            continue
        v = verdict
        word = "flat" if v.flat else "**GROWS**" + ("" if v.rss_ok else " (RSS)") + (
            "" if v.fd_ok else " (FDs)")
        out.append(
            head + f"| {v.start.rss_mib:.1f} / {v.warm.rss_mib:.1f} / {v.end.rss_mib:.1f} / "
            f"{v.max_rss_mib:.1f} | {fmt(v.slope, 3)} | {v.start.fds} / {v.warm.fds} / "
            f"{v.end.fds} / {v.max_fds} | {word} |")
    out += ["", "RSS MiB / FDs along the run (scrapes: RSS/FDs):", ""]
    out += [f"- {soak.name}: {trace(soak)}" for soak in soaks]
    web = next((s for s in soaks if s.name == "webvitals"), None)
    if web is not None:
        statuses = ", ".join(f"{code or 'error'}: {n}"
                             for code, n in sorted(web.beacon_statuses.items()))
        routes = ", ".join(f"`{r}`" for r in web.routes) or "none"
        out += ["", f"Beacons posted to webvitals: {web.beacons} ({statuses}), each from a new "
                f"page path; route labels at the end: {routes}. Series per scrape went from "
                f"{web.series_first} (no beacon yet) to {web.series_last}."]
    problems = [(s.name, s.error_examples, s.exited, s.log_errors) for s in soaks
                if s.error_examples or s.exited is not None or s.log_errors]
    if problems:
        out += ["", "## Errors", ""]
        for name, examples, exited, logs in problems:
            if exited is not None:
                out.append(f"- {name}: exited with code {exited} during the run")
            out += [f"- {name} scrape: `{e}`" for e in examples]
            out += [f"- {name} log: `{line[:300]}`" for line in logs]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "SOAK.md")
    parser.add_argument("--scrapes", type=int, default=5000, help="scrapes per exporter")
    parser.add_argument("--minutes", type=float, default=10.0, help="stop after this long")
    parser.add_argument("--beacons", type=int, default=5000,
                        help="beacons to webvitals (past 4096 paths its route cache starts over)")
    parser.add_argument("--sample-seconds", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.2,
                        help="fraction of each exporter's scrapes counted as warm-up")
    parser.add_argument("--keep-tmp", action="store_true", help="keep server data and logs")
    args = parser.parse_args(argv)
    if args.scrapes < 1 or args.minutes <= 0 or not 0 <= args.warmup < 1:
        parser.error("--scrapes >= 1, --minutes > 0 and 0 <= --warmup < 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    command = ".venv/bin/python bench/soak.py " + " ".join(sys.argv[1:] if argv is None else argv)
    tmp = Path(tempfile.mkdtemp(prefix="saasmon-soak-"))
    tmp.chmod(0o755)  # initdb runs as user postgres when we are root
    registry = ProcessRegistry(tmp)
    pg, rd = PostgresServer(tmp / "pg"), RedisServer(tmp / "redis")
    try:
        with sigterm_as_interrupt():
            setup_postgres(pg)
            app_dsn = setup_app_db(pg)
            rd.start()
            asyncio.run(seed_redis(rd.url))
            exporter_specs = specs(exporter_configs(pg, app_dsn, rd.url), tmp)
            # No bench.pg_workload: under a saturated CPU its connection close hung at the
            # end of a 6-minute run; the app workload keeps PostgreSQL's stats moving.
            workloads = [redis_workload(rd.url), app_workload(app_dsn)]
            soaks = asyncio.run(soak_all(registry, exporter_specs, args, workloads))
            pg_version = pg.psql("SHOW server_version")
    except KeyboardInterrupt:
        print("interrupted: stopping everything", file=sys.stderr)
        return 130
    finally:
        registry.stop_all()
        pg.stop()
        rd.stop()
        if args.keep_tmp:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report = render(soaks, args, command, started, pg_version)
    args.out.write_text(report)
    print(report)
    growing = [s.name for s in soaks if not ((v := judge(s, args.warmup)) and v.flat)]
    print(f"not flat: {', '.join(growing) or 'none'}; report written to {args.out}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
