"""One exporter's start-up options (the `saasmon <exporter>` flags), checked the same way
whether they come from the command line or from an entry of a bundle file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from saasmon.runtime.config import ConfigError, load_config
from saasmon.runtime.exporter import ExporterKind
from saasmon.runtime.logs import SecretRegistry
from saasmon.runtime.server import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    ExporterServer,
    split_address,
)
from saasmon.runtime.webconfig import load_web_config


@dataclass(frozen=True)
class Options:
    """The flags, by their names: `listen` is --web.listen-address, and so on."""

    listen: str | None = None
    telemetry_path: str = "/metrics"
    web_config: str | None = None
    max_connections: int | None = None
    per_address: int | None = None
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    config: str | None = None


@dataclass(frozen=True)
class Prepared:
    """A checked exporter, ready to serve: its server, loaded config and address."""

    server: ExporterServer
    config: Any
    address: str


def prepare(kind: ExporterKind[Any], options: Options, name: str | None = None) -> Prepared:
    """Check the options, read the web config and the config; ConfigError names the key.

    `name` (default: the kind's) prefixes the config's env overrides, SAASMON_<NAME>_<KEY>.
    """
    name = name or kind.name
    address = options.listen or kind.default_address
    if not options.telemetry_path.startswith("/"):
        raise ConfigError("web.telemetry-path: must start with /")
    split_address(address)
    if options.max_connections is not None and options.max_connections < 1:
        raise ConfigError("web.max-connections: must be at least 1")
    if not options.header_timeout > 0:
        raise ConfigError("web.header-timeout: must be more than 0")
    if options.per_address is not None and options.per_address < 1:
        raise ConfigError("web.max-connections-per-address: must be at least 1")
    if not options.body_timeout > 0:
        raise ConfigError("web.body-timeout: must be more than 0")
    web_config = load_web_config(options.web_config)
    config = load_config(kind.config_model, options.config, name)
    SecretRegistry.add(*kind.secrets(config))
    server = ExporterServer(kind, options.config, options.telemetry_path, web_config,
                            options.max_connections, options.header_timeout,
                            options.per_address, options.body_timeout, name=name)
    return Prepared(server, config, address)
