"""The sharded-scraping drill's stack (issue 17 §3): the bundle on VictoriaMetrics instead of
one Prometheus, with the clustered Alertmanager pair of the HA drill (ha.py) behind it.

    exporters ──scrape──> vmagent shard 0 ─┐
             └─scrape──> vmagent shard 1 ─┴─remote write─> VictoriaMetrics (single node)
                                                              │ /api/v1/query
             Alertmanager pair <──alerts── vmalert ───────────┘ (recording rules and ALERTS
                                                                  written back)

Both shards read one scrape config (ha.scrape_config: the exporters, the Alertmanagers and
the VictoriaMetrics programs themselves) and split its targets by a hash of each target's
labels (`-promscrape.cluster.membersCount=2`, `-promscrape.cluster.memberNum=0|1`): each
target is scraped by exactly one of them, so every series has one writer and vmalert sees
one alert where Prometheus would. vmalert evaluates the generated rules, durations scaled
by the drill time scale (alerting.write_rules), every second, and sends every
alert to both Alertmanagers, which run the shipped routing with scaled timers.

The engine's own durations are scaled like the rules: VictoriaMetrics hides samples younger
than -search.latencyOffset (30 s) from queries, vmalert looks back -datasource.queryStep
(5 m) for a plain selector's last sample; at the default 1/60 that is 0.5 s and 5 s.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from devstack.demo import WEBVITALS_ROUTES
from devstack.drills.alerting import write_rules
from devstack.drills.catalog import mixin_jobs
from devstack.drills.ha import Pair, scrape_config, start_pair, wait_settled
from devstack.drills.harness import SCRAPE_INTERVAL, resend_delay, time_scale
from devstack.drills.notifications import Receivers
from devstack.exporter import Exporter
from devstack.servers import RedisServer
from devstack.victoria import VictoriaMetrics, VmAgent, VmAlert
from devstack.wait import wait_for

SHARDS = 2
# Self-monitoring job whose target may carry a `shard_salt` label (ShardedStack.spread); no
# rule selects on it.
SALT_JOB = "vmalert"


def write_scrape_config(path: Path, jobs: Mapping[str, Sequence[int]], salt: int) -> None:
    config = scrape_config(jobs)
    if salt:
        for job in config["scrape_configs"]:
            if job["job_name"] == SALT_JOB:
                job["static_configs"][0]["labels"] = {"shard_salt": str(salt)}
    path.write_text(yaml.safe_dump(config, sort_keys=False))


@dataclass
class ShardedStack(Pair):
    redis: RedisServer
    exporters: dict[str, Exporter]
    victoria: VictoriaMetrics
    agents: list[VmAgent]
    vmalert: VmAlert
    jobs: dict[str, list[int]]  # job -> the ports both shards were told to scrape
    scrape_file: Path
    cleanup: contextlib.ExitStack

    def targets(self) -> set[tuple[str, str]]:
        """Every (job, instance) of the scrape config."""
        return {(job, f"127.0.0.1:{port}") for job, ports in self.jobs.items() for port in ports}

    def scraped_by(self, agent: VmAgent) -> set[tuple[str, str]]:
        """(job, instance) of every target this shard scrapes, from its targets API."""
        return {(t["labels"]["job"], t["labels"]["instance"]) for t in agent.targets()}

    def shares(self, salt: int) -> list[set[tuple[str, str]]] | None:
        """Each shard's targets, once the shards agree on config `salt`: every target
        scraped by one of them, the salted target labelled as that config says."""
        listed = [t for agent in self.agents for t in agent.targets()]
        salted = [t["labels"].get("shard_salt", "0") for t in listed
                  if t["labels"]["job"] == SALT_JOB]
        shares = [self.scraped_by(agent) for agent in self.agents]
        if salted != [str(salt)] or set().union(*shares) != self.targets():
            return None
        return shares

    def spread(self) -> None:
        """Both shards with targets of their own. The shard of a target is a hash of its
        labels, its random port among them: once in 2^(n-1) runs one shard gets all n.
        Then the vmalert target gets a `shard_salt` label, which moves it or not, and the
        shards read the config again, as they do when targets change."""
        for salt in range(16):
            if salt:
                write_scrape_config(self.scrape_file, self.jobs, salt)
                for agent in self.agents:
                    agent.reload()
            shares = wait_for(f"the shards on scrape config {salt}",
                              functools.partial(self.shares, salt), timeout=30)
            if all(shares):
                return
        raise AssertionError("one shard scrapes every target under 16 salts")

    def stop(self) -> None:
        self.cleanup.close()


def start_sharded() -> ShardedStack:
    """Everything started and proven end to end: every target up in VictoriaMetrics, a
    Watchdog ping from vmalert through the pair at the heartbeat."""
    root = Path(tempfile.mkdtemp(prefix="saasmon-vmshard-"))
    scale = time_scale()
    cleanup = contextlib.ExitStack()
    try:
        cleanup.callback(subprocess.run, ["rm", "-rf", str(root)], check=False)
        redis = RedisServer(root / "redis")
        redis.start()
        cleanup.callback(redis.kill)
        receivers = Receivers(root).start()
        cleanup.callback(receivers.stop)
        exporters = {
            "redis": Exporter("redis", {"targets": [{"name": "main", "url": redis.url}],
                                        "interval_seconds": SCRAPE_INTERVAL}, root),
            "webvitals": Exporter("webvitals", {"allowed_origins": ["http://127.0.0.1"],
                                                "routes": WEBVITALS_ROUTES}, root),
        }
        for exporter in exporters.values():
            cleanup.callback(exporter.stop)
        with concurrent.futures.ThreadPoolExecutor(len(exporters)) as pool:
            list(pool.map(Exporter.start, exporters.values()))
        config_path, peers = start_pair(root, scale, receivers, cleanup)

        victoria = VictoriaMetrics(root / "victoria", latency_offset=f"{30 * scale:g}s")
        # Built before they start: each one's port is a target in the shared scrape config.
        scrape_file = root / "scrape.yml"
        agents = [VmAgent(root / "vmagent", config=scrape_file, remote_write=victoria.write_url,
                          member=n, members=SHARDS) for n in range(SHARDS)]
        rules = write_rules(root / "rules", scale, SCRAPE_INTERVAL)
        vmalert = VmAlert(
            root / "vmalert", rules=rules, datasource=victoria.url, write_to=victoria.url,
            notifiers=[p.url for p in peers], extra=[
                f"-evaluationInterval={SCRAPE_INTERVAL:g}s",
                f"-datasource.queryStep={300 * scale:g}s",
                # As the drills' Prometheus: an alert stays active in Alertmanager for 4x
                # this, longer than a late evaluation on a busy machine (harness.resend_delay).
                f"-rule.resendDelay={resend_delay(scale)}s",
                # Recording rules' results reach the alerts reading them within a second.
                "-remoteWrite.flushInterval=1s",
                # Alerts labelled as Prometheus labels them: no vmalert `alertgroup` label.
                "-disableAlertgroupLabel"])
        jobs = mixin_jobs()
        scraped = {
            jobs["redis"]: [exporters["redis"].port],
            jobs["webvitals"]: [exporters["webvitals"].port],
            jobs["smsRelay"]: [receivers.relay.port],
            jobs["alertmanager"]: [p.port for p in peers],
            "victoriametrics": [victoria.port],
            "vmagent": [a.port for a in agents],
            "vmalert": [vmalert.port],
        }
        write_scrape_config(scrape_file, scraped, salt=0)
        for program in (victoria, *agents, vmalert):
            cleanup.callback(program.stop)
            program.start()
        wait_settled(peers)
        stack = ShardedStack(root, scale, receivers, receivers.receiver_map(config_path),
                             config_path, peers, redis=redis, exporters=exporters,
                             victoria=victoria, agents=agents, vmalert=vmalert, jobs=scraped,
                             scrape_file=scrape_file, cleanup=cleanup)
        stack.spread()
        every = len(stack.targets())
        # By job and instance: a re-split's salted target leaves its old series behind.
        wait_for(f"all {every} targets up in VictoriaMetrics", lambda: len(
            victoria.query("count by (job, instance) (up == 1)")) == every, timeout=60)
        wait_for("a Watchdog ping from vmalert at the heartbeat", stack.pings, timeout=60)
        stack.cleanup = cleanup.pop_all()  # the stack's to close from now on
        return stack
    finally:
        cleanup.close()
