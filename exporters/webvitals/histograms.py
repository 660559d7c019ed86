"""Fixed-bucket histograms per (metric, route, rating): O(1) memory per series.

Bucket edges are fixed (not configurable) so accumulated counts stay valid across config
reloads, and every good/poor threshold the guides state is an edge: `le` queries at a
threshold are exact, never interpolated. Times are in seconds, CLS is unitless.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator

from prometheus_client.core import Metric

EDGES: dict[str, tuple[float, ...]] = {
    "fcp": (
        0.1, 0.25, 0.5,
        1.0,  # tpt-erp § Performance Baselines: subsequent page loads < 1 s
        1.5,  # tpt-erp § Performance Baselines: First Contentful Paint < 1.5 s
        1.8,  # nova-crm § 1.1 (fcp target 1.8 s) and § 3.2 (FCP good 1800 ms)
        2.0,  # estimate-library § Key Metrics to Track: page load < 2 s; tpt-erp initial load
        2.5,
        3.0,  # nova-crm § 1.1 (fcp alert 3 s) and § 3.2 (FCP poor 3000 ms)
        4.0, 6.0, 10.0, 20.0, 30.0,
    ),
    "lcp": (
        0.25, 0.5,
        1.0,  # tpt-erp § Performance Baselines: subsequent page loads < 1 s
        1.5,
        2.0,  # estimate-library § Key Metrics to Track: page load < 2 s; tpt-erp initial load
        2.5,  # nova-crm § 1.1 (lcp target 2.5 s), § 3.2 (LCP good); tpt-erp § Performance
        # Baselines (Largest Contentful Paint < 2.5 s)
        3.0,  # tpt-erp § Performance Baselines: Time to Interactive < 3 s
        4.0,  # nova-crm § 1.1 (lcp alert 4 s) and § 3.2 (LCP poor 4000 ms)
        5.0, 6.0, 8.0, 10.0, 20.0, 30.0,
    ),
    "fid": (
        0.005, 0.01, 0.025, 0.05,
        0.1,  # nova-crm § 1.1 (fid target 100 ms), § 3.2 (FID good); tpt-erp § Performance
        # Baselines (First Input Delay < 100 ms)
        0.2,
        0.3,  # nova-crm § 1.1 (fid alert 300 ms) and § 3.2 (FID poor 300 ms)
        0.5, 1.0, 2.0, 5.0,
    ),
    "inp": (
        0.025, 0.05,
        0.1,  # FID good of nova-crm § 3.2 / tpt-erp § Performance Baselines: INP replaced FID
        0.2,  # web-vitals library INP good (no guide states INP)
        0.3,  # FID poor of nova-crm § 3.2, kept for INP for the same reason
        0.5,  # web-vitals library INP poor
        0.75, 1.0, 2.0, 5.0, 10.0,
    ),
    "ttfb": (
        0.05,
        0.1,  # estimate-library § Key Metrics to Track: factor calculations < 100 ms
        0.2,  # estimate-library § Key Metrics to Track: library search < 200 ms;
        # tpt-erp § Performance Baselines: API response < 200 ms average
        0.3,  # dirt-free-crm § Performance Metrics: response time p50 < 300 ms
        0.5,  # tpt-erp § Performance Baselines: API p95 < 500 ms; nova-crm § 1.1 API target;
        # dirt-free-crm § Performance Metrics: p50 critical > 500 ms
        0.6,  # nova-crm § 1.1 (ttfb target 600 ms) and § 3.2 (TTFB good 600 ms)
        0.8,  # web-vitals library TTFB good
        1.0,  # nova-crm § 1.1 (ttfb alert 1000 ms); dirt-free-crm § Performance Metrics p95
        1.5,  # nova-crm § 3.2: TTFB poor 1500 ms
        1.8,  # web-vitals library TTFB poor
        2.0,  # dirt-free-crm § Performance Metrics: p95 critical > 2 s, p99 target < 2 s
        3.0,
        5.0,  # dirt-free-crm § Performance Metrics: p99 critical > 5 s
        10.0,
    ),
    "cls": (
        0.01, 0.025, 0.05,
        0.1,  # nova-crm § 1.1 (cls target) and § 3.2 (CLS good); tpt-erp § Performance Baselines
        0.15,
        0.25,  # nova-crm § 1.1 (cls alert) and § 3.2 (CLS poor 0.25)
        0.5, 1.0, 2.0,
    ),
}

RATINGS = ("good", "needs-improvement", "poor")
# `le` label values: 2.5 -> "2.5", 1.0 -> "1.0" (as Prometheus clients print them).
LES = {key: (*(repr(edge) for edge in edges), "+Inf") for key, edges in EDGES.items()}

BY = "by route, rating and navigation type."
HELP = {
    "cls": f"Cumulative Layout Shift reported by browsers (unitless), {BY}",
    "fcp": f"First Contentful Paint reported by browsers, {BY}",
    "fid": f"First Input Delay reported by browsers, {BY}",
    "inp": f"Interaction to Next Paint reported by browsers, {BY}",
    "lcp": f"Largest Contentful Paint reported by browsers, {BY}",
    "ttfb": f"Time to First Byte reported by browsers, {BY}",
}


def metric_name(namespace: str, key: str) -> str:
    return f"{namespace}_cls" if key == "cls" else f"{namespace}_{key}_seconds"


class Series:
    """Per-bucket (not cumulative) counts, the last one +Inf, and the sum."""

    __slots__ = ("counts", "total")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * (buckets + 1)
        self.total = 0.0


class HistogramStore:
    """Every histogram series; outlives config reloads (it belongs to the exporter kind).

    Series are keyed by (metric, route, rating, navigation_type): all four are closed sets.
    """

    def __init__(self) -> None:
        self.series: dict[tuple[str, str, str, str], Series] = {}
        # Label dicts per (route, rating, navigation_type), made once and reused by every
        # scrape: building them anew was most of the families() time (the renderer only
        # reads them).
        self._labels: dict[tuple[str, str, str], dict[str, dict[str, str]]] = {}

    def observe(self, key: str, route: str, rating: str, navigation: str, value: float) -> None:
        series = self.series.get((key, route, rating, navigation))
        if series is None:
            series = self.series[(key, route, rating, navigation)] = Series(len(EDGES[key]))
        # bisect_left: a value equal to an edge belongs to that edge's bucket (le).
        series.counts[bisect_left(EDGES[key], value)] += 1
        series.total += value

    def keep_routes(self, routes: Iterable[str]) -> None:
        """Drop series of routes no longer configured, so reloads cannot grow memory."""
        keep = set(routes)
        for key in [k for k in self.series if k[1] not in keep]:
            del self.series[key]
        for labels in [k for k in self._labels if k[0] not in keep]:
            del self._labels[labels]

    def _label_sets(self, route: str, rating: str, navigation: str) -> dict[str, dict[str, str]]:
        """{"": {route, rating, navigation_type}, "<le>": {..., le}} for every edge of any metric."""
        found = self._labels.get((route, rating, navigation))
        if found is None:
            base = {"route": route, "rating": rating, "navigation_type": navigation}
            found = {"": base}
            for le in sorted({le for edges in LES.values() for le in edges}):
                found[le] = {**base, "le": le}
            self._labels[(route, rating, navigation)] = found
        return found

    def families(self, namespace: str) -> Iterator[Metric]:
        for key, les in LES.items():
            name = metric_name(namespace, key)
            family = Metric(name, HELP[key], "histogram")
            for (metric, route, rating, navigation), series in sorted(self.series.items()):
                if metric != key:
                    continue
                labels = self._label_sets(route, rating, navigation)
                cumulative = 0
                for le, count in zip(les, series.counts, strict=True):
                    cumulative += count
                    family.add_sample(f"{name}_bucket", labels[le], float(cumulative))
                family.add_sample(f"{name}_count", labels[""], float(cumulative))
                family.add_sample(f"{name}_sum", labels[""], series.total)
            yield family
