"""Three `promtool test rules` cases for every generated alert rule.

For each rule: a series that fires it, one just on the quiet side of its threshold, and
one that is bad for less than its `for` duration. The alert files are tested on the
series they read (recorded series are fed directly; recording rules have their own
tests), and the expected alerts at the evaluation time are worked out by simulating
Prometheus' pending/firing state machine for every rule of the same alert name, so
ladders (several severities under one name) are asserted in full.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alert_rules.generator.catalog import Catalog, Rule
from alert_rules.generator.gotemplate import expand

STEP_MINUTES = 1  # evaluation interval of the tests
UNITS = {"s": 1 / 60, "m": 1, "h": 60, "d": 1440}
# Values for labels the selectors leave open; any value is as good as another.
LABEL_VALUES = {"instance": "host-1:9630", "target": "main", "collector": "activity",
                "cron_job": "nightly-report", "channel": "sms", "provider": "stripe",
                "pattern": "library:item:*"}
SELECTOR = re.compile(r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)?\{(?P<matchers>[^}]*)\}')
MATCHER = re.compile(r'(?P<label>[a-zA-Z_]+)\s*(?P<op>=~|!=|!~|=)\s*"(?P<value>[^"]*)"')


def minutes(duration: str) -> int:
    return max(1, int(int(duration[:-1]) * UNITS[duration[-1]]))


def fmt(value: float) -> str:
    return format(value, ".12g")


def _regex_example(pattern: str) -> str:
    """A concrete string matching the simple regexes our selectors use (saasmon-.*, .+_x)."""
    return pattern.replace(".+", "pg").replace(".*", "test")


def series_of(expr: str, match: dict[str, str], labels: list[str]) -> tuple[str, dict[str, str]]:
    """Metric name and labels of an input series the alert's left-hand side selects."""
    lhs = expr.split(" ", 1)[0] if not expr.startswith("{") else expr[: expr.index("}") + 1]
    found = SELECTOR.match(lhs)
    name = lhs
    values: dict[str, str] = {}
    if found:
        name = found.group("name") or ""
        for m in MATCHER.finditer(found.group("matchers")):
            value = m.group("value") if m.group("op") == "=" else _regex_example(m.group("value"))
            if m.group("label") == "__name__":
                name = value
            elif m.group("op") in ("=", "=~"):
                values[m.group("label")] = value
    for label in labels:
        values.setdefault(label, LABEL_VALUES.get(label, "saasmon-test" if label == "job" else "x"))
    values.update(match)
    return name, values


def _compare(value: float, comparator: str, threshold: float) -> bool:
    return {">": value > threshold, "<": value < threshold,
            ">=": value >= threshold, "<=": value <= threshold}[comparator]


def fire_and_quiet(comparator: str, threshold: float) -> tuple[float, float]:
    delta = abs(threshold) * 0.1 if threshold else 1.0
    if comparator == ">":
        return threshold + delta, threshold
    if comparator == ">=":
        return threshold, threshold - delta
    if comparator == "<":
        return threshold - delta, threshold
    return threshold, threshold + delta


@dataclass
class Candidate:
    """A rule of one alert name, as far as the simulation needs it."""

    alert: dict[str, Any]
    condition: Callable[[dict[str, list[float]], int], float | None]  # value when true
    labels: dict[str, str]


def firing_at(candidate: Candidate, series: dict[str, list[float]], at: int) -> float | None:
    """Prometheus' rule state machine at minute `at`: the value if firing, else None."""
    active_since: int | None = None
    value: float | None = None
    for t in range(0, at + 1, STEP_MINUTES):
        value = candidate.condition(series, t)
        if value is None:
            active_since = None
        elif active_since is None:
            active_since = t
    hold = minutes(candidate.alert["for"])
    if value is not None and active_since is not None and at - active_since >= hold:
        return value
    return None


def _sample(series: dict[str, list[float]], key: str, t: int) -> float | None:
    values = series.get(key)
    if not values:
        return None
    return values[min(t, len(values) - 1)]


def _expected(candidates: list[Candidate], series: dict[str, list[float]], at: int) -> list[dict[str, Any]]:
    out = []
    for c in candidates:
        value = firing_at(c, series, at)
        if value is None:
            continue
        labels = {**c.labels, **c.alert["labels"]}
        annotations = {k: expand(v, labels, value) for k, v in c.alert["annotations"].items()}
        out.append({"exp_labels": labels, "exp_annotations": annotations})
    return sorted(out, key=lambda a: sorted(a["exp_labels"].items()))


