"""A real Alertmanager running the shipped config (only secret paths and service addresses
swapped) delivers rendered notifications to loopback stand-ins: Slack, PagerDuty, SMTP and,
through the real SMS relay process, Twilio; the Watchdog reaches the heartbeat only; the
inhibition rules mute what the label contract says.

Timing: the shipped group_wait values are kept (10 s for critical, 30 s otherwise), so
every scenario's alerts are posted at once when the module starts and each test waits for
its own notifications; the module waits about 35 s in all. "Not delivered" is decided after
a barrier: an uninhibited high alert posted in the same request, whose group is flushed at
the same moment as the muted ones would be.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from devstack.exporter import Exporter
from devstack.metrics import value
from tests.support.alertmanager import (
    TWILIO_SID,
    Alertmanager,
    StandIns,
    alert,
    make_certificate,
    shipped_swaps,
    wait_for,
    write_test_config,
)

FROM, ONCALL_A, ONCALL_B = "+15005550006", "+15551230001", "+15551230002"
SLACK_PATHS = {"#critical-alerts": "slack_critical_alerts_url", "#alerts": "slack_alerts_url",
               "#monitoring": "slack_monitoring_url",
               "#production-alerts": "slack_production_alerts_url"}
WAIT = 75  # generous: the longest shipped group_wait is 30 s

PROBE_NOTES = {
    "summary": "API error rate 7% over the 5% limit",
    "description": "Share of 5xx answers over 10 minutes, nova-crm critical level.",
    "runbook_url": "https://runbooks.example/ApiErrorRateHigh",
    "dashboard_url": "https://grafana.example/d/saasmon-api",
}
PROBE = alert("ApiErrorRateHigh", "critical", PROBE_NOTES, area="api", guide="nova-crm",
              guide_level="critical", job="api", instance="web-1:8080")
DIRT_FREE = alert("CronJobFailed", "high",
                  {"summary": "Cron job nightly-invoices failed",
                   "description": "The last run exited non-zero.",
                   "runbook_url": "https://runbooks.example/CronJobFailed"},
                  area="cron", guide="dirt-free-crm", guide_level="P1", job="cron",
                  instance="cron-1:9632")
WATCHDOG = alert("Watchdog", "none", {"summary": "The alerting pipeline works."}, area="meta")
HOST_1 = {"area": "host", "guide": "tpt-erp", "job": "node", "instance": "host-1:9100"}
LADDER_CRITICAL = alert("DiskSpaceLow", "critical", **HOST_1)
LADDER_HIGH = alert("DiskSpaceLow", "high", **HOST_1)
LADDER_OTHER_HOST = alert("DiskSpaceLow", "high", **{**HOST_1, "instance": "host-2:9100"})
POSTGRES_A = {"job": "postgres", "instance": "db-1:9630"}
TARGET_DOWN = alert("TargetDown", "high", area="exporter", **POSTGRES_A)
DERIVED = alert("PostgresConnectionsHigh", "high", area="database", guide="tpt-erp", **POSTGRES_A)
BARRIER = alert("QueueBacklogHigh", "high", area="business", guide="nova-crm", job="business",
                instance="biz-1:9634")
# Decided from Alertmanager's alert status only (no delivery needed).
REDIS = {"area": "redis", "job": "redis", "instance": "cache-1:9631"}
POSTGRES_B = {"area": "database", "job": "postgres", "instance": "db-2:9630"}
CACHE_2 = {"area": "redis", "job": "redis", "instance": "cache-2:9631"}
STATUS_ONLY = {
    # name: (alert, inhibited?)
    "redis-down": (alert("RedisDown", "medium", target="main", **REDIS), False),
    "same-target": (alert("RedisMemoryHigh", "medium", target="main", **REDIS), True),
    "other-target": (alert("RedisMemoryHigh", "medium", target="sessions", **REDIS), False),
    "postgres-down": (alert("PostgresDown", "medium", **POSTGRES_B), False),
    "down-without-target-covers-targets": (
        alert("PostgresReplicationLagHigh", "medium", target="replica-1", **POSTGRES_B), True),
    "down-without-target-covers-untargeted": (
        alert("PostgresSlowQueries", "medium", **POSTGRES_B), True),
    "other-area-same-exporter": (
        alert("PostgresExporterSlow", "medium", **{**POSTGRES_B, "area": "exporter"}), False),
    "ladder-medium": (alert("CacheHitRatioLow", "medium", **CACHE_2), False),
    "ladder-low-under-medium": (alert("CacheHitRatioLow", "low", **CACHE_2), True),
}
# Issue 13 §2 p: ladders mute within one guide. tpt-erp's critical CPU level must leave the
# 80 % level dirt-free-crm shares with tpt-erp (one alert, guide="dirt-free-crm,tpt-erp")
# and its #production-alerts post alone.
DB_HOST = {"area": "host", "job": "node", "instance": "db-1:9100"}
CPU_CRITICAL = alert("HostCpuHigh", "critical", {"summary": "CPU 97% on db-1"},
                     guide="tpt-erp", guide_level="critical", **DB_HOST)
CPU_P2 = alert("HostCpuHigh", "medium", {"summary": "CPU 97% on db-1"},
               guide="dirt-free-crm,tpt-erp", guide_level="P2 (>80%); alert", **DB_HOST)
DB_3 = {"area": "database", "job": "postgres", "instance": "db-3:9630"}
API_2 = {"area": "api", "job": "app", "instance": "web-2:8080"}
GUIDE_LADDERS = {
    # name: (alert, inhibited?)
    "other-guide-slow-query": (alert("PostgresSlowQueries", "critical", guide="tpt-erp", **DB_3),
                               False),
    "shared-level-under-one-guides-critical": (
        alert("PostgresSlowQueries", "medium", guide="dirt-free-crm,tpt-erp", **DB_3), False),
    "same-guide-under-critical": (alert("PostgresSlowQueries", "medium", guide="tpt-erp",
                                        **DB_3), True),
    "shared-high": (alert("ApiErrorRateHigh", "high", guide="nova-crm,dirt-free-crm", **API_2),
                    False),
    "a-sharing-guides-own-lower-level": (
        alert("ApiErrorRateHigh", "medium", guide="dirt-free-crm", **API_2), True),
    "a-guide-not-sharing-it": (alert("ApiErrorRateHigh", "low", guide="estimate-library",
                                     **API_2), False),
    "a-guide-name-inside-another": (alert("ApiErrorRateHigh", "low", guide="nova-crm-eu",
                                          **API_2), False),
}
# tpt-erp's server_down escalates after 2 minutes: the twin rule's alert (escalated_from)
# beside the page it escalates.
DOWN = {"area": "health", "guide": "dirt-free-crm,tpt-erp,saas-ops-module",
        "job": "saasmon-app-probe", "instance": "https://app.example/health"}
DOWN_NOTES = {"summary": "The app does not answer its health probe"}
ENDPOINT_DOWN = alert("AppEndpointDown", "critical", DOWN_NOTES, guide_level="P0", **DOWN)
ENDPOINT_DOWN_ESCALATED = alert("AppEndpointDown", "critical", DOWN_NOTES,
                                guide_level="P0, escalated after 2m", escalated_from="critical",
                                **DOWN)
ALL_ALERTS = [PROBE, DIRT_FREE, WATCHDOG, LADDER_CRITICAL, LADDER_HIGH, LADDER_OTHER_HOST,
              TARGET_DOWN, DERIVED, BARRIER, CPU_CRITICAL, CPU_P2, ENDPOINT_DOWN,
              ENDPOINT_DOWN_ESCALATED,
              *(a for a, _ in STATUS_ONLY.values()), *(a for a, _ in GUIDE_LADDERS.values())]


@dataclass
class Stack:
    am: Alertmanager
    relay: Exporter
    stand_ins: StandIns
    secrets: dict[str, str]
    ping_path: str
    _settled: bool = field(default=False)

    def slack(self, channel: str, alertname: str) -> list[dict[str, Any]]:
        """Posts for `alertname` that went to the webhook URL of `channel`."""
        prefix = f"/services/T000/{SLACK_PATHS[channel]}/"
        return [r.json() for r in self.stand_ins.slack.received if r.path.startswith(prefix)
                and r.json()["attachments"][0]["title"].split(" ")[2] == alertname]

    def mails(self, alertname: str) -> list[Any]:
        assert self.stand_ins.smtp is not None
        return [m for m in self.stand_ins.smtp.mails
                if str(m.message["Subject"]).split(" ")[2].rstrip(":") == alertname]

    def settle(self) -> None:
        """Wait until every group posted at start has been flushed (the barrier arrived)."""
        if not self._settled:
            wait_for("barrier notification in #alerts",
                     lambda: self.slack("#alerts", "QueueBacklogHigh"), timeout=WAIT)
            time.sleep(3)  # the other groups flushed at the same tick; let them arrive
            self._settled = True


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("am-delivery")
    secret_dir = root / "secrets"
    secret_dir.mkdir()
    twilio_token = "tw-" + secrets.token_hex(16)
    stand_ins = StandIns.start(twilio_token, make_certificate(root))
    assert stand_ins.smtp is not None
    # A Slack webhook URL's last segment is its secret.
    values = {name: f"{stand_ins.slack.url}/services/T000/{name}/{secrets.token_hex(12)}"
              for name in SLACK_PATHS.values()}
    values |= {"pagerduty_routing_key": secrets.token_hex(16),
               "pagerduty_escalation_routing_key": secrets.token_hex(16),
               "smtp_password": "smtp-" + secrets.token_hex(12),
               "smsrelay_token": "relay-" + secrets.token_hex(12)}
    for name, text in values.items():
        # Files end in a newline, as editors and `echo` write them; Alertmanager 0.25 trims
        # it from every *_file except smtp_auth_password_file (see docs/alertmanager.md).
        newline = "" if name == "smtp_password" else "\n"
        (secret_dir / name).write_text(text + newline)
    (root / "twilio_token").write_text(twilio_token)
    ping_path = f"/ping/{secrets.token_hex(8)}"
    (root / "heartbeat_url").write_text(stand_ins.heartbeat.url + ping_path)
    relay = Exporter("sms-relay", {
        "twilio": {"account_sid": TWILIO_SID, "auth_token_file": str(root / "twilio_token"),
                   "from_number": FROM, "api_url": stand_ins.twilio.url},
        "recipients": [ONCALL_A, ONCALL_B],
        "bearer_token_file": str(secret_dir / "smsrelay_token"),
        "heartbeat": {"url_file": str(root / "heartbeat_url")},
        "timeout_seconds": 5,
    }, root)
    am: Alertmanager | None = None
    try:
        relay.start()
        config = write_test_config(root / "am", shipped_swaps(
            secret_dir, f"127.0.0.1:{relay.port}", stand_ins.pagerduty.url + "/v2/enqueue",
            f"127.0.0.1:{stand_ins.smtp.port}"))
        # Alertmanager (Go) trusts the SMTP stand-in's self-signed certificate through this.
        am = Alertmanager(config, root, env={"SSL_CERT_FILE": str(root / "smtp-cert.pem")})
        am.start()
        # Stamp startsAt now: the module-level alerts were built at collection time, and an
        # alert older than group_wait is flushed at once, before the inhibitor has seen
        # the critical that should mute its high (a race that loses under a long test run).
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        am.post_alerts([{**a, "startsAt": now} for a in ALL_ALERTS])
        values["twilio_token"] = twilio_token
        yield Stack(am, relay, stand_ins, values, ping_path)
    finally:
        if am is not None:
            am.stop()
        relay.stop()
        stand_ins.stop()


def fingerprint(stack: Stack, item: dict[str, Any]) -> str:
    (found,) = [a for a in stack.am.alerts(**item["labels"]) if a["labels"] == item["labels"]]
    return str(found["fingerprint"])


def status_of(stack: Stack, item: dict[str, Any]) -> dict[str, Any]:
    (found,) = [a for a in stack.am.alerts(**item["labels"]) if a["labels"] == item["labels"]]
    result: dict[str, Any] = found["status"]
    return result


def inhibited(stack: Stack, item: dict[str, Any]) -> dict[str, Any] | None:
    """The alert's status once Alertmanager reports it inhibited, else None."""
    status = status_of(stack, item)
    return status if status["inhibitedBy"] else None


