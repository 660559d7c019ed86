"""`saasmon <exporter>`: flags follow the Prometheus exporter conventions."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from typing import Any

from exporters import __version__
from exporters.runtime.config import ConfigError, load_config
from exporters.runtime.exporter import ExporterKind
from exporters.runtime.logs import SecretRegistry, setup_logging

# Subcommand -> "module:class". Only the chosen exporter is imported: a Redis exporter
# process then never loads asyncpg, which keeps start-up time and resident memory down.
# Default ports continue from 9630 in the order below; each kind states its own default.
EXPORTERS = {
    "postgres": ("exporters.postgres.exporter:PostgresExporter",
                 "PostgreSQL: connections, statements, tables, replication, checkpoints."),
    "redis": ("exporters.redis.exporter:RedisExporter",
              "Redis: memory, keyspace, clients, commands, replication, persistence."),
    "cron": ("exporters.cron.exporter:CronExporter",
             "Cron jobs: last run, next expected run, missed/failed/slow, heartbeat pings."),
    "integrations": ("exporters.integrations.exporter:IntegrationsExporter",
                     "Third-party services: status-page probes, app health, delivery failures."),
    "business": ("exporters.business.exporter:BusinessExporter",
                 "Business, AI and support KPIs from a declarative SQL query pack."),
    "webvitals": ("exporters.webvitals.exporter:WebVitalsExporter",
                  "Real-user Web Vitals: receives web-vitals beacons, exports histograms."),
    "sms-relay": ("exporters.smsrelay.exporter:SmsRelayExporter",
                  "Alertmanager webhook to SMS through the Twilio API."),
}


def load_kind(name: str) -> ExporterKind[Any]:
    module, _, cls = EXPORTERS[name][0].partition(":")
    kind: ExporterKind[Any] = getattr(importlib.import_module(module), cls)()
    return kind


def _env(kind: str, flag: str, default: str | None) -> str | None:
    """Flags may also come from SAASMON_<EXPORTER>_<FLAG> (dots and dashes as _)."""
    name = f"SAASMON_{kind}_{flag}".upper().replace(".", "_").replace("-", "_")
    return os.environ.get(name, default)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="saasmon", description="Prometheus exporters for SaaS "
                                   "products: one subcommand per exporter, each its own process.")
    root.add_argument("--version", action="version", version=f"saasmon {__version__}")
    subs = root.add_subparsers(dest="exporter", required=True, metavar="EXPORTER")
    for name, (_, description) in EXPORTERS.items():
        sub = subs.add_parser(name, help=description, description=description)
        sub.add_argument("--web.listen-address", dest="listen", metavar="HOST:PORT",
                         default=_env(name, "web.listen-address", None),
                         help="host:port to listen on (default: this exporter's port, "
                              "see docs/exporters/running.md)")
        sub.add_argument("--web.telemetry-path", dest="telemetry_path", metavar="PATH",
                         default=_env(name, "web.telemetry-path", "/metrics"),
                         help="path under which to expose metrics (default %(default)s)")
        sub.add_argument("--web.config.file", dest="web_config", metavar="FILE",
                         default=_env(name, "web.config.file", None),
                         help="exporter-toolkit web config: TLS and basic auth")
        sub.add_argument("--web.max-connections", dest="max_connections", metavar="N",
                         type=int, default=_env(name, "web.max-connections", None),
                         help="open connections served at once; more get a 503 "
                              "(default: per exporter, see docs/exporters/running.md)")
        sub.add_argument("--web.max-connections-per-address", dest="per_address", metavar="N",
                         type=int, default=_env(name, "web.max-connections-per-address", None),
                         help="open connections one client address may hold (default: a "
                              "quarter of --web.max-connections)")
        sub.add_argument("--web.header-timeout", dest="header_timeout", metavar="SECONDS",
                         type=float, default=_env(name, "web.header-timeout", "60"),
                         help="close a connection without a complete request after this "
                              "long, idle keep-alive included (default %(default)s)")
        sub.add_argument("--web.body-timeout", dest="body_timeout", metavar="SECONDS",
                         type=float, default=_env(name, "web.body-timeout", "10"),
                         help="answer 408 and close when a request body has not arrived "
                              "this long after its headers (default %(default)s)")
        sub.add_argument("--config.file", dest="config", metavar="FILE",
                         default=_env(name, "config.file", None),
                         help=f"YAML config file (keys also settable as SAASMON_{name.upper()}_<KEY>)")
        sub.add_argument("--config.check", dest="check", action="store_true",
                         help="validate the config files and exit")
        sub.add_argument("--log.level", dest="log_level",
                         choices=["debug", "info", "warn", "error"],
                         default=_env(name, "log.level", "info"))
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    kind = load_kind(args.exporter)
    args.listen = args.listen or kind.default_address
    setup_logging(kind.name, "warning" if args.log_level == "warn" else args.log_level)
    from exporters.runtime.server import ExporterServer, serve, split_address
    from exporters.runtime.webconfig import load_web_config

    try:
        if not args.telemetry_path.startswith("/"):
            raise ConfigError("web.telemetry-path: must start with /")
        split_address(args.listen)
        if args.max_connections is not None and args.max_connections < 1:
            raise ConfigError("web.max-connections: must be at least 1")
        if not args.header_timeout > 0:
            raise ConfigError("web.header-timeout: must be more than 0")
        if args.per_address is not None and args.per_address < 1:
            raise ConfigError("web.max-connections-per-address: must be at least 1")
        if not args.body_timeout > 0:
            raise ConfigError("web.body-timeout: must be more than 0")
        web_config = load_web_config(args.web_config)
        config = load_config(kind.config_model, args.config, kind.name)
        SecretRegistry.add(*kind.secrets(config))
    except ConfigError as exc:
        print(f"saasmon {kind.name}: {SecretRegistry.mask(str(exc))}", file=sys.stderr)
        return 2
    if args.check:
        print(kind.summary(config))
        return 0
    server = ExporterServer(kind, args.config, args.telemetry_path, web_config,
                            args.max_connections, args.header_timeout, args.per_address,
                            args.body_timeout)
    try:
        asyncio.run(serve(server, config, args.listen))
    except OSError as exc:
        print(f"saasmon {kind.name}: web.listen-address: {exc.strerror}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
