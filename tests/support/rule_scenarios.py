"""Run the generated rules over hand-shaped input with the real `promtool test rules`.

A scenario is promtool's own test format (input series, evaluation times, expected alerts);
this module writes it beside the generated rule files and reports promtool's verdict, so
behaviour tests state data shapes and expectations, never parse PromQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alert_rules.generator.promtool_tests import group_area, series_key

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "alert_rules" / "generated"
RULE_FILES = (GENERATED / "saasmon-rules.yaml", GENERATED / "saasmon-alerts.yaml")


def catalog() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((GENERATED / "catalog.json").read_text())
    return data


def alert_names(areas: Iterable[str]) -> list[str]:
    """Alert names of the catalog's signals in these areas (the rules that have levels)."""
    wanted = set(areas)
    data = catalog()
    used = {r["signal"] for r in data["rules"]}
    return sorted({s["alert"] for name, s in data["signals"].items()
                   if s["area"] in wanted and name in used})


def series(name: str, labels: Mapping[str, str], values: str) -> dict[str, str]:
    """One promtool input series: `values` in promtool's expanding notation."""
    return {"series": series_key(name, dict(labels)), "values": values}


@dataclass
class Scenario:
    """Input series over `interval`, and at each evaluation time the alerts expected of
    each alert name (an empty list: the alert must not fire there)."""

    name: str
    input_series: list[dict[str, str]]
    interval: str = "1m"
    # (eval_time, alertname, expected alerts as [{"exp_labels": {...}}])
    checks: list[tuple[str, str, list[dict[str, Any]]]] = field(default_factory=list)
    firing: list[tuple[str, str, str]] = field(default_factory=list)
    # (eval_time, PromQL, promtool exp_samples): anything else a scenario asserts.
    exprs: list[tuple[str, str, list[dict[str, Any]]]] = field(default_factory=list)

    def quiet(self, at: str, alerts: Iterable[str]) -> Scenario:
        self.checks += [(at, a, []) for a in alerts]
        return self

    def fires(self, at: str, alert: str, severity: str) -> Scenario:
        """`alert` fires at `severity` at `at` (other levels may fire beside it)."""
        self.firing.append((at, alert, severity))
        return self

    def as_test(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "interval": self.interval,
            "input_series": self.input_series,
            "alert_rule_test": [{"eval_time": at, "alertname": a, "exp_alerts": exp}
                                for at, a, exp in self.checks],
            # Rule evaluation writes ALERTS into the test's storage: counting them asks
            # "does it fire at this level" without restating every label and annotation.
            "promql_expr_test": [{
                "expr": f'group(ALERTS{{alertname="{a}",severity="{sev}",alertstate="firing"}})',
                "eval_time": at, "exp_samples": [{"labels": "{}", "value": 1}]}
                for at, a, sev in self.firing] + [
                {"expr": expr, "eval_time": at, "exp_samples": exp}
                for at, expr, exp in self.exprs],
        }


def run(scenarios: Sequence[Scenario], rule_files: Sequence[Path] = RULE_FILES,
        areas: Iterable[str] | None = None, evaluation_interval: str = "1m",
        alerts: Iterable[str] | None = None) -> str:
    """promtool's output when every scenario holds; AssertionError with it when not.

    `areas` keeps only those areas' rule groups (alerts and recordings): promtool evaluates
    every rule at every step, and a week of input over all rules takes minutes. `alerts`
    keeps only the alerting rules of those names (and drops recording rules): for scenarios
    that feed an alert's input series directly, the rest of the rule set is dead weight."""
    wanted = None if areas is None else set(areas)
    named = None if alerts is None else set(alerts)
    with tempfile.TemporaryDirectory(prefix="saasmon-scenarios-") as tmp:
        directory = Path(tmp)
        names = []
        for path in rule_files:
            rules = yaml.safe_load(path.read_text())
            if wanted is not None:
                rules["groups"] = [g for g in rules["groups"] if group_area(g["name"]) in wanted]
            if named is not None:
                rules["groups"] = [g for g in ({**g, "rules": [r for r in g["rules"]
                                                              if r.get("alert") in named]}
                                               for g in rules["groups"]) if g["rules"]]
            (directory / path.name).write_text(yaml.safe_dump(rules, sort_keys=False))
            names.append(path.name)
        test_file = directory / "scenarios.test.yaml"
        test_file.write_text(yaml.safe_dump({
            "rule_files": names,
            "evaluation_interval": evaluation_interval,
            "tests": [s.as_test() for s in scenarios],
        }, sort_keys=False))
        done = subprocess.run(["promtool", "test", "rules", str(test_file)],
                              capture_output=True, text=True, timeout=300, cwd=directory)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-6000:]
        return output


def run_all(calls: Sequence[Callable[[], str]]) -> list[str | AssertionError]:
    """Each call's output, or the AssertionError it raised: promtool runs are independent
    processes and CPU-bound, so they run side by side, one per core."""
    def outcome(call: Callable[[], str]) -> str | AssertionError:
        try:
            return call()
        except AssertionError as failure:
            return failure

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(outcome, calls))
