"""Lint for the generated Grafana dashboards.

The rules of Grafana's dashboard-linter (same rule ids, re-implemented here) plus the board
conventions of dashboards/README.md. PromQL validity is left to the real `promtool check rules`,
run once over every query of every board; a small tokenizer answers the remaining questions
(which selectors, which matchers, which range, inside which function).

    python -m dashboards.lint dashboards/generated/*.json

prints one line per problem, `file: panel "title": rule: problem`, and exits 1 if there is any.
"""

from __future__ import annotations

import enum
import functools
import json
import re
import subprocess
import sys
import tempfile
import types
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
CATALOG = REPO / "alert_rules" / "generated" / "catalog.json"

Board = dict[str, Any]
Panel = dict[str, Any]

RULES: dict[str, str] = {
    # dashboard-linter's rules
    "template-datasource-rule": "one datasource variable `datasource` (Prometheus), listed first",
    "template-cluster-rule": ("a `cluster` variable right after the datasource: label_values(..., "
                              "cluster), one value or All (.*, which also matches no label); the "
                              "job and instance variables filter by it"),
    "template-job-rule": "a `job` variable: label_values(..., job), multi, include All (.+)",
    "template-instance-rule": "an `instance` variable, if any, depends on $job, multi, All (.+)",
    "template-label-promql-rule": "variable queries are valid Grafana Prometheus queries",
    "template-on-time-change-reload-rule": "query variables refresh on time range change",
    "panel-datasource-rule": "panels and targets use the ${datasource} variable by object ref",
    "panel-title-description-rule": "every panel has a title and a description",
    "panel-units-rule": "every value panel sets a valid Grafana unit",
    "panel-no-targets-rule": "every data panel has at least one query",
    "target-promql-rule": "every query is valid PromQL (promtool)",
    "target-rate-interval-rule": "rate/irate use [$__rate_interval]; increase that or $__range",
    "target-job-rule": 'every selector carries job=~"$job"',
    "target-cluster-rule": 'every selector carries cluster=~"$cluster" (the mixin\'s clusterLabel)',
    "target-instance-rule": 'selectors of series with instances carry instance=~"$instance"',
    "target-counter-agg-rule": "counters (_total, _bucket) only inside rate/irate/increase",
    "uneditable-dashboard": "the dashboard is not editable in the UI",
    # board conventions
    "dashboard-uid-rule": "uid is the file name, title starts with 'SaaSmon / '",
    "dashboard-tags-rule": "tags include saasmon and the board's catalog areas",
    "dashboard-settings-rule": "schemaVersion 39, now-6h, refresh 1m, browser time, shared crosshair",
    "dashboard-links-rule": "a dashboards-by-tag link to every saasmon board",
    "panel-gridpos-rule": "gridPos inside 24 columns, no overlapping panels",
    "panel-id-rule": "every panel has a unique integer id",
    "panel-type-rule": "no deprecated or unknown panel types",
    "panel-threshold-source-rule": "panels with thresholds cite their guide (`guide § section`)",
    "panel-threshold-style-rule": "time series with thresholds draw them (line or dashed)",
    "target-refid-rule": "refIds are set and unique per panel",
    "target-legend-rule": "every query sets legendFormat",
    "target-variable-rule": "queries use only defined variables",
    "dashboard-schema-rule": "keys and value types fit Grafana's published schema (foundation SDK)",
}

# Area -> board uid (dashboards/README.md); a board's tags name every area it shows.
AREA_BOARD: dict[str, str] = {
    "api": "saasmon-api", "health": "saasmon-api", "frontend": "saasmon-frontend",
    "realtime": "saasmon-realtime", "database": "saasmon-database", "host": "saasmon-database",
    "redis": "saasmon-redis", "cron": "saasmon-cron", "integrations": "saasmon-integrations",
    "business": "saasmon-business", "ai": "saasmon-ai", "support": "saasmon-ux-support",
    "storage": "saasmon-slo", "exporter": "saasmon-exporters", "incident": "saasmon-integrations",
}

