"""Multi-target config of the PostgreSQL exporter, and how a /probe request resolves.

A probe names a target (a configured name, or `host[:port][/database]` when the allow-list
matches it) and may name an auth module; the credentials always come from the module in
the config file, never from the URL. Anything else is refused before a connection is tried.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Annotated, Literal
from urllib.parse import quote, unquote, urlencode, urlsplit, urlunsplit

from pydantic import Field, SecretStr, StringConstraints, model_validator

from saasmon.runtime.config import ConfigError, StrictModel, key_part, read_secret_file

Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
# PostgreSQL cuts identifiers at 63 bytes.
Database = Annotated[str, StringConstraints(min_length=1, max_length=63)]
SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
DEFAULT_PORT = 5432


class AuthModule(StrictModel):
    """Credentials for probed targets: `user` (+ `password_file`) or a whole `dsn_file`.

    A DSN file lends its user, password and parameters; the target's host, port (and
    database, when the target names one) replace the DSN's own.
    """

    user: Annotated[str, StringConstraints(min_length=1, max_length=63)] | None = None
    password_file: str | None = None
    dsn_file: str | None = None
    database: Database | None = None  # when the target names none; else "postgres"
    sslmode: SslMode | None = None
    sslrootcert: str | None = None
    # Filled from the files by PostgresConfig's validator (it knows the module's key).
    password: SecretStr | None = Field(default=None, exclude=True)
    dsn: SecretStr | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _one_source(self) -> AuthModule:
        if (self.user is None) == (self.dsn_file is None):
            raise ValueError("set one of user (with password_file) and dsn_file")
        if self.password_file is not None and self.dsn_file is not None:
            raise ValueError("password_file goes with user, not dsn_file")
        return self

    def load(self, key: str) -> None:
        """Read the module's secret file; errors name `key` (auth_modules.<name>)."""
        if self.password_file is not None:
            object.__setattr__(self, "password", read_secret_file(
                self.password_file, f"{key}.password_file"))
        if self.dsn_file is not None:
            dsn = read_secret_file(self.dsn_file, f"{key}.dsn_file")
            url = urlsplit(dsn.get_secret_value())
            if url.scheme not in ("postgres", "postgresql"):
                raise ConfigError(f"{key}.dsn_file: not a postgresql:// URL")
            object.__setattr__(self, "dsn", dsn)

    def secrets(self) -> list[str]:
        found = [s.get_secret_value() for s in (self.password, self.dsn) if s is not None]
        if self.dsn is not None and (password := urlsplit(found[-1]).password):
            found.append(password)
        if self.password is not None:
            # As dsn_for writes it into the URL it builds.
            found.append(quote(self.password.get_secret_value(), safe=""))
        return found

    def dsn_for(self, host: str, port: int, database: str | None) -> str:
        """The connection URL for one target (it holds the password: never shown)."""
        netloc_host = f"[{host}]" if ":" in host else host
        params: dict[str, str] = {}
        if self.dsn is not None:
            url = urlsplit(self.dsn.get_secret_value())
            userinfo = url.netloc.rpartition("@")[0]
            path = f"/{quote(database, safe='')}" if database else (
                url.path if url.path not in ("", "/") else "/postgres")
            query = url.query
        else:
            assert self.user is not None
            userinfo = quote(self.user, safe="")
            if self.password is not None:
                userinfo += ":" + quote(self.password.get_secret_value(), safe="")
            path = "/" + quote(database or self.database or "postgres", safe="")
            query = ""
        if self.sslmode is not None:
            params["sslmode"] = self.sslmode
        if self.sslrootcert is not None:
            params["sslrootcert"] = self.sslrootcert
        if params:
            query = "&".join(filter(None, [query, urlencode(params)]))
        netloc = f"{userinfo}@{netloc_host}:{port}" if userinfo else f"{netloc_host}:{port}"
        return urlunsplit(("postgresql", netloc, path, query, ""))


class ProbeTarget(StrictModel):
    host: Annotated[str, StringConstraints(min_length=1, max_length=253)]
    port: int = Field(default=DEFAULT_PORT, ge=1, le=65535)
    database: Database | None = None
    auth_module: str | None = None  # else the request's, else default_auth_module
    allocated_storage_bytes: int | None = Field(default=None, gt=0)


