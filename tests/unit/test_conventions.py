"""The mixin's conventions (docs/alert-rules.md#conventions) on the generated rules: groups
of at most 20 rules, the cluster label kept by every aggregation and vector match, the two
severity schemes, alert names that collide with no other mixin once prefixed, and extra
labels. `alert_rules/generated/mixin-conventions/` is the bundle rendered with
severityScheme 'mixin', alertNamePrefix 'Saasmon' and extraLabels {bundle: saasmon}.
Routing of both schemes through amtool: tests/unit/test_alertmanager_config.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from alert_rules.generator.promtool_tests import group_area
from dashboards.lint import AGGREGATIONS, Token, tokenize
from tests.support.yamlfile import load_yaml

REPO = Path(__file__).resolve().parents[2]
GENERATED = REPO / "alert_rules" / "generated"
VARIANT = GENERATED / "mixin-conventions"
RULE_FILES = [GENERATED / "saasmon-alerts.yaml", GENERATED / "saasmon-rules.yaml",
              VARIANT / "saasmon-alerts.yaml", VARIANT / "saasmon-rules.yaml"]
OTHER_MIXINS = REPO / "tests" / "fixtures" / "other_mixin_alert_names.yaml"
MAX_RULES_PER_GROUP = 20  # the Mimir/Cortex ruler's default
CLUSTER = "cluster"
# The monitoring-mixin severity check (mixtool lint): these values only.
MIXIN_SEVERITIES = {"critical", "warning", "info"}
MIXIN_SEVERITY = {"critical": "critical", "high": "warning", "medium": "warning", "low": "info",
                  "none": "info"}
# The bundle's names that other rule sets also use (kept by default; alertNamePrefix fixes it).
KNOWN_COLLISIONS = {"TargetDown", "Watchdog", "RedisDown"}


def groups(path: Path) -> list[dict[str, Any]]:
    data = load_yaml(path)
    found: list[dict[str, Any]] = data["spec"]["groups"] if "spec" in data else data["groups"]
    return found


def rules(path: Path) -> list[dict[str, Any]]:
    return [r for g in groups(path) for r in g["rules"]]


# -- groups ------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", [*RULE_FILES, GENERATED / "prometheusrule.yaml"],
                         ids=lambda p: str(p.relative_to(GENERATED)))
def test_rule_groups_hold_at_most_20_rules(path: Path) -> None:
    names = [g["name"] for g in groups(path)]
    assert len(names) == len(set(names)), names
    big = {g["name"]: len(g["rules"]) for g in groups(path) if len(g["rules"]) > MAX_RULES_PER_GROUP}
    assert not big, big


def test_a_split_area_keeps_each_alert_ladder_in_one_group() -> None:
    seen: dict[str, set[str]] = {}
    for group in groups(GENERATED / "saasmon-alerts.yaml"):
        for rule in group["rules"]:
            seen.setdefault(rule["alert"], set()).add(group["name"])
    assert {a: g for a, g in seen.items() if len(g) > 1} == {}
    # The areas the issue named are split, and every group still names its area.
    names = [g["name"] for g in groups(GENERATED / "saasmon-alerts.yaml")]
    for area in ("api", "database", "business"):
        assert f"saasmon-{area}-1" in names and f"saasmon-{area}-2" in names
    assert {group_area(n) for n in names} >= {"api", "database", "business", "meta", "slo-api"}


# -- the cluster label -------------------------------------------------------------------------
def _label_list(tokens: list[Token], i: int) -> tuple[list[str], int]:
    """The label names of `( a, b )` starting at tokens[i] == '(' and the index after it."""
    assert tokens[i].text == "(", tokens[i]
    labels, i = [], i + 1
    while tokens[i].text != ")":
        if tokens[i].kind == "ident":
            labels.append(tokens[i].text)
        i += 1
    return labels, i + 1


def _close(tokens: list[Token], i: int) -> int:
    """Index after the parenthesis that matches tokens[i] == '('."""
    depth = 0
    for j in range(i, len(tokens)):
        depth += {"(": 1, ")": -1}.get(tokens[j].text, 0)
        if depth == 0:
            return j + 1
    raise AssertionError("unbalanced parentheses")


def cluster_problems(expr: str, label: str = CLUSTER) -> list[str]:
    """Aggregations that drop `label` and vector matches that do not compare it."""
    tokens = [t for t in tokenize(expr) if t.kind not in ("ws", "comment")]
    problems = []
    for i, token in enumerate(tokens):
        if token.kind != "ident" or i + 1 >= len(tokens):
            continue
        nxt = tokens[i + 1].text
        if token.text in AGGREGATIONS and nxt in ("(", "by", "without"):
            if nxt in ("by", "without"):
                modifier, (labels, _) = nxt, _label_list(tokens, i + 2)
            else:
                after = _close(tokens, i + 1)
                if after < len(tokens) and tokens[after].text in ("by", "without"):
                    modifier, (labels, _) = tokens[after].text, _label_list(tokens, after + 1)
                else:
                    modifier, labels = "by", []
            if (modifier == "by") != (label in labels):
                problems.append(f"{token.text} {modifier} ({', '.join(labels)}) drops {label}")
        elif token.text in ("on", "ignoring") and nxt == "(":
            labels, _ = _label_list(tokens, i + 1)
            if (token.text == "on") != (label in labels):
                problems.append(f"{token.text} ({', '.join(labels)}) does not match on {label}")
    return problems


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: str(p.relative_to(GENERATED)))
def test_every_aggregation_and_match_keeps_the_cluster_label(path: Path) -> None:
    found = {r.get("alert") or r["record"]: p for r in rules(path) for p in cluster_problems(r["expr"])}
    assert found == {}
    # It is there to be kept: the recording rules aggregate a lot, alerts match guards.
    kept = sum(r["expr"].count(f"({CLUSTER}") for r in rules(path))
    assert kept > (100 if path.name == "saasmon-rules.yaml" else 1)


@pytest.mark.parametrize(("expr", "problems"), [
    ('sum by (cluster, job) (rate(x_total[5m]))', 0),
    ('histogram_quantile(0.9, sum by (cluster, le) (rate(x_bucket[5m])))', 0),
    ('max without (instance) (x)', 0),
    ('sum(rate(x_total[5m])) by (cluster)', 0),
    ('a / on (cluster, job) group_left () b', 0),
    ('a and ignoring (alertstate) b', 0),
    ('sum(rate(x_total[5m]))', 1),
    ('count by () (ALERTS)', 1),
    ('sum by (job) (x) / on (job) max by (cluster, job) (y)', 2),
    ('max without (cluster) (x)', 1),
    ('a and ignoring (cluster) b', 1),
])
def test_the_cluster_check_finds_a_dropped_label(expr: str, problems: int) -> None:
    assert len(cluster_problems(expr)) == problems, cluster_problems(expr)


# -- severity schemes --------------------------------------------------------------------------
def test_the_mixin_scheme_passes_the_monitoring_mixin_severity_check() -> None:
    shipped = [r["labels"]["severity"] for r in rules(GENERATED / "saasmon-alerts.yaml")]
    variant = [r["labels"]["severity"] for r in rules(VARIANT / "saasmon-alerts.yaml")]
    assert [s for s in variant if s not in MIXIN_SEVERITIES] == []
    # The default keeps the guides' four levels, which most rules the check would refuse.
    assert sum(s not in MIXIN_SEVERITIES for s in shipped) > len(shipped) // 2


def _expected_variant_expr(expr: str) -> str:
    """A shipped expression as the variant renders it: the rules that read ALERTS name the
    prefixed alerts and read the guides' level from guide_severity."""
    expr = re.sub(r'alertname!="(\w+)"', r'alertname!="Saasmon\1"', expr)
    expr = expr.replace('severity=~"critical|high"', 'guide_severity=~"critical|high"')
    return expr.replace('"severity", "$1", "severity", "(.+)"', '"severity", "$1", "guide_severity", "(.+)"')


