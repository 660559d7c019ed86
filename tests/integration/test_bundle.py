"""`saasmon bundle`: several exporters in one process, each as if it ran alone.

Real PostgreSQL and Redis servers; the bundle runs as a real process. Each member is
watched through a tests.conftest.Exporter view on its port (sharing the one process).
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from devstack.exporter import SAASMON, Exporter
from devstack.metrics import Samples, value
from devstack.process import Process
from devstack.servers import PostgresServer, RedisServer
from refapp.schema import schema_sql

SECRET = "Sup3r-Secret-Value"
REPO = Path(__file__).resolve().parents[1]


@dataclass
class Bundle:
    """A `saasmon bundle` process and one Exporter view per entry (by entry name)."""

    workdir: Path
    members: dict[str, Exporter] = field(default_factory=dict)
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    process: Process | None = None

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return None if self.process is None else self.process.proc

    @property
    def path(self) -> Path:
        return self.workdir / "bundle.yml"

    @property
    def log_path(self) -> Path:
        return self.workdir / "bundle.log"

    def add(self, name: str, kind: str, config: dict[str, Any], **entry: Any) -> Exporter:
        member = Exporter(kind, config, self.workdir)
        self.members[name] = member
        self.entries[name] = {"exporter": kind, "config.file": str(member.config_path),
                              "web.listen-address": f"127.0.0.1:{member.port}", **entry}
        return member

    def start(self, prefix: list[str] | None = None, ready: str = "/-/ready") -> Bundle:
        """`prefix` runs the bundle under another command (prlimit)."""
        for member in self.members.values():
            member.write_config(member.config)
        self.path.write_text(yaml.safe_dump({"exporters": self.entries}))
        self.process = Process("saasmon bundle", [
            *(prefix or []), *SAASMON, "bundle", "--config.file", str(self.path)],
            self.log_path, self.env).start()
        for member in self.members.values():
            member.process = self.process
        for member in self.members.values():
            member.wait_for(ready)
        return self

    def log(self) -> str:
        return self.process.log() if self.process is not None else ""

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()


@pytest.fixture
def bundle(workdir: Path) -> Iterator[Bundle]:
    started = Bundle(workdir)
    yield started
    started.stop()


def postgres_config(server: PostgresServer) -> dict[str, Any]:
    return {"dsn": server.dsn, "interval_seconds": 1, "timeout_seconds": 2}


def redis_config(server: RedisServer, name: str = "main") -> dict[str, Any]:
    return {"targets": [{"name": name, "url": server.url}], "interval_seconds": 1,
            "timeout_seconds": 2}


def cron_config(server: PostgresServer) -> dict[str, Any]:
    server.psql(schema_sql())
    server.psql("INSERT INTO cron_job_logs (job_name, started_at, completed_at, status) "
                "VALUES ('nightly-backup', now() - interval '2 minutes', now(), 'success')")
    return {"dsn": server.dsn, "interval_seconds": 1, "timeout_seconds": 2,
            "jobs": [{"name": "nightly-backup", "schedule": "0 3 * * *"}]}


def families(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def reload_stamp(samples: Samples, ns: str) -> float:
    return value(samples, f"{ns}_exporter_config_last_reload_success_timestamp_seconds")


def reload_ok(samples: Samples, ns: str) -> float:
    return value(samples, f"{ns}_exporter_config_last_reload_successful")


def three(bundle: Bundle, postgres: PostgresServer,
          redis_server: RedisServer) -> tuple[Exporter, Exporter, Exporter]:
    return (bundle.add("postgres", "postgres", postgres_config(postgres)),
            bundle.add("redis", "redis", redis_config(redis_server)),
            bundle.add("cron", "cron", cron_config(postgres)))


def test_one_process_serves_each_exporter_on_its_own_port_with_only_its_metrics(
        bundle: Bundle, postgres: PostgresServer, redis_server: RedisServer) -> None:
    pg, rd, cron = three(bundle, postgres, redis_server)
    bundle.start()
    own = {"pg_": pg, "redis_": rd, "cron_": cron}
    started_at = set()
    for prefix, member in own.items():
        samples = member.scrape()
        names = families(samples)
        theirs = [n for n in names if n.startswith(tuple(p for p in own if p != prefix))]
        assert not theirs, f"{member.kind} port serves {theirs[:5]}"
        assert any(n.startswith(prefix) for n in names)
        # Each keeps its own self-metrics...
        ns = prefix.rstrip("_")
        assert reload_ok(samples, ns) == 1
        assert value(samples, f"{ns}_exporter_build_info") == 1
        # ...and all report the one process they share.
        started_at.add(value(samples, "process_start_time_seconds"))
    assert len(started_at) == 1
    assert value(pg.scrape(), "pg_up", target="postgres") == 1
    assert value(rd.scrape(), "redis_up", target="main") == 1
    cron.wait_until("the job's run read from the table", lambda s: value(
        s, "cron_job_last_success_timestamp_seconds", cron_job="nightly-backup") > 0)
    # Every log line names the exporter it comes from.
    lines = [yaml.safe_load(line) for line in bundle.log().splitlines()]
    listening = {line["exporter"] for line in lines if line["msg"] == "listening"}
    assert listening == {"postgres", "redis", "cron"}


def test_killing_the_redis_server_leaves_the_other_exporters_intact(
        bundle: Bundle, postgres: PostgresServer, redis_server: RedisServer) -> None:
    pg, rd, cron = three(bundle, postgres, redis_server)
    bundle.start()
    before = {n for n in families(pg.scrape()) if n.startswith("pg_")}
    redis_server.kill()
    rd.wait_until("redis_up 0", lambda s: value(s, "redis_up", target="main") == 0)
    pg_stamp = value(pg.scrape(), "pg_exporter_collector_last_success_timestamp_seconds",
                     collector="activity", target="postgres")
    samples = pg.wait_until("a newer PostgreSQL collection", lambda s: value(
        s, "pg_exporter_collector_last_success_timestamp_seconds",
        collector="activity", target="postgres") > pg_stamp)
    assert value(samples, "pg_up", target="postgres") == 1
    assert {n for n in families(samples) if n.startswith("pg_")} == before
    assert value(cron.scrape(), "cron_up", target="cron_job_logs") == 1
    assert bundle.proc is not None and bundle.proc.poll() is None


def test_a_reload_of_one_leaves_the_others_and_sighup_reloads_each(
        bundle: Bundle, postgres: PostgresServer, redis_server: RedisServer) -> None:
    pg, rd, cron = three(bundle, postgres, redis_server)
    bundle.start()
    first = {ns: reload_stamp(m.scrape(), ns)
             for ns, m in (("pg", pg), ("redis", rd), ("cron", cron))}

    # POST /-/reload on the Redis port: only the Redis exporter re-reads its file.
    renamed = redis_config(redis_server, name="cache")
    rd.write_config(renamed)
    status, body, _ = _post(rd.url + "/-/reload")
    assert status == 200, body
    samples = rd.wait_until("the renamed target", lambda s: value(
        s, "redis_up", target="cache") == 1)
    assert reload_stamp(samples, "redis") > first["redis"]
    assert reload_stamp(pg.scrape(), "pg") == first["pg"]
    assert reload_stamp(cron.scrape(), "cron") == first["cron"]

    # A bad file for one: that one keeps running its config and says so; the others are 1.
    rd.write_config({**renamed, "interval_seconds": "soon"})
    status, body, _ = _post(rd.url + "/-/reload")
    assert status == 400 and "interval_seconds" in body
    assert reload_ok(rd.scrape(), "redis") == 0
    assert reload_ok(pg.scrape(), "pg") == 1 and reload_ok(cron.scrape(), "cron") == 1

    # SIGHUP reloads every exporter of the process.
    rd.write_config(renamed)
    pg.write_config({**postgres_config(postgres), "target": "primary"})
    assert bundle.proc is not None
    bundle.proc.send_signal(signal.SIGHUP)
    samples = pg.wait_until("the new target label", lambda s: value(
        s, "pg_up", target="primary") == 1)
    assert reload_stamp(samples, "pg") > first["pg"]
    cron.wait_until("cron reloaded", lambda s: reload_stamp(s, "cron") > first["cron"])
    rd.wait_until("redis reloaded", lambda s: reload_ok(s, "redis") == 1)
    lines = [yaml.safe_load(line) for line in bundle.log().splitlines()]
    reloaded = [line["exporter"] for line in lines if line["msg"] == "config reloaded"]
    assert sorted(set(reloaded)) == ["cron", "postgres", "redis"]


def _post(url: str) -> tuple[int, str, float]:
    request = urllib.request.Request(url, method="POST", data=b"")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, response.read().decode(), time.monotonic() - started
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), time.monotonic() - started


def test_each_entry_has_its_own_web_config_name_and_env_prefix(
        bundle: Bundle, workdir: Path, redis_server: RedisServer) -> None:
    hashed = bcrypt.hashpw(b"right-pass", bcrypt.gensalt(rounds=4)).decode()
    web = workdir / "web.yml"
    web.write_text(yaml.safe_dump({"basic_auth_users": {"prometheus": hashed}}))
    guarded = bundle.add("redis", "redis", redis_config(redis_server),
                         **{"web.config.file": str(web)})
    # A second exporter of the same kind under its own name: its env prefix is that name.
    cache = bundle.add("redis-cache", "redis", redis_config(redis_server))
    bundle.env["SAASMON_REDIS_CACHE_TARGETS"] = "not a list"
    assert _start_failure(bundle) == (
        "saasmon bundle: redis-cache: targets: Input should be a valid list")
    del bundle.env["SAASMON_REDIS_CACHE_TARGETS"]
    vitals = bundle.add("webvitals", "webvitals", {"allowed_origins": ["https://app.example"]},
                        **{"web.telemetry-path": "/vitals"})
    guarded.auth = ("prometheus", "right-pass")
    bundle.start()
    guarded.auth = None
    assert guarded.get()[0] == 401
    guarded.auth = ("prometheus", "right-pass")
    assert value(guarded.scrape(), "redis_up", target="main") == 1
    assert value(cache.scrape(), "redis_up", target="main") == 1
    assert vitals.get("/metrics")[0] == 404
    status, body, _ = vitals.get("/vitals")
    assert status == 200 and "webvitals_beacons_accepted_total" in body
    lines = [yaml.safe_load(line) for line in bundle.log().splitlines()]
    assert "redis-cache" in {line["exporter"] for line in lines}


def _start_failure(bundle: Bundle) -> str:
    """Start the bundle as written; it must exit 2 with one line: returned."""
    for member in bundle.members.values():
        member.write_config(member.config)
    bundle.path.write_text(yaml.safe_dump({"exporters": bundle.entries}))
    result = subprocess.run([*SAASMON, "bundle", "--config.file", str(bundle.path)],
                            capture_output=True, text=True, timeout=30,
                            env={**os.environ, **bundle.env})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


PG = {"dsn": f"postgresql://u:{SECRET}@127.0.0.1:5/db"}
RD = {"targets": [{"name": "main", "url": f"redis://:{SECRET}@127.0.0.1:6379/0"}]}

BAD = [
    # (entries as {name: (kind, config or None for no file, extra entry keys)}, expected line)
    ({"postgres": ("postgres", PG, {}), "redis": ("redis", {**RD, "intervall_seconds": 5}, {})},
     "redis: intervall_seconds: Extra inputs are not permitted"),
    ({"postgres": ("postgres", PG, {}),
      "standby": ("postgres", {"dsn": f"mysql://u:{SECRET}@h/db"}, {})},
     "standby: (top level): Value error, dsn must be a postgresql:// URL"),
    ({"redis": ("redis", RD, {"web.listen_address": ":1"})},
     "redis: web.listen_address: Extra inputs are not permitted"),
    ({"redis": ("redis", RD, {"web.max-connections": 0})},
     "redis: web.max-connections: must be at least 1"),
    ({"redis": ("redis", RD, {"web.header-timeout": "soon"})},
     "redis: web.header-timeout: Input should be a valid number"),
    ({"redis": ("redis", RD, {"web.listen-address": "nowhere"})},
     "redis: web.listen-address: 'nowhere' is not host:port"),
    ({"redis": ("redis", RD, {"web.config.file": "/nonexistent/web.yml"})},
     "redis: web.config.file: cannot read '/nonexistent/web.yml'"),
    ({"redis": ("redis", RD, {"config.file": "/nonexistent/redis.yml"})},
     "redis: config.file: cannot read '/nonexistent/redis.yml'"),
    ({"mysql": ("", None, {})}, "mysql: exporter: 'mysql' is not an exporter (name one with "
                                "exporter:); known: postgres, redis"),
    ({"db": ("postgress", PG, {})}, "db: exporter: 'postgress' is not an exporter; known"),
    ({"a": ("redis", RD, {"web.listen-address": "127.0.0.1:19999"}),
      "b": ("redis", RD, {"web.listen-address": ":19999"})},
     "b: web.listen-address: port 19999 is a's already"),
    ({"Redis": ("redis", RD, {})}, "config.file: exporters: 'Redis' is not a name"),
]


@pytest.mark.parametrize(("entries", "expected"), BAD, ids=[e.split(":")[0] + "-" +
                                                            e.split(":")[1].strip()
                                                            for _, e in BAD])
def test_a_bad_entry_exits_2_with_one_line_naming_the_exporter_and_key(
        workdir: Path, entries: dict[str, tuple[str, dict[str, Any] | None, dict[str, Any]]],
        expected: str) -> None:
    bundle = Bundle(workdir)
    for name, (kind, config, extra) in entries.items():
        if config is None:
            bundle.entries[name] = extra
            continue
        bundle.add(name, kind, config, **extra)
    line = _start_failure(bundle)
    assert line.startswith(f"saasmon bundle: {expected}"), line
    assert SECRET not in line


@pytest.mark.parametrize(("text", "expected"), [
    ("exporters: []\n", "config.file: exporters: must map names to exporters"),
    ("exporters: {}\n", "config.file: exporters: must map names to exporters"),
    ("exporter:\n  redis: {}\n", "config.file: exporter: unknown key (known: exporters)"),
    ("- redis\n", "config.file: (top level): must be a mapping"),
    ("exporters: {redis: [\n", "config.file: invalid YAML at line"),
])
def test_a_bad_bundle_file_exits_2_with_one_line(workdir: Path, text: str,
                                                 expected: str) -> None:
    path = workdir / "bundle.yml"
    path.write_text(text)
    result = subprocess.run([*SAASMON, "bundle", "--config.file", str(path)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(f"saasmon bundle: {expected}"), result.stderr


def test_without_a_bundle_file_exits_2_naming_the_flag() -> None:
    result = subprocess.run([*SAASMON, "bundle"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stderr.strip() == "saasmon bundle: config.file: a bundle file is required"


def test_config_check_prints_one_summary_per_entry(workdir: Path) -> None:
    bundle = Bundle(workdir)
    bundle.add("redis", "redis", RD)
    bundle.add("standby", "postgres", PG)
    bundle.path.write_text(yaml.safe_dump({"exporters": bundle.entries}))
    for member in bundle.members.values():
        member.write_config(member.config)
    result = subprocess.run([*SAASMON, "bundle", "--config.check", "--config.file",
                             str(bundle.path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("redis: config ok: 1 target(s)")
    assert lines[1].startswith("standby: postgres: config ok: target")
    assert SECRET not in result.stdout


def test_paths_in_the_bundle_file_are_relative_to_it(workdir: Path) -> None:
    sub = workdir / "etc"
    sub.mkdir()
    (sub / "redis.yml").write_text(yaml.safe_dump(RD))
    (sub / "bundle.yml").write_text(yaml.safe_dump(
        {"exporters": {"redis": {"config.file": "redis.yml"}}}))
    result = subprocess.run([*SAASMON, "bundle", "--config.check", "--config.file",
                             "etc/bundle.yml"], capture_output=True, text=True, timeout=30,
                            cwd=workdir, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr


def test_a_port_in_use_exits_1_naming_the_exporter(workdir: Path) -> None:
    bundle = Bundle(workdir)
    bundle.add("webvitals", "webvitals", {"allowed_origins": ["https://app.example"]})
    busy = bundle.add("redis", "redis", RD)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", busy.port))
        holder.listen()
        for member in bundle.members.values():
            member.write_config(member.config)
        bundle.path.write_text(yaml.safe_dump({"exporters": bundle.entries}))
        result = subprocess.run([*SAASMON, "bundle", "--config.file", str(bundle.path)],
                                capture_output=True, text=True, timeout=30)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines()[-1] == \
        "saasmon bundle: redis: web.listen-address: Address already in use"
    assert "Traceback" not in result.stderr


def test_the_open_file_limit_is_raised_to_fit_every_exporters_connections(
        bundle: Bundle) -> None:
    bundle.add("webvitals", "webvitals", {"allowed_origins": ["https://app.example"]})
    bundle.add("redis", "redis", RD)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    needed = 1024 + 256 + 2 * 64  # webvitals' and redis' max connections, files beside
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"hard open-file limit {hard} is below {needed}")
    # Started with a soft limit below a shell's usual 1024, under what the two may hold.
    limit = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
    bundle.start(prefix=["prlimit", f"--nofile=256:{limit}", "--"], ready="/-/healthy")
    assert bundle.proc is not None
    limits = Path(f"/proc/{bundle.proc.pid}/limits").read_text()
    (line,) = [line for line in limits.splitlines() if line.startswith("Max open files")]
    assert int(line.split()[3]) >= needed, line


def test_sighup_after_the_bundle_file_changed_says_it_applies_at_restart(
        bundle: Bundle) -> None:
    bundle.add("webvitals", "webvitals", {"allowed_origins": ["https://app.example"]})
    bundle.start()
    assert bundle.proc is not None
    bundle.path.write_text(bundle.path.read_text() + "# an edit\n")
    bundle.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while "the bundle file changed" not in bundle.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "take effect at restart" in bundle.log(), bundle.log()
    assert bundle.members["webvitals"].get("/-/ready")[0] == 200


# The process itself reports which packages it has loaded, once every port is ready and
# has been scraped: lazy imports on the collection path are counted too.
LOADED = """
import os, signal, sys, threading, time, urllib.request
from saasmon.cli import main

