"""The Kubernetes base (deploy/kubernetes/base) and its example overlay, rendered offline by
the real `kubectl kustomize` and checked as a cluster and the Prometheus Operator would
read them: Kubernetes' own schemas and the CRDs' (tests/support/schemas), selectors that
select, ports that exist, probes on the exporters' real endpoints, measured memory within
the limits, every job the alert rules select scraped under that name, the PrometheusRule
and the boards exactly the generated ones, and no secret value outside a Secret. The
containers' configs are checked by the programs themselves, laid out as the pod mounts
them (`saasmon ... --config.check`, blackbox_exporter, amtool).
"""

from __future__ import annotations

import http.server
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import _jsonnet
import pytest
import yaml

from saasmon import __version__
from scripts import kubernetes_base
from tests.support.compose import create_secrets, services
from tests.support.kubernetes import (
    BASE,
    EXAMPLE,
    KUBERNETES_VERSIONS,
    REPO,
    Obj,
    builtin_schema_errors,
    crd_kinds,
    crd_schema_errors,
    lay_out_pod,
    matches,
    named,
    of_kind,
    render,
    rewrite,
    secret_value,
    secrets_from_script,
    which,
)
from tests.support.yamlfile import load_yaml

NAMESPACES = {BASE: "monitoring", EXAMPLE: "observability"}
RELEASES = {BASE: "kube-prometheus-stack", EXAMPLE: "monitoring"}
# What a default kube-prometheus-stack selects its rules and monitors by.
OPERATOR_KINDS = ("ServiceMonitor", "Probe", "PrometheusRule")
# Keys that hold a credential in saasmon's and Alertmanager's configs; only their `*_file`
# form (a path) may appear outside a Secret.
SECRET_KEYS = re.compile(r"^(dsn|standby_dsn|password|auth_token|bearer_token|token|api_url|"
                         r"url|routing_key|service_key|smtp_auth_password|api_key|"
                         r"credentials)$")
LAST_APPLIED_LIMIT = 256 * 1024
RSS = REPO / "bench" / "RSS.md"
# Columns: name, before, after (editable venv), after (wheel, as the image installs it) and
# the wheel's min-max.
RSS_ROW = re.compile(r"^\| (`saasmon [\w-]+`|all seven) \| [^|]* \| [^|]* \| ([\d.]+)[^|]* \| "
                     r"[\d.]+-([\d.]+) \|", re.M)


def both() -> list[Any]:
    return [pytest.param(BASE, id="base"), pytest.param(EXAMPLE, id="example")]


def deployments(objects: tuple[Obj, ...]) -> list[Obj]:
    return of_kind(objects, "Deployment")


def pod_spec(deployment: Obj) -> Obj:
    spec: Obj = deployment["spec"]["template"]["spec"]
    return spec


def container_ports(deployment: Obj) -> dict[str, int]:
    return {p["name"]: p["containerPort"] for c in pod_spec(deployment)["containers"]
            for p in c.get("ports", [])}


