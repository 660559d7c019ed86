"""The HTTP side shared by every exporter: TLS, basic auth, health, reload, flags, env.

Run through the Redis exporter, the one with the simplest target to stand up.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import http.client
import os
import select
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from devstack.exporter import SAASMON, Exporter, run_cli
from devstack.metrics import Samples, parse, parse_openmetrics, value
from devstack.prometheus import Prometheus
from devstack.servers import RedisServer, free_port
from devstack.wait import wait_until
from saasmon.runtime.config import ConfigError
from saasmon.runtime.webconfig import (
    CIPHER_SUITES,
    TLS13_SUITES,
    RateLimiter,
    load_web_config,
)
from tests.support.tls import make_certificate

Run = Callable[..., Exporter]


def config(server: RedisServer, **extra: Any) -> dict[str, Any]:
    return {"targets": [{"name": "main", "url": server.url}], "interval_seconds": 1,
            "timeout_seconds": 2, **extra}


def write(path: Path, data: dict[str, Any] | str) -> Path:
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def start_failure(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Start for real (no --config.check) on a free port; a start that fails must exit."""
    argv = [*SAASMON, "redis", "--web.listen-address", f"127.0.0.1:{free_port()}", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=20,
                          env={**os.environ, **(env or {})})


def assert_one_line_error(result: subprocess.CompletedProcess[str], *names: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("saasmon redis: ")
    for name in names:
        assert name in lines[0], lines[0]
    assert "Traceback" not in result.stderr


def request(url: str, *, method: str = "GET", headers: dict[str, str] | None = None,
            context: ssl.SSLContext | None = None) -> tuple[int, str, dict[str, str]]:
    req = urllib.request.Request(url, method=method, headers=headers or {},
                                 data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=15, context=context) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# -- TLS ---------------------------------------------------------------------------

@pytest.fixture
def certificate(workdir: Path) -> tuple[Path, Path]:
    return make_certificate(workdir)


def test_tls_serves_https_to_clients_trusting_the_cert_and_refuses_plain_http(
        workdir: Path, redis_server: RedisServer, run_exporter: Run,
        certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    web = write(workdir / "web.yml",
                {"tls_server_config": {"cert_file": str(cert), "key_file": str(key)}})
    trusting = ssl.create_default_context(cafile=str(cert))
    exporter = run_exporter("redis", config(redis_server), scheme="https", ssl_context=trusting,
                            extra_args=["--web.config.file", str(web)])
    assert value(exporter.scrape(), "redis_up", target="main") == 1

    # A client without the cert in its trust store refuses the server.
    with pytest.raises(urllib.error.URLError) as untrusted:
        request(exporter.url + "/metrics", context=ssl.create_default_context())
    assert isinstance(untrusted.value.reason, ssl.SSLCertVerificationError)

    # Plain HTTP on the TLS port gets no HTTP answer at all.
    plain = f"http://127.0.0.1:{exporter.port}/metrics"
    with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
        request(plain)
    # The exporter shrugs that off and keeps serving https.
    assert value(exporter.scrape(), "redis_up", target="main") == 1
    assert "Traceback" not in exporter.log()


# -- basic auth --------------------------------------------------------------------

def test_basic_auth_answers_401_without_or_with_wrong_credentials_and_200_with_right(
        workdir: Path, redis_server: RedisServer, run_exporter: Run) -> None:
    hashed = bcrypt.hashpw(b"right-pass", bcrypt.gensalt(rounds=4)).decode()
    assert hashed.startswith("$2b$")
    php_style = bcrypt.hashpw(b"php-pass", bcrypt.gensalt(rounds=4)).decode()
    php_style = "$2y$" + php_style.removeprefix("$2b$")
    web = write(workdir / "web.yml",
                {"basic_auth_users": {"prometheus": hashed, "legacy": php_style},
                 "http_server_config": {"headers": {"X-Frame-Options": "deny"}}})
    exporter = run_exporter("redis", config(redis_server), auth=("prometheus", "right-pass"),
                            extra_args=["--web.config.file", str(web)])
    metrics = exporter.url + "/metrics"

    status, _, headers = request(metrics)
    assert status == 401
    assert headers.get("WWW-Authenticate", "").startswith("Basic")
    # Configured response headers go on refusals too, not only on served pages.
    assert headers.get("X-Frame-Options") == "deny"
    assert request(metrics, headers=basic("prometheus", "wrong-pass"))[0] == 401
    assert request(metrics, headers=basic("nobody", "right-pass"))[0] == 401
    assert request(metrics, headers=basic("legacy", "right-pass"))[0] == 401
    assert request(metrics, headers={"Authorization": "Basic !!not-base64!!"})[0] == 401
    assert request(metrics, headers={"Authorization": "Bearer right-pass"})[0] == 401
    # Health and reload are behind the same door.
    assert request(exporter.url + "/-/healthy")[0] == 401
    assert request(exporter.url + "/-/reload", method="POST")[0] == 401

    status, body, _ = request(metrics, headers=basic("prometheus", "right-pass"))
    assert status == 200
    assert value(parse(body), "redis_up", target="main") == 1
    # A $2y$ hash (htpasswd/PHP) is accepted like $2b$.
    status, body, _ = request(metrics, headers=basic("legacy", "php-pass"))
    assert status == 200
    assert value(parse(body), "redis_up", target="main") == 1
    # Verified pairs are cached, a wrong password after a right one is still refused.
    assert request(metrics, headers=basic("prometheus", "right-pass"))[0] == 200
    assert request(metrics, headers=basic("prometheus", "right-pass-"))[0] == 401


# -- exposition formats ------------------------------------------------------------

OPENMETRICS = "application/openmetrics-text;version=1.0.0"
# What Prometheus 2.42 (the one in Debian 12) sends on every scrape.
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                     "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


def raw_get(url: str, headers: dict[str, str],
            context: ssl.SSLContext | None = None) -> tuple[int, dict[str, str], bytes]:
    """One GET with exactly these headers (and Host); the body as sent, not decompressed."""
    parts = urllib.parse.urlsplit(url)
    conn: http.client.HTTPConnection = (
        http.client.HTTPSConnection(parts.netloc, timeout=15, context=context)
        if parts.scheme == "https" else http.client.HTTPConnection(parts.netloc, timeout=15))
    try:
        conn.request("GET", parts.path, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def promtool_check_metrics(text: str) -> None:
    checked = subprocess.run(["/usr/bin/promtool", "check", "metrics"], input=text,
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_metrics_format_follows_accept_and_gzip_follows_accept_encoding(
        redis_server: RedisServer, run_exporter: Run) -> None:
    exporter = run_exporter("redis", config(redis_server))
    metrics = exporter.url + "/metrics"

    # No Accept (curl, a browser): the text format 0.0.4, which promtool accepts.
    status, headers, body = raw_get(metrics, {})
    assert status == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "Content-Encoding" not in headers
    text = body.decode()
    promtool_check_metrics(text)
    assert "# EOF" not in text and "_created" not in text

    # Prometheus' own Accept and Accept-Encoding: OpenMetrics, gzip-compressed.
    status, headers, body = raw_get(metrics, {"Accept": PROMETHEUS_ACCEPT,
                                              "Accept-Encoding": "gzip"})
    assert status == 200
    assert headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0;")
    assert headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in headers["Vary"]
    document = gzip.decompress(body).decode()
    # One document: the cached collector data, the request-fed and the self-metrics
    # parts share a single terminating # EOF.
    assert document.endswith("# EOF\n") and document.count("# EOF") == 1
    families = {f.name: f for f in parse_openmetrics(document)}
    assert families["redis_exporter_http_connections_dropped"].type == "counter"
    assert families["redis_up"].samples[0].value == 1
    assert "_created" not in document
    # The same samples as the text format (names, labels), only the framing differs.
    samples = {(s.name, tuple(sorted(s.labels.items())))
               for f in families.values() for s in f.samples}
    assert {n for n, _ in samples} == {n for n, _ in parse(text)}

    # The render cache keeps one rendering per format: text again is still text.
    status, headers, body = raw_get(metrics, {"Accept": "text/plain;version=0.0.4"})
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b"# EOF" not in body
    # gzip refused by q=0, OpenMetrics not preferred: plain text, uncompressed.
    status, headers, body = raw_get(metrics, {
        "Accept": f"text/plain;version=0.0.4;q=0.9,{OPENMETRICS};q=0.5",
        "Accept-Encoding": "gzip;q=0, identity"})
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "Content-Encoding" not in headers
    promtool_check_metrics(body.decode())
    # A version prometheus_client cannot compare is skipped, not a 500.
    status, headers, body = raw_get(metrics, {
        "Accept": "application/openmetrics-text;version=abc"})
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "Traceback" not in exporter.log()


def test_prometheus_scrapes_the_exporter_in_openmetrics(
        workdir: Path, redis_server: RedisServer, run_exporter: Run) -> None:
    exporter = run_exporter("redis", config(redis_server))
    prometheus = Prometheus(workdir, {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [{"job_name": "redis",
                            "static_configs": [{"targets": [f"127.0.0.1:{exporter.port}"]}]}]})
    try:
        prometheus.start()

        def scraped() -> list[dict[str, Any]] | None:
            targets = prometheus.api("targets")["activeTargets"]
            return targets if targets and targets[0]["health"] == "up" else None

        assert wait_until("target up", scraped, 30)[0]["lastError"] == ""
        # Counter metadata under the family name (no _total): parsed as OpenMetrics.
        metadata = prometheus.api("targets/metadata",
                                  metric="redis_exporter_http_connections_dropped")
        assert metadata and metadata[0]["type"] == "counter", metadata
        assert prometheus.query('redis_up{target="main"}')[0]["value"][1] == "1"
        assert prometheus.query("redis_exporter_http_connections_dropped_total")
        assert prometheus.query('{__name__=~".+_created"}') == []
    finally:
        prometheus.stop()


# -- bad web config ----------------------------------------------------------------

@pytest.mark.parametrize(
    ("web_config", "names"),
    [
        ("tls_server_confg:\n  cert_file: a\n", ["tls_server_confg", "not permitted"]),
        ("basic_auth_users:\n  alice: plaintext-password\n",
         ["basic_auth_users", "alice", "bcrypt"]),
        ("tls_server_config:\n  cert_file: {dir}/missing.pem\n  key_file: {dir}/missing.key\n",
         ["tls_server_config.cert_file: no such file"]),
        ("tls_server_config:\n  key_file: k.pem\n", ["tls_server_config.cert_file"]),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS14\n",
         ["tls_server_config.min_version"]),
        ("http_server_config:\n  http2: true\n",
         ["http_server_config.http2: true: not supported by this exporter"]),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n"
         "  client_auth_type: RequireAnyClientCert\n",
         ["tls_server_config.client_auth_type: RequireAnyClientCert: not supported",
          "RequireAndVerifyClientCert"]),
        ("basic_auth_users: [\n", ["web.config.file", "YAML"]),
    ],
    ids=["unknown-key", "plain-password", "missing-cert-file", "no-cert-file-key",
         "bad-min-version", "http2", "require-any-client-cert", "broken-yaml"],
)
def test_bad_web_config_exits_2_with_one_line_naming_the_key(
        workdir: Path, redis_server: RedisServer, web_config: str, names: list[str]) -> None:
    conf = write(workdir / "redis.yml", config(redis_server))
    web = write(workdir / "web.yml", web_config.replace("{dir}", str(workdir)))
    result = start_failure("--config.file", str(conf), "--web.config.file", str(web))
    assert_one_line_error(result, "web.config.file", *names)
    assert "plaintext-password" not in result.stderr


def test_missing_web_config_file_exits_2_naming_the_flag(
        workdir: Path, redis_server: RedisServer) -> None:
    conf = write(workdir / "redis.yml", config(redis_server))
    result = start_failure("--config.file", str(conf),
                           "--web.config.file", str(workdir / "nope.yml"))
    assert_one_line_error(result, "web.config.file", "nope.yml")


# -- the whole exporter-toolkit web config ------------------------------------------

TLS = {"cert_file": "/nonexistent/cert.pem", "key_file": "/nonexistent/key.pem"}


@pytest.mark.parametrize(
    ("web_config", "expected"),
    [
        ({"tls_server_config": {**TLS, "curve_preferences": ["CurveP256", "CurveP384"]}},
         "tls_server_config.curve_preferences: 2 curves: not supported by this exporter "
         "(Python's ssl sets a single curve); list one"),
        ({"tls_server_config": {**TLS, "curve_preferences": ["X25519MLKEM768"]}},
         "tls_server_config.curve_preferences: 'X25519MLKEM768': not supported"),
        ({"tls_server_config": {**TLS, "cipher_suites": ["TLS_RSA_WITH_3DES_EDE_CBC_SHA"]}},
         "tls_server_config.cipher_suites: TLS_RSA_WITH_3DES_EDE_CBC_SHA: insecure"),
        ({"tls_server_config": {**TLS, "cipher_suites": ["ECDHE-RSA-AES128-GCM-SHA256"]}},
         "tls_server_config.cipher_suites: 'ECDHE-RSA-AES128-GCM-SHA256': unknown"),
        ({"tls_server_config": {**TLS, "cipher_suites": ["TLS_AES_128_GCM_SHA256"]}},
         "tls_server_config.cipher_suites: no suite for TLS 1.2 and below"),
        ({"tls_server_config": {**TLS, "min_version": "TLS13", "max_version": "TLS12"}},
         "tls_server_config.min_version: TLS13 is above max_version TLS12"),
        ({"tls_server_config": {**TLS, "cert": "PEM"}},
         "tls_server_config: set only one of cert and cert_file"),
        ({"tls_server_config": {"cert": "PEM"}}, "tls_server_config.key_file: required"),
        ({"tls_server_config": {**TLS, "client_ca_file": "/ca.pem"}},
         "tls_server_config.client_ca_file: set, but client_auth_type NoClientCert never "
         "verifies"),
        ({"tls_server_config": {**TLS, "client_auth_type": "VerifyClientCertIfGiven",
                                "client_allowed_sans": ["prometheus.example"]}},
         "tls_server_config.client_allowed_sans: needs client_auth_type "
         "RequireAndVerifyClientCert"),
        ({"http_server_config": {"headers": {"X-Powered-By": "saasmon"}}},
         "http_server_config.headers.X-Powered-By: not a header the web config can set"),
        ({"http_server_config": {"headers": {"X-Frame-Options": "allow-from x"}}},
         "http_server_config.headers.X-Frame-Options: 'allow-from x': must be deny or "
         "sameorigin"),
        ({"http_server_config": {"headers": {"Content-Security-Policy": "a\r\nSet-Cookie: x"}}},
         "http_server_config.headers.Content-Security-Policy: must be one line"),
        ({"rate_limit": {"interval": "1s", "burst": 0}},
         "rate_limit.burst: must be at least 1 when interval is above 0"),
        ({"rate_limit": {"interval": 5, "burst": 1}}, "rate_limit.interval: 5: needs a unit"),
        ({"rate_limit": {"interval": "1 second", "burst": 1}},
         "rate_limit.interval: '1 second': not a duration"),
    ],
    ids=["two-curves", "unknown-curve", "insecure-cipher", "openssl-cipher-name",
         "only-tls13-ciphers", "min-above-max", "cert-twice", "no-key", "ca-without-auth",
         "sans-without-verify", "header-not-allowed", "bad-frame-options", "header-injection",
         "burst-0", "interval-without-unit", "interval-not-duration"],
)
def test_web_config_refuses_what_it_cannot_honour_naming_the_key_and_why(
        workdir: Path, web_config: dict[str, Any], expected: str) -> None:
    path = write(workdir / "web.yml", web_config)
    with pytest.raises(ConfigError) as refused:
        load_web_config(str(path))
    assert str(refused.value).startswith(f"web.config.file: {expected}"), refused.value


def test_every_key_of_the_toolkit_documentation_is_accepted(
        workdir: Path, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    # The toolkit's documented file, every key set (http2 false: HTTP/1.1 is what we serve).
    web = write(workdir / "web.yml", {
        "tls_server_config": {
            "cert_file": str(cert), "key_file": str(key),
            "client_auth_type": "RequireAndVerifyClientCert", "client_ca_file": str(cert),
            "client_allowed_sans": ["prometheus.example", "10.0.0.1"],
            "min_version": "TLS12", "max_version": "TLS13",
            "cipher_suites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"],
            "prefer_server_cipher_suites": False, "curve_preferences": ["X25519"]},
        "http_server_config": {"http2": False, "headers": {
            "Content-Security-Policy": "default-src 'self'", "X-Frame-Options": "deny",
            "X-Content-Type-Options": "nosniff", "X-XSS-Protection": "1; mode=block",
            "Strict-Transport-Security": "max-age=31536000"}},
        "basic_auth_users": {
            "prometheus": bcrypt.hashpw(b"pass", bcrypt.gensalt(rounds=4)).decode()},
        "rate_limit": {"interval": "1s", "burst": 50},
    })
    conf = write(workdir / "redis.yml",
                 {"targets": [{"name": "main", "url": "redis://127.0.0.1:6379"}]})
    result = run_cli("redis", "--config.check", "--config.file", str(conf),
                     "--web.config.file", str(web))
    assert result.returncode == 0, result.stderr


def test_cipher_suite_names_map_to_the_same_suites_in_openssl() -> None:
    listed = subprocess.run(["openssl", "ciphers", "-stdname", "ALL:@SECLEVEL=0"],
                            capture_output=True, text=True, check=True, timeout=30).stdout
    openssl = dict(line.split(" - ")[0:2] for line in listed.splitlines() if " - " in line)
    openssl = {iana.strip(): name.split()[0] for iana, name in openssl.items()}
    for iana, name in CIPHER_SUITES.items():
        assert openssl.get(iana) == name, iana
    assert set(openssl) >= TLS13_SUITES


def test_rate_limiter_is_a_token_bucket_starting_full() -> None:
    now = [100.0]
    limiter = RateLimiter(interval=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.allow() for _ in range(4)] == [True, True, True, False]
    now[0] += 1.9
    assert not limiter.allow()
    now[0] += 0.1  # one interval: one more request
    assert limiter.allow() and not limiter.allow()
    now[0] += 60  # a long pause refills the burst, never more
    assert [limiter.allow() for _ in range(4)] == [True, True, True, False]


def handshake(port: int, context: ssl.SSLContext) -> tuple[str, str] | str:
    """(TLS version, cipher) of a request to /-/healthy, or "refused" (the TLS connection
    failed, or the server closed it without an answer)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = tls.recv(64)  # TLS 1.3: a refused client certificate shows here
            if not answer:
                return "refused"
            assert answer.startswith(b"HTTP/1.1 "), answer
            version, cipher = tls.version(), tls.cipher()
            assert version is not None and cipher is not None
            return version, cipher[0]
    except (ssl.SSLError, ConnectionError):
        return "refused"


def client(cert: Path, *, minimum: ssl.TLSVersion | None = None,
           maximum: ssl.TLSVersion | None = None, ciphers: str | None = None,
           curve: str | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0 on purpose
        if minimum is not None:
            context.minimum_version = minimum
        if maximum is not None:
            context.maximum_version = maximum
    if ciphers is not None:
        context.set_ciphers(ciphers)
    if curve is not None:
        context.set_ecdh_curve(curve)
    return context


def tls_exporter(run_exporter: Run, workdir: Path, redis_server: RedisServer,
                 cert: Path, key: Path, **settings: Any) -> Exporter:
    web = write(workdir / f"web-{free_port()}.yml", {
        "tls_server_config": {"cert_file": str(cert), "key_file": str(key),
                              **settings.pop("tls", {})}, **settings})
    return run_exporter("redis", config(redis_server), scheme="https",
                        ssl_context=client(cert), extra_args=["--web.config.file", str(web)])


def test_max_version_cipher_suites_server_preference_and_headers_are_honoured(
        workdir: Path, redis_server: RedisServer, run_exporter: Run,
        certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    exporter = tls_exporter(
        run_exporter, workdir, redis_server, cert, key,
        tls={"max_version": "TLS12",
             "cipher_suites": ["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                               "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]},
        http_server_config={"http2": False, "headers": {
            "Strict-Transport-Security": "max-age=31536000",
            "x-content-type-options": "nosniff", "X-XSS-Protection": ""}})
    port = exporter.port
    # The client prefers AES-256; the server's order (prefer_server_cipher_suites) wins.
    assert handshake(port, client(cert, ciphers="ECDHE-RSA-AES256-GCM-SHA384:"
                                                "ECDHE-RSA-AES128-GCM-SHA256")) == \
        ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256")
    assert handshake(port, client(cert, minimum=ssl.TLSVersion.TLSv1_3)) == "refused"
    assert handshake(port, client(cert, ciphers="ECDHE-RSA-CHACHA20-POLY1305")) == "refused"
    status, _, headers = request(exporter.url + "/metrics", context=client(cert))
    assert status == 200
    assert headers["Strict-Transport-Security"] == "max-age=31536000"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "X-XSS-Protection" not in headers  # blank: unset, as in the toolkit


def test_min_version_tls13_and_the_curve_are_honoured(
        workdir: Path, redis_server: RedisServer, run_exporter: Run,
        certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    exporter = tls_exporter(run_exporter, workdir, redis_server, cert, key,
                            tls={"min_version": "TLS13", "curve_preferences": ["CurveP384"]})
    port = exporter.port
    assert handshake(port, client(cert, maximum=ssl.TLSVersion.TLSv1_2)) == "refused"
    assert handshake(port, client(cert, curve="prime256v1")) == "refused"
    assert handshake(port, client(cert, curve="secp384r1"))[0] == "TLSv1.3"


def test_min_version_tls10_lets_a_tls10_client_in_with_the_client_cipher_order(
        workdir: Path, redis_server: RedisServer, run_exporter: Run,
        certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    exporter = tls_exporter(
        run_exporter, workdir, redis_server, cert, key,
        tls={"min_version": "TLS10", "prefer_server_cipher_suites": False,
             "cipher_suites": ["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
                               "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"]})
    old = client(cert, minimum=ssl.TLSVersion.TLSv1, maximum=ssl.TLSVersion.TLSv1,
                 ciphers="ECDHE-RSA-AES256-SHA:ECDHE-RSA-AES128-SHA:@SECLEVEL=0")
    assert handshake(exporter.port, old) == ("TLSv1", "ECDHE-RSA-AES256-SHA")
    assert handshake(exporter.port, client(cert))[0] == "TLSv1.3"


@pytest.fixture
def client_certs(workdir: Path) -> dict[str, tuple[Path, Path]]:
    """A CA, and (cert, key) pairs it signed for two client names, plus one self-signed."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    ca, ca_key = workdir / "ca.pem", workdir / "ca.key"
    run("req", "-x509", *ec, "-days", "2", "-keyout", str(ca_key), "-out", str(ca),
        "-subj", "/CN=saasmon test CA")
    made = {"ca": (ca, ca_key)}
    for name in ("prometheus.example", "intruder.example", "self-signed.example"):
        cert, key, csr = (workdir / f"{name}.{ext}" for ext in ("pem", "key", "csr"))
        ext = write(workdir / f"{name}.ext", f"subjectAltName=DNS:{name}\n")
        if name.startswith("self-signed"):
            run("req", "-x509", *ec, "-days", "2", "-keyout", str(key), "-out", str(cert),
                "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}")
        else:
            run("req", *ec, "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={name}")
            run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
                "-CAcreateserial", "-days", "2", "-out", str(cert), "-extfile", str(ext))
        made[name] = (cert, key)
    return made


def test_client_certificates_are_verified_and_their_sans_allowed_from_inline_pem(
        workdir: Path, redis_server: RedisServer, run_exporter: Run,
        certificate: tuple[Path, Path], client_certs: dict[str, tuple[Path, Path]]) -> None:
    cert, key = certificate

    def with_client(name: str | None) -> ssl.SSLContext:
        context = client(cert)
        if name is not None:
            context.load_cert_chain(*client_certs[name])
        return context

    # Certificate, key and CA inline, as PEM text in the file.
    web = write(workdir / "web.yml", {"tls_server_config": {
        "cert": cert.read_text(), "key": key.read_text(),
        "client_auth_type": "RequireAndVerifyClientCert",
        "client_ca": client_certs["ca"][0].read_text(),
        "client_allowed_sans": ["prometheus.example", "10.0.0.1"]}})
    exporter = run_exporter("redis", config(redis_server), scheme="https",
                            ssl_context=with_client("prometheus.example"),
                            extra_args=["--web.config.file", str(web)])
    metrics = exporter.url + "/metrics"
    status, body, _ = request(metrics, context=with_client("prometheus.example"))
    assert status == 200 and value(parse(body), "redis_up", target="main") == 1
    # Signed by the CA, but its SAN is not in the list: refused before any work.
    assert request(metrics, context=with_client("intruder.example"))[0] == 403
    # No certificate, or one the CA did not sign: no TLS connection at all.
    assert handshake(exporter.port, with_client(None)) == "refused"
    assert handshake(exporter.port, with_client("self-signed.example")) == "refused"
    log = exporter.log()
    assert "PRIVATE KEY" not in log and "Traceback" not in log


def test_an_inline_key_that_does_not_load_is_refused_without_quoting_it(
        workdir: Path, certificate: tuple[Path, Path]) -> None:
    cert, _ = certificate
    key = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n"
    web = write(workdir / "web.yml", {"tls_server_config": {"cert": cert.read_text(),
                                                            "key": key}})
    result = start_failure("--web.config.file", str(web))
    assert_one_line_error(result, "web.config.file: tls_server_config: cannot load")
    assert "c2VjcmV0" not in result.stderr


def test_rate_limit_answers_429_past_the_burst_and_recovers_after_the_interval(
        workdir: Path, redis_server: RedisServer, run_exporter: Run) -> None:
    web = write(workdir / "web.yml", {"rate_limit": {"interval": "3s", "burst": 3},
                                      "http_server_config": {"headers": {
                                          "X-Frame-Options": "sameorigin"}}})
    # Started on /-/healthy: polling /-/ready could spend the burst before the test does.
    exporter = run_exporter("redis", config(redis_server), wait_ready=False,
                            extra_args=["--web.config.file", str(web)])
    time.sleep(3.1)  # the bucket is full again
    answers = [request(exporter.url + "/-/healthy") for _ in range(5)]
    assert [status for status, _, _ in answers[:3]] == [200, 200, 200]
    status, body, headers = answers[-1]
    assert status == 429 and body == "Too many requests\n"
    assert headers["X-Frame-Options"] == "sameorigin"
    time.sleep(3.1)
    assert request(exporter.url + "/-/healthy")[0] == 200


# -- health, readiness, reload -----------------------------------------------------

@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (kernel backlog) but never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield int(sock.getsockname()[1])
    sock.close()


def test_ready_only_after_the_first_collection_finished(
        redis_server: RedisServer, silent_port: int, run_exporter: Run) -> None:
    # The silent target holds the first collection until its timeout.
    conf = config(redis_server, timeout_seconds=6)
    conf["targets"].append({"name": "silent", "url": f"redis://127.0.0.1:{silent_port}/0"})
    exporter = run_exporter("redis", conf, wait_ready=False)
    assert request(exporter.url + "/-/healthy")[0] == 200
    status, body, _ = request(exporter.url + "/-/ready")
    assert status == 503, body
    exporter.wait_for("/-/ready")
    samples = exporter.scrape()
    assert value(samples, "redis_up", target="main") == 1
    assert value(samples, "redis_up", target="silent") == 0
    assert value(samples, "redis_exporter_collector_errors_total",
                 collector="info", target="silent", reason="timeout") >= 1


def reload_ok(samples: Samples) -> float:
    return value(samples, "redis_exporter_config_last_reload_successful")


def test_failed_reload_keeps_the_old_config_and_sighup_applies_the_fixed_one(
        redis_server: RedisServer, run_exporter: Run) -> None:
    exporter = run_exporter("redis", config(redis_server))
    samples = exporter.scrape()
    assert reload_ok(samples) == 1
    assert value(samples, "redis_up", target="main") == 1
    loaded_at = value(samples, "redis_exporter_config_last_reload_success_timestamp_seconds")

    broken = config(redis_server, interval_seconds="soon")
    exporter.write_config(broken)
    status, body, _ = request(exporter.url + "/-/reload", method="POST")
    assert status != 200, body
    samples = exporter.scrape()
    assert reload_ok(samples) == 0
    assert value(samples, "redis_exporter_config_last_reload_success_timestamp_seconds") \
        == loaded_at
    # The running config keeps collecting: fresh values, the old target only.
    stamp = value(samples, "redis_exporter_collector_last_success_timestamp_seconds",
                  collector="info", target="main")
    samples = exporter.wait_until("a newer collection", lambda s: value(
        s, "redis_exporter_collector_last_success_timestamp_seconds",
        collector="info", target="main") > stamp)
    assert value(samples, "redis_up", target="main") == 1
    assert {dict(ls)["target"] for (n, ls), _ in samples.items() if n == "redis_up"} == {"main"}
    assert "reload failed" in exporter.log() and "interval_seconds" in exporter.log()

    fixed = config(redis_server)
    fixed["targets"].append({"name": "second", "url": redis_server.url.replace("/0", "/1")})
    exporter.write_config(fixed)
    assert exporter.proc is not None
    exporter.proc.send_signal(signal.SIGHUP)
    samples = exporter.wait_until(
        "the fixed config in effect",
        lambda s: reload_ok(s) == 1 and value(s, "redis_up", target="second") == 1)
    assert value(samples, "redis_up", target="main") == 1
    assert value(samples, "redis_exporter_config_last_reload_success_timestamp_seconds") \
        > loaded_at
    assert exporter.proc.poll() is None


def test_post_reload_with_a_valid_config_answers_200(
        redis_server: RedisServer, run_exporter: Run) -> None:
    exporter = run_exporter("redis", config(redis_server))
    exporter.write_config(config(redis_server, top_n_commands=1))
    status, body, _ = request(exporter.url + "/-/reload", method="POST")
    assert status == 200, body
    assert request(exporter.url + "/-/reload")[0] == 405  # GET must not reload
    samples = exporter.wait_until(
        "top_n_commands 1 in effect",
        lambda s: len([n for n, _ in s if n == "redis_command_calls_total"]) == 1)
    assert reload_ok(samples) == 1


# -- flags and environment ---------------------------------------------------------

def test_custom_telemetry_path_serves_metrics_there_only(
        redis_server: RedisServer, run_exporter: Run) -> None:
    exporter = run_exporter("redis", config(redis_server),
                            extra_args=["--web.telemetry-path", "/custom"])
    status, body, _ = exporter.get("/custom")
    assert status == 200
    assert value(parse(body), "redis_up", target="main") == 1
    assert exporter.get("/metrics")[0] == 404
    status, body, _ = exporter.get("/")
    assert status == 200 and 'href="/custom"' in body


def test_flag_from_environment_sets_the_telemetry_path(
        redis_server: RedisServer, run_exporter: Run) -> None:
    exporter = run_exporter("redis", config(redis_server),
                            env={"SAASMON_REDIS_WEB_TELEMETRY_PATH": "/from-env"})
    status, body, _ = exporter.get("/from-env")
    assert status == 200
    assert value(parse(body), "redis_up", target="main") == 1


def test_env_override_of_a_config_key_wins_over_the_file(
        workdir: Path, redis_server: RedisServer) -> None:
    conf = write(workdir / "redis.yml", config(redis_server))
    checked = subprocess.run(
        [*SAASMON, "redis", "--config.file", str(conf), "--config.check"],
        capture_output=True, text=True, timeout=20,
        env={**os.environ, "SAASMON_REDIS_INTERVAL_SECONDS": "7"})
    assert checked.returncode == 0, checked.stderr
    assert "interval 7s" in checked.stdout


def test_bad_env_override_exits_2_with_one_line_naming_the_key(
        workdir: Path, redis_server: RedisServer) -> None:
    conf = write(workdir / "redis.yml", config(redis_server))
    result = start_failure("--config.file", str(conf),
                           env={"SAASMON_REDIS_INTERVAL_SECONDS": "abc"})
    assert_one_line_error(result, "interval_seconds")


# -- hostile reloads (issue 15 items 1 and 4) ----------------------------------------

ROTATED = "r0tated-N3w-Passw0rd"
UNLOADABLE = {
    "invalid-utf8": b"targets:\n  - name: main\n    url: redis://:" + ROTATED.encode()
                    + b"@127.0.0.1:1/0\n# caf\xe9\n",
    "deep-nesting": b"targets: " + b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "huge-integer": b"interval_seconds: " + b"7" * 5000 + b"\n",
}


def new_log_lines(exporter: Exporter, seen: int) -> list[str]:
    return exporter.log().splitlines()[seen:]


@pytest.mark.parametrize("case", sorted(UNLOADABLE))
def test_unloadable_config_fails_the_reload_visibly_in_one_line(
        case: str, redis_server: RedisServer, run_exporter: Run) -> None:
    exporter = run_exporter("redis", config(redis_server))
    assert reload_ok(exporter.scrape()) == 1
    exporter.config_path.write_bytes(UNLOADABLE[case])

    seen = len(exporter.log().splitlines())
    status, body, _ = request(exporter.url + "/-/reload", method="POST")
    assert status == 400, body
    assert len(body.strip().splitlines()) == 1 and "config.file" in body, body
    assert reload_ok(exporter.scrape()) == 0
    assert len(new_log_lines(exporter, seen)) == 1, new_log_lines(exporter, seen)

    seen = len(exporter.log().splitlines())
    assert exporter.proc is not None
    exporter.proc.send_signal(signal.SIGHUP)
    exporter.wait_until("a second logged failure",
                        lambda _: len(new_log_lines(exporter, seen)) >= 1)
    lines = new_log_lines(exporter, seen)
    assert len(lines) == 1 and "reload failed" in lines[0], lines
    assert reload_ok(exporter.scrape()) == 0
    # The running config still serves.
    assert value(exporter.scrape(), "redis_up", target="main") == 1
    assert "Traceback" not in exporter.log() and "never retrieved" not in exporter.log()
    assert ROTATED not in exporter.log()


def test_a_reload_onto_an_oversized_secret_file_keeps_the_running_config(
        workdir: Path, redis_server: RedisServer, run_exporter: Run) -> None:
    exporter = run_exporter("redis", config(redis_server))
    huge = workdir / "password"
    huge.write_bytes(b"p" * 100_000)
    for secret in ("/dev/zero", str(huge)):
        exporter.write_config({**config(redis_server), "targets": [
            {"name": "main", "url": redis_server.url, "password_file": secret}]})
        status, body, _ = request(exporter.url + "/-/reload", method="POST")
        assert (status, body) == (400, "reload failed, running config kept: password_file: "
                                       f"file {secret!r} is larger than 64 KiB, not a secret\n")
        samples = exporter.scrape()
        assert reload_ok(samples) == 0
        assert value(samples, "redis_up", target="main") == 1
    assert "Traceback" not in exporter.log()


# -- slow clients (issue 15 item 9) ----------------------------------------------------

def test_a_client_that_never_finishes_its_headers_is_disconnected(
        redis_server: RedisServer, run_exporter: Run) -> None:
    exporter = run_exporter("redis", config(redis_server),
                            extra_args=["--web.header-timeout", "1"])
    with socket.create_connection(("127.0.0.1", exporter.port), timeout=30) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        # The server closes the connection (b""), long before this socket's own timeout.
        assert sock.recv(1024) == b""
    assert exporter.scrape()  # and keeps serving everyone else


def slow_client(port: int, source: str = "127.0.0.1") -> socket.socket:
    """A connection that sends half a request (slowloris) from the given loopback address."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    return sock


def ended(sock: socket.socket, wait: float = 0.0) -> bool:
    """Whether the server answered or closed the socket (a half-sent request gets nothing
    else), within `wait` seconds."""
    return bool(select.select([sock], [], [], wait)[0])


def answer(sock: socket.socket) -> bytes:
    """What the server sent before closing (a reset, when it had not read everything, too)."""
    try:
        return sock.recv(4096)
    except ConnectionResetError:
        return b""


def settle() -> None:
    """Let the server take in connections just opened before the next one: the cap of the
    code before slots counted a connection only some time after accepting it."""
    time.sleep(0.5)


def test_a_tls_handshake_that_never_finishes_is_cut_at_the_header_timeout(
        workdir: Path, redis_server: RedisServer, run_exporter: Run,
        certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    web = write(workdir / "web.yml",
                {"tls_server_config": {"cert_file": str(cert), "key_file": str(key)}})
    exporter = run_exporter("redis", config(redis_server), scheme="https",
                            ssl_context=ssl.create_default_context(cafile=str(cert)),
                            extra_args=["--web.config.file", str(web),
                                        "--web.header-timeout", "1"])
    with socket.create_connection(("127.0.0.1", exporter.port), timeout=10) as sock:
        assert ended(sock, 8)  # asyncio's own handshake timeout is 60 s
        assert answer(sock) == b""


def test_the_newest_connections_hold_the_slots_and_a_scrape_always_gets_one(
        redis_server: RedisServer, run_exporter: Run) -> None:
    exporter = run_exporter("redis", config(redis_server), extra_args=[
        "--web.max-connections", "4", "--web.max-connections-per-address", "4"])
    slow = [slow_client(exporter.port) for _ in range(12)]
    try:
        settle()
        # A burst never holds more than the cap: the longest-waiting gave way, one by one.
        assert [ended(sock, 0.5 if i < 8 else 0) for i, sock in enumerate(slow)] == \
            [True] * 8 + [False] * 4
        assert [answer(sock) for sock in slow[:8]] == [b""] * 8  # closed, no 503
        # A scrape takes the slot of the slow client that has waited longest.
        status, body, _ = request(exporter.url + "/metrics")
        assert status == 200, body
        assert ended(slow[8], 5) and not any(ended(sock) for sock in slow[9:])
        samples = exporter.scrape()
        assert value(samples, "redis_exporter_http_connections_dropped_total",
                     reason="displaced") == 9  # eight in the burst, one for the scrape
        assert value(samples, "redis_exporter_http_connections_dropped_total",
                     reason="refused") == 0
        assert value(samples, "redis_up", target="main") == 1
    finally:
        for sock in slow:
            sock.close()


def test_one_client_address_holds_at_most_its_share_of_the_slots(
        redis_server: RedisServer, run_exporter: Run) -> None:
    exporter = run_exporter("redis", config(redis_server), extra_args=[
        "--web.max-connections", "8", "--web.max-connections-per-address", "2"])
    attacker = [slow_client(exporter.port, "127.0.0.2") for _ in range(5)]
    other = [slow_client(exporter.port, "127.0.0.3") for _ in range(2)]
    try:
        settle()
        # The attacker's newest two stay; it pushed out only its own older connections.
        assert [ended(sock, 0.5 if i < 3 else 0) for i, sock in enumerate(attacker)] == \
            [True, True, True, False, False]
        assert not any(ended(sock) for sock in other)
        assert value(exporter.scrape(), "redis_exporter_http_connections_dropped_total",
                     reason="displaced") == 3
        assert not any(ended(sock) for sock in attacker[3:] + other)  # room left for scrapes
    finally:
        for sock in attacker + other:
            sock.close()


# Web Vitals receiver config taking beacons without an Origin header (a raw socket sends none).
BEACONS = {"allowed_origins": ["https://app.example.com"], "allow_missing_origin": True}


def trickle(port: int, head: bytes, within: float) -> tuple[bytes, float | None]:
    """Send `head` (headers and the start of a body), then a body byte every 0.2 s until
    the server closes the connection: what it answered, and how many seconds after `head`
    it closed (None: still open after `within` seconds)."""
    got = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.settimeout(0.2)
        sock.sendall(head)
        began = time.monotonic()
        while time.monotonic() - began < within:
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                with contextlib.suppress(OSError):  # closed between recv and send
                    sock.sendall(b"1")
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return got, time.monotonic() - began
            got += chunk
    return got, None


def post_head(path: str, length: int, **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {length}",
             *(f"{name.replace('_', '-')}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + b"[{"


def test_a_beacon_body_trickled_past_the_body_timeout_gets_a_408_and_is_closed(
        run_exporter: Run) -> None:
    exporter = run_exporter("webvitals", BEACONS,
                            extra_args=["--web.body-timeout", "1"])
    head = post_head("/beacon", 1000, Content_Type="text/plain")
    answer, closed_after = trickle(exporter.port, head, within=8)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert closed_after is not None and 1 <= closed_after < 4, closed_after
    samples = exporter.scrape()
    assert value(samples, "webvitals_exporter_http_connections_dropped_total",
                 reason="body_timeout") == 1
    assert "Traceback" not in exporter.log()


def test_an_unread_body_is_drained_for_the_body_timeout_at_most(
        redis_server: RedisServer, run_exporter: Run) -> None:
    """POST /-/reload ignores its body: answered at once, the connection closed once the
    body timeout is up instead of aiohttp's 10 s of draining."""
    exporter = run_exporter("redis", config(redis_server), extra_args=["--web.body-timeout", "1"])
    answer, closed_after = trickle(exporter.port, post_head("/-/reload", 1000), within=8)
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert closed_after is not None and 1 <= closed_after < 4, closed_after
    assert "Traceback" not in exporter.log()


def test_a_client_waiting_for_its_body_gives_way_to_a_scrape_with_a_408(
        run_exporter: Run) -> None:
    exporter = run_exporter("webvitals", BEACONS, extra_args=[
        "--web.max-connections", "1", "--web.body-timeout", "30"])
    with socket.create_connection(("127.0.0.1", exporter.port), timeout=10) as sock:
        sock.sendall(post_head("/beacon", 1000, Content_Type="text/plain"))
        settle()
        status, body, _ = request(exporter.url + "/metrics")
        assert status == 200, body
        assert sock.recv(4096).startswith(b"HTTP/1.1 408 ")
    samples = exporter.scrape()
    assert value(samples, "webvitals_exporter_http_connections_dropped_total",
                 reason="displaced") >= 1
    assert value(samples, "webvitals_exporter_http_connections_dropped_total",
                 reason="body_timeout") == 0
