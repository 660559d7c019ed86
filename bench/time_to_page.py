"""Time to page: every fault drill, from the fault in place to the first notification at a
stand-in receiver, against the issue's limit (scaled `for` + scrape interval + evaluation
interval + group_wait). A benchmark, not a test: it reports, it does not fail.

    .venv/bin/python bench/time_to_page.py [--scale 1/60] [-k NAME] [--out bench/TIME_TO_PAGE.md]

Runs the drill stack of devstack/drills (real PostgreSQL + standby, Redis, the reference app,
every exporter, Prometheus, Alertmanager with the shipped routing, stand-in receivers) and
the drills of devstack/drills/suite.py, scheduled as the tests do.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from devstack.drills.harness import DrillRun, Stack  # noqa: E402
from devstack.drills.runner import run_all  # noqa: E402
from devstack.drills.suite import DRILLS  # noqa: E402

SLACK = 2.0  # the target: within the limit plus 2 s


def parse_scale(text: str) -> float:
    num, _, den = text.partition("/")
    value = float(num) / float(den) if den else float(num)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError("must be in (0, 1], e.g. 1/60")
    return value


def rows(stack: Stack, runs: list[DrillRun]) -> list[list[str]]:
    by_name = {d.name: d for d in DRILLS}
    out = []
    for run in runs:
        drill = by_name[run.name]
        status = "passed" if run.error is None else f"FAILED: {str(run.error).splitlines()[0][:80]}"
        if not drill.expect:
            out.append([run.name, "(no page expected)", "-", "-", "-", "-", status])
        for exp in drill.expect:
            limit = stack.page_limit(exp)
            first = run.first.get(exp.key)
            measured = first.at - run.injected if first else None
            resolved = run.resolved.get(exp.key)
            out.append([
                run.name, f"{exp.alertname} ({exp.severity}{', ' + exp.guide if exp.guide else ''})",
                f"{limit:.1f}",
                f"{measured:.1f}" if measured is not None else "-",
                ("yes" if measured <= limit + SLACK else "NO") if measured is not None else "-",
                f"{resolved.at - run.removed:.1f}" if resolved else "-",
                status])
    return out


def table(stack: Stack, runs: list[DrillRun]) -> str:
    head = ["drill", "alert (severity)", "limit s", "measured s", "within limit + 2 s",
            "resolved s after removal", "result"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(stack, runs)]
    return "\n".join(lines)


def scale_text(scale: float) -> str:
    inverse = 1 / scale
    return f"1/{round(inverse)}" if abs(inverse - round(inverse)) < 1e-6 else f"{scale:.4g}"


def notes(runs: list[DrillRun]) -> str:
    by_name = {d.name: d for d in DRILLS}
    found = [f"- {run.name}: {by_name[run.name].note}" for run in runs if by_name[run.name].note]
    found += [f"- {run.name} saw: {'; '.join(run.notes)}" for run in runs if run.notes]
    return "\nNotes:\n\n" + "\n".join(found) + "\n" if found else ""


def report(stack: Stack, runs: list[DrillRun], wall: float) -> str:
    return f"""# Time to page

`make bench-drills` (bench/time_to_page.py), {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs,
{platform.python_implementation()} {platform.python_version()}. Time scale {scale_text(stack.scale)}
(one real minute = {60 * stack.scale:g} s): every `for`, rule window and Alertmanager timer is
scaled by it; scrape and evaluation interval {stack.scrape_interval:g} s. {len(runs)} drills,
{wall:.0f} s including the stack's start.

- **measured**: the fault in place (the drill's inject returned) to the first notification
  of that alert at any of its stand-in receivers.
- **limit**: the alert's scaled `for` + scrape interval + evaluation interval + the scaled
  `group_wait` of its route (the fastest one when it reaches several). The target is the limit
  plus 2 s. What the limit leaves out: the exporter's own collection interval (1 s), a
  recording rule evaluated before the alert reads it (one more evaluation), and a rate
  window filling with the fault (a ratio over a 5 s window reaches a level just above the
  injected one only when most of the window holds the fault: the error-rate and latency
  rows). Alertmanager flushes a new group at once when the alert's
  start (pending since `for` ago) is older than `group_wait`, so group_wait rarely adds.
- **resolved**: the fault removed to the last receiver's resolution; Alertmanager sends it
  at the group's next `group_interval` tick (15 min scaled), so it is not a latency figure.

{table(stack, runs)}
{notes(runs)}"""


async def main_async(stack: Stack, selected: list[str]) -> list[DrillRun]:
    runs: list[DrillRun] = []
    await run_all(stack, [d for d in DRILLS if d.name in selected], runs.append)
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scale", type=parse_scale, default=None,
                        help="time scale, e.g. 1/60 (default: the harness's)")
    parser.add_argument("-k", dest="only", default="",
                        help="only drills whose name contains one of these (comma-separated)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "TIME_TO_PAGE.md")
    args = parser.parse_args(argv)
    # aiosmtpd warns on every AUTH (its own deprecated attribute): not ours to act on.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    parts = args.only.split(",")
    selected = [d.name for d in DRILLS if any(p in d.name for p in parts)]
    started = time.monotonic()
    stack = Stack.start(args.scale)
    try:
        runs = asyncio.run(main_async(stack, selected))
        text = report(stack, runs, time.monotonic() - started)
    finally:
        stack.stop()
    print(text)
    args.out.write_text(text)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
