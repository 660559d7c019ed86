"""Run drills: one drill's inject -> deliveries -> remove -> resolutions, and many drills
at once where they cannot interfere.

Scheduling: exclusive drills at the head of the list run first, alone (the healthy-stack
drill must see a stack nobody touches); then every other non-exclusive drill starts, drills
that share a resource (an expected alertname always is one) one after another; the remaining
exclusive drills run last, alone, in list order (PostgreSQL down disturbs everything).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Sequence

from tests.system.drills.harness import Drill, DrillRun, Expected, Stack
from tests.system.drills.notifications import Delivery

MAX_PARALLEL = 6


RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1, "none": 0}


def check_exact(stack: Stack, exp: Expected, seen: Sequence[Delivery]) -> list[str]:
    """Problems with the deliveries of `exp.alertname` during a drill: the expected severity
    at a receiver other than the expected ones, a higher severity, a lower one still
    notified after the expected one fired (inhibition failed), a text without the expected
    words.

    A rising fault climbs a severity ladder: its lower level may fire, and be notified,
    before the value reaches the expected level; that notification and its later
    resolution are how Alertmanager is meant to behave, not a leak. Levels that fire in the
    same evaluation reach Alertmanager together and its inhibitor learns of the higher one
    asynchronously: a lower notification up to one evaluation interval after the higher one
    is that race. Whether the ladder inhibits is checked directly (check_inhibited)."""
    assert stack.receiver_map is not None
    mine = [d for d in seen if d.alertname == exp.alertname]
    first = min((d.at for d in mine if d.severity == exp.severity and d.status == "firing"),
                default=math.inf)
    problems = []
    extra = {d.receiver for d in mine if d.severity == exp.severity} - exp.receivers
    if extra:
        problems.append(f"{exp.alertname} ({exp.severity}) also reached {sorted(extra)}")
    for d in mine:
        if d.severity == exp.severity:
            continue
        if RANK.get(d.severity, 0) > RANK.get(exp.severity, 0):
            problems.append(f"{exp.alertname} reached {d.receiver} as {d.severity} "
                            f"({d.status}), above the expected {exp.severity}")
        elif d.status == "firing" and d.at >= first + stack.scrape_interval:
            problems.append(f"{exp.alertname} reached {d.receiver} as {d.severity} after "
                            f"the {exp.severity} level fired: the ladder did not inhibit it")
    # SMS carries severity, name and a cut summary; the ping nothing: no text to check.
    short = {stack.receiver_map.sms, stack.receiver_map.heartbeat}
    for d in mine:
        if d.status != "firing" or d.receiver in short or d.severity != exp.severity:
            continue
        missing = [t for t in exp.text if t not in d.text]
        if missing:
            problems.append(f"{exp.alertname} at {d.receiver} lacks {missing}: {d.text[:300]!r}")
    return problems


INHIBIT_EQUAL = ("job", "instance", "target")  # alertmanager.yml's ladder rules, with alertname


async def check_inhibited(stack: Stack, exp: Expected) -> None:
    """While the expected level fires, Alertmanager marks every lower level of the same
    alert on the same job, instance and target as inhibited."""
    alerts = await stack.alerts(alertname=exp.alertname)
    top = [a["labels"] for a in alerts
           if a["labels"].get("severity") == exp.severity and a["status"]["state"] == "active"]
    for alert in alerts:
        labels = alert["labels"]
        if RANK.get(labels.get("severity", ""), 0) >= RANK.get(exp.severity, 0):
            continue
        if any(all(labels.get(k) == t.get(k) for k in INHIBIT_EQUAL) for t in top):
            assert alert["status"]["inhibitedBy"], (
                f"{exp.alertname} {labels.get('severity')} not inhibited while "
                f"{exp.severity} fires: {alert['status']}")


def ladder_notes(exp: Expected, seen: Sequence[Delivery]) -> list[str]:
    """Lower levels of the ladder that were notified on the way up (for the report)."""
    lower = sorted({(d.severity, d.receiver) for d in seen
                    if d.alertname == exp.alertname and d.severity != exp.severity
                    and d.status == "firing"})
    return [f"{exp.alertname} {sev} first -> {rcv}" for sev, rcv in lower]


def budget(stack: Stack, drill: Drill) -> float:
    """Longest a drill may take before it is stopped as hung (its remove still runs)."""
    quiet = stack.resolve_limit() + 60
    pages = max((3 * stack.page_limit(e) + 30 for e in drill.expect), default=0.0)
    return quiet + pages + 2 * (stack.resolve_limit() + 30) + 180


async def run_drill(stack: Stack, drill: Drill) -> DrillRun:
    """Wait until the drill's alerts are quiet, inject, wait for every expected page,
    remove, wait for the resolutions, then check that each alert reached exactly its
    receivers with its severity and text."""
    run = DrillRun(drill.name)
    try:
        async with asyncio.timeout(budget(stack, drill)):
            await _phases(stack, drill, run)
    except Exception as exc:
        run.error = exc
    run.finished = time.time()
    return run


async def _phases(stack: Stack, drill: Drill, run: DrillRun) -> None:
    for exp in drill.expect:
        if exp.resolves:
            await stack.wait_quiet(exp.alertname, labels=stack.labels_of(exp))
    run.started = time.time()
    try:
        await drill.inject(stack)
        run.injected = time.time()
        got = await asyncio.gather(*(stack.wait_delivery(e, run.started) for e in drill.expect))
        for exp, per_receiver in zip(drill.expect, got, strict=True):
            run.first[exp.alertname] = min(per_receiver.values(), key=lambda d: d.at)
            await check_inhibited(stack, exp)
        if drill.check is not None:
            await drill.check(stack, run)
    finally:
        run.removed = time.time()
        await drill.remove(stack)
    for exp in drill.expect:
        if exp.resolves:
            # A self-clearing fault (a deadlock) may resolve before remove().
            done = await stack.wait_resolved(exp, run.first[exp.alertname].at)
            run.resolved[exp.alertname] = max(done.values(), key=lambda d: d.at)
    seen = stack.deliveries(run.started)
    run.notes += [n for exp in drill.expect for n in ladder_notes(exp, seen)]
    problems = [p for exp in drill.expect for p in check_exact(stack, exp, seen)]
    assert not problems, f"drill {drill.name}:\n  " + "\n  ".join(problems)


def schedule(drills: Sequence[Drill]) -> tuple[list[Drill], list[Drill], list[Drill]]:
    """(alone first, together, alone last)."""
    head: list[Drill] = []
    for drill in drills:
        if not drill.exclusive:
            break
        head.append(drill)
    rest = drills[len(head):]
    return head, [d for d in rest if not d.exclusive], [d for d in rest if d.exclusive]


async def run_all(stack: Stack, drills: Sequence[Drill], done: Callable[[DrillRun], None],
                  max_parallel: int = MAX_PARALLEL) -> None:
    names = [d.name for d in drills]
    duplicates = {n for n in names if names.count(n) > 1}
    assert not duplicates, f"drill names must be unique: {sorted(duplicates)}"
    head, together, tail = schedule(drills)
    for drill in head:
        done(await run_drill(stack, drill))
    locks: dict[str, asyncio.Lock] = {}
    slots = asyncio.Semaphore(max_parallel)

    async def one(drill: Drill) -> None:
        keys = sorted(drill.resources | {e.alertname for e in drill.expect})
        async with contextlib.AsyncExitStack() as held:
            for key in keys:  # sorted: two drills never wait for each other's locks
                await held.enter_async_context(locks.setdefault(key, asyncio.Lock()))
            async with slots:
                done(await run_drill(stack, drill))

    await asyncio.gather(*(one(d) for d in together))
    for drill in tail:
        done(await run_drill(stack, drill))
