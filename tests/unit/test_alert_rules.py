"""The generated alert and recording rules: current, valid, tested, linted, and not dead."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from alert_rules.generator.catalog import AREAS, SOURCES, load_catalog
from alert_rules.generator.promtool_tests import group_area
from tests.support.yamlfile import load_yaml

REPO = Path(__file__).resolve().parents[2]
GENERATED = REPO / "alert_rules" / "generated"
ALERTS = GENERATED / "saasmon-alerts.yaml"
RECORDING = GENERATED / "saasmon-rules.yaml"
HAND_TESTS = REPO / "alert_rules" / "tests"
THIRD_PARTY = REPO / "tests" / "fixtures" / "third_party_metrics.yaml"
SEVERITIES = {"critical", "high", "medium", "low"}
SCRAPE_INTERVAL_SECONDS = 30  # the longest scrape interval we ship (deploy/prometheus)
# Labels whose values come from data without a bound: never aggregate or alert by them.
UNBOUNDED_LABELS = {"query", "queryid", "user", "user_id", "email", "path", "url", "id"}


def load(path: Path) -> dict[str, Any]:
    data = load_yaml(path)
    assert isinstance(data, dict)
    return data


def alert_rules() -> list[dict[str, Any]]:
    return [r for g in load(ALERTS)["groups"] for r in g["rules"]]


def recording_rules() -> list[dict[str, Any]]:
    return [r for g in load(RECORDING)["groups"] for r in g["rules"]]


def seconds(duration: str) -> float:
    return int(duration[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[duration[-1]]


# -- current and valid -------------------------------------------------------------------
@pytest.mark.integration  # the whole Jsonnet render: about 2.5 min of CPU, too slow for make check
@pytest.mark.timeout(900)  # with the mixin-conventions variant; far longer on a busy machine
def test_generated_files_match_the_catalog() -> None:
    out = subprocess.run([sys.executable, "-m", "alert_rules.generator", "--check"],
                         cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_promtool_check_rules_is_clean() -> None:
    out = subprocess.run(["promtool", "check", "rules", str(ALERTS), str(RECORDING)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "WARNING" not in out.stdout + out.stderr


def test_prometheus_operator_variant_holds_the_same_groups(tmp_path: Path) -> None:
    operator = load(GENERATED / "prometheusrule.yaml")
    assert operator["kind"] == "PrometheusRule"
    assert operator["spec"]["groups"] == load(RECORDING)["groups"] + load(ALERTS)["groups"]
    plain = tmp_path / "from-operator.yaml"
    plain.write_text(yaml.safe_dump({"groups": operator["spec"]["groups"]}))
    out = subprocess.run(["promtool", "check", "rules", str(plain)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_rule_files_are_stamped_with_the_bundle_version() -> None:
    from saasmon import __version__
    for path in (ALERTS, RECORDING, GENERATED / "prometheusrule.yaml"):
        assert f"saasmon alert bundle {__version__}" in path.read_text().splitlines()[0]
    assert f"## {__version__}" in (REPO / "alert_rules" / "CHANGELOG.md").read_text()


def _area_rule_files(tmp_path: Path) -> list[Path]:
    """The generated test files, each test pointed at only its own alert's rules.

    A test group makes promtool load, parse and evaluate every rule of its rule files at
    every step, so the work grows with the rules a file names, not with the rules a test
    reads. An alerting rule's result depends only on its expression and the input series:
    the alerts file records no series and no rule reads ALERTS (both asserted), and
    promtool compares only the alerts of the test's alertname. So each alert gets a file of
    its own rules (their groups' names and order kept, the rules copied unchanged), and its
    tests a file naming only that one: the same verdicts, several times faster.
    Every group of the shipped file must still be used by some area's test file.
    """
    shipped = load(ALERTS)["groups"]
    for group in shipped:
        for rule in group["rules"]:
            assert "alert" in rule and "record" not in rule, rule
            assert "ALERTS" not in rule["expr"], rule["alert"]
    groups = {g["name"]: g for g in shipped}
    used: set[str] = set()
    out = []
    for path in sorted((GENERATED / "tests").glob("*.yaml")):
        area = re.fullmatch(r"alerts-(.+?)(?:-every-\d+m)?\.test\.yaml", path.name)
        assert area, path.name
        wanted = [n for n in groups
                  if group_area(n) == area.group(1)
                  or (area.group(1) == "slo" and group_area(n).startswith("slo-"))]
        assert wanted, f"{path.name}: no rule group for its area"
        used.update(wanted)
        test = load(path)
        assert test["rule_files"] == ["../saasmon-alerts.yaml"]
        by_alert: dict[str, list[dict[str, Any]]] = {}
        for case in test["tests"]:
            (name,) = {check["alertname"] for check in case["alert_rule_test"]}
            by_alert.setdefault(name, []).append(case)
        for name, cases in by_alert.items():
            own = [{**groups[n], "rules": [r for r in groups[n]["rules"] if r["alert"] == name]}
                   for n in wanted]
            own = [g for g in own if g["rules"]]
            assert own, f"{path.name}: tests of {name}, which no group of its area holds"
            rules = tmp_path / f"rules-{path.stem}-{name}.yaml"
            # JSON is YAML to promtool, and Python writes it far faster than PyYAML does.
            rules.write_text(json.dumps({"groups": own}))
            copy = tmp_path / f"{path.stem}-{name}.yaml"
            copy.write_text(json.dumps({**test, "rule_files": [str(rules)], "tests": cases}))
            out.append(copy)
    assert used == set(groups), f"groups no test file covers: {set(groups) - used}"
    return out


def test_promtool_unit_tests_pass(tmp_path: Path) -> None:
    files = _area_rule_files(tmp_path) + sorted(HAND_TESTS.glob("*.yaml"))
    # promtool runs files one after another; two processes use both cores of a CI machine.
    halves = [files[0::2], files[1::2]]
    procs = [subprocess.Popen(["promtool", "test", "rules", *map(str, half)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for half in halves if half]
    outputs = [(p.communicate()[0], p.returncode) for p in procs]
    failed = [out for out, code in outputs if code != 0]
    assert not failed, "\n".join(out[-4000:] for out in failed)


# -- every alert has its three cases ------------------------------------------------------
def _cases() -> dict[str, dict[str, Any]]:
    cases = {}
    for path in sorted((GENERATED / "tests").glob("*.yaml")):
        for case in load(path)["tests"]:
            cases[case["name"]] = case
    return cases


def _expects(case: dict[str, Any], rule: dict[str, Any]) -> bool:
    test = case["alert_rule_test"][0]
    return test["alertname"] == rule["alert"] and any(
        rule["labels"].items() <= a["exp_labels"].items() and _match_labels(rule) <= a["exp_labels"].items()
        for a in test["exp_alerts"])


def _match_labels(rule: dict[str, Any]) -> set[tuple[str, str]]:
    """Equality matchers the rule adds to its series (e.g. cron_job=...) identify it too."""
    selector = re.match(r"^[a-zA-Z_:][\w:]*\{([^}]*)\}", rule["expr"])
    if not selector:
        return set()
    return {(m[0], m[1]) for m in re.findall(r'(\w+)="([^"]*)"', selector.group(1))
            if m[0] not in ("job", "slo")}


def test_every_alert_has_a_firing_a_quiet_and_a_too_short_case() -> None:
    cases = _cases()
    missing = []
    for index, rule in enumerate(alert_rules()):
        prefix = f"#{index} {rule['alert']}"
        fires = [c for n, c in cases.items() if n.startswith(prefix + " ") and n.endswith(": fires")]
        quiet = [c for n, c in cases.items() if n.startswith(prefix + " ") and ": quiet" in n]
        short = [c for n, c in cases.items()
                 if n.startswith(prefix + " ") and n.endswith(": bad for less than for")]
        if rule["alert"] == "Watchdog":  # vector(1): no threshold, no `for`, only "fires"
            assert fires and _expects(fires[0], rule)
            continue
        if not (fires and quiet and short):
            missing.append(prefix)
            continue
        assert _expects(fires[0], rule), f"{prefix}: firing case does not expect it"
        assert not _expects(quiet[0], rule), f"{prefix}: quiet case expects it"
        assert not _expects(short[0], rule), f"{prefix}: too-short case expects it"
        assert short[0]["alert_rule_test"][0]["eval_time"] == f"{int(seconds(rule['for']) // 60)}m"
    assert not missing, f"alerts without their three cases: {missing}"


# -- lint ---------------------------------------------------------------------------------
def test_alerts_follow_the_mixin_conventions() -> None:
    problems = []
    for rule in alert_rules():
        name, labels, notes = rule["alert"], rule["labels"], rule["annotations"]
        where = f"{name}/{labels.get('severity')}"
        if not re.fullmatch(r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*", name):
            problems.append(f"{where}: not CamelCase")
        if name == "Watchdog":
            continue
        if labels.get("severity") not in SEVERITIES:
            problems.append(f"{where}: severity {labels.get('severity')!r}")
        if labels.get("area") not in {*AREAS, "slo"}:
            problems.append(f"{where}: area {labels.get('area')!r}")
        guides = str(labels.get("guide", "")).split(",")
        if not set(guides) <= set(SOURCES) or len(set(guides)) != len(guides):
            problems.append(f"{where}: guide {labels.get('guide')!r}")
        if not labels.get("guide_level"):
            problems.append(f"{where}: no guide_level")
        for key in ("summary", "description", "runbook_url"):
            if not notes.get(key):
                problems.append(f"{where}: no {key}")
        if "{{ $labels." not in notes.get("description", ""):
            problems.append(f"{where}: description is not templated with labels")
        if any("{{" in str(v) for v in labels.values()):
            problems.append(f"{where}: templated label (new series per value)")
        runbook = REPO / "docs" / "runbooks" / f"{name}.md"
        if not notes.get("runbook_url", "").endswith(f"docs/runbooks/{name}.md") or not runbook.exists():
            problems.append(f"{where}: runbook {runbook.name} missing")
        if seconds(rule.get("for", "0s")) < 2 * SCRAPE_INTERVAL_SECONDS:
            problems.append(f"{where}: for {rule.get('for')} is under two scrape intervals")
    assert not problems, "\n".join(problems)


def test_a_level_several_guides_state_is_one_alert_citing_them_all() -> None:
    """Issue 13 §2 r: the same expression at the same severity from two guides was two
    alerts (two notifications for one condition). Only an escalation twin repeats its
    rule's expression and severity, told apart by `escalated_from` and a longer `for`."""
    seen: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for rule in alert_rules():
        labels = rule["labels"]
        key = (rule["alert"], rule["expr"], labels.get("severity", ""),
               labels.get("escalated_from", ""))
        other = seen.setdefault(key, rule)
        assert other is rule, (f"{rule['alert']} {labels.get('severity')}: "
                               f"{other['labels'].get('guide')} and {labels.get('guide')} "
                               f"are two rules for `{rule['expr']}`")
    by_id = {(r["alert"], r["expr"], r["labels"]["severity"]): r for r in alert_rules()
             if "escalated_from" not in r["labels"]}
    for rule in alert_rules():
        if "escalated_from" in rule["labels"]:
            original = by_id[(rule["alert"], rule["expr"], rule["labels"]["escalated_from"])]
            assert seconds(rule["for"]) > seconds(original["for"]), rule["alert"]
    # The merged levels cite every guide behind them.
    merged = {(r["alert"], r["labels"]["severity"]): r for r in alert_rules()
              if "," in r["labels"].get("guide", "") and "escalated_from" not in r["labels"]}
    for name, severity, guides in [("HostCpuHigh", "medium", "dirt-free-crm,tpt-erp"),
                                   ("ApiErrorRateHigh", "high", "nova-crm,dirt-free-crm"),
                                   ("PostgresSlowQueries", "low", "nova-crm,dirt-free-crm"),
                                   ("PostgresSlowQueries", "medium", "dirt-free-crm,tpt-erp"),
                                   ("AppEndpointDown", "critical",
                                    "dirt-free-crm,tpt-erp,saas-ops-module")]:
        rule = merged[(name, severity)]
        assert rule["labels"]["guide"] == guides
        for guide in guides.split(","):
            assert f"{guide} §" in rule["annotations"]["description"], (name, guide)


def test_recording_rules_are_named_level_metric_operations() -> None:
    bad = [r["record"] for r in recording_rules()
           if not re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", r["record"])]
    assert not bad


def _grouping_labels(expr: str) -> set[str]:
    found = re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", expr)
    return {label.strip() for group in found for label in group.split(",") if label.strip()}


def test_no_rule_groups_by_an_unbounded_label() -> None:
    exprs = [r["expr"] for r in alert_rules() + recording_rules()]
    offenders = {label for e in exprs for label in _grouping_labels(e)} & UNBOUNDED_LABELS
    assert not offenders


# -- metrics the rules read ---------------------------------------------------------------
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "offset", "bool", "inf", "nan"}


def metric_references(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, __name__ regexes) an expression selects; recorded names included."""
    regexes = set(re.findall(r'__name__=~"([^"]+)"', expr))
    text = re.sub(r'"[^"]*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        token, rest = match.group(0), text[match.end():].lstrip()
        if token in PROMQL_WORDS or rest.startswith("("):
            continue
        if re.fullmatch(r"\d+[smhdwy]", token) or (match.start() > 0 and text[match.start() - 1].isdigit()):
            continue
        names.add(token)
    return names, regexes


def _counter_arguments(expr: str) -> set[str]:
    return set(re.findall(r"\b(?:rate|irate|increase)\(\s*([a-zA-Z_:][\w:]*)", expr))


@pytest.mark.integration  # the live exporters: PostgreSQL, Redis, every exporter
def test_rate_and_increase_only_on_counters(exported: dict[str, str]) -> None:
    bad = []
    for rule in alert_rules() + recording_rules():
        for name in _counter_arguments(rule["expr"]):
            kind = exported.get(name)
            if kind is not None and kind not in ("counter", "histogram", "summary"):
                bad.append(f"{rule.get('alert') or rule.get('record')}: rate() over {kind} {name}")
    assert not bad, bad


@pytest.mark.integration  # the live exporters: PostgreSQL, Redis, every exporter
def test_no_alert_reads_a_metric_nobody_exports(exported: dict[str, str]) -> None:
    recorded = {r["record"] for r in recording_rules()}
    dead = []
    for rule in alert_rules() + recording_rules():
        names, regexes = metric_references(rule["expr"])
        for name in names - recorded:
            if name not in exported:
                dead.append(f"{rule.get('alert') or rule.get('record')}: {name}")
        for regex in regexes:
            if not any(re.fullmatch(regex, n) for n in exported):
                dead.append(f"{rule.get('alert') or rule.get('record')}: {{__name__=~{regex!r}}}")
    assert not dead, "\n".join(sorted(set(dead)))


def test_every_recorded_series_an_alert_reads_is_recorded() -> None:
    recorded = {r["record"] for r in recording_rules()}
    for rule in alert_rules():
        for name in metric_references(rule["expr"])[0]:
            if ":" in name:
                assert name in recorded, f"{rule['alert']} reads {name}, which no rule records"


# -- catalog coverage ----------------------------------------------------------------------
def test_every_catalog_entry_is_encoded_or_listed_as_unencodable() -> None:
    catalog = load_catalog()
    unmapped = [e.id for g in catalog.guides for e in g.entries
                if e.levels and e.comparator and not (e.signal or e.encoded_by)]
    assert not unmapped, f"entries with thresholds but no encoding: {unmapped}"


@pytest.fixture(scope="module")
def exported(live_metrics: dict[str, str]) -> dict[str, str]:  # noqa: F811 - fixture
    """Sample names -> metric type: our exporters (live run) plus node/blackbox lists."""
    third = load(THIRD_PARTY)
    out = dict(live_metrics)
    for exporter in third.values():
        for name, kind in exporter.items():
            out.setdefault(name, kind)
            if kind in ("histogram", "summary"):
                for suffix in ("_bucket", "_sum", "_count"):
                    out.setdefault(name + suffix, kind)
            if kind == "counter" and not name.endswith("_total"):
                out.setdefault(name + "_total", kind)
    return out


from tests.support.live_metrics import live_metrics  # noqa: E402,F401  (fixture)
