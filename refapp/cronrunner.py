"""`python -m refapp.cronrunner`: run the reference app's cron jobs, logging to cron_job_logs.

Each run inserts a `running` row, does its (small, real) work against the database and
then updates that same row in place with `completed_at` and `success` or `failed` plus
`error_message` — the table and columns of dirt-free-crm § Cron Job Monitoring.

The schedule runs on a simulated clock: `--start` sets where it begins (default: now) and
`--speed` how many simulated seconds pass per real second, so a demo sees an hour of
`*/15` runs in a minute at --speed 60. Rows always carry real timestamps (the database's
now()). `--backfill-hours` first writes the completed runs the real schedule would have
made in the last hours, so a cron exporter has a history at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from cronsim import CronSim, CronSimError

from refapp.app import migrate
from refapp.cli import OneLineParser
from saasmon.runtime.logs import SecretRegistry, log_fields, setup_logging

log = logging.getLogger("refapp.cron")

# dirt-free-crm § Cron Job Monitoring: the five jobs the guide's checklist names, with
# their schedules (the guide has 18 in all; the rest are not listed there).
DEFAULT_JOBS: dict[str, str] = {
    "process-opportunity-offers": "0 8 * * *",
    "process-promotion-deliveries": "*/30 * * * *",
    "send-review-requests": "0 */6 * * *",
    "check-system-health": "*/15 * * * *",
    "generate-scheduled-reports": "0 6 * * *",
}
MAX_ERROR_MESSAGE = 200
STOP_GRACE_SECONDS = 10.0


class JobFailed(Exception):
    """A job's own failure, written to error_message."""


@dataclass
class Settings:
    dsn: str
    jobs: dict[str, str]
    start: datetime
    speed: float = 1.0
    run_for: float | None = None  # real seconds; None: until SIGTERM/SIGINT
    work_seconds: float = 0.2
    fail_jobs: set[str] = field(default_factory=set)
    slow_jobs: set[str] = field(default_factory=set)
    slow_seconds: float = 5.0
    faults_url: str | None = None
    faults_token: str | None = None
    app_url: str | None = None
    heartbeat_url: str | None = None
    backfill_hours: float = 0.0
    seed: int = 1
    migrate: bool = False


class SimClock:
    """Simulated time: `start` at creation, advancing `speed` times faster than real time."""

    def __init__(self, start: datetime, speed: float,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.start, self.speed, self._monotonic = start, speed, monotonic
        self._t0 = monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(self._monotonic() - self._t0) * self.speed)

    def real_seconds_until(self, when: datetime) -> float:
        return max(0.0, (when - self.now()).total_seconds() / self.speed)


def firings(jobs: dict[str, str], after: datetime, until: datetime) -> list[tuple[datetime, str]]:
    """Every (time, job) in (after, until], in time order then job order."""
    out: list[tuple[datetime, str]] = []
    for name, schedule in jobs.items():
        for when in CronSim(schedule, after):
            if when > until:
                break
            out.append((when, name))
    return sorted(out)


def http_get_json(url: str, token: str | None = None, timeout: float = 2.0) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                timeout=timeout) as response:
        return json.loads(response.read())


