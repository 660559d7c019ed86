"""The cron exporter as the runtime sees it: registry, table collector, heartbeat routes.

Per-job series are built on every scrape (they depend on the clock: missed, slow, next
expected run) from state the table collector and the heartbeat requests keep in memory.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp import web
from prometheus_client.core import Metric

from saasmon.cron.collectors import TableCollector
from saasmon.cron.config import CronConfig, Job
from saasmon.cron.heartbeat import HeartbeatHandler, HeartbeatStore
from saasmon.cron.schedule import Schedule
from saasmon.cron.state import FINISHED, JobState
from saasmon.runtime.collector import Collector
from saasmon.runtime.exporter import ExporterKind, Instance, Route
from saasmon.runtime.families import counter, gauge
from saasmon.runtime.pgpool import ReadOnlyPool, collector_pool

LABEL = "cron_job"  # not "job": Prometheus would rename it to exported_job


class CronInstance(Instance):
    def __init__(self, config: CronConfig, heartbeats: HeartbeatStore) -> None:
        self.config = config
        self.schedules = {j.name: Schedule(j.schedule, j.timezone) for j in config.jobs}
        self.heartbeats = heartbeats
        heartbeats.configure([j.name for j in config.jobs_from("heartbeat")], config.state_file)
        self.pings = HeartbeatHandler(
            heartbeats, [j.name for j in config.jobs_from("heartbeat")],
            [j.name for j in config.jobs_from("table")], config.token_value)
        self.pool: ReadOnlyPool | None = None
        self.table: TableCollector | None = None
        self.collectors: list[Collector] = []
        schedule = config.schedule(TableCollector.name)
        if config.dsn_value and schedule is not None:
            self.pool = collector_pool(
                config.required_dsn, "saasmon_cron_exporter", max_size=config.pool_max_size,
                timeout=schedule.timeout, interval=config.interval_seconds)
            self.table = TableCollector(config, self.pool, schedule)
            self.collectors.append(self.table)

    # -- heartbeat routes ----------------------------------------------------------
    async def ping_success(self, request: web.Request) -> web.Response:
        return await self.pings.handle(request, "success")

    async def ping_start(self, request: web.Request) -> web.Response:
        return await self.pings.handle(request, "start")

    async def ping_fail(self, request: web.Request) -> web.Response:
        return await self.pings.handle(request, "failed")

    # -- metrics -------------------------------------------------------------------
    def state_of(self, job: Job) -> JobState | None:
        """The job's current state, or None while its source cannot vouch for it (the
        table not read yet or its last round failed: stale values would look live)."""
        if job.source == "heartbeat":
            return self.heartbeats.states.get(job.name)
        if self.table is None or not self.table.healthy:
            return None
        return self.table.states.get(job.name)

    def families(self) -> Iterable[Metric]:
        now = time.time()
        jobs = self.config.jobs
        yield gauge("cron_jobs_registered", "Jobs in the registry.", len(jobs))
        if self.config.expected_jobs is not None:
            yield gauge("cron_jobs_expected", "Jobs the registry should hold (expected_jobs).",
                        self.config.expected_jobs)
        yield gauge("cron_job_info", "A registered job; 1. Join on cron_job for severity.",
                    labels=(LABEL, "schedule", "timezone", "severity", "source"),
                    rows=[((j.name, j.schedule, j.timezone, j.severity, j.source or ""), 1)
                          for j in jobs])
        yield gauge("cron_job_max_runtime_seconds", "Configured longest acceptable run.",
                    labels=(LABEL,), rows=[((j.name,), j.max_runtime_seconds) for j in jobs])
        yield gauge("cron_job_grace_seconds",
                    "Configured delay after a scheduled time before the run counts as missed.",
                    labels=(LABEL,), rows=[((j.name,), j.grace_seconds) for j in jobs])
        yield from self._schedule_families(now)
        yield from self._state_families(now)
        yield counter("cron_heartbeat_rejected", "Heartbeat requests refused, by reason.",
                      labels=("reason",),
                      rows=[((r,), n) for r, n in self.heartbeats.rejected.items()])

    def _schedule_families(self, now: float) -> Iterable[Metric]:
        upcoming, latest = [], []
        for name, schedule in self.schedules.items():
            if (at := schedule.next_after(now)) is not None:
                upcoming.append(((name,), at))
            if (at := schedule.latest_at_or_before(now)) is not None:
                latest.append(((name,), at))
        yield gauge("cron_job_next_expected_run_timestamp_seconds",
                    "Next scheduled time, from the cron expression in the job's time zone.",
                    labels=(LABEL,), rows=upcoming)
        yield gauge("cron_job_last_expected_run_timestamp_seconds",
                    "Latest scheduled time at or before now.", labels=(LABEL,), rows=latest)

    def _state_families(self, now: float) -> Iterable[Metric]:
        known = [(j, s) for j in self.config.jobs if (s := self.state_of(j)) is not None]

        def times(pick: str) -> list[tuple[tuple[str], float]]:
            return [((j.name,), v) for j, s in known if (v := getattr(s, pick)) is not None]

        yield gauge("cron_job_last_start_timestamp_seconds", "Start of the latest run.",
                    labels=(LABEL,), rows=times("last_start"))
        yield gauge("cron_job_last_success_timestamp_seconds",
                    "End of the latest successful run.", labels=(LABEL,),
                    rows=times("last_success"))
        yield gauge("cron_job_last_failure_timestamp_seconds", "End of the latest failed run.",
                    labels=(LABEL,), rows=times("last_failure"))
        yield gauge("cron_job_last_duration_seconds",
                    "Duration of the most recently finished run.", labels=(LABEL,),
                    rows=times("last_duration"))
        yield counter("cron_job_runs", "Runs that ended while the exporter watched, by status.",
                      labels=(LABEL, "status"),
                      rows=[((j.name, st), s.runs[st]) for j, s in known for st in FINISHED])
        yield gauge("cron_job_running", "1 while the latest run has started and not ended.",
                    labels=(LABEL,),
                    rows=[((j.name,), int(s.running_since() is not None)) for j, s in known])
        yield gauge("cron_job_consecutive_failures", "Failed runs since the last success.",
                    labels=(LABEL,), rows=[((j.name,), s.consecutive_failures) for j, s in known])
        yield gauge("cron_job_missed",
                    "1 when the latest scheduled time plus grace has passed with no run "
                    "started since.", labels=(LABEL,),
                    rows=[((j.name,), int(s.missed(self.schedules[j.name], j.grace_seconds,
                                                   now))) for j, s in known])
        yield gauge("cron_job_failed", "1 when the most recently finished run failed.",
                    labels=(LABEL,),
                    rows=[((j.name,), int(s.last_status == "failed")) for j, s in known])
        yield gauge("cron_job_slow",
                    "1 when the running run or the last finished one exceeds max runtime.",
                    labels=(LABEL,),
                    rows=[((j.name,), int(s.slow(j.max_runtime_seconds, now))) for j, s in known])

    async def close(self) -> None:
        # The heartbeat store outlives this instance (reloads); only persist it.
        self.heartbeats.close()
        if self.pool is not None:
            await self.pool.close()


def _ping_routes() -> tuple[Route, ...]:
    # Public: a cron job cannot do the exporter's basic auth; heartbeat_token guards them.
    paths = (("/ping/{job}", "ping_success"), ("/ping/{job}/start", "ping_start"),
             ("/ping/{job}/fail", "ping_fail"))
    return tuple(Route(method, path, handler, public=True)
                 for path, handler in paths for method in ("GET", "POST"))


class CronExporter(ExporterKind[CronConfig]):
    name = "cron"
    namespace = "cron"
    default_address = ":9632"
    config_model = CronConfig
    routes = _ping_routes()

    def __init__(self) -> None:
        self.heartbeats = HeartbeatStore()

    def secrets(self, config: CronConfig) -> list[str]:
        return config.secrets()

    def build(self, config: CronConfig) -> CronInstance:
        return CronInstance(config, self.heartbeats)

    def summary(self, config: CronConfig) -> str:
        table, beats = len(config.jobs_from("table")), len(config.jobs_from("heartbeat"))
        where = "no table source"
        if config.dsn_value:
            url = urlsplit(config.dsn_value)
            where = f"table {config.table} at {url.hostname}:{url.port or 5432}{url.path}"
        return (f"cron: config ok: {len(config.jobs)} job(s) ({table} table, {beats} heartbeat) "
                f"of {config.expected_jobs if config.expected_jobs is not None else 'unstated'} "
                f"expected; {where}; heartbeat token "
                f"{'set' if config.token_value else 'not set'}; state file "
                f"{config.state_file or 'none'}")
