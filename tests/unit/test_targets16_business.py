"""bench/targets16.py's verdict on issue 16 target 5 (business exporter DB time), read from
the summary line bench/business_bench.py writes into bench/BUSINESS_RESULTS.md."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
HEADER = ("# Business exporter benchmark\n\nGenerated 2026-12-07 09:00 UTC by "
          "`bench/business_bench.py` (3 runs). Reproduce:\n\n")


@pytest.fixture
def targets16(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))  # targets16 imports its bench neighbours
    return importlib.import_module("targets16")


def _verdict(targets16: ModuleType, tmp_path: Path, summary: str) -> tuple[str, str]:
    path = tmp_path / "BUSINESS_RESULTS.md"
    path.write_text(HEADER + summary + "\n\n## Machine\n")
    [row] = targets16.business(path)
    return row.verdict, row.measured


def test_three_runs_all_under_the_bar_pass(targets16: ModuleType, tmp_path: Path) -> None:
    verdict, measured = _verdict(targets16, tmp_path, (
        "Summary: saasmon's DB time per hour is 0.412x, 0.398x, 0.431x of interval-mode "
        "query-exporter's in 3 runs (worst 0.431x; target at most 0.5x in every run: met)."))
    assert verdict == "PASS"
    assert measured == "worst 0.431x of 3 run(s) (0.412x, 0.398x, 0.431x)"


@pytest.mark.parametrize("summary", [
    # One run over the bar: the worst decides.
    "Summary: saasmon's DB time per hour is 0.412x, 0.505x, 0.431x of interval-mode "
    "query-exporter's in 3 runs (worst 0.505x).",
    # Under the bar, but not three runs: not "clearly".
    "Summary: saasmon's DB time per hour is 0.412x, 0.398x of interval-mode "
    "query-exporter's in 2 runs (worst 0.412x).",
    "Summary: saasmon's DB time per hour is 0.412x of interval-mode query-exporter's in "
    "1 run (worst 0.412x).",
])
def test_a_run_over_the_bar_or_fewer_than_three_runs_fail(
        targets16: ModuleType, tmp_path: Path, summary: str) -> None:
    assert _verdict(targets16, tmp_path, summary)[0] == "FAIL"


def test_a_report_without_the_summary_line_is_not_measured(
        targets16: ModuleType, tmp_path: Path) -> None:
    # The one-run report of before: several Generated lines no longer count as runs.
    old = ("Estimated from the measured costs, saasmon's DB time per hour is 0.469x of "
           "interval-mode query-exporter's.\nGenerated again\nGenerated again")
    assert _verdict(targets16, tmp_path, old)[0] == "not measured"
    mismatched = ("Summary: saasmon's DB time per hour is 0.412x, 0.398x of interval-mode "
                  "query-exporter's in 3 runs (worst 0.412x).")
    assert _verdict(targets16, tmp_path, mismatched) == ("not measured", "2 ratios for 3 runs")