class Runner:
    def __init__(self, settings: Settings, pool: asyncpg.Pool) -> None:
        self.s = settings
        self.pool = pool
        self.rng = random.Random(settings.seed)
        self.running: set[asyncio.Task[None]] = set()
        self._warned: set[str] = set()
        self.bodies: dict[str, Callable[[], Awaitable[None]]] = {
            "process-opportunity-offers": self._opportunity_offers,
            "process-promotion-deliveries": self._promotion_deliveries,
            "send-review-requests": self._review_requests,
            "check-system-health": self._system_health,
            "generate-scheduled-reports": self._scheduled_reports,
        }

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message)

    # -- the jobs' work: small real queries against the reference schema ---------------
    async def _opportunity_offers(self) -> None:
        await self.pool.fetchval("SELECT count(*) FROM smart_matches WHERE accepted AND "
                                 "created_at > now() - interval '1 day'")

    async def _promotion_deliveries(self) -> None:
        await self.pool.execute("UPDATE message_deliveries SET status = 'sent' "
                                "WHERE status = 'queued'")

    async def _review_requests(self) -> None:
        await self.pool.fetchval("SELECT count(*) FROM customers WHERE "
                                 "created_at > now() - interval '6 hours'")

    async def _system_health(self) -> None:
        if self.s.app_url is None:
            await self.pool.fetchval("SELECT 1")
            return
        url = self.s.app_url.rstrip("/") + "/health"
        try:
            body = await asyncio.to_thread(http_get_json, url)
        except urllib.error.HTTPError as exc:
            raise JobFailed(f"app health answered HTTP {exc.code}") from None
        except (OSError, ValueError) as exc:
            raise JobFailed(f"app health unreachable: {type(exc).__name__}") from None
        if body.get("status") == "unhealthy":
            raise JobFailed("app reports unhealthy")

    async def _scheduled_reports(self) -> None:
        await self.pool.fetchrow("SELECT count(*), coalesce(sum(amount_sar), 0) FROM payments "
                                 "WHERE created_at > now() - interval '1 day'")

    async def _default_body(self) -> None:
        await self.pool.fetchval("SELECT 1")

    # -- faults ----------------------------------------------------------------------
    async def faults(self) -> tuple[set[str], set[str], float]:
        """Failing and slow jobs: the flags plus, with --faults-url, the app's live knobs."""
        fail, slow, slow_seconds = set(self.s.fail_jobs), set(self.s.slow_jobs), self.s.slow_seconds
        if self.s.faults_url:
            try:
                knobs = await asyncio.to_thread(http_get_json, self.s.faults_url,
                                                self.s.faults_token)
            except (OSError, ValueError) as exc:
                self._warn_once("faults", f"faults URL unreadable, using flags only: "
                                f"{type(exc).__name__}")
            else:
                if knobs.get("failing_cron_job"):
                    fail.add(str(knobs["failing_cron_job"]))
                if knobs.get("slow_cron_job"):
                    slow.add(str(knobs["slow_cron_job"]))
                    slow_seconds = float(knobs.get("slow_cron_seconds") or slow_seconds)
        return fail, slow, slow_seconds

    # -- one run ---------------------------------------------------------------------
    async def run_job(self, name: str) -> None:
        fail, slow, slow_seconds = await self.faults()
        try:
            row_id = await self.pool.fetchval(
                "INSERT INTO cron_job_logs (job_name, status) VALUES ($1, 'running') "
                "RETURNING id", name)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            log.error("job not started: database unavailable",
                      extra=log_fields(job=name, error=type(exc).__name__))
            return
        status, error = "success", None
        try:
            await self.bodies.get(name, self._default_body)()
            await asyncio.sleep(self.s.work_seconds)
            if name in slow:
                await asyncio.sleep(slow_seconds)
            if name in fail:
                raise JobFailed("injected failure (failing job knob)")
        except asyncio.CancelledError:
            status, error = "failed", "interrupted: runner stopped"
        except JobFailed as exc:
            status, error = "failed", str(exc)
        except Exception as exc:
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        error = SecretRegistry.mask(error)[:MAX_ERROR_MESSAGE] if error else None
        await self._finish(row_id, name, status, error)
        if status == "success":
            await self._heartbeat(name)

    async def _finish(self, row_id: int, name: str, status: str, error: str | None) -> None:
        # Shielded: a stop must not leave a row 'running' forever once the job has ended.
        try:
            await asyncio.shield(self.pool.execute(
                "UPDATE cron_job_logs SET completed_at = now(), status = $2, "
                "error_message = $3 WHERE id = $1", row_id, status, error))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            log.error("job result not written: database unavailable",
                      extra=log_fields(job=name, error=type(exc).__name__))
            return
        log.info("job finished", extra=log_fields(job=name, status=status, id=row_id,
                                                  error=error or ""))

    async def _heartbeat(self, name: str) -> None:
        if not self.s.heartbeat_url:
            return
        url = self.s.heartbeat_url.replace("{job}", name)
        try:
            await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=2).close())
        except OSError as exc:
            self._warn_once(f"heartbeat:{name}", f"heartbeat to {name} failed: "
                            f"{type(exc).__name__}")

    def start_job(self, name: str) -> None:
        task = asyncio.create_task(self.run_job(name))
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    # -- history ---------------------------------------------------------------------
    async def backfill(self, hours: float) -> int:
        """Completed rows for the real schedule's firings in the last `hours`."""
        now = datetime.now(UTC)
        rows = []
        for when, name in firings(self.s.jobs, now - timedelta(hours=hours), now):
            duration = timedelta(seconds=self.rng.uniform(0.5, 3.0))
            if name in self.s.slow_jobs:
                duration += timedelta(seconds=self.s.slow_seconds)
            failed = name in self.s.fail_jobs
            rows.append((name, when, when + duration, "failed" if failed else "success",
                         "injected failure (failing job knob)" if failed else None))
        await self.pool.executemany(
            "INSERT INTO cron_job_logs (job_name, started_at, completed_at, status, "
            "error_message) VALUES ($1, $2, $3, $4, $5)", rows)
        return len(rows)

    # -- the loop --------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        clock = SimClock(self.s.start, self.s.speed)
        horizon = (None if self.s.run_for is None
                   else self.s.start + timedelta(seconds=self.s.run_for * self.s.speed))
        after = self.s.start
        while not stop.is_set():
            # One simulated hour ahead at a time keeps the list short for any speed.
            until = after + timedelta(hours=1)
            if horizon is not None:
                until = min(until, horizon)
            due = firings(self.s.jobs, after, until)
            for when, name in due:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), clock.real_seconds_until(when))
                if stop.is_set():
                    break
                log.debug("firing", extra=log_fields(job=name, simulated=when.isoformat()))
                self.start_job(name)
            after = until
            if horizon is not None and after >= horizon:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), clock.real_seconds_until(horizon))
                break
        await self.drain()

    async def drain(self) -> None:
        if not self.running:
            return
        _, pending = await asyncio.wait(set(self.running), timeout=STOP_GRACE_SECONDS)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)


