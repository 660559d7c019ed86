"""KPIs of the default business pack, computed in plain Python from table rows.

Written from the definitions in docs/exporters/business.md, not from the pack's SQL, so a
test comparing the two checks the SQL against the definition.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from refapp.datagen import TABLES, Dataset

DAY = 86400.0
Rows = Mapping[str, Sequence[Mapping[str, Any]]]
Key = tuple[str, tuple[tuple[str, str], ...]]


def rows_of(data: Dataset) -> dict[str, list[dict[str, Any]]]:
    """Generated tables as lists of column → value dicts (the shape a DB fetch gives)."""
    return {name: [dict(zip(data[name].columns, row, strict=True)) for row in data[name].rows]
            for name in TABLES}


def _ts(value: Any) -> float | None:
    if value is None:
        return None
    assert isinstance(value, dt.datetime)
    return value.timestamp()


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


def _mean(values: Iterable[float]) -> float | None:
    items = list(values)
    return sum(items) / len(items) if items else None


def _since(rows: Iterable[Mapping[str, Any]], column: str, t0: float) -> list[Mapping[str, Any]]:
    return [r for r in rows if (ts := _ts(r[column])) is not None and ts >= t0]


def percentile_cont(values: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (what SQL's percentile_cont does)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def expected(rows: Rows, now: float) -> dict[Key, float | None]:
    """Every KPI of the default pack at time `now` (unix seconds)."""
    out: dict[Key, float | None] = {}

    def put(name: str, value: float | None, **labels: str) -> None:
        out[(name, tuple(sorted(labels.items())))] = value

    day_ago, month_ago = now - DAY, now - 30 * DAY

    # sessions: DAU, duration, actions; MAU
    recent = _since(rows["sessions"], "started_at", day_ago)
    ended = [s for s in recent if s["ended_at"] is not None]
    put("business_daily_active_users", len({s["user_id"] for s in recent}))
    put("business_session_duration_seconds",
        _mean(_ts(s["ended_at"]) - _ts(s["started_at"]) for s in ended))  # type: ignore[operator]
    put("business_actions_per_session", _mean(s["actions"] for s in ended))
    put("business_monthly_active_users",
        len({s["user_id"] for s in _since(rows["sessions"], "started_at", month_ago)}))

    # retention: day N after each user's own sign-up
    by_user: dict[int, list[float]] = defaultdict(list)
    for s in rows["sessions"]:
        by_user[s["user_id"]].append(_ts(s["started_at"]))  # type: ignore[arg-type]
    for n, first, last in ((7, 15, 8), (30, 38, 31)):
        cohort = [u for u in rows["users"]
                  if now - first * DAY <= _ts(u["created_at"]) < now - last * DAY]  # type: ignore[operator]
        back = 0
        for u in cohort:
            c = _ts(u["created_at"])
            assert c is not None
            if any(c + n * DAY <= t < c + (n + 1) * DAY for t in by_user[u["id"]]):
                back += 1
        put(f"business_retention_day{n}_ratio", _ratio(back, len(cohort)))

    put("business_customers_created_per_day", len(_since(rows["customers"], "created_at", day_ago)))
    put("business_properties_created_per_day",
        len(_since(rows["properties"], "created_at", day_ago)))
    put("business_estimates_created_per_day",
        len(_since(rows["estimates"], "created_at", day_ago)))

    # revenue
    def active_at(sub: Mapping[str, Any], t: float) -> bool:
        cancelled = _ts(sub["cancelled_at"])
        return _ts(sub["started_at"]) <= t and (cancelled is None or cancelled > t)  # type: ignore[operator]

    active = [s for s in rows["subscriptions"] if active_at(s, now)]
    base = [s for s in rows["subscriptions"] if active_at(s, month_ago)]
    churned = [s for s in base if s["cancelled_at"] is not None and _ts(s["cancelled_at"]) <= now]  # type: ignore[operator]
    mrr = sum((Decimal(s["mrr_sar"]) for s in active), Decimal(0))
    churn = _ratio(len(churned), len(base))
    put("business_subscriptions_active", len(active))
    put("business_mrr_sar", float(mrr))
    put("business_churn_ratio", churn)
    put("business_ltv_sar", float(mrr) / len(active) / churn if active and churn else None)

    subscribers = {s["user_id"] for s in rows["subscriptions"] if _ts(s["started_at"]) <= now}  # type: ignore[operator]
    signups = _since(rows["users"], "created_at", month_ago)
    put("business_conversion_ratio",
        _ratio(sum(1 for u in signups if u["id"] in subscribers), len(signups)))

    # AI
    matches = _since(rows["smart_matches"], "created_at", day_ago)
    judged = [m for m in matches if m["outcome"] is not None]
    put("business_smart_matches_per_day", len(matches))
    put("business_smart_match_score_average", _mean(float(m["score"]) for m in matches))
    put("business_smart_match_acceptance_ratio",
        _ratio(sum(1 for m in matches if m["accepted"]), len(matches)))
    put("business_smart_match_accuracy_ratio",
        _ratio(sum(1 for m in judged if m["outcome"] == "correct"), len(judged)))

    asked = _since(rows["assistant_interactions"], "created_at", day_ago)
    rated = [a for a in asked if a["rated_accurate"] is not None]
    put("business_assistant_queries_per_day", len(asked))
    put("business_assistant_response_seconds", _mean(a["latency_seconds"] for a in asked))
    put("business_assistant_response_p95_seconds",
        percentile_cont([a["latency_seconds"] for a in asked], 0.95))
    put("business_assistant_accuracy_ratio",
        _ratio(sum(1 for a in rated if a["rated_accurate"]), len(rated)))
    put("business_assistant_satisfaction_score",
        _mean(a["satisfaction"] for a in asked if a["satisfaction"] is not None))

    # tasks
    started: set[int] = set()
    completed: set[int] = set()
    for e in _since(rows["events"], "occurred_at", day_ago):
        if e["session_id"] is None:
            continue
        if e["kind"] == "task_started":
            started.add(e["session_id"])
        elif e["kind"] == "task_completed":
            completed.add(e["session_id"])
    put("business_task_completion_ratio", _ratio(len(started & completed), len(started)))

    # surveys
    answers = _since(rows["survey_responses"], "created_at", month_ago)
    nps = [a["score"] for a in answers if a["kind"] == "nps"]
    csat = [a["score"] for a in answers if a["kind"] == "satisfaction"]
    put("business_nps_score", _mean(nps))
    put("business_net_promoter_score",
        _ratio(sum(1 for x in nps if x >= 9) - sum(1 for x in nps if x <= 6), len(nps)))
    put("business_user_satisfaction_ratio", _ratio(sum(1 for x in csat if x >= 4), len(csat)))

    # estimates
    estimates = _since(rows["estimates"], "created_at", month_ago)
    users_lib: dict[int, bool] = {}
    for e in estimates:
        if e["user_id"] is not None:
            users_lib[e["user_id"]] = users_lib.get(e["user_id"], False) or e["used_library"]
    put("business_user_adoption_ratio",
        _ratio(sum(1 for v in users_lib.values() if v), len(users_lib)))

    def error(e: Mapping[str, Any]) -> float | None:
        actual = _num(e["actual_sar"])
        if not actual:
            return None
        return abs(float(e["estimated_sar"]) - actual) / actual

    means: dict[bool, tuple[float | None, float | None]] = {}
    for library in (True, False):
        group = [e for e in estimates if e["used_library"] is library]
        errors = [x for e in group if (x := error(e)) is not None]
        means[library] = (_mean(e["creation_seconds"] for e in group), _mean(errors))
        label = "true" if library else "false"
        if group:
            put("business_estimate_creation_seconds", means[library][0], used_library=label)
            put("business_estimate_accuracy_ratio",
                None if means[library][1] is None else 1 - means[library][1],  # type: ignore[operator]
                used_library=label)
    (with_s, with_e), (without_s, without_e) = means[True], means[False]
    put("business_estimate_creation_time_reduction_ratio",
        None if with_s is None or not without_s else 1 - with_s / without_s)
    put("business_estimate_accuracy_improvement_ratio",
        None if with_e is None or not without_e else 1 - with_e / without_e)

    # support
    for priority in ("urgent", "high", "medium", "low"):
        put("business_support_open_tickets",
            sum(1 for t in rows["support_tickets"] if t["priority"] == priority
                and t["status"] not in ("resolved", "closed")), priority=priority)
    tickets = _since(rows["support_tickets"], "created_at", month_ago)
    put("business_support_tickets_per_day", len(_since(tickets, "created_at", day_ago)))
    put("business_support_tickets_30d", len(tickets))
    put("business_support_first_response_seconds",
        _mean(_ts(t["first_response_at"]) - _ts(t["created_at"])  # type: ignore[operator]
              for t in tickets if t["first_response_at"] is not None))
    put("business_support_resolution_seconds",
        _mean(_ts(t["resolved_at"]) - _ts(t["created_at"])  # type: ignore[operator]
              for t in tickets if t["resolved_at"] is not None))

    # audit log retention: the oldest row, whatever its age
    stamps = [ts for r in rows["audit_logs"] if (ts := _ts(r["created_at"])) is not None]
    put("business_audit_log_oldest_timestamp_seconds", min(stamps) if stamps else None)
    return out
