"""The business exporter as the runtime sees it: one collector per pack query."""

from __future__ import annotations

from urllib.parse import urlsplit

from saasmon.business.collectors import ConnectionPool, PackQueryCollector
from saasmon.business.config import NAMESPACE, BusinessConfig
from saasmon.runtime.exporter import ExporterKind, Instance
from saasmon.runtime.overrides import Schedule, longest_timeout


class BusinessInstance(Instance):
    def __init__(self, config: BusinessConfig) -> None:
        schedules = config.schedules()

        def lane(schedule: Schedule) -> str:
            return "slow" if schedule.interval >= config.slow_interval_seconds else "fast"

        # Each lane allows its slowest query's timeout; a lane without queries never
        # connects, so its fallback is never used.
        self.pools = {name: ConnectionPool(config, name, longest_timeout(
            (s for s in schedules.values() if lane(s) == name), default=10.0))
            for name in ("fast", "slow")}
        self.collectors = [PackQueryCollector(q, self.pools[lane(s)], config, s)
                           for q in config.pack.queries if (s := schedules.get(q.name))]

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
        enabled = config.schedules()
        return (f"business: config ok: target {config.target!r} at "
                f"{url.hostname}:{url.port or 5432}{url.path}, pack "
                f"{config.pack_file or 'default'}: {len(enabled)} of {len(pack.queries)} "
                f"queries, {len(pack.metric_names())} metrics")
