"""The container bundle: docker-compose.yml, Dockerfile and the files they mount.

No container engine is needed: the compose file is checked structurally (pinned images,
healthchecks, mounted files present, ports consistent with prometheus.yml), and the files
it mounts are validated with the real tools, promtool and `saasmon --config.check`.
`docker compose config` runs too when a compose plugin is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"
PROMETHEUS_YML = REPO / "deploy" / "prometheus" / "prometheus.yml"
PROMTOOL = "/usr/bin/promtool"
SAASMON = [sys.executable, "-m", "exporters"]


def load_compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return data


def services() -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = load_compose()["services"]
    return result


def image_is_pinned(image: str) -> bool:
    """`name:tag` (or a digest) with a tag other than latest; a registry port is no tag."""
    if "@sha256:" in image:
        return True
    name_and_tag = image.rsplit("/", 1)[-1]
    if ":" not in name_and_tag:
        return False
    tag = name_and_tag.rsplit(":", 1)[1]
    return tag != "latest" and bool(tag)


def compose_available() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
    return probe.returncode == 0


def bind_sources(service: dict[str, Any]) -> list[str]:
    """Host paths of a service's bind mounts, short (`src:dst[:mode]`) or long syntax."""
    sources = []
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source = volume.split(":", 1)[0]
            # Named volumes have no path separator; bind mounts start with . / or ~.
            if source.startswith((".", "/", "~")):
                sources.append(source)
        elif volume.get("type") == "bind":
            sources.append(volume["source"])
    return sources


def test_images_are_pinned() -> None:
    for name, service in services().items():
        if "image" in service:
            assert image_is_pinned(service["image"]), f"{name}: image {service['image']!r}"
        else:
            assert "build" in service, f"{name}: neither image nor build"
    # Built services inherit the Dockerfile's base images: those must be pinned too.
    bases = re.findall(r"^FROM\s+(?:--\S+\s+)*(\S+)", DOCKERFILE.read_text(), re.MULTILINE)
    assert bases, "Dockerfile has no FROM"
    for base in bases:
        assert image_is_pinned(base), f"Dockerfile FROM {base!r} is not pinned"
        # A bare minor version (3.11) moves with every patch release.
        assert re.search(r":\d+\.\d+\.\d+", base) or "@sha256:" in base, base


def test_dockerfile_runs_saasmon_as_non_root() -> None:
    text = DOCKERFILE.read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users, "Dockerfile sets no USER: the exporter would run as root"
    assert users[-1] not in ("root", "0", "0:0"), users[-1]
    assert re.search(r'^ENTRYPOINT\s+\["saasmon"\]', text, re.MULTILINE), "ENTRYPOINT"


def test_every_service_has_a_healthcheck() -> None:
    # No exemptions are needed: every image has a way to probe itself (pg_isready,
    # redis-cli, the exporters' Python, busybox wget in the Prometheus image).
    for name, service in services().items():
        check = service.get("healthcheck")
        assert check and not check.get("disable"), f"{name}: no healthcheck"
        assert check.get("test"), f"{name}: healthcheck without test"


def test_mounted_files_exist() -> None:
    compose = load_compose()
    for name, service in compose["services"].items():
        for source in bind_sources(service):
            assert not source.startswith(("/", "~")), (
                f"{name}: {source!r} points outside the repository")
            assert (REPO / source).exists(), f"{name}: bind mount source {source!r} missing"
        build = service.get("build")
        if build is not None:
            context = build if isinstance(build, str) else build.get("context", ".")
            assert (REPO / context / "Dockerfile").exists(), f"{name}: build context {context}"
    for name, secret in compose.get("secrets", {}).items():
        assert (REPO / secret["file"]).is_file(), f"secret {name}: {secret['file']} missing"
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            if isinstance(volume, str) and not volume.startswith((".", "/", "~")):
                assert volume.split(":", 1)[0] in declared, f"{name}: undeclared {volume}"


def test_prometheus_targets_match_exporter_ports() -> None:
    """Each scrape target is a compose service listening on that port."""
    compose_services = services()
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    targets = [target for job in config["scrape_configs"]
               for static in job.get("static_configs", []) for target in static["targets"]]
    for target in targets:
        host, port = target.rsplit(":", 1)
        if host == "localhost":  # Prometheus scraping itself
            continue
        assert host in compose_services, f"scrape target {target}: no service {host!r}"
        command = " ".join(str(part) for part in compose_services[host].get("command", []))
        assert f":{port}" in command, f"{host} does not listen on {port}: {command}"


def test_promtool_accepts_prometheus_config() -> None:
    # Also loads the alert rules the config names (../../alert_rules), as in the container.
    result = subprocess.run([PROMTOOL, "check", "config", str(PROMETHEUS_YML)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("exporter", ["postgres", "redis"])
def test_exporter_configs_pass_config_check(exporter: str) -> None:
    # postgres.yml reads its DSN from /run/secrets, which exists only in the container;
    # the env override (same mechanism as in production) points that key at the example
    # secret instead, so the rest of the file is checked exactly as the container reads it.
    env = {key: value for key, value in os.environ.items() if not key.startswith("SAASMON_")}
    env["SAASMON_POSTGRES_DSN_FILE"] = str(REPO / "deploy" / "secrets" / "postgres_dsn.example")
    result = subprocess.run(
        [*SAASMON, exporter, "--config.check", "--config.file",
         str(REPO / "deploy" / "config" / f"{exporter}.yml")],
        capture_output=True, text=True, check=False, env=env, cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The check prints a summary; the secret's password must not be part of it.
    assert "example-only-change-me" not in result.stdout + result.stderr


def test_docker_compose_config_is_valid() -> None:
    if not compose_available():
        pytest.skip("`docker compose` not installed; the structural tests above still ran")
    result = subprocess.run(["docker", "compose", "-f", str(COMPOSE_FILE), "config", "-q"],
                            capture_output=True, text=True, check=False, cwd=REPO)
    assert result.returncode == 0, result.stderr