SCHEMA_VERSION = 39
DEPRECATED_PANELS = frozenset({
    "graph", "singlestat", "table-old", "grafana-singlestat-panel", "grafana-piechart-panel",
    "grafana-worldmap-panel", "heatmap-old",
})
DATA_PANELS = frozenset({
    "timeseries", "stat", "table", "gauge", "bargauge", "state-timeline", "status-history",
    "barchart", "piechart", "histogram", "heatmap", "trend", "xychart",
})
KNOWN_PANELS = DATA_PANELS | {"row", "text", "dashlist", "news"}
# Units may also be Grafana's custom forms, e.g. `suffix: SAR` or `currency:SAR`.
CUSTOM_UNIT = re.compile(r"^(suffix|prefix|time|si|count|currency):.+")
DATASOURCE_UIDS = frozenset({"${datasource}", "$datasource"})
# Values of Grafana's built-in variables for `promtool` (the panel data check uses the same).
BUILTINS: dict[str, str] = {
    "__rate_interval": "1m", "__interval": "15s", "__range": "1h", "__range_s": "3600",
    "__range_ms": "3600000", "__interval_ms": "15000", "__rate_interval_ms": "60000",
    "__auto": "15s",
}
COUNTER_SUFFIXES = ("_total", "_bucket")
RATE_FUNCTIONS = frozenset({"rate", "irate"})
INCREASE_WINDOWS = frozenset({"$__rate_interval", "${__rate_interval}", "$__range", "${__range}"})
RATE_WINDOWS = frozenset({"$__rate_interval", "${__rate_interval}"})
# The label that tells clusters apart (the mixin's clusterLabel, config.libsonnet).
CLUSTER_LABEL = "cluster"
CLUSTERS = frozenset({"$cluster", "${cluster}"})


@dataclass(frozen=True, order=True)
class Finding:
    file: str
    where: str  # 'dashboard', 'panel "Title"' or 'variable "name"'
    rule: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: {self.where}: {self.rule}: {self.problem}"


# -- PromQL tokens ----------------------------------------------------------------------------
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<str>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<var>\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\[\[[^\]]*\]\])
  | (?P<range>\[[^\]]*\])
  | (?P<dur>\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*(?![A-Za-z0-9_:]))
  | (?P<num>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>==|!=|=~|!~|>=|<=|[-+*/%^<>=(){},@])
""", re.VERBOSE)

AGGREGATIONS = frozenset({
    "sum", "avg", "min", "max", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "limitk", "limit_ratio",
})
# Keywords followed by a parenthesised list of label names rather than expressions.
LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
KEYWORDS = LABEL_LIST_KEYWORDS | frozenset({"and", "or", "unless", "bool", "offset", "inf", "nan"})


class TokenizeError(ValueError):
    """Text no PromQL tokenizer accepts (promtool will say more)."""


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    pos: int


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str
    value: str


@dataclass(frozen=True)
class Selector:
    """One vector selector `name{matchers}[range]` and the call it is an argument of."""

    name: str | None
    matchers: tuple[Matcher, ...]
    range: str | None  # text between [ and ] when a range follows the selector
    function: str | None  # innermost enclosing function or aggregation

    def has(self, label: str, op: str, values: frozenset[str]) -> bool:
        return any(m.label == label and m.op == op and m.value in values for m in self.matchers)


def tokenize(expr: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise TokenizeError(f"unexpected character {expr[pos]!r} at offset {pos}")
        if match.lastgroup not in ("ws", "comment"):
            tokens.append(Token(match.lastgroup or "", match.group(), pos))
        pos = match.end()
    return tokens


def _unquote(text: str) -> str:
    if text.startswith("`"):
        return text[1:-1]
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def _matchers(tokens: list[Token], start: int) -> tuple[tuple[Matcher, ...], int]:
    """`{a="b", c=~"d"}` from the `{` at `start`; returns the matchers and the index after `}`."""
    found: list[Matcher] = []
    i = start + 1
    while i < len(tokens) and tokens[i].text != "}":
        tok = tokens[i]
        if tok.text == ",":
            i += 1
        elif (tok.kind in ("ident", "str") and i + 2 < len(tokens)
              and tokens[i + 1].text in ("=", "!=", "=~", "!~") and tokens[i + 2].kind == "str"):
            label = _unquote(tok.text) if tok.kind == "str" else tok.text
            found.append(Matcher(label, tokens[i + 1].text, _unquote(tokens[i + 2].text)))
            i += 3
        else:
            raise TokenizeError(f"unexpected {tok.text!r} in label matchers at offset {tok.pos}")
    return tuple(found), i + 1


def selectors(expr: str) -> list[Selector]:
    """Every vector selector of `expr`, in order of appearance."""
    tokens = tokenize(expr)
    found: list[Selector] = []
    stack: list[str] = []  # per open paren: call name, "" for grouping, "(labels)" for by (...)
    pending: str | None = None  # the call or aggregation whose `(` comes next
    label_list_next = False
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        nxt = tokens[i + 1].text if i + 1 < len(tokens) else ""
        if tok.text == "(":
            if label_list_next:  # `sum by (a) (x)`: the aggregation's own `(` is still to come
                stack.append("(labels)")
                label_list_next = False
            else:
                stack.append(pending or "")
                pending = None
            i += 1
            continue
        if tok.text == ")":
            if stack:
                stack.pop()
            i += 1
            continue
        in_labels = bool(stack) and stack[-1] == "(labels)"
        if tok.kind == "ident" and not in_labels:
            word = tok.text.lower()
            if word in LABEL_LIST_KEYWORDS:
                label_list_next = nxt == "("
                i += 1
                continue
            if nxt == "(" or (tok.text in AGGREGATIONS and nxt in ("by", "without")):
                pending = tok.text
                i += 1
                continue
            if word in KEYWORDS:
                i += 1
                continue
        if (tok.kind == "ident" and not in_labels) or tok.text == "{":
            name = tok.text if tok.kind == "ident" else None
            j = i + 1 if name else i
            matchers: tuple[Matcher, ...] = ()
            if j < len(tokens) and tokens[j].text == "{":
                matchers, j = _matchers(tokens, j)
            if name is None:
                named = next((m for m in matchers if m.label == "__name__" and m.op == "="), None)
                name = named.value if named else None
            rng = tokens[j].text[1:-1] if j < len(tokens) and tokens[j].kind == "range" else None
            found.append(Selector(name, matchers, rng, next((s for s in reversed(stack) if s), None)))
            i = j
            continue
        i += 1
    return found


VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]")


def used_variables(text: str) -> set[str]:
    return {next(g for g in m.groups() if g) for m in VARIABLE.finditer(text)}


def substitute(text: str, values: Mapping[str, str]) -> str:
    """Grafana variables replaced by values; unknown ones stay as they are."""
    return VARIABLE.sub(lambda m: values.get(next(g for g in m.groups() if g), m.group()), text)


# -- board access ---------------------------------------------------------------------------
def iter_panels(board: Board) -> Iterator[Panel]:
    """Every panel, including those kept inside collapsed rows."""
    for panel in board.get("panels") or []:
        yield panel
        yield from panel.get("panels") or []


def template_vars(board: Board) -> list[dict[str, Any]]:
    return list((board.get("templating") or {}).get("list") or [])


def var_query(var: Mapping[str, Any]) -> str:
    """A variable's query text; Grafana stores it as a string or as {query: ...}."""
    query = var.get("query")
    if isinstance(query, dict):
        query = query.get("query")
    return query if isinstance(query, str) else ""


