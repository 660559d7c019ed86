"""Redis time of exact key-pattern counts at 1M keys: saasmon's carried SCAN vs redis_exporter.

Not a test: it starts one private Redis, fills it with DEBUG POPULATE (1,000,000 keys, 100
of them matching the cache-warm pattern `library:item:*`) and measures, alternating between
the two so that both see the same machine load:

* one scrape of Debian's prometheus-redis-exporter with `--count-keys db0=library:item:*`
  (it counts on every scrape: an exact count costs a whole SCAN of the keyspace);
* one complete pass of saasmon's key_patterns collector with its default settings, built in
  this process from a config file and run round after round through the runtime's
  Scheduler, exactly as `saasmon redis` runs it (rounds back to back here; the exporter
  waits key_patterns_interval_seconds between them, which does not change a step's cost).

Redis time is INFO commandstats' usec (time spent executing the command): SCAN for both,
plus, for saasmon, the INFO and DBSIZE each round adds. The duration of every single SCAN
step comes from SLOWLOG with slowlog-log-slower-than 0. Per hour: redis_exporter counts
once per scrape (240 scrapes at 15 s); saasmon ends one pass every `rounds per pass`
rounds, one round per key_patterns_interval_seconds. It writes bench/REDIS_SCAN.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis
import redis.asyncio as aioredis
import report
import yaml
from prometheus_client.parser import text_string_to_metric_families

# devstack/ is not installed (never shipped): run from the checkout.
sys.path.append(str(Path(__file__).resolve().parent.parent))
from bench import (
    DEBIAN_REDIS,
    REPO,
    ExporterSpec,
    ProcessRegistry,
    command_output,
    cpu_seconds,
    percentile,
    scrape,
    sigterm_as_interrupt,
)
from devstack.servers import RedisServer, free_port
from saasmon.cli import load_kind
from saasmon.redis.collectors import KeyPatternCollector
from saasmon.redis.config import RedisConfig
from saasmon.runtime.collector import CollectorState, Scheduler
from saasmon.runtime.config import load_config

KEYS = 1_000_000
PATTERN = "library:item:*"
MATCHING = 100
SCRAPE_INTERVAL_SECONDS = 15.0
STEP_LIMIT_US = 10_000
TARGET_RATIO = 0.2
SLOWLOG_ENTRIES = 50_000


@dataclass
class Count:
    """One exact count: a redis_exporter scrape or a saasmon pass."""

    scan_calls: int
    scan_usec: int
    other_usec: float  # saasmon: the rounds' INFO and DBSIZE; redis_exporter: not counted
    steps_us: list[int]
    step_counts: list[int]  # the COUNT argument of each step
    redis_cpu: float  # seconds of Redis main-thread CPU (INFO cpu) over the count
    reported: float
    cpu_seconds: float
    wall_seconds: float
    rounds: int = 1


@dataclass
class Side:
    name: str
    counts: list[Count] = field(default_factory=list)

    def mean(self, attr: str) -> float:
        return sum(float(getattr(c, attr)) for c in self.counts) / len(self.counts)

    @property
    def steps(self) -> list[int]:
        return [s for c in self.counts for s in c.steps_us]

    @property
    def step_counts(self) -> str:
        used = [n for c in self.counts for n in c.step_counts]
        return f"{min(used)}" if min(used) == max(used) else f"{min(used)}-{max(used)}"


class Admin:
    """The bench's own connection: commandstats and SLOWLOG around each count."""

    def __init__(self, port: int) -> None:
        self.client = aioredis.Redis(host="127.0.0.1", port=port)

    async def stats(self) -> dict[str, tuple[int, int]]:
        info = await self.client.info("commandstats")
        return {k.removeprefix("cmdstat_"): (int(v["calls"]), int(v["usec"]))
                for k, v in info.items() if isinstance(v, dict)}

    async def cpu(self) -> float:
        """CPU the main thread (where commands run) has used: unlike commandstats' usec
        it leaves out time the process waited for a core on a busy machine."""
        info = await self.client.info("cpu")
        return float(info["used_cpu_user_main_thread"]) + float(info["used_cpu_sys_main_thread"])

    async def start(self) -> dict[str, tuple[int, int]]:
        await self.client.slowlog_reset()
        return await self.stats()

    async def scan_steps(self) -> tuple[list[int], list[int]]:
        """(duration in µs, COUNT) of every SCAN since the last reset."""
        durations, counts = [], []
        for entry in await self.client.slowlog_get(SLOWLOG_ENTRIES):
            args = bytes(entry["command"]).upper().split()
            if args[:1] == [b"SCAN"]:
                durations.append(int(entry["duration"]))
                counts.append(int(args[args.index(b"COUNT") + 1]) if b"COUNT" in args else 10)
        return durations, counts

    async def close(self) -> None:
        await self.client.aclose()


