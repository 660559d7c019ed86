"""Alertmanager HA drill (issue 7 §3): two clustered Alertmanagers, both fed by one real
Prometheus, deliver each notification of a real fault exactly once, and a `kill -9` of one
of them loses nothing. Why the pair sends once: devstack/drills/ha.py.

"Exactly once" is counted QUIET_S after the last expected notification: a duplicate from
the passive peer would have followed the original within its peer-timeout wait. The firing
copies are covered twice over: the resolution comes a whole scaled group_interval (15 s)
after the firing notification, long after any duplicate of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from devstack.drills.ha import HaStack, Peer, start_stack
from tests.support.alertmanager import wait_for

DELIVERY_S = 30  # fault -> notification: scaled `for` + scrape + evaluation + group_wait, x3
# Only alert notifications use these; the Watchdog's webhook is left out: the passive peer
# may repeat it, its scaled 1 s repeat_interval being shorter than the peer's 2 s wait.
ALERT_INTEGRATIONS = ("pagerduty", "slack", "email")


@pytest.fixture(scope="module")
def ha() -> Iterator[HaStack]:
    stack = start_stack()
    try:
        yield stack
    finally:
        stack.stop()


@dataclass(frozen=True)
class Kill:
    victim: Peer
    survivor: Peer
    pings: int  # heartbeat pings before the kill
    survivor_webhooks: float  # webhook notifications the survivor had sent itself


@pytest.fixture(scope="module")
def killed(ha: HaStack) -> Kill:
    """kill -9 of the peer at position 0: the one that sends while both are up."""
    victim, survivor = ha.by_position()
    pings, webhooks = ha.pings(), survivor.sent()["webhook"]
    victim.kill()
    return Kill(victim, survivor, pings, webhooks)


def test_a_real_fault_is_notified_once_by_the_pair_and_resolved_once(ha: HaStack) -> None:
    active, passive = ha.by_position()
    passive_before = passive.sent()
    ha.postgres.stop()
    try:
        # Both peers hold the alert: a single notification is the dedup's doing, not a peer
        # that never heard of the fault.
        wait_for("PostgresDown in both Alertmanagers",
                 lambda: all(p.holds("PostgresDown") for p in ha.peers), timeout=DELIVERY_S)
        labels = active.holds("PostgresDown")
        assert labels is not None and labels["severity"] == "critical"
        receivers = ha.routed(labels)
        # A page fans out: PagerDuty, SMS, #critical-alerts, the team's mailbox, and the
        # guide's #production-alerts.
        assert {"pagerduty", "sms", "email-team"} <= receivers
        wait_for("PostgresDown at every receiver",
                 lambda: ha.arrived("PostgresDown", "firing", receivers), timeout=DELIVERY_S)
        # dirt-free-crm's P0 escalates when not resolved within 5 minutes (5 s scaled): the
        # twin's page to the escalation service is deduplicated by the pair as well.
        escalated = wait_for("the escalated PostgresDown in both Alertmanagers", lambda: (
            active.holds("PostgresDown", escalated=True)
            if all(p.holds("PostgresDown", escalated=True) for p in ha.peers) else None),
            timeout=DELIVERY_S)
        escalation = ha.routed(escalated)
        assert "pagerduty-escalation" in escalation and "pagerduty" not in escalation
        wait_for("the escalation at every receiver", lambda: ha.arrived(
            "PostgresDown", "firing", escalation), timeout=DELIVERY_S)
    finally:
        ha.postgres.start()
    ha.assert_resolved_exactly_once("PostgresDown", labels, receivers, escalation)
    sent = ha.sent("PostgresDown")
    assert {s.delivery.severity for s in sent} == {"critical"}
    # Position 0 sent everything; position 1 found each one in the gossiped log.
    assert ha.senders("PostgresDown") == {active.url}
    passive_after = passive.sent()
    assert {i: passive_after[i] - passive_before[i] for i in ALERT_INTEGRATIONS} == {
        i: 0 for i in ALERT_INTEGRATIONS}


def test_the_watchdog_keeps_reaching_the_heartbeat_while_one_alertmanager_is_dead(
        ha: HaStack, killed: Kill) -> None:
    assert killed.victim.dead()
    # Three more pings, and as many Watchdog webhooks sent by the survivor itself.
    wait_for("three heartbeat pings through the survivor after the kill", lambda: (
        ha.pings() >= killed.pings + 3
        and killed.survivor.sent()["webhook"] >= killed.survivor_webhooks + 3), timeout=20)
    assert killed.victim.dead()


def test_with_one_alertmanager_killed_a_new_fault_is_notified_once_by_the_survivor(
        ha: HaStack, killed: Kill) -> None:
    ha.pg_exporter.stop()
    try:
        labels = wait_for("TargetDown in the survivor",
                          lambda: killed.survivor.holds("TargetDown"), timeout=DELIVERY_S)
        assert labels["job"] == "saasmon-postgres"
        receivers = ha.routed(labels)
        assert receivers
        wait_for("TargetDown at every receiver",
                 lambda: ha.arrived("TargetDown", "firing", receivers), timeout=DELIVERY_S)
    finally:
        ha.pg_exporter.start()
    ha.assert_resolved_exactly_once("TargetDown", labels, receivers)
    assert ha.senders("TargetDown") == {killed.survivor.url}
    assert killed.victim.dead()
