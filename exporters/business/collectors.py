"""One collector per pack query: a read-only statement turned into metric families."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import asyncpg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from saasmon.business.config import NAMESPACE, BusinessConfig
from saasmon.business.pack import PackMetric, PackQuery, query_duration_metric
from saasmon.runtime.collector import Collector, CollectorError
from saasmon.runtime.families import gauge
from saasmon.runtime.overrides import Schedule
from saasmon.runtime.pgpool import (
    ReadOnlyPool,
    SessionGuard,
    classify_pg_error,
    reports_read_only,
)


class ConnectionPool(ReadOnlyPool):
    """One small pool (a lane) shared by some of the pack's queries.

    asyncpg keeps each query prepared on the connection that ran it and PostgreSQL keeps
    the plan of a prepared statement without parameters: a query that comes back to the
    same connection is executed without being planned again (hence the statement cache).
    """

    def __init__(self, config: BusinessConfig, lane: str, server_timeout: float) -> None:
        self.config = config
        self.lane = lane
        # The server cancels anything that outlives the lane's slowest query's own timeout
        # (after overrides), even if this process is gone; each query's own timeout is
        # enforced client-side.
        self.server_timeout = server_timeout
        self.connect_timeout = min(10.0, self.server_timeout)
        guard = SessionGuard()
        super().__init__(
            config.required_dsn, application_name=f"saasmon_business_{lane}",
            max_size=config.pool_max_size, statement_timeout=self.server_timeout,
            connect_timeout=self.connect_timeout, command_timeout=None, idle_lifetime=300.0,
            statement_cache_size=100, init=guard.init, reset=guard.reset,
            # Day-sized windows are then always 24 h (no DST day of 23 or 25 h).
            settings={"TimeZone": "UTC"})


def _number(value: Any, column: str) -> float | None:
    if value is None:
        return None  # e.g. a ratio over an empty window: no sample rather than a made-up 0
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float | Decimal):
        return float(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, dt.datetime):
        return value.timestamp()
    raise CollectorError("query", f"column {column!r} is not numeric ({type(value).__name__})")


def _label(value: Any, limit: int) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)[:limit]


def families_from_rows(query: PackQuery, rows: Sequence[Mapping[str, Any]],
                       max_series: int, label_limit: int) -> list[Metric]:
    """Metric families from the query's rows; series beyond max_series are counted, not kept."""
    if rows:
        returned = set(rows[0].keys())
        for metric in query.metrics:
            missing = [c for c in (metric.value_column, *metric.labels) if c not in returned]
            if missing:
                raise CollectorError("query", f"metric {metric.name}: column {missing[0]!r} "
                                              "not returned by the query")
    families: list[Metric] = []
    dropped_rows: list[tuple[tuple[str], float]] = []
    for metric in query.metrics:
        family, dropped = _family(metric, rows, max_series, label_limit)
        families.append(family)
        if metric.labels:
            dropped_rows.append(((metric.name,), dropped))
    if dropped_rows:
        families.append(gauge(
            f"{NAMESPACE}_exporter_series_dropped",
            "Rows of the last run not exported: beyond max_series_per_metric or a repeated "
            "label set.", labels=("metric",), rows=dropped_rows))
    return families


def _family(metric: PackMetric, rows: Sequence[Mapping[str, Any]], max_series: int,
            label_limit: int) -> tuple[Metric, int]:
    family: GaugeMetricFamily | CounterMetricFamily = (
        CounterMetricFamily if metric.type == "counter" else GaugeMetricFamily
    )(metric.family_name, metric.help, labels=metric.labels or None)
    seen: set[tuple[str, ...]] = set()
    dropped = 0
    for row in rows:
        value = _number(row[metric.value_column], metric.value_column)
        if value is None:
            continue
        labels = tuple(_label(row[name], label_limit) for name in metric.labels)
        # Repeated label sets would make the exposition invalid; the SQL's order decides
        # which rows are kept when there are more than the cap.
        if labels in seen or len(seen) >= max_series:
            dropped += 1
            continue
        seen.add(labels)
        family.add_metric(list(labels), value)
    return family, dropped


class PackQueryCollector(Collector):
    def __init__(self, query: PackQuery, pool: ConnectionPool, config: BusinessConfig,
                 schedule: Schedule) -> None:
        super().__init__(config.target, schedule.interval, schedule.timeout)
        self.name = query.name
        self.query = query
        self.connections = pool
        self.max_series = config.max_series_per_metric
        self.label_limit = config.label_value_max_length

    async def collect(self) -> list[Metric]:
        pool = await self.connections.pool()
        async with pool.acquire(timeout=self.timeout) as conn:
            if reports_read_only(conn):
                # The session defaults to read-only (a startup parameter) and the pack's SQL
                # is one statement: its implicit transaction is read-only with one snapshot,
                # so BEGIN READ ONLY and COMMIT would be two more statements for nothing.
                # A statement that turns the default off fails its run and loses its
                # connection on release (SessionGuard), before anything else runs on it.
                rows, elapsed = await self._fetch(conn)
            else:
                # A server that does not report the default (before PostgreSQL 14): the
                # guard could not see it turned off, so each run says READ ONLY itself.
                async with conn.transaction(readonly=True):
                    rows, elapsed = await self._fetch(conn)
        duration = gauge(query_duration_metric(NAMESPACE), "Time the query's statement took "
                         "in its last successful run (sent, executed, rows received), by query.",
                         labels=("query",), rows=[((self.name,), elapsed)])
        if self.query.probe:
            return [duration]
        return [*families_from_rows(self.query, rows, self.max_series, self.label_limit),
                duration]

    async def _fetch(self, conn: asyncpg.Connection) -> tuple[list[asyncpg.Record], float]:
        # The statement alone is timed: no wait for a connection, so a probe times what a
        # person running the query by hand would see.
        started = time.perf_counter()
        rows = await conn.fetch(self.query.sql, timeout=self.timeout)
        return rows, time.perf_counter() - started

    def classify(self, exc: BaseException) -> str:
        return classify_pg_error(exc) or super().classify(exc)
