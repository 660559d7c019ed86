"""Alertmanager test helpers: the dev stack's stand-ins and Alertmanager (devstack/), the
shipped config with only secrets and addresses swapped (refapp/standin_alertmanager.py),
amtool, template rendering and alert payloads. Test-only: the drills take the dev-stack parts
from devstack/ directly.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from devstack.alertmanager import ALERTMANAGER, AMTOOL, Alertmanager
from devstack.standins import (
    TWILIO_SID,
    HeartbeatStandIn,
    LoopThread,
    PagerDutyStandIn,
    SlackStandIn,
    StandIn,
    StandIns,
    TwilioStandIn,
)
from devstack.wait import wait_for
from refapp.receivers import Behaviour, Mail, Received, SmtpStandIn, make_certificate
from refapp.standin_alertmanager import (
    REPO,
    SECRET_NAMES,
    SECRETS_PREFIX,
    SHIPPED_CONFIG,
    TEMPLATES,
    Swap,
    shipped_swaps,
    substitute,
)
from refapp.standin_alertmanager import write_config as write_test_config

# Re-exported for the tests; wait_for lives in the dev stack (the drills poll with it too).
__all__ = [
    "ALERTMANAGER", "AMTOOL", "REPO", "SECRETS_PREFIX", "SECRET_NAMES", "SHIPPED_CONFIG",
    "TEMPLATES", "TWILIO_SID", "Alertmanager", "Behaviour", "HeartbeatStandIn", "LoopThread",
    "Mail", "PagerDutyStandIn", "Received", "SlackStandIn", "SmtpStandIn", "StandIn", "StandIns",
    "Swap", "TwilioStandIn", "alert", "amtool", "make_certificate", "rendered", "shipped_swaps",
    "substitute", "wait_for", "webhook_payload", "write_test_config",
]


def alert(alertname: str, severity: str, annotations: dict[str, str] | None = None, /,
          **labels: str) -> dict[str, Any]:
    """An alert for the v2 API, firing from now until Alertmanager's resolve_timeout."""
    return {"labels": {"alertname": alertname, "severity": severity, **labels},
            "annotations": annotations or {"summary": f"{alertname} test alert"},
            "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([AMTOOL, *args], capture_output=True, text=True, timeout=60)


def rendered(template_text: str, data: dict[str, Any], workdir: Path,
             kind: str = "text") -> str:
    """`amtool template render` of the shipped templates for one alert group's data."""
    data_file = workdir / f"data-{time.monotonic_ns()}.json"
    data_file.write_text(json.dumps(data))
    result = amtool("template", "render", f"--template.glob={TEMPLATES}/*.tmpl",
                    f"--template.data={data_file}", f"--template.type={kind}",
                    f"--template.text={template_text}")
    assert result.returncode == 0, result.stderr
    # amtool ends the output with a newline of its own.
    return result.stdout.removesuffix("\n")


def webhook_payload(severity: str = "critical", status: str = "firing", alerts: int = 1,
                    summary: str = "API error rate 7% over the 5% limit",
                    annotations: dict[str, str] | None = None, **labels: str) -> dict[str, Any]:
    """Alertmanager template data for one group (the webhook payload has the same shape)."""
    common = {"alertname": "ApiErrorRateHigh", "severity": severity, "area": "api",
              "guide": "nova-crm", "guide_level": "critical", "job": "api", **labels}
    notes = {"summary": summary, "description": "5xx share above the guide's limit.",
             "runbook_url": "https://runbooks.example/ApiErrorRateHigh"}
    if annotations is not None:
        notes = annotations
    items = [{"status": status, "labels": {**common, "instance": f"web-{i}:8080"},
              "annotations": notes, "startsAt": "2024-05-01T10:00:00Z",
              "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": f"f{i}"}
             for i in range(alerts)]
    return {"version": "4", "receiver": "sms", "status": status,
            "externalURL": "http://am.example:9093", "groupKey": "{}:{}", "truncatedAlerts": 0,
            "groupLabels": {"alertname": common["alertname"], "severity": severity},
            "commonLabels": common, "commonAnnotations": notes, "alerts": items}