def panel_where(panel: Panel) -> str:
    return f'panel "{panel.get("title", "")}"'


def thresholds_of(panel: Panel) -> list[float]:
    """Threshold step values (the base step has none), including those set by overrides."""
    config = panel.get("fieldConfig") or {}
    configs = [(config.get("defaults") or {}).get("thresholds") or {}]
    for override in config.get("overrides") or []:
        for prop in override.get("properties") or []:
            if prop.get("id") == "thresholds" and isinstance(prop.get("value"), dict):
                configs.append(prop["value"])
    return [float(step["value"]) for cfg in configs for step in cfg.get("steps") or []
            if isinstance(step, dict) and isinstance(step.get("value"), int | float)]


def substitutions(board: Board) -> dict[str, str]:
    """Values that make a query runnable: All (allValue) for multi variables, else current."""
    values = dict(BUILTINS)
    for var in template_vars(board):
        name = var.get("name", "")
        if var.get("type") == "datasource":
            values[name] = "prometheus"
            continue
        current = (var.get("current") or {}).get("value")
        if isinstance(current, list):
            current = current[0] if current else None
        options = [o.get("value") for o in var.get("options") or [] if isinstance(o, dict)]
        if var.get("includeAll") and var.get("allValue"):
            values[name] = str(var["allValue"])
        elif isinstance(current, str) and current not in ("$__all", ""):
            values[name] = current
        elif options and isinstance(options[0], str):
            values[name] = options[0]
        else:
            values[name] = ".+"
    return values


