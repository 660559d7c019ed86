"""The integrations exporter as the runtime sees it: /probe plus optional database counters."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiohttp import web
from prometheus_client.core import Metric

from saasmon.integrations import status as st
from saasmon.integrations.config import IntegrationsConfig, ModuleConfig, TargetConfig
from saasmon.integrations.probes import Outcome, Prober, families, target_url
from saasmon.runtime.collector import Collector
from saasmon.runtime.exporter import ExporterKind, Instance, Route
from saasmon.runtime.exposition import metrics_response
from saasmon.runtime.families import counter
from saasmon.runtime.logs import SecretRegistry, log_fields
from saasmon.runtime.overrides import longest_timeout
from saasmon.runtime.server import scrape_deadline

if TYPE_CHECKING:
    from saasmon.runtime.pgpool import ReadOnlyPool

log = logging.getLogger("saasmon.integrations")
URL_TARGET = "url"  # the target label of every ad-hoc URL probe: URLs never become labels


class BadRequest(Exception):
    """A /probe request naming no known module or target: one line back, HTTP 400."""


class IntegrationsInstance(Instance):
    def __init__(self, config: IntegrationsConfig) -> None:
        self.config = config
        self.modules = config.all_modules()
        self.targets = config.all_targets()
        self.prober = Prober()
        self.pool: ReadOnlyPool | None = None
        self.collectors: list[Collector] = []
        if config.dsn is not None:
            # Only the database counters need the driver: probes alone never load asyncpg.
            from saasmon.integrations.deliveries import ALL
            from saasmon.runtime.pgpool import collector_pool

            schedules = config.schedules()
            self.pool = collector_pool(
                config.required_dsn, "saasmon_integrations", max_size=config.pool_max_size,
                timeout=longest_timeout(schedules.values(), config.timeout_seconds),
                interval=config.interval_seconds)
            self.collectors = [cls(self.pool, config, schedules[cls.table])
                               for cls in ALL if cls.table in schedules]
        # Every named target's own module starts at 0, so its first failure is an increase.
        self.probes: dict[tuple[str, str, str], int] = {
            (name, t.module, result): 0 for name, t in self.targets.items()
            for result in ("success", "failure")}
        self.failures: dict[tuple[str, str, str], int] = {}
        self.rejected = 0
        self.last_reason: dict[tuple[str, str], str] = {}

    def resolve(self, target: str, module_name: str) -> tuple[str, str, ModuleConfig,
                                                              str, TargetConfig | None]:
        """(target label, module name, module, URL to fetch, named target or None)."""
        if not target:
            raise BadRequest("target parameter is missing")
        named = self.targets.get(target)
        if named is not None:
            module_name = module_name or named.module
        elif not module_name:
            raise BadRequest(f"unknown target {target!r} and no module given")
        module = self.modules.get(module_name)
        if module is None:
            raise BadRequest(f"unknown module {module_name!r} "
                             f"(known: {', '.join(sorted(self.modules))})")
        if named is not None:
            return target, module_name, module, target_url(named.url, module), named
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            # A URL-like value is not echoed: it may carry credentials.
            shown = "(not an http or https URL)" if "://" in target else repr(target[:64])
            raise BadRequest(f"unknown target {shown} "
                             f"(known: {', '.join(sorted(self.targets)) or 'none'})")
        if not self.config.allow_url_targets:
            raise BadRequest("URL targets are disabled (allow_url_targets: false); "
                             "probe a named target")
        try:
            parts.port  # noqa: B018 - raises on a non-numeric or out-of-range port
        except ValueError:
            raise BadRequest("target URL has an invalid port") from None
        return URL_TARGET, module_name, module, target_url(target, module), None

    async def probe(self, request: web.Request) -> web.Response:
        try:
            label, module_name, module, url, named = self.resolve(
                request.query.get("target", ""), request.query.get("module", ""))
        except BadRequest as exc:
            self.rejected += 1
            # The parameter is echoed masked: a URL target may carry credentials.
            return web.Response(status=400, text=SecretRegistry.mask(str(exc))[:300] + "\n")
        budget = min(module.timeout_seconds, scrape_deadline(request))
        outcome, detail = await self.prober.probe(url, module, named, budget)
        self._count(label, module_name, outcome, detail)
        return await metrics_response(request, families(outcome))

    def _count(self, label: str, module_name: str, outcome: Outcome, detail: str) -> None:
        result = "success" if outcome.success else "failure"
        key = (label, module_name, result)
        self.probes[key] = self.probes.get(key, 0) + 1
        if not outcome.success:
            failed = (label, module_name, outcome.reason)
            self.failures[failed] = self.failures.get(failed, 0) + 1
        if label == URL_TARGET:
            return  # ad-hoc URLs are the caller's business: no log lines per request
        previous = self.last_reason.get((label, module_name), "none")
        if outcome.reason != previous:
            # One line when a target starts failing, changes reason or recovers.
            fields = log_fields(target=label, module=module_name, reason=outcome.reason,
                                error=SecretRegistry.mask(detail)[:300])
            if outcome.success:
                log.info("probe recovered", extra=fields)
            else:
                log.warning("probe failed", extra=fields)
        self.last_reason[(label, module_name)] = outcome.reason

    def families(self) -> Iterable[Metric]:
        yield counter("integration_probes", "Probes run through /probe, by target (\"url\" for "
                      "ad-hoc URL targets), module and result (success, failure).",
                      labels=("target", "module", "result"), rows=sorted(self.probes.items()))
        yield counter("integration_probe_failures", "Failed probes by target, module and "
                      f"reason ({', '.join(st.REASONS[1:])}).",
                      labels=("target", "module", "reason"), rows=sorted(self.failures.items()))
        yield counter("integration_probe_rejected", "/probe requests answered 400 (unknown "
                      "module or target, URL targets disabled).", self.rejected)

    async def close(self) -> None:
        await self.prober.close()
        if self.pool is not None:
            await self.pool.close()


class IntegrationsExporter(ExporterKind[IntegrationsConfig]):
    name = "integrations"
    namespace = "integration"
    default_address = ":9633"
    config_model = IntegrationsConfig
    routes = (Route("GET", "/probe", "probe"),)  # behind basic auth, like /metrics

    def secrets(self, config: IntegrationsConfig) -> list[str]:
        return config.secrets()

    def build(self, config: IntegrationsConfig) -> IntegrationsInstance:
        return IntegrationsInstance(config)

    def summary(self, config: IntegrationsConfig) -> str:
        targets = config.all_targets()
        names = ", ".join(f"{n} ({t.module})" for n, t in sorted(targets.items()))
        line = (f"integrations: config ok: {len(config.all_modules())} module(s), "
                f"{len(targets)} target(s) [{names}], url targets "
                f"{'allowed' if config.allow_url_targets else 'off'}")
        if config.dsn_value:
            url = urlsplit(config.dsn_value)
            line += (f", database {url.hostname}:{url.port or 5432}{url.path} every "
                     f"{config.interval_seconds:g}s")
        return line
