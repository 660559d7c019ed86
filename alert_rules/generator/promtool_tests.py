"""Three `promtool test rules` cases for every generated alert rule.

For each rule: a series that fires it, one just on the quiet side of its threshold, and
one that is bad for less than its `for` duration. The alert files are tested on the
series they read (recorded series are fed directly; recording rules have their own
tests), and the expected alerts at the evaluation time are worked out by simulating
Prometheus' pending/firing state machine for every rule of the same alert name, so
ladders (several severities under one name) are asserted in full. What each rule compares
comes from the mixin's structured rule descriptions, never from the rendered PromQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alert_rules.generator.gotemplate import expand


# Evaluation interval of a rule's tests: 1 minute, coarser for long `for` durations so a
# one-day hold is simulated in a few dozen evaluations rather than 1,440 (promtool
# evaluates every rule of the file at every step).
def step_for(hold_minutes: int) -> int:
    for step in (60, 30, 15, 5):
        if hold_minutes >= 12 * step and hold_minutes % step == 0:
            return step
    return 1
UNITS = {"s": 1 / 60, "m": 1, "h": 60, "d": 1440}
# Values for labels the selectors leave open; any value is as good as another.
LABEL_VALUES = {"cluster": "eu-1", "instance": "host-1:9630", "target": "main", "collector": "activity",
                "cron_job": "nightly-report", "channel": "sms", "provider": "stripe",
                "pattern": "library:item:*"}
def group_area(name: str) -> str:
    """The area of a rule group: saasmon-api-2 and saasmon-api.rules are api's (groups of
    more than maxRulesPerGroup rules are split and numbered)."""
    found = re.fullmatch(r"saasmon-(.+?)(?:-\d+)?(?:\.rules)?", name)
    if found is None:
        raise ValueError(f"not a saasmon rule group: {name!r}")
    return found.group(1)


def minutes(duration: str) -> int:
    return max(1, int(int(duration[:-1]) * UNITS[duration[-1]]))


def fmt(value: float) -> str:
    return format(value, ".12g")


def _regex_example(pattern: str) -> str:
    """A concrete string matching the simple regexes our selectors use (saasmon-.*, .+_x)."""
    return pattern.replace(".+", "pg").replace(".*", "test")


Description = dict[str, Any]


def series_of(desc: Description) -> tuple[str, dict[str, str], dict[str, str]]:
    """Metric name, the labels the alert's selector requires, and a full input series'
    labels (the required ones plus a value for every other label the signal carries)."""
    name = desc["series"] or ""
    values: dict[str, str] = {}
    for m in desc["matchers"]:
        value = m["value"] if m["op"] == "=" else _regex_example(m["value"])
        if m["label"] == "__name__":
            name = value
        elif m["op"] in ("=", "=~"):
            values[m["label"]] = value
    required = dict(values)
    for label in desc["labels"]:
        values.setdefault(label, LABEL_VALUES.get(label, "saasmon-test" if label == "job" else "x"))
    return name, required, values


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


Labels = dict[str, str]


@dataclass
class Candidate:
    """A rule of one alert name, as far as the simulation needs it."""

    alert: dict[str, Any]
    # (value, labels of the series that made it true) when the condition holds at a step
    condition: Callable[[dict[str, list[float]], int], tuple[float, Labels] | None]


def firing_at(candidate: Candidate, series: dict[str, list[float]], at: int,
              step: int) -> tuple[float, Labels] | None:
    """Prometheus' rule state machine at minute `at`: (value, labels) if firing.

    Series hold one sample per step; the rule is evaluated at every step from 0.
    """
    active_since: int | None = None
    result: tuple[float, Labels] | None = None
    for t in range(0, at + 1, step):
        result = candidate.condition(series, t // step)
        if result is None:
            active_since = None
        elif active_since is None:
            active_since = t
    hold = minutes(candidate.alert["for"])
    if result is not None and active_since is not None and at - active_since >= hold:
        return result
    return None


def _sample(series: dict[str, list[float]], key: str, index: int) -> float | None:
    values = series.get(key)
    if not values:
        return None
    return values[min(index, len(values) - 1)]


def _expected(candidates: list[Candidate], series: dict[str, list[float]], at: int,
              step: int) -> list[dict[str, Any]]:
    out = []
    for c in candidates:
        found = firing_at(c, series, at, step)
        if found is None:
            continue
        value, series_labels = found
        labels = {**series_labels, **c.alert["labels"]}
        annotations = {k: expand(v, labels, value) for k, v in c.alert["annotations"].items()}
        out.append({"exp_labels": labels, "exp_annotations": annotations})
    return sorted(out, key=lambda a: sorted(a["exp_labels"].items()))


def values_text(values: list[float]) -> str:
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
          at: int, alertname: str, step: int) -> dict[str, Any]:
    return {
        "name": name,
        "interval": f"{step}m",
        "input_series": [{"series": key, "values": values_text(vals)}
                         for key, vals in series.items()],
        "alert_rule_test": [{"eval_time": f"{at}m", "alertname": alertname,
                             "exp_alerts": _expected(candidates, series, at, step)}],
    }


def series_key(name: str, labels: Labels) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def _parse_key(key: str) -> tuple[str, Labels]:
    name, _, inner = key.partition("{")
    return name, dict(MATCHER_EQ.findall(inner))


MATCHER_EQ = re.compile(r'(\w+)="([^"]*)"')
Files = dict[tuple[str, int], list[dict[str, Any]]]  # (area, step) -> cases


def guard_key(desc: Description) -> str | None:
    """The guard series of a guarded rule, with the labels of the rule's input series."""
    if not desc.get("guard"):
        return None
    _, _, labels = series_of(desc)
    return series_key(desc["guard"]["series"], {k: v for k, v in labels.items() if k in desc["labels"]})


