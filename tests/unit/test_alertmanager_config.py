"""The shipped Alertmanager config and templates, checked with Alertmanager's own amtool:
the config validates, every severity/area/guide reaches exactly the channels the guides ask
for, and the templates render the colour, severity mapping, links and SMS text expected."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from alert_rules.generator.catalog import GUIDES as CATALOG_GUIDES
from saasmon.smsrelay.message import DEFAULT_TEMPLATE, WebhookMessage, render
from tests.support.alertmanager import (
    SECRET_NAMES,
    SECRETS_PREFIX,
    SHIPPED_CONFIG,
    Swap,
    amtool,
    rendered,
    shipped_swaps,
    substitute,
    webhook_payload,
    write_test_config,
)
from tests.support.yamlfile import load_yaml

CRITICAL = ["pagerduty", "sms", "slack-critical", "email-team"]
HIGH = ["slack-alerts", "email-devops"]
MEDIUM = ["slack-alerts"]
LOW = ["slack-monitoring"]
PRODUCTION = ["slack-production-alerts"]
ESCALATION = ["pagerduty-escalation", "slack-critical"]
FEEDBACK = ["slack-user-feedback"]
GUIDES = ["nova-crm", "estimate-library", "tpt-erp", "saas-ops-module"]


def shipped() -> dict[str, Any]:
    config: dict[str, Any] = load_yaml(SHIPPED_CONFIG)
    return config


def routes_test(*labels: str) -> list[str]:
    result = amtool("config", "routes", "test", f"--config.file={SHIPPED_CONFIG}", *labels)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().split(",")


def test_shipped_config_passes_amtool_check_config() -> None:
    result = amtool("check-config", str(SHIPPED_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    assert "21 inhibit rules" in result.stdout and "11 receivers" in result.stdout


@pytest.mark.parametrize("guide", GUIDES)
@pytest.mark.parametrize("area", ["api", "database", "cron", "business", "exporter"])
@pytest.mark.parametrize(("severity", "expected"), [
    ("critical", CRITICAL), ("high", HIGH), ("medium", MEDIUM), ("low", LOW)])
def test_each_severity_reaches_its_channels_whatever_the_area(
        severity: str, expected: list[str], area: str, guide: str) -> None:
    got = routes_test("alertname=SomethingWrong", f"severity={severity}", f"area={area}",
                      f"guide={guide}", "job=api", "instance=web-1:8080")
    assert got == expected_receivers({"severity": severity, "area": area, "guide": guide})
    if guide != "tpt-erp" or severity != "medium":
        assert got == expected
    else:  # tpt-erp § Alert Configuration: its "warning" goes to email and Slack.
        assert got == [*MEDIUM, "email-devops"]


@pytest.mark.parametrize(("severity", "expected"), [
    ("critical", FEEDBACK + CRITICAL), ("medium", FEEDBACK + MEDIUM), ("low", FEEDBACK + LOW)])
def test_support_alerts_also_post_to_user_feedback(severity: str, expected: list[str]) -> None:
    # nova-crm § 4 posts user feedback to #user-feedback; support alerts go there as well.
    got = routes_test("alertname=SupportTicketsHigh", f"severity={severity}", "area=support",
                      "guide=estimate-library", "job=saasmon-business")
    assert got == expected


@pytest.mark.parametrize(("severity", "expected"), [
    ("critical", PRODUCTION + CRITICAL), ("high", PRODUCTION + HIGH),
    ("medium", PRODUCTION + MEDIUM), ("low", LOW)])
def test_dirt_free_crm_alerts_also_post_to_production_alerts(
        severity: str, expected: list[str]) -> None:
    # dirt-free-crm § Issue Response: every P0-P2 alert is posted in #production-alerts;
    # the guide has no low level, so low stays in #monitoring only.
    got = routes_test("alertname=CronJobFailed", f"severity={severity}", "area=cron",
                      "guide=dirt-free-crm", "guide_level=P1")
    assert got == expected


@pytest.mark.parametrize(("guide", "severity", "expected"), [
    ("dirt-free-crm,tpt-erp", "medium", PRODUCTION + MEDIUM + ["email-devops"]),
    ("tpt-erp,dirt-free-crm", "medium", PRODUCTION + MEDIUM + ["email-devops"]),
    ("nova-crm,dirt-free-crm", "high", PRODUCTION + HIGH),
    ("dirt-free-crm,tpt-erp,saas-ops-module", "critical", PRODUCTION + CRITICAL),
    ("nova-crm,dirt-free-crm", "low", LOW),
    # Names that merely contain a guide's name are not that guide.
    ("not-dirt-free-crm", "medium", MEDIUM),
    ("tpt-erp-2", "medium", MEDIUM),
])
def test_an_alert_of_several_guides_takes_each_guides_route(
        guide: str, severity: str, expected: list[str]) -> None:
    # Issue 13 §2 r: a level two guides state is one alert whose guide label lists both;
    # dirt-free-crm's #production-alerts and tpt-erp's email still match it.
    got = routes_test("alertname=HostCpuHigh", f"severity={severity}", "area=host",
                      f"guide={guide}", "job=node", "instance=db-1:9100")
    assert got == expected


@pytest.mark.parametrize(("labels", "expected"), [
    # tpt-erp § Alert Configuration server_down, escalation 2 minutes; the level is shared
    # with dirt-free-crm (P0, acknowledge within 5 minutes), whose #production-alerts got
    # the page itself: the escalation pages the next person only.
    (("alertname=AppEndpointDown", "guide=dirt-free-crm,tpt-erp,saas-ops-module",
      "escalated_from=critical"), ESCALATION),
    # tpt-erp critical_error_rate, escalation 5 minutes.
    (("alertname=ApiErrorRateHigh", "guide=tpt-erp", "escalated_from=critical"), ESCALATION),
    (("alertname=PaymentFailures", "guide=dirt-free-crm", "escalated_from=critical",
      "area=integrations"), ESCALATION),
])
def test_an_escalated_critical_alert_pages_the_escalation_service(
        labels: tuple[str, ...], expected: list[str]) -> None:
    assert routes_test("severity=critical", *labels) == expected
    # Without the twin's label the same alert pages the primary on-call as before.
    plain = [x for x in labels if not x.startswith("escalated_from=")]
    assert "pagerduty-escalation" not in routes_test("severity=critical", *plain)


def test_an_escalated_lower_level_takes_its_new_severitys_route() -> None:
    # tpt-erp high_error_rate ("warning", medium), escalation 10 minutes: raised to high.
    got = routes_test("alertname=ApiErrorRateHigh", "severity=high", "guide=tpt-erp",
                      "escalated_from=medium")
    assert got == HIGH


def test_the_escalation_route_pages_at_once_and_reminds_with_the_critical_route() -> None:
    (route,) = [r for r in shipped()["route"]["routes"]
                if r.get("matchers") == ['escalated_from="critical"']]
    assert (route["group_wait"], route["repeat_interval"]) == ("10s", "15m")
    assert not route.get("continue")  # never also to the primary's receivers
    names = [r["name"] for r in shipped()["receivers"]]
    (escalation,) = [r for r in shipped()["receivers"] if r["name"] == "pagerduty-escalation"]
    (primary,) = [r for r in shipped()["receivers"] if r["name"] == "pagerduty"]
    # The same event fields as the primary service, another integration key.
    assert {**escalation["pagerduty_configs"][0], "routing_key_file": "x"} == {
        **primary["pagerduty_configs"][0], "routing_key_file": "x"}
    assert escalation["pagerduty_configs"][0]["routing_key_file"].endswith(
        "/pagerduty_escalation_routing_key")
    assert names.index("pagerduty-escalation") == names.index("pagerduty") + 1


@pytest.mark.parametrize("labels", [
    ("alertname=Watchdog", "severity=none", "area=meta"),
    ("alertname=SaasmonWatchdog", "severity=info", "guide_severity=none", "area=meta"),
    # Even labels that would match a people route do not take it off the heartbeat.
    ("alertname=Watchdog", "severity=critical", "area=meta", "guide=dirt-free-crm"),
])
def test_watchdog_goes_to_the_heartbeat_only(labels: tuple[str, ...]) -> None:
    assert routes_test(*labels) == ["heartbeat"]


@pytest.mark.parametrize("labels", [
    ("alertname=NoSeverity", "area=api"),
    ("alertname=BadSeverity", "severity=warning", "area=api"),
    # Another mixin's alerts in the critical/warning/info scheme carry no guide_severity.
    ("alertname=KubePodCrashLooping", "severity=warning"),
    ("alertname=InfoInhibitor", "severity=info"),
    ("alertname=DirtFreeUnknownSeverity", "severity=P1", "guide=dirt-free-crm"),
])
def test_alert_without_a_contract_severity_falls_back_to_alerts_channel(
        labels: tuple[str, ...]) -> None:
    assert routes_test(*labels) == ["slack-alerts"]


GENERATED = SHIPPED_CONFIG.parent.parent / "alert_rules" / "generated"
# The same rules rendered with severityScheme 'mixin' and alertNamePrefix 'Saasmon'.
MIXIN_VARIANT = GENERATED / "mixin-conventions"


def generated_alerts(directory: Path = GENERATED) -> list[dict[str, Any]]:
    """Alerting rules of the generated bundle (Prometheus rule files with top-level groups)."""
    found = []
    for path in sorted(directory.glob("*.y*ml")):
        data = load_yaml(path)
        if isinstance(data, dict) and isinstance(data.get("groups"), list):
            found += [r for g in data["groups"] for r in g.get("rules", []) if "alert" in r]
    return found


def expected_receivers(labels: dict[str, str]) -> list[str]:
    if labels.get("alertname", "").endswith("Watchdog") and labels.get("area") == "meta":
        return ["heartbeat"]
    by_severity = {"critical": CRITICAL, "high": HIGH, "medium": MEDIUM, "low": LOW}
    # The guides' level: severity itself, or guide_severity under severityScheme 'mixin'.
    severity = labels.get("guide_severity", labels.get("severity", ""))
    guides = labels.get("guide", "").split(",")  # a level several guides state lists them all
    if labels.get("escalated_from") == "critical":
        return ESCALATION  # a critical alert still firing after its escalation window
    receivers = by_severity.get(severity, ["slack-alerts"])
    if "tpt-erp" in guides and severity == "medium":
        receivers = [*MEDIUM, "email-devops"]  # tpt-erp § Alert Configuration: email, Slack
    if labels.get("area") == "support":
        receivers = FEEDBACK + receivers
    if "dirt-free-crm" in guides and severity in ("critical", "high", "medium"):
        receivers = PRODUCTION + receivers
    return receivers


MIXIN_SEVERITY = {"critical": "critical", "high": "warning", "medium": "warning", "low": "info",
                  "none": "info"}


@pytest.mark.parametrize("scheme", ["guides", "mixin"])
def test_every_generated_alert_follows_the_contract_and_reaches_its_channels(scheme: str) -> None:
    """Each scheme's rules reach every receiver of the guides' routing, the same way."""
    rules = generated_alerts(GENERATED if scheme == "guides" else MIXIN_VARIANT)
    assert rules
    seen: set[tuple[str, ...]] = set()
    reached: set[str] = set()
    for rule in rules:
        labels = {"alertname": rule["alert"], **rule.get("labels", {})}
        if scheme == "guides":
            assert labels.get("severity") in {"critical", "high", "medium", "low"} or (
                labels == {"alertname": "Watchdog", "severity": "none", "area": "meta"}), labels
            assert "guide_severity" not in labels
        else:
            assert labels["alertname"].startswith("Saasmon"), labels
            assert labels["severity"] == MIXIN_SEVERITY[labels["guide_severity"]], labels
        key = (labels["alertname"], labels["severity"], labels.get("guide", ""),
               labels.get("escalated_from", ""), labels.get("guide_severity", ""))
        if key in seen:
            continue
        seen.add(key)
        got = routes_test(*(f"{k}={v}" for k, v in sorted(labels.items())))
        assert got == expected_receivers(labels), labels
        reached.update(got)
    every = {r["name"] for r in shipped()["receivers"]}
    assert reached == every, f"receivers no {scheme} alert reaches: {every - reached}"


def test_amtool_verifies_the_expected_receivers() -> None:
    # amtool's own verification flag agrees with the parsed output (exit code 0 = match).
    result = amtool("config", "routes", "test", f"--config.file={SHIPPED_CONFIG}",
                    "--verify.receivers=" + ",".join(CRITICAL), "alertname=X", "severity=critical")
    assert result.returncode == 0, result.stdout + result.stderr
    wrong = amtool("config", "routes", "test", f"--config.file={SHIPPED_CONFIG}",
                   "--verify.receivers=slack-alerts", "alertname=X", "severity=critical")
    assert wrong.returncode != 0


def walk_routes(route: dict[str, Any]) -> list[dict[str, Any]]:
    found = [route]
    for child in route.get("routes", []):
        found += walk_routes(child)
    return found


def test_quiet_hours_mute_low_severity_only_from_22_to_07() -> None:
    config = shipped()
    muted = [r for r in walk_routes(config["route"]) if r.get("mute_time_intervals")]
    assert len(muted) == 1
    assert muted[0]["matchers"] == [LEVEL_ROUTE["low"], 'guide_severity=~"|low"']
    assert muted[0]["mute_time_intervals"] == ["quiet-hours"]
    assert routes_test("alertname=DiskFillingSlowly", "severity=low") == LOW
    assert routes_test("alertname=SaasmonDiskFillingSlowly", "severity=info", "guide_severity=low") == LOW
    (interval,) = [t for t in config["time_intervals"] if t["name"] == "quiet-hours"]
    (spec,) = interval["time_intervals"]
    assert spec["times"] == [{"start_time": "22:00", "end_time": "24:00"},
                             {"start_time": "00:00", "end_time": "07:00"}]
    assert spec["location"] == "UTC"
    assert set(spec) == {"times", "location"}  # every day of the week, every month


# The first matcher of each level's route: the level in either severity scheme (with
# guide_severity telling high from medium under 'mixin').
LEVEL_ROUTE = {"critical": 'severity="critical"', "high": 'severity=~"high|warning"',
               "medium": 'severity=~"medium|warning"', "low": 'severity=~"low|info"'}


def test_group_timings_honour_the_fifteen_minute_cooldown() -> None:
    root = shipped()["route"]
    # nova-crm's key: metric + severity (+ the guides' level, under severityScheme 'mixin').
    assert root["group_by"] == ["alertname", "severity", "guide_severity"]
    assert root["group_interval"] == "15m"
    by_severity = {r["matchers"][0]: r for r in root["routes"]}
    assert by_severity[LEVEL_ROUTE["critical"]]["repeat_interval"] == "15m"
    assert by_severity[LEVEL_ROUTE["critical"]]["group_wait"] == "10s"
    assert by_severity[LEVEL_ROUTE["high"]]["repeat_interval"] == "1h"
    assert by_severity[LEVEL_ROUTE["medium"]]["repeat_interval"] == "4h"
    assert by_severity[LEVEL_ROUTE["low"]]["repeat_interval"] == "24h"
    # No route shortens the cooldown, except the heartbeat, which never reaches a person.
    for route in walk_routes(root):
        if route.get("receiver") != "heartbeat":
            assert route.get("group_interval", "15m") == "15m", route
    watchdog = by_severity['alertname=~".*Watchdog"']
    assert (watchdog["group_wait"], watchdog["group_interval"], watchdog["repeat_interval"]) == (
        "0s", "1m", "30s")
    # tpt-erp's P2/P3 response times (30 min, 2 h) re-send its high and medium alerts sooner.
    for severity, interval in (("high", "30m"), ("medium", "2h")):
        tpt = [r for r in by_severity[LEVEL_ROUTE[severity]]["routes"]
               if r.get("matchers") == ['guide=~"(.+,)?tpt-erp(,.+)?"']]
        assert len(tpt) == 1 and tpt[0]["repeat_interval"] == interval


# Each step in both severity schemes (docs/alert-rules.md#conventions): severity="high", or
# severity="warning" with the guides' level in guide_severity.
LADDER = [(['severity="critical"'], ['severity=~"high|medium|low|warning|info"']),
          (['severity=~"high|warning"', 'guide_severity=~"|high"'],
           ['severity=~"medium|low|warning|info"', 'guide_severity=~"|medium|low"']),
          (['severity=~"medium|warning"', 'guide_severity=~"|medium"'],
           ['severity=~"low|info"', 'guide_severity=~"|low"'])]


def test_inhibition_rules_follow_the_label_contract() -> None:
    rules = shipped()["inhibit_rules"]
    # Names with any alertNamePrefix; `cluster` compared everywhere, so one cluster's alert
    # never mutes another's.
    assert rules[0] == {"source_matchers": ['alertname=~".*TargetDown"'],
                        "target_matchers": ['alertname!~".*TargetDown"', 'alertname!~".*Watchdog"'],
                        "equal": ["cluster", "job", "instance"]}
    assert [r["equal"] for r in rules[1:3]] == [["cluster", "area", "job", "instance", "target"],
                                                ["cluster", "area", "job", "instance"]]
    # Ladders stay within one guide (issue 13 §2 p): the same guide label ...
    assert rules[3:6] == [{"source_matchers": source, "target_matchers": target,
                           "equal": ["cluster", "alertname", "guide", "job", "instance", "target"]}
                          for source, target in LADDER]
    # ... or, for a level several guides state, each of its guides' own lower levels.
    assert rules[6:] == [{"source_matchers": [*source, f'guide=~"(.+,)?{guide}(,.+)?"'],
                          "target_matchers": [*target, f'guide="{guide}"'],
                          "equal": ["cluster", "alertname", "job", "instance", "target"]}
                         for guide in CATALOG_GUIDES for source, target in LADDER]


def secret_free(node: Any, path: str = "") -> list[str]:
    """Keys that would hold a secret inline instead of in a *_file."""
    inline = {"api_url", "routing_key", "service_key", "auth_password", "smtp_auth_password",
              "slack_api_url", "credentials", "password", "bearer_token", "auth_secret"}
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in inline:
                found.append(f"{path}.{key}")
            found += secret_free(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += secret_free(value, f"{path}[{index}]")
    return found


def file_fields(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k.endswith("_file") and isinstance(v, str)] + [
            f for v in node.values() for f in file_fields(v)]
    if isinstance(node, list):
        return [f for v in node for f in file_fields(v)]
    return []


def test_secrets_only_come_from_files_under_the_secrets_directory() -> None:
    config = shipped()
    assert secret_free(config) == []
    files = file_fields(config)
    assert sorted(set(files)) == sorted(SECRETS_PREFIX + name for name in SECRET_NAMES)
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            # Alertmanager 0.25 has no url_file: webhook URLs are the loopback relay's.
            assert webhook["url"].startswith("http://127.0.0.1:9636/"), webhook


def test_test_config_differs_from_the_shipped_one_only_in_secrets_and_addresses(
        tmp_path: Path) -> None:
    swaps = shipped_swaps(tmp_path / "secrets", "127.0.0.1:1", "http://127.0.0.1:2/v2/enqueue",
                          "127.0.0.1:3")
    path = write_test_config(tmp_path / "am", swaps)
    assert (tmp_path / "am" / "templates" / "sms.tmpl").exists()
    tested: dict[str, Any] = yaml.safe_load(path.read_text())
    original = shipped()
    for key in ("route", "inhibit_rules", "time_intervals", "templates"):
        assert tested[key] == original[key], key
    # Receivers: equal once the swapped strings are swapped back.
    back = path.read_text()
    for swap in swaps:
        back = back.replace(swap.new, swap.old)
    assert yaml.safe_load(back) == original
    checked = amtool("check-config", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_substitution_fails_loudly_when_the_shipped_file_changes_shape(tmp_path: Path) -> None:
    text = SHIPPED_CONFIG.read_text()
    swaps = shipped_swaps(tmp_path, "127.0.0.1:1", "http://127.0.0.1:2/v2/enqueue", "h:3")
    substitute(text, swaps)  # the shipped shape passes
    moved = text.replace("url: http://127.0.0.1:9636/alert", "url: http://relay.internal:9636/alert")
    with pytest.raises(AssertionError, match="changed shape"):
        substitute(moved, swaps)
    with pytest.raises(AssertionError, match="changed shape"):
        substitute(text + "\n# /etc/alertmanager/secrets/extra\n", swaps)
    with pytest.raises(AssertionError, match="not substituted"):
        substitute(text, [*swaps[1:], Swap(SECRETS_PREFIX, "/etc/alertmanager/other/", swaps[0].count)])


# -- templates --------------------------------------------------------------------------------
@pytest.mark.parametrize(("severity", "status", "colour", "pagerduty"), [
    ("critical", "firing", "#D50200", "critical"),
    ("high", "firing", "#F2711C", "error"),
    ("medium", "firing", "#F2C744", "warning"),
    ("low", "firing", "#439FE0", "info"),
    ("critical", "resolved", "#2EB67D", "critical"),
])
def test_slack_colour_and_pagerduty_severity_follow_the_alert_severity(
        severity: str, status: str, colour: str, pagerduty: str, tmp_path: Path) -> None:
    data = webhook_payload(severity, status)
    out = rendered('{{ template "saasmon.slack.color" . }}|'
                   '{{ template "saasmon.pagerduty.severity" . }}|'
                   '{{ template "saasmon.slack.title" . }}', data, tmp_path)
    title = f"[FIRING:1] {severity.upper()}" if status == "firing" else f"[RESOLVED] {severity.upper()}"
    assert out == f"{colour}|{pagerduty}|{title} ApiErrorRateHigh"


def test_links_fall_back_to_the_alertmanager_group_when_annotations_are_absent(
        tmp_path: Path) -> None:
    with_links = webhook_payload(annotations={"summary": "s", "runbook_url": "https://rb.example/x",
                                    "dashboard_url": "https://grafana.example/d/api"})
    out = rendered('{{ template "saasmon.runbook_url" . }} {{ template "saasmon.dashboard_url" . }}',
                   with_links, tmp_path)
    assert out == "https://rb.example/x https://grafana.example/d/api"
    bare = webhook_payload(annotations={"summary": "s"})
    matchers = "%7Balertname%3D%22ApiErrorRateHigh%22%2Cseverity%3D%22critical%22%7D"
    out = rendered('{{ template "saasmon.runbook_url" . }} {{ template "saasmon.silence_url" . }}',
                   bare, tmp_path)
    assert out == (f"http://am.example:9093/#/alerts?filter={matchers} "
                   f"http://am.example:9093/#/silences/new?filter={matchers}")


def test_a_logs_link_reaches_every_channel_only_when_configured(tmp_path: Path) -> None:
    """nova-crm asks for a logs link in notifications: the mixin's logsURL annotation."""
    logs = "https://logs.example/?q=job%3Dapi"
    with_logs = webhook_payload(annotations={"summary": "s", "logs_url": logs})
    without = webhook_payload(annotations={"summary": "s"})
    for template in ('{{ template "saasmon.email.text" . }}', '{{ template "saasmon.email.html" . }}',
                     '{{ template "saasmon.slack.text" . }}', '{{ template "saasmon.logs_url" . }}'):
        assert logs in rendered(template, with_logs, tmp_path), template
        out = rendered(template, without, tmp_path)
        assert "Logs" not in out and "logs.example" not in out, template
    pagerduty = shipped()["receivers"]
    (pd,) = [r for r in pagerduty if r["name"] == "pagerduty"]
    assert pd["pagerduty_configs"][0]["details"]["logs"] == '{{ template "saasmon.logs_url" . }}'