def delta(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]],
          command: str) -> tuple[int, int]:
    b, a = before.get(command, (0, 0)), after.get(command, (0, 0))
    return a[0] - b[0], a[1] - b[1]


def fill(server: RedisServer, nice: int) -> None:
    with redis.Redis(host="127.0.0.1", port=server.port) as client:
        if nice:
            # Ahead of the machine's other work for a core: a step's time is then its own,
            # as on a host that runs Redis alone. Both sides share this server.
            os.setpriority(os.PRIO_PROCESS, int(client.info("server")["process_id"]), nice)
        client.execute_command("DEBUG", "POPULATE", KEYS - MATCHING, "key:")
        client.execute_command("DEBUG", "POPULATE", MATCHING, "library:item:")
        assert client.dbsize() == KEYS
        client.config_set("slowlog-log-slower-than", 0)
        client.config_set("slowlog-max-len", SLOWLOG_ENTRIES)


# -- redis_exporter ----------------------------------------------------------------------


def keys_count(body: str) -> float:
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == "redis_keys_count" and sample.labels.get("key") == PATTERN:
                return float(sample.value)
    raise RuntimeError("redis_exporter reported no redis_keys_count for the pattern")


async def exporter_count(admin: Admin, session: aiohttp.ClientSession, spec: ExporterSpec,
                         pid: int) -> Count:
    before, redis_cpu = await admin.start(), await admin.cpu()
    cpu, started = cpu_seconds(pid), time.monotonic()
    body = await scrape(session, spec.url)
    wall, cpu = time.monotonic() - started, cpu_seconds(pid) - cpu
    redis_cpu = await admin.cpu() - redis_cpu
    after = await admin.stats()
    calls, usec = delta(before, after, "scan")
    return Count(calls, usec, 0.0, *await admin.scan_steps(), redis_cpu, keys_count(body), cpu,
                 wall)


# -- saasmon -----------------------------------------------------------------------------


class Saasmon:
    """saasmon's key_patterns collector for one target with every scan default."""

    def __init__(self, server: RedisServer, tmp: Path) -> None:
        path = tmp / "saasmon-redis.yml"
        path.write_text(yaml.safe_dump({
            "targets": [{"name": "main", "url": server.url}],
            "key_patterns": [{"pattern": PATTERN}],
            "collectors": {"info": {"enabled": False}},  # only the counting is measured
        }))
        kind = load_kind("redis")
        self.config = load_config(kind.config_model, str(path), kind.name)
        assert isinstance(self.config, RedisConfig)
        self.instance = kind.build(self.config)
        self.scheduler = Scheduler("redis", self.instance.collectors)
        [self.state] = self.scheduler.states
        assert isinstance(self.state.collector, KeyPatternCollector)
        self.collector: KeyPatternCollector = self.state.collector

    async def round(self) -> None:
        state: CollectorState = self.state
        await self.scheduler.run_once(state, state.collector.timeout)
        if not state.success:
            raise RuntimeError(f"key_patterns round failed: {state.last_reason}")

    async def count(self, admin: Admin) -> Count:
        [scan] = self.collector.scan.patterns.values()
        passes, rounds = scan.passes, 0
        before, redis_cpu = await admin.start(), await admin.cpu()
        cpu, started = time.process_time(), time.monotonic()
        while scan.passes == passes:
            await self.round()
            rounds += 1
        wall, cpu = time.monotonic() - started, time.process_time() - cpu
        redis_cpu = await admin.cpu() - redis_cpu
        after = await admin.stats()
        calls, usec = delta(before, after, "scan")
        # Three INFO per round are the collector's; the bench's own reads are the rest.
        info_calls, info_usec = delta(before, after, "info")
        other = info_usec * (3 * rounds) / max(info_calls, 1) + delta(before, after, "dbsize")[1]
        assert scan.last is not None
        return Count(calls, usec, other, *await admin.scan_steps(), redis_cpu, scan.last.keys,
                     cpu, wall, rounds)

    async def close(self) -> None:
        await self.instance.close()


