"""The dashboard lint itself, and the generated boards: lint-clean, schema-valid, catalog-true."""

from __future__ import annotations

import copy
import functools
import json
import math
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards import lint
from dashboards.lint import Board, Finding

REPO = Path(__file__).resolve().parents[2]
GENERATED = REPO / "dashboards" / "generated"
CATALOG = REPO / "alert_rules" / "generated" / "catalog.json"
RECORDING = REPO / "alert_rules" / "generated" / "saasmon-rules.yaml"
BOARD_FILES = sorted(GENERATED.glob("*.json"))
# boards.md: every board of the contract.
BOARDS = {
    "saasmon-overview", "saasmon-api", "saasmon-frontend", "saasmon-realtime", "saasmon-database",
    "saasmon-redis", "saasmon-cron", "saasmon-integrations", "saasmon-business", "saasmon-ai",
    "saasmon-ux-support", "saasmon-bi", "saasmon-slo", "saasmon-exporters",
}
DS = {"type": "prometheus", "uid": "${datasource}"}


# -- a board that follows every rule, and one way to break each rule --------------------------
def good_board() -> Board:
    def query_var(name: str, query: str) -> dict[str, Any]:
        return {"type": "query", "name": name, "label": name, "datasource": dict(DS), "query": query,
                "refresh": 2, "multi": True, "includeAll": True, "allValue": ".+", "regex": "",
                "hide": 0, "sort": 1, "current": {"text": "All", "value": "$__all"}, "options": []}

    def panel(pid: int, kind: str, title: str, y: int, x: int, targets: list[dict[str, Any]],
              unit: str, steps: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        defaults: dict[str, Any] = {"unit": unit, "thresholds": {
            "mode": "absolute", "steps": [{"value": None, "color": "green"}, *(steps or [])]}}
        if kind == "timeseries":
            defaults["custom"] = {"thresholdsStyle": {"mode": "dashed"}, "lineWidth": 1}
        description = "What it shows." + (" nova-crm § 1.1 Redis memory: 0.9 (high)" if steps else "")
        return {"type": kind, "id": pid, "title": title, "description": description,
                "datasource": dict(DS), "gridPos": {"x": x, "y": y, "w": 12, "h": 8},
                "fieldConfig": {"defaults": defaults, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}}
                if kind == "timeseries" else {"reduceOptions": {"calcs": ["lastNotNull"]}},
                "targets": targets}

    sel = 'cluster=~"$cluster",job=~"$job",instance=~"$instance"'
    return {
        "uid": "saasmon-redis", "title": "SaaSmon / Redis", "tags": ["saasmon", "redis"],
        "editable": False, "schemaVersion": 39, "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m", "timezone": "browser", "graphTooltip": 1,
        "links": [{"type": "dashboards", "tags": ["saasmon"], "asDropdown": True, "title": "Boards",
                   "icon": "external link", "tooltip": "", "targetBlank": False, "includeVars": True,
                   "keepTime": True}],
        "templating": {"list": [
            {"type": "datasource", "name": "datasource", "label": "Data source", "query": "prometheus",
             "refresh": 1, "hide": 0, "regex": "", "current": {}, "options": []},
            {**query_var("cluster", "label_values(redis_up, cluster)"), "multi": False, "allValue": ".*"},
            query_var("job", 'label_values(redis_up{cluster=~"$cluster"}, job)'),
            query_var("instance", 'label_values(redis_up{cluster=~"$cluster",job=~"$job"}, instance)'),
        ]},
        "panels": [
            {"type": "row", "id": 1, "title": "Memory", "collapsed": False,
             "gridPos": {"x": 0, "y": 0, "w": 24, "h": 1}, "panels": []},
            panel(2, "timeseries", "Memory used", 1, 0,
                  [{"refId": "A", "expr": f"redis_memory_used_ratio{{{sel}}}", "legendFormat": "{{instance}}",
                    "datasource": dict(DS)}], "percentunit", [{"value": 0.9, "color": "orange"}]),
            panel(3, "stat", "Evictions", 1, 12,
                  [{"refId": "A", "legendFormat": "{{job}}",
                    "expr": f"sum by (job) (rate(redis_evicted_keys_total{{{sel}}}[$__rate_interval]))"}],
                  "ops"),
            panel(4, "timeseries", "Hit ratio", 9, 0,
                  [{"refId": "A", "legendFormat": "{{instance}}",
                    "expr": f"instance:redis_keyspace_hits:ratio_rate5m{{{sel}}}"},
                   {"refId": "B", "legendFormat": "per job",
                    "expr": 'sum by (job) (increase(redis_keyspace_hits_total{cluster=~"$cluster",'
                            'job=~"$job",instance=~"$instance"}[$__range]))'}],
                  "percentunit"),
            panel(5, "timeseries", "Error ratio", 9, 12,
                  [{"refId": "A", "legendFormat": "{{job}}",
                    "expr": 'job:http_requests_errors:ratio_rate5m{cluster=~"$cluster",job=~"$job"}'}],
                  "percentunit"),
        ],
    }