def test_a_resolved_group_of_two_guides_levels_tells_both(tmp_path: Path) -> None:
    # One group (alertname, severity) may hold a low level of estimate-library and one of
    # tpt-erp; when it resolves, the message names both, as the firing one did.
    data = webhook_payload(severity="low", status="resolved", alerts=2)
    data["commonAnnotations"] = {"summary": "s"}
    for item, guide in zip(data["alerts"], ("estimate-library", "tpt-erp"), strict=True):
        item["annotations"] = {"summary": "s", "description": f"above the level ({guide} § x)"}
    for template in ('{{ template "saasmon.slack.text" . }}',
                     '{{ template "saasmon.email.text" . }}'):
        text = rendered(template, data, tmp_path)
        assert "estimate-library § x" in text and "tpt-erp § x" in text, template


def test_email_html_escapes_alert_text(tmp_path: Path) -> None:
    data = webhook_payload(summary="<script>alert(1)</script> & more")
    html = rendered('{{ template "saasmon.email.html" . }}', data, tmp_path, kind="html")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    assert 'href="https://runbooks.example/ApiErrorRateHigh"' in html
    assert "background: #D50200" in html


def test_slack_text_lists_at_most_ten_alerts(tmp_path: Path) -> None:
    text = rendered('{{ template "saasmon.slack.text" . }}', webhook_payload(alerts=12), tmp_path)
    assert text.count("\n• `web-") == 10
    assert text.endswith("(10 of 12 alerts shown)")