async def amain(settings: Settings) -> int:
    if settings.migrate:
        await migrate(settings.dsn)  # the app's: waits for the database, advisory-locked
    pool = await asyncpg.create_pool(settings.dsn, min_size=0, max_size=5, timeout=5,
                                     command_timeout=30)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = Runner(settings, pool)
    try:
        if settings.backfill_hours > 0:
            written = await runner.backfill(settings.backfill_hours)
            log.info("backfilled history", extra=log_fields(rows=written,
                                                            hours=settings.backfill_hours))
        log.info("cron runner started", extra=log_fields(
            jobs=",".join(settings.jobs), speed=settings.speed,
            start=settings.start.isoformat()))
        await runner.run(stop)
    finally:
        await asyncio.wait_for(pool.close(), 10)
    return 0



def parser() -> OneLineParser:
    env = os.environ.get
    p = OneLineParser(prog="refapp.cronrunner",
                      description="Run the reference app's cron jobs into cron_job_logs.")
    p.add_argument("--dsn", default=env("REFAPP_DSN") or env("DATABASE_URL"),
                   help="PostgreSQL DSN (env REFAPP_DSN or DATABASE_URL)")
    p.add_argument("--migrate", action="store_true", help="apply the reference schema first")
    p.add_argument("--job", action="append", default=[], metavar="NAME=SCHEDULE",
                   help="add a job or change a default one's schedule (repeatable)")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="run only these jobs (repeatable; default: all)")
    p.add_argument("--speed", type=float, default=1.0,
                   help="simulated seconds per real second (default 1: real time)")
    p.add_argument("--start", default=None, metavar="ISO8601",
                   help="simulated clock start, e.g. 2024-01-01T07:59:00Z (default: now, UTC)")
    p.add_argument("--run-for", type=float, default=None, metavar="SECONDS",
                   help="stop after this many real seconds (default: until SIGTERM)")
    p.add_argument("--work-seconds", type=float, default=0.2,
                   help="real seconds each run takes beyond its queries (default 0.2)")
    p.add_argument("--fail-job", action="append", default=[], metavar="NAME",
                   help="make this job fail every run (repeatable)")
    p.add_argument("--slow-job", action="append", default=[], metavar="NAME",
                   help="make this job run --slow-seconds longer (repeatable)")
    p.add_argument("--slow-seconds", type=float, default=5.0)
    p.add_argument("--faults-url", default=None, metavar="URL",
                   help="the app's /-/faults: failing_cron_job/slow_cron_job read per run")
    p.add_argument("--faults-token", default=env("REFAPP_FAULTS_TOKEN"))
    p.add_argument("--app-url", default=None, metavar="URL",
                   help="check-system-health GETs URL/health (default: SELECT 1)")
    p.add_argument("--heartbeat-url", default=None, metavar="TEMPLATE",
                   help="GET after each successful run; {job} is replaced by the job name")
    p.add_argument("--backfill-hours", type=float, default=0.0,
                   help="first write the last H hours of runs of the real schedule")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--log-level", choices=["debug", "info", "warn", "error"], default="info")
    return p


