"""The threshold catalog: load and validate the YAML, merge levels into alert rules.

The YAML under alert_rules/catalog/ is the single source of every threshold. This module
checks it (unknown keys, units, directions, durations, signal references) and turns each
encodable level into one rule description; the Jsonnet mixin renders those into PromQL.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from alert_rules.generator.durations import parameters, template

CATALOG_DIR = Path(__file__).resolve().parent.parent / "catalog"
GUIDES = ("nova-crm", "estimate-library", "dirt-free-crm", "tpt-erp", "saas-ops-module")
BUNDLE = "saasmon"  # the bundle's own alerts (exporter and pipeline health), not a guide's
# Published references beside the guides, for what the guides do not state (INP, which they
# predate): cited by name and section like a guide, one catalog file each.
REFERENCES = ("web.dev",)
SOURCES = (*GUIDES, *REFERENCES, BUNDLE)  # every catalog file, in `guide` label order
AREAS = ("api", "database", "redis", "storage", "frontend", "realtime", "host", "cron",
         "integrations", "business", "ai", "support", "health", "incident", "exporter")
SEVERITIES = ("critical", "high", "medium", "low")
DURATION = re.compile(r"^\d+(s|m|h|d)$")
SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
Comparator = Literal[">", "<", ">=", "<="]
# What a signal measures, which decides the data shapes its alert is judged on
# (tests/integration/test_alert_shapes.py): a gauge level, a 0/1 state, a pass/fail probe, a ratio of
# counter rates, a counter rate or increase, a histogram quantile, a comparison with last
# week, the age of a timestamp.
KINDS = ("level", "state", "probe", "ratio", "rate", "quantile", "baseline", "staleness")
# A signal read straight from an exported metric: `name{%(someSelector)s[,label op "v"]}`.
DIRECT = re.compile(r'^\s*(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)?\{(?P<matchers>[^{}]*)\}\s*$')
MATCHER = re.compile(r'^(?P<label>[a-zA-Z_]+)(?P<op>=~|!=|!~|=)"(?P<value>[^"]*)"$')
SELECTOR_KEY = re.compile(r'^%\((?P<key>[a-zA-Z]+Selector)\)s$')


class CatalogError(Exception):
    """The catalog is inconsistent; the message names the file, entry and problem."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: str | None) -> str | None:
    if value is not None and not DURATION.match(value):
        raise ValueError(f"{value!r} is not a duration like 30s, 5m, 1h or 1d")
    return value


class Level(Strict):
    value: float
    guide_level: str
    severity: Literal["critical", "high", "medium", "low"]
    for_: str | None = Field(default=None, alias="for")

    _check_for = field_validator("for_")(_duration)


