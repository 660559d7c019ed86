"""`saasmon <exporter>`: flags follow the Prometheus exporter conventions."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from exporters import __version__
from exporters.runtime.config import ConfigError, load_config
from exporters.runtime.exporter import ExporterKind
from exporters.runtime.logs import SecretRegistry, setup_logging


def exporter_kinds() -> dict[str, ExporterKind[Any]]:
    # Imported here so `--help` stays fast and one broken driver cannot hide the others.
    from exporters.postgres.exporter import PostgresExporter
    from exporters.redis.exporter import RedisExporter

    kinds: list[ExporterKind[Any]] = [PostgresExporter(), RedisExporter()]
    return {kind.name: kind for kind in kinds}


def _env(kind: str, flag: str, default: str | None) -> str | None:
    """Flags may also come from SAASMON_<EXPORTER>_<FLAG> (dots and dashes as _)."""
    name = f"SAASMON_{kind}_{flag}".upper().replace(".", "_").replace("-", "_")
    return os.environ.get(name, default)


def parser(kinds: dict[str, ExporterKind[Any]]) -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="saasmon", description="Prometheus exporters for SaaS "
                                   "products: one subcommand per exporter, each its own process.")
    root.add_argument("--version", action="version", version=f"saasmon {__version__}")
    subs = root.add_subparsers(dest="exporter", required=True, metavar="EXPORTER")
    for name, kind in kinds.items():
        sub = subs.add_parser(name, help=kind.description, description=kind.description)
        sub.add_argument("--web.listen-address", dest="listen",
                         default=_env(name, "web.listen-address", kind.default_address),
                         help="host:port to listen on (default %(default)s)")
        sub.add_argument("--web.telemetry-path", dest="telemetry_path",
                         default=_env(name, "web.telemetry-path", "/metrics"),
                         help="path under which to expose metrics (default %(default)s)")
        sub.add_argument("--web.config.file", dest="web_config",
                         default=_env(name, "web.config.file", None),
                         help="exporter-toolkit web config: TLS and basic auth")
        sub.add_argument("--config.file", dest="config",
                         default=_env(name, "config.file", None),
                         help=f"YAML config file (keys also settable as SAASMON_{name.upper()}_<KEY>)")
        sub.add_argument("--config.check", dest="check", action="store_true",
                         help="validate the config files and exit")
        sub.add_argument("--log.level", dest="log_level",
                         choices=["debug", "info", "warn", "error"],
                         default=_env(name, "log.level", "info"))
    return root


def main(argv: list[str] | None = None) -> int:
    kinds = exporter_kinds()
    args = parser(kinds).parse_args(argv)
    kind = kinds[args.exporter]
    setup_logging(kind.name, "warning" if args.log_level == "warn" else args.log_level)
    from exporters.runtime.server import ExporterServer, serve, split_address
    from exporters.runtime.webconfig import load_web_config

    try:
        if not args.telemetry_path.startswith("/"):
            raise ConfigError("web.telemetry-path: must start with /")
        split_address(args.listen)
        web_config = load_web_config(args.web_config)
        config = load_config(kind.config_model, args.config, kind.name)
        SecretRegistry.add(*kind.secrets(config))
    except ConfigError as exc:
        print(f"saasmon {kind.name}: {SecretRegistry.mask(str(exc))}", file=sys.stderr)
        return 2
    if args.check:
        print(kind.summary(config))
        return 0
    server = ExporterServer(kind, args.config, args.telemetry_path, web_config)
    try:
        asyncio.run(serve(server, config, args.listen))
    except OSError as exc:
        print(f"saasmon {kind.name}: web.listen-address: {exc.strerror}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
