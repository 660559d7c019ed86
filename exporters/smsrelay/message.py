"""Alertmanager's webhook payload, and the one SMS text rendered per alert group."""

from __future__ import annotations

import json
import re
import string
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# The same text as `saasmon.sms.text` in alertmanager/templates/sms.tmpl (a test renders
# both and compares them): severity and alert name first, so a cut keeps what matters.
DEFAULT_TEMPLATE = "{severity} {alertname} ({count} {status}): {summary}"
FIELDS = ("severity", "alertname", "count", "status", "summary", "instance", "guide",
          "guide_level", "area")
ELLIPSIS = "..."  # three GSM characters: the Unicode ellipsis would force UCS-2 (70 a segment)

# GSM 03.38: the basic set costs one septet, the extension set two (escape + character).
# Text outside both would switch the whole message to UCS-2, so it is replaced.
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM_EXTENSION = frozenset("^{}\\[~]|€")
LOOKALIKES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                            "\u2013": "-", "\u2014": "-", "\u2026": "...", "\u00a0": " ",
                            "\t": " ", "\u2022": "-"})  # curly quotes, dashes, ellipsis...
# Go's \s (RE2), so the relay and the Go template collapse the same characters.
WHITESPACE = re.compile(r"[\t\n\f\r ]+")


class WebhookAlert(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class WebhookMessage(BaseModel):
    """Alertmanager webhook payload, version 4; fields the relay does not use are ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: str = ""
    group_key: str = Field(default="", alias="groupKey")
    truncated_alerts: int = Field(default=0, ge=0, alias="truncatedAlerts")
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    alerts: list[WebhookAlert] = Field(min_length=1, max_length=10_000)


# A width or precision in a template's format spec ({summary:.40}) beyond this is refused:
# no SMS is longer, and {summary:>999999999999} would allocate that many characters.
MAX_FORMAT_NUMBER = 1600
FORMAT_NUMBER = re.compile(r"[0-9]+")


def parse_webhook(body: bytes, charset: str | None) -> WebhookMessage:
    """One webhook request's payload. Any body that is not one raises ValueError (a pydantic
    ValidationError is one): bad JSON or text, an unknown charset, nesting past the parser's
    recursion limit."""
    try:
        data = json.loads(body.decode(charset or "utf-8"))
    except LookupError:
        raise ValueError("unknown charset") from None
    except RecursionError:
        raise ValueError("JSON nested too deep") from None
    return WebhookMessage.model_validate(data)


def check_template(template: str) -> None:
    """Raise ValueError naming the problem if the template cannot render."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"invalid template: {exc}") from None
    names = [name for _, name, _, _ in parsed if name is not None]
    for _, _, spec, _ in parsed:
        if spec and "{" in spec:
            # Filled in from alert data at render time: a label would choose the width.
            raise ValueError("invalid template: a format spec cannot hold a {field}")
        if any(len(n) > 4 or int(n) > MAX_FORMAT_NUMBER for n in FORMAT_NUMBER.findall(spec or "")):
            raise ValueError(f"invalid template: width or precision above {MAX_FORMAT_NUMBER}")
    for name in names:
        if name not in FIELDS:
            raise ValueError(f"unknown field {{{name}}}; known: {', '.join(FIELDS)}")
    try:
        template.format(**dict.fromkeys(FIELDS, "x"))
    except (ValueError, KeyError, IndexError) as exc:
        raise ValueError(f"invalid template: {exc}") from None


def template_fields(message: WebhookMessage) -> dict[str, str]:
    common = message.common_labels
    first = message.alerts[0]
    summary = message.common_annotations.get("summary") or first.annotations.get("summary", "")
    count = sum(1 for a in message.alerts if a.status == message.status)
    return {
        "severity": (common.get("severity") or "alert").upper(),
        "alertname": common.get("alertname") or message.group_labels.get("alertname", ""),
        "count": str(count + message.truncated_alerts),
        "status": message.status,
        "summary": WHITESPACE.sub(" ", summary),
        "instance": common.get("instance") or common.get("target") or common.get("job", ""),
        "guide": common.get("guide", ""),
        "guide_level": common.get("guide_level", ""),
        "area": common.get("area", ""),
    }


def to_gsm(text: str) -> str:
    text = text.translate(LOOKALIKES)
    return "".join(c if c in GSM_BASIC or c in GSM_EXTENSION else "?" for c in text)


def gsm_length(text: str) -> int:
    """Septets the text takes in one GSM-7 message."""
    return sum(2 if c in GSM_EXTENSION else 1 for c in text)


def render(template: str, message: WebhookMessage, max_length: int) -> tuple[str, bool]:
    """(SMS text, whether it was cut). A text longer than max_length septets keeps its
    beginning and ends in "..." so the whole fits in max_length."""
    text = to_gsm(template.format(**template_fields(message)))
    if gsm_length(text) <= max_length:
        return text, False
    budget = max_length - len(ELLIPSIS)
    kept: list[str] = []
    used = 0
    for char in text:
        cost = 2 if char in GSM_EXTENSION else 1
        if used + cost > budget:
            break
        kept.append(char)
        used += cost
    return "".join(kept) + ELLIPSIS, True
