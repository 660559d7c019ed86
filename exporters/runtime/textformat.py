"""The Prometheus text format 0.0.4, rendered faster than prometheus_client renders it.

prometheus_client's `generate_latest` checks and escapes every metric and label name of
every sample (regexes for UTF-8 name support); with collection on each scrape that was
the largest share of a scrape's CPU (issue 16). Names here come from code and configs and
are the legacy kind, so each is checked once and remembered. The output is byte for byte
`generate_latest`'s (tests/unit/test_textformat.py compares them); a family this renderer
does not cover (a name outside the legacy set, a sample with a timestamp) makes the whole
document go to `generate_latest`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import cast

from prometheus_client.core import Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString as _untyped_go_float

from saasmon.runtime.families import Row, RowsFamily

_go_float = cast(Callable[[float], str], _untyped_go_float)

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
# Names seen valid, per pattern; bounded, as names from configs are not known in advance.
_VALID: dict[re.Pattern[str], set[str]] = {_METRIC_NAME: set(), _LABEL_NAME: set()}
_VALID_MAX = 10_000
# HELP and TYPE lines by (name, help, type), and sample line templates by (name, labels):
# the same few dozen families every scrape. Bounded like the names.
_HEADERS: dict[tuple[str, str, str], str] = {}
_LINES: dict[tuple[str, tuple[str, ...]], tuple[str, list[int] | None]] = {}
# The last text of each rows family, by (name, labels), with the value and rows it came
# from. With collection on each scrape most families come back with equal rows (settings,
# sizes, idle tables, counters nobody moved), and comparing rows costs far less than
# rendering them. Only families whose label values are all str are kept: 1 == 1.0 but
# they render "1" and "1.0". Exporters in one bundle may share names; a miss only renders.
_ROWS_TEXT: dict[tuple[str, tuple[str, ...]], tuple[float | None, list[Row], str]] = {}
# Sample line starts (`name{labels}`) by family and label values (as str): a family whose
# values change from scrape to scrape mostly keeps its label sets (the same top statements,
# the same databases), so a changed family costs its numbers, not its labels again. A family
# whose label sets churn is forgotten when it holds more than a few scrapes' worth.
_PREFIXES: dict[tuple[str, tuple[str, ...]], dict[tuple[str, ...], str]] = {}
_PREFIX_FAMILIES_MAX = 1_000
_PREFIXES_PER_FAMILY_MIN = 256
# Text-format munging of OpenMetrics types, as prometheus_client does it.
_TYPES = {"info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram",
          "unknown": "untyped"}
_SUFFIXES = ("_created", "_gsum", "_gcount")  # rendered as gauges after their family


class _Unsupported(Exception):
    """A family prometheus_client must render itself."""


def _check(name: str, pattern: re.Pattern[str]) -> None:
    seen = _VALID[pattern]
    if name in seen:
        return
    if pattern.fullmatch(name) is None:
        raise _Unsupported(name)
    if len(seen) < _VALID_MAX:
        seen.add(name)


def _value(text: str) -> str:
    if "\\" in text or "\n" in text or '"' in text:
        return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return text


def _help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def _number(value: float) -> str:
    """floatToGoString, with its common case (a finite value Go prints as Python does)
    answered without the call."""
    text = repr(float(value))
    if text[-1] in "fn" or (value > 0 and text.find(".") > 6):  # inf, nan; Go's exponent
        return _go_float(value)
    return text


def _render(families: Iterable[Metric], out: list[str]) -> None:
    metric_names, label_names = _VALID[_METRIC_NAME], _VALID[_LABEL_NAME]
    for metric in families:
        name, kind = metric.name, metric.type
        if kind == "counter":
            name += "_total"
        elif kind == "info":
            name += "_info"
        header = _HEADERS.get((name, metric.documentation, kind))
        if header is None:
            _check(name, _METRIC_NAME)
            doc = _help(metric.documentation)
            header = f"# HELP {name} {doc}\n# TYPE {name} {_TYPES.get(kind, kind)}\n"
            if len(_HEADERS) < _VALID_MAX:
                _HEADERS[(name, metric.documentation, kind)] = header
        out.append(header)
        if isinstance(metric, RowsFamily) and metric.rows is not None:
            _render_rows(metric, out)
            continue
        extra: dict[str, list[str]] = {}
        special = {metric.name + suffix: suffix for suffix in _SUFFIXES}
        for sample in metric.samples:
            if sample.timestamp is not None:
                raise _Unsupported(sample.name)
            if sample.name not in metric_names:
                _check(sample.name, _METRIC_NAME)
            if sample.labels:
                parts = []
                for key, val in sorted(sample.labels.items()):
                    if key not in label_names:
                        _check(key, _LABEL_NAME)
                    parts.append(f'{key}="{_value(val)}"')
                line = f"{sample.name}{{{','.join(parts)}}} {_number(sample.value)}\n"
            else:
                line = f"{sample.name} {_number(sample.value)}\n"
            suffix = special.get(sample.name)
            if suffix is None:
                out.append(line)
            else:
                extra.setdefault(suffix, []).append(line)
        for suffix, lines in sorted(extra.items()):
            out.append(f"# HELP {metric.name}{suffix} {_help(metric.documentation)}\n"
                       f"# TYPE {metric.name}{suffix} gauge\n")
            out.extend(lines)


def _row_prefix(name: str, keys: tuple[str, ...]) -> tuple[str, list[int] | None]:
    """The `%` template of a family's sample line starts (`name{labels}`, labels sorted by
    name) and the order to put its label values in (None: as given); checked once per name
    and labels."""
    cached = _LINES.get((name, keys))
    if cached is not None:
        return cached
    _check(name, _METRIC_NAME)
    for key in keys:
        _check(key, _LABEL_NAME)
    if len(set(keys)) != len(keys):
        raise _Unsupported(name)  # a label given twice: the dict of add_metric keeps one
    order = sorted(range(len(keys)), key=keys.__getitem__)
    template = name + "{" + ",".join(f'{keys[i]}="%s"' for i in order) + "}"
    cached = (template, None if order == list(range(len(keys))) else order)
    if len(_LINES) < _VALID_MAX:
        _LINES[(name, keys)] = cached
    return cached


def _render_rows(family: RowsFamily, out: list[str]) -> None:
    """A family's pending rows (families.RowsFamily), without building their samples: the
    same lines as the samples would give (labels sorted by name, values escaped)."""
    name, keys, value, rows = family.sample_name, family.label_names, family.value, family.rows
    assert rows is not None
    cached = _ROWS_TEXT.get((name, keys))
    if cached is not None and cached[0] == value and cached[1] == rows:
        out.append(cached[2])
        return
    lines: list[str] = []
    _rows_text(name, keys, value, rows, lines)
    text = "".join(lines)
    out.append(text)
    if (cached is not None or len(_ROWS_TEXT) < _VALID_MAX) and all(
            type(v) is str for label_values, _ in rows for v in label_values):
        _ROWS_TEXT[(name, keys)] = (value, rows, text)


def _rows_text(name: str, keys: tuple[str, ...], value: float | None, rows: list[Row],
               out: list[str]) -> None:
    _check(name, _METRIC_NAME)
    if value is not None:
        out.append(f"{name} {_number(value)}\n")
    if not rows:
        return
    numbers = [_number(number) for _, number in rows]
    if not keys:
        out.extend(f"{name} {number}\n" for number in numbers)
        return
    template, order = _row_prefix(name, keys)
    width = len(keys)
    known = _PREFIXES.get((name, keys))
    if known is None:
        known = {}
        if len(_PREFIXES) < _PREFIX_FAMILIES_MAX:
            _PREFIXES[(name, keys)] = known
    elif len(known) > max(_PREFIXES_PER_FAMILY_MIN, 4 * len(rows)):
        known.clear()
    for (label_values, _), number in zip(rows, numbers, strict=True):
        values = tuple(map(str, label_values))
        prefix = known.get(values)
        if prefix is None:
            if len(values) != width:
                raise _Unsupported(name)
            ordered = values if order is None else tuple([values[i] for i in order])
            # Escaping is rare: a quote, backslash or newline in a label value.
            if any("\\" in v or "\n" in v or '"' in v for v in ordered):
                ordered = tuple(map(_value, ordered))
            prefix = known[values] = template % ordered
        out.append(f"{prefix} {number}\n")


def generate_text(registry: Collector) -> bytes:
    """`generate_latest(registry)` (text format 0.0.4, default escaping), faster."""
    families = list(registry.collect())
    out: list[str] = []
    try:
        _render(families, out)
    except _Unsupported:
        return generate_latest(_Listed(families))
    return "".join(out).encode("utf-8")


class _Listed(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families
