"""Every generated rule file is valid for vmalert, VictoriaMetrics' rule engine: its own
check (`vmalert -dryRun`) parses each expression with the MetricsQL parser and each
annotation and label template with its template functions (docs/victoriametrics.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from devstack.victoria import vmalert_check

GENERATED = Path(__file__).resolve().parents[2] / "alert_rules" / "generated"


def rule_files(tmp_path: Path) -> dict[Path, int]:
    """The generated rule files and how many rules each holds; a Kubernetes PrometheusRule
    contributes its `spec` (the rule groups), written beside as a plain rule file."""
    found: dict[Path, int] = {}
    for path in sorted(GENERATED.glob("*.yaml")):
        doc = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
        if doc.get("kind") == "PrometheusRule":
            doc = doc["spec"]
            path = tmp_path / f"{path.stem}-spec.yaml"
            path.write_text(yaml.dump(doc, Dumper=yaml.CSafeDumper, sort_keys=False))
        found[path] = sum(len(g["rules"]) for g in doc["groups"])
    return found


def test_vmalert_accepts_every_generated_rule_file(tmp_path: Path) -> None:
    files = rule_files(tmp_path)
    names = {f.name for f in files}
    assert {"saasmon-alerts.yaml", "saasmon-rules.yaml"} <= names, names
    assert sum(files.values()) > 100  # the whole catalog, not an empty file
    out = vmalert_check(list(files))
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(("rule", "error"), [
    ({"alert": "Broken", "expr": "rate(x[5m]) >"}, "bad prometheus expr"),
    ({"alert": "Broken", "expr": "up == 0",
      "annotations": {"summary": "{{ $value | nosuchfunction }}"}}, "nosuchfunction"),
])
def test_vmalert_check_refuses_a_broken_rule(tmp_path: Path, rule: dict[str, object],
                                             error: str) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "broken", "rules": [rule]}]}))
    out = vmalert_check([path])
    assert out.returncode != 0 and error in out.stdout + out.stderr, out.stdout + out.stderr
