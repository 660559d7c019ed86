"""One server's pool and collectors: the DSN's for /metrics, and each probed target's."""

from __future__ import annotations

from dataclasses import dataclass

from saasmon.postgres.collectors import ALL, PostgresCollector, TablesCollector
from saasmon.postgres.config import PostgresConfig
from saasmon.postgres.tables import DatabaseTablesCollector
from saasmon.runtime.overrides import longest_timeout
from saasmon.runtime.pgpool import ReadOnlyPool, collector_pool, keep_session

APPLICATION_NAME = "saasmon_exporter"  # queries.ACTIVITY leaves it out


@dataclass
class ServerCollectors:
    pool: ReadOnlyPool
    collectors: list[PostgresCollector]

    async def close(self) -> None:
        for collector in self.collectors:
            if isinstance(collector, DatabaseTablesCollector):
                await collector.close()
        await self.pool.close()


def assemble(config: PostgresConfig, dsn: str, *, pool_max_size: int) -> ServerCollectors:
    """Build (never connect) the collectors `config` enables against the server at `dsn`;
    `config.target` is their target label."""
    schedules = config.schedules()
    pool = collector_pool(
        dsn, APPLICATION_NAME, max_size=pool_max_size,
        timeout=longest_timeout(schedules.values(), config.timeout_seconds),
        interval=config.interval_seconds,
        # Read-only SELECTs only (collectors.py): nothing to reset on release.
        reset=keep_session,
        # A few fixed queries (queries.py), prepared once per connection (one round trip each).
        statement_cache_size=32)
    collectors: list[PostgresCollector] = []
    for cls in ALL:
        schedule = schedules.get(cls.name)
        if schedule is None:
            continue
        if cls is TablesCollector and config.table_databases is not None:
            collectors.append(DatabaseTablesCollector(
                pool, config, schedule, dsn=dsn, databases=config.table_databases,
                application_name=APPLICATION_NAME))
        else:
            collectors.append(cls(pool, config, schedule))
    return ServerCollectors(pool, collectors)
