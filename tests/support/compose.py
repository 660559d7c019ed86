"""Reading docker-compose.yml the way compose does, for the tests of the container bundle.

No container engine is needed: what a service listens on, which host names reach it,
what it mounts and which secrets it gets are all in the file. The helpers here resolve
those, so tests can check that every address one part of the stack uses for another is
a service that really listens there.
"""

from __future__ import annotations

import posixpath
import re
import subprocess
from pathlib import Path
from typing import Any

from tests.support.yamlfile import load_yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
SECRETS_SCRIPT = REPO / "deploy" / "secrets" / "create.sh"
SECRETS_IN_CONTAINER = "/run/secrets/"
SECRETS_DIR_DEFAULT = "${SAASMON_SECRETS_DIR:-./deploy/secrets/local}"
# Ports an image listens on without being told (its documented default).
IMAGE_DEFAULT_PORTS = {"postgres": 5432, "redis": 6379, "grafana/grafana": 3000}
# A command token that names a port to listen on: `:9630`, `0.0.0.0:9700`,
# `--web.listen-address=:9090`, or a bare port number (python -m http.server 8000).
LISTEN_TOKEN = re.compile(r"^(?:--[\w.-]+=)?(?:[\w.-]*:)?(\d{2,5})$")
# A token naming a time or size ("256mb") or a flag value that is a number but no port.
NOT_A_PORT_AFTER = {"--rps", "--duration", "--ws-clients", "--maxmemory", "--days"}


def load_compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE_FILE)
    return data


def services() -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = load_compose()["services"]
    return result


def command_tokens(service: dict[str, Any]) -> list[str]:
    tokens: list[str] = []
    for key in ("entrypoint", "command"):
        value = service.get(key)
        if isinstance(value, str):
            tokens += value.split()
        elif isinstance(value, list):
            tokens += [str(part) for part in value]
    return tokens


def image_name(service: dict[str, Any]) -> str:
    image: str = service.get("image", "")
    return image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image


def bundle_entries(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The entries of the bundle file a `saasmon bundle` service runs ({} for others), each
    with `config.file` made a path in the container."""
    tokens = command_tokens(service)
    if "entrypoint" in service or not tokens or tokens[0] != "bundle":
        return {}
    path = tokens[tokens.index("--config.file") + 1]
    local = container_path(service, path)
    assert local is not None and local.is_file(), f"bundle file {path} not mounted"
    entries: dict[str, dict[str, Any]] = load_yaml(local)["exporters"]
    # Paths in a bundle file are relative to its directory.
    return {name: {**entry, "config.file": posixpath.join(posixpath.dirname(path),
                                                          entry["config.file"])}
            for name, entry in entries.items()}


def listening_ports(service: dict[str, Any]) -> set[int]:
    """Ports the service's own process listens on, from its command (and bundle file) or
    its image default."""
    tokens = command_tokens(service)
    tokens += [str(entry["web.listen-address"]) for entry in bundle_entries(service).values()]
    ports = {int(match[1]) for previous, token in zip(["", *tokens], tokens, strict=False)
             if previous not in NOT_A_PORT_AFTER and (match := LISTEN_TOKEN.match(token))}
    default = IMAGE_DEFAULT_PORTS.get(image_name(service))
    if default is not None and not ports:
        ports.add(default)
    return ports


def namespace_owner(name: str, service: dict[str, Any]) -> str:
    """The service whose network namespace `name` runs in (itself unless network_mode)."""
    mode = service.get("network_mode", "")
    return mode.removeprefix("service:") if mode.startswith("service:") else name


def host_names(name: str, service: dict[str, Any]) -> set[str]:
    names = {name}
    for network in (service.get("networks") or {}).values():
        names |= set((network or {}).get("aliases", []))
    return names


def endpoints() -> dict[tuple[str, int], str]:
    """(host name, port) -> the service answering there, as seen from another container."""
    all_services = services()
    found: dict[tuple[str, int], str] = {}
    for name, service in all_services.items():
        owner = namespace_owner(name, service)
        for host in host_names(owner, all_services[owner]):
            for port in listening_ports(service):
                assert (host, port) not in found, f"{host}:{port} claimed twice"
                found[(host, port)] = name
    return found


def loopback_endpoints(of: str) -> dict[int, str]:
    """port -> service answering on 127.0.0.1 inside service `of`'s network namespace."""
    all_services = services()
    owner = namespace_owner(of, all_services[of])
    return {port: name for name, service in all_services.items()
            if namespace_owner(name, service) == owner for port in listening_ports(service)}


def resolve(address: str, seen_from: str) -> str | None:
    """The service that `host:port` (or a URL) reaches from inside service `seen_from`."""
    match = re.match(r"^(?:[a-z]+://)?([\w.-]+):(\d+)(?:/.*)?$", address)
    assert match, f"not a host:port address: {address!r}"
    host, port = match[1], int(match[2])
    if host in ("127.0.0.1", "localhost"):
        return loopback_endpoints(seen_from).get(port)
    return endpoints().get((host, port))


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(host source, container target, options) of a service's bind mounts (short syntax)."""
    mounts = []
    for volume in service.get("volumes", []):
        assert isinstance(volume, str), f"use the short volume syntax: {volume!r}"
        source, target, *rest = volume.split(":")
        # Named volumes have no path separator; bind mounts start with . / or ~.
        if source.startswith((".", "/", "~")):
            mounts.append((source, target, rest[0] if rest else "rw"))
    return mounts


def container_path(service: dict[str, Any], path: str) -> Path | None:
    """The repository file a path inside the service's container is, via its bind mounts."""
    for source, target, _ in bind_mounts(service):
        if path == target or path.startswith(target.rstrip("/") + "/"):
            return REPO / source / path[len(target):].lstrip("/")
    return None


def service_secrets(service: dict[str, Any]) -> set[str]:
    names = set()
    for entry in service.get("secrets", []):
        assert isinstance(entry, str), f"use the short secrets syntax: {entry!r}"
        names.add(entry)
    return names


def secret_paths_in(text: str) -> set[str]:
    """Names of the /run/secrets/<name> files a config text refers to."""
    return set(re.findall(re.escape(SECRETS_IN_CONTAINER) + r"([\w-]+(?:\.[\w-]+)*)", text))


def create_secrets(directory: Path) -> Path:
    """Run deploy/secrets/create.sh into `directory` (what a user does before `up`)."""
    result = subprocess.run(["sh", str(SECRETS_SCRIPT), str(directory)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return directory


def with_local_secrets(text: str, secrets_dir: Path) -> str:
    """A config text as a process outside the container must read it: /run/secrets/x is
    the file x of `secrets_dir`, the very mapping compose makes."""
    return text.replace(SECRETS_IN_CONTAINER, f"{secrets_dir}/")
