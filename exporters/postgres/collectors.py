"""PostgreSQL collectors: each run reads one statement and turns it into metric families
(the statements collector first asks pg_extension while it has not seen the extension).

A run's statements are sent without BEGIN/COMMIT: each runs in its own implicit
transaction, read-only by the session default (pgpool), and every family is read by one
statement, so no family needs a snapshot shared between statements. Wrapping each run in
a transaction would double the statements a round sends (issue 16: 53 against
postgres_exporter's 17 for the same queries).
"""

from __future__ import annotations

import abc
import logging
import re
from typing import Any

import asyncpg
from prometheus_client.core import Metric

from saasmon.postgres import queries as q
from saasmon.postgres.config import PostgresConfig
from saasmon.runtime.collector import Collector, Lane
from saasmon.runtime.families import counter, gauge, top_n
from saasmon.runtime.logs import SecretRegistry, log_fields
from saasmon.runtime.overrides import Schedule
from saasmon.runtime.pgpool import ReadOnlyPool, classify_pg_error

log = logging.getLogger("saasmon.postgres")
FINGERPRINT_CHARS = 60

# pg_stat_statements replaces constants by $n only in plannable statements; utility ones
# (SET, DO, COMMENT, CREATE ROLE ...) keep their text, literals and all. One left-to-right
# pass, so a quote inside a dollar body or a `$$` inside a literal is read as PostgreSQL
# does: string literals (E'' with backslash escapes, '' doubled quotes) and dollar-quoted
# bodies become ***, comments go (an unterminated one runs to the end, as when cut).
_LITERALS = re.compile(
    r"""(?P<lit>[eE]'(?:[^'\\]|\\.|'')*'?|'(?:[^']|'')*'?"""
    r"""|(?<![\w$])\$\$(?:.*?\$\$|.*)"""
    r"""|(?<![\w$])\$(?P<tag>[A-Za-z_\x80-\uffff][\w\x80-\uffff]*)\$(?:.*?\$(?P=tag)\$|.*))"""
    r"""|(?P<comment>--[^\n]*|/\*.*?(?:\*/|$))""", re.S)
# SET accepts a bare word as its value (`SET my.key = sk_live_x`): the whole value goes.
_SET_VALUE = re.compile(r"^((?:ALTER\b.*?\b)?SET\s+(?:SESSION\s+|LOCAL\s+)?[\w.\"]+"
                        r"\s*(?:=|\bTO\b)\s*).+", re.I | re.S)


def mask_statement(text: str) -> str:
    """Statement text fit for a label: no literal, dollar body, comment or SET value."""
    text = _LITERALS.sub(lambda m: "***" if m.group("lit") else " ", text)
    return " ".join(_SET_VALUE.sub(r"\1***", text.strip()).split())


def fingerprint(text: str) -> str:
    """The `query` label of a statement: masked (literals, then the exporter's own secrets,
    should a statement quote them) before it is cut, since a cut secret no longer matches."""
    return SecretRegistry.mask(mask_statement(text))[:FINGERPRINT_CHARS]


class PostgresCollector(Collector):
    def __init__(self, pool: ReadOnlyPool, config: PostgresConfig, schedule: Schedule) -> None:
        super().__init__(config.target, schedule.interval, schedule.timeout)
        self.connections = pool
        self.config = config

    async def collect(self) -> list[Metric]:
        pool = await self.connections.pool()
        async with pool.acquire(timeout=self.timeout) as conn:
            return await self.read(conn)

    def lane(self) -> Lane | None:
        # On each scrape, the collectors of one pool run on connections held for the round:
        # one acquire per connection, not one per collector (issue 16, CPU per scrape).
        return self.connections

    async def collect_in(self, session: Any) -> list[Metric]:
        return await self.read(session)

    @abc.abstractmethod
    async def read(self, conn: Any) -> list[Metric]:
        """Run the queries on one read-only connection."""

    def classify(self, exc: BaseException) -> str:
        return classify_pg_error(exc) or super().classify(exc)


