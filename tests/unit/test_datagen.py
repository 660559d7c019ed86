"""The data generator: deterministic rows, daily and weekly shape, healthy defaults, knobs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime

import asyncpg
import pytest

from devstack.servers import PostgresServer
from refapp.datagen import (
    LOCAL_OFFSET,
    TABLES,
    Knobs,
    checksum,
    generate,
    generate_into,
    knob_table,
)
from tests.support.business import expected, rows_of

ANCHOR = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)  # a Wednesday, noon UTC
DAY = 86400.0


async def _db_checksums(dsn: str) -> dict[str, str]:
    conn = await asyncpg.connect(dsn)
    try:
        return {t: await conn.fetchval(
            f"SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t.id), '')) FROM {t} t")
            for t in TABLES}
    finally:
        await conn.close()


@pytest.mark.integration  # a real PostgreSQL
def test_same_seed_loads_identical_rows_and_another_seed_does_not(
        postgres: PostgresServer) -> None:
    postgres.psql("CREATE DATABASE copy")
    other = postgres.dsn.rsplit("/", 1)[0] + "/copy"
    first = asyncio.run(generate_into(postgres.dsn, seed=7, days=10, now=ANCHOR))
    second = asyncio.run(generate_into(other, seed=7, days=10, now=ANCHOR))
    assert checksum(first) == checksum(second)
    in_db = asyncio.run(_db_checksums(postgres.dsn))
    assert in_db == asyncio.run(_db_checksums(other))
    assert all(int(postgres.psql(f"SELECT count(*) FROM {t}")) == len(first[t].rows)
               for t in TABLES)
    # Reloading replaces the rows (ids restart) instead of appending.
    asyncio.run(generate_into(postgres.dsn, seed=7, days=10, now=ANCHOR))
    assert asyncio.run(_db_checksums(postgres.dsn)) == in_db
    asyncio.run(generate_into(other, seed=8, days=10, now=ANCHOR))
    changed = asyncio.run(_db_checksums(other))
    assert changed["sessions"] != in_db["sessions"]
    # The app can insert after a load: sequences moved past the generated ids.
    postgres.psql("INSERT INTO users (email) VALUES ('late@example.com')")
    assert int(postgres.psql("SELECT max(id) FROM users")) == len(first["users"].rows) + 1


def test_generation_reads_no_clock_only_the_anchor() -> None:
    first = generate(seed=3, days=5, now=ANCHOR)
    time.sleep(1.1)
    assert checksum(generate(seed=3, days=5, now=ANCHOR)) == checksum(first)
    assert checksum(generate(seed=4, days=5, now=ANCHOR)) != checksum(first)


def test_every_table_gets_history_and_nothing_after_the_anchor() -> None:
    data = generate(seed=1, days=45, now=ANCHOR)
    end = ANCHOR.timestamp()
    for name in TABLES:
        table = data[name]
        assert table.rows, f"{name} is empty"
        stamps = [v.timestamp() for row in table.rows for v in row if isinstance(v, datetime)]
        assert max(stamps) <= end, name
    # Activity tables cover the whole window, not just its end.
    for name, column in (("sessions", 2), ("smart_matches", 5), ("cron_job_logs", 2)):
        first = min(row[column].timestamp() for row in data[name].rows)
        assert first < end - 44 * DAY, name


def test_activity_has_night_lows_and_a_quiet_saudi_weekend() -> None:
    data = generate(seed=1, days=42, now=ANCHOR)
    local = [row[2].timestamp() + LOCAL_OFFSET for row in data["sessions"].rows]
    hours = Counter(int(ts % DAY // 3600) for ts in local)
    night = sum(hours[h] for h in (2, 3, 4)) / 3
    peak = sum(hours[h] for h in (10, 11, 14)) / 3
    assert night < peak / 8
    weekdays = Counter(datetime.fromtimestamp(ts, UTC).weekday() for ts in local)
    workday = sum(weekdays[d] for d in (6, 0, 1, 2, 3)) / 5  # Sunday to Thursday
    assert weekdays[4] < 0.9 * workday  # Friday
    assert weekdays[5] < 0.95 * workday  # Saturday
    created = Counter(datetime.fromtimestamp(r[3].timestamp() + LOCAL_OFFSET, UTC).weekday()
                      for r in data["customers"].rows if r[3].timestamp() > ANCHOR.timestamp()
                      - 42 * DAY)
    assert created[4] < 0.7 * sum(created[d] for d in (6, 0, 1, 2, 3)) / 5


# The guides' alert levels a healthy default must stay clear of (nova-crm §
# postLaunchDashboard; estimate-library § Success Criteria, whose targets are the bar).
HEALTHY = {
    "business_daily_active_users": (">", 100), "business_monthly_active_users": (">", 500),
    "business_retention_day7_ratio": (">", 0.4), "business_retention_day30_ratio": (">", 0.7),
    "business_session_duration_seconds": (">", 300), "business_actions_per_session": (">", 5),
    "business_customers_created_per_day": (">", 20),
    "business_properties_created_per_day": (">", 10),
    "business_mrr_sar": (">", 20000), "business_churn_ratio": ("<", 0.10),
    "business_ltv_sar": (">", 5000), "business_conversion_ratio": (">", 0.05),
    "business_smart_match_accuracy_ratio": (">", 0.85),
    "business_smart_match_score_average": (">", 60),
    "business_smart_matches_per_day": (">", 50),
    "business_smart_match_acceptance_ratio": (">", 0.15),
    "business_assistant_response_seconds": ("<", 5), "business_assistant_accuracy_ratio": (">", 0.75),
    "business_assistant_satisfaction_score": (">", 3),
    "business_assistant_queries_per_day": (">", 50),
    "business_user_adoption_ratio": (">", 0.9), "business_nps_score": (">", 8.0),
    "business_support_tickets_30d": ("<", 5), "business_task_completion_ratio": (">", 0.95),
    "business_estimate_creation_time_reduction_ratio": (">", 0.5),
    "business_estimate_accuracy_improvement_ratio": (">", 0.25),
    "business_user_satisfaction_ratio": (">", 0.9),
}


@pytest.mark.parametrize("anchor", [ANCHOR, datetime(2025, 3, 7, 20, 30, tzinfo=UTC)],
                         ids=["wednesday-noon", "friday-evening"])
def test_default_knobs_give_healthy_kpis(anchor: datetime) -> None:
    kpis = {name: value for (name, labels), value in
            expected(rows_of(generate(seed=1, days=45, now=anchor)), anchor.timestamp()).items()
            if not labels}
    for name, (side, level) in HEALTHY.items():
        value = kpis[name]
        assert value is not None, name
        assert (value > level) if side == ">" else (value < level), f"{name} = {value}"


def test_knobs_reject_unknown_names_and_list_every_field() -> None:
    with pytest.raises(ValueError, match="unknown knob 'dau'"):
        Knobs().replace(dau=0.1)
    assert Knobs().replace(dau_scale=0.2).dau_scale == 0.2
    names = [name for name, _, _ in knob_table()]
    assert "match_accuracy" in names and len(names) == len(set(names))
    assert all(meaning for _, _, meaning in knob_table())


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "refapp.datagen", *args], capture_output=True,
                          text=True, timeout=60)


def test_cli_dry_run_is_repeatable_and_knob_flags_change_the_rows() -> None:
    args = ["--dry-run", "--days", "3", "--seed", "5", "--now", "2025-03-05T12:00:00Z"]
    first, again = _cli(*args), _cli(*args)
    assert first.returncode == 0, first.stderr
    digest = first.stdout.rsplit("checksum ", 1)[1]
    assert again.stdout.rsplit("checksum ", 1)[1] == digest
    knobbed = _cli(*args, "--match-accuracy", "0.5")
    assert knobbed.returncode == 0 and knobbed.stdout.rsplit("checksum ", 1)[1] != digest
    bad = _cli("--dry-run", "--days", "0")
    assert bad.returncode == 2 and bad.stderr.strip() == "datagen: --days: must be at least 1"
    missing = _cli("--days", "3")
    assert missing.returncode == 2 and "--dsn is required" in missing.stderr
