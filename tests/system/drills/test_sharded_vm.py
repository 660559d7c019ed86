"""Sharded scraping on VictoriaMetrics (issue 17 §3): two vmagent shards split the targets,
each target scraped by exactly one; vmalert evaluates the generated rules on VictoriaMetrics
and a real fault pages through the clustered Alertmanager pair exactly as on the
single-Prometheus path: the same alert with the same labels, the receivers the shipped
routing gives it, once each, and resolved once. The stack: devstack/drills/sharded.py.

The fault is Redis stopped (RedisDown): the exporter stays up and reports redis_up 0.
"Exactly once" is counted QUIET_S after the resolution, as in the HA drill.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from devstack.drills.catalog import rules_of
from devstack.drills.harness import SCRAPE_INTERVAL, expected
from devstack.drills.sharded import SHARDS, ShardedStack, start_sharded
from tests.support.alertmanager import wait_for

DELIVERY_S = 30  # fault -> notification: scaled `for` + scrape + evaluation + group_wait, x3
WINDOW_S = 10  # samples of one target counted over this window: one scraper, one per second


@pytest.fixture(scope="module")
def sharded() -> Iterator[ShardedStack]:
    stack = start_sharded()
    try:
        yield stack
    finally:
        stack.stop()


def test_each_target_is_scraped_by_exactly_one_shard(sharded: ShardedStack) -> None:
    assert len(sharded.agents) == SHARDS
    shards = [sharded.scraped_by(agent) for agent in sharded.agents]
    for agent, own in zip(sharded.agents, shards, strict=True):
        assert own, f"shard {agent.member} scrapes nothing: no split"
        assert all(t["health"] == "up" for t in agent.targets()), agent.targets()
    for a, b in itertools.combinations(shards, 2):
        assert not a & b, f"scraped by two shards: {sorted(a & b)}"
    assert set().union(*shards) == sharded.targets()
    # In the data too: one writer per series, one `up` sample per scrape interval. Two
    # shards scraping a target would write about twice as many.
    wait_for(f"{WINDOW_S} s of samples for every target", lambda: sharded.victoria.query(
        f"min(count_over_time(up[{WINDOW_S}s])) >= {WINDOW_S // 2}"), timeout=60)
    limit = WINDOW_S / SCRAPE_INTERVAL + 2
    doubled = sharded.victoria.query(f"count_over_time(up[{WINDOW_S}s]) > {limit:g}")
    assert not doubled, [(s["metric"], s["value"][1]) for s in doubled]


def test_redis_down_pages_once_through_the_pair_as_on_the_prometheus_path(
        sharded: ShardedStack) -> None:
    exp = expected("RedisDown", "high")
    [rule] = rules_of("RedisDown", "high")
    [series] = sharded.victoria.query('redis_up{job="saasmon-redis"}')
    active, _passive = sharded.by_position()
    sharded.redis.kill()
    try:
        wait_for("RedisDown in both Alertmanagers",
                 lambda: all(p.holds("RedisDown") for p in sharded.peers), timeout=DELIVERY_S)
        # Prometheus' alert: the series' labels and the rule's, nothing added by vmalert
        # or by a shard.
        labels = active.holds("RedisDown")
        own = {k: v for k, v in series["metric"].items() if k != "__name__"}
        assert labels == {"alertname": "RedisDown", **own, **rule["labels"]}
        assert [a["labels"] for a in sharded.vmalert.alerts()
                if a["name"] == "RedisDown"] == [labels]
        receivers = sharded.routed(labels)
        assert receivers == exp.receivers  # the single-Prometheus drills' expectation
        wait_for("RedisDown at every receiver",
                 lambda: sharded.arrived("RedisDown", "firing", receivers), timeout=DELIVERY_S)
    finally:
        sharded.redis.start()
    sharded.assert_resolved_exactly_once("RedisDown", labels, receivers)
    sent = sharded.sent("RedisDown")
    assert all(exp.covers(s.delivery) for s in sent), [s.delivery for s in sent]
    assert all(t in s.delivery.text for s in sent if s.delivery.status == "firing"
               for t in exp.text if s.delivery.receiver != sharded.receiver_map.sms)
    # One Alertmanager sent them all; the other found each in the gossiped log.
    assert sharded.senders("RedisDown") == {active.url}