class ProbeSettings(StrictModel):
    targets: dict[Name, ProbeTarget] = Field(default_factory=dict, max_length=1000)
    # host[:port][/database] targets not listed above: refused unless a pattern matches
    # the host as written in the request (a shell pattern on names, or a CIDR network for
    # IP addresses; a name is matched as given, not as DNS resolves it).
    allow_hosts: list[Annotated[str, StringConstraints(min_length=1, max_length=253)]] = \
        Field(default_factory=list, max_length=100)
    allow_ports: list[Annotated[int, Field(ge=1, le=65535)]] = Field(
        default=[DEFAULT_PORT], min_length=1, max_length=20)
    # Targets with a pool at once; the least recently probed idle one makes room.
    max_targets: int = Field(default=16, ge=1, le=1000)
    pool_max_size: int = Field(default=2, ge=1, le=10)  # per target, as the DSN's pool
    # A target not probed for this long has its pool closed and its state dropped;
    # default max(60 s, 4 x interval_seconds).
    idle_close_seconds: float | None = Field(default=None, gt=0, le=86400)

    @model_validator(mode="after")
    def _patterns(self) -> ProbeSettings:
        for index, pattern in enumerate(self.allow_hosts):
            if "/" in pattern:
                try:
                    ipaddress.ip_network(pattern, strict=False)
                except ValueError:
                    raise ConfigError(f"probe.allow_hosts.{index}: {pattern!r} is not a CIDR "
                                      "network (host patterns hold no '/')") from None
        return self

    def host_allowed(self, host: str, port: int) -> bool:
        if port not in self.allow_ports:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        for pattern in self.allow_hosts:
            if "/" in pattern:
                if address is not None and address in ipaddress.ip_network(pattern, strict=False):
                    return True
            elif fnmatchcase(host, pattern.lower()):
                return True
        return False


def check_auth(modules: dict[str, AuthModule], default: str | None,
               probe: ProbeSettings) -> None:
    """Every module name used exists; each module's secret file is read."""
    for name, module in modules.items():
        module.load(f"auth_modules.{key_part(name)}")
    if default is not None and default not in modules:
        raise ConfigError(f"default_auth_module: no auth module {default!r} "
                          f"(known: {', '.join(sorted(modules)) or 'none'})")
    for name, target in probe.targets.items():
        if target.auth_module is not None and target.auth_module not in modules:
            raise ConfigError(f"probe.targets.{name}.auth_module: no auth module "
                              f"{target.auth_module!r} (known: "
                              f"{', '.join(sorted(modules)) or 'none'})")
        if target.auth_module is None and default is None:
            raise ConfigError(f"probe.targets.{name}.auth_module: required when "
                              "default_auth_module is not set")
    if probe.allow_hosts and default is None:
        raise ConfigError("probe.allow_hosts: needs default_auth_module (a request may also "
                          "name one with auth_module=)")


class Refused(Exception):
    """A /probe request refused before any connection: HTTP `status`, one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Resolved:
    label: str  # the `target` label: the configured name, or host:port/database
    module: str
    dsn: str
    allocated_storage_bytes: int | None

    @property
    def key(self) -> tuple[str, str]:
        return self.label, self.module


def _shown(value: str) -> str:
    """A request value fit to echo: short, one line, never a URL (it may hold a password)."""
    if "://" in value or "@" in value:
        return "(a URL or user@host, not shown)"
    return repr(value[:64]) if value.isprintable() else "(unprintable)"


def resolve(probe: ProbeSettings, modules: dict[str, AuthModule], default: str | None,
            target: str, auth_module: str) -> Resolved:
    if not target:
        raise Refused(400, "target parameter is missing")
    if auth_module and auth_module not in modules:
        raise Refused(400, f"unknown auth_module {_shown(auth_module)} "
                           f"(known: {', '.join(sorted(modules)) or 'none'})")
    named = probe.targets.get(target)
    if named is not None:
        module_name = auth_module or named.auth_module or default
        assert module_name is not None  # config check: a named target always has one
        dsn = modules[module_name].dsn_for(named.host, named.port, named.database)
        return Resolved(target, module_name, dsn, named.allocated_storage_bytes)
    if any(c in target for c in "@?#\\") or "://" in target or not target.isprintable() \
            or any(c.isspace() for c in target):
        raise Refused(400, f"target {_shown(target)} is not a configured name nor "
                           "host[:port][/database]; credentials come from auth modules, "
                           "never the URL")
    parts = urlsplit("//" + target)
    try:
        port = parts.port or DEFAULT_PORT
    except ValueError:
        raise Refused(400, f"target {_shown(target)} has an invalid port") from None
    host = parts.hostname or ""
    database = parts.path.removeprefix("/") or None
    if not host or (database is not None and ("/" in database or len(database) > 63)):
        raise Refused(400, f"target {_shown(target)} is not a configured name nor "
                           "host[:port][/database]")
    if not probe.host_allowed(host, port):
        known = ", ".join(sorted(probe.targets)) or "none"
        raise Refused(403, f"target {_shown(target)} is not allowed: not a configured target "
                           f"(known: {known}) and not matched by probe.allow_hosts and "
                           "probe.allow_ports")
    module_name = auth_module or default
    assert module_name is not None  # config check: allow_hosts needs default_auth_module
    dsn = modules[module_name].dsn_for(host, port, database)
    shown_host = f"[{host}]" if ":" in host else host
    label = f"{shown_host}:{port}/{unquote(urlsplit(dsn).path.removeprefix('/'))}"
    return Resolved(label, module_name, dsn, None)