# -- report ------------------------------------------------------------------------------


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def ms(usec: float) -> str:
    return f"{usec / 1000:.0f}"


def side_row(side: Side, per: str) -> str:
    steps = side.steps
    over = sum(1 for s in steps if s > STEP_LIMIT_US)
    usec = [c.scan_usec for c in side.counts]
    return (f"| {side.name} | {per} | {side.mean('reported'):.0f} | {side.mean('rounds'):.1f} | "
            f"{side.step_counts} | {side.mean('scan_calls'):.0f} | {ms(side.mean('scan_usec'))} "
            f"({ms(min(usec))}-{ms(max(usec))}) | {ms(side.mean('other_usec'))} | "
            f"{side.mean('redis_cpu') * 1000:.0f} | "
            f"{side.mean('redis_cpu') * 1e6 / side.mean('scan_calls'):.0f} | "
            f"{sum(steps) / len(steps):.0f} / {percentile(steps, 99):.0f} / {max(steps)} | "
            f"{over} of {len(steps)} | {side.mean('cpu_seconds') * 1000:.0f} | "
            f"{side.mean('wall_seconds'):.1f} |")


def render(theirs: Side, ours: Side, config: RedisConfig, info: dict[str, str],
           command: str) -> str:
    scrapes_per_hour = 3600 / SCRAPE_INTERVAL_SECONDS
    theirs_hour = theirs.mean("scan_usec") * scrapes_per_hour / 1e6
    theirs_cpu_hour = theirs.mean("redis_cpu") * scrapes_per_hour
    theirs_exporter_hour = theirs.mean("cpu_seconds") * scrapes_per_hour
    rounds = ours.mean("rounds")
    per_pass = (ours.mean("scan_usec") + ours.mean("other_usec")) / 1e6
    cadences = [("defaults (key_patterns_interval_seconds "
                 f"{config.key_patterns_interval_seconds:g})",
                 config.key_patterns_interval_seconds),
                ("key_patterns_interval_seconds 15 (the scrape interval)", 15.0)]
    hourly = []
    for label, interval in cadences:
        passes = 3600 / (interval * rounds)
        hourly.append((label, interval, passes, per_pass * passes))
    default_ratio = hourly[0][3] / theirs_hour
    worst_step = max(ours.steps)
    over = sum(1 for s in ours.steps if s > STEP_LIMIT_US)
    theirs_over = sum(1 for s in theirs.steps if s > STEP_LIMIT_US)
    cpu_per_step = ours.mean("redis_cpu") * 1e6 / ours.mean("scan_calls")
    lines = [
        *report.header("Exact Redis key-pattern counts at 1M keys: saasmon vs redis_exporter",
                       "bench/redis_scan.py", [command], generated=info["when"]),
        f"Machine: nproc `{info['nproc']}`, python `{info['python']}`, redis-server "
        f"`{info['redis']}`, prometheus-redis-exporter `{info['exporter']}`; loadavg at "
        f"start `{info['load_start']}`, at end `{info['load_end']}` (a shared machine: "
        "other work ran beside the bench).",
        "",
        "## Method",
        "",
        f"- One private Redis, {KEYS:,} keys by DEBUG POPULATE, {MATCHING} of them matching "
        f"`{PATTERN}` (the cache-warm pattern); both sides count that pattern in db 0. "
        f"redis-server runs at nice {info['nice']}, so that on this shared machine a step "
        "waits less for a core behind other work (as Redis on a host of its own).",
        "- redis_exporter: `--count-keys db0=library:item:*`, default batch size; it counts "
        "on every scrape. One unmeasured scrape first, then one measured scrape per count.",
        "- saasmon: the key_patterns collector with every scan default "
        f"(scan_count {config.scan_count}, scan_budget_seconds {config.scan_budget_seconds:g}, "
        f"scan_max_keys {config.scan_max_keys:,}, scan_step_target_seconds "
        f"{config.scan_step_target_seconds:g}, timeout_seconds {config.timeout_seconds:g}), "
        "run in this process through the runtime's Scheduler round after round until a pass "
        "ends; the next pass starts on the next round.",
        f"- The two alternate, {len(ours.counts)} counts each. Redis time: INFO commandstats "
        "usec (execution time) of SCAN; for saasmon also the round's INFO server, INFO "
        "commandstats (twice) and DBSIZE. Step durations: SLOWLOG with "
        "slowlog-log-slower-than 0 (every SCAN recorded). Exporter CPU: redis_exporter's "
        "process CPU across the scrape; saasmon's, this process' CPU across the pass.",
        "- Per hour: redis_exporter counts on each scrape, 240 a hour at a 15 s scrape "
        "interval. saasmon ends a pass every `rounds per pass` rounds, a round every "
        "key_patterns_interval_seconds; a pass's Redis time is the same whatever the wait "
        "between its rounds.",
        "",
        "## Per count",
        "",
        "| exporter | one count is | reported count | rounds | SCAN COUNT used | SCAN steps | "
        "Redis SCAN ms (min-max) | other Redis ms | Redis CPU ms | Redis CPU µs per step (mean) | "
        "step µs mean / p99 / max | steps > 10 ms | exporter CPU ms | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        side_row(theirs, "a scrape"),
        side_row(ours, "a pass"),
        "",
        "## Redis time per hour",
        "",
        "| exporter | cadence | exact counts per hour | Redis s per hour (commandstats) | "
        "vs redis_exporter | Redis CPU s per hour | vs redis_exporter | exporter CPU s per "
        "hour | vs redis_exporter |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {theirs.name} | scrape every {SCRAPE_INTERVAL_SECONDS:g} s | "
        f"{scrapes_per_hour:.0f} | {theirs_hour:.1f} | 1 | {theirs_cpu_hour:.1f} | 1 | "
        f"{theirs_exporter_hour:.1f} | 1 |",
    ]
    for label, _, passes, seconds in hourly:
        cpu_hour = ours.mean("redis_cpu") * passes
        exporter_hour = ours.mean("cpu_seconds") * passes
        lines.append(f"| {ours.name} | {label} | {passes:.1f} | {seconds:.1f} | "
                     f"{seconds / theirs_hour:.3f}x | {cpu_hour:.1f} | "
                     f"{cpu_hour / theirs_cpu_hour:.3f}x | {exporter_hour:.1f} | "
                     f"{exporter_hour / theirs_exporter_hour:.3f}x |")
    verdict = "PASS" if default_ratio <= TARGET_RATIO else "FAIL"
    step_verdict = "PASS" if over == 0 else "FAIL"
    freshness = config.key_patterns_interval_seconds * rounds
    lines += [
        "",
        "## Targets (issue 16, target 3)",
        "",
        "| target | measured | result |",
        "|---|---|---|",
        f"| Redis time per hour ≤ {TARGET_RATIO}x redis_exporter's exact counting at a 15 s "
        f"scrape interval, at 1M keys | {default_ratio:.3f}x at saasmon's defaults | "
        f"{verdict} |",
        f"| no single step blocks Redis over 10 ms | saasmon's slowest of {len(ours.steps)} "
        f"SCAN steps: {worst_step / 1000:.1f} ms ({over} over 10 ms; redis_exporter, same "
        f"COUNT: {theirs_over} of {len(theirs.steps)}); Redis CPU per step "
        f"{cpu_per_step:.0f} µs | {step_verdict} |",
        f"| exact count, never partial | saasmon reported {ours.mean('reported'):.0f} of "
        f"{MATCHING} in every pass; nothing is published before a pass ends | "
        f"{'PASS' if all(c.reported == MATCHING for c in ours.counts) else 'FAIL'} |",
        "",
        "## Reading",
        "",
        f"- A pass costs Redis about what one redis_exporter scrape does "
        f"({ms(ours.mean('scan_usec'))} vs {ms(theirs.mean('scan_usec'))} ms of SCAN): both "
        "visit every key once and SCAN's cost is per key visited, whatever the COUNT. The "
        "hourly saving is cadence, not a cheaper SCAN: saasmon counts "
        f"{hourly[0][2]:.1f} times an hour at its defaults, redis_exporter 240 times.",
        f"- At its defaults a new count ends every {freshness:.0f} s on average "
        f"({rounds:.1f} rounds of {config.key_patterns_interval_seconds:g} s; "
        "redis_key_pattern_last_complete_pass_timestamp_seconds says when the last one did); "
        "redis_exporter counts every 15 s. At equal cadence (a round every 15 s) saasmon "
        f"spends {hourly[1][3] / theirs_hour:.2f}x redis_exporter's Redis time"
        + (f": the ≤ {TARGET_RATIO}x target holds for the default cadence only."
           if hourly[1][3] / theirs_hour > TARGET_RATIO else "."),
        "- SLOWLOG and commandstats time a command from its start to its end, including "
        "time the redis-server process waited for a core while the machine's other work ran; "
        "INFO cpu's main-thread CPU leaves that out. A step over 10 ms here is a step of "
        f"{ours.step_counts} keys (about {cpu_per_step:.0f} µs of CPU on average) that waited "
        "for a core; redis_exporter's steps of 1000 keys show the same tail. On this machine "
        "neither exporter keeps every step under 10 ms; showing that saasmon's steps do needs "
        "a host where Redis does not queue for a core.",
        f"- Exporter CPU per count is {ours.mean('cpu_seconds') / theirs.mean('cpu_seconds'):.1f}x "
        "redis_exporter's: a SCAN round trip costs redis-py, asyncio and the loopback send "
        f"about {ours.mean('cpu_seconds') * 1e6 / ours.mean('scan_calls'):.0f} µs of CPU, Go "
        f"{theirs.mean('cpu_seconds') * 1e6 / theirs.mean('scan_calls'):.0f} µs. Per hour at "
        f"the defaults it is {ours.mean('cpu_seconds') * hourly[0][2] / theirs_exporter_hour:.2f}x.",
    ]
    return "\n".join(lines) + "\n"


