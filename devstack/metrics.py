"""Prometheus text exposition read back as samples, and the look-ups tests and drills make on them."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from typing import Any

from prometheus_client.core import Metric
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """The one sample with this name whose labels include `labels`."""
    found = [v for (n, ls), v in samples.items()
             if n == name and all(dict(ls).get(k) == w for k, w in labels.items())]
    assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
    return found[0]


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items()
               if n == name and all(dict(ls).get(k) == w for k, w in labels.items()))


def parse_openmetrics(text: str) -> list[Metric]:
    """Families of an OpenMetrics document, by prometheus_client's strict parser (it refuses
    a missing or misplaced `# EOF`, counters without `_total`, ...)."""
    parsed: list[Metric] = list(
        openmetrics_parser.text_string_to_metric_families(text))  # type: ignore[no-untyped-call]
    return parsed


def prometheus_api(base_url: str, path: str, **params: str) -> Any:
    """GET a Prometheus-style HTTP API (`/api/v1/<path>`: Prometheus, VictoriaMetrics,
    vmagent, vmalert); its `data`, once the answer says status success."""
    url = f"{base_url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]
