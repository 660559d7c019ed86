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

from devstack.drills.harness import Drill, DrillRun, Expected, Stack
from devstack.drills.notifications import Delivery

MAX_PARALLEL = 6


RANK = {"critical": 4, "high": 3, "medium": 2, "low": 1, "none": 0}


def check_exact(stack: Stack, drill: Drill, run: DrillRun,
                seen: Sequence[Delivery]) -> list[str]:
    """Problems with the notifications of the drill's alerts: one that no expectation of
    the drill covers (a severity, or another guide's level, nobody expected), an expected
    one at a receiver other than its own, a lower level still notified after a higher level
    of the same guide fired (inhibition failed), a text without the expected words.

    A rising fault climbs a severity ladder: its lower level may fire, and be notified,
    before the value reaches the expected level; that notification and its later
    resolution are how Alertmanager is meant to behave, not a leak. Levels that fire in the
    same evaluation reach Alertmanager together and its inhibitor learns of the higher one
    asynchronously: a lower notification up to one evaluation interval after the higher one
    is that race. Whether the ladder inhibits is checked directly (check_inhibited).

    Ladders inhibit within one guide (issue 13 §2 p): a lower level is "the same ladder"
    when every guide its notification cites is one of the higher expectation's guides.
    Another guide's level stays notified, and the drill must expect it by name."""
    assert stack.receiver_map is not None
    names = {e.alertname for e in drill.expect}
    mine = [d for d in seen if d.alertname in names]
    problems = []
    for d in mine:
        covering = [e for e in drill.expect if e.covers(d)]
        if not covering:
            below = [e for e in drill.expect if e.alertname == d.alertname
                     and RANK.get(e.severity, 0) > RANK.get(d.severity, 0)
                     and d.guides and d.guides <= e.guides]
            if not below:
                problems.append(f"{d.alertname} reached {d.receiver} as {d.severity} "
                                f"({d.status}, {sorted(d.guides) or 'no guide cited'}): "
                                "not expected by the drill")
            continue
        allowed = frozenset().union(*(e.receivers for e in covering))
        if d.receiver not in allowed:
            problems.append(f"{d.alertname} ({d.severity}) also reached {d.receiver}")
    # The ladder: lower levels of an expectation's own guides, after it fired.
    for exp in drill.expect:
        first = run.first.get(exp.key)
        if first is None:
            continue
        # Once the fault is removed the ratio falls through the lower levels: a lower level
        # may fire after the higher one resolved. Alertmanager drops the inhibition when the
        # higher level resolves, and tells its receivers up to one group interval later.
        resolved = run.resolved.get(exp.key)
        until = math.inf if resolved is None else resolved.at - GROUP_INTERVAL * stack.scale
        for d in mine:
            if (d.alertname == exp.alertname and d.status == "firing"
                    and RANK.get(d.severity, 0) < RANK.get(exp.severity, 0)
                    and d.guides and exp.guides and d.guides <= exp.guides
                    and first.at + stack.scrape_interval <= d.at < until):
                problems.append(f"{exp.alertname} reached {d.receiver} as {d.severity} after "
                                f"the {exp.severity} level fired: the ladder did not inhibit it")
    # SMS carries severity, name and a cut summary; the ping nothing: no text to check.
    short = {stack.receiver_map.sms, stack.receiver_map.heartbeat}
    for exp in drill.expect:
        for d in mine:
            if d.status != "firing" or d.receiver in short or not exp.covers(d):
                continue
            missing = [t for t in exp.text if t not in d.text]
            if missing:
                problems.append(f"{exp.alertname} at {d.receiver} lacks {missing}: "
                                f"{d.text[:300]!r}")
    return problems


GROUP_INTERVAL = 900.0  # seconds: alertmanager.yml's group_interval (15m), before time scaling
INHIBIT_EQUAL = ("job", "instance", "target")  # alertmanager.yml's ladder rules, with alertname


def same_ladder(lower: str, higher: str) -> bool:
    """alertmanager.yml's ladder rules by `guide` label: the same guide (or list of guides),
    or a single guide that the higher level's list names."""
    return lower == higher or ("," not in lower and lower in higher.split(","))


async def check_inhibited(stack: Stack, exp: Expected) -> None:
    """While the expected level fires, Alertmanager marks every lower level of the same
    alert, guide's ladder, job, instance and target as inhibited."""
    alerts = await stack.alerts(alertname=exp.alertname)
    top = [a["labels"] for a in alerts
           if a["labels"].get("severity") == exp.severity and a["status"]["state"] == "active"
           and (exp.guide is None or exp.guide in a["labels"].get("guide", "").split(","))]
    for alert in alerts:
        labels = alert["labels"]
        if RANK.get(labels.get("severity", ""), 0) >= RANK.get(exp.severity, 0):
            continue
        if any(all(labels.get(k) == t.get(k) for k in INHIBIT_EQUAL)
               and same_ladder(labels.get("guide", ""), t.get("guide", "")) for t in top):
            assert alert["status"]["inhibitedBy"], (
                f"{exp.alertname} {labels.get('severity')} ({labels.get('guide')}) not "
                f"inhibited while {exp.severity} fires: {alert['status']}")


def ladder_notes(exp: Expected, seen: Sequence[Delivery]) -> list[str]:
    """Lower levels of the ladder that were notified on the way up (for the report)."""
    lower = sorted({(d.severity, d.receiver) for d in seen
                    if d.alertname == exp.alertname and d.status == "firing"
                    and RANK.get(d.severity, 0) < RANK.get(exp.severity, 0)
                    and d.guides and exp.guides and d.guides <= exp.guides})
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
            run.first[exp.key] = min(per_receiver.values(), key=lambda d: d.at)
            await check_inhibited(stack, exp)
        if drill.check is not None:
            await drill.check(stack, run)
    finally:
        run.removed = time.time()
        await drill.remove(stack)
    for exp in drill.expect:
        if exp.resolves:
            # A self-clearing fault (a deadlock) may resolve before remove().
            done = await stack.wait_resolved(exp, run.first[exp.key].at)
            run.resolved[exp.key] = max(done.values(), key=lambda d: d.at)
    seen = stack.deliveries(run.started)
    run.notes += [n for exp in drill.expect for n in ladder_notes(exp, seen)]
    problems = check_exact(stack, drill, run, seen)
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