def relay_text(data: dict[str, Any]) -> str:
    text, _ = render(DEFAULT_TEMPLATE, WebhookMessage.model_validate(data), 160)
    return text


@pytest.mark.parametrize("data", [
    webhook_payload(),
    webhook_payload(alerts=3, severity="high"),
    webhook_payload(summary="line one\n\n  line\ttwo   spaced"),
    webhook_payload(summary="x" * 300),  # cut: 157 characters and "..."
    webhook_payload(summary="y" * 122),  # exactly 160: not cut
    webhook_payload(summary="y" * 123),  # 161: cut
    webhook_payload(status="resolved", alerts=2),
    webhook_payload(annotations={"summary": ""}, severity="low"),
    {**webhook_payload(), "commonAnnotations": {}},  # summaries differ: the first alert's
], ids=["one", "three-high", "whitespace", "long", "exactly-160", "161", "resolved", "no-summary",
        "first-alert-summary"])
def test_sms_template_renders_the_same_text_as_the_relay(data: dict[str, Any],
                                                         tmp_path: Path) -> None:
    go = rendered('{{ template "saasmon.sms.text" . }}', data, tmp_path)
    assert go == relay_text(data)
    assert len(go) <= 160


def test_sms_text_is_cut_to_one_segment_with_an_ellipsis(tmp_path: Path) -> None:
    long = webhook_payload(summary="disk " * 100)
    text = relay_text(long)
    assert len(text) == 160 and text.endswith("...")
    assert text.startswith("CRITICAL ApiErrorRateHigh (1 firing): disk disk")
    exact = webhook_payload(summary="y" * 122)
    assert len(relay_text(exact)) == 160 and not relay_text(exact).endswith("...")
    resolved = copy.deepcopy(webhook_payload(status="resolved", alerts=2))
    assert relay_text(resolved) == (
        "CRITICAL ApiErrorRateHigh (2 resolved): API error rate 7% over the 5% limit")
