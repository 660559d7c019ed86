"""Prometheus counters of the statements an asyncpg application sends, and which failed.

PostgreSQL counts no failed statements (pg_stat_database has commits and rollbacks, and an
ORM or a pool rolls back routinely), so "database errors / all queries" can only be counted
where the queries are sent. Two lines in your own app:

    from saasmon.instrumentation.asyncpg import StatementMetrics
    pool = await asyncpg.create_pool(dsn, init=StatementMetrics(registry).init)

Every statement the connection runs (including BEGIN, COMMIT and the pool's reset) counts in
`db_statements_total`; one that fails counts in `db_statement_errors_total` by the class
of its SQLSTATE (the first two characters: 23 integrity violation, 40 rollback such as a
deadlock, 53 insufficient resources, ...), or `client` for a failure without one (the
client's own timeout, a broken connection). The label is bounded: an unknown class is
`other`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

import asyncpg
from prometheus_client import REGISTRY, CollectorRegistry, Counter

# PostgreSQL's SQLSTATE classes (Appendix A of its manual), plus `client` (no SQLSTATE) and
# `other` (a class this list does not know), so the label has a fixed set of values.
SQLSTATE_CLASSES = (
    "00", "01", "02", "03", "08", "09", "0A", "0B", "0F", "0L", "0P", "0Z", "20", "21", "22",
    "23", "24", "25", "26", "27", "28", "2B", "2D", "2F", "34", "38", "39", "3B", "3D", "3F",
    "40", "42", "44", "53", "54", "55", "57", "58", "72", "F0", "HV", "P0", "XX",
)
CLIENT_CLASS = "client"
OTHER_CLASS = "other"
STATEMENT_ERROR_CLASSES = (*SQLSTATE_CLASSES, CLIENT_CLASS, OTHER_CLASS)


def error_class(exc: BaseException) -> str:
    sqlstate = getattr(exc, "sqlstate", None)
    if not isinstance(sqlstate, str) or len(sqlstate) != 5:
        return CLIENT_CLASS
    prefix = sqlstate[:2].upper()
    return prefix if prefix in SQLSTATE_CLASSES else OTHER_CLASS


@dataclass(frozen=True)
class _Counters:
    statements: Counter
    errors: Counter


_BY_REGISTRY: WeakKeyDictionary[CollectorRegistry, _Counters] = WeakKeyDictionary()


def _counters(registry: CollectorRegistry) -> _Counters:
    """Registered once per registry, so two pools of one app share the families."""
    found = _BY_REGISTRY.get(registry)
    if found is None:
        found = _Counters(
            statements=Counter("db_statements", "Statements sent to the database (BEGIN, "
                               "COMMIT and the pool's reset included), failed or not.",
                               registry=registry),
            errors=Counter("db_statement_errors", "Statements the database or the client "
                           "failed, by SQLSTATE class (client: no SQLSTATE, e.g. a timeout).",
                           ["class"], registry=registry))
        # Every class at 0 from the start, so rate() sees the first error of each.
        for cls in STATEMENT_ERROR_CLASSES:
            found.errors.labels(cls)
        _BY_REGISTRY[registry] = found
    return found


class StatementMetrics:
    """Counts statements through asyncpg's query logger; `init` is a pool's `init=`."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.counters = _counters(REGISTRY if registry is None else registry)

    def record(self, query: Any) -> None:
        """asyncpg's query-logger callback (`query` is its LoggedQuery record)."""
        exc = query.exception
        if isinstance(exc, asyncio.CancelledError):
            return  # the caller gave up (client gone, shutdown): neither a statement nor an error
        self.counters.statements.inc()
        if exc is not None:
            self.counters.errors.labels(error_class(exc)).inc()

    def attach(self, conn: asyncpg.Connection) -> None:
        conn.add_query_logger(self.record)

    async def init(self, conn: asyncpg.Connection) -> None:
        self.attach(conn)
