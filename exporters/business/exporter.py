"""The business exporter as the runtime sees it: one collector per pack query."""

from __future__ import annotations

from urllib.parse import urlsplit

from exporters.business.collectors import (
    ConnectionPool,
    PackQueryCollector,
    effective_schedule,
)
from exporters.business.config import NAMESPACE, BusinessConfig
from exporters.runtime.exporter import ExporterKind, Instance


class BusinessInstance(Instance):
    def __init__(self, config: BusinessConfig) -> None:
        self.pools = {"fast": ConnectionPool(config, "fast"),
                      "slow": ConnectionPool(config, "slow")}
        self.collectors = []
        for query in config.pack.queries:
            override = config.queries.get(query.name)
            if override is not None and not override.enabled:
                continue
            interval, _ = effective_schedule(query, config)
            lane = "slow" if interval >= config.slow_interval_seconds else "fast"
            self.collectors.append(PackQueryCollector(query, self.pools[lane], config))

    async def close(self) -> None:
        for pool in self.pools.values():
            await pool.close()


class BusinessExporter(ExporterKind[BusinessConfig]):
    name = "business"
    namespace = NAMESPACE
    default_address = ":9634"
    config_model = BusinessConfig

    def secrets(self, config: BusinessConfig) -> list[str]:
        return config.dsn_secrets()

    def build(self, config: BusinessConfig) -> BusinessInstance:
        return BusinessInstance(config)

    def summary(self, config: BusinessConfig) -> str:
        url = urlsplit(config.required_dsn)
        pack = config.pack
        enabled = [q for q in pack.queries
                   if config.queries.get(q.name) is None or config.queries[q.name].enabled]
        return (f"business: config ok: target {config.target!r} at "
                f"{url.hostname}:{url.port or 5432}{url.path}, pack "
                f"{config.pack_file or 'default'}: {len(enabled)} of {len(pack.queries)} "
                f"queries, {len(pack.metric_names())} metrics")
