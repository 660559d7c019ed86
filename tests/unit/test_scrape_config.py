"""devstack/scrape.py: job names come from the mixin's generated data, and the compose
stack's deploy/prometheus/prometheus.yml is what the builder makes for compose's addresses."""

from __future__ import annotations

import json
from pathlib import Path

import _jsonnet
import pytest
import yaml

from devstack import scrape

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy" / "prometheus" / "prometheus.yml"
MIXIN = REPO / "alert_rules" / "mixin"

# compose's service addresses (docker-compose.yml): the one thing this test states itself.
COMPOSE_TARGETS = {
    "app": ["app:8080"], "postgres": ["postgres-exporter:9630"], "redis": ["redis-exporter:9631"],
    "cron": ["cron-exporter:9632"], "integrations": ["integrations-exporter:9633"],
    "business": ["business-exporter:9634"], "webvitals": ["webvitals-exporter:9635"],
    "node": ["node-exporter:9100"], "smsRelay": ["sms-relay:9636"],
    "alertmanager": ["alertmanager:9093"], "prometheus": ["localhost:9090"]}


def compose_probes() -> dict[str, tuple[str, list[str]]]:
    return {"appProbe": ("integrations-exporter:9633", ["app"]),
            "integrationProbe": ("integrations-exporter:9633",
                                 ["vendor", scrape.status_page_target()]),
            "storageProbe": ("blackbox:9115", ["http://object-storage:8000/healthz"])}


def test_generated_job_names_are_the_mixins() -> None:
    config = json.loads(_jsonnet.evaluate_snippet(
        "config", "(import 'config.libsonnet')._config", jpathdir=[str(MIXIN)]))
    assert scrape.mixin_jobs() == config["jobs"]
    assert scrape.status_page_target() == config["statusPageTarget"]


def test_deploy_prometheus_yml_is_the_builders_config_for_compose() -> None:
    deployed = yaml.safe_load(DEPLOY.read_text())["scrape_configs"]
    assert deployed == scrape.scrape_configs(COMPOSE_TARGETS, compose_probes())


def test_every_mixin_job_is_scraped_by_compose() -> None:
    deployed = {c["job_name"] for c in yaml.safe_load(DEPLOY.read_text())["scrape_configs"]}
    assert deployed == set(scrape.mixin_jobs().values())


def test_unknown_jobs_and_probe_jobs_without_a_prober_are_refused() -> None:
    with pytest.raises(KeyError, match="not jobs of the mixin: postgress"):
        scrape.scrape_configs({"postgress": ["x:1"]})
    with pytest.raises(ValueError, match="appProbe"):
        scrape.scrape_configs({"appProbe": ["x:1"]})