def test_critical_alert_pages_through_pagerduty(stack: Stack) -> None:
    events = wait_for("PagerDuty event", lambda: [
        e for e in stack.stand_ins.pagerduty.events()
        if e["payload"]["class"] == "ApiErrorRateHigh"], timeout=WAIT)
    (event,) = events
    assert event["routing_key"] == stack.secrets["pagerduty_routing_key"]
    assert event["event_action"] == "trigger"
    payload = event["payload"]
    assert payload["summary"] == (
        "[FIRING:1] CRITICAL ApiErrorRateHigh: API error rate 7% over the 5% limit")
    assert (payload["severity"], payload["source"], payload["component"], payload["group"]) == (
        "critical", "web-1:8080", "api", "nova-crm")
    details = payload["custom_details"]
    assert details["num_firing"] == "1" and details["firing"] == "web-1:8080"
    assert details["description"] == PROBE_NOTES["description"]
    assert details["guide_level"] == "critical"
    assert details["silence"].startswith(stack.am.url + "/#/silences/new?filter=%7Balertname")
    assert event["links"] == [{"href": PROBE_NOTES["runbook_url"], "text": "Runbook"},
                              {"href": PROBE_NOTES["dashboard_url"], "text": "Dashboard"}]
    assert event["client"] == "saasmon Alertmanager"
    # One incident per alert group: Alertmanager's dedup key is the SHA-256 of the group
    # key (the route's matchers and the group's labels), so reminders and the resolution
    # update the same incident.
    group_key = '{}/{severity="critical"}/{}:{alertname="ApiErrorRateHigh", severity="critical"}'
    assert event["dedup_key"] == hashlib.sha256(group_key.encode()).hexdigest()


