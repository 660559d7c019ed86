"""Every dashboard panel query and every rule expression runs on VictoriaMetrics: a real
single-node server answers each at /api/v1/query with status success (MetricsQL is not
PromQL; a query it cannot parse or evaluate is an error there, a blank panel for a user).

Panel queries come from the board lint (`dashboards.lint.queries`): Grafana variables
substituted, `$__rate_interval` and the like included. No data is needed to parse and plan a
query; the server runs empty.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dashboards import lint
from devstack.victoria import VictoriaMetrics

REPO = Path(__file__).resolve().parents[2]
BOARDS = sorted((REPO / "dashboards" / "generated").glob("*.json"))
RULE_FILES = [REPO / "alert_rules" / "generated" / name
              for name in ("saasmon-rules.yaml", "saasmon-alerts.yaml")]


@pytest.fixture(scope="module")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    server = VictoriaMetrics(tmp_path_factory.mktemp("victoria"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def problem(server: VictoriaMetrics, expr: str) -> str | None:
    """None when VictoriaMetrics answers status success, else its error."""
    url = f"{server.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
    return None if body.get("status") == "success" else str(body.get("error", body))


def panel_queries() -> list[lint.Query]:
    return [q for path in BOARDS for q in lint.queries(json.loads(path.read_text()), path.name)]


def rule_exprs() -> list[tuple[str, str]]:
    return [(rule.get("alert") or rule["record"], rule["expr"])
            for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]
            for rule in group["rules"]]


def test_every_panel_query_runs_on_victoriametrics(victoria: VictoriaMetrics) -> None:
    queries = panel_queries()
    assert len(BOARDS) >= 10 and len(queries) > 100  # every board, not an empty glob
    assert not [q for q in queries if "$" in q.expr], "a Grafana variable left unsubstituted"
    failed = [f"{q.file} {q.where} {q.label}: {err}\n  {q.expr}"
              for q in queries if (err := problem(victoria, q.expr)) is not None]
    assert not failed, f"{len(failed)} of {len(queries)} queries:\n" + "\n".join(failed)


def test_every_rule_expression_runs_on_victoriametrics(victoria: VictoriaMetrics) -> None:
    exprs = rule_exprs()
    assert len(exprs) > 100
    failed = [f"{name}: {err}\n  {expr}"
              for name, expr in exprs if (err := problem(victoria, expr)) is not None]
    assert not failed, f"{len(failed)} of {len(exprs)} expressions:\n" + "\n".join(failed)


def test_a_query_victoriametrics_cannot_parse_is_reported(victoria: VictoriaMetrics) -> None:
    assert problem(victoria, "sum(rate(up[5m])") is not None
    assert problem(victoria, "sum(rate(up[5m]))") is None
