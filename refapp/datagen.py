"""Deterministic history for the reference CRM schema: weeks of rows in every table.

`python -m refapp.datagen --dsn URL --days 45 --seed 1 [--now ISO] [--<knob> VALUE ...]`
replaces every row of the reference tables (TRUNCATE … RESTART IDENTITY) with generated
history ending at `--now` (default: the current second). The same seed, days, anchor and
knobs give the same rows, byte for byte: nothing reads the clock except the default anchor.

Shape: activity follows a daily curve in Riyadh time (UTC+3; night low, late-morning and
afternoon peaks) and a Saudi week (Friday and Saturday quiet). Knob defaults give healthy
KPIs near the guides' targets (nova-crm § postLaunchDashboard, estimate-library § Success
Criteria); each knob can push its KPI across the alert level for drills.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import dataclasses
import hashlib
import math
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cronsim import CronSim

from refapp.schema import schema_sql

DAY = 86400.0
LOCAL_OFFSET = 3 * 3600  # Asia/Riyadh: UTC+3 all year, no daylight saving

# Relative activity per local hour: night low (03-05), peaks late morning and afternoon.
HOUR_WEIGHTS = (0.25, 0.16, 0.1, 0.07, 0.07, 0.1, 0.25, 0.55, 0.95, 1.35, 1.6, 1.55,
                1.2, 1.3, 1.5, 1.5, 1.3, 1.1, 0.95, 0.85, 0.75, 0.6, 0.45, 0.33)
_CUM_HOURS = tuple(sum(HOUR_WEIGHTS[: i + 1]) for i in range(24))
# Mon..Sun. The Saudi weekend is Friday and Saturday; Sunday is a working day.
VOLUME_WEEKDAY = (1.0, 1.0, 1.0, 1.0, 0.55, 0.7, 1.0)  # records created, queries, messages
ACTIVITY_WEEKDAY = (1.0, 1.0, 1.0, 1.0, 0.8, 0.88, 1.0)  # chance a user shows up that day
_VOLUME_MEAN = sum(VOLUME_WEEKDAY) / 7

PLANS = (("starter", 199.0, 0.45), ("pro", 499.0, 0.40), ("business", 1299.0, 0.15))
PAYMENT_FAILURES = ("card_declined", "insufficient_funds", "expired_card")
TICKET_PRIORITIES = (("low", 0.30), ("medium", 0.45), ("high", 0.20), ("urgent", 0.05))
# saas-ops-module § Support System: the ticket categories.
TICKET_CATEGORIES = ("billing", "technical", "feature_request", "bug_report", "account", "other")
# dirt-free-crm § Cron Job Monitoring: the jobs its checklist names, with their schedules
# (UTC here), and a typical run time in seconds.
CRON_JOBS = (
    ("process-opportunity-offers", "0 8 * * *", 40.0),
    ("process-promotion-deliveries", "*/30 * * * *", 12.0),
    ("send-review-requests", "0 */6 * * *", 25.0),
    ("check-system-health", "*/15 * * * *", 3.0),
    ("generate-scheduled-reports", "0 6 * * *", 90.0),
)
SMS_ERRORS = ("30003", "30005", "30006", "30008")
EMAIL_ERRORS = ("bounced", "rejected", "complained")

TABLES = ("cron_job_logs", "users", "sessions", "events", "customers", "properties",
          "subscriptions", "payments", "smart_matches", "assistant_interactions",
          "support_tickets", "survey_responses", "estimates", "message_deliveries",
          "webhook_events", "missed_opportunities", "audit_logs")
# dirt-free-crm's missed opportunities: pending until someone acts, then one of these.
OPPORTUNITY_OUTCOMES = ("contacted", "converted", "dismissed")
AUDIT_ACTIONS = ("login", "estimate.update", "library_item.update", "user.invite", "export")


def _knob(default: float, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Knobs:
    """What the generator produces; defaults are healthy, each moves one family of KPIs."""

    # Users and activity (nova-crm § business.users / engagement).
    dau_scale: float = _knob(1.0, "multiplies the user base and sign-ups: DAU, MAU (~300/~1000)")
    signups_per_day: float = _knob(10.0, "new users a day before dau_scale")
    # Above tpt-erp's 70 % retention target, the highest of the guides' levels on it.
    retained_share: float = _knob(0.85, "share of new users who stay engaged: ~day-30 retention")
    early_churn_days: float = _knob(10.0, "mean engaged days of the others: shapes day-7 retention")
    session_duration_seconds: float = _knob(660.0, "mean session length (target 600 s, alert 300 s)")
    actions_per_session: float = _knob(16.0, "mean actions per session (target 15, alert 5)")
    task_completion_rate: float = _knob(0.99, "share of started tasks completed (target 0.95)")
    customers_per_day: float = _knob(55.0, "customers created a day (target 50, alert 20)")
    properties_per_day: float = _knob(33.0, "properties created a day (target 30, alert 10)")
    # Revenue (nova-crm § business.revenue).
    initial_subscriptions: float = _knob(70.0, "paying subscriptions when the history starts")
    mrr_scale: float = _knob(1.0, "multiplies plan prices (199/499/1299 SAR): MRR and LTV")
    churn_rate: float = _knob(0.03, "monthly subscription churn (target 0.05, alert 0.10)")
    conversion_rate: float = _knob(0.13, "share of sign-ups that subscribe (target 0.10, alert 0.05)")
    payment_failure_rate: float = _knob(0.02, "share of payments that fail")
    # AI (nova-crm § ai).
    matches_per_day: float = _knob(110.0, "smart matches a day (target 100, alert 50)")
    match_score_mean: float = _knob(77.0, "mean match score 0-100 (target 75, alert 60)")
    match_acceptance_rate: float = _knob(0.32, "share of matches accepted (target 0.30, alert 0.15)")
    match_accuracy: float = _knob(0.96, "share of judged matches correct (target 0.95, alert 0.85)")
    assistant_queries_per_day: float = _knob(220.0, "assistant queries a day (target 200, alert 50)")
    assistant_latency_seconds: float = _knob(1.6, "mean assistant response time (target 2 s, alert 5 s)")
    assistant_accuracy: float = _knob(0.92, "share of rated answers accurate (target 0.90, alert 0.75)")
    assistant_satisfaction: float = _knob(4.3, "centre of the 1-5 ratings (target 4, alert 3)")
    # Success criteria (estimate-library § Success Criteria).
    support_tickets_per_month: float = _knob(2.5, "support tickets a month (target fewer than 5)")
    first_response_seconds: float = _knob(7200.0, "mean time to a ticket's first response")
    resolution_seconds: float = _knob(86400.0, "mean time from a ticket to its resolution")
    nps_mean: float = _knob(8.7, "centre of the 0-10 NPS answers (target above 8)")
    user_satisfaction: float = _knob(0.94, "share of satisfaction answers scoring 4-5 (target 0.90)")
    estimates_per_day: float = _knob(20.0, "estimates created a day")
    library_adoption: float = _knob(0.98, "share of estimators who use the library (target 0.90)")
    estimate_seconds: float = _knob(5400.0, "mean time to build an estimate without the library")
    estimate_time_reduction: float = _knob(0.58, "time saved by the library (target 0.50)")
    estimate_error: float = _knob(0.15, "mean relative error of estimates without the library")
    estimate_error_reduction: float = _knob(0.38, "error removed by the library (target 0.25)")
    # Integrations and cron (dirt-free-crm § Integration Health, § Cron Job Monitoring).
    emails_per_day: float = _knob(150.0, "emails sent a day (Resend)")
    email_failure_rate: float = _knob(0.01, "share of emails that fail")
    sms_per_day: float = _knob(60.0, "SMS sent a day (Twilio)")
    sms_failure_rate: float = _knob(0.02, "share of SMS that fail")
    webhook_failure_rate: float = _knob(0.005, "share of incoming webhooks that fail")
    cron_failure_rate: float = _knob(0.01, "share of cron runs that fail")
    # The guides' own database checks (dirt-free-crm § Database Health, estimate-library
    # § Database Optimization).
    missed_opportunities_per_day: float = _knob(25.0, "missed opportunities found a day")
    audit_log_days: float = _knob(
        89.0, "age in days of the oldest audit row (the daily purge keeps 90; over 91 alerts)")
    audit_logs_per_day: float = _knob(40.0, "audit log rows written a day")

    def replace(self, **changes: float) -> Knobs:
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ValueError(f"unknown knob {unknown[0]!r}")
        return dataclasses.replace(self, **changes)


def knob_table() -> list[tuple[str, float, str]]:
    """(name, default, meaning) of every knob, for --list-knobs and the docs."""
    return [(f.name, float(f.default), str(f.metadata["help"]))  # type: ignore[arg-type]
            for f in dataclasses.fields(Knobs)]


Row = tuple[Any, ...]


@dataclass
class Table:
    columns: tuple[str, ...]
    rows: list[Row] = field(default_factory=list)


Dataset = dict[str, Table]


# -- random helpers ------------------------------------------------------------------

def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 40:  # normal approximation: plenty for counts this size
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def weekday(ts: float) -> int:
    return time.gmtime(ts + LOCAL_OFFSET).tm_wday


def local_midnight(ts: float) -> float:
    return ts - (ts + LOCAL_OFFSET) % DAY


def time_in_window(rng: random.Random, start: float) -> float:
    """A moment in [start, start + 24 h) drawn from the daily activity curve."""
    hour = bisect.bisect_left(_CUM_HOURS, rng.random() * _CUM_HOURS[-1])
    target = min(hour, 23) * 3600 + rng.random() * 3600
    return start + (target - (start + LOCAL_OFFSET) % DAY) % DAY


def daily_times(rng: random.Random, per_day: float, start: float, end: float) -> list[float]:
    """Event times in [start, end) for a rate per day, shaped by weekday and hour."""
    out: list[float] = []
    day = local_midnight(start)
    while day < end:
        factor = VOLUME_WEEKDAY[weekday(day + 1)] / _VOLUME_MEAN
        for _ in range(poisson(rng, per_day * factor)):
            ts = time_in_window(rng, day)
            if start <= ts < end:
                out.append(ts)
        day += DAY
    out.sort()
    return out


def clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def stamp(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(round(ts, 3), UTC)


def money(amount: float) -> Decimal:
    return Decimal(f"{amount:.2f}")


def _pick_before(rng: random.Random, created: Sequence[float], ts: float) -> int | None:
    """Index of a random row created before ts (rows sorted by creation)."""
    n = bisect.bisect_left(created, ts)
    return rng.randrange(n) if n else None


# -- the generator -------------------------------------------------------------------

@dataclass
class _User:
    created: float
    kind: str  # "old" (engaged, before the window), "dormant", "new"
    activity: float  # chance of showing up on a working day while engaged
    lifetime_days: float  # engaged days after sign-up (inf: stays)
    id: int = 0


class Generator:
    def __init__(self, seed: int, days: int, now: float, knobs: Knobs) -> None:
        self.seed, self.days, self.now, self.k = seed, days, now, knobs
        self.start = now - days * DAY
        self.data: Dataset = {}

    def rng(self, stage: str) -> random.Random:
        # One stream per stage: a knob of one table does not reshuffle another's draws.
        return random.Random(f"{self.seed}/{stage}")

    def run(self) -> Dataset:
        self.users()
        self.sessions_and_events()
        self.customers_and_properties()
        self.subscriptions_and_payments()
        self.smart_matches()
        self.assistant()
        self.support()
        self.surveys()
        self.estimates()
        self.messages()
        self.webhooks()
        self.cron()
        self.missed_opportunities()
        self.audit_logs()
        return {name: self.data[name] for name in TABLES}

    # users --------------------------------------------------------------------------
    def users(self) -> None:
        rng, k = self.rng("users"), self.k
        users: list[_User] = []
        for _ in range(round(850 * k.dau_scale)):
            users.append(_User(self.start - rng.uniform(1, 365) * DAY, "old",
                               min(0.6, rng.expovariate(1 / 0.06)), math.inf))
        for _ in range(round(800 * k.dau_scale)):
            users.append(_User(self.start - rng.uniform(30, 400) * DAY, "dormant", 0.0, 0.0))
        for ts in daily_times(rng, k.signups_per_day * k.dau_scale, self.start, self.now):
            stays = rng.random() < k.retained_share
            lifetime = math.inf if stays else rng.expovariate(1 / max(k.early_churn_days, 0.01))
            users.append(_User(ts, "new", 0.95, lifetime))
        users.sort(key=lambda u: u.created)
        for i, user in enumerate(users, 1):
            user.id = i
        self.user_list = users
        self.user_created = [u.created for u in users]
        self.data["users"] = Table(("id", "email", "created_at"), [
            (u.id, f"user{u.id}@example.com", stamp(u.created)) for u in users])

    def _random_user(self, rng: random.Random, ts: float) -> int | None:
        index = _pick_before(rng, self.user_created, ts)
        return None if index is None else self.user_list[index].id

    # sessions and events -------------------------------------------------------------
    def sessions_and_events(self) -> None:
        rng, k = self.rng("sessions"), self.k
        starts: list[tuple[float, int]] = []
        for user in self.user_list:
            if user.kind == "dormant":
                continue
            if user.kind == "new":
                visit = user.created + rng.uniform(5, 120)  # the sign-up visit
                if visit < self.now:
                    starts.append((visit, user.id))
                first, origin = 1, user.created
            else:
                first, origin = 0, self.start
            t = first
            while origin + t * DAY < self.now and t < user.lifetime_days:
                bucket = origin + t * DAY
                chance = user.activity * ACTIVITY_WEEKDAY[weekday(bucket + DAY / 2)]
                if rng.random() < chance:
                    for _ in range(1 + poisson(rng, 0.3)):
                        ts = time_in_window(rng, bucket)
                        if ts < self.now:
                            starts.append((ts, user.id))
                t += 1
        starts.sort()
        sessions: list[Row] = []
        events: list[tuple[float, int, int, str]] = []
        mean = k.session_duration_seconds
        for sid, (ts, uid) in enumerate(starts, 1):
            duration = rng.gammavariate(2.0, mean / 2) if mean > 0 else 0.0
            ended = ts + duration
            actions = poisson(rng, k.actions_per_session * duration / mean) if mean > 0 else 0
            sessions.append((sid, uid, stamp(ts), stamp(ended) if ended <= self.now else None,
                             actions))
            events.append((ts, uid, sid, "page_view"))
            if rng.random() < 0.45:
                started = ts + rng.uniform(0, 0.5) * duration
                done = ts + rng.uniform(0.5, 1.0) * duration
                completes = rng.random() < k.task_completion_rate
                if started < self.now:
                    events.append((started, uid, sid, "task_started"))
                    if completes and done < self.now:
                        events.append((done, uid, sid, "task_completed"))
        self.data["sessions"] = Table(("id", "user_id", "started_at", "ended_at", "actions"),
                                      sessions)
        self.session_events = events

    # customers and properties --------------------------------------------------------
    def customers_and_properties(self) -> None:
        rng, k = self.rng("customers"), self.k
        times = sorted([self.start - rng.uniform(1, 365) * DAY for _ in range(800)]
                       + daily_times(rng, k.customers_per_day, self.start, self.now))
        self.customer_created = times
        self.data["customers"] = Table(("id", "name", "created_by", "created_at"), [
            (i, f"Customer {i}", self._random_user(rng, ts), stamp(ts))
            for i, ts in enumerate(times, 1)])
        rng = self.rng("properties")
        # Older properties reach back less far than customers: each has an owner already.
        ptimes = sorted([self.start - rng.uniform(1, 300) * DAY for _ in range(500)]
                        + daily_times(rng, k.properties_per_day, self.start, self.now))
        rows: list[Row] = []
        for i, ts in enumerate(ptimes, 1):
            customer = _pick_before(rng, times, ts) or 0
            rows.append((i, customer + 1, f"{rng.randint(1, 9999)} King Fahd Rd, Riyadh",
                         stamp(ts)))
        self.data["properties"] = Table(("id", "customer_id", "address", "created_at"), rows)

    # subscriptions and payments ------------------------------------------------------
    def subscriptions_and_payments(self) -> None:
        rng, k = self.rng("subscriptions"), self.k
        started_subs: list[tuple[float, int, str, float]] = []

        def plan() -> tuple[str, float]:
            name, price, _ = rng.choices(PLANS, weights=[p[2] for p in PLANS])[0]
            return name, price * k.mrr_scale

        old = [u for u in self.user_list if u.kind == "old"]
        count = min(len(old), round(k.initial_subscriptions * k.dau_scale))
        for user in rng.sample(old, count):
            name, price = plan()
            started_subs.append((self.start - rng.uniform(1, 365) * DAY, user.id, name, price))
        for user in self.user_list:
            if user.kind == "new" and rng.random() < k.conversion_rate:
                started = user.created + rng.expovariate(1 / 2.0) * DAY
                if started < self.now:
                    name, price = plan()
                    started_subs.append((started, user.id, name, price))
        started_subs.sort()
        cancellations = self._cancellations(rng, [s[0] for s in started_subs])
        subs = [(*sub, cancellations.get(i)) for i, sub in enumerate(started_subs)]
        subs.sort()
        rows: list[Row] = []
        payments: list[tuple[float, int, float, str, str | None]] = []
        for sid, (started, uid, name, price, cancelled) in enumerate(subs, 1):
            rows.append((sid, uid, name, money(price), stamp(started), stamp(cancelled)))
            end = cancelled if cancelled is not None else self.now
            due = started
            while due < end:
                if due >= self.start:
                    roll = rng.random()
                    if roll < k.payment_failure_rate:
                        payments.append((due, sid, price, "failed", rng.choice(PAYMENT_FAILURES)))
                    elif roll < k.payment_failure_rate + 0.005:
                        payments.append((due, sid, price, "refunded", None))
                    else:
                        payments.append((due, sid, price, "succeeded", None))
                due += 30 * DAY
        payments.sort()
        self.subscription_rows = subs
        self.payment_rows = payments
        self.data["subscriptions"] = Table(
            ("id", "user_id", "plan", "mrr_sar", "started_at", "cancelled_at"), rows)
        self.data["payments"] = Table(
            ("id", "subscription_id", "amount_sar", "status", "failure_reason", "created_at"),
            [(i, sid, money(amount), status, reason, stamp(ts))
             for i, (ts, sid, amount, status, reason) in enumerate(payments, 1)])

    def _cancellations(self, rng: random.Random, starts: list[float]) -> dict[int, float]:
        """Cancel `churn_rate` of the active subscriptions per 30 days, day by day.

        Spread evenly over time rather than drawn per subscription: with ~100 paying
        customers a per-subscription coin toss makes a month with no churn at all (LTV
        undefined) or double the knob, which a drill cannot rely on.
        """
        out: dict[int, float] = {}
        due = rng.random()
        day = self.start
        while day < self.now:
            active = [i for i, ts in enumerate(starts) if ts <= day and i not in out]
            due += max(self.k.churn_rate, 0.0) / 30 * len(active)
            while due >= 1 and active:
                victim = active.pop(rng.randrange(len(active)))
                when = day + rng.random() * DAY
                if when < self.now:
                    out[victim] = when
                due -= 1
            day += DAY
        return out

    # AI ------------------------------------------------------------------------------
    def smart_matches(self) -> None:
        rng, k = self.rng("smart_matches"), self.k
        rows: list[Row] = []
        for i, ts in enumerate(daily_times(rng, k.matches_per_day, self.start, self.now), 1):
            customer = _pick_before(rng, self.customer_created, ts)
            score = round(clamp(rng.gauss(k.match_score_mean, 12.0), 0.0, 100.0), 2)
            accepted = rng.random() < k.match_acceptance_rate
            outcome = None
            # Outcomes are judged later; the last hour is still open.
            if ts < self.now - 3600 and rng.random() < 0.85:
                outcome = "correct" if rng.random() < k.match_accuracy else "incorrect"
            rows.append((i, None if customer is None else customer + 1, money(score), accepted,
                         outcome, stamp(ts)))
        self.data["smart_matches"] = Table(
            ("id", "customer_id", "score", "accepted", "outcome", "created_at"), rows)

    def assistant(self) -> None:
        rng, k = self.rng("assistant"), self.k
        sigma = 0.5
        mu = math.log(max(k.assistant_latency_seconds, 1e-3)) - sigma**2 / 2
        rows: list[Row] = []
        for i, ts in enumerate(daily_times(rng, k.assistant_queries_per_day, self.start,
                                           self.now), 1):
            latency = round(rng.lognormvariate(mu, sigma), 3)
            accurate = rng.random() < k.assistant_accuracy if rng.random() < 0.6 else None
            satisfaction = None
            if rng.random() < 0.35:
                satisfaction = int(clamp(round(rng.gauss(k.assistant_satisfaction, 0.8)), 1, 5))
            rows.append((i, self._random_user(rng, ts), latency, accurate, satisfaction,
                         stamp(ts)))
        self.data["assistant_interactions"] = Table(
            ("id", "user_id", "latency_seconds", "rated_accurate", "satisfaction", "created_at"),
            rows)

    # support and surveys -------------------------------------------------------------
    def support(self) -> None:
        rng, k = self.rng("support"), self.k
        rows: list[Row] = []
        # A few tickets a month: near-regular arrivals, so any 30-day window holds the
        # knob's number (±1) instead of a Poisson count that crosses "fewer than 5" by luck.
        times: list[float] = []
        if k.support_tickets_per_month > 0:
            gap = 30 * DAY / k.support_tickets_per_month
            ts = self.start + rng.uniform(0, gap)
            while ts < self.now:
                times.append(ts)
                ts += gap * rng.uniform(0.8, 1.2)
        for i, ts in enumerate(times, 1):
            priority = rng.choices([p for p, _ in TICKET_PRIORITIES],
                                   weights=[w for _, w in TICKET_PRIORITIES])[0]
            answered = ts + rng.expovariate(1 / max(k.first_response_seconds, 1.0))
            rest = max(k.resolution_seconds - k.first_response_seconds, 60.0)
            done = answered + rng.expovariate(1 / rest)
            first: float | None = answered if answered <= self.now else None
            resolved: float | None = done if done <= self.now else None
            if resolved is not None:
                status = "closed" if done < self.now - 3 * DAY else "resolved"
            elif first is not None:
                # saas-ops-module: an agent's reply waits on the customer, the customer's
                # reply makes it pending again.
                status = rng.choice(("in_progress", "waiting_customer", "pending"))
            else:
                status = "open"
            if priority == "urgent" and resolved is None:
                # Healthy data: no urgent ticket waits at "now" (an open one notifies the
                # team, nova-crm § 2.1 notifyTeam), at whatever hour the data is made.
                priority = "high"
            rows.append((i, self._random_user(rng, ts), rng.choice(TICKET_CATEGORIES), priority,
                         status, stamp(ts), stamp(first), stamp(resolved)))
        self.data["support_tickets"] = Table(
            ("id", "user_id", "category", "priority", "status", "created_at",
             "first_response_at", "resolved_at"), rows)

    def surveys(self) -> None:
        rng, k = self.rng("surveys"), self.k
        answers: list[tuple[float, str, int]] = []
        for ts in daily_times(rng, 3.0, self.start, self.now):
            answers.append((ts, "nps", int(clamp(round(rng.gauss(k.nps_mean, 1.2)), 0, 10))))
        for ts in daily_times(rng, 3.0, self.start, self.now):
            happy = rng.random() < k.user_satisfaction
            answers.append((ts, "satisfaction", rng.choice((4, 5, 5)) if happy
                            else rng.choice((1, 2, 3))))
        answers.sort()
        self.data["survey_responses"] = Table(
            ("id", "user_id", "kind", "score", "created_at"),
            [(i, self._random_user(rng, ts), kind, score, stamp(ts))
             for i, (ts, kind, score) in enumerate(answers, 1)])

    # estimates -----------------------------------------------------------------------
    def estimates(self) -> None:
        rng, k = self.rng("estimates"), self.k
        old = [u.id for u in self.user_list if u.kind == "old"]
        estimators = rng.sample(old, min(len(old), max(1, round(60 * k.dau_scale))))
        # Exactly the knob's share adopts: adoption is a drill lever, not a coin toss.
        chosen = set(rng.sample(estimators, round(len(estimators) * clamp(k.library_adoption, 0, 1))))
        adopters = {uid: uid in chosen for uid in estimators}
        rows: list[Row] = []
        library_events: list[tuple[float, int, int | None, str]] = []
        for i, ts in enumerate(daily_times(rng, k.estimates_per_day, self.start, self.now), 1):
            uid = rng.choice(estimators)
            library = adopters[uid] and rng.random() < 0.85
            mean = k.estimate_seconds * ((1 - k.estimate_time_reduction) if library else 1.0)
            seconds = round(rng.gammavariate(4.0, max(mean, 1.0) / 4), 1)
            actual = rng.uniform(2000, 60000)
            error_mean = k.estimate_error * ((1 - k.estimate_error_reduction) if library else 1)
            error = min(rng.gammavariate(4.0, max(error_mean, 1e-4) / 4), 0.9)
            estimated = actual * (1 + (error if rng.random() < 0.5 else -error))
            known = ts < self.now - 5 * DAY and rng.random() < 0.8
            rows.append((i, uid, library, seconds, money(estimated),
                         money(actual) if known else None, stamp(ts)))
            if library:
                library_events.append((ts, uid, None, "library_use"))
        self.data["estimates"] = Table(
            ("id", "user_id", "used_library", "creation_seconds", "estimated_sar", "actual_sar",
             "created_at"), rows)
        merged = sorted([*self.session_events, *library_events],
                        key=lambda e: (e[0], e[1], e[3]))
        self.data["events"] = Table(
            ("id", "user_id", "session_id", "kind", "occurred_at"),
            [(i, uid, sid, kind, stamp(ts)) for i, (ts, uid, sid, kind) in enumerate(merged, 1)])

    # integrations --------------------------------------------------------------------
    def messages(self) -> None:
        rng, k = self.rng("messages"), self.k
        sent: list[tuple[float, str, str, str, str | None]] = []
        for channel, provider, per_day, failure, errors in (
                ("email", "resend", k.emails_per_day, k.email_failure_rate, EMAIL_ERRORS),
                ("sms", "twilio", k.sms_per_day, k.sms_failure_rate, SMS_ERRORS)):
            for ts in daily_times(rng, per_day, self.start, self.now):
                if ts > self.now - 120:
                    sent.append((ts, channel, provider, rng.choice(("queued", "sent")), None))
                elif rng.random() < failure:
                    sent.append((ts, channel, provider, "failed", rng.choice(errors)))
                else:
                    status = "sent" if rng.random() < 0.03 else "delivered"
                    sent.append((ts, channel, provider, status, None))
        sent.sort()
        self.message_rows = sent
        self.data["message_deliveries"] = Table(
            ("id", "channel", "provider", "status", "error_code", "created_at"),
            [(i, ch, pr, st, err, stamp(ts)) for i, (ts, ch, pr, st, err) in enumerate(sent, 1)])

    def webhooks(self) -> None:
        rng, k = self.rng("webhooks"), self.k
        incoming: list[tuple[float, str, str]] = []
        for started, _, _, _, cancelled in self.subscription_rows:
            if started >= self.start:
                incoming.append((started + 2, "stripe", "customer.subscription.created"))
            if cancelled is not None and cancelled >= self.start:
                incoming.append((cancelled + 2, "stripe", "customer.subscription.deleted"))
        kinds = {"succeeded": "invoice.paid", "failed": "invoice.payment_failed",
                 "refunded": "charge.refunded"}
        for ts, _, _, status, _ in self.payment_rows:
            incoming.append((ts + 3, "stripe", kinds[status]))
        for ts, channel, _, status, _ in self.message_rows:
            if status in ("delivered", "failed"):
                provider = "twilio" if channel == "sms" else "resend"
                event = ("message.status" if channel == "sms" else
                         "email.delivered" if status == "delivered" else "email.bounced")
                incoming.append((ts + rng.uniform(1, 30), provider, event))
        incoming = sorted(e for e in incoming if e[0] < self.now)
        rows: list[Row] = []
        for i, (ts, provider, event) in enumerate(incoming, 1):
            failed = rng.random() < k.webhook_failure_rate
            rows.append((i, provider, event, "failed" if failed else "processed",
                         "handler error: simulated" if failed else None, stamp(ts)))
        self.data["webhook_events"] = Table(
            ("id", "provider", "event_type", "status", "error", "received_at"), rows)

    def cron(self) -> None:
        rng, k = self.rng("cron"), self.k
        runs: list[tuple[float, str, float]] = []
        anchor = datetime.fromtimestamp(self.start, UTC)
        for name, schedule, typical in CRON_JOBS:
            for when in CronSim(schedule, anchor):
                ts = when.timestamp()
                if ts >= self.now:
                    break
                runs.append((ts + rng.uniform(0, 2), name, rng.gammavariate(2.0, typical / 2)))
        runs.sort()
        rows: list[Row] = []
        for i, (ts, name, duration) in enumerate(runs, 1):
            done = ts + duration
            if done > self.now:
                rows.append((i, name, stamp(ts), None, "running", None))
            elif rng.random() < k.cron_failure_rate:
                rows.append((i, name, stamp(ts), stamp(done), "failed", "simulated failure"))
            else:
                rows.append((i, name, stamp(ts), stamp(done), "success", None))
        # A healthy history: each job's latest finished run succeeded (its failure, if any,
        # was retried). Otherwise whether CronJobFailed fires at start-up would depend on the
        # hour the data was generated.
        latest: set[str] = set()
        for index in range(len(rows) - 1, -1, -1):
            row = rows[index]
            name, status = str(row[1]), row[4]
            if status == "running" or name in latest:
                continue
            latest.add(name)
            if status == "failed":
                rows[index] = (*row[:4], "success", None)
        self.data["cron_job_logs"] = Table(
            ("id", "job_name", "started_at", "completed_at", "status", "error_message"), rows)


    # the guides' own database checks -------------------------------------------------
    def missed_opportunities(self) -> None:
        rng, k = self.rng("missed_opportunities"), self.k
        rows: list[Row] = []
        for i, ts in enumerate(daily_times(rng, k.missed_opportunities_per_day, self.start,
                                           self.now), 1):
            customer = _pick_before(rng, self.customer_created, ts)
            # Followed up within about two days: recent ones are still pending.
            acted = self.now - ts > rng.expovariate(1 / (2 * DAY))
            status = rng.choice(OPPORTUNITY_OUTCOMES) if acted else "pending"
            rows.append((i, None if customer is None else customer + 1, status, stamp(ts)))
        self.data["missed_opportunities"] = Table(("id", "customer_id", "status", "created_at"),
                                                  rows)

    def audit_logs(self) -> None:
        """A log the daily purge keeps at 90 days: it reaches back audit_log_days, not
        only over the generated history."""
        rng, k = self.rng("audit_logs"), self.k
        start = self.now - k.audit_log_days * DAY
        times = daily_times(rng, k.audit_logs_per_day, start, self.now)
        # The oldest row sits at the knob's age, so it says exactly how far back the log goes.
        times = sorted({start + 60, *times})
        self.data["audit_logs"] = Table(("id", "user_id", "action", "created_at"), [
            (i, self._random_user(rng, ts), rng.choice(AUDIT_ACTIONS), stamp(ts))
            for i, ts in enumerate(times, 1)])


def generate(seed: int = 1, days: int = 45, now: datetime | None = None,
             knobs: Knobs | None = None) -> Dataset:
    """Rows for every table; only `now` (default: this second) ties them to the clock."""
    if days < 1:
        raise ValueError("days must be at least 1")
    anchor = now if now is not None else datetime.now(UTC).replace(microsecond=0)
    return Generator(seed, days, anchor.timestamp(), knobs or Knobs()).run()


def checksum(data: Dataset) -> str:
    digest = hashlib.sha256()
    for name in TABLES:
        digest.update(name.encode())
        for row in data[name].rows:
            digest.update(repr(row).encode())
    return digest.hexdigest()


async def load(conn: Any, data: Dataset) -> None:
    """Replace every reference table's rows with `data` in one transaction (schema first)."""
    await conn.execute(schema_sql())
    async with conn.transaction():
        await conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        # Parents before children, for the foreign keys.
        order = ("users", "sessions", "events", "customers", "properties", "subscriptions",
                 "payments", "smart_matches", "assistant_interactions", "support_tickets",
                 "survey_responses", "estimates", "message_deliveries", "webhook_events",
                 "cron_job_logs", "missed_opportunities", "audit_logs")
        for name in order:
            table = data[name]
            if table.rows:
                await conn.copy_records_to_table(name, records=table.rows,
                                                 columns=list(table.columns))
                # Ids were given explicitly: move the sequence past them for the app.
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), {len(table.rows)})")
    # Fresh statistics so the planner uses the time indexes on the new rows at once.
    await conn.execute(f"ANALYZE {', '.join(TABLES)}")