def test_critical_alert_is_texted_to_every_on_call_number_through_the_relay(
        stack: Stack) -> None:
    text = "CRITICAL ApiErrorRateHigh (1 firing): API error rate 7% over the 5% limit"

    def both() -> list[dict[str, str]] | None:
        found = [m for m in stack.stand_ins.twilio.messages() if m["Body"] == text]
        return found if len(found) == 2 else None

    sent = wait_for("an SMS to both numbers", both, timeout=WAIT)
    assert sorted(m["To"] for m in sent) == [ONCALL_A, ONCALL_B]
    assert {m["From"] for m in sent} == {FROM}
    # Alertmanager authenticated with the bearer token from its credentials_file.
    samples = stack.relay.scrape()
    assert value(samples, "smsrelay_webhook_requests_total",
                 endpoint="alert", result="unauthorized") == 0
    assert value(samples, "smsrelay_webhook_requests_total", endpoint="alert", result="ok") >= 1


def test_critical_alert_posts_to_critical_alerts_with_colour_and_buttons(stack: Stack) -> None:
    (post,) = wait_for("#critical-alerts post",
                       lambda: stack.slack("#critical-alerts", "ApiErrorRateHigh"), timeout=WAIT)
    assert post["channel"] == "#critical-alerts"
    (attachment,) = post["attachments"]
    assert attachment["color"] == "#D50200"
    assert attachment["title"] == "[FIRING:1] CRITICAL ApiErrorRateHigh"
    assert attachment["title_link"].startswith(stack.am.url + "/#/alerts?filter=")
    assert attachment["text"].startswith(
        f"*{PROBE_NOTES['summary']}*\n{PROBE_NOTES['description']}\n_nova-crm critical / api_")
    buttons = {a["text"]: a["url"] for a in attachment["actions"]}
    matchers = "%7Balertname%3D%22ApiErrorRateHigh%22%2Cseverity%3D%22critical%22%7D"
    assert buttons == {"Runbook": PROBE_NOTES["runbook_url"],
                       "Dashboard": PROBE_NOTES["dashboard_url"],
                       "Silence": f"{stack.am.url}/#/silences/new?filter={matchers}"}


