"""Failure counters read from the app's database: payments, message deliveries, webhooks.

Each table is read incrementally by primary key: the first run only notes the current
max(id), so counters start at 0 and count what is inserted from then on; every later run
reads the rows above that mark, at most `batch_size` of them. No query scans a table.

Label values come from data (failure reasons, providers), so each label admits at most N
distinct values, first come first served (the most frequent in the seed window first),
and folds the rest into "other". An admitted value keeps its series for the life of the
process, so a counter never moves from one label to another.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client.core import Metric

from saasmon.integrations.config import IntegrationsConfig
from saasmon.runtime.collector import Collector
from saasmon.runtime.families import counter
from saasmon.runtime.overrides import Schedule
from saasmon.runtime.pgpool import ReadOnlyPool, classify_pg_error

DATABASE_TARGET = "database"
OTHER = "other"
UNKNOWN = "unknown"
VALUE_CHARS = 64


# Values the reference schema's CHECK constraints allow (refapp/schema/001_crm.sql): their
# series exist from the first run, before any row has that value.
PAYMENT_STATUSES = ("succeeded", "failed", "refunded")
CHANNELS = ("sms", "email")
DELIVERY_STATUSES = ("queued", "sent", "delivered", "failed")
WEBHOOK_STATUSES = ("processed", "failed")
# A few more statuses than the schema knows, should an app add its own, before "other".
EXTRA_STATUSES = 4


def clean(value: object) -> str:
    """A label value from data: trimmed, lower case, bounded; missing is "unknown"."""
    text = " ".join(str(value).split()).lower()[:VALUE_CHARS] if value is not None else ""
    return text or UNKNOWN


class LabelCap:
    """Admits at most `limit` distinct values (plus the preset ones); the rest are "other"."""

    def __init__(self, limit: int, preset: Iterable[str] = ()) -> None:
        self.limit = limit
        self.preset = list(preset)
        self.admitted: list[str] = []

    def __call__(self, value: object) -> str:
        text = clean(value)
        if text in self.preset or text in self.admitted:
            return text
        if len(self.admitted) < self.limit:
            self.admitted.append(text)
            return text
        return OTHER

    def values(self) -> list[str]:
        return [*self.preset, *self.admitted]


class TableCollector(Collector):
    """Counts rows of one table by a few labels, reading only rows above a high-water mark."""

    table: str
    id_column = "id"
    # $1 = last id, $2 = batch size, $3 = settle seconds; must return the label columns,
    # `n` and `last_id`, ordered by first appearance so label values are admitted first
    # come first served.
    batch_sql: str
    # Rows younger than this are left for a later round: a table whose rows change status
    # in place (queued -> sent -> delivered/failed) is counted once the status has settled.
    default_settle_seconds = 0.0
    # $1 = window seconds, $2 = limit; returns the label columns to pre-create series for.
    seed_sql: str

    def __init__(self, pool: ReadOnlyPool, config: IntegrationsConfig,
                 schedule: Schedule) -> None:
        super().__init__(DATABASE_TARGET, schedule.interval, schedule.timeout)
        override = config.override(self.table)
        self.settle_seconds = self.default_settle_seconds
        if override is not None and override.settle_seconds is not None:
            self.settle_seconds = override.settle_seconds
        self.name = self.table  # the collector label on the runtime's self-metrics
        self.connections = pool
        self.config = config
        self.last_id: int | None = None  # None until the first successful run
        self.rows_read = 0

    async def collect(self) -> list[Metric]:
        pool = await self.connections.pool()
        async with pool.acquire(timeout=self.timeout) as conn:
            if self.last_id is None:
                start = await conn.fetchval(
                    f"SELECT coalesce(max({self.id_column}), 0) FROM {self.table}")
                seeds: Sequence[Any] = []
                if self.config.seed_window_seconds > 0:
                    seeds = await conn.fetch(self.seed_sql, self.config.seed_window_seconds,
                                             self.seed_limit())
                # State changes only after every await: a run cancelled by its timeout
                # leaves the previous state whole.
                self.seed(seeds)
                self.last_id = int(start)
            else:
                rows = await conn.fetch(self.batch_sql, self.last_id, self.config.batch_size,
                                        self.settle_seconds)
                for row in rows:
                    self.add(row)
                    self.rows_read += row["n"]
                self.last_id = max([self.last_id, *(int(r["last_id"]) for r in rows)])
        return [*self.families(),
                counter("integration_rows_read", "Rows read from the table since start.",
                        labels=("table",), rows=[((self.table,), self.rows_read)])]

    def seed_limit(self) -> int:
        return self.config.top_n_providers

    @abc.abstractmethod
    def seed(self, rows: Sequence[Any]) -> None:
        """Create 0-valued series for the label values seen recently."""

    @abc.abstractmethod
    def add(self, row: Any) -> None:
        """Count one aggregated batch row."""

    @abc.abstractmethod
    def families(self) -> list[Metric]:
        """The counters so far."""

    def classify(self, exc: BaseException) -> str:
        return classify_pg_error(exc) or super().classify(exc)


def _bump(counts: dict[tuple[str, ...], float], key: tuple[str, ...], n: int) -> None:
    counts[key] = counts.get(key, 0) + n


class PaymentsCollector(TableCollector):
    """dirt-free-crm § Alert Thresholds: any payment failure is P0, so failures by reason."""

    table = "payments"
    batch_sql = """
