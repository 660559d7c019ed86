"""Web Vitals receiver as a real process, fed real HTTP beacons from an aiohttp client."""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from devstack.exporter import Exporter, run_cli
from devstack.metrics import Samples, parse, total, value
from saasmon.webvitals.config import RateLimit
from saasmon.webvitals.limits import ClientResolver, DedupeCache, RateLimiter

Run = Callable[..., Exporter]
ORIGIN = "https://app.example.com"
TEXT = "text/plain;charset=UTF-8"  # what navigator.sendBeacon sends with a string body
ROUTES = [
    {"name": "/deals/:id", "glob": "/deals/*"},
    {"name": "/contacts/:id/notes", "regex": "/contacts/[0-9]+/notes"},
    {"name": "/reports", "glob": "/reports/**"},
    {"name": "/", "glob": "/"},
]
REASONS = ("origin", "content_type", "too_large", "rate_limited_client", "rate_limited_global",
           "invalid_json", "batch_too_large", "invalid", "unknown_metric", "out_of_range",
           "duplicate")


def config(**extra: Any) -> dict[str, Any]:
    return {"allowed_origins": [ORIGIN, "https://*.example.org"], "routes": ROUTES, **extra}


def report(name: str, value: Any, id_: str, route: str | None = "/deals/1",
           **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "value": value, "id": id_, **extra}
    if route is not None:
        body["route"] = route
    return body


async def post(session: aiohttp.ClientSession, exporter: Exporter, body: Any, *,
               origin: str | None = ORIGIN, content_type: str | None = TEXT,
               headers: dict[str, str] | None = None) -> aiohttp.ClientResponse:
    """POST /beacon; dicts and lists are sent as JSON text, str/bytes as they are."""
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    sent = dict(headers or {})
    if origin is not None:
        sent["Origin"] = origin
    if content_type is not None:
        sent["Content-Type"] = content_type
    async with session.post(f"{exporter.url}/beacon", data=data, headers=sent,
                            skip_auto_headers=["Content-Type"]) as response:
        await response.read()
        return response


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def bucket(samples: Samples, metric: str, le: str, **labels: str) -> float:
    return value(samples, f"{metric}_bucket", le=le, **labels)


def rejected(samples: Samples, reason: str) -> float:
    return value(samples, "webvitals_beacons_rejected_total", reason=reason)


def routes_seen(samples: Samples) -> set[str]:
    return {dict(labels)["route"] for name, labels in samples
            if name.startswith("webvitals_") and name.endswith("_count")}


