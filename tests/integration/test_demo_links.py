"""The Prometheus and Alertmanager links `make demo` prints lead somewhere useful.

Prometheus and Alertmanager are the machine's own (Debian's 2.42 and 0.25), started with the
demo's argv and configs, without the rest of the demo: Debian's Prometheus serves only the
classic UI (under /classic) and Debian's Alertmanager has no web UI at all, so the links
must be the ones this build answers.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

from devstack.alertmanager import alertmanager_argv
from devstack.demo import (
    alertmanager_commands,
    alertmanager_links,
    free_ports,
    prometheus_argv,
    prometheus_config,
    prometheus_links,
    spawn,
    wait_ready,
    write_alertmanager_config,
    write_demo_secrets,
    write_yaml,
)
from devstack.process import Process, stop_all

NO_WEB_UI = "does not include a web"  # Debian's Alertmanager page at /


def fetch(url: str) -> tuple[int, str]:
    """Status and body after redirects, as a browser would show them."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status), response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, list[str]]]:
    """Alertmanager and Prometheus as the demo starts them; their URLs and scrape jobs."""
    run_dir = tmp_path_factory.mktemp("demo-links")
    logs = run_dir / "logs"
    logs.mkdir()
    ports = free_ports()
    children: list[Process] = []
    try:
        secrets = write_demo_secrets(run_dir / "secrets", f"http://127.0.0.1:{ports['receivers']}")
        am_config = write_alertmanager_config(run_dir / "alertmanager", secrets, ports)
        am = spawn("alertmanager", alertmanager_argv(
            am_config, run_dir / "alertmanager" / "data", ports["alertmanager"]), logs)
        children.append(am)
        config = prometheus_config(ports)
        prom_config = run_dir / "prometheus.yml"
        write_yaml(prom_config, config)
        prom = spawn("prometheus", prometheus_argv(
            prom_config, run_dir / "prometheus", ports["prometheus"]), logs)
        children.append(prom)
        am_url = f"http://127.0.0.1:{ports['alertmanager']}"
        prom_url = f"http://127.0.0.1:{ports['prometheus']}"
        wait_ready(am, am_url + "/-/ready")
        wait_ready(prom, prom_url + "/-/ready")
        jobs = [job["job_name"] for job in config["scrape_configs"]]
        yield prom_url, am_url, jobs
    finally:
        stop_all(children)


def test_every_prometheus_link_the_demo_prints_answers_200_with_its_page(
        stack: tuple[str, str, list[str]]) -> None:
    prom_url, _, jobs = stack
    links = prometheus_links(prom_url)
    assert {"prometheus", "targets", "alerts", "rules"} <= set(links), links
    for label, url in links.items():
        status, body = fetch(url)
        assert status == 200, f"{label}: {url} answered {status}"
        assert "<title>Prometheus" in body, f"{label}: {url} is not a Prometheus page"
    # Each page shows what its name promises, from the demo's own config and rules.
    # Targets appear once service discovery has run (a few seconds after start).
    deadline = time.monotonic() + 30
    while True:
        _, targets = fetch(links["targets"])
        missing = [job for job in jobs if job not in targets]
        if not missing or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not missing, f"jobs missing from {links['targets']}: {missing}"
    _, alerts = fetch(links["alerts"])
    assert "Watchdog" in alerts and "PostgresDown" in alerts, f"alert rules missing: {links['alerts']}"
    _, rules = fetch(links["rules"])
    assert "job:http_request_duration_seconds:p95_5m" in rules, f"rules missing: {links['rules']}"
    # Every graph link carries a query this Prometheus accepts.
    graphs = {label: url for label, url in links.items() if label.startswith("query ")}
    assert len(graphs) == 4, graphs
    for label, url in graphs.items():
        expr = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["g0.expr"][0]
        status, body = fetch(f"{prom_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        assert status == 200 and json.loads(body)["status"] == "success", (label, expr, body)


def test_every_alertmanager_link_the_demo_prints_answers_200_with_json(
        stack: tuple[str, str, list[str]]) -> None:
    _, am_url, _ = stack
    # The bare address is Debian's "no web application" page: the demo must not print it.
    assert NO_WEB_UI in fetch(am_url + "/")[1]
    links = alertmanager_links(am_url)
    assert links, "the demo prints no Alertmanager link"
    for label, url in links.items():
        assert url.rstrip("/") != am_url, f"{label} is the bare address"
        status, body = fetch(url)
        assert status == 200, f"{label}: {url} answered {status}"
        assert NO_WEB_UI not in body, f"{label}: {url}"
        json.loads(body)
    status_body = json.loads(fetch(links["alertmanager status"])[1])
    assert "receiver: heartbeat" in status_body["config"]["original"], status_body


def test_every_amtool_command_the_demo_prints_runs(stack: tuple[str, str, list[str]]) -> None:
    _, am_url, _ = stack
    commands = alertmanager_commands(am_url)
    assert commands
    outputs = []
    for command in commands:
        done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=30,
                              check=False)
        assert done.returncode == 0, f"{command}: {done.stderr}"
        outputs.append(done.stdout)
    assert any("heartbeat" in output for output in outputs), outputs