RECORD_LABELS = {
    "instance:redis_keyspace_hits:ratio_rate5m": frozenset({"job", "instance", "target"}),
    "job:http_requests_errors:ratio_rate5m": frozenset({"job"}),
}

Mutation = Callable[[Board], None]


def _var(board: Board, name: str) -> dict[str, Any]:
    return next(v for v in board["templating"]["list"] if v["name"] == name)


def _panel(board: Board, pid: int) -> dict[str, Any]:
    return next(p for p in board["panels"] if p["id"] == pid)


def _expr(pid: int, expr: str) -> Mutation:
    def mutate(board: Board) -> None:
        _panel(board, pid)["targets"][0]["expr"] = expr

    return mutate


def _set(getter: Callable[[Board], dict[str, Any]], key: str, value: Any) -> Mutation:
    def mutate(board: Board) -> None:
        getter(board)[key] = value

    return mutate


def _drop_var(name: str) -> Mutation:
    def mutate(board: Board) -> None:
        board["templating"]["list"] = [v for v in board["templating"]["list"] if v["name"] != name]

    return mutate


def _both(*mutations: Mutation) -> Mutation:
    def mutate(board: Board) -> None:
        for m in mutations:
            m(board)

    return mutate


def _row_description(board: Board) -> None:
    board["panels"][0]["description"] = "rows have no description in Grafana's schema"


