"""The drill copy of the rules (alert_rules/generator/scaled.py: the mixin with
`_config.timeScale`): every `for`, range window and offset scaled, windows floored to four
scrape intervals, everything else as committed, and Prometheus accepts it. That the scaling
is exactly a division of every duration is shown structurally in tests/unit/test_mixin.py."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from alert_rules.generator.__main__ import main
from alert_rules.generator.catalog import load_catalog
from alert_rules.generator.durations import RANGE, seconds
from alert_rules.generator.scaled import write_scaled

# Each render of the mixin takes about 25 s of CPU: minutes on a loaded machine.
pytestmark = pytest.mark.timeout(1200)

GENERATED = Path(__file__).resolve().parents[3] / "alert_rules" / "generated"
SCALE = 1 / 60


def _scaled(duration: str) -> float:
    return max(1, int(seconds(duration) * SCALE + 1e-9))


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
        if "for" in real:
            assert seconds(drill["for"]) == _scaled(real["for"])
        windows = [seconds(m.group(1)) for m in RANGE.finditer(drill["expr"])]
        assert all(w >= 4 for w in windows), drill["expr"]
        # Every window of the committed rule has its scaled counterpart.
        assert windows == [max(4, _scaled(m.group(1))) for m in RANGE.finditer(real["expr"])]
        assert not re.search(r"\[\d+[mhdwy]", drill["expr"]), drill["expr"]


def test_command_line_needs_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--time-scale", "0.5"])
    assert main(["--time-scale", "0.5", "--out", str(tmp_path)]) == 0
    assert "time scale 0.5" in capsys.readouterr().out
    alerts = _rules(tmp_path / "saasmon-alerts.yaml")
    # 1m, and its escalation twin 1m + dirt-free-crm's 5-minute acknowledgement.
    assert {r["labels"].get("escalated_from", ""): r["for"] for r in alerts
            if r["alert"] == "PostgresDown"} == {"": "30s", "critical": "180s"}
