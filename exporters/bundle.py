"""`saasmon bundle`: the exporters a bundle file lists, in one process and one event loop.

Each entry keeps what it has as a process of its own: its listen address, config file, web
config (TLS, basic auth), collectors, connections, self-metrics and `POST /-/reload`. The
process shares the interpreter and the libraries, which is most of an exporter's memory.
Only the exporters listed are imported.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import resource
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError

from saasmon.cli import EXPORTERS, load_kind
from saasmon.runtime.config import (
    YAML_FILE_LIMIT,
    ConfigError,
    StrictModel,
    TooLarge,
    first_error,
    read_limited,
    read_yaml,
)
from saasmon.runtime.exporter import ExporterKind
from saasmon.runtime.logs import SecretRegistry, log_fields, setup_logging
from saasmon.runtime.options import Options, Prepared, prepare
from saasmon.runtime.server import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    ListenError,
    serve,
    split_address,
)

log = logging.getLogger("saasmon.bundle")

# An entry's name is in its log lines and its env prefix, SAASMON_<NAME>_<KEY>.
NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")
# Descriptors beside the HTTP connections: database and Redis connections, files, the
# listener. A rough margin per exporter, for the open-file limit check.
FILES_PER_EXPORTER = 64


class Entry(StrictModel):
    """One exporter of the bundle: its kind and the flags of `saasmon <exporter>`."""

    exporter: str | None = None
    config_file: str | None = Field(None, alias="config.file")
    listen: str | None = Field(None, alias="web.listen-address")
    telemetry_path: str = Field("/metrics", alias="web.telemetry-path")
    web_config: str | None = Field(None, alias="web.config.file")
    max_connections: int | None = Field(None, alias="web.max-connections")
    per_address: int | None = Field(None, alias="web.max-connections-per-address")
    header_timeout: float = Field(DEFAULT_HEADER_TIMEOUT, alias="web.header-timeout")
    body_timeout: float = Field(DEFAULT_BODY_TIMEOUT, alias="web.body-timeout")


@dataclass(frozen=True)
class Item:
    name: str
    kind: str
    options: Options


def _relative_to(base: Path, path: str | None) -> str | None:
    """Paths in the bundle file are relative to its directory, as in prometheus.yml."""
    return str(base / path) if path is not None else None


def parse_bundle(raw: Any, base: Path) -> list[Item]:
    """The entries of a parsed bundle file; ConfigError names the entry and the key."""
    if not isinstance(raw, dict):
        raise ConfigError("config.file: (top level): must be a mapping with the key exporters")
    unknown = sorted(str(key) for key in raw if key != "exporters")
    if unknown:
        raise ConfigError(f"config.file: {unknown[0]}: unknown key (known: exporters)")
    entries = raw.get("exporters")
    if not isinstance(entries, dict) or not entries:
        raise ConfigError("config.file: exporters: must map names to exporters, at least one")
    items: list[Item] = []
    for name, entry in entries.items():
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise ConfigError(f"config.file: exporters: {str(name)[:64]!r} is not a name "
                              "(lower-case letters, digits and dashes, a letter first)")
        try:
            checked = Entry.model_validate(entry if entry is not None else {})
        except ValidationError as exc:
            raise ConfigError(f"{name}: {first_error(exc, '')}") from None
        kind = checked.exporter or name
        if kind not in EXPORTERS:
            hint = "" if checked.exporter else " (name one with exporter:)"
            raise ConfigError(f"{name}: exporter: {kind!r} is not an exporter{hint}; known: "
                              f"{', '.join(EXPORTERS)}")
        options = Options(checked.listen, checked.telemetry_path,
                          _relative_to(base, checked.web_config), checked.max_connections,
                          checked.per_address, checked.header_timeout, checked.body_timeout,
                          _relative_to(base, checked.config_file))
        items.append(Item(name, kind, options))
    return items


def check_addresses(prepared: list[tuple[Item, Prepared]]) -> None:
    """Two entries on one port is an error naming the second (a wildcard host overlaps all)."""
    taken: list[tuple[str | None, int, str]] = []
    for item, ready in prepared:
        host, port = split_address(ready.address)
        for other_host, other_port, other in taken:
            if port == other_port and (host == other_host or host is None
                                       or other_host is None):
                raise ConfigError(f"{item.name}: web.listen-address: port {port} is "
                                  f"{other}'s already")
        taken.append((host, port, item.name))


def load(path: str | None) -> tuple[list[tuple[Item, ExporterKind[Any], Prepared]], bytes]:
    """Every entry checked and its config loaded, plus the file's digest; or ConfigError."""
    if not path:
        raise ConfigError("config.file: a bundle file is required")
    digest = _digest(path)
    items = parse_bundle(read_yaml(path, "config.file"), Path(path).parent)
    loaded: list[tuple[Item, ExporterKind[Any], Prepared]] = []
    for item in items:
        kind = load_kind(item.kind)
        try:
            loaded.append((item, kind, prepare(kind, item.options, item.name)))
        except ConfigError as exc:
            raise ConfigError(f"{item.name}: {exc}") from None
    check_addresses([(item, ready) for item, _, ready in loaded])
    return loaded, digest


def _digest(path: str) -> bytes:
    try:
        return hashlib.sha256(read_limited(path, YAML_FILE_LIMIT)).digest()
    except (OSError, TooLarge):
        return b""  # read_yaml then names the problem


def raise_open_file_limit(needed: int) -> None:
    """Let the process hold every exporter's connections: a bundle needs the sum, which
    passes the usual soft limit of 1024. Raised up to the hard limit; a warning if short."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        log.warning("the open-file limit is below the connection limits: new connections "
                    "may be refused", extra=log_fields(limit=target, needed=needed))


def run_bundle(path: str | None, check: bool, level: str) -> int:
    setup_logging("bundle", level)
    try:
        loaded, digest = load(path)
    except ConfigError as exc:
        print(f"saasmon bundle: {SecretRegistry.mask(str(exc))}", file=sys.stderr)
        return 2
    if check:
        for item, kind, ready in loaded:
            summary = kind.summary(ready.config)
            print(summary if item.name == kind.name else f"{item.name}: {summary}")
        return 0
    assert path is not None
    raise_open_file_limit(sum(ready.server.max_connections + FILES_PER_EXPORTER
                              for _, _, ready in loaded))

    def on_sighup() -> None:
        # SIGHUP re-reads each exporter's config file; the bundle file is read at start.
        if _digest(path) != digest:
            log.warning("the bundle file changed: its exporters, addresses and web settings "
                        "take effect at restart; SIGHUP reloaded each exporter's config file")

    try:
        asyncio.run(serve([(ready.server, ready.config, ready.address)
                           for _, _, ready in loaded], on_sighup))
    except ListenError as exc:
        print(f"saasmon bundle: {exc.server.name}: web.listen-address: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
