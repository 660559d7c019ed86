"""Query packs: declarative SQL → metric definitions, strictly validated.

A pack is YAML: a list of queries, each with its own interval and timeout, each filling
one or more metrics from the columns it returns. Errors name the key path inside the
pack, with query and metric names instead of list indexes so they can be found.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from saasmon.runtime.config import ConfigError, read_yaml

DEFAULT_PACK = Path(__file__).with_name("default_pack.yaml")

METRIC_NAME = r"^[a-zA-Z_:][a-zA-Z0-9_:]*$"
LABEL_NAME = r"^[a-zA-Z_][a-zA-Z0-9_]*$"
QUERY_NAME = r"^[a-z][a-z0-9_]*$"


class PackModel(BaseModel):
    # Strict: a YAML `yes` is not a number and `60` is not a help text.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class PackMetric(PackModel):
    name: str = Field(pattern=METRIC_NAME, max_length=200)
    help: str = Field(min_length=1, max_length=1000)
    type: Literal["gauge", "counter"]
    column: str | None = Field(default=None, min_length=1)  # default: the metric's name
    labels: list[str] = Field(default_factory=list, max_length=10)

    @property
    def value_column(self) -> str:
        return self.column or self.name

    @property
    def family_name(self) -> str:
        # prometheus_client adds `_total` to counter samples itself.
        return self.name.removesuffix("_total") if self.type == "counter" else self.name


class PackQuery(PackModel):
    name: str = Field(pattern=QUERY_NAME, max_length=64)
    sql: str = Field(min_length=1)
    interval_seconds: float = Field(default=60.0, ge=1, le=86400)
    timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    # A synthetic probe: the statement is run for its execution time only (every query's
    # time is exported as <namespace>_query_duration_seconds); its rows are discarded.
    probe: bool = False
    metrics: list[PackMetric] = Field(default_factory=list)


class Pack(PackModel):
    queries: list[PackQuery] = Field(min_length=1)

    def metric_names(self) -> list[str]:
        return [m.name for q in self.queries for m in q.metrics]


def query_duration_metric(namespace: str) -> str:
    return f"{namespace}_query_duration_seconds"


# -- loading ------------------------------------------------------------------------

def load_pack(path: Path, namespace: str) -> Pack:
    """Read and validate a pack; every problem is one ConfigError line."""
    where = f"(pack {path})"
    try:
        raw = read_yaml(str(path), "pack_file")
    except ConfigError as exc:
        raise ConfigError(f"{exc} {where}" if "cannot read" not in str(exc) else str(exc)) \
            from None
    if not isinstance(raw, dict):
        raise ConfigError(f"pack: must be a mapping with a `queries` list {where}")
    try:
        pack = Pack.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors(include_input=False, include_url=False)[0]
        raise ConfigError(f"pack.{_path(err['loc'], raw)}: {err['msg']} {where}") from None
    problem = check_pack(pack, namespace)
    if problem is not None:
        raise ConfigError(f"pack.{problem} {where}")
    return pack


def _path(loc: tuple[int | str, ...], raw: Any) -> str:
    """`queries.2.metrics.0.lables` → `queries[sessions].metrics[business_x].lables`."""
    out = ""
    node = raw
    for part in loc:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and part < len(node) else None
            name = item.get("name") if isinstance(item, dict) else None
            out += f"[{name}]" if isinstance(name, str) and name else f"[{part}]"
            node = item
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "(top level)"


def check_pack(pack: Pack, namespace: str) -> str | None:
    """Rules across keys; returns `key.path: problem` or None."""
    reserved_prefix = f"{namespace}_exporter_"
    reserved = {f"{namespace}_up", query_duration_metric(namespace)}
    queries: set[str] = set()
    metrics: dict[str, str] = {}
    for query in pack.queries:
        at = f"queries[{query.name}]"
        if query.name in queries:
            return f"{at}.name: duplicate query name"
        queries.add(query.name)
        statement_problem = check_statement(query.sql)
        if statement_problem is not None:
            return f"{at}.sql: {statement_problem}"
        if query.probe and query.metrics:
            return f"{at}.metrics: a probe exports only its duration; list no metrics"
        if not query.probe and not query.metrics:
            return f"{at}.metrics: list at least one metric (or set probe: true)"
        returned = output_columns(query.sql)
        value_columns: set[str] = set()
        for metric in query.metrics:
            mat = f"{at}.metrics[{metric.name}]"
            if metric.name in metrics:
                return f"{mat}.name: duplicate metric name (also in queries[{metrics[metric.name]}])"
            metrics[metric.name] = query.name
            if metric.name in reserved or metric.name.startswith(reserved_prefix):
                return f"{mat}.name: reserved for the exporter's own metrics"
            if metric.type == "counter" and not metric.name.endswith("_total"):
                return f"{mat}.name: a counter's name must end in _total"
            if metric.type == "gauge" and metric.name.endswith("_total"):
                return f"{mat}.name: only counters end in _total"
            if len(set(metric.labels)) != len(metric.labels):
                return f"{mat}.labels: duplicate label"
            for label in metric.labels:
                if not re.match(LABEL_NAME, label) or label.startswith("__"):
                    return f"{mat}.labels: {label!r} is not a valid label name"
            if metric.value_column in metric.labels:
                return f"{mat}.labels: the value column {metric.value_column!r} cannot be a label"
            value_columns.add(metric.value_column)
            needed = [("column", metric.value_column)] + [("labels", x) for x in metric.labels]
            if returned is not None:
                known = [c for c in returned if c is not None]
                for key, column in needed:
                    # Only decidable when every output column has a known name.
                    if column not in known and len(known) == len(returned):
                        return (f"{mat}.{key}: column {column!r} is not returned by the query "
                                f"(it returns {', '.join(known)})")
        for metric in query.metrics:
            for label in metric.labels:
                if label in value_columns:
                    return (f"{at}.metrics[{metric.name}].labels: {label!r} is another "
                            "metric's value column")
    return None


# -- a little SQL reading, enough for static checks ----------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|/\*.*?\*/)
  | (?P<string>[eEbBxXuU]?'(?:[^']|'')*')
  | (?P<dollar>\$(?P<tag>[A-Za-z_]*)\$.*?\$(?P=tag)\$)
  | (?P<qident>"(?:[^"]|"")*")
  | (?P<param>\$\d+)
  | (?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<cast>::)
  | (?P<punct>[(),;.\[\]])
  | (?P<op>[-+*/<>=~!@#%^&|`?:]+)
    """,
    re.VERBOSE | re.DOTALL,
)