async def test_beacons_fill_threshold_buckets_with_exact_counts_sums_and_server_ratings(
        run_exporter: Run, session: aiohttp.ClientSession) -> None:
    exporter = run_exporter("webvitals", config())
    lcp_ms = [120, 2500, 2500.5, 4000, 4000.5, 59000]
    for i, ms in enumerate(lcp_ms):
        # The client claims "good" for all: the exported rating is recomputed regardless.
        response = await post(session, exporter, report("LCP", ms, f"lcp-{i}", rating="good"))
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    # application/json works as well as sendBeacon's text/plain.
    others = [report("CLS", 0.1, "c1"), report("CLS", 0.25, "c2"), report("CLS", 0.2501, "c3"),
              report("TTFB", 700, "t1", rating="good"), report("FID", 100, "f1"),
              report("INP", 200, "i1"), report("INP", 500, "i2"), report("FCP", 1800, "p1"),
              report("FCP", 3000, "p2", rating="needs-improvement")]
    for body in others:
        assert (await post(session, exporter, body, content_type="application/json")).status == 204

    s = exporter.scrape()
    lcp, deals = "webvitals_lcp_seconds", {"route": "/deals/:id"}
    # 2500 ms is exactly the 2.5 s edge and the good threshold: counted there, rated good.
    assert bucket(s, lcp, "0.25", rating="good", **deals) == 1
    assert bucket(s, lcp, "2.0", rating="good", **deals) == 1
    assert bucket(s, lcp, "2.5", rating="good", **deals) == 2
    assert value(s, f"{lcp}_count", rating="good", **deals) == 2
    assert value(s, f"{lcp}_sum", rating="good", **deals) == pytest.approx(2.62)
    assert bucket(s, lcp, "2.5", rating="needs-improvement", **deals) == 0
    assert bucket(s, lcp, "3.0", rating="needs-improvement", **deals) == 1
    assert bucket(s, lcp, "4.0", rating="needs-improvement", **deals) == 2
    assert value(s, f"{lcp}_sum", rating="needs-improvement", **deals) == pytest.approx(6.5005)
    assert bucket(s, lcp, "4.0", rating="poor", **deals) == 0
    assert bucket(s, lcp, "5.0", rating="poor", **deals) == 1
    assert bucket(s, lcp, "30.0", rating="poor", **deals) == 1  # 59 s is above every edge
    assert bucket(s, lcp, "+Inf", rating="poor", **deals) == 2
    assert value(s, f"{lcp}_sum", rating="poor", **deals) == pytest.approx(63.0005)

    assert bucket(s, "webvitals_cls", "0.1", rating="good", **deals) == 1
    assert bucket(s, "webvitals_cls", "0.05", rating="good", **deals) == 0
    assert bucket(s, "webvitals_cls", "0.25", rating="needs-improvement", **deals) == 1
    assert bucket(s, "webvitals_cls", "0.25", rating="poor", **deals) == 0
    assert bucket(s, "webvitals_cls", "0.5", rating="poor", **deals) == 1
    # TTFB 700 ms: good for the web-vitals library (800 ms), needs-improvement for the
    # guides' 600 ms (nova-crm) that the exporter applies; the disagreement is counted.
    assert bucket(s, "webvitals_ttfb_seconds", "0.6", rating="needs-improvement", **deals) == 0
    assert bucket(s, "webvitals_ttfb_seconds", "0.8", rating="needs-improvement", **deals) == 1
    assert bucket(s, "webvitals_fid_seconds", "0.1", rating="good", **deals) == 1
    assert bucket(s, "webvitals_inp_seconds", "0.2", rating="good", **deals) == 1
    assert bucket(s, "webvitals_inp_seconds", "0.3", rating="needs-improvement", **deals) == 0
    assert bucket(s, "webvitals_inp_seconds", "0.5", rating="needs-improvement", **deals) == 1
    assert bucket(s, "webvitals_fcp_seconds", "1.8", rating="good", **deals) == 1
    assert bucket(s, "webvitals_fcp_seconds", "3.0", rating="needs-improvement", **deals) == 1
    assert value(s, "webvitals_fcp_seconds_sum", rating="good", **deals) == pytest.approx(1.8)

    assert value(s, "webvitals_beacons_accepted_total") == len(lcp_ms) + len(others)
    assert total(s, "webvitals_beacons_rejected_total") == 0
    # LCP: 4 of 6 claimed "good" wrongly; TTFB: the library's threshold differs.
    assert value(s, "webvitals_client_rating_mismatches_total", metric="lcp") == 4
    assert value(s, "webvitals_client_rating_mismatches_total", metric="ttfb") == 1
    assert value(s, "webvitals_client_rating_mismatches_total", metric="fcp") == 0


async def test_batch_records_every_report_and_counts_bad_entries_one_by_one(
        run_exporter: Run, session: aiohttp.ClientSession) -> None:
    exporter = run_exporter("webvitals", config(max_batch=8))
    page = [report(name, 0.05 if name == "CLS" else 50, f"b-{name}", route="/reports/q3/summary")
            for name in ("CLS", "FCP", "FID", "INP", "LCP", "TTFB")]
    assert (await post(session, exporter, page)).status == 204
    mixed = [report("LCP", 1000, "m1"), report("LCP", "slow", "m2"), report("TTI", 10, "m3"),
             report("LCP", -1, "m4"), 42]
    assert (await post(session, exporter, mixed)).status == 202  # partly accepted
    assert (await post(session, exporter, [report("LCP", -1, "n1")])).status == 400
    too_many = [report("LCP", 1000, f"x{i}") for i in range(9)]
    assert (await post(session, exporter, too_many)).status == 413

    s = exporter.scrape()
    assert value(s, "webvitals_beacons_accepted_total") == 7
    for name in ("cls", "fcp_seconds", "fid_seconds", "inp_seconds", "lcp_seconds",
                 "ttfb_seconds"):
        assert value(s, f"webvitals_{name}_count", route="/reports", rating="good") == 1
    assert rejected(s, "invalid") == 2  # "slow" and 42
    assert rejected(s, "unknown_metric") == 1
    assert rejected(s, "out_of_range") == 2
    assert rejected(s, "batch_too_large") == 1  # one per request: its entries are not read
    assert value(s, "webvitals_lcp_seconds_count", route="/deals/:id", rating="good") == 1


