"""The HA drill's stack (issue 7 §3): two clustered Alertmanagers behind one real Prometheus.

Prometheus (scrape and evaluation every second) evaluates the generated rules scaled by the
drill time scale and sends every alert to BOTH Alertmanagers, as an HA setup must: the peers
share their notification log and silences, never alerts. Both run the shipped routing and
templates pointed at the stand-in receivers, timers scaled by the same factor. The faults
are real: a PostgreSQL server that stops (PostgresDown) and an exporter that stops
(TargetDown). The drill pieces come from devstack/drills (alerting.py, notifications.py).

Why a pair notifies once: the peers gossip their notification log (nflog: per receiver and
alert group, which alerts were last notified and when). Each peer has a position, its rank
among the cluster members' names; before it notifies, a peer waits position x
--cluster.peer-timeout, then checks the log. Position 0 sends at once and logs it; the
entry reaches position 1 by gossip long before its wait ends, so position 1 finds the
notification done and skips it. If position 0 is dead, nothing is logged and position 1
sends after its wait: the price of the dedup is a delay, never a lost page.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from devstack import scrape
from devstack.alertmanager import Alertmanager
from devstack.drills.alerting import (
    Prometheus,
    amtool_receivers,
    routes,
    scale_timers,
    write_rules,
)
from devstack.drills.harness import SCRAPE_INTERVAL, resend_delay, time_scale
from devstack.drills.notifications import Delivery, ReceiverMap, Receivers, read
from devstack.exporter import Exporter
from devstack.metrics import parse
from devstack.servers import PostgresServer, free_port
from devstack.wait import wait_for
from refapp.receivers import Mail

# Not scaled: the passive peer's wait must cover the active peer's sends (SMTP with
# STARTTLS, the relay's call to Twilio) plus a gossip round on a loaded CI machine, and stay
# well below the scaled group_interval (15 s at the default 1/60).
PEER_TIMEOUT_S = 2
GOSSIP_INTERVAL = "50ms"  # an nflog entry reaches the other peer within ~50 ms
# A duplicate from the passive peer would follow the original within its wait: counting
# after twice that (plus slack) since the last expected notification cannot miss one.
QUIET_S = 2 * PEER_TIMEOUT_S + 1
# Fault removed -> the alert resolved in the Alertmanagers, beyond the group_interval the
# resolution waits for, with room to spare.
SETTLE_S = 30


@dataclass
class Peer(Alertmanager):
    """A real Alertmanager that gossips with its peers on loopback."""

    cluster_port: int = field(default_factory=free_port)
    peers: list[int] = field(default_factory=list)

    def cluster_flags(self) -> list[str]:
        cluster = f"127.0.0.1:{self.cluster_port}"
        return [f"--cluster.listen-address={cluster}", f"--cluster.advertise-address={cluster}",
                *(f"--cluster.peer=127.0.0.1:{p}" for p in self.peers),
                f"--cluster.peer-timeout={PEER_TIMEOUT_S}s",
                f"--cluster.gossip-interval={GOSSIP_INTERVAL}",
                "--cluster.pushpull-interval=1s",
                # The first peer starts before the second listens: retry the join soon.
                "--cluster.reconnect-interval=1s"]

    def dead(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def cluster(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/api/v2/status", timeout=5) as response:
            found: dict[str, Any] = json.loads(response.read())["cluster"]
        return found

    def settled_with(self, members: int) -> bool:
        """Gossip settled (notifications are held until then) with `members` peers."""
        cluster = self.cluster()
        return bool(cluster["status"] == "ready" and len(cluster["peers"]) == members)

    def position(self) -> int:
        """This peer's rank among the members' names: it waits position x peer-timeout."""
        cluster = self.cluster()
        return sorted(p["name"] for p in cluster["peers"]).index(cluster["name"])

    def sent(self) -> Counter[str]:
        """Notifications this peer itself attempted (past the dedup), by integration."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as response:
            samples = parse(response.read().decode())
        return Counter({dict(labels)["integration"]: value
                        for (name, labels), value in samples.items()
                        if name == "alertmanager_notifications_total"})

    def holds(self, alertname: str, escalated: bool = False) -> dict[str, str] | None:
        """The labels of the one active `alertname` alert this peer holds, if any: the
        alert itself, or with `escalated` its escalation twin (label escalated_from)."""
        found = [a for a in self.alerts(alertname=alertname) if a["status"]["state"] == "active"
                 and ("escalated_from" in a["labels"]) == escalated]
        if len(found) != 1:
            return None
        labels: dict[str, str] = found[0]["labels"]
        return labels


