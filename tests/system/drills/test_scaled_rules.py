"""The drill copy of the rules (alert_rules/generator/scaled.py): every `for`, range window
and offset scaled, windows floored to four scrape intervals, everything else as committed,
and Prometheus accepts it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from alert_rules.generator.__main__ import main
from alert_rules.generator.catalog import load_catalog
from alert_rules.generator.scaled import (
    RANGE,
    scale_duration,
    scale_expr,
    seconds,
    write_scaled,
)
from tests.system.drills.alerting import scale_committed

GENERATED = Path(__file__).resolve().parents[3] / "alert_rules" / "generated"
SCALE = 1 / 60


@pytest.mark.parametrize(("expr", "scaled"), [
    ("rate(x[5m])", "rate(x[5s])"),
    ("rate(x[1h30m])", "rate(x[90s])"),
    ("rate(x[2m])", "rate(x[4s])"),  # floored: 2 s would hold two samples at best
    ("avg_over_time(x[1d:5m])", "avg_over_time(x[1440s:5s])"),
    ("max_over_time(x[1h:])", "max_over_time(x[60s:])"),
    ("x / (x offset 1w)", "x / (x offset 10080s)"),
    ("x offset -1h", "x offset -60s"),
    ('rate(x{path=~"/a[5m]",q=\'[1h]\'}[10m])', 'rate(x{path=~"/a[5m]",q=\'[1h]\'}[10s])'),
    ("sum(rate(a[5m])) / sum(rate(b[15m]))", "sum(rate(a[5s])) / sum(rate(b[15s]))"),
])
def test_scale_expr(expr: str, scaled: str) -> None:
    assert scale_expr(expr, SCALE, min_window_seconds=4) == scaled


def test_scale_duration_and_seconds() -> None:
    assert seconds("1h30m") == 5400
    assert seconds("500ms") == 0.5
    assert scale_duration("5m", SCALE) == "5s"  # 300 / 60 is exactly 5, not 4.99...
    assert scale_duration("1m", 1 / 120) == "1s"  # never 0
    assert scale_duration("5m", 1 / 120, floor_seconds=4) == "4s"
    with pytest.raises(ValueError):
        seconds("5 minutes")


def _rules(path: Path) -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]]


@pytest.fixture(scope="module")
def scaled_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scaled")
    write_scaled(load_catalog(), SCALE, out, scrape_interval_seconds=1.0)
    return out


def test_promtool_accepts_the_scaled_rules(scaled_dir: Path) -> None:
    files = sorted(scaled_dir.glob("*.yaml"))
    assert [f.name for f in files] == ["saasmon-alerts.yaml", "saasmon-rules.yaml"]
    out = subprocess.run(["promtool", "check", "rules", *map(str, files)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("name", ["saasmon-alerts.yaml", "saasmon-rules.yaml"])
def test_only_durations_change(scaled_dir: Path, name: str) -> None:
    committed, scaled = _rules(GENERATED / name), _rules(scaled_dir / name)
    assert len(committed) == len(scaled)
    for real, drill in zip(committed, scaled, strict=True):
        same = ("alert", "record", "labels", "annotations")
        assert {k: real.get(k) for k in same} == {k: drill.get(k) for k in same}
        assert drill["expr"] == scale_expr(real["expr"], SCALE, 4)
        if "for" in real:
            assert seconds(drill["for"]) == max(1, int(seconds(real["for"]) * SCALE + 1e-9))
        windows = [seconds(m.group(1)) for m in RANGE.finditer(drill["expr"])]
        assert all(w >= 4 for w in windows), drill["expr"]
        # Every window of the committed rule has its scaled counterpart.
        assert len(windows) == len(RANGE.findall(real["expr"]))
        assert not re.search(r"\[\d+[mhdwy]", drill["expr"]), drill["expr"]


def test_scaling_the_committed_files_gives_the_same_copy(scaled_dir: Path,
                                                        tmp_path: Path) -> None:
    # The sharded drill scales the committed files instead of rendering the mixin again.
    made = scale_committed(tmp_path, SCALE, scrape_interval=1.0)
    assert [p.name for p in made] == ["saasmon-rules.yaml", "saasmon-alerts.yaml"]
    for path in made:
        assert yaml.safe_load(path.read_text()) == yaml.safe_load(
            (scaled_dir / path.name).read_text()), path.name


def test_command_line_needs_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--time-scale", "0.5"])
    assert main(["--time-scale", "0.5", "--out", str(tmp_path)]) == 0
    assert "time scale 0.5" in capsys.readouterr().out
    alerts = _rules(tmp_path / "saasmon-alerts.yaml")
    # 1m, and its escalation twin 1m + dirt-free-crm's 5-minute acknowledgement.
    assert {r["labels"].get("escalated_from", ""): r["for"] for r in alerts
            if r["alert"] == "PostgresDown"} == {"": "30s", "critical": "180s"}
