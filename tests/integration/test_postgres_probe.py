"""Multi-target PostgreSQL: /probe against real servers, credentials from auth modules."""

from __future__ import annotations

import json
import socket
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from devstack.exporter import Exporter
from devstack.metrics import Samples, parse, total, value
from devstack.process import Process
from devstack.prometheus import prometheus_argv
from devstack.servers import PostgresServer, free_port

Run = Callable[..., Exporter]
PASSWORD = "Pr0be-Sentinel-Passw0rd"
WRONG = "Wr0ng-Sentinel-Passw0rd"
DSN_PASSWORD = "Dsn-Fi1e-Sentinel"
ROLE = "prober"


def add_prober(server: PostgresServer) -> None:
    """A pg_monitor role that must give its password (scram), unlike the dev server's trust."""
    server.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}' IN ROLE pg_monitor")
    hba = server.datadir / "pg_hba.conf"
    hba.write_text(f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    server.psql("SELECT pg_reload_conf()")


@pytest.fixture
def second(workdir: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(workdir / "pg2", max_connections=20)
    server.start()
    server.psql("CREATE EXTENSION pg_stat_statements")
    yield server
    server.stop("immediate")


def secret_file(workdir: Path, name: str, text: str) -> str:
    path = workdir / name
    path.write_text(text + "\n")
    return str(path)


def probe_config(workdir: Path, targets: dict[str, dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "interval_seconds": 1, "timeout_seconds": 3,
        "auth_modules": {
            "monitor": {"user": ROLE, "password_file": secret_file(workdir, "pw", PASSWORD)},
            "wrong": {"user": ROLE, "password_file": secret_file(workdir, "wrong", WRONG)},
            "viadsn": {"dsn_file": secret_file(
                workdir, "dsn", f"postgresql://{ROLE}:{DSN_PASSWORD}@ignored.invalid:1/x"
                                "?application_name=saasmon_exporter")},
        },
        "default_auth_module": "monitor",
        "probe": {"targets": targets},
        **extra,
    }


def target(server: PostgresServer, **extra: Any) -> dict[str, Any]:
    return {"host": "127.0.0.1", "port": server.port, **extra}


def probe(exporter: Exporter, query: str) -> tuple[int, str]:
    status, body, _ = exporter.get(f"/probe?{query}", timeout=30)
    return status, body


def probed(exporter: Exporter, query: str) -> Samples:
    status, body = probe(exporter, query)
    assert status == 200, body
    return parse(body)


def wait_probe(exporter: Exporter, query: str, check: str,
               predicate: Callable[[Samples], bool], timeout: float = 60) -> Samples:
    deadline = time.monotonic() + timeout
    samples: Samples = {}
    while time.monotonic() < deadline:
        samples = probed(exporter, query)
        if predicate(samples):
            return samples
        time.sleep(0.3)
    raise AssertionError(f"{check} not reached within {timeout}s: "
                         f"{ {k: v for k, v in samples.items() if 'up' in k[0]} }")


def test_two_servers_by_name_and_unlisted_targets_refused_without_connecting(
        postgres: PostgresServer, second: PostgresServer, workdir: Path,
        run_exporter: Run) -> None:
    for server in (postgres, second):
        add_prober(server)
    second.psql("CREATE TABLE only_on_two(id int); INSERT INTO only_on_two VALUES (1);"
                "SELECT count(*) FROM only_on_two")
    exporter = run_exporter("postgres", probe_config(
        workdir, {"one": target(postgres), "two": target(second)}))
    one = probed(exporter, "target=one")
    two = probed(exporter, "target=two")
    assert value(one, "pg_up", target="one") == 1
    assert value(two, "pg_up", target="two") == 1
    assert not [k for k in one if k[0] == "pg_up" and dict(k[1])["target"] != "one"]
    assert value(two, "pg_table_seq_scan_total", table="only_on_two") >= 1
    assert total(one, "pg_table_seq_scan_total", table="only_on_two") == 0
    assert [k for k in one if k[0] == "pg_table_seq_scan_total"] == []
    # The DSN-file module lends user and password; the target's host and port win.
    via_dsn = probed(exporter, "target=one&auth_module=viadsn")
    assert value(via_dsn, "pg_up", target="one") == 0  # its password is not the role's
    assert value(via_dsn, "pg_exporter_collector_errors_total", collector="activity",
                 reason="auth") >= 1

    # A host nobody listed: refused before any connection (a listener we own sees none).
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(1.0)
        port = listener.getsockname()[1]
        status, body = probe(exporter, f"target=127.0.0.1:{port}/postgres")
        assert status == 403, body
        assert "not allowed" in body and "probe.allow_hosts" in body
        with pytest.raises(TimeoutError):
            listener.accept()
    for query, status_wanted, words in [
        ("target=three", 403, "not allowed"),
        ("", 400, "target parameter is missing"),
        (f"target=postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{postgres.port}/postgres", 400,
         "credentials come from auth modules"),
        ("target=one&auth_module=nosuch", 400, "unknown auth_module"),
    ]:
        status, body = probe(exporter, query)
        assert status == status_wanted, (query, body)
        assert words in body and len(body.splitlines()) == 1
        assert PASSWORD not in body
    own = exporter.scrape()
    assert value(own, "pg_exporter_probes_total", result="refused") == 5
    assert value(own, "pg_exporter_probe_targets") == 3  # one, two, one via viadsn


def test_allow_listed_host_is_probed_with_the_default_module(
        postgres: PostgresServer, workdir: Path, run_exporter: Run) -> None:
    add_prober(postgres)
    config = probe_config(workdir, {})
    config["probe"] = {"allow_hosts": ["127.0.0.0/8"], "allow_ports": [postgres.port]}
    exporter = run_exporter("postgres", config)
    label = f"127.0.0.1:{postgres.port}/postgres"
    samples = probed(exporter, f"target=127.0.0.1:{postgres.port}")
    assert value(samples, "pg_up", target=label) == 1
    status, body = probe(exporter, "target=127.0.0.1:5432")  # port not in allow_ports
    assert status == 403, body


def test_down_target_is_reported_and_recovers_while_the_other_is_served(
        postgres: PostgresServer, second: PostgresServer, workdir: Path,
        run_exporter: Run) -> None:
    for server in (postgres, second):
        add_prober(server)
    # A host that takes the connection and never answers: bounded by the timeout.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    exporter = run_exporter("postgres", probe_config(
        workdir, {"up": target(postgres), "down": target(second),
                  "hang": {"host": "127.0.0.1", "port": silent.getsockname()[1]}}))
    with silent:
        status, body = probe(exporter, "target=hang")
        assert status == 200, body
        hang = parse(body)
        assert value(hang, "pg_up", target="hang") == 0
        assert total(hang, "pg_exporter_collector_errors_total", target="hang",
                     reason="timeout") >= 1
    assert value(probed(exporter, "target=down"), "pg_up", target="down") == 1
    second.stop("immediate")
    down = wait_probe(exporter, "target=down", "pg_up 0",
                      lambda s: value(s, "pg_up", target="down") == 0)
    assert total(down, "pg_exporter_collector_errors_total", target="down",
                 reason="connection") >= 1
    assert value(down, "pg_probe_duration_seconds") >= 0
    assert value(probed(exporter, "target=up"), "pg_up", target="up") == 1
    assert exporter.get("/metrics")[0] == 200
    second.start()
    wait_probe(exporter, "target=down", "recovery",
               lambda s: value(s, "pg_up", target="down") == 1
               and value(s, "pg_exporter_collector_success", collector="database") == 1)


def prober_calls(server: PostgresServer) -> int:
    """Statements the probe role has run, from pg_stat_statements (exact, immediate)."""
    return int(server.psql(
        "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements s "
        f"JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname = '{ROLE}'"))


def test_two_scrapers_within_the_interval_cost_one_collection(
        postgres: PostgresServer, workdir: Path, run_exporter: Run) -> None:
    add_prober(postgres)
    config = probe_config(workdir, {"db": target(postgres)})
    config["interval_seconds"] = 600  # the window: two HA scrapers fall inside it
    config["auth_modules"]["again"] = config["auth_modules"]["monitor"]
    exporter = run_exporter("postgres", config)
    before = prober_calls(postgres)
    with ThreadPoolExecutor(2) as pool:  # the pair, at the same moment
        answers = list(pool.map(lambda _: probed(exporter, "target=db"), range(2)))
    one_round = prober_calls(postgres) - before
    assert one_round > 0
    assert all(value(a, "pg_up", target="db") == 1 for a in answers)
    assert sorted(value(a, "pg_probe_shared") for a in answers) == [0, 1]
    later = probed(exporter, "target=db")  # the pair's next scrape of another phase
    assert value(later, "pg_probe_shared") == 1
    assert prober_calls(postgres) - before == one_round
    # Same numbers, not just an answer: the data is the collection both saw.
    assert value(later, "pg_database_xact_commit_total", database="postgres") == \
        value(answers[0], "pg_database_xact_commit_total", database="postgres")
    own = exporter.scrape()
    assert value(own, "pg_exporter_probes_total", result="collected") == 1
    assert value(own, "pg_exporter_probes_total", result="shared") == 2
    # The count would see a second collection: another auth module (another connection
    # identity, so another cache entry) collects on its own.
    probed(exporter, "target=db&auth_module=again")
    assert prober_calls(postgres) - before > one_round


def test_auth_module_secrets_never_in_answers_metrics_or_logs(
        postgres: PostgresServer, workdir: Path, run_exporter: Run) -> None:
    add_prober(postgres)
    exporter = run_exporter("postgres", probe_config(workdir, {"db": target(postgres)}))
    bodies = [probe(exporter, q)[1] for q in (
        "target=db", "target=db&auth_module=wrong", "target=db&auth_module=viadsn",
        f"target=127.0.0.1:{postgres.port}", f"target=x&auth_module={PASSWORD}")]
    wrong = parse(bodies[1])
    assert value(wrong, "pg_up", target="db") == 0
    assert total(wrong, "pg_exporter_collector_errors_total", reason="auth") >= 1
    bodies.append(exporter.scrape_text())
    # The failed logins are in the log, without the password they tried.
    exporter.wait_until("failures logged", lambda _: "collector failed" in exporter.log())
    for text in [*bodies, exporter.log()]:
        for secret in (PASSWORD, WRONG, DSN_PASSWORD):
            assert secret not in text


def test_table_statistics_of_several_databases(
        postgres: PostgresServer, run_exporter: Run) -> None:
    for name in ("app_a", "app_b", "app_c", "app_skip"):
        postgres.psql(f"CREATE DATABASE {name}")
        postgres.psql(f"CREATE TABLE t_{name}(id int); INSERT INTO t_{name} VALUES (1), (2);"
                      f"SELECT count(*) FROM t_{name}", db=name)
    exporter = run_exporter("postgres", {
        "dsn": postgres.dsn, "interval_seconds": 1, "timeout_seconds": 5,
        "table_databases": {"include": ["app_*"], "exclude": ["app_skip"],
                            "max_databases": 2}})
    samples = exporter.wait_until(
        "two databases read", lambda s: total(s, "pg_table_database_up") == 2)
    for name in ("app_a", "app_b"):
        assert value(samples, "pg_table_seq_tup_read_total", database=name,
                     table=f"t_{name}") >= 2
        assert value(samples, "pg_table_live_tuples", database=name,
                     table=f"t_{name}") >= 0
        assert value(samples, "pg_tables_untracked", database=name) == 0
    labelled = {dict(k[1])["database"] for k in samples if k[0].startswith("pg_table_")
                and "database" in dict(k[1])}
    assert labelled == {"app_a", "app_b"}  # app_c past max_databases, app_skip excluded
    assert value(samples, "pg_table_databases_untracked") == 1
    # A database that goes away: its series go, the others stay, nothing fails.
    postgres.psql("DROP DATABASE app_a WITH (FORCE)")
    after = exporter.wait_until(
        "app_c takes app_a's place",
        lambda s: {dict(k[1]).get("database") for k in s
                   if k[0] == "pg_table_database_up"} == {"app_b", "app_c"})
    assert value(after, "pg_exporter_collector_success", collector="tables") == 1
    assert value(after, "pg_table_databases_untracked") == 0


def test_probed_targets_get_table_statistics_of_their_databases(
        postgres: PostgresServer, workdir: Path, run_exporter: Run) -> None:
    add_prober(postgres)
    postgres.psql("CREATE DATABASE shop")
    postgres.psql("CREATE TABLE orders(id int); SELECT count(*) FROM orders", db="shop")
    config = probe_config(workdir, {"db": target(postgres)},
                          table_databases={"include": ["shop", "postgres"]})
    samples = probed(run_exporter("postgres", config), "target=db")
    assert value(samples, "pg_table_database_up", database="shop") == 1
    assert value(samples, "pg_table_database_up", database="postgres") == 1
    assert value(samples, "pg_table_seq_scan_total", database="shop", table="orders") >= 1


def test_live_targets_are_capped_and_idle_ones_closed(
        postgres: PostgresServer, workdir: Path, run_exporter: Run) -> None:
    add_prober(postgres)
    for name in ("d1", "d2", "d3"):
        postgres.psql(f"CREATE DATABASE {name}")
    config = probe_config(workdir, {n: target(postgres, database=n) for n in ("d1", "d2", "d3")})
    config["probe"]["max_targets"] = 2
    config["probe"]["idle_close_seconds"] = 2
    exporter = run_exporter("postgres", config)
    for name in ("d1", "d2", "d3"):
        assert value(probed(exporter, f"target={name}"), "pg_up", target=name) == 1
    own = exporter.scrape()
    assert value(own, "pg_exporter_probe_targets") == 2
    assert value(own, "pg_exporter_probe_targets_closed_total", reason="evicted") == 1
    exporter.wait_until("idle targets closed",
                        lambda s: value(s, "pg_exporter_probe_targets") == 0
                        and value(s, "pg_exporter_probe_targets_closed_total",
                                  reason="idle") == 2)
    # Their connections are gone from the server too.
    deadline = time.monotonic() + 30
    while int(postgres.psql(
            f"SELECT count(*) FROM pg_stat_activity WHERE usename = '{ROLE}'")) > 0:
        assert time.monotonic() < deadline, "probe connections left open"
        time.sleep(0.2)


def documented_scrape_config() -> str:
    """The scrape config docs/exporters/postgres.md shows for /probe, as written there."""
    text = (Path(__file__).parents[2] / "docs/exporters/postgres.md").read_text()
    blocks = text.split("```yaml\n")[1:]
    found = [b.split("```")[0] for b in blocks if "metrics_path: /probe" in b]
    assert len(found) == 1
    return found[0]


def prometheus_query(port: int, expr: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as response:
        result: list[dict[str, Any]] = json.load(response)["data"]["result"]
    return result


def test_an_ha_prometheus_pair_with_the_documented_relabeling_costs_one_collection(
        postgres: PostgresServer, second: PostgresServer, workdir: Path,
        run_exporter: Run) -> None:
    for server in (postgres, second):
        add_prober(server)
    config = probe_config(workdir, {"orders": target(postgres), "billing": target(second)})
    config["interval_seconds"] = 2  # = the scrape interval, as the docs say
    exporter = run_exporter("postgres", config)
    scrape = documented_scrape_config().replace("pg-exporter.internal:9630",
                                                f"127.0.0.1:{exporter.port}")
    prometheus_yml = workdir / "prometheus.yml"
    prometheus_yml.write_text("global: {scrape_interval: 2s, scrape_timeout: 2s}\n" + scrape)
    pair: list[tuple[Process, int]] = []
    try:
        for name in ("prom-a", "prom-b"):
            port = free_port()
            pair.append((Process(name, prometheus_argv(prometheus_yml, workdir / name, port),
                                 workdir / f"{name}.log").start(), port))
        for process, port in pair:
            process.wait_http(f"http://127.0.0.1:{port}/-/ready", timeout=60)

        exporter.wait_until("ten probes", lambda s: value(s, "pg_exporter_probes_total",
                                                          result="shared") >= 10, timeout=120)
        for _, port in pair:
            deadline = time.monotonic() + 60
            while {r["metric"]["instance"]: r["value"][1] for r in prometheus_query(
                    port, 'pg_up{job="saasmon-postgres"}')} != {"orders": "1", "billing": "1"}:
                assert time.monotonic() < deadline, prometheus_query(port, "up")
                time.sleep(0.5)
        own = exporter.scrape()
        collected = value(own, "pg_exporter_probes_total", result="collected")
        shared = value(own, "pg_exporter_probes_total", result="shared")
        # Two scrapers, one collection per interval: about half of the probes collect
        # (a probe mid-flight when counted may tip one side by a few).
        assert collected <= shared + 4, (collected, shared)
        assert value(own, "pg_exporter_probes_total", result="refused") == 0
    finally:
        for process, _ in pair:
            process.stop()
