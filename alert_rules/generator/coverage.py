"""docs/catalog.md: what each guide contributed, how it is encoded, and what is not."""

from __future__ import annotations

from alert_rules.generator.catalog import BUNDLE, Catalog


def coverage(catalog: Catalog) -> str:
    lines = ["# Threshold catalog coverage", "",
             "Generated from `alert_rules/catalog/` by `make rules`. Every number of the five "
             "operations guides (and of web.dev, the reference for what they predate: INP) "
             "is in exactly one of three states: an alert (its signal and "
             "levels), encoded by another artefact (Alertmanager timing, a dashboard panel, an "
             "exporter default), or listed as not encodable with the reason.", "",
             "| guide | entries | alerting | encoded elsewhere | not encodable | alert rules |",
             "|---|---|---|---|---|---|"]
    for guide in catalog.guides:
        alerting = sum(1 for e in guide.entries if e.signal)
        elsewhere = sum(1 for e in guide.entries if e.encoded_by)
        rules = sum(1 for r in catalog.rules if guide.guide in r.guides)
        lines.append(f"| {guide.guide} | {len(guide.entries)} | {alerting} | {elsewhere} "
                     f"| {len(guide.unencodable)} | {rules} |")
    for guide in catalog.guides:
        if guide.guide == BUNDLE:
            continue
        lines += ["", f"## {guide.guide}", "", "### Alerting", "",
                  "| entry | section | signal | levels |", "|---|---|---|---|"]
        for e in guide.entries:
            if e.signal:
                levels = ", ".join(f"{e.comparator} {lv.value:g} {lv.severity} ({lv.guide_level})"
                                   for lv in e.levels)
                alert = catalog.signals[e.signal].alert
                lines.append(f"| {e.id} | {e.section} | {alert} | {levels} |")
        lines += ["", "### Encoded elsewhere", "", "| entry | section | how |", "|---|---|---|"]
        lines += [f"| {e.id} | {e.section} | {e.encoded_by} |" for e in guide.entries if e.encoded_by]
        lines += ["", "### Not encodable", "", "| section | what | why |", "|---|---|---|"]
        lines += [f"| {u.section} | {u.text} | {u.reason} |" for u in guide.unencodable]
    return "\n".join(line.replace("\n", " ") for line in lines) + "\n"
