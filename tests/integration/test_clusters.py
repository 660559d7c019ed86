"""Two clusters behind one rule engine (a Thanos/Mimir ruler, a federating Prometheus): the
shipped rules, run by the real `promtool test rules` over the healthy production world
(tests/support/production_world.py) twice, once per `cluster` label value. One cluster's
outage pages as that cluster's only, and every recorded series keeps the cluster label
(no aggregation merges the two). The rules' text is checked for the same in
tests/unit/test_conventions.py; this is the behaviour."""

from __future__ import annotations

import pytest
import yaml

from tests.support.production_world import ABSENT_BY_DEFAULT, PG, REDIS, ROUTE, Line, Timeline
from tests.support.rule_scenarios import RULE_FILES, Scenario, run

# promtool over every rule for hours of two worlds' samples.
pytestmark = pytest.mark.timeout(900)
MINUTES = 240
FAULT = 200  # minute the outage of the broken cluster starts
HEALTHY, BROKEN = "eu-1", "us-1"
PAGES = "critical|high"
RECORDS = [r["record"] for g in yaml.safe_load(RULE_FILES[0].read_text())["groups"]
           for r in g["rules"]]
# What the outage is: the app answers 2 % of requests with 502, PostgreSQL and Redis are down.
OUTAGE_ALERTS = ("ApiErrorRateHigh", "PostgresDown", "RedisDown")


def outage() -> Timeline:
    down = {m: 0.0 for m in range(FAULT, MINUTES + 1)}
    return (Timeline(MINUTES)
            .add(Line("http_requests_total", {**ROUTE, "status": "502"}),
                 lambda m: 12.0 if m >= FAULT else 0.0)
            .override("pg_up", PG, down)
            .override("redis_up", REDIS, down))


def test_one_clusters_outage_pages_as_that_cluster_only() -> None:
    series = (Timeline(MINUTES).input_series({"cluster": HEALTHY})
              + outage().input_series({"cluster": BROKEN}))
    scenario = Scenario("two clusters, one down", series)
    # No page of the healthy cluster, nor one without a cluster label, at any evaluation.
    scenario.exprs.append((f"{MINUTES}m", f'last_over_time(ALERTS{{alertstate="firing",'
                           f'severity=~"{PAGES}",cluster!="{BROKEN}"}}[{MINUTES}m])', []))
    # The broken cluster's outage pages, labelled with its cluster.
    scenario.exprs.append((f"{MINUTES}m", 'group by (cluster, alertname) (ALERTS{alertstate="firing",'
                           f'severity=~"{PAGES}",alertname=~"{"|".join(OUTAGE_ALERTS)}"}})',
                           [{"labels": f'{{alertname="{a}",cluster="{BROKEN}"}}', "value": 1}
                            for a in OUTAGE_ALERTS]))
    # Before the outage every record an alert reads exists once per cluster: none dropped the
    # label (a dropped one would be a third, label-less group) or merged the two.
    scenario.exprs += [
        (f"{FAULT - 10}m", f"group by (cluster) ({record})",
         [{"labels": f'{{cluster="{c}"}}', "value": 1} for c in (HEALTHY, BROKEN)])
        for record in RECORDS if record not in ABSENT_BY_DEFAULT
    ]
    run([scenario])
