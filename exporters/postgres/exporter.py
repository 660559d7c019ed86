"""The PostgreSQL exporter as the runtime sees it."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from aiohttp import web
from prometheus_client.core import Metric

from saasmon.postgres.assembly import ServerCollectors, assemble
from saasmon.postgres.config import PostgresConfig
from saasmon.postgres.probe import Prober
from saasmon.runtime.collector import Collector
from saasmon.runtime.exporter import ExporterKind, Instance, Route


class PostgresInstance(Instance):
    def __init__(self, config: PostgresConfig) -> None:
        # No DSN: a probe-only exporter; /metrics then holds the exporter's own metrics.
        self.server: ServerCollectors | None = None
        self.collectors: list[Collector] = []
        if config.dsn_value is not None:
            self.server = assemble(config, config.dsn_value, pool_max_size=config.pool_max_size)
            self.collectors = list(self.server.collectors)
        self.prober = Prober(config)

    async def probe(self, request: web.Request) -> web.StreamResponse:
        return await self.prober.handle(request)

    def families(self) -> Iterable[Metric]:
        return self.prober.families()

    async def close(self) -> None:
        await self.prober.close()
        if self.server is not None:
            await self.server.close()


class PostgresExporter(ExporterKind[PostgresConfig]):
    name = "postgres"
    namespace = "pg"
    default_address = ":9630"
    config_model = PostgresConfig
    routes = (Route("GET", "/probe", "probe"),)  # behind basic auth, like /metrics

    def secrets(self, config: PostgresConfig) -> list[str]:
        return config.all_secrets()

    def build(self, config: PostgresConfig) -> PostgresInstance:
        return PostgresInstance(config)

    def summary(self, config: PostgresConfig) -> str:
        line = "postgres: config ok: "
        if config.dsn_value is not None:
            url = urlsplit(config.dsn_value)
            line += (f"target {config.target!r} at {url.hostname}:{url.port or 5432}{url.path}, ")
        else:
            line += "no dsn (probe only), "
        line += (f"interval {config.interval_seconds:g}s, timeout {config.timeout_seconds:g}s")
        if config.probing or config.auth_modules:
            allow = ", ".join(config.probe.allow_hosts) or "none"
            line += (f"; probe: {len(config.probe.targets)} target(s) "
                     f"[{', '.join(sorted(config.probe.targets))}], allow_hosts [{allow}], "
                     f"{len(config.auth_modules)} auth module(s), at most "
                     f"{config.probe.max_targets} at once")
        return line