def _values_text(values: list[float]) -> str:
    """promtool's expanding notation: runs of equal values as `v+0xN`."""
    parts: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        parts.append(f"{fmt(values[i])}+0x{j - i}" if j > i else fmt(values[i]))
        i = j + 1
    return " ".join(parts)


def _case(name: str, candidates: list[Candidate], series: dict[str, list[float]],
          at: int, alertname: str) -> dict[str, Any]:
    return {
        "name": name,
        "interval": f"{STEP_MINUTES}m",
        "input_series": [{"series": key, "values": _values_text(vals)}
                         for key, vals in series.items()],
        "alert_rule_test": [{"eval_time": f"{at}m", "alertname": alertname,
                             "exp_alerts": _expected(candidates, series, at)}],
    }


def _series_key(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def catalog_cases(catalog: Catalog, rendered_rules: list[tuple[Rule, dict[str, Any]]],
                  index: dict[int, int]) -> dict[str, list[dict[str, Any]]]:
    by_alert: dict[str, list[tuple[Rule, dict[str, Any]]]] = {}
    for rule, alert in rendered_rules:
        by_alert.setdefault(alert["alert"], []).append((rule, alert))
    files: dict[str, list[dict[str, Any]]] = {}
    for alertname, pairs in by_alert.items():
        area = catalog.signals[pairs[0][0].signal].area
        signal = catalog.signals[pairs[0][0].signal]

        def make(rule: Rule, alert: dict[str, Any], labels_of: list[str] = signal.labels) -> Candidate:
            name, labels = series_of(alert["expr"], rule.match, labels_of)
            key = _series_key(name, labels)
            comparator, threshold = rule.comparator, float(alert["expr"].rsplit(" ", 1)[1])

            def condition(series: dict[str, list[float]], t: int) -> float | None:
                # A selector with match labels sees only series that carry them.
                for other_key in series:
                    if other_key == key or _selects(key, other_key):
                        value = _sample(series, other_key, t)
                        if value is not None and _compare(value, comparator, threshold):
                            return value
                return None

            return Candidate(alert, condition, labels)

        candidates = [make(r, a) for r, a in pairs]
        for rule, alert in pairs:
            name, labels = series_of(alert["expr"], rule.match, signal.labels)
            key = _series_key(name, labels)
            threshold = float(alert["expr"].rsplit(" ", 1)[1])
            fire, quiet = fire_and_quiet(rule.comparator, threshold)
            hold = minutes(alert["for"])
            at = hold + 1
            tag = (f"#{index[id(alert)]} {alertname} {rule.severity} {rule.guide} "
                   f"{rule.comparator} {fmt(threshold)}")
            cases = [
                _case(f"{tag}: fires", candidates, {key: [fire] * (at + 1)}, at, alertname),
                _case(f"{tag}: quiet at the threshold", candidates, {key: [quiet] * (at + 1)},
                      at, alertname),
                _case(f"{tag}: bad for less than for", candidates,
                      {key: [fire] * hold + [quiet] * 2}, hold, alertname),
            ]
            if not any(c["alert_rule_test"][0]["exp_alerts"] and _has(c, rule, alert)
                       for c in cases[:1]):
                raise AssertionError(f"{tag}: the firing case does not fire it")
            files.setdefault(area, []).extend(cases)
    return files


def _selects(selector_key: str, series_key: str) -> bool:
    """Whether a series with more labels is seen by a selector with fewer (same name)."""
    name_a, _, labels_a = selector_key.partition("{")
    name_b, _, labels_b = series_key.partition("{")
    if name_a != name_b:
        return False
    need = set(labels_a.rstrip("}").split(",")) - {""}
    have = set(labels_b.rstrip("}").split(","))
    return need <= have


def _has(case: dict[str, Any], rule: Rule, alert: dict[str, Any]) -> bool:
    return any(a["exp_labels"]["severity"] == rule.severity and a["exp_labels"]["guide"] == rule.guide
               for a in case["alert_rule_test"][0]["exp_alerts"])


def slo_cases(rendered: dict[str, Any], index: dict[int, int]) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    groups = [g for g in rendered["alerts"]["groups"] if g["name"].startswith("saasmon-slo-")]
    for group in groups:
        slo = group["name"].removeprefix("saasmon-slo-")
        candidates = []
        for alert in group["rules"]:
            long_part, short_part = alert["expr"].split("\nand\n")
            long_rec, threshold = long_part.split("{")[0], float(long_part.rsplit(" ", 1)[1])
            short_rec = short_part.split("{")[0]
            labels = {"slo": slo, "job": "saasmon-test"}
            if "instance=" in alert["annotations"]["description"]:
                labels["instance"] = "host-1:9630"
            lk, sk = _series_key(long_rec, labels), _series_key(short_rec, labels)

            def condition(series: dict[str, list[float]], t: int, lk: str = lk, sk: str = sk,
                          threshold: float = threshold) -> float | None:
                a, b = _sample(series, lk, t), _sample(series, sk, t)
                return b if a is not None and b is not None and a > threshold and b > threshold else None

            candidates.append((Candidate(alert, condition, labels), lk, sk, threshold))
        only = [c for c, *_ in candidates]
        for candidate, lk, sk, threshold in candidates:
            alert = candidate.alert
            hold, name = minutes(alert["for"]), alert["alert"]
            at = hold + 1
            tag = f"#{index[id(alert)]} {name} {alert['labels']['severity']} {alert['labels']['long_window']}"
            high = threshold * 2
            cases += [
                _case(f"{tag}: fires", only, {lk: [high] * (at + 1), sk: [high] * (at + 1)}, at, name),
                _case(f"{tag}: quiet when the short window is at the threshold", only,
                      {lk: [high] * (at + 1), sk: [threshold] * (at + 1)}, at, name),
                _case(f"{tag}: bad for less than for", only,
                      {lk: [high] * hold + [0.0] * 2, sk: [high] * hold + [0.0] * 2}, hold, name),
            ]
    return cases


def rendered_catalog_rules(catalog: Catalog, rendered: dict[str, Any]) -> list[tuple[Rule, dict[str, Any]]]:
    """Pair each catalog rule with its rendered alert (the mixin keeps the catalog order per area)."""
    alerts = {g["name"]: g["rules"] for g in rendered["alerts"]["groups"]}
    pairs: list[tuple[Rule, dict[str, Any]]] = []
    for area in sorted({catalog.signals[r.signal].area for r in catalog.rules}):
        rules = [r for r in catalog.rules if catalog.signals[r.signal].area == area]
        group = alerts[f"saasmon-{area}"]
        if len(group) != len(rules):
            raise AssertionError(f"group saasmon-{area}: {len(group)} alerts for {len(rules)} rules")
        for rule, alert in zip(rules, group, strict=True):
            expected = (catalog.signals[rule.signal].alert, rule.severity)
            if (alert["alert"], alert["labels"]["severity"]) != expected:
                raise AssertionError(f"rule {rule.id} does not line up with {alert['alert']}")
            pairs.append((rule, alert))
    return pairs


def watchdog_case(number: int) -> dict[str, Any]:
    return {
        "name": f"#{number} Watchdog: fires",
        "interval": "1m",
        "input_series": [],
        "alert_rule_test": [{"eval_time": "1m", "alertname": "Watchdog", "exp_alerts": [{
            "exp_labels": {"severity": "none", "area": "meta"},
            "exp_annotations": {
                "summary": "Always firing: proves that the alerting pipeline works end to end.",
                "description": "Prometheus evaluates rules and Alertmanager delivers them. The "
                               "heartbeat receiver pages when this alert stops arriving.",
                "runbook_url": "https://github.com/saasmon/saasmon/blob/main/docs/runbooks/Watchdog.md",
            }}]}],
    }


def test_files(catalog: Catalog, rendered: dict[str, Any]) -> dict[str, dict[str, Any]]:
    # Case names start with the rule's position in the alerts file ("#12 ApiErrorRateHigh
    # ..."), so the meta-test can find each rule's three cases.
    alerts = [a for g in rendered["alerts"]["groups"] for a in g["rules"]]
    index = {id(a): i for i, a in enumerate(alerts)}
    by_area = catalog_cases(catalog, rendered_catalog_rules(catalog, rendered), index)
    by_area.setdefault("slo", []).extend(slo_cases(rendered, index))
    watchdog = next(i for i, a in enumerate(alerts) if a["alert"] == "Watchdog")
    by_area.setdefault("meta", []).append(watchdog_case(watchdog))
    return {
        f"alerts-{area}.test.yaml": {
            "rule_files": ["../saasmon-alerts.yaml"],
            "evaluation_interval": f"{STEP_MINUTES}m",
            "tests": cases,
        }
        for area, cases in sorted(by_area.items())
    }