def test_critical_alert_is_mailed_to_the_team_over_starttls_with_the_password_file(
        stack: Stack) -> None:
    (mail,) = wait_for("team email", lambda: stack.mails("ApiErrorRateHigh"), timeout=WAIT)
    assert mail.rcpt_tos == ["team@example.com"]
    assert mail.mail_from == "alertmanager@example.com"
    assert (mail.login, mail.password) == ("alertmanager@example.com",
                                           stack.secrets["smtp_password"])
    assert str(mail.message["Subject"]) == (
        "[FIRING:1] CRITICAL ApiErrorRateHigh: API error rate 7% over the 5% limit")
    html = mail.html()
    assert f'<a href="{PROBE_NOTES["runbook_url"]}">Runbook</a>' in html
    assert f'<a href="{PROBE_NOTES["dashboard_url"]}">Dashboard</a>' in html
    assert "<td>web-1:8080</td>" in html and "background: #D50200" in html
    assert f"Runbook: {PROBE_NOTES['runbook_url']}" in mail.text()


def test_dirt_free_crm_alert_goes_to_production_alerts_and_its_severity_channels(
        stack: Stack) -> None:
    (production,) = wait_for("#production-alerts post",
                             lambda: stack.slack("#production-alerts", "CronJobFailed"),
                             timeout=WAIT)
    (alerts,) = wait_for("#alerts post", lambda: stack.slack("#alerts", "CronJobFailed"),
                         timeout=WAIT)
    assert (production["channel"], alerts["channel"]) == ("#production-alerts", "#alerts")
    for post in (production, alerts):
        (attachment,) = post["attachments"]
        assert attachment["color"] == "#F2711C"
        assert "_dirt-free-crm P1 / cron_" in attachment["text"]
        buttons = {a["text"]: a["url"] for a in attachment["actions"]}
        assert buttons["Runbook"] == "https://runbooks.example/CronJobFailed"
        # No dashboard_url annotation: the button opens the group in Alertmanager.
        assert buttons["Dashboard"].startswith(stack.am.url + "/#/alerts?filter=%7Balertname")
    (mail,) = wait_for("devops email", lambda: stack.mails("CronJobFailed"), timeout=WAIT)
    assert mail.rcpt_tos == ["devops@example.com"]
    stack.settle()
    assert not [e for e in stack.stand_ins.pagerduty.events()
                if e["payload"]["class"] == "CronJobFailed"]
    assert not [m for m in stack.stand_ins.twilio.messages() if "CronJobFailed" in m["Body"]]
    assert not stack.slack("#critical-alerts", "CronJobFailed")