async def generate_into(dsn: str, seed: int = 1, days: int = 45, now: datetime | None = None,
                        knobs: Knobs | None = None) -> Dataset:
    import asyncpg

    data = generate(seed, days, now, knobs)
    conn = await asyncpg.connect(dsn)
    try:
        await load(conn, data)
    finally:
        await conn.close()
    return data


# -- command line --------------------------------------------------------------------

def _anchor(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m refapp.datagen",
        description="Replace the reference CRM tables' rows with deterministic history.")
    p.add_argument("--dsn", help="postgresql:// URL of the database to fill")
    p.add_argument("--days", type=int, default=45, help="days of history (default 45)")
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument("--now", type=_anchor, default=None,
                   help="end of the history, ISO 8601 (default: now); fixes the rows in time")
    p.add_argument("--list-knobs", action="store_true", help="print the knobs and exit")
    p.add_argument("--dry-run", action="store_true",
                   help="generate and print counts and checksum, load nothing")
    knobs = p.add_argument_group("knobs (defaults give healthy KPIs)")
    for name, default, meaning in knob_table():
        knobs.add_argument(f"--{name.replace('_', '-')}", dest=name, type=float,
                           default=default, metavar="X", help=f"{meaning} (default {default:g})")
    return p


def main(argv: list[str] | None = None, out: Callable[[str], None] = print) -> int:
    args = parser().parse_args(argv)
    if args.list_knobs:
        for name, default, meaning in knob_table():
            out(f"{name:28} {default:>10g}  {meaning}")
        return 0
    if args.days < 1:
        print("datagen: --days: must be at least 1", file=sys.stderr)
        return 2
    if not args.dry_run and not args.dsn:
        print("datagen: --dsn is required (or --dry-run)", file=sys.stderr)
        return 2
    knobs = Knobs(**{name: getattr(args, name) for name, _, _ in knob_table()})
    started = time.monotonic()
    if args.dry_run:
        data = generate(args.seed, args.days, args.now, knobs)
    else:
        data = asyncio.run(generate_into(args.dsn, args.seed, args.days, args.now, knobs))
    counts = ", ".join(f"{name} {len(data[name].rows)}" for name in TABLES)
    out(f"datagen: {'generated' if args.dry_run else 'loaded'} {counts} in "
        f"{time.monotonic() - started:.1f}s; checksum {checksum(data)[:16]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
