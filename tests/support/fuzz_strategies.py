"""Hypothesis strategies for tests/integration/test_fuzz.py: config documents near the valid ones,
JSON values, beacon and webhook bodies, heartbeat state files."""

from __future__ import annotations

import copy
import json
import typing
from typing import Any

from hypothesis import strategies as st
from pydantic import BaseModel

from saasmon.cli import EXPORTERS, load_kind

# Placed only where a secret belongs (a DSN's password, a token): it must never be printed.
SENTINEL = "Fz9-sentinel-Pw"
DSN = f"postgresql://saasmon:{SENTINEL}@127.0.0.1:5432/app"
TOKEN = f"tok-{SENTINEL}-0123456789"

KINDS = sorted(EXPORTERS)

# A valid config per exporter kind (checked by a test): mutations start from here, so most
# examples reach the model's validators rather than stop at the first missing key.
BASE: dict[str, dict[str, Any]] = {
    "postgres": {"dsn": DSN, "target": "main", "interval_seconds": 15},
    "redis": {"targets": [{"name": "main", "url": f"redis://:{SENTINEL}@127.0.0.1:6379/0"},
                          {"name": "cache", "url": "redis://127.0.0.1:6380/1",
                           "password": TOKEN}],
              "key_patterns": [{"pattern": "session:*"}]},
    "cron": {"dsn": DSN, "heartbeat_token": TOKEN, "expected_jobs": 2,
             "jobs": [{"name": "nightly", "schedule": "0 3 * * *"},
                      {"name": "beat", "schedule": "*/5 * * * *", "source": "heartbeat",
                       "timezone": "Europe/Berlin", "severity": "low"}]},
    "integrations": {"dsn": DSN,
                     "modules": {"mine": {"prober": "http", "path": "/health",
                                          "headers": {"X-Api-Key": TOKEN}}},
                     "targets": {"app": {"url": "https://app.example.com", "module": "mine",
                                         "bearer_token": TOKEN}},
                     "collectors": {"payments": {"enabled": False}}},
    "business": {"dsn": DSN, "target": "app", "queries": {}},
    "webvitals": {"allowed_origins": ["https://app.example.com", "https://*.example.org"],
                  "routes": [{"name": "deal", "glob": "/deals/*"},
                             {"name": "home", "regex": "^/$"}],
                  "thresholds": {"lcp": {"good": 2500, "poor": 4000}},
                  "trusted_proxies": ["10.0.0.0/8"]},
    "sms-relay": {"twilio": {"account_sid": "AC" + "0123456789abcdef" * 2,
                             "auth_token": TOKEN, "from_number": "+15551234567"},
                  "recipients": ["+15557654321", "+4915112345678"],
                  "bearer_token": TOKEN, "template": "{severity} {alertname}: {summary}"},
}

# Keys whose value is a secret: only they get values holding the sentinel.
SECRET_KEYS = frozenset({"dsn", "url", "password", "auth_token", "bearer_token",
                         "heartbeat_token"})


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += _models(arg)
    return found


def field_names() -> list[str]:
    """Every key any exporter's config model knows, nested models included."""
    names: set[str] = set()
    todo: list[type[BaseModel]] = [load_kind(kind).config_model for kind in KINDS]
    seen: set[type[BaseModel]] = set()
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            names.add(name)
            todo += _models(info.annotation)
    return sorted(names)


KEYS = field_names()

# Strings the validators treat specially, none holding the sentinel.
PLAIN_STRINGS = [
    "", " ", "main", "app", "x" * 70, "0", "-1", "1e400", "nan", "inf", "true", "null", "~",
    "postgresql://127.0.0.1/app", "postgres://h:notaport/db", "mysql://h/db", "redis://h:6379/0",
    "rediss://h", "unix:///tmp/redis.sock", "http://", "https://status.example.com",
    "https://h:99999", "ftp://h", "https://*.example.com", "*", "https://a.example.com/path",
    "+15551234567", "+1", "AC" + "0" * 32, "0 3 * * *", "*/0 * * * *", "@daily", "0 0 31 2 *",
    "61 * * * *", "* * * * * *", "UTC", "Europe/Berlin", "Nope/Zone", "../../etc/passwd",
    "/deals/*", "^/deals/[0-9]+$", "(", "a{99999}", "10.0.0.0/8", "::1/200", "999.1.1.1",
    "{severity} {alertname}", "{", "}", "{0}", "{nope}", "{summary!r}", "{summary:.40}",
    "{summary:>999999999999}", "{summary:{severity}}", "{summary.upper}", "{summary[0]}",
    "statuspage", "stripe_status", "app_health", "http", "GET", "HEAD", "POST", "table",
    "heartbeat", "critical", "payments", "message_deliveries", "a\nb", "\x00", "\u2028",
    "café", "☃" * 3,
]
# Values for secret keys: the sentinel in the password, in valid and broken URLs.
SECRET_STRINGS = [
    DSN, f"postgresql://u:{SENTINEL}@h:99999/db", f"postgresql://u:{SENTINEL}@h:port/db",
    f"mysql://u:{SENTINEL}@h/db", f"postgresql://u:{SENTINEL}@[::1/db",
    f"redis://:{SENTINEL}@127.0.0.1:6379/0", f"http://:{SENTINEL}@h:1/",
    f"https://u:{SENTINEL}@app.example.com", SENTINEL, TOKEN, "short",
]

scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.booleans(), st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), st.sampled_from(PLAIN_STRINGS))


def _json_like(leaves: st.SearchStrategy[Any], keys: st.SearchStrategy[Any]
               ) -> st.SearchStrategy[Any]:
    return st.recursive(leaves, lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(keys, children, max_size=4)),
        max_leaves=12)


key_names: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(KEYS), st.text(max_size=12), st.integers(-3, 3), st.sampled_from(PLAIN_STRINGS))
values: st.SearchStrategy[Any] = _json_like(scalars, key_names)
secret_values: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from(SECRET_STRINGS), st.builds("postgresql://u:{}@{}/db".format,
                                               st.just(SENTINEL), st.text(max_size=12)),
    scalars)


# Stand-ins for paths (`*_file` keys), replaced by test_fuzz.py with files it wrote.
FILES = ["missing", "dir", "dsn", "token", "url", "empty", "binary", "bomb", "pack"]
file_tokens: st.SearchStrategy[Any] = st.one_of(
    st.sampled_from([f"@FILE:{name}" for name in FILES]), values)


def _mutate(draw: st.DrawFn, doc: Any) -> Any:
    """One random change somewhere in doc: set, add or delete a key or an item."""
    node = doc
    while True:
        children: list[Any] = (list(node) if isinstance(node, dict)
                               else list(range(len(node))) if isinstance(node, list) else [])
        containers = [k for k in children if isinstance(node[k], dict | list)]
        descend: bool = draw(st.booleans()) if containers else False
        if descend:
            node = node[draw(st.sampled_from(containers))]
            continue
        break
    action = draw(st.sampled_from(["set", "set", "delete", "add"]))
    if isinstance(node, dict):
        if action == "delete" and node:
            del node[draw(st.sampled_from(sorted(node, key=repr)))]
            return doc
        key = (draw(st.sampled_from(sorted(node, key=repr))) if node and action == "set"
               else draw(key_names))
        node[key] = draw(secret_values if key in SECRET_KEYS else file_tokens
                         if isinstance(key, str) and key.endswith("_file") else values)
    elif isinstance(node, list):
        if action == "delete" and node:
            node.pop(draw(st.integers(0, len(node) - 1)))
        elif action == "set" and node:
            node[draw(st.integers(0, len(node) - 1))] = draw(values)
        else:
            repeat: bool = draw(st.booleans()) if node else False
            node.append(copy.deepcopy(node[0]) if repeat else draw(values))
    return doc


