"""Small builders for metric families, and the top-N cap for labels that come from data."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

T = TypeVar("T")


def gauge(name: str, doc: str, value: float | None = None,
          labels: Sequence[str] = (),
          rows: Iterable[tuple[Sequence[str], float]] = ()) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=list(labels) if labels else None)
    if value is not None:
        family.add_metric([], value)
    for label_values, sample in rows:
        family.add_metric([str(v) for v in label_values], sample)
    return family


def counter(name: str, doc: str, value: float | None = None,
            labels: Sequence[str] = (),
            rows: Iterable[tuple[Sequence[str], float]] = ()) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=list(labels) if labels else None)
    if value is not None:
        family.add_metric([], value)
    for label_values, sample in rows:
        family.add_metric([str(v) for v in label_values], sample)
    return family


def top_n(items: Sequence[T], limit: int) -> tuple[Sequence[T], int]:
    """Keep the first `limit` items (callers sort by importance); return how many were cut."""
    return items[:limit], max(0, len(items) - limit)