class Entry(Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    area: Literal[AREAS]  # type: ignore[valid-type]
    section: str = Field(min_length=1)
    measure: str = Field(min_length=1)
    metric_hint: str = ""
    unit: str = Field(min_length=1)
    comparator: Comparator | None = None
    target: float | None = None
    levels: list[Level] = []
    escalation: str | None = None
    # The escalation window is an escalation (not a cooldown or response time): an alert
    # still firing that long after it fired is raised again one level up.
    escalate: bool = False
    notes: str = ""
    # How the entry is encoded: `signal` (+ `match` label matchers) makes alert rules;
    # `encoded_by` names another artefact (Alertmanager timing, a dashboard panel).
    signal: str | None = None
    match: dict[str, str] = {}
    action: str = ""  # the guide's prescribed action, quoted in the alert (e.g. roll back)
    encoded_by: str | None = None
    # A dashboard-only target (no alert level) is drawn on the panel of this signal.
    target_signal: str | None = None

    _check_escalation = field_validator("escalation")(_duration)

    @model_validator(mode="after")
    def _encoded(self) -> Entry:
        if self.signal and self.encoded_by:
            raise ValueError("give either signal or encoded_by, not both")
        if self.signal and (self.comparator is None or not self.levels):
            raise ValueError("an entry with a signal needs a comparator and levels")
        if self.escalate and not (self.signal and self.escalation):
            raise ValueError("escalate needs a signal and an escalation window")
        if self.target_signal and (self.target is None or self.signal
                                   or not (self.encoded_by or "").startswith("dashboard")):
            raise ValueError("target_signal needs a target and encoded_by: \"dashboard: ...\"")
        return self


class Unencodable(Strict):
    section: str
    text: str
    reason: str


class GuideCatalog(Strict):
    guide: Literal[SOURCES]  # type: ignore[valid-type]
    entries: list[Entry]
    unencodable: list[Unencodable] = []


class Guard(Strict):
    """A recorded series that must also pass the rule's threshold (compared with
    `comparator`) for the alert to fire: the condition that makes the threshold meaningful."""

    record: str = Field(pattern=r"^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$")
    expr: str
    comparator: Comparator
    # Compared with this instead of the rule's threshold (ours, said where it is set).
    value: float | None = None


class Signal(Strict):
    alert: str = Field(pattern=r"^[A-Z][A-Za-z0-9]+$")
    record: str | None = Field(default=None, pattern=r"^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$")
    expr: str
    labels: list[str]
    bad: Literal["above", "below"]
    unit: str
    kind: Literal[KINDS]  # type: ignore[valid-type]
    # The range of the rates/increases behind a recorded signal (its longest, if several).
    window: str | None = None
    guard: Guard | None = None
    for_: str = Field(alias="for")
    area: Literal[AREAS]  # type: ignore[valid-type]
    summary: str
    meaning: str
    checks: list[str]
    dashboard: str | None = None

    _check_for = field_validator("for_")(_duration)
    _check_window = field_validator("window")(_duration)

    @model_validator(mode="after")
    def _shape(self) -> Signal:
        if self.record is None:
            direct(self.expr)  # raises on anything but one selector
        if self.window is not None and f"[{self.window}]" not in self.expr:
            raise ValueError(f"window {self.window} is not a range of the expression")
        return self


class Selector(BaseModel):
    """A direct signal's series: metric name, the mixin selector it uses, fixed matchers."""

    metric: str | None  # None: the name is matched by a `__name__` matcher
    selector: str  # key of the mixin's _config.selectors (appSelector, ...)
    matchers: list[dict[str, str]]  # [{label, op, value}] besides the selector's


def direct(expr: str) -> Selector:
    """Structure of a direct signal's expression template (the YAML source, not rendered
    PromQL): the mixin and the tests read these fields instead of the string."""
    found = DIRECT.match(expr)
    if found is None:
        raise ValueError("a signal without `record` must be one selector: name{%(xSelector)s,...}")
    selector, matchers = None, []
    for part in (p.strip() for p in found.group("matchers").split(",")):
        key = SELECTOR_KEY.match(part)
        matcher = MATCHER.match(part)
        if key:
            selector = key.group("key")
        elif matcher:
            matchers.append(matcher.groupdict())
        else:
            raise ValueError(f"cannot read matcher {part!r}")
    if selector is None:
        raise ValueError("a direct signal names its job through a %(...Selector)s")
    return Selector(metric=found.group("name"), selector=selector, matchers=matchers)


class Slo(Strict):
    alert: str = Field(pattern=r"^[A-Z][A-Za-z0-9]+$")
    objective: float = Field(gt=0, lt=1)
    area: Literal[AREAS]  # type: ignore[valid-type]
    sources: list[str] = Field(min_length=1)
    labels: list[str]
    errors: str
    events: str
    min_errors: float = Field(default=1, ge=0)
    # One per burn-rate tier of the mixin's burnRateWindows; None: the tier's default.
    severities: list[Literal["critical", "high", "medium", "low"]] | None = None


class Rule(BaseModel):
    """One alert rule: a threshold level of one or more catalog entries, of one or more guides."""

    id: str
    signal: str
    comparator: str
    value: float
    severity: str
    for_: str = Field(serialization_alias="for")
    guide: str  # the `guide` label: every guide stating this level, comma-separated
    guides: list[str]
    guide_level: str
    match: dict[str, str]
    measure: str
    source: str
    action: str
    entries: list[str]
    target: float | None = None  # the guide's good value next to this level, if it states one
    # A guide's escalation window for this level (entries with `escalate`): the rule has an
    # escalation twin, the same condition held `for` + this window one level up.
    escalation: str | None = None
    # On a twin: the id of the rule it escalates and that rule's severity.
    escalation_of: str | None = None
    escalated_from: str | None = None


class Target(BaseModel):
    """A guide's target with no alert level, drawn on its signal's dashboard panel."""

    id: str
    signal: str
    value: float
    unit: str
    source: str
    measure: str


class Catalog(BaseModel):
    guides: list[GuideCatalog]
    signals: dict[str, Signal]
    slos: dict[str, Slo]
    rules: list[Rule]
    targets: list[Target] = []


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"{path.name}: {exc}") from exc