async def test_page_paths_map_to_configured_routes_and_everything_else_to_other(
        run_exporter: Run, session: aiohttp.ClientSession) -> None:
    exporter = run_exporter("webvitals", config())
    cases = {
        "/deals/42": "/deals/:id",
        "/deals/42/": "/deals/:id",  # trailing slash
        "/deals/42?tab=notes#top": "/deals/:id",  # query and fragment
        "https://app.example.com/deals/7": "/deals/:id",  # location.href
        "/deals/42/edit": "other",  # `*` is one segment
        "/contacts/12/notes": "/contacts/:id/notes",
        "/contacts/x/notes": "other",  # regex is anchored and needs digits
        "/reports/2024/q1/sales": "/reports",  # `**` spans segments
        "/": "/",
        "/admin/secret-page-nobody-configured": "other",
        "not a path at all": "other",
        "/" + "a" * 2000: "other",
    }
    batch = [report("LCP", 1000, f"r{i}", route=path) for i, path in enumerate(cases)]
    batch.append(report("LCP", 1000, "no-route", route=None))  # page sent no route
    batch.append(report("LCP", 1000, "by-path", route=None, path="/deals/9"))  # `path` alias
    assert (await post(session, exporter, batch)).status == 204

    s = exporter.scrape()
    expected: dict[str, int] = {}
    for route in [*cases.values(), "other", "/deals/:id"]:
        expected[route] = expected.get(route, 0) + 1
    got = {route: value(s, "webvitals_lcp_seconds_count", route=route, rating="good")
           for route in expected}
    assert got == expected
    assert routes_seen(s) == set(expected)  # nothing from the data leaked into labels