# Words that end a SELECT list at the top level.
_LIST_END = {"from", "where", "group", "having", "window", "order", "limit", "offset",
             "fetch", "for", "union", "intersect", "except", "into"}


class _Tok:
    __slots__ = ("depth", "kind", "text")

    def __init__(self, kind: str, text: str, depth: int) -> None:
        self.kind, self.text, self.depth = kind, text, depth

    def word(self) -> str | None:
        return self.text.lower() if self.kind == "ident" else None


def _tokens(sql: str) -> list[_Tok] | None:
    out: list[_Tok] = []
    depth = 0
    pos = 0
    while pos < len(sql):
        match = _TOKEN.match(sql, pos)
        if match is None:
            return None  # unterminated string or comment: leave it to the server
        pos = match.end()
        kind = match.lastgroup or ""
        if kind == "tag":
            kind = "dollar"
        if kind in ("ws", "comment"):
            continue
        text = match.group()
        if text == ")":
            depth -= 1
        out.append(_Tok(kind, text, depth))
        if text == "(":
            depth += 1
    return out


def check_statement(sql: str) -> str | None:
    """One read statement: SELECT, WITH, VALUES or TABLE, without a second statement."""
    tokens = _tokens(sql)
    if tokens is None:
        return "unterminated string, identifier or comment"
    while tokens and tokens[-1].text == ";":
        tokens.pop()
    if not tokens:
        return "empty statement"
    if tokens[0].word() not in ("select", "with", "values", "table") and tokens[0].text != "(":
        return "must be a SELECT (or WITH … SELECT) statement"
    if any(t.text == ";" for t in tokens):
        return "must be a single statement"
    return None


def output_columns(sql: str) -> list[str | None] | None:
    """Names of the outermost SELECT list's columns; None where a name is not evident.

    Returns None when the statement cannot be read this simply (then columns are only
    checked at run time, on the first result).
    """
    tokens = _tokens(sql)
    if tokens is None:
        return None
    start = next((i for i, t in enumerate(tokens) if t.depth == 0 and t.word() == "select"),
                 None)
    if start is None:
        return None
    i = start + 1
    if i < len(tokens) and tokens[i].word() == "all":
        i += 1
    elif i < len(tokens) and tokens[i].word() == "distinct":
        i += 1
        if i < len(tokens) and tokens[i].word() == "on":
            i += 1
            while i < len(tokens) and not (tokens[i].text == ")" and tokens[i].depth == 0):
                i += 1
            i += 1
    items: list[list[_Tok]] = [[]]
    previous: _Tok | None = None
    for tok in tokens[i:]:
        # `WITHIN GROUP (ORDER BY …)` belongs to an ordered-set aggregate, not the clause.
        within = tok.word() == "group" and previous is not None and previous.word() == "within"
        if tok.depth == 0 and (tok.word() in _LIST_END or tok.text == ";") and not within:
            break
        previous = tok
        if tok.depth == 0 and tok.text == ",":
            items.append([])
        else:
            items[-1].append(tok)
    return [_item_name(item) for item in items]


def _item_name(item: list[_Tok]) -> str | None:
    if len(item) >= 2 and item[-2].depth == 0 and item[-2].word() == "as":
        last = item[-1]
        if last.kind == "qident":
            return last.text[1:-1].replace('""', '"')
        return last.text.lower() if last.kind == "ident" else None
    # A bare or qualified column reference: `priority`, `t.priority`, `t."Priority"`.
    if item and all(t.kind in ("ident", "qident") or t.text == "." for t in item):
        last = item[-1]
        if last.kind == "qident":
            return last.text[1:-1].replace('""', '"')
        return last.text.lower() if last.kind == "ident" else None
    return None