def record_labels_from_catalog(catalog: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """Recording rule name -> the labels its series keep (from the catalog's signals)."""
    return {s["record"]: frozenset(s.get("labels") or ())
            for s in catalog.get("signals", {}).values() if s.get("record")}


# -- dashboard rules ------------------------------------------------------------------------
def _ds_ref_ok(ref: Any) -> bool:
    return isinstance(ref, dict) and ref.get("type") == "prometheus" and ref.get("uid") in DATASOURCE_UIDS


def _check_label_variable(var: Mapping[str, Any], label: str, rule: str,
                          needs_job: bool) -> Iterator[tuple[str, str]]:
    if var.get("type") != "query":
        yield rule, f"type is {var.get('type')!r}, not 'query'"
    if str(var.get("label", "")).lower() != label:
        yield rule, f"label is {var.get('label')!r}, not {label!r}"
    if not _ds_ref_ok(var.get("datasource")):
        yield rule, "datasource is not {type: prometheus, uid: ${datasource}}"
    match = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", var_query(var), re.DOTALL)
    if match is None or match.group(2) != label:
        yield rule, f"query {var_query(var)!r} is not label_values(<selector>, {label})"
    elif needs_job:
        try:
            sel = selectors(match.group(1))
        except TokenizeError:
            sel = []
        if not sel or not all(s.has("job", "=~", frozenset({"$job", "${job}"})) for s in sel):
            yield rule, 'query selector lacks job=~"$job" (instance must depend on job)'
    if var.get("multi") is not True:
        yield rule, "not multi-value"
    if var.get("includeAll") is not True:
        yield rule, "no All option"
    if var.get("allValue") != ".+":
        yield rule, f"allValue is {var.get('allValue')!r}, not '.+'"


def _cluster_variable_rules(tvars: list[dict[str, Any]]) -> Iterator[tuple[str, str, str]]:
    rule = "template-cluster-rule"
    names = [v.get("name") for v in tvars]
    if "cluster" not in names:
        yield "dashboard", rule, "no `cluster` variable"
        return
    var = tvars[names.index("cluster")]
    where = 'variable "cluster"'
    if names.index("cluster") != 1:
        yield where, rule, "not right after the datasource variable"
    if var.get("type") != "query" or not _ds_ref_ok(var.get("datasource")):
        yield where, rule, "not a query variable on ${datasource}"
    match = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", var_query(var), re.DOTALL)
    if match is None or match.group(2) != CLUSTER_LABEL:
        yield where, rule, f"query {var_query(var)!r} is not label_values(<selector>, {CLUSTER_LABEL})"
    # One cluster at a time (panels aggregate within it); All must match series without the
    # label, or a single-cluster setup would see empty boards.
    if var.get("multi") is not False:
        yield where, rule, "multi-value: pick one cluster (or All)"
    if var.get("includeAll") is not True or var.get("allValue") != ".*":
        yield where, rule, f"All is missing or its value {var.get('allValue')!r} is not '.*'"
    for other in tvars:
        if other.get("name") in ("job", "instance"):
            found = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", var_query(other), re.DOTALL)
            try:
                sel = selectors(found.group(1)) if found else []
            except TokenizeError:
                sel = []
            if not sel or not all(s.has(CLUSTER_LABEL, "=~", CLUSTERS) for s in sel):
                yield (f'variable "{other.get("name")}"', rule,
                       f'query selector lacks {CLUSTER_LABEL}=~"$cluster"')


def _variable_rules(board: Board) -> Iterator[tuple[str, str, str]]:
    tvars = template_vars(board)
    by_name = {v.get("name"): v for v in tvars}
    sources = [v for v in tvars if v.get("type") == "datasource"]
    if len(sources) != 1:
        yield "dashboard", "template-datasource-rule", f"{len(sources)} datasource variables, want 1"
    for var in sources:
        where = f'variable "{var.get("name")}"'
        if var.get("name") != "datasource":
            yield where, "template-datasource-rule", "the datasource variable is not named 'datasource'"
        if var.get("query") != "prometheus":
            yield where, "template-datasource-rule", f"query is {var.get('query')!r}, not 'prometheus'"
        if str(var.get("label", "")).lower() != "data source":
            yield where, "template-datasource-rule", f"label is {var.get('label')!r}, not 'Data source'"
        if tvars and tvars[0] is not var:
            yield where, "template-datasource-rule", "not the first variable"
    yield from _cluster_variable_rules(tvars)
    if "job" not in by_name:
        yield "dashboard", "template-job-rule", "no `job` variable"
    else:
        for rule, problem in _check_label_variable(by_name["job"], "job", "template-job-rule", False):
            yield 'variable "job"', rule, problem
    if "instance" in by_name:
        for rule, problem in _check_label_variable(by_name["instance"], "instance",
                                                   "template-instance-rule", True):
            yield 'variable "instance"', rule, problem
    for var in tvars:
        if var.get("type") != "query":
            continue
        where = f'variable "{var.get("name")}"'
        if var.get("refresh") != 2:
            yield where, "template-on-time-change-reload-rule", f"refresh is {var.get('refresh')!r}, not 2"
        if _variable_promql(var_query(var)) is None:
            yield (where, "template-label-promql-rule",
                   f"{var_query(var)!r} is not a Prometheus variable query")


def _variable_promql(query: str) -> list[str] | None:
    """The PromQL parts of a Grafana Prometheus variable query; None if it has no valid form."""
    match = re.fullmatch(r"\s*(label_values|label_names|metrics|query_result)\((.*)\)\s*", query, re.DOTALL)
    if match is None:
        return None
    func, args = match.groups()
    if func == "label_values":
        parts = args.rsplit(",", 1)
        if not re.fullmatch(r"\s*\w+\s*", parts[-1]):
            return None
        return [parts[0]] if len(parts) == 2 else []
    if func == "label_names":
        return [args] if args.strip() else []
    if func == "metrics":
        return [] if args.strip() else None
    return [args] if args.strip() else None


def _dashboard_rules(board: Board, uid: str) -> Iterator[tuple[str, str, str]]:
    where = "dashboard"
    if board.get("editable") is not False:
        yield where, "uneditable-dashboard", f"editable is {board.get('editable')!r}"
    if board.get("uid") != uid:
        yield where, "dashboard-uid-rule", f"uid {board.get('uid')!r} is not the file name {uid!r}"
    if not str(board.get("title", "")).startswith("SaaSmon / "):
        yield where, "dashboard-uid-rule", f"title {board.get('title')!r} lacks 'SaaSmon / '"
    tags = set(board.get("tags") or [])
    wanted = {"saasmon"} | {a for a, b in AREA_BOARD.items() if b == uid}
    if not wanted <= tags:
        yield where, "dashboard-tags-rule", f"tags lack {sorted(wanted - tags)}"
    expected = {"schemaVersion": SCHEMA_VERSION, "refresh": "1m", "timezone": "browser",
                "graphTooltip": 1, "time": {"from": "now-6h", "to": "now"}}
    for key, value in expected.items():
        if board.get(key) != value:
            yield where, "dashboard-settings-rule", f"{key} is {board.get(key)!r}, not {value!r}"
    if not any(link.get("type") == "dashboards" and "saasmon" in (link.get("tags") or [])
               for link in board.get("links") or []):
        yield where, "dashboard-links-rule", "no dashboards link by tag 'saasmon'"


# -- panel rules ----------------------------------------------------------------------------
@functools.cache
def grafana_units() -> frozenset[str]:
    """Unit ids Grafana knows, as published in its foundation SDK."""
    from grafana_foundation_sdk.models import units

    return frozenset(v for k, v in vars(units).items() if not k.startswith("_") and isinstance(v, str))


def _valid_unit(unit: Any) -> bool:
    return isinstance(unit, str) and (unit in grafana_units() or bool(CUSTOM_UNIT.match(unit)))


def _grid_rules(panels: Sequence[Panel]) -> Iterator[tuple[str, str, str]]:
    boxes: list[tuple[Panel, int, int, int, int]] = []
    for panel in panels:
        pos = panel.get("gridPos") or {}
        x, y, w, h = (pos.get(k) for k in ("x", "y", "w", "h"))
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (x, y, w, h)):
            yield panel_where(panel), "panel-gridpos-rule", f"gridPos {pos!r} lacks integer x, y, w, h"
            continue
        assert isinstance(x, int) and isinstance(y, int) and isinstance(w, int) and isinstance(h, int)
        if x < 0 or y < 0 or w < 1 or h < 1 or x + w > 24:
            yield panel_where(panel), "panel-gridpos-rule", f"gridPos {pos!r} is outside 24 columns"
        for other, ox, oy, ow, oh in boxes:
            if x < ox + ow and ox < x + w and y < oy + oh and oy < y + h:
                yield (panel_where(panel), "panel-gridpos-rule",
                       f"overlaps panel {other.get('title')!r} (id {other.get('id')})")
        boxes.append((panel, x, y, w, h))