@dataclass(frozen=True)
class Sent:
    """A delivery and the Alertmanager that sent it (its external URL is in every Slack,
    PagerDuty and email notification; an SMS carries none)."""

    delivery: Delivery
    sender: str | None


@dataclass
class Pair:
    """The clustered Alertmanager pair with the stand-in receivers behind it, and what they
    received, counted per sender: whatever rule engine feeds the pair (Prometheus here,
    vmalert in devstack/drills/sharded.py) is judged by these counts."""

    root: Path
    scale: float
    receivers: Receivers
    receiver_map: ReceiverMap
    config_path: Path
    peers: list[Peer]

    def _sender(self, item: object) -> str | None:
        text = item.text() if isinstance(item, Mail) else getattr(item, "body", b"").decode()
        found = [p.url for p in self.peers if f"{p.url}/#/" in text]
        return found[0] if len(found) == 1 else None

    def sent(self, alertname: str) -> list[Sent]:
        return [Sent(d, self._sender(item)) for item in self.receivers.recorder.items()
                for d in read(item, self.receiver_map) if d.alertname == alertname]

    def senders(self, alertname: str) -> set[str | None]:
        """The Alertmanagers that sent `alertname` (SMS left out: it names none)."""
        return {s.sender for s in self.sent(alertname)
                if s.delivery.receiver != self.receiver_map.sms}

    def copies(self, alertname: str, status: str) -> Counter[str]:
        """Receiver -> how many times it got this notification."""
        return Counter(s.delivery.receiver for s in self.sent(alertname)
                       if s.delivery.status == status)

    def expected(self, receivers: frozenset[str], status: str) -> Counter[str]:
        """Each routed receiver once; a resolution only where the receiver sends them."""
        return Counter({r: 1 for r in receivers
                        if status == "firing" or self.receiver_map.send_resolved[r]})

    def expected_all(self, groups: list[frozenset[str]], status: str) -> Counter[str]:
        """The same for several alert groups of one alertname (a page and its escalation:
        #critical-alerts hears of each)."""
        return sum((self.expected(g, status) for g in groups), Counter())

    def arrived(self, alertname: str, status: str, receivers: frozenset[str]) -> bool:
        """Every expected notification arrived (the caller counts copies after QUIET_S)."""
        got = self.copies(alertname, status)
        return all(got[r] for r in self.expected(receivers, status))

    def assert_exactly_once(self, alertname: str, *receivers: frozenset[str]) -> None:
        """Each routed receiver got the firing notification once per alert group and, where
        it sends them, the resolution once; no other receiver got either. Call it QUIET_S
        after the last expected notification (a duplicate would have come by then)."""
        for status in ("firing", "resolved"):
            assert self.copies(alertname, status) == self.expected_all(
                list(receivers), status), status

    def assert_resolved_exactly_once(self, alertname: str, labels: dict[str, str],
                                     *receivers: frozenset[str]) -> None:
        """Once the fault is removed: the resolution reaches every receiver that sends one
        (at the group's next tick, one group_interval on), then, QUIET_S later, each
        routed receiver got each notification exactly once."""
        everyone = frozenset[str]().union(*receivers)
        wait_for(f"{alertname} resolved at every receiver that sends resolutions",
                 lambda: self.arrived(alertname, "resolved", everyone),
                 timeout=self.group_interval(labels) + SETTLE_S)
        time.sleep(QUIET_S)
        self.assert_exactly_once(alertname, *receivers)

    def pings(self) -> int:
        return sum(1 for item in self.receivers.recorder.items()
                   for d in read(item, self.receiver_map)
                   if d.receiver == self.receiver_map.heartbeat)

    def routed(self, labels: dict[str, str]) -> frozenset[str]:
        """The receivers the config under test routes this label set to."""
        return amtool_receivers(self.config_path, labels)

    def group_interval(self, labels: dict[str, str]) -> float:
        """Seconds from a group's notification to its next one (a resolution waits for it)."""
        config = yaml.safe_load(self.config_path.read_text())
        return max(r.group_interval for r in routes(config, labels))

    def by_position(self) -> list[Peer]:
        return sorted(self.peers, key=lambda p: p.position())


@dataclass
class HaStack(Pair):
    postgres: PostgresServer
    pg_exporter: Exporter
    prometheus: Prometheus

    def stop(self) -> None:
        stops: list[Callable[[], object]] = [
            self.prometheus.stop, *(p.stop for p in self.peers), self.pg_exporter.stop,
            self.receivers.stop, lambda: self.postgres.stop("immediate")]
        for stop in stops:
            with contextlib.suppress(Exception):
                stop()
        subprocess.run(["rm", "-rf", str(self.root)], check=False)