SEL = 'cluster=~"$cluster",job=~"$job",instance=~"$instance"'
# rule -> ways to break it; each must be flagged by that rule (and the good board is not).
BREAKERS: dict[str, list[Mutation]] = {
    "template-datasource-rule": [
        _drop_var("datasource"),
        _set(lambda b: _var(b, "datasource"), "query", "loki"),
        _set(lambda b: _var(b, "datasource"), "label", "DS"),
        lambda b: b["templating"]["list"].reverse(),
    ],
    "template-cluster-rule": [
        _drop_var("cluster"),
        _set(lambda b: _var(b, "cluster"), "multi", True),
        _set(lambda b: _var(b, "cluster"), "allValue", ".+"),
        _set(lambda b: _var(b, "cluster"), "query", "label_values(redis_up, region)"),
        _set(lambda b: _var(b, "job"), "query", "label_values(redis_up, job)"),
        lambda b: b["templating"]["list"].insert(3, b["templating"]["list"].pop(1)),
    ],
    "template-job-rule": [
        _drop_var("job"),
        _set(lambda b: _var(b, "job"), "multi", False),
        _set(lambda b: _var(b, "job"), "allValue", ".*"),
        _set(lambda b: _var(b, "job"), "query", "label_values(redis_up, instance)"),
        _set(lambda b: _var(b, "job"), "datasource", {"type": "prometheus", "uid": "prom1"}),
    ],
    "template-instance-rule": [
        _set(lambda b: _var(b, "instance"), "query", "label_values(redis_up, instance)"),
        _set(lambda b: _var(b, "instance"), "includeAll", False),
    ],
    "template-label-promql-rule": [
        _set(lambda b: _var(b, "job"), "query", "up{job=~'x'}"),
        _set(lambda b: _var(b, "instance"), "query", 'label_values(redis_up{job=~"$job", instance)'),
    ],
    "template-on-time-change-reload-rule": [_set(lambda b: _var(b, "job"), "refresh", 1)],
    "panel-datasource-rule": [
        _set(lambda b: _panel(b, 2), "datasource", {"type": "prometheus", "uid": "abc123"}),
        _set(lambda b: _panel(b, 3), "datasource", "Prometheus"),
        lambda b: _panel(b, 2)["targets"][0].update(datasource={"type": "loki", "uid": "${datasource}"}),
    ],
    "panel-title-description-rule": [
        _set(lambda b: _panel(b, 3), "description", ""),
        _set(lambda b: _panel(b, 1), "title", ""),
    ],
    "panel-units-rule": [
        lambda b: _panel(b, 2)["fieldConfig"]["defaults"].pop("unit"),
        lambda b: _panel(b, 3)["fieldConfig"]["defaults"].update(unit="requests per second"),
    ],
    "panel-no-targets-rule": [_set(lambda b: _panel(b, 3), "targets", [])],
    "target-promql-rule": [
        _expr(3, f"sum by (job) (rate(redis_evicted_keys_total{{{SEL}}}[$__rate_interval])"),
        _expr(2, f"redis_memory_used_ratio{{{SEL}}} >> 1"),
    ],
    "target-rate-interval-rule": [
        _expr(3, f"sum by (job) (rate(redis_evicted_keys_total{{{SEL}}}[5m]))"),
        _expr(3, f"sum by (job) (increase(redis_evicted_keys_total{{{SEL}}}[1h]))"),
    ],
    "target-job-rule": [
        _expr(2, 'redis_memory_used_ratio{instance=~"$instance"}'),
        _expr(2, f'redis_memory_used_ratio{{{SEL}}} / redis_maxmemory_bytes{{instance=~"$instance"}}'),
        _expr(2, 'redis_memory_used_ratio{job="saasmon-redis",instance=~"$instance"}'),
    ],
    "target-cluster-rule": [
        _expr(2, 'redis_memory_used_ratio{job=~"$job",instance=~"$instance"}'),
        _expr(2, f'redis_memory_used_ratio{{{SEL}}}'
                 ' / redis_maxmemory_bytes{job=~"$job",instance=~"$instance"}'),
        _expr(5, 'job:http_requests_errors:ratio_rate5m{cluster="eu-1",job=~"$job"}'),
    ],
    "target-instance-rule": [
        _expr(2, 'redis_memory_used_ratio{cluster=~"$cluster",job=~"$job"}'),
        _expr(5, 'job:http_requests_errors:ratio_rate5m{cluster=~"$cluster",job=~"$job",'
                 'instance=~"$instance"}'),
    ],
    "target-counter-agg-rule": [
        _expr(3, f"redis_evicted_keys_total{{{SEL}}}"),
        _expr(3, f"delta(redis_evicted_keys_total{{{SEL}}}[$__rate_interval])"),
    ],
    "uneditable-dashboard": [_set(lambda b: b, "editable", True)],
    "dashboard-uid-rule": [_set(lambda b: b, "uid", "redis"), _set(lambda b: b, "title", "Redis")],
    "dashboard-tags-rule": [_set(lambda b: b, "tags", ["saasmon"])],
    "dashboard-settings-rule": [
        _set(lambda b: b, "schemaVersion", 27), _set(lambda b: b, "refresh", "5s"),
        _set(lambda b: b, "time", {"from": "now-1h", "to": "now"}), _set(lambda b: b, "graphTooltip", 0),
    ],
    "dashboard-links-rule": [_set(lambda b: b, "links", [])],
    "panel-gridpos-rule": [
        _set(lambda b: _panel(b, 3), "gridPos", {"x": 14, "y": 1, "w": 12, "h": 8}),
        _set(lambda b: _panel(b, 3), "gridPos", {"x": 6, "y": 4, "w": 12, "h": 8}),
        lambda b: _panel(b, 3).pop("gridPos"),
    ],
    "panel-id-rule": [_set(lambda b: _panel(b, 3), "id", 2), lambda b: _panel(b, 4).pop("id")],
    "panel-type-rule": [_set(lambda b: _panel(b, 2), "type", "graph"),
                        _set(lambda b: _panel(b, 3), "type", "singlestat")],
    "panel-threshold-source-rule": [_set(lambda b: _panel(b, 2), "description", "Memory, no source.")],
    "panel-threshold-style-rule": [
        lambda b: _panel(b, 2)["fieldConfig"]["defaults"]["custom"].update(thresholdsStyle={"mode": "off"})],
    "target-refid-rule": [lambda b: _panel(b, 4)["targets"][1].update(refId="A"),
                          lambda b: _panel(b, 4)["targets"][1].pop("refId")],
    "target-legend-rule": [lambda b: _panel(b, 4)["targets"][1].pop("legendFormat")],
    "target-variable-rule": [
        _expr(2, 'redis_memory_used_ratio{cluster=~"$cluster",job=~"$job",instance=~"$instance",db=~"$db"}'),
        _both(_drop_var("instance"), _expr(2, f"redis_memory_used_ratio{{{SEL}}}")),
    ],
    "dashboard-schema-rule": [
        _set(lambda b: b, "style", "dark"),
        _row_description,
        _set(lambda b: _panel(b, 2), "gridPos", {"x": 0, "y": 1, "w": 12.5, "h": 8}),
        lambda b: _panel(b, 2)["fieldConfig"]["defaults"]["custom"].update(lineWidht=2),
        lambda b: _panel(b, 2)["options"]["legend"].update(displayMode="sidebar"),
        lambda b: _panel(b, 2)["targets"][0].update(legend="{{instance}}"),
        _set(lambda b: _var(b, "job"), "refresh", "on load"),
    ],
}