WITH batch AS (SELECT id, status, failure_reason FROM payments
               WHERE id > $1 AND created_at <= now() - make_interval(secs => $3)
               ORDER BY id LIMIT $2)
SELECT status, failure_reason, count(*) AS n, max(id) AS last_id FROM batch GROUP BY 1, 2
ORDER BY min(id)
"""
    seed_sql = """
SELECT failure_reason FROM payments
WHERE status = 'failed' AND created_at > now() - make_interval(secs => $1)
GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT $2
"""

    def __init__(self, pool: ReadOnlyPool, config: IntegrationsConfig,
                 schedule: Schedule) -> None:
        super().__init__(pool, config, schedule)
        self.statuses = LabelCap(EXTRA_STATUSES, PAYMENT_STATUSES)
        self.reasons = LabelCap(config.top_n_reasons)
        self.by_status: dict[tuple[str, ...], float] = {(s,): 0 for s in PAYMENT_STATUSES}
        self.by_reason: dict[tuple[str, ...], float] = {(OTHER,): 0}
        self.declines = {clean(r) for r in config.decline_reasons}
        self.errors = 0.0

    def seed_limit(self) -> int:
        return self.config.top_n_reasons

    def seed(self, rows: Sequence[Any]) -> None:
        for row in rows:
            self.by_reason.setdefault((self.reasons(row["failure_reason"]),), 0)

    def add(self, row: Any) -> None:
        status = self.statuses(row["status"])
        _bump(self.by_status, (status,), row["n"])
        if status == "failed":
            _bump(self.by_reason, (self.reasons(row["failure_reason"]),), row["n"])
            # Judged on the raw reason: a decline capped into "other" is still a decline.
            if clean(row["failure_reason"]) not in self.declines:
                self.errors += row["n"]

    def families(self) -> list[Metric]:
        return [
            counter("integration_payments", "Payments inserted since start, by status.",
                    labels=("status",), rows=sorted(self.by_status.items())),
            counter("integration_payment_failures",
                    "Failed payments inserted since start, by failure_reason (top N, rest "
                    "\"other\", missing \"unknown\").",
                    labels=("reason",), rows=sorted(self.by_reason.items())),
            counter("integration_payment_errors",
                    "Failed payments inserted since start whose reason is not a customer-side "
                    "decline (decline_reasons): the provider's errors or ours.", self.errors),
        ]


class DeliveriesCollector(TableCollector):
    """dirt-free-crm § Integration Health: SMS (Twilio) and email (Resend) delivery."""

    table = "message_deliveries"
    # The reference schema's statuses (queued, sent, delivered, failed) are a lifecycle an
    # app updates in place; provider callbacks mostly arrive within minutes, so a row is
    # counted once it is 5 minutes old, well inside dirt-free-crm § Alert Thresholds' 1-hour
    # P1 response for Twilio/Resend errors.
    default_settle_seconds = 300.0
    batch_sql = """