def guard_values(desc: Description) -> tuple[float, float]:
    """A guard value that lets the rule fire, and one that holds it back."""
    return fire_and_quiet(desc["guard"]["comparator"], desc["guard"]["threshold"])


def _threshold_candidate(alert: dict[str, Any], desc: Description) -> Candidate:
    name, required, _ = series_of(desc)
    comparator, threshold = desc["comparator"], desc["threshold"]
    guard = guard_key(desc)

    def condition(series: dict[str, list[float]], index: int) -> tuple[float, Labels] | None:
        if guard is not None:
            value = _sample(series, guard, index)
            if value is None or not _compare(value, desc["guard"]["comparator"],
                                             desc["guard"]["threshold"]):
                return None
        for key in series:
            series_name, labels = _parse_key(key)
            # A selector sees a series with its name that carries every label it requires.
            if series_name == name and required.items() <= labels.items():
                value = _sample(series, key, index)
                if value is not None and _compare(value, comparator, threshold):
                    return value, labels
        return None

    return Candidate(alert, condition)


Pair = tuple[Description, dict[str, Any]]


def catalog_cases(pairs: list[Pair], index: dict[int, int], files: Files) -> None:
    by_alert: dict[str, list[Pair]] = {}
    for desc, alert in pairs:
        by_alert.setdefault(alert["alert"], []).append((desc, alert))
    for alertname, group in by_alert.items():
        candidates = [_threshold_candidate(alert, desc) for desc, alert in group]
        for desc, alert in group:
            name, _, labels = series_of(desc)
            key = series_key(name, labels)
            threshold = desc["threshold"]
            fire, quiet = fire_and_quiet(desc["comparator"], threshold)
            hold = minutes(alert["for"])
            step = step_for(hold)
            steps = hold // step
            tag = (f"#{index[id(alert)]} {alertname} {desc['severity']} {desc['guide']} "
                   f"{desc['comparator']} {fmt(threshold)}")
            guard = guard_key(desc)
            # A guarded rule's cases carry a passing guard, plus one case where it fails.
            passing, failing = guard_values(desc) if guard else (0.0, 0.0)
            extra = {guard: [passing] * (steps + 2)} if guard else {}
            cases = [
                _case(f"{tag}: fires", candidates, {key: [fire] * (steps + 2), **extra},
                      hold + step, alertname, step),
                _case(f"{tag}: quiet at the threshold", candidates,
                      {key: [quiet] * (steps + 2), **extra}, hold + step, alertname, step),
                _case(f"{tag}: bad for less than for", candidates,
                      {key: [fire] * steps + [quiet] * 2, **extra}, hold, alertname, step),
            ]
            if guard:
                cases.append(_case(f"{tag}: quiet when its guard fails", candidates,
                                   {key: [fire] * (steps + 2), guard: [failing] * (steps + 2)},
                                   hold + step, alertname, step))
            if not _has(cases[0], desc):
                raise AssertionError(f"{tag}: the firing case does not fire it")
            area = desc["area"]
            files.setdefault((area, step), []).extend(cases)


