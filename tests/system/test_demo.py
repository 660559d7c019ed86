"""`make demo` end to end: real servers, the app, every exporter, a real Prometheus alerting
through a real Alertmanager to the stand-in receivers.

The demo runs as a subprocess; while it runs, the test reads the URLs it prints and asks
Prometheus (not the exporters) whether every job is up, so the whole path exporter -> scrape
-> TSDB -> query is exercised; that the synthetic week of history is there; that the
Watchdog went Prometheus -> Alertmanager -> SMS relay -> heartbeat stand-in; and that every
panel target and `label_values` variable of every dashboards/generated/*.json board returns
data. Then it presses Ctrl-C (SIGINT): afterwards nothing the demo started may survive: no
process mentions its run directory and no port it printed still listens.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.scrape import mixin_jobs

REPO = Path(__file__).resolve().parents[2]
BOARDS = REPO / "dashboards" / "generated"
# A safety net only: the test presses Ctrl-C as soon as its checks are done.
DURATION = 600
# The healthy-stack check waits until every 5-minute window holds live samples only.
SETTLED_AFTER = 330.0
# Longer `for`s cannot fire within the 30 minutes the issue asks about; the business, AI,
# support and cron ones are judged at every hour by tests/integration/test_any_hour.py instead.
LONGEST_FOR = 30 * 60
# The host alerts judge the machine the demo runs on (a 2-core CI box running the whole
# stack and the test), not the demo's data.
MACHINE_AREAS = {"host"}
# Every job of the mixin: the demo scrapes them all (devstack/scrape.py).
JOBS = set(mixin_jobs().values())
STARTUP_TIMEOUT = 90.0
PANEL_DATA_TIMEOUT = 120.0  # the slowest panels need a few scrapes and cron runs
URL_LINE = re.compile(r"^\s+(?P<label>[a-z0-9_ ]+?)\s{2,}(?P<url>\S+://\S+)$")
# boards.md: values of Grafana's built-in variables for the panel data check.
BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h",
            "__interval_ms": "15000", "__range_s": "3600", "__range_ms": "3600000"}
VARIABLE = re.compile(r"\$\{(?P<braced>\w+)(?::\w+)?\}|\$(?P<plain>\w+)")
LABEL_VALUES = re.compile(r"^\s*label_values\((?:(?P<selector>.*),\s*)?(?P<label>\w+)\s*\)\s*$",
                          re.DOTALL)
CHECK_WINDOW = 300  # seconds of "the last minutes" each range query covers
# Series the machine itself may lack, with the query that tells whether it has them: a
# panel reading one is excused (with a warning) only when that query finds nothing here.
# Link utilisation needs a NIC that reports its speed; containers' veth devices report -1.
MACHINE_DEPENDENT = {
    "node_network_utilisation": 'node_network_speed_bytes{job="node",device!="lo"} > 0',
}
# Series a healthy demo does not have by design, with the query that finds their source: no
# endpoint of the demo speaks TLS (no certificate to expire), it runs no cloudwatch_exporter
# (AWS credentials), nothing but Watchdog fires (no incident to age), and it is one cluster:
# no target carries a `cluster` label, so each board's cluster variable has no values and the
# boards show All (`.*`, docs/alert-rules.md#conventions).
ANY_FIRING = 'ALERTS{alertstate="firing",guide!=""}'
NOT_IN_THE_DEMO = {
    ", cluster)": 'up{cluster!=""}',
    "instance:probe_ssl_cert_seconds_left:min": "probe_ssl_earliest_cert_expiry",
    "distribution:aws_cloudfront_cache_hit:ratio_avg30m": "aws_cloudfront_cache_hit_rate_average",
    "alert:alerts_firing_age:seconds": ANY_FIRING,
}

pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def run_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: that lives under a 0700 directory the `postgres` user (which
    # devstack.servers drops to when run as root) cannot traverse.
    path = Path(tempfile.mkdtemp(prefix="saasmon-demo-"))
    path.chmod(0o755)
    yield path / "run"
    shutil.rmtree(path, ignore_errors=True)


def read_lines(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def wait_for_urls(lines: queue.Queue[str | None], output: list[str]) -> dict[str, str]:
    """Collect `label  url` lines up to the "Press Ctrl-C" line that ends the block."""
    urls: dict[str, str] = {}
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            break
        output.append(line)
        match = URL_LINE.match(line)
        if match:
            urls[match["label"]] = match["url"]
        if line.startswith("Press Ctrl-C"):
            return urls
    raise AssertionError("demo printed no URL block:\n" + "\n".join(output))


def drain(lines: queue.Queue[str | None], output: list[str]) -> None:
    while True:
        try:
            line = lines.get_nowait()
        except queue.Empty:
            return
        if line is not None:
            output.append(line)


def query(prom: str, expr: str) -> list[dict[str, Any]]:
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def wait_for_query(prom: str, expr: str, check: Any, timeout: float) -> list[dict[str, Any]]:
    # Bounded poll: the first scrape of a job happens at a random offset within its 15 s
    # interval, so the sample can legitimately take that long to appear.
    deadline = time.monotonic() + timeout
    result: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):  # URLError included: retried until the deadline
            result = query(prom, expr)
            if check(result):
                return result
        time.sleep(1)
    raise AssertionError(f"{expr}: condition not met within {timeout:.0f}s, last result {result}")


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def get_json(url: str, params: list[tuple[str, str]] | None = None) -> Any:
    query = "?" + urllib.parse.urlencode(params) if params else ""
    with urllib.request.urlopen(url + query, timeout=10) as response:
        return json.load(response)


# -- panel data check (boards.md) ---------------------------------------------------------------
def variable_values(board: dict[str, Any]) -> dict[str, str]:
    """What each template variable stands for in the check: All (the variable's allValue,
    else `.*`) for multi/All variables, else the current value."""
    values = dict(BUILTINS)
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "datasource":
            continue
        if variable.get("includeAll") or variable.get("multi"):
            values[variable["name"]] = variable.get("allValue") or ".*"
        else:
            current = variable.get("current", {}).get("value")
            values[variable["name"]] = str(current[0] if isinstance(current, list) else current)
    return values


def expand(expr: str, values: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match["braced"] or match["plain"]
        return values.get(name, match[0])

    return VARIABLE.sub(one, expr)


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))  # a collapsed row holds its panels


@dataclass(frozen=True)
class Check:
    board: str
    panel: str
    ref_id: str
    expr: str
    kind: str  # "panel" or "variable"

    def __str__(self) -> str:
        return f"{self.board} / {self.panel} / {self.ref_id}: {self.expr}"


def board_checks(path: Path) -> list[Check]:
    board = json.loads(path.read_text())
    values = variable_values(board)
    checks = []
    for variable in board.get("templating", {}).get("list", []):
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else query
        if variable.get("type") == "query" and isinstance(text, str) and "label_values" in text:
            checks.append(Check(path.name, f"variable {variable['name']}", "-",
                                expand(text, values), "variable"))
    for panel in panels(board.get("panels", [])):
        title = f"panel {panel.get('id')} {panel.get('title', '')!r}"
        for target in panel.get("targets", []):
            if target.get("expr"):
                checks.append(Check(path.name, title, str(target.get("refId", "?")),
                                    expand(target["expr"], values), "panel"))
    return checks


def has_data(prom: str, check: Check) -> bool:
    """A range query over the last minutes returns a series with a sample; a label_values
    query finds a value."""
    end = time.time()
    start = end - CHECK_WINDOW
    if check.kind == "variable":
        match = LABEL_VALUES.match(check.expr)
        assert match is not None, f"not a label_values query: {check}"
        if match["selector"] is None:
            body = get_json(f"{prom}/api/v1/label/{match['label']}/values",
                            [("start", f"{start:.0f}"), ("end", f"{end:.0f}")])
            return bool(body["data"])
        body = get_json(f"{prom}/api/v1/series", [
            ("match[]", match["selector"]), ("start", f"{start:.0f}"), ("end", f"{end:.0f}")])
        return any(match["label"] in series for series in body["data"])
    body = get_json(f"{prom}/api/v1/query_range", [
        ("query", check.expr), ("start", f"{start:.0f}"), ("end", f"{end:.0f}"), ("step", "15")])
    return any(series["values"] for series in body["data"]["result"])


def failing(prom: str, checks: list[Check]) -> list[tuple[Check, str]]:
    found = []
    for check in checks:
        try:
            if not has_data(prom, check):
                found.append((check, "no data"))
        except urllib.error.HTTPError as error:  # a query Prometheus refuses
            found.append((check, f"HTTP {error.code}: {error.read().decode(errors='replace')}"))
    return found


def excused(prom: str, check: Check, why: str) -> bool:
    """The check reads a series this machine or the demo cannot have (MACHINE_DEPENDENT,
    NOT_IN_THE_DEMO), and its source is indeed absent; warns."""
    for series, precondition in {**MACHINE_DEPENDENT, **NOT_IN_THE_DEMO}.items():
        if why == "no data" and series in check.expr and not query(prom, precondition):
            warnings.warn(f"{check}: no data, this machine has no {precondition}", stacklevel=1)
            return True
    return False


def check_panel_data(prom: str, boards: list[Path], timeout: float) -> None:
    """Every check passes before the timeout; re-asking only the failing ones, since some
    series appear only after a few scrapes. Fails listing every one still without data.
    Called once every job is up, so the machine-dependence preconditions can be trusted."""
    checks = [check for path in boards for check in board_checks(path)]
    deadline = time.monotonic() + timeout
    while True:
        failed = [(c, why) for c, why in failing(prom, checks) if not excused(prom, c, why)]
        if not failed or time.monotonic() > deadline:
            break
        checks = [check for check, _ in failed]
        time.sleep(5)
    assert not failed, f"{len(failed)} queries without data:\n" + "\n".join(
        f"  {check} ({why})" for check, why in failed)


ALERT_RULES = REPO / "alert_rules" / "generated" / "saasmon-alerts.yaml"
RECORDING_RULES = REPO / "alert_rules" / "generated" / "saasmon-rules.yaml"
SELECTOR = re.compile(r'(?<![\w:])(?P<name>[a-zA-Z_:][\w:]*)\{(?P<matchers>[^{}]*)\}')
EQUALITY = re.compile(r'(?P<label>\w+)\s*=\s*"(?P<value>[^"]*)"')
# Matchers the demo cannot match by design, each with why (a user's own series match them).
UNMATCHED_BY_DESIGN = {
    # Only a NIC that reports a speed has it (see MACHINE_DEPENDENT).
    ("node_network_speed_bytes", "job", "node"): MACHINE_DEPENDENT["node_network_utilisation"],
    # A cloudwatch_exporter's job (see NOT_IN_THE_DEMO).
    ("aws_cloudfront_cache_hit_rate_average", "job", "cloudwatch"):
        "aws_cloudfront_cache_hit_rate_average",
    # Alerts about alerts: only a firing catalog alert makes these series.
    ("ALERTS", "guide", "saas-ops-module"): ANY_FIRING,
    ("alert:alerts_firing_age:seconds", "guide", "tpt-erp"): ANY_FIRING,
    **{("alert:alerts_firing_age:seconds", "severity", severity): ANY_FIRING
       for severity in ("critical", "high", "medium", "low")},
}


def equality_matchers(expr: str) -> set[tuple[str, str, str]]:
    """(metric, label, value) of every `label="value"` matcher on a named selector."""
    found = set()
    for selector in SELECTOR.finditer(re.sub(r'"[^"]*"', lambda m: m[0].replace("{", "(")
                                             .replace("}", ")"), expr)):
        if selector["name"] in ("by", "without", "on", "ignoring", "group_left", "group_right"):
            continue
        for matcher in EQUALITY.finditer(selector["matchers"]):
            if selector["matchers"][matcher.end("label"):].lstrip().startswith("="):
                found.add((selector["name"], matcher["label"], matcher["value"]))
    return found


def unmatched_matchers(prom: str, boards: list[Path]) -> list[str]:
    """Every equality matcher of every rule and panel query that matches no series of the
    demo over the last minutes (the le="5" class of bug: a rule that can never fire)."""
    exprs = [r["expr"] for path in (ALERT_RULES, RECORDING_RULES)
             for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]]
    exprs += [c.expr for path in boards for c in board_checks(path) if c.kind == "panel"]
    recorded = {r["record"] for g in yaml.safe_load(RECORDING_RULES.read_text())["groups"]
                for r in g["rules"]}
    missing = []
    for name, label, value in sorted({m for e in exprs for m in equality_matchers(e)}):
        if (name, label, value) in UNMATCHED_BY_DESIGN and not query(
                prom, UNMATCHED_BY_DESIGN[(name, label, value)]):
            continue
        kind = "recording rule" if name in recorded else "metric"
        if not query(prom, f'count(last_over_time({name}{{{label}="{value}"}}[10m]))'):
            missing.append(f'{kind} {name}{{{label}="{value}"}}')
    return missing


def seconds_of(duration: str) -> float:
    return sum(float(n) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[u]
               for n, u in re.findall(r"(\d+)([smhd])", duration))


def standing_conditions(prom: str) -> list[str]:
    """Every alert rule whose condition holds now in the demo (firing, pending, or about to
    be: the expression alone, before its `for`), Watchdog aside. A healthy stack has none:
    waiting out each `for` would take the test 30 minutes to see the same thing."""
    found = []
    for group in yaml.safe_load(ALERT_RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if (rule["alert"] == "Watchdog" or rule["labels"].get("area") in MACHINE_AREAS
                    or seconds_of(rule.get("for", "0s")) > LONGEST_FOR):
                continue
            for series in query(prom, rule["expr"]):
                labels = {k: v for k, v in series["metric"].items() if k != "__name__"}
                found.append(f"{rule['alert']} ({rule['labels']['severity']}, "
                             f"{rule['labels'].get('guide', '')}) {labels} = {series['value'][1]}")
    return found


def machine_alerts() -> set[str]:
    return {rule["alert"] for group in yaml.safe_load(ALERT_RULES.read_text())["groups"]
            for rule in group["rules"] if rule["labels"].get("area") in MACHINE_AREAS}


def about_the_machine(notification: dict[str, Any]) -> bool:
    """A notification about an alert that judges the machine the demo runs on (MACHINE_AREAS;
    notifications are grouped by alert name): `make test` runs the demo beside CPU-bound
    tests, and on a busy 2-core box HostCpuHigh is right to fire. Every receiver's message
    names its alert (the templates, the SMS relay's)."""
    text = json.dumps(notification.get("body"))
    return any(name in text for name in machine_alerts())


def wait_for_json(url: str, params: list[tuple[str, str]], timeout: float) -> list[Any]:
    deadline = time.monotonic() + timeout
    found: list[Any] = []
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            found = get_json(url, params)
            if found:
                return found
        time.sleep(1)
    raise AssertionError(f"{url} {params}: nothing within {timeout:.0f}s")


def ports_of(urls: dict[str, str]) -> list[int]:
    ports = []
    for url in urls.values():
        parsed = urllib.parse.urlsplit(url)
        if parsed.port is not None:
            ports.append(parsed.port)
    return sorted(set(ports))


def listening(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that name `text` (the run dir is in all of ours)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        # Zombies hold no port or data and are reaped by whoever adopted them.
        if text in cmdline and state != "Z":
            found.append(f"{entry.name}: {cmdline}")
    return found


def stop(proc: subprocess.Popen[str]) -> None:
    """Ctrl-C's path (SIGTERM), and SIGKILL if that does not end it: never hang the test."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_demo_runs_alerts_fills_every_panel_and_cleans_up(run_dir: Path) -> None:
    boards = sorted(BOARDS.glob("*.json"))
    assert boards, f"no boards in {BOARDS}: render them (make rules)"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "demo.py"), "--duration", str(DURATION),
         "--run-dir", str(run_dir)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str | None] = queue.Queue()
    output: list[str] = []
    reader = threading.Thread(target=read_lines, args=(proc.stdout, lines), daemon=True)
    reader.start()
    urls: dict[str, str] = {}
    try:
        urls = wait_for_urls(lines, output)
        for label in ("postgres exporter", "redis exporter", "cron exporter", "integrations exporter",
                      "business exporter", "webvitals exporter", "sms relay", "node exporter",
                      "blackbox exporter", "postgres standby exporter", "reference app",
                      "prometheus", "alertmanager alerts", "notifications", "smtp", "postgres",
                      "postgres standby", "redis"):
            assert label in urls, f"{label!r} missing from the printed URLs: {urls}"
        prom = urls["prometheus"].rstrip("/")
        prom_started = time.monotonic()
        # Every check below must finish while the demo still runs.
        ends = time.monotonic() + DURATION - 3

        def left() -> float:
            return max(1.0, ends - time.monotonic())

        # The synthetic history is in the TSDB before the first scrape: last week has the
        # app's request rate (1 m windows work: 15 s samples there), and it spans 8 days.
        app = urllib.parse.urlsplit(urls["reference app"]).netloc
        last_week = query(prom, f'sum(rate(http_requests_total{{job="saasmon-app",'
                                f'instance="{app}"}}[1m] offset 1w)) > 0')
        assert last_week, "no synthetic history a week ago"
        assert query(prom, 'count_over_time(http_request_duration_seconds_count'
                           '{job="saasmon-app"}[1h] offset 191h) > 0'), "history under 8 days"

        # Every job scraped successfully, seen through Prometheus itself.
        up = wait_for_query(
            prom, "up",
            lambda result: {r["metric"].get("job") for r in result if r["value"][1] == "1"}
            >= JOBS,
            timeout=left(),
        )
        assert all(r["value"][1] == "1" for r in up), up
        # Every http link the demo printed answers 200 (Debian's Prometheus serves /classic/...,
        # its Alertmanager no web UI: tests/integration/test_demo_links.py checks those pages' content).
        for label, url in urls.items():
            if url.startswith("http"):
                status = status_of(url)
                assert status == 200, f"printed link {label!r} {url} answered {status}"
        for metric in ("pg_up", "redis_up", "cron_up", "business_up"):
            result = wait_for_query(prom, metric, lambda r: bool(r), timeout=5)
            assert all(r["value"][1] == "1" for r in result), (metric, result)
        # Live data from the app-side pieces: generated KPIs, app traffic, the app's health.
        for expr in ("business_daily_active_users > 0", "http_requests_total > 0",
                     'probe_success{job="saasmon-app-probe"} == 1',
                     'probe_success{job="blackbox-storage"} == 1',
                     'cron_jobs_registered == 7', "webvitals_beacons_accepted_total > 0"):
            wait_for_query(prom, expr, lambda r: bool(r), timeout=left())

        # The Watchdog fires in Prometheus, is held by the real Alertmanager and reaches the
        # heartbeat stand-in through the SMS relay's /heartbeat.
        wait_for_query(prom, 'ALERTS{alertname="Watchdog",alertstate="firing"}',
                       lambda r: bool(r), timeout=left())
        # Prometheus sends it after the evaluation that made it fire: wait for the delivery.
        watchdog = wait_for_json(urls["alertmanager alerts"],
                                 [("filter", 'alertname="Watchdog"')], timeout=30)
        assert [a["status"]["state"] for a in watchdog] == ["active"], watchdog
        pings = wait_for_json(urls["notifications"], [("receiver", "heartbeat")], timeout=left())
        assert pings[0]["path"] == "/heartbeat" and pings[0]["method"] == "GET", pings

        check_panel_data(prom, boards, timeout=min(PANEL_DATA_TIMEOUT, left()))

        # A healthy stack pages no one (issue 13 §5): no alert condition holds, and no
        # receiver but the heartbeat heard anything.
        time.sleep(max(0.0, prom_started + SETTLED_AFTER - time.monotonic()))
        standing = standing_conditions(prom)
        assert not standing, "alert conditions hold on the healthy demo:\n  " + "\n  ".join(
            standing)
        heard = {item.get("receiver") for item in get_json(urls["notifications"], [])
                 if not about_the_machine(item)}
        assert heard <= {"heartbeat"}, f"the healthy demo notified {sorted(heard)}"
        # Every label matcher matches something (issue 13 §4).
        unmatched = unmatched_matchers(prom, boards)
        assert not unmatched, "matchers that match no series in the demo:\n  " + "\n  ".join(
            unmatched)

        # Ctrl-C: the children stop newest first within 10 s in all, then the servers.
        proc.send_signal(signal.SIGINT)
        status = proc.wait(timeout=60)
    except Exception as exc:
        # Whatever failed, the demo's own output (complete once it stopped) explains it.
        stop(proc)
        reader.join(timeout=5)
        drain(lines, output)
        raise AssertionError(f"{exc}\n--- demo output ---\n" + "\n".join(output)) from exc
    finally:
        stop(proc)
        reader.join(timeout=5)
        drain(lines, output)
    log = "\n".join(output)
    assert status == 0, log
    assert "demo stopped" in log, log

    leftovers = processes_mentioning(str(run_dir))
    assert not leftovers, f"processes left behind:\n{leftovers}"
    still_open = [port for port in ports_of(urls) if listening(port)]
    assert not still_open, f"ports still listening after the demo: {still_open}\n{log}"
