"""The one Prometheus scrape-config builder: `make demo`, the drills and the check of
deploy/prometheus/prometheus.yml build their scrape configs here.

Job names are never typed in here: they are the mixin's (config.libsonnet,
`_config.jobs`), read from alert_rules/generated/scrape-jobs.json, which the rule generator
writes beside the rules (its staleness test keeps the two in step). Callers name jobs by the
mixin's keys (`postgres`, `appProbe`, ...), so a renamed job follows everywhere.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SCRAPE_JOBS = REPO / "alert_rules" / "generated" / "scrape-jobs.json"

# Jobs scraped through a prober's /probe?target=...: the key of the prober's own job does
# not matter, only its address; the blackbox storage probe names its module.
PROBE_MODULES: dict[str, str | None] = {"appProbe": None, "integrationProbe": None,
                                        "storageProbe": "http_2xx"}


@functools.cache
def _generated() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCRAPE_JOBS.read_text())
    return data


def mixin_jobs() -> dict[str, str]:
    """Job name by mixin key (`{"postgres": "saasmon-postgres", ...}`)."""
    return dict(_generated()["jobs"])


def status_page_target() -> str:
    """The integration-probe target whose incidents StatusPageNotUpdated reads."""
    target: str = _generated()["statusPageTarget"]
    return target


def job(key: str) -> str:
    jobs = mixin_jobs()
    if key not in jobs:
        raise KeyError(f"{key!r} is no job of the mixin (known: {', '.join(sorted(jobs))})")
    return jobs[key]


def static(job_name: str, targets: Sequence[str]) -> dict[str, Any]:
    return {"job_name": job_name, "static_configs": [{"targets": list(targets)}]}


def probe(job_name: str, prober: str, targets: Sequence[str],
          module: str | None) -> dict[str, Any]:
    """A blackbox-style job: each target becomes ?target=... and its instance label; the
    prober (host:port) is the address scraped."""
    return {
        "job_name": job_name, "metrics_path": "/probe",
        **({"params": {"module": [module]}} if module else {}),
        "static_configs": [{"targets": list(targets)}],
        "relabel_configs": [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["__param_target"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": prober},
        ],
    }


def scrape_configs(targets: Mapping[str, Sequence[str]],
                   probes: Mapping[str, tuple[str, Sequence[str]]] | None = None
                   ) -> list[dict[str, Any]]:
    """Scrape configs in the mixin's job order (config.libsonnet's `jobs`, as generated).

    `targets`: mixin job key -> addresses (host:port) scraped directly;
    `probes`: probe job key -> (prober address, probe targets). A job named in neither is
    left out (the drills run a part of the stack)."""
    probes = probes or {}
    unknown = (set(targets) | set(probes)) - set(mixin_jobs())
    if unknown:
        raise KeyError(f"not jobs of the mixin: {', '.join(sorted(unknown))}")
    direct_probes = set(targets) & set(PROBE_MODULES)
    if direct_probes:
        raise ValueError(f"probe jobs need a prober and targets: {sorted(direct_probes)}")
    configs = []
    # A job the mixin adds later and ORDER does not know yet comes last, never dropped.
    for key in sorted(mixin_jobs(), key=lambda k: ORDER.index(k) if k in ORDER else len(ORDER)):
        if key in targets:
            configs.append(static(job(key), targets[key]))
        elif key in probes:
            prober, probed = probes[key]
            configs.append(probe(job(key), prober, probed, PROBE_MODULES[key]))
    return configs


# The order of deploy/prometheus/prometheus.yml (the app first, Prometheus itself last).
ORDER = ("app", "appProbe", "postgres", "redis", "cron", "integrations", "integrationProbe",
         "business", "webvitals", "node", "storageProbe", "smsRelay", "alertmanager",
         "prometheus")


def prometheus_config(scrape: list[dict[str, Any]], interval: str,
                      alertmanagers: Sequence[str], rule_files: Sequence[str | Path],
                      scrape_timeout: str | None = None) -> dict[str, Any]:
    """A whole prometheus.yml: one interval for scraping and evaluation, the Alertmanagers
    (host:port) to send to, the rule files."""
    global_: dict[str, str] = {"scrape_interval": interval, "evaluation_interval": interval}
    if scrape_timeout is not None:
        global_["scrape_timeout"] = scrape_timeout
    return {
        "global": global_,
        "rule_files": [str(p) for p in rule_files],
        "alerting": {"alertmanagers": [{"api_version": "v2", "static_configs": [
            {"targets": list(alertmanagers)}]}]},
        "scrape_configs": scrape,
    }
