"""Small builders for metric families, and the top-N cap for labels that come from data."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.samples import Sample

T = TypeVar("T")
FamilyT = TypeVar("FamilyT", GaugeMetricFamily, CounterMetricFamily)


def _family(cls: type[FamilyT], name: str, doc: str, value: float | None,
            labels: Sequence[str], rows: Iterable[tuple[Sequence[str], float]]) -> FamilyT:
    family = cls(name, doc, labels=list(labels) if labels else None)
    # The samples add_metric would append, built directly: with collection on each scrape
    # this runs for every sample of every scrape (issue 16).
    sample_name = family.name + "_total" if family.type == "counter" else family.name
    append = family.samples.append
    if value is not None:
        append(Sample(sample_name, {}, value, None, None))
    keys = tuple(labels)
    for label_values, sample in rows:
        append(Sample(sample_name, dict(zip(keys, map(str, label_values), strict=False)),
                      sample, None, None))
    return family


def gauge(name: str, doc: str, value: float | None = None, labels: Sequence[str] = (),
          rows: Iterable[tuple[Sequence[str], float]] = ()) -> GaugeMetricFamily:
    return _family(GaugeMetricFamily, name, doc, value, labels, rows)


def counter(name: str, doc: str, value: float | None = None, labels: Sequence[str] = (),
            rows: Iterable[tuple[Sequence[str], float]] = ()) -> CounterMetricFamily:
    return _family(CounterMetricFamily, name, doc, value, labels, rows)


def top_n(items: Sequence[T], limit: int) -> tuple[Sequence[T], int]:
    """Keep the first `limit` items (callers sort by importance); return how many were cut."""
    return items[:limit], max(0, len(items) - limit)