def _panel_rules(panel: Panel) -> Iterator[tuple[str, str]]:
    kind = panel.get("type")
    if kind in DEPRECATED_PANELS:
        yield "panel-type-rule", f"panel type {kind!r} is deprecated"
    elif kind not in KNOWN_PANELS:
        yield "panel-type-rule", f"unknown panel type {kind!r}"
    if not panel.get("title"):
        yield "panel-title-description-rule", "no title"
    if kind == "row":
        return
    if not panel.get("description"):
        yield "panel-title-description-rule", "no description"
    if kind not in DATA_PANELS:
        return
    if not _ds_ref_ok(panel.get("datasource")):
        yield "panel-datasource-rule", f"datasource {panel.get('datasource')!r} is not ${{datasource}}"
    defaults = (panel.get("fieldConfig") or {}).get("defaults") or {}
    if not defaults.get("mappings") and not _valid_unit(defaults.get("unit")):
        yield "panel-units-rule", f"unit {defaults.get('unit')!r} is not a Grafana unit"
    steps = thresholds_of(panel)
    if steps and "§" not in str(panel.get("description", "")):
        yield "panel-threshold-source-rule", "has thresholds but the description cites no guide §"
    style = ((defaults.get("custom") or {}).get("thresholdsStyle") or {}).get("mode", "off")
    if kind == "timeseries" and steps and style == "off":
        yield "panel-threshold-style-rule", "thresholds are not drawn (thresholdsStyle off)"
    targets = panel.get("targets") or []
    if not any(t.get("expr") for t in targets):
        yield "panel-no-targets-rule", "no query"
    ref_ids = [t.get("refId") for t in targets]
    if not all(ref_ids) or len(set(ref_ids)) != len(ref_ids):
        yield "target-refid-rule", f"refIds {ref_ids!r} are not set and unique"
    for target in targets:
        if "datasource" in target and not _ds_ref_ok(target["datasource"]):
            yield "panel-datasource-rule", f"target {target.get('refId')} datasource is not ${{datasource}}"
        if not target.get("legendFormat"):
            yield "target-legend-rule", f"target {target.get('refId')} has no legendFormat"