def settings_from(argv: list[str] | None) -> Settings:
    p = parser()
    a = p.parse_args(argv)
    if not a.dsn:
        p.error("--dsn: required (or set REFAPP_DSN)")
    jobs = dict(DEFAULT_JOBS)
    for spec in a.job:
        name, sep, schedule = spec.partition("=")
        if not sep or not name.strip():
            p.error(f"--job: must be NAME=SCHEDULE, got {spec!r}")
        jobs[name.strip()] = schedule.strip()
    for name, schedule in jobs.items():
        try:
            CronSim(schedule, datetime.now(UTC))
        except CronSimError as exc:
            p.error(f"--job: {name}: bad schedule {schedule!r}: {exc}")
    for flag, names in (("--only", a.only), ("--fail-job", a.fail_job),
                        ("--slow-job", a.slow_job)):
        unknown = [n for n in names if n not in jobs]
        if unknown:
            p.error(f"{flag}: unknown job {unknown[0]!r} (known: {', '.join(jobs)})")
    if a.only:
        jobs = {n: s for n, s in jobs.items() if n in a.only}
    if not 0 < a.speed <= 1_000_000:
        p.error(f"--speed: must be > 0 and at most 1000000, got {a.speed:g}")
    for flag, value in (("--run-for", a.run_for), ("--work-seconds", a.work_seconds),
                        ("--slow-seconds", a.slow_seconds),
                        ("--backfill-hours", a.backfill_hours)):
        if value is not None and value < 0:
            p.error(f"{flag}: must not be negative, got {value:g}")
    start = datetime.now(UTC)
    if a.start:
        try:
            start = datetime.fromisoformat(a.start.replace("Z", "+00:00"))
        except ValueError:
            p.error(f"--start: not an ISO 8601 time: {a.start!r}")
        start = start.replace(tzinfo=UTC) if start.tzinfo is None else start.astimezone(UTC)
    SecretRegistry.add(a.dsn, a.faults_token)
    setup_logging("cronrunner", a.log_level)
    return Settings(dsn=a.dsn, jobs=jobs, start=start, speed=a.speed, run_for=a.run_for,
                    work_seconds=a.work_seconds, fail_jobs=set(a.fail_job),
                    slow_jobs=set(a.slow_job), slow_seconds=a.slow_seconds,
                    faults_url=a.faults_url, faults_token=a.faults_token, app_url=a.app_url,
                    heartbeat_url=a.heartbeat_url, backfill_hours=a.backfill_hours,
                    seed=a.seed, migrate=a.migrate)


def main(argv: list[str] | None = None) -> int:
    settings = settings_from(argv)
    try:
        return asyncio.run(amain(settings))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        log.error("cron runner stopped: %s",
                  SecretRegistry.mask(f"{type(exc).__name__}: {exc}"))
        return 1


if __name__ == "__main__":
    sys.exit(main())