@functools.cache
def promtool_findings(items: tuple[lint.Query, ...]) -> tuple[Finding, ...]:
    # Most breakers leave every query as the good board has it: promtool runs once per
    # distinct set of queries (its verdict depends on nothing else), not once per breaker.
    return tuple(lint.promtool_findings(items))


def all_findings(board: Board) -> list[Finding]:
    found = lint.lint_board(board, "saasmon-redis.json", record_labels=RECORD_LABELS)
    found += lint.schema_findings(board, "saasmon-redis.json")
    return found + list(promtool_findings(tuple(lint.queries(board, "saasmon-redis.json"))))


def test_the_good_board_passes_every_rule() -> None:
    assert [str(f) for f in all_findings(good_board())] == []


def test_every_rule_has_breaking_examples() -> None:
    assert set(BREAKERS) == set(lint.RULES)


@pytest.mark.parametrize(("rule", "index"), [(r, i) for r, ms in BREAKERS.items() for i in range(len(ms))])
def test_rule_flags_its_bad_board(rule: str, index: int) -> None:
    board = copy.deepcopy(good_board())
    BREAKERS[rule][index](board)
    found = all_findings(board)
    assert rule in {f.rule for f in found}, [str(f) for f in found]


def test_promtool_errors_map_back_to_board_and_panel() -> None:
    first, second = good_board(), good_board()
    second["uid"] = "saasmon-ai"
    _expr(4, "sum(rate(x_total[$__rate_interval])")(second)
    items = lint.queries(first, "a.json") + lint.queries(second, "b.json")
    found = lint.promtool_findings(items)
    assert [(f.file, f.where, f.rule) for f in found] == [
        ("b.json", 'panel "Hit ratio"', "target-promql-rule")]
    assert found[0].problem.startswith("A: ") and "parse error" in found[0].problem


def test_queries_substitute_variables_for_promtool() -> None:
    exprs = [q.expr for q in lint.queries(good_board(), "x.json")]
    assert 'redis_evicted_keys_total{cluster=~".*",job=~".+",instance=~".+"}[1m]' in exprs[1]
    assert "[1h]" in exprs[3]
    assert 'redis_up{cluster=~".*",job=~".+"}' in exprs[-1]


def test_selectors_know_matchers_ranges_and_enclosing_calls() -> None:
    found = lint.selectors(
        'histogram_quantile(0.95, sum by (le) (rate(a_bucket{job=~"$job"}[$__rate_interval] offset 1w)))'
        ' / on (job) group_left (x) sum without (le) (b{__name__!="", c="d"}) > bool 1')
    assert [(s.name, s.range, s.function) for s in found] == [
        ("a_bucket", "$__rate_interval", "rate"), ("b", None, "sum")]
    assert found[1].matchers == (lint.Matcher("__name__", "!=", ""), lint.Matcher("c", "=", "d"))
    assert lint.selectors('{__name__="up", job="x"}')[0].name == "up"


def test_cli_prints_one_line_per_problem(tmp_path: Path) -> None:
    board = good_board()
    _panel(board, 3)["description"] = ""
    path = tmp_path / "saasmon-redis.json"
    path.write_text(json.dumps(board))
    out = subprocess.run([sys.executable, "-m", "dashboards.lint", str(path)],
                         cwd=REPO, capture_output=True, text=True, check=False)
    assert out.returncode == 1, out.stderr
    assert out.stdout.splitlines() == [
        f'{path}: panel "Evictions": panel-title-description-rule: no description']
    path.write_text(json.dumps(good_board()))
    out = subprocess.run([sys.executable, "-m", "dashboards.lint", str(path)],
                         cwd=REPO, capture_output=True, text=True, check=False)
    assert (out.returncode, out.stdout) == (0, ""), out.stdout + out.stderr