WITH batch AS (SELECT id, channel, provider, status FROM message_deliveries
               WHERE id > $1 AND created_at <= now() - make_interval(secs => $3)
               ORDER BY id LIMIT $2)
SELECT channel, provider, status, count(*) AS n, max(id) AS last_id FROM batch
GROUP BY 1, 2, 3 ORDER BY min(id)
"""
    seed_sql = """
SELECT channel, provider FROM message_deliveries
WHERE created_at > now() - make_interval(secs => $1)
GROUP BY 1, 2 ORDER BY count(*) DESC, 1, 2 LIMIT $2
"""

    def __init__(self, pool: ReadOnlyPool, config: IntegrationsConfig,
                 schedule: Schedule) -> None:
        super().__init__(pool, config, schedule)
        self.channels = LabelCap(EXTRA_STATUSES, CHANNELS)
        self.providers = LabelCap(config.top_n_providers)
        self.statuses = LabelCap(EXTRA_STATUSES, DELIVERY_STATUSES)
        self.counts: dict[tuple[str, ...], float] = {}

    def seed(self, rows: Sequence[Any]) -> None:
        for row in rows:
            channel, provider = self.channels(row["channel"]), self.providers(row["provider"])
            for status in DELIVERY_STATUSES:
                self.counts.setdefault((channel, provider, status), 0)

    def add(self, row: Any) -> None:
        key = (self.channels(row["channel"]), self.providers(row["provider"]),
               self.statuses(row["status"]))
        if key not in self.counts:
            # A new channel/provider pair: its other statuses start at 0 too, so the first
            # failure after a success is an increase rate() sees.
            for status in DELIVERY_STATUSES:
                self.counts.setdefault((key[0], key[1], status), 0)
        _bump(self.counts, key, row["n"])

    def families(self) -> list[Metric]:
        return [counter("integration_message_deliveries",
                        "Outbound messages inserted since start, by channel, provider and "
                        "status.", labels=("channel", "provider", "status"),
                        rows=sorted(self.counts.items()))]


class WebhooksCollector(TableCollector):
    """dirt-free-crm § Integration Health: webhooks received, processing failures."""

    table = "webhook_events"
    batch_sql = """
WITH batch AS (SELECT id, provider, status FROM webhook_events
               WHERE id > $1 AND received_at <= now() - make_interval(secs => $3)
               ORDER BY id LIMIT $2)
SELECT provider, status, count(*) AS n, max(id) AS last_id FROM batch GROUP BY 1, 2
ORDER BY min(id)
"""
    seed_sql = """
SELECT provider FROM webhook_events
WHERE received_at > now() - make_interval(secs => $1)
GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT $2
"""

    def __init__(self, pool: ReadOnlyPool, config: IntegrationsConfig,
                 schedule: Schedule) -> None:
        super().__init__(pool, config, schedule)
        self.providers = LabelCap(config.top_n_providers)
        self.statuses = LabelCap(EXTRA_STATUSES, WEBHOOK_STATUSES)
        self.counts: dict[tuple[str, ...], float] = {}

    def seed(self, rows: Sequence[Any]) -> None:
        for row in rows:
            provider = self.providers(row["provider"])
            for status in WEBHOOK_STATUSES:
                self.counts.setdefault((provider, status), 0)

    def add(self, row: Any) -> None:
        key = (self.providers(row["provider"]), self.statuses(row["status"]))
        if key not in self.counts:
            for status in WEBHOOK_STATUSES:
                self.counts.setdefault((key[0], status), 0)
        _bump(self.counts, key, row["n"])

    def families(self) -> list[Metric]:
        return [counter("integration_webhook_events",
                        "Incoming webhook events inserted since start, by provider and status.",
                        labels=("provider", "status"), rows=sorted(self.counts.items()))]


ALL: tuple[type[TableCollector], ...] = (PaymentsCollector, DeliveriesCollector,
                                         WebhooksCollector)