def _target_rules(expr: str, has_instance_var: bool,
                  record_labels: Mapping[str, frozenset[str]]) -> Iterator[tuple[str, str]]:
    try:
        found = selectors(expr)
    except TokenizeError as err:
        yield "target-promql-rule", str(err)
        return
    jobs = frozenset({"$job", "${job}"})
    instances = frozenset({"$instance", "${instance}"})
    for sel in found:
        name = sel.name or "{...}"
        if not sel.has("job", "=~", jobs):
            yield "target-job-rule", f'{name} lacks job=~"$job"'
        if not sel.has(CLUSTER_LABEL, "=~", CLUSTERS):
            yield "target-cluster-rule", f'{name} lacks {CLUSTER_LABEL}=~"$cluster"'
        labels = record_labels.get(sel.name or "")
        # Scraped series always carry instance; recording rules only the labels they keep.
        carries_instance = (labels is None and ":" not in (sel.name or "")) or (
            labels is not None and "instance" in labels)
        has_instance = sel.has("instance", "=~", instances)
        if has_instance_var and carries_instance and not has_instance:
            yield "target-instance-rule", f'{name} lacks instance=~"$instance"'
        if has_instance and labels is not None and "instance" not in labels:
            yield "target-instance-rule", f"{name} has no instance label; the matcher selects nothing"
        if (sel.name or "").endswith(COUNTER_SUFFIXES) and (
                sel.range is None or sel.function not in RATE_FUNCTIONS | {"increase"}):
            yield "target-counter-agg-rule", f"counter {name} is used outside rate/irate/increase"
        if sel.range is not None and sel.function in RATE_FUNCTIONS and sel.range not in RATE_WINDOWS:
            yield ("target-rate-interval-rule",
                   f"{sel.function}({name}[{sel.range}]) is not [$__rate_interval]")
        if sel.range is not None and sel.function == "increase" and sel.range not in INCREASE_WINDOWS:
            yield ("target-rate-interval-rule",
                   f"increase({name}[{sel.range}]) is neither [$__rate_interval] nor [$__range]")


# -- Grafana's schema ------------------------------------------------------------------------
# The foundation SDK's models are generated from Grafana's schema. Their from_json is lenient
# (unknown keys vanish, values are stored unchecked), so a board fits the schema when every key
# survives a round trip and every stored value has the type the model declares.
@functools.cache
def _sdk_ready() -> bool:
    from grafana_foundation_sdk.cog.plugins import register_default_plugins

    register_default_plugins()
    return True


def _roundtrip(model: Any) -> Any:
    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    return json.loads(json.dumps(model, cls=JSONEncoder))


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    kinds: dict[type, str] = {str: "string", list: "array", dict: "object"}
    return kinds.get(type(value), type(value).__name__)


def _survives(ours: Any, back: Any, path: str) -> Iterator[str]:
    """Every key and value type of `ours` is still in `back` (extra defaults are fine)."""
    if _json_kind(ours) != _json_kind(back):
        yield f"{path}: {_json_kind(ours)} came back as {_json_kind(back)}"
    elif isinstance(ours, dict):
        for key, value in ours.items():
            if key not in back:
                yield f"{path}.{key}: not in the schema"
            else:
                yield from _survives(value, back[key], f"{path}.{key}")
    elif isinstance(ours, list):
        if len(ours) != len(back):
            yield f"{path}: {len(ours)} items came back as {len(back)}"
        for i, (mine, theirs) in enumerate(zip(ours, back, strict=False)):
            yield from _survives(mine, theirs, f"{path}[{i}]")
    elif ours != back:
        yield f"{path}: {ours!r} came back as {back!r}"


