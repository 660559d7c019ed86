"""Grafana provisioning (grafana/provisioning): datasources and the saasmon board provider.

No Grafana server here: the files are checked for the shape Grafana's provisioning reads
(apiVersion 1, unique uids, one default), for agreement with docker-compose.yml (the
datasource URLs are services listening there, the provider reads where compose mounts
dashboards/generated) and for the absence of secrets. The rendered boards must refer to
datasources only through their `datasource` variable or a provisioned uid.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from tests.support.compose import REPO, bind_mounts, container_path, resolve, services
from tests.support.yamlfile import load_yaml

PROVISIONING = REPO / "grafana" / "provisioning"
DATASOURCES = PROVISIONING / "datasources"
DASHBOARD_PROVIDERS = PROVISIONING / "dashboards"
GENERATED_BOARDS = REPO / "dashboards" / "generated"
PROMETHEUS_YML = REPO / "deploy" / "prometheus" / "prometheus.yml"
# Keys whose literal value would be a credential; Grafana reads them from files or the
# environment through $__file{...} / $__env{...} interpolation instead.
SECRET_KEY = re.compile(r"(password|secret|token|apikey|api_key|credential|httpheadervalue)",
                        re.IGNORECASE)
INTERPOLATED = re.compile(r"^\$__(file|env)\{[^}]+\}$")
# Datasources every Grafana has (annotations and mixed panels use them).
BUILT_IN_DATASOURCES = {"-- Grafana --", "-- Mixed --", "-- Dashboard --", "grafana"}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(path)
    return data


def provisioning_files() -> list[Path]:
    files = sorted([*PROVISIONING.rglob("*.yaml"), *PROVISIONING.rglob("*.yml")])
    assert files, "no provisioning files"
    return files


def datasources() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted(DATASOURCES.glob("*.y*ml")):
        found += load(path).get("datasources", [])
    return found


def providers() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in sorted(DASHBOARD_PROVIDERS.glob("*.y*ml")):
        found += load(path).get("providers", [])
    return found


def walk(node: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every (dotted key path, scalar value) in a YAML/JSON tree."""
    if isinstance(node, dict):
        return [item for key, value in node.items() for item in walk(value, f"{path}.{key}")]
    if isinstance(node, list):
        return [item for index, value in enumerate(node) for item in walk(value, f"{path}[{index}]")]
    return [(path, node)]


def test_every_file_is_provisioning_version_1() -> None:
    for path in provisioning_files():
        data = load(path)
        assert data.get("apiVersion") == 1, f"{path}: apiVersion"
        assert set(data) - {"apiVersion"} <= {"datasources", "deleteDatasources", "providers"}, path


def test_datasources_are_unique_with_one_default() -> None:
    sources = datasources()
    uids = [source["uid"] for source in sources]
    names = [source["name"] for source in sources]
    assert len(uids) == len(set(uids)), f"duplicate uids {uids}"
    assert len(names) == len(set(names)), f"duplicate names {names}"
    defaults = [source["uid"] for source in sources if source.get("isDefault")]
    # The boards' `datasource` variable (query: prometheus) opens on the default.
    assert defaults == ["prometheus"]
    by_uid = {source["uid"]: source for source in sources}
    assert by_uid["prometheus"]["type"] == "prometheus"
    alertmanager = by_uid["alertmanager"]
    assert alertmanager["type"] == "alertmanager"
    assert alertmanager["jsonData"]["implementation"] == "prometheus"
    # The Prometheus datasource links to an Alertmanager datasource that exists.
    linked = by_uid["prometheus"]["jsonData"]["alertmanagerUid"]
    assert by_uid[linked]["type"] == "alertmanager"
    for source in sources:
        assert source.get("access", "proxy") == "proxy", f"{source['name']}: browser access"


def test_datasource_urls_are_services_of_the_stack() -> None:
    expected = {"prometheus": "prometheus", "alertmanager": "alertmanager"}
    for source in datasources():
        assert resolve(source["url"], "grafana") == expected[source["type"]], source["url"]


def test_prometheus_datasource_interval_is_the_scrape_interval() -> None:
    # $__rate_interval is at least four times this: it must be the real scrape interval.
    prometheus = next(s for s in datasources() if s["type"] == "prometheus")
    scrape = load(PROMETHEUS_YML)["global"]["scrape_interval"]
    assert prometheus["jsonData"]["timeInterval"] == scrape


def test_no_secrets_in_provisioning() -> None:
    for path in provisioning_files():
        for key_path, value in walk(load(path)):
            key = key_path.rsplit(".", 1)[-1]
            if SECRET_KEY.search(key) and value not in (None, ""):
                assert isinstance(value, str) and INTERPOLATED.match(value), (
                    f"{path}: {key_path} holds a literal credential")
        for source in load(path).get("datasources", []):
            for key, value in (source.get("secureJsonData") or {}).items():
                assert INTERPOLATED.match(str(value)), f"{path}: secureJsonData.{key} literal"
            assert not source.get("basicAuthPassword"), f"{path}: basicAuthPassword"


def test_compose_mounts_provisioning_and_boards_where_grafana_reads_them() -> None:
    grafana = services()["grafana"]
    for kind in ("datasources", "dashboards"):
        assert container_path(grafana, f"/etc/grafana/provisioning/{kind}") == PROVISIONING / kind
    file_providers = [p for p in providers() if p.get("type", "file") == "file"]
    assert file_providers, "no file provider"
    for provider in file_providers:
        assert provider["folder"] == "SaaSmon"
        path = provider["options"]["path"]
        # The provider reads exactly the mount of dashboards/generated.
        assert container_path(grafana, path) == GENERATED_BOARDS, path
        assert provider.get("allowUiUpdates") is False, "UI edits would be lost on re-render"
    mounted = {source for source, _, _ in bind_mounts(grafana)}
    assert "./dashboards/generated" in mounted
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    home_file = container_path(grafana, home)
    assert home_file is not None and home_file.is_file(), f"home dashboard {home} not rendered"


def test_boards_use_provisioned_datasources_only() -> None:
    boards = sorted(GENERATED_BOARDS.glob("*.json"))
    assert boards, "dashboards/generated has no boards to provision"
    uids = {source["uid"] for source in datasources()} | BUILT_IN_DATASOURCES
    for board in boards:
        for key_path, value in walk(json.loads(board.read_text())):
            if re.search(r"\.datasource\.uid$", key_path) and isinstance(value, str):
                # A variable reference (${datasource}, $datasource) or a provisioned uid.
                assert value.startswith("$") or value in uids, f"{board.name}: {key_path}={value}"