class ActivityCollector(PostgresCollector):
    name = "activity"

    async def read(self, conn: Any) -> list[Metric]:
        rows = await conn.fetch(q.ACTIVITY, self.config.slow_query_thresholds_seconds)
        by_state = [r for r in rows if r["kind"] == "state"]
        long_running = [r for r in rows if r["kind"] == "longer_than"]
        summary = {r["kind"]: r["n"] for r in rows if r["kind"] not in ("state", "longer_than")}
        databases = sorted({r["datname"] for r in by_state})
        kept, _ = top_n(databases, self.config.top_n)
        counts = [((r["datname"], r["state"]), r["n"]) for r in by_state if r["datname"] in kept]
        return [
            gauge("pg_connections", "Client connections by database and state.",
                  labels=("database", "state"), rows=counts),
            gauge("pg_settings_max_connections", "Server max_connections.",
                  summary["max_connections"]),
            gauge("pg_settings_superuser_reserved_connections",
                  "Server superuser_reserved_connections.", summary["reserved"]),
            gauge("pg_connections_used_ratio", "Client connections / max_connections.",
                  summary["clients"] / summary["max_connections"]),
            gauge("pg_oldest_transaction_age_seconds", "Age of the oldest open transaction.",
                  summary["oldest_xact_seconds"]),
            gauge("pg_idle_in_transaction_max_age_seconds",
                  "Longest time a session has been idle in transaction.",
                  summary["oldest_idle_in_xact_seconds"]),
            gauge("pg_locks_waiting", "Lock requests not granted.", summary["waiting_locks"]),
            gauge("pg_blocked_sessions", "Sessions blocked by another session's lock.",
                  summary["blocked_sessions"]),
            gauge("pg_active_queries_longer_than",
                  "Active statements running longer than the threshold.",
                  labels=("threshold_seconds",),
                  rows=[((_fmt(r["threshold"]),), r["n"]) for r in long_running]),
        ]


class DatabaseCollector(PostgresCollector):
    name = "database"

    async def read(self, conn: Any) -> list[Metric]:
        rows = await conn.fetch(q.DATABASES)
        kept, cut = top_n(rows, self.config.top_n)

        def col(column: str) -> list[tuple[tuple[str], float]]:
            return [((r["datname"],), float(r[column])) for r in kept]

        return [
            counter("pg_database_xact_commit", "Committed transactions.", labels=("database",),
                    rows=col("xact_commit")),
            counter("pg_database_xact_rollback", "Rolled back transactions.",
                    labels=("database",), rows=col("xact_rollback")),
            counter("pg_database_deadlocks", "Deadlocks detected.", labels=("database",),
                    rows=col("deadlocks")),
            counter("pg_database_blocks_hit", "Buffer cache hits.", labels=("database",),
                    rows=col("blks_hit")),
            counter("pg_database_blocks_read", "Blocks read from disk or OS cache.",
                    labels=("database",), rows=col("blks_read")),
            counter("pg_database_temp_bytes", "Bytes written to temporary files.",
                    labels=("database",), rows=col("temp_bytes")),
            gauge("pg_database_size_bytes", "Database size.", labels=("database",),
                  rows=col("size_bytes")),
            *([gauge("pg_storage_allocated_bytes",
                     "Storage allocated to the databases (allocated_storage_bytes).",
                     float(self.config.allocated_storage_bytes))]
              if self.config.allocated_storage_bytes else []),
            gauge("pg_database_xid_age", "Transactions since datfrozenxid (wraparound age).",
                  labels=("database",), rows=col("xid_age")),
            gauge("pg_database_xid_wraparound_ratio",
                  "Wraparound age as a share of the 2^31 transaction id limit.",
                  labels=("database",),
                  rows=[((r["datname"],), r["xid_age"] / 2**31) for r in kept]),
            gauge("pg_database_untracked", "Databases beyond top_n, not labelled.", cut),
        ]