def test_threshold_flow_finds_the_panels_that_show_a_signal() -> None:
    board = good_board()
    memory = {"expr": "redis_memory_used_ratio{%(redisSelector)s}", "record": None}
    assert [p["id"] for p in panels_showing(board, memory)] == [2]
    assert lint.thresholds_of(_panel(board, 2)) == [0.9]
    errors = {"expr": 'sum by (job) (rate(http_requests_total{%(appSelector)s,status=~"5.."}[5m]))\n/\n'
                      "sum by (job) (rate(http_requests_total{%(appSelector)s}[5m]))"}
    assert [p["id"] for p in panels_showing(board, errors)] == [5]  # read through its recording rule
    assert panels_showing(board, {"expr": "redis_up{%(redisSelector)s}"}) == []
    line = {"targets": [{"expr": "0.5 + 0 * max(x{a='b'})"}, {"expr": "vector(2)"}, {"expr": "x > 1"}]}
    assert constants(line) == [0.5, 2.0]


# -- the generated boards -------------------------------------------------------------------
def load_board(path: Path) -> Board:
    board = json.loads(path.read_text())
    assert isinstance(board, dict)
    return board


def catalog() -> dict[str, Any]:
    data = json.loads(CATALOG.read_text())
    assert isinstance(data, dict)
    return data


def boards() -> dict[str, Board]:
    return {path.stem: load_board(path) for path in BOARD_FILES}


@pytest.fixture(scope="module")
def promtool_results() -> list[Finding]:
    """One promtool run over every query of every generated board."""
    items = [q for path in BOARD_FILES for q in lint.queries(load_board(path), path.name)]
    return lint.promtool_findings(items)


def test_every_board_of_the_contract_is_generated() -> None:
    assert {p.stem for p in BOARD_FILES} == BOARDS


def test_every_catalog_area_has_a_board() -> None:
    areas = {s["area"] for s in catalog()["signals"].values()}
    assert areas <= set(lint.AREA_BOARD)
    assert set(lint.AREA_BOARD.values()) <= BOARDS


@pytest.mark.parametrize("path", BOARD_FILES, ids=lambda p: p.stem)
def test_board_is_lint_clean(path: Path) -> None:
    found = lint.lint_board(load_board(path), path.name, record_labels=lint.load_record_labels(CATALOG))
    assert [str(f) for f in found] == []


@pytest.mark.parametrize("path", BOARD_FILES, ids=lambda p: p.stem)
def test_board_fits_grafana_schema(path: Path) -> None:
    assert [str(f) for f in lint.schema_findings(load_board(path), path.name)] == []


@pytest.mark.parametrize("path", BOARD_FILES, ids=lambda p: p.stem)
def test_board_queries_parse_with_promtool(path: Path, promtool_results: list[Finding]) -> None:
    assert [str(f) for f in promtool_results if f.file in (path.name, "promtool")] == []


# -- thresholds flow from the catalog ----------------------------------------------------------
def series(expr: str) -> set[str]:
    """Names of the series an expression reads (`~regex` for a `__name__=~` selector)."""
    found: set[str] = set()
    for sel in lint.selectors(expr):
        if sel.name:
            found.add(sel.name)
        else:
            found |= {f"~{m.value}" for m in sel.matchers if m.label == "__name__"}
    return found


@functools.cache
def recording_rules(path: Path) -> dict[str, str]:
    data = yaml.safe_load(path.read_text())
    return {r["record"]: r["expr"] for g in data["groups"] for r in g["rules"]}


def raw_series(names: set[str]) -> set[str]:
    """Recording rules replaced by the series they are computed from, recursively."""
    records = recording_rules(RECORDING)
    out: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in records:
            todo += [n for n in series(records[name]) if n not in out]
        else:
            out.add(name)
    return out


def signal_series(signal: dict[str, Any]) -> set[str]:
    """Raw series of the signal's expression (its selectors substituted by a stand-in)."""
    expr = re.sub(r"%\((?:range|duration):(\w+)\)s", r"\1", signal["expr"])  # durations.py
    expr = re.sub(r"%\(\w+Selector\)s", 'job="x"', expr)
    expr = re.sub(r"%\(\w+Label\)s", "severity", expr)  # a label name (guideSeverityLabel)
    expr = re.sub(r"%\(\w+\)s", "1", expr)  # other settings: a size, a key pattern in a string
    return raw_series(series(expr))


