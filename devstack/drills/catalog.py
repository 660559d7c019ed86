"""The catalog as drills read it: the generated alerting rules, the receivers the shipped
routing tree gives a label set, and the job names the rules select on."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from devstack.drills.alerting import amtool_receivers
from devstack.scrape import mixin_jobs

# Re-exported: the job names the rules select on are the dev stack's scrape config's.
__all__ = ["alert_rules", "mixin_jobs", "receivers_for", "rules_of"]

REPO = Path(__file__).resolve().parents[2]
SHIPPED_AM = REPO / "alertmanager" / "alertmanager.yml"
ALERTS = REPO / "alert_rules" / "generated" / "saasmon-alerts.yaml"
MIXIN = REPO  # the mixin root: mixin.libsonnet, config.libsonnet


@functools.cache
def alert_rules() -> tuple[dict[str, Any], ...]:
    """Every generated alerting rule (the committed, unscaled file)."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return tuple(rule for group in groups for rule in group["rules"])


def rules_of(alertname: str, severity: str, guide: str | None = None) -> list[dict[str, Any]]:
    # A level several guides state is one rule whose guide label lists them all.
    found = [r for r in alert_rules() if r["alert"] == alertname
             and r["labels"].get("severity") == severity
             and (guide is None or guide in r["labels"].get("guide", "").split(","))]
    if not found:
        raise LookupError(f"no generated alert {alertname} with severity {severity}"
                          + (f" from {guide}" if guide else ""))
    return found


@functools.cache
def _receivers(labels: tuple[tuple[str, str], ...]) -> frozenset[str]:
    return amtool_receivers(SHIPPED_AM, dict(labels))


def receivers_for(labels: Mapping[str, str]) -> frozenset[str]:
    """Receivers of the shipped routing tree for a label set (amtool config routes test)."""
    return _receivers(tuple(sorted(labels.items())))