def test_watchdog_pings_the_heartbeat_and_reaches_no_person(stack: Stack) -> None:
    pings = wait_for("heartbeat ping", lambda: stack.stand_ins.heartbeat.received, timeout=WAIT)
    assert (pings[0].method, pings[0].path) == ("GET", stack.ping_path)
    stack.settle()
    assert all(not stack.slack(channel, "Watchdog") for channel in SLACK_PATHS)
    assert not stack.mails("Watchdog")
    assert not [e for e in stack.stand_ins.pagerduty.events()
                if e["payload"]["class"] == "Watchdog"]
    assert not [m for m in stack.stand_ins.twilio.messages() if "Watchdog" in m["Body"]]
    assert value(stack.relay.scrape(), "smsrelay_heartbeat_forwards_total", result="ok") >= 1


def test_critical_mutes_the_high_of_the_same_alert_on_the_same_instance(stack: Stack) -> None:
    status = wait_for("high DiskSpaceLow inhibited", lambda: inhibited(stack, LADDER_HIGH),
                      timeout=15)
    assert status["state"] == "suppressed"
    assert status["inhibitedBy"] == [fingerprint(stack, LADDER_CRITICAL)]
    assert status_of(stack, LADDER_OTHER_HOST)["state"] == "active"
    stack.settle()
    # Delivered: the critical, and the high group with only the other host in it.
    (critical,) = stack.slack("#critical-alerts", "DiskSpaceLow")
    assert "host-1:9100" in critical["attachments"][0]["text"]
    (high,) = stack.slack("#alerts", "DiskSpaceLow")
    assert high["attachments"][0]["title"] == "[FIRING:1] HIGH DiskSpaceLow"
    assert "host-2:9100" in high["attachments"][0]["text"]
    assert "host-1:9100" not in high["attachments"][0]["text"]
    (mail,) = [m for m in stack.mails("DiskSpaceLow") if m.rcpt_tos == ["devops@example.com"]]
    assert "host-2:9100" in mail.html() and "host-1:9100" not in mail.html()


def test_target_down_mutes_every_alert_of_its_job_and_instance(stack: Stack) -> None:
    status = wait_for("PostgresConnectionsHigh inhibited", lambda: inhibited(stack, DERIVED),
                      timeout=15)
    assert status["inhibitedBy"] == [fingerprint(stack, TARGET_DOWN)]
    stack.settle()
    assert stack.slack("#alerts", "TargetDown")
    assert not stack.slack("#alerts", "PostgresConnectionsHigh")
    assert not stack.mails("PostgresConnectionsHigh")


@pytest.mark.parametrize("case", sorted(STATUS_ONLY))
def test_down_alerts_and_ladders_mute_by_area_job_instance_and_target(
        stack: Stack, case: str) -> None:
    item, muted = STATUS_ONLY[case]
    sources = {"redis-down", "postgres-down", "ladder-medium"}
    wait_for("inhibition sources known", lambda: all(
        status_of(stack, STATUS_ONLY[s][0])["state"] == "active" for s in sources), timeout=15)
    if muted:
        status = wait_for(f"{case} inhibited", lambda: inhibited(stack, item), timeout=15)
        assert status["state"] == "suppressed"
    else:
        # The sources are active and the inhibitor has seen them (the inhibited cases pass
        # within the same wait), so an empty inhibitedBy here is final.
        wait_for("inhibited cases applied", lambda: all(
            status_of(stack, a)["inhibitedBy"] for a, m in STATUS_ONLY.values() if m),
            timeout=15)
        assert status_of(stack, item)["inhibitedBy"] == []