def scrape_config(jobs: Mapping[str, Sequence[int]]) -> dict[str, Any]:
    """The scraping part of prometheus.yml (what vmagent reads): job -> loopback ports."""
    every = f"{SCRAPE_INTERVAL:g}s"
    return {
        "global": {"scrape_interval": every, "scrape_timeout": every},
        "scrape_configs": [{"job_name": job, "static_configs": [
            {"targets": [f"127.0.0.1:{port}" for port in ports]}]} for job, ports in jobs.items()],
    }


def prometheus_config(rules: list[Path], peers: list[Peer],
                      jobs: dict[str, Exporter]) -> dict[str, Any]:
    """`jobs`: mixin job key -> the exporter scraped under it."""
    every = f"{SCRAPE_INTERVAL:g}s"
    # Every Alertmanager gets every alert: the peers do not pass alerts on.
    return scrape.prometheus_config(
        scrape.scrape_configs({key: [f"127.0.0.1:{e.port}"] for key, e in jobs.items()}),
        every, [f"127.0.0.1:{p.port}" for p in peers], rules, scrape_timeout=every)


def start_pair(root: Path, scale: float, receivers: Receivers,
               cleanup: contextlib.ExitStack) -> tuple[Path, list[Peer]]:
    """Two clustered Alertmanagers with the shipped routing (timers scaled) in front of the
    started `receivers`; stopped by `cleanup`. Returns the config and the peers."""
    config_path = receivers.alertmanager_config(root / "am")
    config_path.write_text(scale_timers(config_path.read_text(), scale))
    # Alertmanager (Go) trusts the SMTP stand-in's self-signed certificate through this.
    env = {"SSL_CERT_FILE": str(receivers.cert)}
    first, second = Peer(config_path, root, env), Peer(config_path, root, env)
    first.peers, second.peers = [second.cluster_port], [first.cluster_port]
    peers = [first, second]
    for peer in peers:
        cleanup.callback(peer.stop)
        peer.start()
    return config_path, peers


def wait_settled(peers: list[Peer]) -> None:
    wait_for("both Alertmanagers settled in one cluster",
             lambda: all(p.settled_with(len(peers)) for p in peers), timeout=30)


def start_stack() -> HaStack:
    """Everything started and proven end to end (a Watchdog ping went through the pair)."""
    # World-readable: initdb runs as the postgres user under root and must enter it.
    root = Path(tempfile.mkdtemp(prefix="saasmon-ha-"))
    root.chmod(0o755)
    scale = time_scale()
    cleanup = contextlib.ExitStack()
    try:
        cleanup.callback(subprocess.run, ["rm", "-rf", str(root)], check=False)
        postgres = PostgresServer(root / "pg", max_connections=20)
        postgres.start()
        cleanup.callback(postgres.stop, "immediate")
        receivers = Receivers(root).start()
        cleanup.callback(receivers.stop)
        pg_exporter = Exporter("postgres", {"dsn": postgres.dsn, "interval_seconds": 1,
                                            "timeout_seconds": 2}, root).start()
        cleanup.callback(pg_exporter.stop)
        config_path, peers = start_pair(root, scale, receivers, cleanup)
        prometheus = Prometheus(root / "prometheus", prometheus_config(
            write_rules(root / "rules", scale, SCRAPE_INTERVAL), peers,
            {"postgres": pg_exporter, "smsRelay": receivers.relay}),
            # Scaled like the rest: an alert that fired before the Alertmanagers were
            # discovered is dropped, and re-sent only after this delay (1 m unscaled).
            flags=[f"--rules.alert.resend-delay={resend_delay(scale)}s"])
        prometheus.workdir.mkdir()
        cleanup.callback(prometheus.stop)
        prometheus.start()
        wait_settled(peers)
        wait_for("Prometheus sends to both Alertmanagers", lambda: len(
            prometheus.api("alertmanagers")["activeAlertmanagers"]) == len(peers), timeout=30)
        wait_for("both targets up", lambda: len(prometheus.query(
            'up{job=~"saasmon-.*"} == 1')) == 2, timeout=30)
        stack = HaStack(root, scale, receivers, receivers.receiver_map(config_path), config_path,
                        peers, postgres=postgres, pg_exporter=pg_exporter, prometheus=prometheus)
        wait_for("a Watchdog ping at the heartbeat", stack.pings, timeout=30)
        cleanup.pop_all()
        return stack
    finally:
        cleanup.close()