class StatementsCollector(PostgresCollector):
    name = "statements"
    _warned = False
    # Whether the extension was there at the last round: then the round is one statement;
    # otherwise (first round, or after a failed read) pg_extension is asked first.
    _installed = False

    def __init__(self, pool: ReadOnlyPool, config: PostgresConfig, schedule: Schedule) -> None:
        super().__init__(pool, config, schedule)
        self._labels: dict[str, str] = {}

    async def read(self, conn: Any) -> list[Metric]:
        if not self._installed:
            if await conn.fetchval(q.HAS_STATEMENTS) is None:
                return self._unavailable("pg_stat_statements is not installed")
            self._installed = True
        try:
            rows = await conn.fetch(q.STATEMENTS, self.config.top_n,
                                    self.config.slow_query_thresholds_seconds)
        except (asyncpg.UndefinedTableError, asyncpg.UndefinedFunctionError) as exc:
            self._installed = False  # dropped since the last round
            return self._unavailable(f"pg_stat_statements cannot be read: {exc}")
        except (asyncpg.ObjectNotInPrerequisiteStateError, asyncpg.UndefinedColumnError) as exc:
            # Created but not preloaded, or an extension version older than the server's.
            return self._unavailable(f"pg_stat_statements cannot be read: {exc}")
        top = [r for r in rows if r["kind"] == "top"]
        summary = next(r for r in rows if r["kind"] == "all")
        slow = sorted((r for r in rows if r["kind"] == "slow"), key=lambda r: r["threshold"])
        self._warned = False
        labels = ("database", "queryid", "query")
        # Masking is regex work on every top statement's text; a statement's text does not
        # change between rounds, so last round's labels are reused (at most top_n kept).
        known, self._labels = self._labels, {}
        for r in top:
            text = r["query_text"]
            self._labels[text] = known.get(text) or fingerprint(text)
        keys = [(r["datname"], r["queryid"], self._labels[r["query_text"]]) for r in top]

        def col(column: str) -> list[tuple[tuple[str, str, str], float]]:
            return [(key, float(r[column] or 0)) for key, r in zip(keys, top, strict=True)]

        return [
            gauge("pg_stat_statements_available", "Whether pg_stat_statements can be read.", 1),
            counter("pg_stat_statements_calls", "Calls of the top statements by total time.",
                    labels=labels, rows=col("calls")),
            counter("pg_stat_statements_exec_seconds",
                    "Execution time of the top statements by total time.",
                    labels=labels, rows=col("total_seconds")),
            gauge("pg_stat_statements_mean_exec_seconds",
                  "Mean execution time of the top statements.", labels=labels,
                  rows=col("mean_seconds")),
            counter("pg_stat_statements_rows", "Rows returned or affected by the top statements.",
                    labels=labels, rows=col("rows")),
            gauge("pg_stat_statements_tracked", "Statements pg_stat_statements holds.",
                  float(summary["rows"])),
            gauge("pg_stat_statements_untracked",
                  "Statements beyond top_n, not labelled.",
                  max(0.0, float(summary["rows"]) - len(top))),
            counter("pg_stat_statements_all_calls", "Calls of all statements.",
                    float(summary["calls"])),
            counter("pg_stat_statements_all_exec_seconds", "Execution time of all statements.",
                    float(summary["total_seconds"])),
            gauge("pg_stat_statements_slow",
                  "Statements whose mean execution time exceeds the threshold.",
                  labels=("threshold_seconds",),
                  rows=[((_fmt(r["threshold"]),), float(r["rows"])) for r in slow]),
            gauge("pg_stat_statements_slow_calls",
                  "Calls of statements whose mean execution time exceeds the threshold.",
                  labels=("threshold_seconds",),
                  rows=[((_fmt(r["threshold"]),), float(r["calls"])) for r in slow]),
        ]


    def _unavailable(self, why: str) -> list[Metric]:
        if not self._warned:
            log.warning(f"{why}: statement metrics are off", extra=log_fields(collector=self.key))
            self._warned = True
        return [gauge("pg_stat_statements_available",
                      "Whether pg_stat_statements can be read.", 0)]


class TablesCollector(PostgresCollector):
    name = "tables"

    async def read(self, conn: Any) -> list[Metric]:
        top = await conn.fetch(q.TABLES_TOP, self.config.top_n)
        total = top[0]["total"] if top else 0
        labels = ("schema", "table")

        def col(column: str) -> list[tuple[tuple[str, str], float]]:
            return [((r["schemaname"], r["relname"]), float(r[column])) for r in top]

        return [
            counter("pg_table_seq_scan", "Sequential scans (top tables by rows read so).",
                    labels=labels, rows=col("seq_scan")),
            counter("pg_table_seq_tup_read", "Rows read by sequential scans.", labels=labels,
                    rows=col("seq_tup_read")),
            counter("pg_table_idx_scan", "Index scans.", labels=labels, rows=col("idx_scan")),
            gauge("pg_table_live_tuples", "Estimated live rows.", labels=labels,
                  rows=col("n_live_tup")),
            gauge("pg_table_dead_tuples", "Estimated dead rows.", labels=labels,
                  rows=col("n_dead_tup")),
            gauge("pg_tables_untracked", "User tables beyond top_n, not labelled.",
                  max(0, total - len(top))),
        ]