def test_one_guides_critical_leaves_another_guides_level_and_its_production_post(
        stack: Stack) -> None:
    wait_for("HostCpuHigh critical active",
             lambda: status_of(stack, CPU_CRITICAL)["state"] == "active", timeout=15)
    (production,) = wait_for("#production-alerts post of the shared P2",
                             lambda: stack.slack("#production-alerts", "HostCpuHigh"),
                             timeout=WAIT)
    attachment = production["attachments"][0]
    assert attachment["title"] == "[FIRING:1] MEDIUM HostCpuHigh"
    assert "_dirt-free-crm,tpt-erp P2 (>80%); alert / host_" in attachment["text"]
    assert status_of(stack, CPU_P2)["inhibitedBy"] == []
    # tpt-erp's own channels get both levels: its medium route mails devops as well.
    assert [p["attachments"][0]["title"] for p in stack.slack("#alerts", "HostCpuHigh")] == [
        "[FIRING:1] MEDIUM HostCpuHigh"]
    assert stack.slack("#critical-alerts", "HostCpuHigh")


@pytest.mark.parametrize("case", sorted(GUIDE_LADDERS))
def test_ladders_mute_only_within_one_guide(stack: Stack, case: str) -> None:
    item, muted = GUIDE_LADDERS[case]
    sources = {"other-guide-slow-query", "shared-high"}
    wait_for("ladder sources active", lambda: all(
        status_of(stack, GUIDE_LADDERS[s][0])["state"] == "active" for s in sources),
        timeout=15)
    # Once every case that must be muted is, the inhibitor has seen the sources: an empty
    # inhibitedBy of the others is final.
    wait_for("muted cases applied", lambda: all(
        status_of(stack, a)["inhibitedBy"] for a, m in GUIDE_LADDERS.values() if m), timeout=15)
    assert bool(status_of(stack, item)["inhibitedBy"]) == muted, status_of(stack, item)


def test_an_escalated_page_goes_to_the_escalation_service_as_its_own_incident(
        stack: Stack) -> None:
    def both() -> dict[str, dict[str, Any]] | None:
        found = {e["routing_key"]: e for e in stack.stand_ins.pagerduty.events()
                 if e["payload"]["class"] == "AppEndpointDown"}
        return found if len(found) == 2 else None

    events = wait_for("AppEndpointDown at both PagerDuty services", both, timeout=WAIT)
    primary = events[stack.secrets["pagerduty_routing_key"]]
    escalated = events[stack.secrets["pagerduty_escalation_routing_key"]]
    assert primary["dedup_key"] != escalated["dedup_key"]  # a new incident, not an update
    assert escalated["payload"]["severity"] == "critical"
    assert escalated["payload"]["custom_details"]["guide_level"] == "P0, escalated after 2m"
    assert primary["payload"]["custom_details"]["guide_level"] == "P0"
    stack.settle()
    # #critical-alerts hears of the page and of its escalation; the SMS and the team mail
    # went out once, for the page.
    titles = [p["attachments"][0]["text"] for p in stack.slack("#critical-alerts",
                                                               "AppEndpointDown")]
    assert len(titles) == 2 and sum("escalated after 2m" in t for t in titles) == 1
    assert len([m for m in stack.stand_ins.twilio.messages()
                if "AppEndpointDown" in m["Body"]]) == 2  # one per on-call number
    assert len(stack.mails("AppEndpointDown")) == 1
    # dirt-free-crm's channel got the page; the escalation pages the next person only.
    (production,) = stack.slack("#production-alerts", "AppEndpointDown")
    assert production["attachments"][0]["title"] == "[FIRING:1] CRITICAL AppEndpointDown"
    assert "escalated" not in production["attachments"][0]["text"]


def test_no_secret_reaches_a_log_or_the_relay_metrics(stack: Stack) -> None:
    stack.settle()
    texts = {"alertmanager log": stack.am.log(), "relay log": stack.relay.log(),
             "relay metrics": stack.relay.scrape_text()}
    for name, secret in stack.secrets.items():
        if name.startswith("slack_"):
            secret = secret.rsplit("/", 1)[1]  # the webhook's secret part
        for where, text in texts.items():
            assert secret not in text, f"{name} leaked into the {where}"
    assert stack.ping_path not in texts["relay log"] + texts["relay metrics"]