async def test_cors_preflight_answers_listed_origins_and_rejects_others(
        run_exporter: Run, session: aiohttp.ClientSession) -> None:
    exporter = run_exporter("webvitals", config())
    preflight = {"Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "content-type"}
    for origin in (ORIGIN, "https://crm.example.org"):
        async with session.options(f"{exporter.url}/beacon",
                                   headers={"Origin": origin, **preflight}) as response:
            assert response.status == 204
            assert response.headers["Access-Control-Allow-Origin"] == origin
            assert response.headers["Access-Control-Allow-Credentials"] == "true"
            assert "POST" in response.headers["Access-Control-Allow-Methods"]
            assert response.headers["Access-Control-Allow-Headers"] == "Content-Type"
            assert response.headers["Vary"] == "Origin"
    for origin in ("https://evil.example.net", "http://app.example.com",
                   "https://example.org.evil.com", "https://a/b.example.org", "null"):
        async with session.options(f"{exporter.url}/beacon",
                                   headers={"Origin": origin, **preflight}) as response:
            assert response.status == 403, origin
            assert "Access-Control-Allow-Origin" not in response.headers

    bad = await post(session, exporter, report("LCP", 1000, "e1"),
                     origin="https://evil.example.net")
    assert bad.status == 403
    assert "Access-Control-Allow-Origin" not in bad.headers
    assert (await post(session, exporter, report("LCP", 1000, "e2"), origin=None)).status == 403
    ok = await post(session, exporter, report("LCP", 1000, "e3"), origin="https://x.example.org")
    assert ok.status == 204
    assert ok.headers["Access-Control-Allow-Origin"] == "https://x.example.org"
    # sendBeacon's text/plain request is no-cors: its response is opaque, no CORS headers.
    beacon = await post(session, exporter, report("LCP", 1000, "e4"),
                        headers={"Sec-Fetch-Mode": "no-cors"})
    assert beacon.status == 204
    assert "Access-Control-Allow-Origin" not in beacon.headers
    # ...but its origin is checked all the same.
    forged = await post(session, exporter, report("LCP", 1000, "e5"),
                        origin="https://evil.example.net", headers={"Sec-Fetch-Mode": "no-cors"})
    assert forged.status == 403

    s = exporter.scrape()
    assert rejected(s, "origin") == 3
    assert value(s, "webvitals_beacons_accepted_total") == 2


async def test_missing_origin_is_accepted_only_when_configured(
        run_exporter: Run, session: aiohttp.ClientSession) -> None:
    exporter = run_exporter("webvitals", config(allow_missing_origin=True))
    response = await post(session, exporter, report("LCP", 1000, "o1"), origin=None)
    assert response.status == 204
    assert "Access-Control-Allow-Origin" not in response.headers
    assert value(exporter.scrape(), "webvitals_beacons_accepted_total") == 1


async def test_bodies_over_the_cap_are_refused_whether_sized_or_chunked(
        run_exporter: Run, session: aiohttp.ClientSession) -> None:
    exporter = run_exporter("webvitals", config(max_body_bytes=512))
    small = report("LCP", 1000, "s1")
    padded = json.dumps(small) + " " * (512 - len(json.dumps(small)))  # exactly at the cap
    assert (await post(session, exporter, padded)).status == 204
    assert (await post(session, exporter, padded + " ")).status == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(16):
            yield b" " * 1024
        yield json.dumps(report("LCP", 1000, "s2")).encode()

    # A chunked body states no length: the exporter stops reading at the cap.
    async with session.post(f"{exporter.url}/beacon", data=chunks(),
                            headers={"Origin": ORIGIN, "Content-Type": TEXT}) as response:
        assert response.status == 413
    async with session.post(f"{exporter.url}/beacon", data=chunks_of(small),
                            headers={"Origin": ORIGIN, "Content-Type": TEXT}) as response:
        assert response.status == 204  # a small chunked body is fine

    s = exporter.scrape()
    assert rejected(s, "too_large") == 2
    assert value(s, "webvitals_beacons_accepted_total") == 2


async def chunks_of(body: dict[str, Any]) -> AsyncIterator[bytes]:
    text = json.dumps({**body, "id": "chunked-ok"}).encode()
    yield text[:10]
    yield text[10:]


async def test_unsupported_content_types_are_refused(
        run_exporter: Run, session: aiohttp.ClientSession) -> None:
    exporter = run_exporter("webvitals", config())
    body = report("LCP", 1000, "ct")
    for content_type in ("application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                         "text/plain; charset=ISO-8859-1"):
        assert (await post(session, exporter, body, content_type=content_type)).status == 415
    # A Blob without a type arrives with no Content-Type at all: accepted.
    assert (await post(session, exporter, body, content_type=None)).status == 204
    s = exporter.scrape()
    assert rejected(s, "content_type") == 3
    assert value(s, "webvitals_beacons_accepted_total") == 1


# Refill so slow (one token per 1000 s) that no token can come back during a test.
SLOW = {"per_client_rate": 0.001, "per_client_burst": 5}


async def test_per_client_limit_rejects_exactly_the_requests_beyond_the_burst(
        run_exporter: Run, session: aiohttp.ClientSession) -> None:
    # No trusted proxies: X-Forwarded-For is the client's own claim and is ignored, so
    # rotating it does not buy a fresh bucket.
    exporter = run_exporter("webvitals", config(rate_limit=SLOW))
    statuses = [(await post(session, exporter, report("LCP", 1000, f"c{i}"),
                            headers={"X-Forwarded-For": f"203.0.113.{i}"})).status
                for i in range(8)]
    assert statuses == [204] * 5 + [429] * 3
    s = exporter.scrape()
    assert rejected(s, "rate_limited_client") == 3
    assert rejected(s, "rate_limited_global") == 0
    assert value(s, "webvitals_beacons_accepted_total") == 5
    assert value(s, "webvitals_rate_limit_clients") == 1


async def test_clients_behind_a_trusted_proxy_get_a_bucket_each(
        run_exporter: Run, session: aiohttp.ClientSession) -> None:
    exporter = run_exporter("webvitals", config(rate_limit=SLOW,
                                                trusted_proxies=["127.0.0.0/8"]))
    n = 0
    statuses: dict[str, list[int]] = {}
    for client in ("198.51.100.7", "198.51.100.8", "2001:db8:1:2::5"):
        for i in range(7):
            n += 1
            # The left part is whatever the client wrote; the proxy appended the real peer.
            forwarded = f"10.9.9.{i}, {client}"
            response = await post(session, exporter, report("LCP", 1000, f"p{n}"),
                                  headers={"X-Forwarded-For": forwarded})
            statuses.setdefault(client, []).append(response.status)
    # Another host in the same IPv6 /64 shares that client's (empty) bucket.
    response = await post(session, exporter, report("LCP", 1000, "v6"),
                          headers={"X-Forwarded-For": "2001:db8:1:2::99"})
    assert response.status == 429
    assert all(s == [204] * 5 + [429] * 2 for s in statuses.values()), statuses
    s = exporter.scrape()
    assert rejected(s, "rate_limited_client") == 3 * 2 + 1
    assert value(s, "webvitals_rate_limit_clients") == 3


async def test_global_limit_caps_all_clients_together(
        run_exporter: Run, session: aiohttp.ClientSession) -> None:
    exporter = run_exporter("webvitals", config(
        trusted_proxies=["127.0.0.1"],
        rate_limit={"global_rate": 0.001, "global_burst": 5}))
    statuses = [(await post(session, exporter, report("LCP", 1000, f"g{i}"),
                            headers={"X-Forwarded-For": f"198.51.100.{i}"})).status
                for i in range(8)]
    assert statuses == [204] * 5 + [429] * 3
    s = exporter.scrape()
    assert rejected(s, "rate_limited_global") == 3
    assert rejected(s, "rate_limited_client") == 0
    assert value(s, "webvitals_rate_limit_clients") == 8


async def test_a_beacon_id_is_counted_once(run_exporter: Run,
                                           session: aiohttp.ClientSession) -> None:
    exporter = run_exporter("webvitals", config())
    first = report("CLS", 0.05, "v4-1700000000000-42")
    assert (await post(session, exporter, first)).status == 204
    # The page flushed again (visibilitychange, then pagehide): same id, later value.
    assert (await post(session, exporter, {**first, "value": 0.3})).status == 400
    # Same id with another metric name is another report (ids are per metric instance).
    assert (await post(session, exporter, {**first, "name": "LCP", "value": 900})).status == 204
    s = exporter.scrape()
    assert rejected(s, "duplicate") == 1
    assert value(s, "webvitals_cls_count", route="/deals/:id", rating="good") == 1
    assert value(s, "webvitals_cls_sum", route="/deals/:id", rating="good") == 0.05
    assert total(s, "webvitals_cls_count") == 1
    assert value(s, "webvitals_dedupe_entries") == 2


async def test_out_of_range_and_mistyped_values_are_rejected_not_recorded(
        run_exporter: Run, session: aiohttp.ClientSession) -> None:
    exporter = run_exporter("webvitals", config(max_duration_seconds=60, max_cls=10))
    bodies = {
        "out_of_range": ['{"name":"LCP","value":-0.5,"id":"a"}',
                         '{"name":"LCP","value":60000.5,"id":"b"}',
                         '{"name":"CLS","value":10.01,"id":"c"}',
                         '{"name":"LCP","value":NaN,"id":"d"}',
                         '{"name":"LCP","value":Infinity,"id":"e"}',
                         '{"name":"LCP","value":1e999,"id":"f"}',
                         '{"name":"LCP","value":' + "9" * 400 + ',"id":"g"}'],
        "invalid": ['{"name":"LCP","value":true,"id":"h"}',
                    '{"name":"LCP","value":"1000","id":"i"}',
                    '{"name":"LCP","value":1000}',
                    '{"name":"LCP","value":1000,"id":""}',
                    '{"name":"LCP","value":1000,"id":' + json.dumps("x" * 129) + "}",
                    '{"name":"LCP","value":1000,"id":7}',
                    '{"name":"LCP","value":1000,"id":"j","route":["/deals/1"]}',
                    '{"name":null,"value":1000,"id":"k"}'],
        "unknown_metric": ['{"name":"TTI","value":1000,"id":"l"}',
                           '{"name":"lcp","value":1000,"id":"m"}'],
    }
    for items in bodies.values():
        for body in items:
            assert (await post(session, exporter, body)).status == 400, body
    # Right at the limits is still data.
    assert (await post(session, exporter, report("LCP", 60000, "edge1"))).status == 204
    assert (await post(session, exporter, report("CLS", 0, "edge2"))).status == 204
    s = exporter.scrape()
    for reason, items in bodies.items():
        assert rejected(s, reason) == len(items), reason
    assert value(s, "webvitals_beacons_accepted_total") == 2


JUNK: list[bytes] = [
    b"", b"   ", b"{", b"}", b"[", b"[]", b"{}", b"null", b"true", b"42", b'"LCP"',
    b"\xff\xfe\x00garbage", b"\xef\xbb\xbf" + b'{"name":"LCP","value":1,"id":"bom"}',
    b'{"name":"LCP","value":1,"id":"x"', b"[" * 5000 + b"]" * 5000,  # deep nesting
    b'{"a":' * 3000 + b"1" + b"}" * 3000, b"[1,2,3]", b'[{"name":"LCP"}]',
    b'{"name":"LCP","value":1e308,"id":"big"}', b'{"name":"LCP","value":-1e308,"id":"neg"}',
    b'{"name":"\\ud800","value":1,"id":"\\udfff"}', "{\"name\":\"LCP\",\"value\":1,"
    "\"id\":\"ünïcødé-✓\",\"route\":\"/deals/ü/✓\"}".encode()[:-3],
    b'{"name":"LCP","value":[1],"id":"arr"}', b'{"name":{"x":1},"value":1,"id":"obj"}',
    b'{"name":"LCP","value":1,"id":"r","route":{"$gt":""}}', b"\x00" * 300,
    "{\"name\":\"CLS\",\"value\":0.1,\"id\":\"\U0001F600\"\u2028}".encode()[:-1] + b"\x80",
    json.dumps([[report("LCP", 1, "nested")]]).encode(),
]


async def test_junk_bodies_are_rejected_and_the_endpoint_keeps_working(
        run_exporter: Run, session: aiohttp.ClientSession) -> None:
    exporter = run_exporter("webvitals", config())
    for body in JUNK:
        response = await post(session, exporter, body)
        assert 400 <= response.status < 500, body[:60]
    assert (await post(session, exporter, b"x" * 20_000)).status == 413  # oversized
    assert (await post(session, exporter, json.dumps(report(
        "LCP", 1, "ünïcødé-✓", route="/deals/ü/✓")))).status == 204  # unicode is data

    s = exporter.scrape()
    assert value(s, "webvitals_beacons_accepted_total") == 1
    # Every junk request was counted under some bounded reason, none was lost.
    assert total(s, "webvitals_beacons_rejected_total") >= len(JUNK) + 1
    assert {dict(ls)["reason"] for n, ls in s if n == "webvitals_beacons_rejected_total"} == set(
        REASONS)
    assert exporter.proc is not None and exporter.proc.poll() is None
    log = exporter.log()
    assert "Traceback" not in log and "Error handling request" not in log, log


async def test_histograms_survive_a_config_reload(
        run_exporter: Run, session: aiohttp.ClientSession) -> None:
    before = config(routes=[*ROUTES, {"name": "/old", "glob": "/old/*"}])
    exporter = run_exporter("webvitals", before)
    assert (await post(session, exporter, [report("LCP", 1000, "r1"),
                                           report("LCP", 1000, "r2", route="/old/1")])).status == 204
    # New thresholds, /old removed, /new added.
    exporter.write_config(config(routes=[*ROUTES, {"name": "/new", "glob": "/new/*"}],
                                 thresholds={"lcp": {"good": 500, "poor": 800}}))
    async with session.post(f"{exporter.url}/-/reload") as response:
        assert response.status == 200
    batch = [report("LCP", 1000, "r3"), report("LCP", 1000, "r4", route="/new/1"),
             report("LCP", 1000, "r1")]  # r1 again: dedupe memory survived the reload too
    assert (await post(session, exporter, batch)).status == 202

    s = exporter.scrape()
    assert value(s, "webvitals_lcp_seconds_count", route="/deals/:id", rating="good") == 1
    assert value(s, "webvitals_lcp_seconds_count", route="/deals/:id", rating="poor") == 1
    assert value(s, "webvitals_lcp_seconds_count", route="/new", rating="poor") == 1
    assert "/old" not in routes_seen(s)  # a removed route's series go, memory stays bounded
    assert value(s, "webvitals_beacons_accepted_total") == 4
    assert rejected(s, "duplicate") == 1
    assert value(s, "webvitals_exporter_config_last_reload_successful") == 1


async def test_metrics_pass_promtool_check(run_exporter: Run,
                                           session: aiohttp.ClientSession) -> None:
    exporter = run_exporter("webvitals", config())
    names = ("CLS", "FCP", "FID", "INP", "LCP", "TTFB")
    await post(session, exporter, [report(n, 0.2 if n == "CLS" else 900, f"pt-{n}")
                                   for n in names])
    await post(session, exporter, b"junk")
    text = exporter.scrape_text()
    result = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                            capture_output=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# TYPE webvitals_cls histogram" in text
    assert "# TYPE webvitals_lcp_seconds histogram" in text
    samples = parse(text)
    assert value(samples, "webvitals_beacons_rejected_total", reason="invalid_json") == 1
    assert not math.isnan(value(samples, "webvitals_cls_sum", route="/deals/:id",
                                rating="needs-improvement"))


BAD_CONFIGS = [
    ("routes: []\n", "allowed_origins: Field required"),
    ("allowed_origins: []\n", "allowed_origins: List should have at least 1 item"),
    ("allowed_origins: ['https://app.example.com/path']\n",
     "allowed_origins: Value error, 'https://app.example.com/path' is not an origin"),
    ("allowed_origins: ['app.example.com']\n", "allowed_origins: Value error"),
    (f"allowed_origins: ['{ORIGIN}']\nroutes: [{{name: x, regex: '('}}]\n",
     "routes.0.regex: Value error, invalid regular expression"),
    (f"allowed_origins: ['{ORIGIN}']\nroutes: [{{name: x}}]\n",
     "routes.0: Value error, set exactly one of glob and regex"),
    (f"allowed_origins: ['{ORIGIN}']\nroutes: [{{name: x, glob: 'deals/*'}}]\n",
     "routes.0.glob: Value error, must start with /"),
    (f"allowed_origins: ['{ORIGIN}']\nthresholds: {{lcp: {{good: 5000, poor: 4000}}}}\n",
     "thresholds.lcp: Value error, good must not be above poor"),
    (f"allowed_origins: ['{ORIGIN}']\nthresholds: {{tti: {{good: 1, poor: 2}}}}\n",
     "thresholds.tti: Extra inputs are not permitted"),
    (f"allowed_origins: ['{ORIGIN}']\ntrusted_proxies: ['10.0.0.0/33']\n",
     "trusted_proxies: Value error, '10.0.0.0/33' is not an IP address or CIDR network"),
    (f"allowed_origins: ['{ORIGIN}']\nmax_body_bytes: 10\n",
     "max_body_bytes: Input should be greater than or equal to 256"),
    (f"allowed_origins: ['{ORIGIN}']\nrate_limit: {{per_client_rate: 0}}\n",
     "rate_limit.per_client_rate: Input should be greater than 0"),
    (f"allowed_origins: ['{ORIGIN}']\ndedupe: {{ttl: 5}}\n",
     "dedupe.ttl: Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_CONFIGS,
                         ids=[e.split(":")[0] + str(i) for i, (_, e) in enumerate(BAD_CONFIGS)])
def test_bad_config_gives_one_line_and_exit_2(text: str, expected: str, tmp_path: Path) -> None:
    path = tmp_path / "webvitals.yml"
    path.write_text(text)
    result = run_cli("webvitals", "--config.check", "--config.file", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"saasmon webvitals: {expected}"), lines[0]
    assert "Traceback" not in result.stderr


def test_bad_config_stops_the_server_start_too(tmp_path: Path) -> None:
    path = tmp_path / "webvitals.yml"
    path.write_text(yaml.safe_dump({"allowed_origins": ["ftp://files.example.com"]}))
    result = run_cli("webvitals", "--config.file", str(path), "--web.listen-address",
                     "127.0.0.1:1")
    assert result.returncode == 2
    assert result.stderr.startswith("saasmon webvitals: allowed_origins: Value error")
    assert len(result.stderr.strip().splitlines()) == 1


def test_config_check_summarises_a_good_config(tmp_path: Path) -> None:
    path = tmp_path / "webvitals.yml"
    path.write_text(yaml.safe_dump(config()))
    result = run_cli("webvitals", "--config.check", "--config.file", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "webvitals: config ok: 2 origin(s), 4 route(s), body cap 16384 B, batch <= 20")


class Clock:
    """A clock the test moves by hand: TTLs and refill rates without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_dedupe_memory_is_bounded_by_size_and_forgets_after_the_ttl() -> None:
    clock = Clock()
    cache = DedupeCache(max_entries=4, ttl=60, clock=clock)
    assert [cache.seen(k) for k in (1, 2, 1)] == [False, False, True]
    # A generation holds max_entries/2 keys: key 3 starts a new one, 1 and 2 stay known.
    assert [cache.seen(k) for k in (3, 4, 1, 2)] == [False, False, True, True]
    assert len(cache) == 4
    assert not cache.seen(5)  # third generation: 1 and 2 are forgotten, memory stays at 4
    assert len(cache) <= 4
    assert not cache.seen(1)
    assert cache.seen(5)
    # Time: a generation lasts ttl/2, so a key is known for 30 to 60 s.
    cache = DedupeCache(max_entries=1000, ttl=60, clock=clock)
    assert not cache.seen(7)
    clock.now += 29
    assert cache.seen(7)
    clock.now += 2  # 31 s: 7 moved to the previous generation, still known
    assert not cache.seen(8)
    assert cache.seen(7)
    clock.now += 30  # 61 s: the generation holding 7 is retired
    assert not cache.seen(9)
    assert not cache.seen(7)
    clock.now += 3600  # idle far longer than the TTL: nothing is kept, 9 is new again
    assert not cache.seen(9)
    assert len(cache) == 1


def test_dedupe_knows_full_width_hashes_in_both_generations() -> None:
    """Keys are hash() values, negative or 64 bits wide; the retired generation (a sorted
    array) must find them as the current one (a set) does."""
    keys = [hash(("lcp", f"v5-{i}")) for i in range(10)] + [-2, -(2**63) + 5, 2**63 - 1]
    cache = DedupeCache(max_entries=2 * len(keys), ttl=60, clock=Clock())
    assert not any(cache.seen(k) for k in keys)
    assert all(cache.seen(k) for k in keys)
    assert not cache.seen(12345)  # a full generation: `keys` move to the previous one
    assert all(cache.seen(k) for k in keys)
    assert len(cache) == len(keys) + 1


def test_token_bucket_refills_at_the_configured_rate_up_to_the_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimit(per_client_rate=2, per_client_burst=3, max_clients=2),
                          clock=clock)
    assert [limiter.check("a") for _ in range(4)] == [None, None, None, "rate_limited_client"]
    clock.now += 0.5  # one token back at 2/s
    assert [limiter.check("a") for _ in range(2)] == [None, "rate_limited_client"]
    clock.now += 3600  # refill stops at the burst
    assert [limiter.check("a") for _ in range(4)] == [None, None, None, "rate_limited_client"]
    limiter.check("b")
    limiter.check("c")  # third client: the least recently seen ("a") is forgotten
    assert list(limiter.clients) == ["b", "c"]


def test_forwarded_for_is_walked_from_the_right_past_trusted_proxies_only() -> None:
    resolver = ClientResolver(["10.0.0.0/8", "127.0.0.1"])
    # Peer untrusted: the header is ignored whatever it says.
    assert resolver.client("198.51.100.1", "203.0.113.9") == "198.51.100.1"
    # Trusted peer and a trusted hop before it: the first untrusted address from the right.
    assert resolver.client("127.0.0.1", "1.1.1.1, 203.0.113.9, 10.1.2.3") == "203.0.113.9"
    # Garbage stops the walk at the last address that could be vouched for.
    assert resolver.client("127.0.0.1", "203.0.113.9, bogus, 10.1.2.3") == "10.1.2.3"
    assert resolver.client("127.0.0.1", "") == "127.0.0.1"
    assert resolver.client("2001:db8::1", None) == "2001:db8::/64"
    assert resolver.client(None, "203.0.113.9") == "unknown"


async def test_navigation_type_is_a_closed_label_set(run_exporter: Run,
                                                      session: aiohttp.ClientSession) -> None:
    """web-vitals' navigationType values become the label; anything else, or none, `other`."""
    exporter = run_exporter("webvitals", config())
    sent = {"navigate": "navigate", "reload": "reload", "back-forward": "back-forward",
            "back-forward-cache": "back-forward-cache", "prerender": "prerender",
            "restore": "restore", "soft-navigation": "other", "NAVIGATE": "other",
            "x" * 5000: "other"}
    batch = [report("LCP", 1000, f"n{i}", navigationType=kind) for i, kind in enumerate(sent)]
    batch += [report("LCP", 1000, "none"), report("LCP", 1000, "list", navigationType=["reload"]),
              report("LCP", 1000, "num", navigationType=1)]
    assert (await post(session, exporter, batch)).status == 204
    s = exporter.scrape()
    counts = {dict(labels)["navigation_type"]: v for (name, labels), v in s.items()
              if name == "webvitals_lcp_seconds_count"}
    assert counts == {"navigate": 1, "reload": 1, "back-forward": 1, "back-forward-cache": 1,
                      "prerender": 1, "restore": 1, "other": 6}