def stop_when_served(ports):
    for port in ports:
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/-/ready", timeout=2).close()
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).close()
                break
            except OSError:
                time.sleep(0.1)
    os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=stop_when_served, args=([int(p) for p in sys.argv[1].split(",")],),
                 daemon=True).start()
code = main(sys.argv[2:])
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
sys.exit(code)
"""


def loaded_packages(workdir: Path, entries: dict[str, tuple[str, dict[str, Any]]],
                    single: bool) -> set[str]:
    bundle = Bundle(workdir)
    for name, (kind, config) in entries.items():
        bundle.add(name, kind, config)
    for member in bundle.members.values():
        member.write_config(member.config)
    if single:
        (member,) = bundle.members.values()
        argv = [member.kind, "--config.file", str(member.config_path),
                "--web.listen-address", f"127.0.0.1:{member.port}"]
    else:
        bundle.path.write_text(yaml.safe_dump({"exporters": bundle.entries}))
        argv = ["bundle", "--config.file", str(bundle.path)]
    ports = ",".join(str(m.port) for m in bundle.members.values())
    result = subprocess.run([sys.executable, "-c", LOADED, ports, *argv], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_an_exporter_imports_only_the_drivers_it_uses(
        workdir: Path, postgres: PostgresServer, redis_server: RedisServer) -> None:
    vitals = {"allowed_origins": ["https://app.example"]}
    relay = {"twilio": {"account_sid": "AC" + "0" * 32, "auth_token": SECRET,
                        "from_number": "+15005550006"}, "recipients": ["+15005550001"]}
    cases: list[tuple[dict[str, tuple[str, dict[str, Any]]], bool, set[str], set[str]]] = [
        ({"redis": ("redis", redis_config(redis_server))}, True, {"redis"}, {"asyncpg"}),
        ({"postgres": ("postgres", postgres_config(postgres))}, True, {"asyncpg"}, {"redis"}),
        ({"cron": ("cron", cron_config(postgres))}, True, {"asyncpg"}, {"redis"}),
        # Probes alone: no database, so no driver.
        ({"integrations": ("integrations", {"builtin_targets": False})}, True, set(),
         {"asyncpg", "redis"}),
        ({"webvitals": ("webvitals", vitals)}, True, set(), {"asyncpg", "redis"}),
        ({"sms-relay": ("sms-relay", relay)}, True, set(), {"asyncpg", "redis"}),
        ({"redis": ("redis", redis_config(redis_server)), "webvitals": ("webvitals", vitals)},
         False, {"redis"}, {"asyncpg"}),
    ]
    for entries, single, needed, unused in cases:
        loaded = loaded_packages(workdir, entries, single)
        assert needed <= loaded, (entries.keys(), needed - loaded)
        assert not unused & loaded, (entries.keys(), unused & loaded)


def test_the_demos_bundle_runs_every_exporter_on_the_port_the_demo_prints(
        workdir: Path) -> None:
    from devstack.demo import (
        exporter_configs,
        free_ports,
        relay_config,
        write_bundle,
        write_demo_secrets,
    )

    ports = free_ports()
    receivers = f"http://127.0.0.1:{ports['receivers']}"
    secrets = write_demo_secrets(workdir / "secrets", receivers)
    configs = exporter_configs("postgresql://saasmon@127.0.0.1:5/postgres",
                               "postgresql://saasmon@127.0.0.1:6/postgres",
                               "redis://127.0.0.1:7/0", "http://127.0.0.1:8", "http://127.0.0.1:9")
    path, addresses = write_bundle(workdir, {**configs, "sms-relay": relay_config(
        secrets, receivers)}, ports)
    assert addresses == [f"127.0.0.1:{ports[name]}" for name in
                         (*configs, "smsrelay")]
    result = subprocess.run([*SAASMON, "bundle", "--config.check", "--config.file", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    summaries = result.stdout.splitlines()
    assert len(summaries) == 8
    assert summaries[1].startswith("postgres-standby: postgres: config ok")
    assert summaries[-1].startswith("sms-relay: config ok")