def test_the_variant_is_the_shipped_bundle_with_other_conventions() -> None:
    for kind in ("alerts", "rules"):
        shipped, variant = GENERATED / f"saasmon-{kind}.yaml", VARIANT / f"saasmon-{kind}.yaml"
        assert [g["name"] for g in groups(variant)] == [g["name"] for g in groups(shipped)]
        for ours, theirs in zip(rules(shipped), rules(variant), strict=True):
            assert theirs["expr"] == _expected_variant_expr(ours["expr"]), theirs.get("alert")
            labels = dict(ours.get("labels", {}), bundle="saasmon")
            if kind == "alerts":
                assert theirs["alert"] == "Saasmon" + ours["alert"]
                assert theirs.get("for") == ours.get("for")
                assert theirs["annotations"] == ours["annotations"]
                level = ours["labels"]["severity"]
                labels.update(severity=MIXIN_SEVERITY[level], guide_severity=level)
                if "escalated_from" in labels:
                    labels["escalated_from"] = MIXIN_SEVERITY[labels["escalated_from"]]
            assert theirs.get("labels") == labels


# -- alert names -------------------------------------------------------------------------------
def other_names() -> set[str]:
    data: dict[str, list[str]] = yaml.safe_load(OTHER_MIXINS.read_text())
    return {name for names in data.values() for name in names}


def test_prefixed_alert_names_collide_with_no_other_mixin() -> None:
    shipped = {r["alert"] for r in rules(GENERATED / "saasmon-alerts.yaml")}
    variant = {r["alert"] for r in rules(VARIANT / "saasmon-alerts.yaml")}
    assert shipped & other_names() == KNOWN_COLLISIONS
    assert variant & other_names() == set()
    assert len(variant) == len(shipped)
