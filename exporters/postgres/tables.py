"""Table statistics of more than the DSN's database (`table_databases`).

PostgreSQL's table statistics views show only the database a session is connected to, so
each listed database gets a one-connection pool of its own, read in turn within the tables
collector's timeout. Every series carries a `database` label (the name all other pg_
series use for it); the number of databases read is capped, the rest counted.
"""

from __future__ import annotations

import logging
from urllib.parse import quote, urlsplit, urlunsplit

from prometheus_client.core import Metric

from saasmon.postgres.collectors import TablesCollector
from saasmon.postgres.config import PostgresConfig, TableDatabases
from saasmon.runtime.collector import Lane
from saasmon.runtime.families import gauge
from saasmon.runtime.logs import SecretRegistry, log_fields
from saasmon.runtime.overrides import Schedule
from saasmon.runtime.pgpool import ReadOnlyPool, classify_pg_error, collector_pool, keep_session

log = logging.getLogger("saasmon.postgres")

DISCOVER = """
SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname
"""


def with_database(dsn: str, database: str) -> str:
    url = urlsplit(dsn)
    return urlunsplit((url.scheme, url.netloc, "/" + quote(database, safe=""), url.query, ""))


class DatabaseTablesCollector(TablesCollector):
    """The tables collector over several databases: its families, labelled by database."""

    def __init__(self, pool: ReadOnlyPool, config: PostgresConfig, schedule: Schedule, *,
                 dsn: str, databases: TableDatabases, application_name: str) -> None:
        super().__init__(pool, config, schedule)
        self.dsn = dsn
        self.databases = databases
        self.application_name = application_name
        self.pools: dict[str, ReadOnlyPool] = {}
        self.failing: set[str] = set()

    def _pool(self, database: str) -> ReadOnlyPool:
        pool = self.pools.get(database)
        if pool is None:
            pool = self.pools[database] = collector_pool(
                with_database(self.dsn, database), self.application_name, max_size=1,
                timeout=self.timeout, interval=self.interval, reset=keep_session)
        return pool

    def lane(self) -> Lane | None:
        return None  # reads other databases on pools of its own: a run of its own

    async def collect(self) -> list[Metric]:
        main = await self.connections.pool()
        async with main.acquire(timeout=self.timeout) as conn:
            names = [r["datname"] for r in await conn.fetch(DISCOVER)]
        chosen, cut = self.databases.select(names)
        for gone in set(self.pools) - set(chosen):
            await self.pools.pop(gone).close()
        merged: dict[str, Metric] = {}
        up: list[tuple[tuple[str], float]] = []
        for database in chosen:
            try:
                pool = await self._pool(database).pool()
                async with pool.acquire(timeout=self.timeout) as conn, \
                        conn.transaction(readonly=True):
                    families = await self.read(conn)
            except Exception as exc:
                reason = classify_pg_error(exc)
                if reason is None:
                    raise
                # One database that cannot be read (no CONNECT right, dropped meanwhile)
                # leaves the others' statistics in place.
                up.append(((database,), 0))
                if database not in self.failing:
                    log.warning("table statistics of a database cannot be read", extra=log_fields(
                        collector=self.key, database=database, reason=reason,
                        error=SecretRegistry.mask(str(exc) or type(exc).__name__)[:300]))
                    self.failing.add(database)
                continue
            self.failing.discard(database)
            up.append(((database,), 1))
            for family in families:
                into = merged.get(family.name)
                if into is None:
                    into = merged[family.name] = Metric(
                        family.name, family.documentation, family.type, family.unit)
                into.samples.extend(s._replace(labels={"database": database, **s.labels})
                                    for s in family.samples)
        return [*merged.values(),
                gauge("pg_table_database_up",
                      "Whether the database's table statistics were read (table_databases).",
                      labels=("database",), rows=up),
                gauge("pg_table_databases_untracked",
                      "Databases matched by table_databases beyond max_databases.", cut)]

    async def close(self) -> None:
        for pool in self.pools.values():
            await pool.close()
        self.pools.clear()
