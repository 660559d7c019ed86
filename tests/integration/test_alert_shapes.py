"""Every alert judged on the data shapes production produces (issue 13 §3), generated from
the mixin's structured rule descriptions (alert_rules/generated/rule-descriptions.json), run
by the real `promtool test rules`.

Two levels:
- each alert on its own input series, by its kind: one bad scrape among good ones pages
  no one (no critical or high), a value oscillating around the threshold notifies at most
  once per Alertmanager group interval, and the alert resolves once the fault clears;
- the whole rule set on a healthy production (tests/support/production_world.py) shaped as
  production is: idle gaps, a brand-new deployment, counter resets, an exporter restart,
  one failed probe, a declined card, a quiet hour last week. Nothing pages, and every
  recorded series an alert reads is a number (no NaN, no ±Inf) once the shape is over. A
  fault after the shape still fires (no blindness) and resolves.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
import yaml

from alert_rules.generator.promtool_tests import (
    fire_and_quiet,
    guard_key,
    guard_values,
    minutes,
    series_key,
    series_of,
    values_text,
)
from tests.support.production_world import (
    ABSENT_BY_DEFAULT,
    APP,
    INTEGRATIONS,
    REDIS,
    ROUTE,
    Line,
    Timeline,
)
from tests.support.rule_scenarios import GENERATED, ROOT, RULE_FILES, Scenario, run, run_all

DESCRIPTIONS: list[dict[str, Any]] = json.loads((GENERATED / "rule-descriptions.json").read_text())
THRESHOLD_RULES = [d for d in DESCRIPTIONS if d["kind"] not in ("burn_rate", "always")]
PAGES = ("critical", "high")
# promtool over every rule for hours of samples: about a minute a test alone, more under load.
pytestmark = pytest.mark.timeout(600)
SCRAPE = 15  # seconds: the bundle's scrape and evaluation interval


def group_interval_seconds() -> int:
    """Alertmanager's group_interval: the least time between two notifications of a group."""
    route = yaml.safe_load((ROOT / "alertmanager" / "alertmanager.yml").read_text())["route"]
    return minutes(route["group_interval"]) * 60


def area_of(desc: dict[str, Any]) -> str:
    return str(desc["area"])


def input_key(desc: dict[str, Any]) -> str:
    name, _, labels = series_of(desc)
    return series_key(name, labels)


def compare(value: float, comparator: str, threshold: float) -> bool:
    return {">": value > threshold, "<": value < threshold,
            ">=": value >= threshold, "<=": value <= threshold}[comparator]


def healthy_value(desc: dict[str, Any]) -> float:
    """A value no rule of the alert's ladder fires on (one rule's quiet side may be another
    rule's bad side: 1 % errors is quiet for a 5 % level and bad for the 1 % one)."""
    ladder = [d for d in THRESHOLD_RULES if d["alert"] == desc["alert"]]
    candidates = sorted({fire_and_quiet(d["comparator"], d["threshold"])[1] for d in ladder}
                        | {d["threshold"] + step for d in ladder for step in (-1.0, 1.0)})
    for value in (candidates if desc["comparator"] in ("<", "<=") else reversed(candidates)):
        if not any(compare(value, d["comparator"], d["threshold"]) for d in ladder):
            return value
    raise AssertionError(f"{desc['alert']}: no value is healthy for every level")


def inputs(desc: dict[str, Any], samples: list[float]) -> list[dict[str, str]]:
    """The alert's input series, and its guard held passing (the guard is not the fault)."""
    out = [{"series": input_key(desc), "values": values_text(samples)}]
    guard = guard_key(desc)
    if guard is not None:
        out.append({"series": guard, "values": values_text([guard_values(desc)[0]] * len(samples))})
    return out


def paged(alert: str, window: str) -> str:
    """The pages (critical/high) of one alert name at any evaluation in `window`."""
    return (f'last_over_time(ALERTS{{alertname="{alert}",alertstate="firing",'
            f'severity=~"{"|".join(PAGES)}"}}[{window}])')


# ------------------------------------------------------------------ each alert on its input
def one_bad_scrape(desc: dict[str, Any]) -> Scenario:
    """Healthy for 30 minutes, bad for one 15 s scrape, healthy again: no page."""
    fire, quiet = fire_and_quiet(desc["comparator"], desc["threshold"])[0], healthy_value(desc)
    samples = [quiet] * 120 + [fire] + [quiet] * 119
    scenario = Scenario(f"{desc['id']} {desc['alert']}: one bad scrape", inputs(desc, samples),
                        interval=f"{SCRAPE}s")
    scenario.exprs.append(("60m", paged(desc["alert"], "60m"), []))
    return scenario