# -- main --------------------------------------------------------------------------------


async def run(server: RedisServer, registry: ProcessRegistry, tmp: Path,
              counts: int, nice: int) -> tuple[Side, Side, RedisConfig]:
    fill(server, nice)
    port = free_port()
    spec = ExporterSpec(
        name="prometheus-redis-exporter (Debian)", ours=False,
        argv=[DEBIAN_REDIS, f"--redis.addr=redis://127.0.0.1:{server.port}",
              f"--web.listen-address=127.0.0.1:{port}", f"--count-keys=db0={PATTERN}"],
        env={}, port=port)
    theirs, ours = Side(spec.name), Side("saasmon redis")
    admin = Admin(server.port)
    saasmon = Saasmon(server, tmp)
    timeout = aiohttp.ClientTimeout(total=120)
    try:
        async with registry.running(spec) as proc, aiohttp.ClientSession(
                timeout=timeout) as session:
            await scrape(session, spec.url)  # connects; not measured
            for index in range(counts):
                print(f"count {index + 1}/{counts}: redis_exporter", flush=True)
                theirs.counts.append(await exporter_count(admin, session, spec, proc.pid))
                print(f"count {index + 1}/{counts}: saasmon", flush=True)
                ours.counts.append(await saasmon.count(admin))
    finally:
        await saasmon.close()
        await admin.close()
    return theirs, ours, saasmon.config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "REDIS_SCAN.md")
    parser.add_argument("--counts", type=int, default=3, help="counts measured per side")
    parser.add_argument("--redis-nice", type=int, default=-10,
                        help="nice value of redis-server (0: leave it; below 0 needs root)")
    args = parser.parse_args(argv)
    if not Path(DEBIAN_REDIS).exists():
        print(f"{DEBIAN_REDIS} is missing: scripts/apt-install.sh prometheus-redis-exporter",
              file=sys.stderr)
        return 2
    command = ".venv/bin/python bench/redis_scan.py " + " ".join(
        sys.argv[1:] if argv is None else argv)
    info: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()), "python": platform.python_version(),
        "redis": command_output(["redis-server", "--version"]),
        "exporter": command_output([DEBIAN_REDIS, "-version"]),
        "load_start": loadavg(), "nice": str(args.redis_nice),
    }
    tmp = Path(tempfile.mkdtemp(prefix="saasmon-redis-scan-"))
    registry = ProcessRegistry(tmp)
    server = RedisServer(tmp / "redis", extra_args=["--enable-debug-command", "local"])
    try:
        with sigterm_as_interrupt():
            server.start()
            theirs, ours, config = asyncio.run(
                run(server, registry, tmp, args.counts, args.redis_nice))
    except KeyboardInterrupt:
        print("interrupted: stopping everything", file=sys.stderr)
        return 130
    finally:
        registry.stop_all()
        server.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    info["load_end"] = loadavg()
    report = render(theirs, ours, config, info, command)
    args.out.write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