@st.composite
def config_doc(draw: st.DrawFn, kind: str) -> Any:
    """A config document for `kind`: mostly its valid base with a few changes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(values)  # any YAML value at the top level, a mapping or not
    doc = copy.deepcopy(BASE[kind])
    for _ in range(draw(st.integers(0, 4))):
        doc = _mutate(draw, doc)
    return doc


# YAML text the dumper would never write: tags, anchors, flow collections, odd scalars.
YAML_SNIPPETS = [
    "a: &a [*a]\n", "a: !!python/object:os.system ls\n", "!!binary AAAA\n", "? [a, b]\n: c\n",
    "a: 2001-13-40\n", "a: 0x_\n", "a: 1_000\n", "--- a\n--- b\n", "a: *nope\n", "{a: 1, a: 2}\n",
    "a: '\\x00'\n", "\ufeffa: 1\n", "a: |\n  x\n b\n", "\t- a\n", "a: !!timestamp 2001-01-01\n",
    "a: !!float 1e999\n", "a: " + "9" * 5000 + "\n", "a:\n" + "  " * 40 + "- 1\n",
]
yaml_text: st.SearchStrategy[str] = st.one_of(
    st.text(max_size=200), st.sampled_from(YAML_SNIPPETS),
    st.lists(st.sampled_from(YAML_SNIPPETS), min_size=1, max_size=4).map("".join),
    st.text(alphabet="[]{}:-&*!|>'\" ,#?\n\tab0", max_size=60))
yaml_bytes: st.SearchStrategy[bytes] = st.one_of(
    st.binary(max_size=200), yaml_text.map(lambda t: t.encode("utf-8", "surrogatepass")))

# -- JSON bodies ---------------------------------------------------------------------------
json_scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30))
json_values: st.SearchStrategy[Any] = st.recursive(json_scalars, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)),
    max_leaves=16)


def json_bytes(documents: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """Bodies as a client may send them: JSON of the documents, cut, padded or garbled."""
    encoded = documents.map(lambda d: json.dumps(d).encode())
    return st.one_of(
        encoded, st.binary(max_size=100),
        st.tuples(encoded, st.integers(0, 200)).map(lambda p: p[0][:p[1]]),
        encoded.map(lambda b: b" \n" + b + b"\n "), encoded.map(lambda b: b + b"x"),
        encoded.map(lambda b: b.replace(b'"', b"'")),
        st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),
        st.integers(1, 3000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
        st.just(b"1" * 5000), st.sampled_from([b"NaN", b"-Infinity", b"\xef\xbb\xbf{}", b"\xff"]))


BEACON_NAMES = ["CLS", "FCP", "FID", "INP", "LCP", "TTFB", "lcp", "", "XYZ"]
beacon_entries: st.SearchStrategy[Any] = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"name": st.one_of(st.sampled_from(BEACON_NAMES), json_scalars)},
        optional={"value": st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                                     st.integers(), json_values),
                  "id": st.one_of(st.text(max_size=140), json_values),
                  "route": st.one_of(st.text(max_size=40), json_values),
                  "path": st.text(max_size=40),
                  "rating": st.one_of(st.sampled_from(["good", "poor"]), json_values),
                  "delta": json_scalars, "navigationType": json_scalars}))
beacon_documents: st.SearchStrategy[Any] = st.one_of(
    beacon_entries, st.lists(beacon_entries, max_size=25))

_labels = st.dictionaries(st.sampled_from(["alertname", "severity", "instance", "job", "target",
                                           "guide", "area", "x"]),
                          st.one_of(st.text(max_size=40), json_scalars), max_size=5)
_alert = st.fixed_dictionaries(
    {"status": st.sampled_from(["firing", "resolved", "pending"])},
    optional={"labels": _labels,
              "annotations": st.dictionaries(st.sampled_from(["summary", "description"]),
                                             st.text(max_size=300), max_size=2),
              "startsAt": st.text(max_size=10)})
webhook_documents: st.SearchStrategy[Any] = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"version": st.sampled_from(["4", "3", 4]),
         "status": st.sampled_from(["firing", "resolved", "x"]),
         "alerts": st.one_of(st.lists(_alert, max_size=4), json_values)},
        optional={"receiver": st.text(max_size=10), "groupKey": st.text(max_size=20),
                  "truncatedAlerts": st.one_of(st.integers(), json_scalars),
                  "groupLabels": _labels, "commonLabels": _labels,
                  "commonAnnotations": st.dictionaries(st.just("summary"),
                                                       st.text(max_size=300), max_size=1)}))

# -- heartbeat state files -----------------------------------------------------------------
_times = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True),
                   st.integers(-5, 2 * 10**10), json_scalars)
_job_state = st.one_of(json_values, st.fixed_dictionaries(
    {"known_since": _times},
    optional={"last_start": _times, "last_success": _times, "last_failure": _times,
              "last_finish": _times, "last_duration": _times,
              "last_status": st.sampled_from(["success", "failed", "x", None]),
              "consecutive_failures": st.one_of(st.integers(-1, 2**60), json_scalars),
              "runs": st.one_of(st.dictionaries(st.sampled_from(["success", "failed", "x"]),
                                                st.one_of(st.integers(-1, 2**60), json_scalars),
                                                max_size=3), json_values),
              "open_runs": st.one_of(st.dictionaries(st.text(max_size=8), _times, max_size=3),
                                     json_values)}))
state_documents: st.SearchStrategy[Any] = st.one_of(
    json_values,
    st.fixed_dictionaries({"version": st.sampled_from([1, 2, "1", None]),
                           "jobs": st.one_of(st.dictionaries(st.text(max_size=10), _job_state,
                                                             max_size=3), json_values)}))
