"""The Redis exporter as the runtime sees it: one client and its collectors per target."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from saasmon.redis.collectors import InfoCollector, KeyPatternCollector, client_for
from saasmon.redis.config import RedisConfig
from saasmon.redis.keyscan import ScanStore
from saasmon.runtime.collector import Collector
from saasmon.runtime.exporter import ExporterKind, Instance
from saasmon.runtime.overrides import longest_timeout


class RedisInstance(Instance):
    def __init__(self, config: RedisConfig, scans: ScanStore) -> None:
        self.clients: list[aioredis.Redis] = []
        self.collectors: list[Collector] = []
        schedules = config.schedules()
        if not config.key_patterns:
            schedules.pop(KeyPatternCollector.name, None)
        states = scans.states(config)
        timeout = longest_timeout(schedules.values(), config.timeout_seconds)
        for target in config.targets:
            client = client_for(target, timeout)
            self.clients.append(client)
            if InfoCollector.name in schedules:
                self.collectors.append(
                    InfoCollector(target, client, config, schedules[InfoCollector.name]))
            if KeyPatternCollector.name in schedules:
                self.collectors.append(KeyPatternCollector(
                    target, client, config, schedules[KeyPatternCollector.name],
                    states[target.name]))

    async def close(self) -> None:
        # The pool was handed in, so the client only closes it when told to.
        await asyncio.gather(*(c.aclose(close_connection_pool=True) for c in self.clients),
                             return_exceptions=True)


class RedisExporter(ExporterKind[RedisConfig]):
    name = "redis"
    namespace = "redis"
    default_address = ":9631"
    config_model = RedisConfig

    def __init__(self) -> None:
        # Key-pattern passes outlive reloads, as cron's heartbeats do.
        self.scans = ScanStore()

    def secrets(self, config: RedisConfig) -> list[str]:
        return [s for target in config.targets for s in target.secrets()]

    def build(self, config: RedisConfig) -> RedisInstance:
        return RedisInstance(config, self.scans)

    def summary(self, config: RedisConfig) -> str:
        names = ", ".join(t.name for t in config.targets)
        return (f"redis: config ok: {len(config.targets)} target(s) [{names}], "
                f"interval {config.interval_seconds:g}s, timeout {config.timeout_seconds:g}s")