def _is_model(value: Any) -> bool:
    return callable(getattr(value, "to_json", None)) and hasattr(type(value), "from_json")


def _fits(value: Any, hint: Any, path: str) -> list[str]:
    """Problems of `value` (as the SDK stored it) against the type hint the SDK declares."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint in (Any, object) or hint is typing.Any:
        return _fits_model(value, path) if _is_model(value) else []
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return []
        tries = [_fits(value, arg, path) for arg in args if arg is not type(None)]
        return [] if any(not t for t in tries) else tries[0]
    if origin is typing.Literal:
        return [] if value in args else [f"{path}: {value!r} is not one of {list(args)}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: {_json_kind(value)} where the schema has an array"]
        return [p for i, item in enumerate(value) for p in _fits(item, args[0], f"{path}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: {_json_kind(value)} where the schema has an object"]
        return [p for k, item in value.items() for p in _fits(item, args[1], f"{path}.{k}")]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        allowed = [member.value for member in hint]
        raw = value.value if isinstance(value, enum.Enum) else value
        return [] if raw in allowed and _json_kind(raw) == _json_kind(allowed[0]) else [
            f"{path}: {raw!r} is not one of {allowed}"]
    if hint is bool:
        return [] if isinstance(value, bool) else [f"{path}: {value!r} is not a boolean"]
    if hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {value!r} is not an integer"]
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {value!r} is not a number"]
    if hint is str:
        return [] if isinstance(value, str) else [f"{path}: {value!r} is not a string"]
    if isinstance(hint, type) and hasattr(hint, "from_json"):
        if isinstance(value, hint):
            return _fits_model(value, path)
        if isinstance(value, dict) and not getattr(hint, "__abstractmethods__", None):
            # A pass-through field (e.g. panel links): hold it to the model it is declared as.
            return _model_problems(hint, value, path)
        return [f"{path}: {_json_kind(value)} is not a {hint.__name__}"]
    return []


def _fits_model(model: Any, path: str) -> list[str]:
    from grafana_foundation_sdk.cog.runtime import UnknownDataquery

    if isinstance(model, UnknownDataquery):
        return [f"{path}: query of an unknown datasource type (no schema to check)"]
    problems: list[str] = []
    for name, hint in typing.get_type_hints(type(model)).items():
        problems += _fits(getattr(model, name, None), hint, f"{path}.{name}")
    return problems


def schema_problems(board: Board) -> list[tuple[str, str]]:
    """(where, problem) for every way the board departs from Grafana's dashboard schema."""
    from grafana_foundation_sdk.models import dashboard

    _sdk_ready()
    found: list[tuple[str, str]] = []
    top = {k: v for k, v in board.items() if k != "panels"}
    found += [("dashboard", p) for p in _model_problems(dashboard.Dashboard, top, "dashboard")]
    for panel in iter_panels(board):
        kind = panel.get("type")
        if kind != "row" and kind not in _registered_panels():
            found.append((panel_where(panel), f"panel type {kind!r} has no schema"))
        cls = dashboard.RowPanel if kind == "row" else dashboard.Panel
        mine = {k: v for k, v in panel.items() if not (kind == "row" and k == "panels")}
        found += [(panel_where(panel), p) for p in _model_problems(cls, mine, "panel")]
    return found


def _model_problems(cls: Any, data: dict[str, Any], path: str) -> list[str]:
    try:
        model = cls.from_json(data)
        back = _roundtrip(model)
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        # The generated loaders index into what the schema says is an object.
        return [f"{path}: does not load as {cls.__name__}: {type(err).__name__}: {err}"]
    return list(_survives(data, back, path)) + _fits_model(model, path)


@functools.cache
def _registered_panels() -> frozenset[str]:
    from grafana_foundation_sdk.cog.runtime import Runtime

    _sdk_ready()
    return frozenset(Runtime().panelcfg_variants)


def schema_findings(board: Board, file: str) -> list[Finding]:
    return [Finding(file, where, "dashboard-schema-rule", p) for where, p in schema_problems(board)]


# -- putting it together ----------------------------------------------------------------------
@dataclass(frozen=True)
class Query:
    """A PromQL text of a board for promtool, and where it came from."""

    file: str
    where: str
    rule: str
    label: str  # prefixed to promtool's message, e.g. the refId
    expr: str