def oscillating(desc: dict[str, Any], group_interval: int) -> Scenario:
    """Across the threshold and back every minute for an hour: the alert starts firing at
    most once per group interval, so Alertmanager sends no more than one notification per
    group interval."""
    fire, quiet = fire_and_quiet(desc["comparator"], desc["threshold"])[0], healthy_value(desc)
    per_minute = 60 // SCRAPE
    samples = ([fire] * per_minute + [quiet] * per_minute) * 30
    scenario = Scenario(f"{desc['id']} {desc['alert']}: oscillating", inputs(desc, samples),
                        interval=f"{SCRAPE}s")
    firing = (f'(max(ALERTS{{alertname="{desc["alert"]}",alertstate="firing",'
              f'severity="{desc["severity"]}"}}) or vector(0))')
    most = 2 * 60 * 60 // group_interval  # a start and an end per group interval
    scenario.exprs.append(("60m", f"changes({firing}[60m:{SCRAPE}s]) > {most}", []))
    return scenario


def clears(desc: dict[str, Any]) -> Scenario:
    """Bad for its `for` and some, then healthy: firing, then resolved at the next evaluation."""
    fire, quiet = fire_and_quiet(desc["comparator"], desc["threshold"])[0], healthy_value(desc)
    hold = minutes(desc["for"])
    bad = hold + 5
    samples = [fire] * (bad + 1) + [quiet] * 5
    scenario = Scenario(f"{desc['id']} {desc['alert']}: the fault clears", inputs(desc, samples))
    scenario.fires(f"{bad}m", desc["alert"], desc["severity"])
    scenario.exprs.append((f"{bad + 1}m", f'ALERTS{{alertname="{desc["alert"]}"}}', []))
    return scenario


AREAS = sorted({area_of(d) for d in THRESHOLD_RULES})


@pytest.mark.parametrize("area", AREAS)
def test_each_alert_on_its_own_input(area: str) -> None:
    """One promtool run per alert name, with only that alert's rules (its ladder and
    escalation twins): the scenarios feed its input series directly, so the area's other
    rules would only cost evaluations."""
    group_interval = group_interval_seconds()
    by_alert: dict[str, list[Scenario]] = {}
    for desc in (d for d in THRESHOLD_RULES if area_of(d) == area):
        scenarios = by_alert.setdefault(desc["alert"], [])
        if desc["severity"] in PAGES:
            scenarios.append(one_bad_scrape(desc))
        scenarios += [oscillating(desc, group_interval), clears(desc)]
    outcomes = run_all([partial(run, scenarios, rule_files=(GENERATED / "saasmon-alerts.yaml",),
                                evaluation_interval=f"{SCRAPE}s", alerts=[alert])
                        for alert, scenarios in by_alert.items()])
    failures = [f"{alert}:\n{outcome}" for alert, outcome in zip(by_alert, outcomes, strict=True)
                if isinstance(outcome, AssertionError)]
    assert not failures, "\n\n".join(failures)


def test_the_descriptions_cover_every_alert_rule() -> None:
    """The suite's cases come from the descriptions: one per rule of the alert file."""
    alerts = yaml.safe_load((GENERATED / "saasmon-alerts.yaml").read_text())
    rendered = [(r["alert"], r["labels"]["severity"]) for g in alerts["groups"] for r in g["rules"]]
    assert [(d["alert"], d["severity"]) for d in DESCRIPTIONS] == rendered


# ------------------------------------------------------------------ the world, shaped
RECORDS = [r["record"] for g in yaml.safe_load(RULE_FILES[0].read_text())["groups"]
           for r in g["rules"]]


def not_a_number(record: str) -> str:
    return f"({record} != {record}) or (abs({record}) == +Inf)"


def world_scenario(name: str, timeline: Timeline, end: int) -> Scenario:
    """Nothing pages at any evaluation, and at `end` every record is a number."""
    scenario = Scenario(name, timeline.input_series())
    scenario.exprs.append((f"{end}m", f'last_over_time(ALERTS{{alertstate="firing",'
                           f'severity=~"{"|".join(PAGES)}"}}[{end}m])', []))
    scenario.exprs += [(f"{end}m", not_a_number(record), []) for record in RECORDS]
    return scenario


