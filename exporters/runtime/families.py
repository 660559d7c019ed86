"""Small builders for metric families, and the top-N cap for labels that come from data."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.samples import Sample

T = TypeVar("T")

Row = tuple[Sequence[Any], float]


class RowsFamily:
    """A family whose samples stay label values and numbers until someone asks for them.

    With collection on each scrape every sample of every family is built on every scrape
    (issue 16); the text format renders these rows directly (runtime.textformat), so
    most scrapes never build a `Sample`. Asking for `samples` builds them once, exactly as
    `add_metric` would have; from then on they are an ordinary list.
    """

    sample_name: str
    label_names: tuple[str, ...]
    value: float | None
    rows: list[Row] | None  # None: built into samples (or nothing was pending)
    _built: list[Sample]

    @property
    def samples(self) -> list[Sample]:
        rows = self.rows
        if rows is not None:
            self.rows = None
            name, keys, append = self.sample_name, self.label_names, self._built.append
            if self.value is not None:
                append(Sample(name, {}, self.value, None, None))
            for label_values, sample in rows:
                append(Sample(name, dict(zip(keys, map(str, label_values), strict=False)),
                              sample, None, None))
        return self._built

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        self._built = value
        self.rows = None


class RowsGauge(RowsFamily, GaugeMetricFamily):
    pass


class RowsCounter(RowsFamily, CounterMetricFamily):
    pass


FamilyT = TypeVar("FamilyT", RowsGauge, RowsCounter)


# What prometheus_client's constructor sets, by class, name, help and labels: it checks
# the name on every call, and the same few dozen families are built on every scrape.
_MADE: dict[tuple[type, str, str, tuple[str, ...]], dict[str, Any]] = {}
_MADE_MAX = 10_000


def _family(cls: type[FamilyT], name: str, doc: str, value: float | None,
            labels: Sequence[str], rows: Iterable[Row]) -> FamilyT:
    key = (cls, name, doc, tuple(labels))
    made = _MADE.get(key)
    if made is None:
        first = cls(name, doc, labels=list(labels) if labels else None)
        made = dict(vars(first))
        made["sample_name"] = first.name + "_total" if first.type == "counter" else first.name
        made["label_names"] = tuple(labels)
        if len(_MADE) < _MADE_MAX:
            _MADE[key] = made
    family = cls.__new__(cls)
    family.__dict__.update(made)
    family._built = []
    family.value = value
    family.rows = list(rows)
    return family


def gauge(name: str, doc: str, value: float | None = None, labels: Sequence[str] = (),
          rows: Iterable[Row] = ()) -> GaugeMetricFamily:
    return _family(RowsGauge, name, doc, value, labels, rows)


def counter(name: str, doc: str, value: float | None = None, labels: Sequence[str] = (),
            rows: Iterable[Row] = ()) -> CounterMetricFamily:
    return _family(RowsCounter, name, doc, value, labels, rows)


def top_n(items: Sequence[T], limit: int) -> tuple[Sequence[T], int]:
    """Keep the first `limit` items (callers sort by importance); return how many were cut."""
    return items[:limit], max(0, len(items) - limit)
