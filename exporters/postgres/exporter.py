"""The PostgreSQL exporter as the runtime sees it."""

from __future__ import annotations

from urllib.parse import urlsplit

from exporters.postgres.collectors import ALL
from exporters.postgres.config import PostgresConfig
from exporters.runtime.exporter import ExporterKind, Instance
from exporters.runtime.overrides import longest_timeout
from exporters.runtime.pgpool import collector_pool, keep_session


class PostgresInstance(Instance):
    def __init__(self, config: PostgresConfig) -> None:
        schedules = config.schedules()
        self.pool = collector_pool(
            config.required_dsn, "saasmon_exporter", max_size=config.pool_max_size,
            timeout=longest_timeout(schedules.values(), config.timeout_seconds),
            interval=config.interval_seconds,
            # Read-only SELECTs only (collectors.py): nothing to reset on release.
            reset=keep_session,
            # A dozen fixed queries, prepared once per connection (one round trip each).
            statement_cache_size=32)
        self.collectors = [cls(self.pool, config, schedules[cls.name])
                           for cls in ALL if cls.name in schedules]

    async def close(self) -> None:
        await self.pool.close()


class PostgresExporter(ExporterKind[PostgresConfig]):
    name = "postgres"
    namespace = "pg"
    default_address = ":9630"
    config_model = PostgresConfig

    def secrets(self, config: PostgresConfig) -> list[str]:
        return config.dsn_secrets()

    def build(self, config: PostgresConfig) -> PostgresInstance:
        return PostgresInstance(config)

    def summary(self, config: PostgresConfig) -> str:
        url = urlsplit(config.required_dsn)
        return (f"postgres: config ok: target {config.target!r} at "
                f"{url.hostname}:{url.port or 5432}{url.path}, interval {config.interval_seconds:g}s, "
                f"timeout {config.timeout_seconds:g}s")