def service_pods(objects: tuple[Obj, ...], service: Obj) -> list[Obj]:
    return [d for d in deployments(objects)
            if matches(service["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])]


def mixin(expression: str) -> Any:
    return yaml.safe_load(_jsonnet.evaluate_snippet(
        "k8s", f"local c = (import 'config.libsonnet')._config; {expression}",
        jpathdir=[str(REPO)]))


def scraped_jobs(objects: tuple[Obj, ...]) -> dict[str, Obj]:
    """Job name -> the ServiceMonitor or Probe that scrapes it under that name."""
    jobs: dict[str, Obj] = {}
    for monitor in of_kind(objects, "ServiceMonitor"):
        for endpoint in monitor["spec"]["endpoints"]:
            (job,) = [r["replacement"] for r in endpoint.get("relabelings", [])
                      if r.get("targetLabel") == "job" and r.get("action", "replace") == "replace"
                      and "sourceLabels" not in r]
            jobs[job] = monitor
    for probe in of_kind(objects, "Probe"):
        jobs[probe["spec"]["jobName"]] = probe
    return jobs


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return create_secrets(tmp_path_factory.mktemp("kubernetes") / "secrets")


# -- the render itself --------------------------------------------------------------------------
def test_kubectl_is_a_declared_package() -> None:
    makefile = (REPO / "Makefile").read_text()
    (packages,) = re.findall(r"^DEB_PACKAGES := (.*)$", makefile, re.M)
    assert "kubectl" in packages.split()
    owner = subprocess.run(["dpkg", "-S", which("kubectl")], capture_output=True, text=True,
                           check=False)
    assert owner.stdout.startswith("kubectl:"), owner.stdout + owner.stderr


def test_generated_files_are_current() -> None:
    assert kubernetes_base.main(["--check"]) == 0, (
        "deploy/kubernetes/base/generated is stale: run .venv/bin/python -m "
        "scripts.kubernetes_base (make rules does) and commit it")


def test_check_mode_reports_stale_and_stray_files(tmp_path: Path) -> None:
    out = tmp_path / "generated"
    assert kubernetes_base.main(["--check", "--out", str(out)]) == 1  # missing
    assert kubernetes_base.main(["--out", str(out)]) == 0
    assert kubernetes_base.main(["--check", "--out", str(out)]) == 0
    rule = out / "prometheusrule.yaml"
    rule.write_text(rule.read_text().replace("for: 5m", "for: 6m", 1))
    assert kubernetes_base.main(["--check", "--out", str(out)]) == 1
    assert kubernetes_base.main(["--out", str(out)]) == 0
    (out / "dashboards" / "saasmon-gone.json").write_text("{}")
    assert kubernetes_base.main(["--check", "--out", str(out)]) == 1
    assert kubernetes_base.main(["--out", str(out)]) == 0
    assert not (out / "dashboards" / "saasmon-gone.json").exists()


@pytest.mark.parametrize("directory", both())
def test_every_object_is_named_in_the_release_namespace(directory: Path) -> None:
    objects = render(directory)
    assert objects
    seen: set[tuple[str, str]] = set()
    for obj in objects:
        assert obj.get("apiVersion") and obj.get("kind"), obj
        meta = obj["metadata"]
        assert meta.get("name"), obj
        assert meta.get("namespace") == NAMESPACES[directory], f"{obj['kind']}/{meta['name']}"
        assert (obj["kind"], meta["name"]) not in seen, f"two {obj['kind']}/{meta['name']}"
        seen.add((obj["kind"], meta["name"]))
        assert meta["labels"].get("app.kubernetes.io/part-of") == "saasmon"
    # The stack selects its rules, ServiceMonitors and Probes by the release label.
    for obj in objects:
        if obj["kind"] in OPERATOR_KINDS:
            assert obj["metadata"]["labels"]["release"] == RELEASES[directory]


@pytest.mark.parametrize("directory", both())
def test_objects_fit_a_client_side_apply(directory: Path) -> None:
    # `kubectl apply` keeps the whole object in an annotation, and annotations hold
    # 256 KiB at most; a ConfigMap holds 1 MiB. The largest are the rule and the boards.
    for obj in render(directory):
        size = len(json.dumps(obj, separators=(",", ":")))
        assert size < LAST_APPLIED_LIMIT, f"{obj['kind']}/{obj['metadata']['name']}: {size} B"


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("directory", both())
def test_builtin_objects_pass_the_kubernetes_schemas(directory: Path, version: str) -> None:
    builtin = [o for o in render(directory) if o["kind"] not in crd_kinds()]
    assert {o["kind"] for o in builtin} == {"Deployment", "Service", "ConfigMap", "Secret"}
    errors = [e for e in (builtin_schema_errors(o, version) for o in builtin) if e]
    assert not errors, "\n".join(errors)


def test_the_strict_schemas_catch_a_misspelt_field() -> None:
    deployment = named(render(BASE), "Deployment", "saasmon-exporters")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    probe = pod_spec(broken)["containers"][0]["livenessProbe"]
    probe["failureThrottle"] = probe.pop("failureThreshold")
    assert builtin_schema_errors(broken, KUBERNETES_VERSIONS[0])


@pytest.mark.parametrize("directory", both())
def test_operator_objects_pass_the_crd_schemas(directory: Path) -> None:
    operator = [o for o in render(directory) if o["kind"] in crd_kinds()]
    assert {o["kind"] for o in operator} == set(OPERATOR_KINDS)
    errors = [e for o in operator for e in crd_schema_errors(o)]
    assert not errors, "\n".join(errors)


def test_the_crd_schema_catches_a_misspelt_field() -> None:
    monitor = of_kind(render(BASE), "ServiceMonitor")[0]
    broken = yaml.safe_load(yaml.safe_dump(monitor))
    broken["spec"]["endpoints"][0]["relabellings"] = broken["spec"]["endpoints"][0].pop("relabelings")
    assert crd_schema_errors(broken)


# -- workloads ------------------------------------------------------------------------------------
@pytest.mark.parametrize("directory", both())
def test_deployment_selectors_match_their_pods(directory: Path) -> None:
    objects = render(directory)
    assert {d["metadata"]["name"] for d in deployments(objects)} == {
        "saasmon-exporters", "saasmon-webvitals", "saasmon-sms-relay", "saasmon-blackbox"}
    for deployment in deployments(objects):
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert matches(selector, deployment["spec"]["template"]["metadata"]["labels"])
        # No other Deployment's pods are selected (a shared selector fights over pods).
        others = [d for d in deployments(objects) if d is not deployment
                  and matches(selector, d["spec"]["template"]["metadata"]["labels"])]
        assert not others, deployment["metadata"]["name"]


def test_bundle_ports_are_the_bundle_files() -> None:
    objects = render(BASE)
    deployment = named(objects, "Deployment", "saasmon-exporters")
    bundle = yaml.safe_load(named(objects, "ConfigMap", deployment_config(deployment))
                            ["data"]["bundle.yml"])["exporters"]
    assert {name: int(entry["web.listen-address"].rsplit(":", 1)[1])
            for name, entry in bundle.items()} == container_ports(deployment)


def deployment_config(deployment: Obj) -> str:
    (name,) = [v["configMap"]["name"] for v in pod_spec(deployment)["volumes"] if "configMap" in v]
    return str(name)


@pytest.mark.parametrize("directory", both())
def test_services_select_pods_and_name_their_ports(directory: Path) -> None:
    objects = render(directory)
    for service in of_kind(objects, "Service"):
        name = service["metadata"]["name"]
        (pod,) = service_pods(objects, service)
        for port in service["spec"]["ports"]:
            assert port["name"] == "http-metrics", name
            assert port["targetPort"] in container_ports(pod), f"{name}: {port['targetPort']}"
            assert container_ports(pod)[port["targetPort"]] == port["port"], name
    # Every container port has its Service: no exporter is left unscraped.
    served = {(d["metadata"]["name"], p["targetPort"]) for s in of_kind(objects, "Service")
              for d in service_pods(objects, s) for p in s["spec"]["ports"]}
    assert served == {(d["metadata"]["name"], port) for d in deployments(objects)
                      for port in container_ports(d)}


@pytest.mark.parametrize("directory", both())
def test_probes_use_the_exporters_endpoints_on_existing_ports(directory: Path) -> None:
    for deployment in deployments(render(directory)):
        ports = container_ports(deployment)
        for container in pod_spec(deployment)["containers"]:
            live, ready = container["livenessProbe"], container["readinessProbe"]
            assert live["httpGet"]["path"] == "/-/healthy"
            assert live["httpGet"]["port"] in ports
            if "exec" in ready:
                # The bundle: every exporter's /-/ready, each port of the container.
                command = ready["exec"]["command"]
                assert "/-/ready" in command[2]
                assert sorted(int(p) for p in command[3:]) == sorted(ports.values())
            else:
                assert ready["httpGet"]["port"] in ports
                # blackbox_exporter has no readiness of its own; saasmon's is /-/ready.
                expected = "/-/healthy" if "blackbox" in container["image"] else "/-/ready"
                assert ready["httpGet"]["path"] == expected


class _Exporter(http.server.BaseHTTPRequestHandler):
    """/-/ready as an exporter answers it: 200 once ready, 503 before."""

    ready = False

    def do_GET(self) -> None:
        status = 200 if self.path == "/-/ready" and type(self).ready else 503
        self.send_response(status)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def test_bundle_readiness_command_needs_every_port_ready() -> None:
    deployment = named(render(BASE), "Deployment", "saasmon-exporters")
    (container,) = pod_spec(deployment)["containers"]
    command = container["readinessProbe"]["exec"]["command"]
    ready = type("Ready", (_Exporter,), {"ready": True})
    pending = type("Pending", (_Exporter,), {"ready": False})
    servers = [http.server.HTTPServer(("127.0.0.1", 0), handler)
               for handler in (ready, ready, pending)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    ports = [str(s.server_address[1]) for s in servers]
    try:
        def run(*chosen: str) -> int:
            # The image's interpreter is `python`; the venv's stands in for it here.
            return subprocess.run([sys.executable, *command[1:3], *chosen], capture_output=True,
                                  check=False, timeout=60).returncode
        assert command[0] == "python"
        assert run(ports[0], ports[1]) == 0
        assert run(ports[0], ports[2]) != 0  # one exporter's first round still pending
        servers[2].shutdown()
        servers[2].server_close()
        assert run(ports[0], ports[2]) != 0  # one port not answering at all
    finally:
        for server in servers:
            server.shutdown()  # returns at once for one already shut down
            server.server_close()


def measured_rss() -> dict[str, float]:
    """bench/RSS.md: the top of each exporter's measured idle RSS (MiB), and 'all seven'."""
    rows = {name.strip("`").removeprefix("saasmon "): float(top)
            for name, _, top in RSS_ROW.findall(RSS.read_text())}
    assert {"postgres", "webvitals", "sms-relay", "all seven"} <= set(rows), rows
    return rows


def mebibytes(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi)", quantity)
    assert match, f"memory {quantity!r}: use Ki, Mi or Gi"
    return int(match.group(1)) * units[match.group(2)]


def test_resources_are_set_and_cover_the_measured_memory() -> None:
    rss = measured_rss()
    # A bundle's memory is at most that of all seven in one process (bench/RSS.md).
    measured = {"exporters": rss["all seven"], "webvitals": rss["webvitals"],
                "sms-relay": rss["sms-relay"]}
    for deployment in deployments(render(BASE)):
        for container in pod_spec(deployment)["containers"]:
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[kind]), container["name"]
            request = mebibytes(resources["requests"]["memory"])
            limit = mebibytes(resources["limits"]["memory"])
            assert request <= limit
            if container["name"] in measured:
                idle = measured[container["name"]]
                # Scheduled for what it uses idle; room for twice that before an OOM kill.
                assert request >= idle, f"{container['name']}: request below {idle} MiB idle"
                assert limit >= 2 * idle, f"{container['name']}: limit under twice {idle} MiB"
    assert set(measured) <= {c["name"] for d in deployments(render(BASE))
                             for c in pod_spec(d)["containers"]}


@pytest.mark.parametrize("directory", both())
def test_pods_run_unprivileged_on_a_read_only_root(directory: Path) -> None:
    for deployment in deployments(render(directory)):
        spec = pod_spec(deployment)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert spec["automountServiceAccountToken"] is False
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            # Credentials come from mounted Secrets, never from an env value.
            assert "env" not in container and "envFrom" not in container


def test_images_are_the_dockerfiles_and_composes() -> None:
    compose = services()
    dockerfile = (REPO / "Dockerfile").read_text()
    (uid,) = re.findall(r"^USER (\d+)$", dockerfile, re.M)
    for deployment in deployments(render(BASE)):
        for container in pod_spec(deployment)["containers"]:
            if container["image"].startswith("saasmon:"):
                assert container["image"] == f"saasmon:{__version__}"
                assert pod_spec(deployment)["securityContext"]["runAsUser"] == int(uid)
            else:
                assert container["image"] == compose["blackbox"]["image"]
    for deployment in deployments(render(EXAMPLE)):
        for container in pod_spec(deployment)["containers"]:
            if "saasmon" in container["image"]:
                assert container["image"] == f"registry.example.com/saasmon:{__version__}"


# -- scraping ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("directory", both())
def test_service_monitors_select_services_and_their_ports(directory: Path) -> None:
    objects = render(directory)
    app_job = mixin("c.jobs.app")
    for monitor in of_kind(objects, "ServiceMonitor"):
        selector = monitor["spec"]["selector"]["matchLabels"]
        chosen = [s for s in of_kind(objects, "Service")
                  if matches(selector, s["metadata"]["labels"])]
        if monitor["metadata"]["name"] == app_job:
            # The app's Service is yours: it carries the label the docs name.
            assert not chosen
            assert f"{kubernetes_base.APP_LABEL}: {app_job}" in (
                REPO / "docs" / "kubernetes.md").read_text()
            continue
        assert len(chosen) == 1, monitor["metadata"]["name"]
        names = {p["name"] for p in chosen[0]["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in names


@pytest.mark.parametrize("directory", both())
def test_probe_objects_use_a_prober_service_port(directory: Path) -> None:
    objects = render(directory)
    for probe in of_kind(objects, "Probe"):
        host, port = probe["spec"]["prober"]["url"].split(":")
        # A short name: the Service in the namespace of Prometheus (the release's).
        service = named(objects, "Service", host)
        assert int(port) in {p["port"] for p in service["spec"]["ports"]}
        assert probe["spec"]["prober"]["path"] == "/probe"
        assert probe["spec"]["targets"]["staticConfig"]["static"]


def test_probes_are_the_compose_prometheus_probe_jobs() -> None:
    scrapes = {c["job_name"]: c for c in yaml.safe_load(
        (REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())["scrape_configs"]}
    for probe in of_kind(render(BASE), "Probe"):
        scrape = scrapes[probe["spec"]["jobName"]]
        assert probe["spec"]["targets"]["staticConfig"]["static"] == [
            t for c in scrape["static_configs"] for t in c["targets"]]
        assert probe["spec"].get("module") == scrape.get("params", {}).get("module", [None])[0]
        assert probe["spec"]["prober"]["path"] == scrape["metrics_path"]


def test_integration_probe_targets_are_the_exporters_targets() -> None:
    objects = render(BASE)
    config = yaml.safe_load(named(objects, "ConfigMap", deployment_config(
        named(objects, "Deployment", "saasmon-exporters")))["data"]["integrations.yml"])
    blackbox = yaml.safe_load(named(objects, "ConfigMap", deployment_config(
        named(objects, "Deployment", "saasmon-blackbox")))["data"]["blackbox.yml"])
    for probe in of_kind(objects, "Probe"):
        targets = probe["spec"]["targets"]["staticConfig"]["static"]
        if probe["spec"]["prober"]["url"].startswith("saasmon-integrations:"):
            # Named targets of the exporter, probed with their own modules (no module here).
            assert set(targets) <= set(config["targets"]), targets
            assert "module" not in probe["spec"]
        else:
            assert probe["spec"]["module"] in blackbox["modules"]


@pytest.mark.parametrize("directory", both())
def test_every_alert_selector_job_is_scraped_under_that_name(directory: Path) -> None:
    scraped = scraped_jobs(render(directory))
    matchers: dict[str, dict[str, list[str]]] = mixin("c.selectorMatchers")
    jobs: dict[str, str] = mixin("c.jobs")
    # Not the base's to scrape: the stack's own node exporter, Alertmanager and Prometheus,
    # and the optional cloudwatch_exporter (docs/kubernetes.md).
    elsewhere = {jobs[k] for k in kubernetes_base.STACK_JOBS} | {mixin("c.cloudwatchJob")}
    assert not elsewhere & set(scraped)
    for selector, labels in matchers.items():
        op, value = labels["job"]
        wanted = [value] if op == "=" else value.split("|")
        for job in wanted:
            if op == "=~" and not re.fullmatch(r"[\w-]+", job):
                assert any(re.fullmatch(job, s) for s in scraped), f"{selector}: {job}"
            else:
                assert job in scraped or job in elsewhere, f"{selector}: job {job} not scraped"
        if "instance" in labels:
            # A probe target's name is its instance label (the operator relabels it so).
            assert labels["instance"][1] in scraped[value]["spec"]["targets"]["staticConfig"]["static"]
    assert set(scraped) | elsewhere == set(jobs.values()) | {mixin("c.cloudwatchJob")}


# -- rules, boards, Alertmanager --------------------------------------------------------------------
@pytest.mark.parametrize("directory", both())
def test_prometheus_rule_is_exactly_the_generated_rules(directory: Path) -> None:
    (rule,) = of_kind(render(directory), "PrometheusRule")
    generated = REPO / "alert_rules" / "generated"
    groups = [*load_yaml(generated / "saasmon-rules.yaml")["groups"],
              *load_yaml(generated / "saasmon-alerts.yaml")["groups"]]
    assert rule["spec"]["groups"] == groups
    assert rule["metadata"]["namespace"] == NAMESPACES[directory]


@pytest.mark.parametrize("directory", both())
def test_one_dashboard_config_map_per_board_for_the_sidecar(directory: Path) -> None:
    labelled = [c for c in of_kind(render(directory), "ConfigMap")
                if c["metadata"]["labels"].get("grafana_dashboard") == "1"]
    boards = sorted((REPO / "dashboards" / "generated").glob("*.json"))
    assert len(labelled) == len(boards)
    by_file = {key: value for c in labelled for key, value in c["data"].items()}
    assert len(by_file) == len(boards)  # one board per ConfigMap
    for board in boards:
        assert by_file[board.name] == board.read_text(), board.name
    # Stable names: the sidecar would load an old hash-suffixed copy beside the new one.
    assert {c["metadata"]["name"] for c in labelled} == {
        kubernetes_base.dashboard_name(b) for b in boards}


def walk(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every (dotted key path, leaf value) of parsed YAML."""
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in walk(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [item for i, v in enumerate(value) for item in walk(v, f"{path}[{i}]")]
    return [(path, value)]


def credential_keys(text: str) -> list[str]:
    """Keys holding a credential's value (not a `*_file` path) in a YAML document."""
    found = []
    for path, value in walk(yaml.safe_load(text)):
        key = re.split(r"[.\[]", path)[-1]
        if SECRET_KEYS.match(key) and value not in (None, ""):
            # A plain address is no credential: one with a user and password is, and so is
            # a Slack webhook URL (Twilio's api_url is only its API's address).
            if key == "url" and not re.match(r"^[a-z]+://[^/@]*:[^/@]*@", str(value)):
                continue
            if key == "api_url" and "slack_configs" not in path:
                continue
            found.append(path)
    return found


@pytest.mark.parametrize("directory", both())
def test_no_secret_value_outside_a_secret(directory: Path, secrets_dir: Path) -> None:
    objects = render(directory)
    # create.sh's random passwords and tokens (its stand-in URLs are addresses, no secret).
    values = [p.read_text() for p in secrets_dir.iterdir() if p.is_file()]
    for config_map in of_kind(objects, "ConfigMap"):
        for key, text in config_map["data"].items():
            for value in values:
                if len(value) >= 16 and not value.startswith("http://receivers"):
                    assert value not in text, f"{config_map['metadata']['name']}/{key}"
            if key.endswith((".yml", ".yaml")):
                assert not credential_keys(text), f"{config_map['metadata']['name']}/{key}"
    # The Alertmanager config is a Secret for the operator, but names only secret files.
    config = named(objects, "Secret", kubernetes_base.ALERTMANAGER_CONFIG_SECRET)
    assert not credential_keys(secret_value(config, "alertmanager.yaml"))
    # The base creates no Secret holding credentials: secrets.sh makes them from files.
    assert [s["metadata"]["name"] for s in of_kind(objects, "Secret")] == [
        kubernetes_base.ALERTMANAGER_CONFIG_SECRET]


def test_the_secret_scan_finds_an_inline_credential() -> None:
    assert credential_keys("dsn: postgresql://u:p@db/crm\n") == [".dsn"]
    assert credential_keys("receivers: [{slack_configs: [{api_url: https://hooks}]}]\n")
    assert credential_keys("targets: [{url: 'redis://:pw@redis:6379/0'}]\n")
    assert not credential_keys("dsn_file: /run/secrets/x\ntargets: [{url: redis://r:6379}]\n"
                               "twilio: {api_url: https://api.twilio.com}\n")


# -- the containers' configs, as the pods mount them -----------------------------------------------
@pytest.mark.parametrize("directory", both())
def test_every_secret_a_pod_mounts_is_made_by_secrets_sh(directory: Path, secrets_dir: Path) -> None:
    objects = render(directory)
    made = {s["metadata"]["name"]: set(s["data"])
            for s in secrets_from_script(secrets_dir, NAMESPACES[directory])}
    assert all(s["metadata"]["namespace"] == NAMESPACES[directory]
               for s in secrets_from_script(secrets_dir, NAMESPACES[directory]))
    for deployment in deployments(objects):
        for volume in pod_spec(deployment)["volumes"]:
            if "secret" in volume:
                keys = {item["key"] for item in volume["secret"]["items"]}
                assert keys <= made[volume["secret"]["secretName"]], volume
    # Alertmanager reads every *_file from the receivers Secret (its spec.secrets).
    config = secret_value(named(objects, "Secret", kubernetes_base.ALERTMANAGER_CONFIG_SECRET),
                          "alertmanager.yaml")
    read = set(re.findall(re.escape(kubernetes_base.OPERATOR_SECRETS_DIR) + r"/(\w+)", config))
    assert read == made[kubernetes_base.RECEIVERS_SECRET]


def test_secrets_sh_refuses_a_missing_file(tmp_path: Path) -> None:
    result = subprocess.run(["sh", str(REPO / "deploy" / "kubernetes" / "secrets.sh"),
                             str(tmp_path), "monitoring"], capture_output=True, text=True,
                            check=False, timeout=60)
    assert result.returncode == 2
    assert "saasmon_postgres_dsn: no such file" in result.stderr


@pytest.mark.parametrize("directory", both())
@pytest.mark.parametrize("name", ["saasmon-exporters", "saasmon-webvitals", "saasmon-sms-relay"])
def test_saasmon_containers_accept_their_mounted_config(directory: Path, name: str,
                                                        secrets_dir: Path, tmp_path: Path) -> None:
    objects = render(directory)
    deployment = named(objects, "Deployment", name)
    places = lay_out_pod(objects, deployment, secrets_from_script(secrets_dir, "x"), tmp_path)
    (container,) = pod_spec(deployment)["containers"]
    args = [rewrite(arg, places) for arg in container["args"]]
    env = {key: value for key, value in os.environ.items() if not key.startswith("SAASMON_")}
    result = subprocess.run([sys.executable, "-m", "saasmon", *args, "--config.check"],
                            capture_output=True, text=True, check=False, env=env, cwd=REPO,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_blackbox_accepts_its_mounted_config(tmp_path: Path) -> None:
    objects = render(BASE)
    deployment = named(objects, "Deployment", "saasmon-blackbox")
    places = lay_out_pod(objects, deployment, [], tmp_path)
    (container,) = pod_spec(deployment)["containers"]
    args = [rewrite(a, places) for a in container["args"] if a.startswith("--config.file")]
    result = subprocess.run([which("prometheus-blackbox-exporter"), "--config.check", *args],
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_amtool_accepts_the_operator_alertmanager_config(secrets_dir: Path, tmp_path: Path) -> None:
    """Laid out as the Prometheus Operator mounts it: the configSecret's keys in
    /etc/alertmanager/config, spec.secrets under /etc/alertmanager/secrets/<name>."""
    objects = render(BASE)
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    secret = named(objects, "Secret", kubernetes_base.ALERTMANAGER_CONFIG_SECRET)
    places = {"/etc/alertmanager/config": str(config_dir),
              kubernetes_base.OPERATOR_SECRETS_DIR: str(secrets_dir)}
    for key in secret["data"]:
        (config_dir / key).write_text(secret_value(secret, key))
    config = config_dir / "alertmanager.yaml"
    config.write_text(rewrite(config.read_text(), places))
    result = subprocess.run([which("amtool"), "check-config", str(config)],
                            capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    # The templates glob finds every shipped template where the operator mounts them.
    parsed = yaml.safe_load(config.read_text())
    (glob,) = parsed["templates"]
    assert sorted(p.name for p in Path(glob).parent.glob(Path(glob).name)) == sorted(
        p.name for p in (REPO / "alertmanager" / "templates").glob("*.tmpl"))
    # The relay's webhook is its Service in the release's namespace.
    urls = [w["url"] for r in parsed["receivers"] for w in r.get("webhook_configs", [])]
    relay = named(objects, "Service", "saasmon-sms-relay")
    assert urls and all(u.startswith(f"http://saasmon-sms-relay:{relay['spec']['ports'][0]['port']}/")
                        for u in urls)


def test_example_overlay_replaces_only_what_it_names() -> None:
    base, example = render(BASE), render(EXAMPLE)
    base_config = named(base, "ConfigMap", deployment_config(named(base, "Deployment",
                                                                   "saasmon-exporters")))
    example_config = named(example, "ConfigMap", deployment_config(named(example, "Deployment",
                                                                         "saasmon-exporters")))
    assert set(base_config["data"]) == set(example_config["data"])
    changed = {k for k in base_config["data"] if base_config["data"][k] != example_config["data"][k]}
    assert changed == {"redis.yml"}
    (storage,) = [p for p in of_kind(example, "Probe") if p["spec"].get("module")]
    (base_storage,) = [p for p in of_kind(base, "Probe") if p["spec"].get("module")]
    assert storage["spec"]["targets"] != base_storage["spec"]["targets"]