def queries(board: Board, file: str) -> list[Query]:
    """Every PromQL text of the board with variables substituted, ready for promtool."""
    values = substitutions(board)
    found: list[Query] = []
    for panel in iter_panels(board):
        for target in panel.get("targets") or []:
            if target.get("expr"):
                found.append(Query(file, panel_where(panel), "target-promql-rule",
                                   str(target.get("refId")), substitute(target["expr"], values)))
    for var in template_vars(board):
        if var.get("type") == "query":
            for part in _variable_promql(var_query(var)) or []:
                found.append(Query(file, f'variable "{var.get("name")}"', "template-label-promql-rule",
                                   "query", substitute(part, values)))
    return found


def lint_board(board: Board, file: str, uid: str | None = None,
               record_labels: Mapping[str, frozenset[str]] | None = None) -> list[Finding]:
    """All rules but the schema's and promtool's (`schema_findings`, `promtool_findings`).

    `uid` defaults to the file's stem; `record_labels` tells which labels recording rules keep.
    """
    uid = uid if uid is not None else Path(file).stem
    labels = record_labels if record_labels is not None else {}
    found = [Finding(file, w, r, p) for w, r, p in _dashboard_rules(board, uid)]
    found += [Finding(file, w, r, p) for w, r, p in _variable_rules(board)]
    found += [Finding(file, w, r, p) for w, r, p in _grid_rules(board.get("panels") or [])]
    for row in board.get("panels") or []:
        found += [Finding(file, w, r, p) for w, r, p in _grid_rules(row.get("panels") or [])]
    ids = [p.get("id") for p in iter_panels(board)]
    defined = {v.get("name") for v in template_vars(board)} | set(BUILTINS)
    has_instance_var = "instance" in defined
    for panel in iter_panels(board):
        where = panel_where(panel)
        pid = panel.get("id")
        if not isinstance(pid, int) or isinstance(pid, bool) or ids.count(pid) > 1:
            found.append(Finding(file, where, "panel-id-rule", f"id {pid!r} is not a unique integer"))
        found += [Finding(file, where, r, p) for r, p in _panel_rules(panel)]
        for target in panel.get("targets") or []:
            expr = str(target.get("expr") or "")
            for rule, problem in _target_rules(expr, has_instance_var, labels):
                found.append(Finding(file, where, rule, f"{target.get('refId')}: {problem}"))
            for name in sorted(used_variables(expr) - defined):
                found.append(Finding(file, where, "target-variable-rule",
                                     f"{target.get('refId')}: ${name} is not a variable of the board"))
    for var in template_vars(board):
        for name in sorted(used_variables(var_query(var)) - defined):
            found.append(Finding(file, f'variable "{var.get("name")}"', "target-variable-rule",
                                 f"${name} is not a variable of the board"))
    return sorted(set(found))


def promtool_findings(items: Sequence[Query]) -> list[Finding]:
    """Run `promtool check rules` once over all queries; its parse errors, mapped back."""
    if not items:
        return []
    rules = [{"record": f"lint:q{i}", "expr": q.expr} for i, q in enumerate(items)]
    with tempfile.TemporaryDirectory(prefix="dashboard-lint-") as tmp:
        path = Path(tmp) / "queries.yml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
        out = subprocess.run(["promtool", "check", "rules", str(path)],
                             capture_output=True, text=True, check=False)
    text = out.stdout + out.stderr
    found: list[Finding] = []
    for match in re.finditer(r'"lint:q(\d+)": (.*)', text):
        item = items[int(match.group(1))]
        found.append(Finding(item.file, item.where, item.rule, f"{item.label}: {match.group(2).strip()}"))
    if out.returncode != 0 and not found:
        found.append(Finding("promtool", "-", "target-promql-rule", text.strip()))
    return found


def load_record_labels(catalog_path: Path = CATALOG) -> dict[str, frozenset[str]]:
    if not catalog_path.is_file():
        return {}
    return record_labels_from_catalog(json.loads(catalog_path.read_text()))


def lint_boards(boards: Mapping[str, Board],
                record_labels: Mapping[str, frozenset[str]] | None = None) -> list[Finding]:
    """Every rule over {file: board}, with a single promtool run for all of them."""
    labels = record_labels if record_labels is not None else load_record_labels()
    found: list[Finding] = []
    items: list[Query] = []
    for file, board in boards.items():
        found += lint_board(board, file, record_labels=labels)
        found += schema_findings(board, file)
        items += queries(board, file)
    return sorted(set(found + promtool_findings(items)))


def main(argv: Sequence[str]) -> int:
    if not argv:
        print("usage: python -m dashboards.lint FILE...", file=sys.stderr)
        return 2
    boards = {path: json.loads(Path(path).read_text()) for path in argv}
    findings = lint_boards(boards)
    for finding in findings:
        print(finding)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