# Minutes of world: an hour of steady state, a gap at 2 h, and 90 minutes after it for every
# 5m..1h window to refill (the 1d windows still hold the gap at the end).
HOURS = 270


def shapes() -> Iterator[tuple[str, Timeline]]:
    yield "steady", Timeline(HOURS)
    for gap in (5, 30, 60):
        yield f"idle for {gap} minutes", Timeline(HOURS, idle=set(range(120, 120 + gap)))
    yield "a brand-new deployment", Timeline(HOURS, start=HOURS - 90)
    yield "counters reset (the app restarted)", Timeline(HOURS, resets={150})
    yield "an exporter restart (two missed scrapes, then reset)", Timeline(
        HOURS, missing={149, 150}, resets={151})
    # The world samples every minute and a probe runs every 15 s: one failed probe is a
    # minute whose mean is 3/4 (a whole failed minute would be four probes).
    yield "one failed probe", Timeline(HOURS).override(
        "probe_success", {"job": "blackbox-storage"}, {180: 0.75}).override(
        "probe_success", {"job": "saasmon-app-probe"}, {181: 0.75})
    # A customer's card declined: a failed payment, no provider error.
    yield "a declined card", Timeline(HOURS).override(
        "integration_payments_total", {**INTEGRATIONS, "status": "failed"},
        {m: 1.0 for m in range(180, HOURS + 1)})
    yield "one slow cache scan", Timeline(HOURS).override(
        "redis_key_pattern_scan_complete", REDIS, {180: 0.0}).override(
        "redis_key_pattern_keys", REDIS, {180: 10.0})


@pytest.fixture(scope="module")
def world_outcomes(request: pytest.FixtureRequest) -> dict[str, str | AssertionError]:
    """promtool's verdict on each selected shape: every shape is a promtool run over the
    whole rule set, so they run side by side and each test reads its own."""
    wanted = {item.callspec.params["shape"] for item in request.session.items
              if hasattr(item, "callspec") and "shape" in item.callspec.params}
    selected = [(name, timeline) for name, timeline in shapes() if name in wanted]
    outcomes = run_all([partial(run, [world_scenario(name, timeline, HOURS)])
                        for name, timeline in selected])
    return {name: outcome for (name, _), outcome in zip(selected, outcomes, strict=True)}


@pytest.mark.parametrize("shape", [name for name, _ in shapes()])
def test_the_healthy_world_pages_no_one(shape: str,
                                        world_outcomes: dict[str, str | AssertionError]) -> None:
    outcome = world_outcomes[shape]
    if isinstance(outcome, AssertionError):
        raise outcome


def test_the_world_feeds_every_record() -> None:
    """Each record an alert reads has a series in the healthy world (else the shapes would
    judge nothing), except those absent by a shipped default, each with its reason."""
    scenario = Scenario("coverage", Timeline(90).input_series())
    scenario.exprs += [("90m", f"group({record})", [{"labels": "{}", "value": 1}])
                       for record in RECORDS if record not in ABSENT_BY_DEFAULT]
    run([scenario])


def test_a_fault_after_an_idle_gap_fires_and_resolves() -> None:
    """Not blind after a gap: 2 % errors for 20 minutes after an idle hour fire the error-rate
    alert at each guide's level, and it resolves after the errors stop."""
    errors = Line("http_requests_total", {**ROUTE, "status": "502"})
    timeline = Timeline(HOURS, idle=set(range(120, 180))).add(
        errors, lambda m: 12.0 if 200 <= m < 220 else 0.0)
    scenario = Scenario("errors after an idle hour", timeline.input_series())
    scenario.fires("218m", "ApiErrorRateHigh", "high")
    scenario.exprs.append(("235m", 'ALERTS{alertname="ApiErrorRateHigh",alertstate="firing"}', []))
    run([scenario], areas=["api"])


def test_reconnections_spread_over_an_hour_fire() -> None:
    """A per-hour quantity is judged over its hour: one reconnection every 10 minutes is six
    an hour, above nova-crm's five, though no 5-minute window holds more than one."""
    timeline = Timeline(HOURS).add(Line("realtime_reconnections_total", APP),
                                   lambda m: 1.0 if m >= 150 and m % 10 == 0 else 0.0)
    scenario = Scenario("six reconnections an hour", timeline.input_series())
    scenario.fires(f"{HOURS}m", "RealtimeReconnectionsHigh", "high")
    run([scenario], areas=["realtime"])