def _has(case: dict[str, Any], desc: Description) -> bool:
    return any(a["exp_labels"]["severity"] == desc["severity"] and a["exp_labels"]["guide"] == desc["guide"]
               for a in case["alert_rule_test"][0]["exp_alerts"])


def slo_cases(pairs: list[Pair], index: dict[int, int], files: Files) -> None:
    by_slo: dict[str, list[Pair]] = {}
    for desc, alert in pairs:
        by_slo.setdefault(desc["slo"], []).append((desc, alert))
    for slo, group in by_slo.items():
        candidates = []
        for desc, alert in group:
            threshold, least = desc["threshold"], desc["min_errors"]
            labels = {"slo": slo, "job": "saasmon-test"}
            if "instance" in desc["labels"]:
                labels["instance"] = "host-1:9630"
            lk, sk = series_key(desc["long"]["series"], labels), series_key(desc["short"]["series"], labels)
            ck = series_key(desc["errors"]["series"], labels)

            def condition(series: dict[str, list[float]], index: int, lk: str = lk, sk: str = sk,
                          ck: str = ck, threshold: float = threshold, least: float = least,
                          labels: Labels = labels) -> tuple[float, Labels] | None:
                a, b = _sample(series, lk, index), _sample(series, sk, index)
                n = _sample(series, ck, index)
                if (a is not None and b is not None and n is not None and a > threshold
                        and b > threshold and n >= least):
                    return a, labels
                return None

            candidates.append((Candidate(alert, condition), lk, sk, ck, threshold, least))
        only = [c for c, *_ in candidates]
        for candidate, lk, sk, ck, threshold, least in candidates:
            alert = candidate.alert
            hold, name = minutes(alert["for"]), alert["alert"]
            step = step_for(hold)
            steps = hold // step
            tag = f"#{index[id(alert)]} {name} {alert['labels']['severity']} {alert['labels']['long_window']}"
            high = threshold * 2
            enough = [least] * (steps + 2)
            files.setdefault(("slo", step), []).extend([
                _case(f"{tag}: fires", only, {lk: [high] * (steps + 2), sk: [high] * (steps + 2),
                                              ck: enough}, hold + step, name, step),
                _case(f"{tag}: quiet when the short window is at the threshold", only,
                      {lk: [high] * (steps + 2), sk: [threshold] * (steps + 2), ck: enough},
                      hold + step, name, step),
                _case(f"{tag}: quiet below the least error count", only,
                      {lk: [high] * (steps + 2), sk: [high] * (steps + 2),
                       ck: [least - 1] * (steps + 2)}, hold + step, name, step),
                _case(f"{tag}: bad for less than for", only,
                      {lk: [high] * steps + [0.0] * 2, sk: [high] * steps + [0.0] * 2, ck: enough},
                      hold, name, step),
            ])


def watchdog_case(number: int, alert: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": f"#{number} Watchdog always: fires",
        "interval": "1m",
        "input_series": [],
        "alert_rule_test": [{"eval_time": "1m", "alertname": "Watchdog", "exp_alerts": [{
            "exp_labels": alert["labels"], "exp_annotations": alert["annotations"]}]}],
    }


def test_files(rendered: dict[str, Any]) -> dict[str, dict[str, Any]]:
    # Case names start with the rule's position in the alerts file ("#12 ApiErrorRateHigh
    # ..."), so the meta-test can find each rule's three cases.
    alerts = [a for g in rendered["alerts"]["groups"] for a in g["rules"]]
    index = {id(a): i for i, a in enumerate(alerts)}
    pairs = list(zip(rendered["descriptions"], alerts, strict=True))
    files: Files = {}
    catalog_cases([p for p in pairs if p[0]["kind"] not in ("burn_rate", "always")], index, files)
    slo_cases([p for p in pairs if p[0]["kind"] == "burn_rate"], index, files)
    watchdog = next(i for i, a in enumerate(alerts) if a["alert"] == "Watchdog")
    files.setdefault(("meta", 1), []).append(watchdog_case(watchdog, alerts[watchdog]))
    # One file per area and evaluation step (promtool sets the interval per file).
    return {
        f"alerts-{area}{'' if step == 1 else f'-every-{step}m'}.test.yaml": {
            "rule_files": ["../saasmon-alerts.yaml"],
            "evaluation_interval": f"{step}m",
            "tests": cases,
        }
        for (area, step), cases in sorted(files.items())
    }
