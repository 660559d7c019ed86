"""Table source: follows cron_job_logs incrementally into per-job run state.

Start-up reads each registered job's latest run from a bounded window (started_at index);
after that a round reads only rows above the id high-water mark, plus the rows it knows
are still `running` (a job updates its row in place when it ends, which an id mark alone
would never see again). No round scans the table.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client.core import Metric

from saasmon.cron.config import CronConfig
from saasmon.cron.state import JobState
from saasmon.runtime.collector import Collector
from saasmon.runtime.families import counter, gauge
from saasmon.runtime.overrides import Schedule
from saasmon.runtime.pgpool import ReadOnlyPool, classify_pg_error

# Ids below the mark that were not there when we passed them: an insert committing after a
# later id, or a rolled-back one (which never appears). Re-read by id for a while.
GAP_TTL_SECONDS = 600.0
MAX_GAPS = 1000
# A wider jump is a sequence skip (cache, truncate, bulk rollback), not inserts in flight.
MAX_GAP_SPAN = 100


_COLUMNS = """id, job_name, status,
       extract(epoch FROM started_at)::float8 AS started_at,
       extract(epoch FROM completed_at)::float8 AS completed_at"""
_RECENT = ("started_at >= now() - make_interval(secs => $2::float8) "
           "AND job_name = ANY($1::text[])")


class Queries:
    """The SQL, with the configured table spliced in (validated, then double-quoted)."""

    def __init__(self, table: str) -> None:
        t = ".".join(f'"{part}"' for part in table.split("."))
        # Per job: latest start, latest success/failure and the failures since the last
        # success, over the lookback window only.
        self.summary = f"""
            WITH recent AS (
                SELECT job_name, status, started_at, completed_at FROM {t} WHERE {_RECENT}
            ), last_ok AS (
                SELECT job_name, max(started_at) AS started_at FROM recent
                WHERE status = 'success' GROUP BY job_name
            )
            SELECT r.job_name,
                   extract(epoch FROM max(r.started_at))::float8 AS last_start,
                   extract(epoch FROM max(coalesce(r.completed_at, r.started_at))
                       FILTER (WHERE r.status = 'success'))::float8 AS last_success,
                   extract(epoch FROM max(coalesce(r.completed_at, r.started_at))
                       FILTER (WHERE r.status NOT IN ('success', 'running')))::float8
                       AS last_failure,
                   count(*) FILTER (WHERE r.status NOT IN ('success', 'running')
                       AND r.started_at > coalesce(o.started_at, '-infinity'))::int
                       AS consecutive_failures
            FROM recent r LEFT JOIN last_ok o USING (job_name)
            GROUP BY r.job_name, o.started_at"""
        # Per job: the most recently finished run (its status and duration).
        self.latest_finished = f"""
            SELECT DISTINCT ON (job_name) {_COLUMNS} FROM {t}
            WHERE {_RECENT} AND status <> 'running'
            ORDER BY job_name, coalesce(completed_at, started_at) DESC, id DESC"""
        self.running = f"""
            SELECT {_COLUMNS} FROM {t} WHERE {_RECENT} AND status = 'running'
            ORDER BY id DESC LIMIT $3"""
        self.max_id = f"SELECT coalesce(max(id), 0) FROM {t}"
        self.by_ids = f"SELECT {_COLUMNS} FROM {t} WHERE id = ANY($1::bigint[])"
        self.after = f"SELECT {_COLUMNS} FROM {t} WHERE id > $1 ORDER BY id LIMIT $2"


def _status(raw: str) -> str:
    # The reference schema allows running|success|failed; any other word a custom table
    # uses for an ended run (error, timeout, ...) is a failure.
    return raw if raw in ("running", "success") else "failed"


def _duration(row: Any) -> float | None:
    completed = row["completed_at"]
    return None if completed is None else completed - row["started_at"]


class TableCollector(Collector):
    name = "table"

    def __init__(self, config: CronConfig, pool: ReadOnlyPool, schedule: Schedule) -> None:
        super().__init__(config.target, schedule.interval, schedule.timeout)
        self.config = config
        self.connections = pool
        self.sql = Queries(config.table)
        self.jobs = [j.name for j in config.jobs_from("table")]
        self.states: dict[str, JobState] = {}
        self.bootstrapped = False
        self.healthy = False  # last round succeeded: the states are current
        self.mark = 0  # highest id read
        self.open_ids: dict[int, str] = {}  # running rows to re-read -> job name
        self.gaps: dict[int, float] = {}  # id -> when first missed (monotonic)
        self.unknown_rows = 0
        self.rows_read = {"bootstrap": 0, "new": 0, "recheck": 0}

    async def collect(self) -> list[Metric]:
        try:
            pool = await self.connections.pool()
            async with pool.acquire(timeout=self.timeout) as conn:
                if self.bootstrapped:
                    await self._follow(conn)
                else:
                    await self._bootstrap(conn)
        except BaseException:
            self.healthy = False
            raise
        self.healthy = True
        return self._families()

    # -- reading -------------------------------------------------------------------
    async def _bootstrap(self, conn: Any) -> None:
        lookback = self.config.bootstrap_lookback_seconds
        args = (self.jobs, lookback)
        # One snapshot, so the high-water mark matches what the other queries saw.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            summary = await conn.fetch(self.sql.summary, *args)
            finished = await conn.fetch(self.sql.latest_finished, *args)
            running = await conn.fetch(self.sql.running, *args,
                                       len(self.jobs) * 10)
            mark = await conn.fetchval(self.sql.max_id)
        now = time.time()
        states = {name: JobState(known_since=now - lookback) for name in self.jobs}
        for row in summary:
            state = states[row["job_name"]]
            state.last_start = row["last_start"]
            state.last_success = row["last_success"]
            state.last_failure = row["last_failure"]
            state.consecutive_failures = row["consecutive_failures"]
        for row in finished:
            state = states[row["job_name"]]
            state.last_finish = row["completed_at"] or row["started_at"]
            state.last_status = _status(row["status"])
            state.last_duration = _duration(row)
        open_ids: dict[int, str] = {}
        for row in reversed(running):  # oldest first: the open-run cap keeps the newest
            states[row["job_name"]].start(str(row["id"]), row["started_at"])
            open_ids[row["id"]] = row["job_name"]
        self.rows_read["bootstrap"] += len(summary) + len(finished) + len(running)
        self.states, self.open_ids, self.mark = states, open_ids, mark
        self.gaps = {}
        self.bootstrapped = True
        self._prune(now)

    async def _follow(self, conn: Any) -> None:
        recheck = [*self.open_ids, *self.gaps]
        if recheck:
            rows = await conn.fetch(self.sql.by_ids, recheck)
            self.rows_read["recheck"] += len(rows)
            self._apply_rechecked(rows)
        for _ in range(self.config.max_batches_per_round):
            rows = await conn.fetch(self.sql.after, self.mark, self.config.batch_size)
            self.rows_read["new"] += len(rows)
            self._apply_new(rows)
            if len(rows) < self.config.batch_size:
                break
        self._prune(time.time())

    # -- applying (synchronous: a cancelled round never leaves half-applied rows) -----
    def _apply_rechecked(self, rows: list[Any]) -> None:
        found = {row["id"]: row for row in rows}
        for row_id, job in list(self.open_ids.items()):
            row = found.get(row_id)
            if row is None:  # deleted (retention): nothing will end it any more
                del self.open_ids[row_id]
                self.states[job].open_runs.pop(str(row_id), None)
            elif _status(row["status"]) != "running":
                del self.open_ids[row_id]
                self._finish(self.states[job], row)
        late = [found[i] for i in sorted(self.gaps) if i in found]
        for row in late:
            del self.gaps[row["id"]]
        self._apply_rows(late)

    def _apply_new(self, rows: list[Any]) -> None:
        now = time.monotonic()
        for row in rows:
            if row["id"] - self.mark <= MAX_GAP_SPAN:
                for missing in range(self.mark + 1, row["id"]):
                    if len(self.gaps) >= MAX_GAPS:
                        break
                    self.gaps[missing] = now
            self.mark = max(self.mark, row["id"])
        self._apply_rows(rows)

    def _apply_rows(self, rows: list[Any]) -> None:
        for row in rows:
            state = self.states.get(row["job_name"])
            if state is None:
                # Not a registered table job: counted, never a label.
                self.unknown_rows += 1
                continue
            if _status(row["status"]) == "running":
                state.start(str(row["id"]), row["started_at"])
                self.open_ids[row["id"]] = row["job_name"]
            else:
                self._finish(state, row)

    @staticmethod
    def _finish(state: JobState, row: Any) -> None:
        finished = row["completed_at"] or row["started_at"]
        state.finish(str(row["id"]), _status(row["status"]), row["started_at"], finished,
                     _duration(row))

    def _prune(self, now: float) -> None:
        oldest = now - self.config.bootstrap_lookback_seconds
        for state in self.states.values():
            for key, started in list(state.open_runs.items()):
                if started < oldest:  # what a fresh start-up would no longer see either
                    del state.open_runs[key]
        self.open_ids = {i: job for i, job in self.open_ids.items()
                         if str(i) in self.states[job].open_runs}
        expired = time.monotonic() - GAP_TTL_SECONDS
        self.gaps = {i: t for i, t in self.gaps.items() if t >= expired}

    # -- output --------------------------------------------------------------------
    def _families(self) -> list[Metric]:
        return [
            counter("cron_table_rows_read", "Rows read from the cron table, by phase: "
                    "bootstrap (start-up), new (above the id mark), recheck (running rows "
                    "and id gaps re-read by id).", labels=("phase",),
                    rows=[((phase,), n) for phase, n in self.rows_read.items()]),
            counter("cron_table_unknown_job_rows",
                    "Rows whose job_name is not a registered table job.", self.unknown_rows),
            gauge("cron_table_last_id", "Highest cron table id read (the high-water mark).",
                  self.mark),
            gauge("cron_table_open_runs_tracked",
                  "Running rows re-read by id each round until they end.", len(self.open_ids)),
            gauge("cron_table_id_gaps_tracked",
                  "Ids below the mark not seen yet, re-read by id for a while.", len(self.gaps)),
        ]

    def classify(self, exc: BaseException) -> str:
        return classify_pg_error(exc) or super().classify(exc)
