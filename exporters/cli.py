"""`saasmon <exporter>`: flags follow the Prometheus exporter conventions."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
from typing import Any

from saasmon import __version__
from saasmon.runtime.config import ConfigError
from saasmon.runtime.exporter import ExporterKind
from saasmon.runtime.logs import SecretRegistry, setup_logging

# Subcommand -> "module:class". Only the chosen exporter is imported: a Redis exporter
# process then never loads asyncpg, which keeps start-up time and resident memory down.
# Default ports continue from 9630 in the order below; each kind states its own default.
EXPORTERS = {
    "postgres": ("saasmon.postgres.exporter:PostgresExporter",
                 "PostgreSQL: connections, statements, tables, replication, checkpoints."),
    "redis": ("saasmon.redis.exporter:RedisExporter",
              "Redis: memory, keyspace, clients, commands, replication, persistence."),
    "cron": ("saasmon.cron.exporter:CronExporter",
             "Cron jobs: last run, next expected run, missed/failed/slow, heartbeat pings."),
    "integrations": ("saasmon.integrations.exporter:IntegrationsExporter",
                     "Third-party services: status-page probes, app health, delivery failures."),
    "business": ("saasmon.business.exporter:BusinessExporter",
                 "Business, AI and support KPIs from a declarative SQL query pack."),
    "webvitals": ("saasmon.webvitals.exporter:WebVitalsExporter",
                  "Real-user Web Vitals: receives web-vitals beacons, exports histograms."),
    "sms-relay": ("saasmon.smsrelay.exporter:SmsRelayExporter",
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
                                   "products: one subcommand per exporter, each its own process; "
                                   "`saasmon bundle` runs several in one.")
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
                         help="exporter-toolkit web config (TLS, client certificates, basic "
                              "auth, headers, rate limit; see docs/exporters/running.md)")
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
    bundle = subs.add_parser(
        "bundle", help="Several exporters in one process (each keeps its port, config and "
        "self-metrics), as listed in a bundle file.",
        description="Run the exporters a bundle file lists in one process and one event "
        "loop: each on its own listen address with its own config, web config and "
        "self-metrics. See docs/exporters/running.md.")
    bundle.add_argument("--config.file", dest="config", metavar="FILE",
                        default=_env("bundle", "config.file", None),
                        help="YAML bundle file: one entry per exporter (required)")
    bundle.add_argument("--config.check", dest="check", action="store_true",
                        help="validate the bundle file and every exporter's files, then exit")
    bundle.add_argument("--log.level", dest="log_level",
                        choices=["debug", "info", "warn", "error"],
                        default=_env("bundle", "log.level", "info"))
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.exporter == "bundle":
        from saasmon.bundle import run_bundle

        return run_bundle(args.config, args.check, _level(args.log_level))
    kind = load_kind(args.exporter)
    setup_logging(kind.name, _level(args.log_level))
    from saasmon.runtime.options import Options, prepare
    from saasmon.runtime.server import ListenError, serve

    options = Options(args.listen, args.telemetry_path, args.web_config, args.max_connections,
                      args.per_address, args.header_timeout, args.body_timeout, args.config)
    try:
        prepared = prepare(kind, options)
    except ConfigError as exc:
        print(f"saasmon {kind.name}: {SecretRegistry.mask(str(exc))}", file=sys.stderr)
        return 2
    if args.check:
        print(kind.summary(prepared.config))
        return 0
    try:
        asyncio.run(serve([(prepared.server, prepared.config, prepared.address)]))
    except ListenError as exc:
        print(f"saasmon {kind.name}: web.listen-address: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _level(flag: str) -> str:
    return "warning" if flag == "warn" else flag