class IndexesCollector(PostgresCollector):
    """Unused indexes: a join over every index and a size lookup for each unused one, the
    costliest read as indexes grow, for an alert that waits a day: its own schedule."""

    name = "indexes"

    async def read(self, conn: Any) -> list[Metric]:
        unused = await conn.fetchrow(q.UNUSED_INDEXES)
        return [
            gauge("pg_unused_indexes", "Non-unique indexes never scanned (idx_scan = 0).",
                  unused["n"]),
            gauge("pg_unused_indexes_size_bytes", "Size of the never-scanned indexes.",
                  float(unused["size_bytes"])),
        ]


class ReplicationCollector(PostgresCollector):
    name = "replication"

    async def read(self, conn: Any) -> list[Metric]:
        rows = await conn.fetch(q.REPLICATION)

        def largest_first(kind: str) -> list[Any]:
            # For top_n, by bytes: a UNION ALL's row order is not defined.
            return sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["bytes"],
                          reverse=True)

        server = next(r for r in rows if r["kind"] == "server")
        replica = bool(server["replica"])
        families: list[Metric] = [
            gauge("pg_replication_is_replica", "1 on a standby, 0 on a primary.", int(replica))
        ]
        if replica:
            families += [
                gauge("pg_replication_lag_seconds", "Replay delay on this standby.",
                      server["seconds"]),
                gauge("pg_replication_lag_bytes", "WAL received but not replayed.",
                      server["bytes"]),
            ]
        else:
            standbys = largest_first("standby")
            kept, _ = top_n(standbys, self.config.top_n)
            families += [
                gauge("pg_replication_standbys", "Connected standbys.", len(standbys)),
                gauge("pg_replication_standby_lag_bytes", "WAL not yet replayed by the standby.",
                      labels=("standby",),
                      rows=[((r["name"],), r["bytes"]) for r in kept]),
                gauge("pg_replication_standby_lag_seconds", "Replay lag reported by the standby.",
                      labels=("standby",),
                      rows=[((r["name"],), r["seconds"]) for r in kept]),
            ]
        slots = largest_first("slot")
        kept_slots, _ = top_n(slots, self.config.top_n)
        families += [
            gauge("pg_replication_slot_retained_bytes", "WAL a replication slot holds back.",
                  labels=("slot",),
                  rows=[((r["name"],), r["bytes"]) for r in kept_slots]),
            gauge("pg_replication_slot_active", "Whether the slot has a consumer.",
                  labels=("slot",),
                  rows=[((r["name"],), r["active"]) for r in kept_slots]),
        ]
        return families


class CheckpointsCollector(PostgresCollector):
    name = "checkpoints"

    async def read(self, conn: Any) -> list[Metric]:
        version = conn.get_server_version().major
        row = await conn.fetchrow(q.CHECKPOINTS_17 if version >= 17 else q.CHECKPOINTS_13)
        return [
            counter("pg_checkpoints_timed", "Scheduled checkpoints.", float(row["timed"])),
            counter("pg_checkpoints_requested", "Requested (forced) checkpoints.",
                    float(row["requested"])),
            counter("pg_checkpoint_write_seconds", "Time spent writing checkpoint files.",
                    float(row["write_seconds"])),
            counter("pg_checkpoint_sync_seconds", "Time spent syncing checkpoint files.",
                    float(row["sync_seconds"])),
            counter("pg_checkpoint_buffers_written", "Buffers written by checkpoints.",
                    float(row["buffers_written"])),
        ]


ALL: list[type[PostgresCollector]] = [
    ActivityCollector, DatabaseCollector, StatementsCollector, TablesCollector,
    IndexesCollector, ReplicationCollector, CheckpointsCollector,
]


def _fmt(threshold: float) -> str:
    return f"{threshold:g}"
