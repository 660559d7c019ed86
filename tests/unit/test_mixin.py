"""The repository as a monitoring mixin: vendored the way kube-prometheus vendors mixins, it
renders the committed rules and boards; a `_config` override reaches a rule and a board; and
`_config.timeScale` scales every duration of the rules and nothing else."""

from __future__ import annotations

import ast
import json
import math
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import _jsonnet
import pytest

from alert_rules.generator.durations import seconds
from alert_rules.generator.mixin import CATALOG_JSON, REPO, importer
from tests.support.yamlfile import load_yaml

GENERATED = REPO / "alert_rules" / "generated"
BOARDS = REPO / "dashboards" / "generated"
SCALE = 1 / 60
# Our own marker for each duration parameter the mixin fills in (config.libsonnet
# scaledDuration): where a duration of a rule comes from, without parsing PromQL.
MARKER = re.compile(r"<<(range|duration):(\d+[smhdw])>>")


def _groups(path: Path) -> Any:
    return load_yaml(path)


def _jsonnet_cli(workdir: Path, main: str) -> Any:
    (workdir / "main.jsonnet").write_text(main)
    out = subprocess.run(["jsonnet", "-J", "vendor", "main.jsonnet"], cwd=workdir,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def kube_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch Jsonnet project with the repository vendored as `vendor/saasmon`, as
    `jb install github.com/saasmon/saasmon` lays it out: the committed files, nothing else
    (no venv, no untracked output), so the mixin must stand on what the repository ships."""
    root = tmp_path_factory.mktemp("kube-prometheus")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                             check=True, timeout=120).stdout.decode().split("\0")
    for rel in filter(None, tracked):
        source = REPO / rel
        if source.is_file():
            target = root / "vendor" / "saasmon" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
    return root


@pytest.mark.integration  # the whole mixin, boards included, through the jsonnet binary
@pytest.mark.timeout(1200)  # about 30 s of CPU; minutes on a loaded machine
def test_vendored_mixin_renders_the_committed_rules_and_boards(kube_prometheus: Path) -> None:
    out = _jsonnet_cli(kube_prometheus, """
local saasmon = (import 'saasmon/mixin.libsonnet') + { _config+:: {} };
{
  alerts: saasmon.prometheusAlerts,
  rules: saasmon.prometheusRules,
  dashboards: saasmon.grafanaDashboards,
}
""")
    assert out["alerts"] == _groups(GENERATED / "saasmon-alerts.yaml")
    assert out["rules"] == _groups(GENERATED / "saasmon-rules.yaml")
    committed = {p.name: json.loads(p.read_text()) for p in sorted(BOARDS.glob("*.json"))}
    assert sorted(out["dashboards"]) == sorted(committed)
    assert out["dashboards"] == committed


@pytest.mark.integration  # evaluates the alerts and one board through the jsonnet binary
@pytest.mark.timeout(1200)
def test_a_config_override_reaches_a_rule_and_a_board(kube_prometheus: Path) -> None:
    catalog = json.loads(CATALOG_JSON.read_text())
    rule = next(r for r in catalog["rules"] if r["signal"] == "redis_memory" and not r["escalation_of"])
    out = _jsonnet_cli(kube_prometheus, """
local saasmon = (import 'saasmon/mixin.libsonnet') + {
  _config+:: {
    jobs+: { redis: 'cache-redis' },
    thresholds+: { RULE_ID: 0.123 },
  },
};
{
  alerts: [r for g in saasmon.prometheusAlerts.groups for r in g.rules
           if std.member(['RedisDown', 'RedisMemoryHigh'], r.alert)],
  board: saasmon.grafanaDashboards['saasmon-redis.json'],
}
""".replace("RULE_ID", json.dumps(rule["id"])))
    alerts = {a["alert"]: a for a in out["alerts"]}
    assert set(alerts) == {"RedisDown", "RedisMemoryHigh"}, "catalog alert names changed"
    assert 'job="cache-redis"' in alerts["RedisDown"]["expr"]
    assert any(a["alert"] == "RedisMemoryHigh" and f"{rule['comparator']} 0.123" in a["expr"]
               for a in out["alerts"]), "the overridden threshold is not in the alert"
    board = out["board"]
    job = next(v for v in board["templating"]["list"] if v["name"] == "job")
    assert "cache-redis" in json.dumps(job)
    steps = [s["value"] for p in board["panels"]
             for s in p.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}).get("steps", [])]
    assert any(v is not None and abs(v - 0.123) < 1e-6 for v in steps), steps


def _render(overrides: str) -> dict[str, Any]:
    """The rules of the in-repository mixin with Jsonnet `overrides` of its _config."""
    snippet = ("local m = (import 'mixin.libsonnet') + { _config+:: { " + overrides + " } };\n"
               "{alerts: m.prometheusAlerts, rules: m.prometheusRules, "
               "descriptions: m.ruleDescriptions}")
    out: dict[str, Any] = json.loads(_jsonnet.evaluate_snippet(
        str(REPO / "test.jsonnet"), snippet, import_callback=importer(CATALOG_JSON.read_text())))
    return out


def _scaled(duration: str, scale: float) -> str:
    return f"{max(1, math.floor(seconds(duration) * scale + 1e-9))}s"


def _fill(text: str, fill: Any) -> str:
    return MARKER.sub(lambda m: fill(m.group(1), m.group(2)), text)


def _flat(rendered: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for g in rendered[kind]["groups"] for r in g["rules"]]


@pytest.mark.integration  # two renders of the mixin's rules: about 50 s of CPU
@pytest.mark.timeout(1200)
def test_time_scale_divides_every_duration_of_the_rules() -> None:
    marked = _render("scaledDuration(d, range=false):: '<<%s:%s>>' % [if range then 'range' else "
                     "'duration', d]")
    scaled = _render(f"timeScale: {SCALE!r}")
    committed = {"alerts": _groups(GENERATED / "saasmon-alerts.yaml"),
                 "rules": _groups(GENERATED / "saasmon-rules.yaml")}
    used: set[str] = set()
    for kind in ("alerts", "rules"):
        rows = zip(_flat(committed, kind), _flat(marked, kind), _flat(scaled, kind), strict=True)
        for real, mark, drill in rows:
            for key in ("alert", "record", "labels", "annotations"):
                assert real.get(key) == drill.get(key) == mark.get(key)
            # No duration of a rule escapes the parameter: none is left as a literal.
            assert not re.search(r"\[\s*\d|offset\s+-?\d", mark["expr"]), mark["expr"]
            used |= {m.group(2) for m in MARKER.finditer(mark["expr"])}
            assert _fill(mark["expr"], lambda _, d: d) == real["expr"]
            assert _fill(mark["expr"], lambda _, d: _scaled(d, SCALE)) == drill["expr"]
            if "for" in real:
                assert MARKER.fullmatch(mark["for"]), mark["for"]
                assert drill["for"] == _scaled(real["for"], SCALE)
    # Windows from 5 minutes to 3 days, and last week's offset, all went through it.
    assert {"5m", "1h", "3d", "1w"} <= used
    for real, drill in zip(json.loads((GENERATED / "rule-descriptions.json").read_text()),
                           scaled["descriptions"], strict=True):
        assert drill["for"] == _scaled(real["for"], SCALE) or real["for"] == drill["for"] == "0s"


def test_scale_duration_floors_range_windows() -> None:
    def scale(d: str, s: float, floor: float) -> str:
        out: str = json.loads(_jsonnet.evaluate_snippet(
            "t", f"(import 'alert_rules/mixin/format.libsonnet').scaleDuration('{d}', {s!r}, {floor!r})",
            jpathdir=[str(REPO)]))
        return out

    assert scale("5m", 1, 4) == "5m"  # unscaled: the catalog's own text
    assert scale("5m", SCALE, 0) == "5s"  # 300 / 60 is exactly 5, not 4.99...
    assert scale("1w", SCALE, 0) == "10080s"
    assert scale("5m", 1 / 120, 4) == "4s"  # a rate window keeps four scrapes
    assert scale("1m", 1 / 120, 0) == "1s"  # never 0


def test_generator_modules_import_no_cycle() -> None:
    package = REPO / "alert_rules" / "generator"
    graph = {
        path.stem: {node.module.rsplit(".", 1)[1] for node in ast.walk(ast.parse(path.read_text()))
                    if isinstance(node, ast.ImportFrom) and node.module
                    and node.module.startswith("alert_rules.generator.")}
        for path in package.glob("*.py")
    }
    assert {"mixin", "dashboards"} <= graph["render"], graph  # the imports are read at all

    def reaches(start: str, goal: str, seen: frozenset[str] = frozenset()) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n}))
                   for n in graph.get(start, ()))

    assert [m for m in graph if reaches(m, m)] == []