def _validated(model: type[BaseModel], data: Any, where: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise CatalogError(f"{where}: {loc}: {err['msg']}") from exc


def _direction(comparator: str) -> str:
    return "above" if comparator in (">", ">=") else "below"


def _seconds(duration: str) -> int:
    return int(duration[:-1]) * SECONDS[duration[-1]]


def _as_duration(seconds: int) -> str:
    """Seconds as the largest whole unit (900 -> 15m): the form the catalog writes."""
    for unit in ("d", "h", "m"):
        if seconds % SECONDS[unit] == 0:
            return f"{seconds // SECONDS[unit]}{unit}"
    return f"{seconds}s"


def merge_rules(guides: list[GuideCatalog], signals: dict[str, Signal]) -> list[Rule]:
    """One rule per (signal, match, comparator, value, severity), then escalation twins.

    The same threshold at the same severity is one alert however many sections or guides
    state it: its `guide` label lists every guide (catalog order, comma-separated), the
    description cites every source, and it holds for the shortest `for` any of them asks
    (a guide that states none gets the signal's default, longer than none stated here).
    """
    merged: dict[tuple[Any, ...], Rule] = {}
    for catalog in guides:
        for entry in catalog.entries:
            if entry.signal is None:
                continue
            signal = signals.get(entry.signal)
            where = f"{catalog.guide}.yaml: {entry.id}"
            if signal is None:
                raise CatalogError(f"{where}: unknown signal {entry.signal!r}")
            assert entry.comparator is not None
            if _direction(entry.comparator) != signal.bad:
                raise CatalogError(f"{where}: comparator {entry.comparator} disagrees with "
                                   f"signal {entry.signal} (bad when {signal.bad})")
            escalation = entry.escalation if entry.escalate else None
            for index, level in enumerate(entry.levels):
                duration = level.for_ or signal.for_
                key = (entry.signal, tuple(sorted(entry.match.items())), entry.comparator,
                       level.value, level.severity)
                rule = merged.get(key)
                if rule is None:
                    merged[key] = Rule(
                        id=f"{entry.id}.{index}", signal=entry.signal,
                        comparator=entry.comparator, value=level.value,
                        severity=level.severity, for_=duration, guide=catalog.guide,
                        guides=[catalog.guide], guide_level=level.guide_level,
                        match=dict(entry.match), measure=entry.measure,
                        source=f"{catalog.guide} § {entry.section}", action=entry.action,
                        entries=[entry.id], target=entry.target, escalation=escalation)
                    continue
                rule.entries.append(entry.id)
                if catalog.guide not in rule.guides:
                    rule.guides.append(catalog.guide)
                    rule.guide = ",".join(rule.guides)
                    rule.guide_level += f"; {level.guide_level}"
                    rule.source += f"; {catalog.guide} § {entry.section}"
                elif entry.section not in rule.source:
                    rule.source += f"; {entry.section}"
                if _seconds(duration) < _seconds(rule.for_):
                    rule.for_ = duration
                if entry.action and entry.action not in rule.action:
                    rule.action = f"{rule.action} {entry.action}".strip()
                if rule.target is None:
                    rule.target = entry.target
                if escalation and (rule.escalation is None
                                   or _seconds(escalation) < _seconds(rule.escalation)):
                    rule.escalation = escalation  # the earliest any guide asks for
    out: list[Rule] = []
    for rule in merged.values():
        out.append(rule)
        if rule.escalation is not None:
            out.append(escalation_twin(rule))
    return out


def escalation_twin(rule: Rule) -> Rule:
    """The rule's condition held its `for` plus the escalation window, one severity up.

    A critical stays critical: its twin carries `escalated_from: critical`, which
    Alertmanager routes to the escalation receiver (the next person, not the same pager).
    The guide's words stay the rule's; the mixin adds the escalation to the label.
    """
    assert rule.escalation is not None
    rank = SEVERITIES.index(rule.severity)  # SEVERITIES runs from critical down
    return rule.model_copy(deep=True, update={
        "id": f"{rule.id}.escalated",
        "severity": SEVERITIES[max(rank - 1, 0)],
        "for_": _as_duration(_seconds(rule.for_) + _seconds(rule.escalation)),
        "escalation_of": rule.id,
        "escalated_from": rule.severity,
    })


def load_catalog(directory: Path = CATALOG_DIR) -> Catalog:
    guides = [
        _validated(GuideCatalog, _load_yaml(directory / f"{guide}.yaml"), f"{guide}.yaml")
        for guide in SOURCES
    ]
    signals: dict[str, Signal] = {}
    for path in sorted(directory.glob("signals*.yaml")):  # signals.yaml, signals-<area>.yaml
        for name, spec in (_load_yaml(path) or {}).items():
            if name in signals:
                raise CatalogError(f"{path.name}: {name}: signal defined twice")
            signals[name] = _validated(Signal, spec, f"{path.name}: {name}")
    raw_slos = _load_yaml(directory / "slos.yaml") or {}
    slos = {name: _validated(Slo, spec, f"slos.yaml: {name}") for name, spec in raw_slos.items()}
    ids = [e.id for g in guides for e in g.entries]
    if len(ids) != len(set(ids)):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise CatalogError(f"entry ids used twice: {', '.join(dup)}")
    records: dict[str, str] = {}
    for name, signal in signals.items():
        # Two signals may share a record only if they mean the same series; otherwise one
        # alert would read the other's jobs (a failed app probe firing the storage alert).
        pairs = [(signal.record, signal.expr)] + (
            [(signal.guard.record, signal.guard.expr)] if signal.guard else [])
        for record, expr in pairs:
            if record is not None and records.setdefault(record, expr) != expr:
                raise CatalogError(f"signals: {name}: record {record} means something else elsewhere")
    alerts: dict[str, str] = {}
    for name, signal in signals.items():
        other = alerts.setdefault(signal.alert, name)
        if other != name:
            raise CatalogError(f"signals.yaml: {name}: alert {signal.alert} is also {other}'s")
    return Catalog(guides=guides, signals=signals, slos=slos, rules=merge_rules(guides, signals),
                   targets=dashboard_targets(guides, signals))


def dashboard_targets(guides: list[GuideCatalog], signals: dict[str, Signal]) -> list[Target]:
    """Entries encoded as a dashboard target line on a signal's panel (no alert rule)."""
    out: list[Target] = []
    for catalog in guides:
        for entry in catalog.entries:
            if entry.target_signal is None:
                continue
            if entry.target_signal not in signals:
                raise CatalogError(f"{catalog.guide}.yaml: {entry.id}: unknown target_signal "
                                   f"{entry.target_signal!r}")
            assert entry.target is not None
            out.append(Target(id=entry.id, signal=entry.target_signal, value=entry.target,
                              unit=entry.unit, source=f"{catalog.guide} § {entry.section}",
                              measure=entry.measure))
    return out


def catalog_json(catalog: Catalog) -> dict[str, Any]:
    """What the mixin imports: signals, SLOs and merged rules (thresholds by rule id).

    PromQL goes in as mixin templates (durations.template): every window and offset is a
    parameter the mixin's timeScale scales; `durations` lists the parameters used."""

    def signal(s: Signal) -> dict[str, Any]:
        out = {**s.model_dump(by_alias=True, exclude_none=True), "expr": template(s.expr)}
        if s.guard:
            out["guard"] = {**out["guard"], "expr": template(s.guard.expr)}
        return out | ({} if s.record else {"series": direct(s.expr).model_dump()})

    signals = {name: signal(s) for name, s in catalog.signals.items()}
    slos = {name: {**s.model_dump(), "errors": template(s.errors), "events": template(s.events),
                   "guide": s.sources[0].split(" § ")[0]}
            for name, s in catalog.slos.items()}
    exprs = [s["expr"] for s in signals.values()] + [
        s["guard"]["expr"] for s in signals.values() if "guard" in s] + [
        e for s in slos.values() for e in (s["errors"], s["events"])]
    return {
        "signals": signals,
        "slos": slos,
        "rules": [r.model_dump(by_alias=True) for r in catalog.rules],
        "targets": [t.model_dump() for t in catalog.targets],
        "durations": parameters(exprs),
    }
