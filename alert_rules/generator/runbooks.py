"""docs/runbooks/<Alert>.md: meaning, first checks and every guide level behind the alert."""

from __future__ import annotations

from typing import Any

from alert_rules.generator.catalog import Catalog

SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}




def _fmt(value: float) -> str:
    return format(value, ".12g")


def _selector(desc: dict[str, Any]) -> str:
    """The expanded selector of a direct signal's series, from its rule description."""
    inner = ",".join(f'{m["label"]}{m["op"]}"{m["value"]}"' for m in desc["matchers"])
    return f"{desc['series'] or ''}{{{inner}}}"


def _burn_tiers(descs: list[dict[str, Any]], objective: float) -> str:
    """The burn-rate tiers of one objective in words, from the mixin's rule descriptions."""
    budget = 1 - objective
    return " ".join(
        f"{d['severity'].capitalize()}: {_fmt(round(d['threshold'] / budget, 6))}x over "
        f"{d['long']['window']} and {d['short']['window']}, for {d['for']}." for d in descs)


def runbooks(catalog: Catalog, rendered: dict[str, Any]) -> dict[str, str]:
    pages: dict[str, str] = {}
    descriptions = rendered["descriptions"]
    recorded = {r["record"]: r["expr"] for g in rendered["rules"]["groups"] for r in g["rules"]}
    # The guide's escalation time of each rule's first entry (e.g. a P1 answered within 1 h).
    by_id = {e.id: e for g in catalog.guides for e in g.entries}
    escalations = {r.id: by_id[r.entries[0]].escalation or "" for r in catalog.rules}
    for name, signal in sorted(catalog.signals.items(), key=lambda kv: kv[1].alert):
        rules = sorted((r for r in catalog.rules if r.signal == name),
                       key=lambda r: (SEVERITY_ORDER[r.severity], r.guide))
        if not rules:
            continue
        lines = [f"# {signal.alert}", "", f"**Area:** {signal.area}. {signal.summary}", "",
                 "## Meaning", "", signal.meaning, "", "## Levels", "",
                 "| severity | threshold | for | guide level | escalation | source |",
                 "|---|---|---|---|---|---|"]
        for r in rules:
            match = "".join(f" ({k}={v})" for k, v in r.match.items())
            level = r.guide_level + (f", escalated after {r.escalation}" if r.escalation_of else "")
            lines.append(f"| {r.severity} | {r.comparator} {_fmt(r.value)} {signal.unit}{match} "
                         f"| {r.for_} | {level} | {escalations.get(r.id, '')} | {r.source} |")
        lines += ["", "Every level fires under the same alert name; Alertmanager's inhibition "
                  "keeps only the highest firing severity of each guide (a level of one "
                  "guide never mutes another guide's). A level several guides state is one "
                  "alert citing them all.", "", "## First checks", ""]
        lines += [f"1. {c}" for c in signal.checks]
        actions = sorted({r.action for r in rules if r.action})
        if actions:
            lines += ["", "## What the guides prescribe", ""] + [f"- {a}" for a in actions]
        # Expanded, as Prometheus runs it: a recording rule's expression or the selector.
        desc = next(d for d in descriptions if d.get("signal") == name)
        lines += ["", "## Signal", "", "```promql", _selector(desc) if signal.record is None
                  else f"{signal.record}  # recording rule:\n{recorded[signal.record].strip()}",
                  "```", ""]
        pages[f"{signal.alert}.md"] = "\n".join(lines)
    for name, slo in catalog.slos.items():
        pages[f"{slo.alert}.md"] = "\n".join([
            f"# {slo.alert}", "",
            f"**Area:** {slo.area}. The {name} availability objective "
            f"({_fmt(slo.objective * 100)}%) is losing its error budget too fast.", "",
            "## Meaning", "",
            "Multiwindow burn-rate alert: the error ratio over a long and a short window both "
            "exceed a multiple of the budget (1 - objective), with at least "
            f"{_fmt(slo.min_errors)} bad events in the long window. "
            + _burn_tiers([d for d in descriptions if d.get("slo") == name], slo.objective)
            + " The `long_window` label says which pair fired.", "",
            "## First checks", "",
            "1. Which errors consume the budget - the SLO dashboard and the underlying error alerts.",
            "2. A recent deploy? Roll back if the burn started with it.",
            "3. For a ticket-level burn: plan the fix within the budget's remaining days.", "",
            "## Sources", ""] + [f"- {s}" for s in slo.sources] + [""])
    pages["Watchdog.md"] = "\n".join([
        "# Watchdog", "", "**Area:** meta. Always firing, by design.", "", "## Meaning", "",
        "Proves the pipeline Prometheus -> Alertmanager -> receivers works. It is routed only "
        "to the heartbeat receiver (a dead man's switch), never to people. If the heartbeat "
        "service stops receiving it, alerting itself is broken.", "", "## First checks", "",
        "1. Prometheus up and evaluating rules (`prometheus_rule_evaluation_failures_total`).",
        "2. Alertmanager up, and its notifications to the heartbeat receiver succeeding "
        "(`alertmanager_notifications_failed_total`).", ""])
    return pages