def panel_series(panel: dict[str, Any]) -> set[str]:
    return raw_series({n for t in panel.get("targets") or [] for n in series(str(t.get("expr", "")))})


def panels_showing(board: Board, signal: dict[str, Any]) -> list[dict[str, Any]]:
    """Panels that read every raw series the signal is computed from (directly or by a rule)."""
    wanted = signal_series(signal)
    return [p for p in lint.iter_panels(board) if wanted and wanted <= panel_series(p)]


CONSTANT = re.compile(r"\s*(?:vector\(\s*)?([0-9.eE+-]+)\s*(?:\)|\+\s*0\s*\*.*)?\s*", re.DOTALL)


def constants(panel: dict[str, Any]) -> list[float]:
    """Values of constant target lines: `0.6`, `vector(0.6)` or `0.6 + 0 * max(<query>)`."""
    found = []
    for target in panel.get("targets") or []:
        match = CONSTANT.fullmatch(str(target.get("expr", "")))
        if match:
            found.append(float(match.group(1)))
    return found


def has_value(values: list[float], value: float) -> bool:
    # Tolerant enough for a step nudged just past a strict level (`> 0` drawn at 1e-9).
    return any(math.isclose(v, value, rel_tol=1e-6, abs_tol=1e-6) for v in values)


def board_of(area: str) -> Board:
    path = GENERATED / f"{lint.AREA_BOARD[area]}.json"
    assert path.is_file(), f"no board {path.name} for area {area}"
    return load_board(path)


CATALOG_DATA = catalog() if CATALOG.is_file() else {"rules": [], "signals": {}, "slos": {}}


@pytest.mark.parametrize("rule", CATALOG_DATA["rules"], ids=lambda r: r["id"])
def test_catalog_rule_is_a_threshold_on_its_area_board(rule: dict[str, Any]) -> None:
    signal = CATALOG_DATA["signals"][rule["signal"]]
    showing = panels_showing(board_of(signal["area"]), signal)
    assert showing, f"no panel on {lint.AREA_BOARD[signal['area']]} shows {rule['signal']}"
    assert any(has_value(lint.thresholds_of(p), float(rule["value"])) for p in showing), (
        f"{rule['id']}: {rule['value']} is not a threshold step of {[p['title'] for p in showing]}")


@pytest.mark.parametrize("name", sorted(CATALOG_DATA["signals"]))
def test_signal_panel_links_its_runbook(name: str) -> None:
    signal = CATALOG_DATA["signals"][name]
    showing = panels_showing(board_of(signal["area"]), signal)
    assert showing, f"no panel on {lint.AREA_BOARD[signal['area']]} shows {name}"
    urls = [str(link.get("url", "")) for p in showing
            for link in [*(p.get("links") or []), *((p.get("fieldConfig") or {}).get("defaults") or {})
                         .get("links", [])]]
    assert any(u.endswith(f"runbooks/{signal['alert']}.md") for u in urls), urls


def test_catalog_lists_the_dashboard_targets() -> None:
    assert CATALOG_DATA.get("targets"), "catalog.json has no `targets` (entries encoded by dashboard)"


@pytest.mark.parametrize("target", CATALOG_DATA.get("targets", []),
                         ids=lambda t: f"{t['signal']}={t['value']}")
def test_catalog_target_is_drawn_with_its_source(target: dict[str, Any]) -> None:
    signal = CATALOG_DATA["signals"][target["signal"]]
    showing = [p for b in boards().values() for p in panels_showing(b, signal)]
    drawn = [p for p in showing if has_value(lint.thresholds_of(p) + constants(p), float(target["value"]))]
    assert drawn, f"{target['value']} ({target['source']}) is drawn on no panel showing {target['signal']}"
    labelled = [p for p in drawn if target["source"] in p.get("description", "") + " ".join(
        str(t.get("legendFormat", "")) for t in p.get("targets") or [])]
    assert labelled, f"panels {[p['title'] for p in drawn]} do not name {target['source']!r}"


@pytest.mark.parametrize("name", sorted(CATALOG_DATA["slos"]))
def test_slo_objective_is_drawn_on_the_slo_board(name: str) -> None:
    slo = CATALOG_DATA["slos"][name]
    board = load_board(GENERATED / "saasmon-slo.json")
    values = [v for p in lint.iter_panels(board) for v in lint.thresholds_of(p) + constants(p)]
    assert has_value(values, float(slo["objective"])), f"objective {slo['objective']} of {name} not drawn"
