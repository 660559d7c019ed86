"""The exporter-toolkit web config file, every key of its format (docs/exporters/running.md).

What Python's ssl and this server can do is honoured: TLS versions, cipher suites (Go's
IANA names mapped to OpenSSL's), server cipher preference, one ECDHE curve, client
certificates and their SANs, inline PEM, response headers, bcrypt basic auth, a rate limit.
What they cannot do is refused at start-up in one line naming the key and why, never
ignored: a security setting silently dropped would be worse than an exporter that does
not start.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import re
import ssl
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator

from saasmon.runtime.config import ConfigError, StrictModel, first_error, read_yaml

ClientAuth = Literal[
    "NoClientCert", "RequestClientCert", "RequireAnyClientCert",
    "VerifyClientCertIfGiven", "RequireAndVerifyClientCert",
]
TLSVersionName = Literal["TLS10", "TLS11", "TLS12", "TLS13"]

# The exporter-toolkit's version names, in order.
TLS_VERSIONS: dict[str, ssl.TLSVersion] = {
    "TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3,
}
LEGACY_VERSIONS = frozenset({"TLS10", "TLS11"})

# The suites Go's tls.CipherSuites() lists for TLS 1.0-1.2 (the only ones the toolkit
# accepts), by their IANA names, and OpenSSL's names for them (`openssl ciphers -stdname`).
CIPHER_SUITES: dict[str, str] = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
}
# TLS 1.3 suites: not configurable in Go (always all on) nor through Python's ssl; listing
# them changes nothing, as with the toolkit.
TLS13_SUITES = frozenset({"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                          "TLS_CHACHA20_POLY1305_SHA256"})
# Go's tls.InsecureCipherSuites(): refused by the toolkit, so here too.
INSECURE_SUITES = frozenset({
    "TLS_RSA_WITH_RC4_128_SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256", "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA", "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
})
# Without cipher_suites, TLS 1.0/1.1 get Go's default suites (ECDHE, AES or ChaCha20):
# Python's own default list has no suite those versions can use.
LEGACY_DEFAULT_SUITES = [name for iana, name in CIPHER_SUITES.items() if "ECDHE" in iana]
# OpenSSL 3 allows TLS 1.0/1.1 (SHA-1 in the handshake) only at security level 0.
LEGACY_SECURITY_LEVEL = "@SECLEVEL=0"
# Go's curve names -> OpenSSL's.
CURVES: dict[str, str] = {"CurveP256": "prime256v1", "CurveP384": "secp384r1",
                          "CurveP521": "secp521r1", "X25519": "X25519"}
# The headers the toolkit lets a web config set, and the values it allows (None: any).
RESPONSE_HEADERS: dict[str, tuple[str, ...] | None] = {
    "Content-Security-Policy": None,
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
}
# Go's time.ParseDuration units, in seconds.
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3,
                   "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)"
_DURATION = re.compile(f"(?:{_DURATION_PART})+")


class TLSServerConfig(StrictModel):
    cert: str | None = None  # inline PEM
    key: SecretStr | None = None  # inline PEM
    client_ca: str | None = None  # inline PEM
    cert_file: str | None = None
    key_file: str | None = None
    client_auth_type: ClientAuth = "NoClientCert"
    client_ca_file: str | None = None
    client_allowed_sans: list[str] = Field(default_factory=list)
    min_version: TLSVersionName = "TLS12"
    max_version: TLSVersionName = "TLS13"
    cipher_suites: list[str] = Field(default_factory=list)
    prefer_server_cipher_suites: bool = True
    curve_preferences: list[str] = Field(default_factory=list)

    @property
    def verifies_clients(self) -> bool:
        return self.client_auth_type in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert")


class HTTPServerConfig(StrictModel):
    http2: bool | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    def response_headers(self) -> dict[str, str]:
        """The headers to add to every response, by canonical name; blank ones unset."""
        canonical = {name.lower(): name for name in RESPONSE_HEADERS}
        return {canonical[name.lower()]: value for name, value in self.headers.items()
                if value.strip()}


class RateLimit(StrictModel):
    interval: str | int = 0  # a Go duration ("1s", "250ms"); 0 disables the limit
    burst: int = 0


class WebConfig(StrictModel):
    tls_server_config: TLSServerConfig | None = None
    http_server_config: HTTPServerConfig | None = None
    basic_auth_users: dict[str, str] = Field(default_factory=dict)
    rate_limit: RateLimit | None = None

    @field_validator("basic_auth_users")
    @classmethod
    def _bcrypt_hashes(cls, users: dict[str, str]) -> dict[str, str]:
        for user, hashed in users.items():
            if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
                raise ValueError(f"password of user {user!r} must be a bcrypt hash")
        return users


def load_web_config(path: str | None) -> WebConfig:
    if not path:
        return WebConfig()
    raw = read_yaml(path, "web.config.file") or {}
    try:
        config = WebConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError("web.config.file: " + first_error(exc, "")) from None
    try:
        check(config)
    except ValueError as exc:
        raise ConfigError(f"web.config.file: {exc}") from None
    if config.tls_server_config is not None:
        ssl_context(config.tls_server_config)  # fail at start-up, not at first connection
    return config


def check(config: WebConfig) -> None:
    """What the model's types cannot say; ValueError("key: problem") at the first one."""
    if config.tls_server_config is not None:
        _check_tls(config.tls_server_config)
    http = config.http_server_config
    if http is not None:
        if http.http2:
            raise ValueError("http_server_config.http2: true: not supported by this exporter "
                             "(it serves HTTP/1.1); remove the key or set it to false")
        _check_headers(http.headers)
    if config.rate_limit is not None:
        rate_limit_interval(config.rate_limit)
        if config.rate_limit.burst < 0:
            raise ValueError("rate_limit.burst: must not be negative")
        if rate_limit_interval(config.rate_limit) > 0 and config.rate_limit.burst < 1:
            raise ValueError("rate_limit.burst: must be at least 1 when interval is above 0 "
                             "(0 would refuse every request)")


def _check_tls(tls: TLSServerConfig) -> None:
    key = "tls_server_config"
    for inline, file in (("cert", "cert_file"), ("key", "key_file"),
                         ("client_ca", "client_ca_file")):
        if getattr(tls, inline) is not None and getattr(tls, file) is not None:
            raise ValueError(f"{key}: set only one of {inline} and {file}")
    if tls.cert is None and tls.cert_file is None:
        raise ValueError(f"{key}.cert_file: required (or cert, the PEM inline)")
    if tls.key is None and tls.key_file is None:
        raise ValueError(f"{key}.key_file: required (or key, the PEM inline)")
    if tls.client_auth_type == "RequireAnyClientCert":
        raise ValueError(f"{key}.client_auth_type: RequireAnyClientCert: not supported by this "
                         "exporter (Python's ssl cannot accept a client certificate without "
                         "verifying it); use RequireAndVerifyClientCert with client_ca_file")
    has_ca = tls.client_ca is not None or tls.client_ca_file is not None
    if has_ca and not tls.verifies_clients:
        raise ValueError(f"{key}.client_ca_file: set, but client_auth_type "
                         f"{tls.client_auth_type} never verifies a client certificate; set "
                         "client_auth_type: RequireAndVerifyClientCert")
    if tls.client_allowed_sans and tls.client_auth_type != "RequireAndVerifyClientCert":
        raise ValueError(f"{key}.client_allowed_sans: needs client_auth_type "
                         f"RequireAndVerifyClientCert ({tls.client_auth_type} lets a client in "
                         "without a certificate to match)")
    order = list(TLS_VERSIONS)
    if order.index(tls.min_version) > order.index(tls.max_version):
        raise ValueError(f"{key}.min_version: {tls.min_version} is above max_version "
                         f"{tls.max_version}")
    for name in tls.cipher_suites:
        if name in INSECURE_SUITES:
            raise ValueError(f"{key}.cipher_suites: {name}: insecure, refused (as by the "
                             "exporter-toolkit)")
        if name not in CIPHER_SUITES and name not in TLS13_SUITES:
            raise ValueError(f"{key}.cipher_suites: {name!r}: unknown cipher suite (Go's "
                             "names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)")
    if (tls.cipher_suites and tls.min_version != "TLS13"
            and not any(name in CIPHER_SUITES for name in tls.cipher_suites)):
        raise ValueError(f"{key}.cipher_suites: no suite for TLS 1.2 and below (TLS 1.3 suites "
                         "are always on); add one, or set min_version: TLS13")
    for name in tls.curve_preferences:
        if name not in CURVES:
            raise ValueError(f"{key}.curve_preferences: {name!r}: not supported by this "
                             f"exporter (supported: {', '.join(CURVES)})")
    if len(tls.curve_preferences) > 1:
        raise ValueError(f"{key}.curve_preferences: {len(tls.curve_preferences)} curves: not "
                         "supported by this exporter (Python's ssl sets a single curve); "
                         "list one")


def _check_headers(headers: Mapping[str, str]) -> None:
    allowed = {name.lower(): (name, values) for name, values in RESPONSE_HEADERS.items()}
    for name, value in headers.items():
        where = f"http_server_config.headers.{name}"
        if name.lower() not in allowed:
            raise ValueError(f"{where}: not a header the web config can set "
                             f"({', '.join(RESPONSE_HEADERS)})")
        if not value.isprintable():
            raise ValueError(f"{where}: must be one line of printable text")
        values = allowed[name.lower()][1]
        if value.strip() and values is not None and value.strip().lower() not in values:
            raise ValueError(f"{where}: {value!r}: must be {' or '.join(values)} (or blank)")


def rate_limit_interval(limit: RateLimit) -> float:
    """The interval in seconds (ValueError naming the key when it is no Go duration)."""
    value = limit.interval
    if isinstance(value, int) and not isinstance(value, bool):
        if value == 0:
            return 0.0
        raise ValueError(f"rate_limit.interval: {value}: needs a unit, e.g. 1s or 500ms")
    text = str(value).strip()
    if text == "0":
        return 0.0
    if not _DURATION.fullmatch(text):
        raise ValueError(f"rate_limit.interval: {text!r}: not a duration (e.g. 1s, 500ms, 1m)")
    return sum(float(number) * _DURATION_UNITS[unit]
               for number, unit in re.findall(_DURATION_PART, text))


class RateLimiter:
    """A token bucket as golang.org/x/time/rate's (which the toolkit uses): it holds up to
    `burst` requests, starts full and gains one every `interval` seconds; a request finding
    it empty is refused."""

    def __init__(self, interval: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval, self.burst, self.clock = interval, burst, clock
        self.tokens = float(burst)
        self.stamp = clock()

    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) / self.interval)
        self.stamp = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


def rate_limiter(config: WebConfig) -> RateLimiter | None:
    """The configured limiter, None when there is no limit (no key, or interval 0)."""
    if config.rate_limit is None:
        return None
    interval = rate_limit_interval(config.rate_limit)
    return RateLimiter(interval, config.rate_limit.burst) if interval > 0 else None


def allowed_client(peercert: Mapping[str, Any] | None, allowed: list[str]) -> bool:
    """Whether a verified client certificate has a SAN (DNS, IP, email or URI) equal to one
    of `allowed` (IP addresses compared as addresses)."""
    if not peercert:
        return False
    wanted = {_normal_ip(entry) or entry for entry in allowed}
    for kind, value in peercert.get("subjectAltName", ()):
        if kind in ("DNS", "email", "URI") and value in wanted:
            return True
        if kind == "IP Address" and _normal_ip(value) in wanted:
            return True
    return False


def _normal_ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        return None


def ssl_context(tls: TLSServerConfig) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        # TLS 1.0/1.1 are deprecated in Python too; asked for, they are what we serve.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = TLS_VERSIONS[tls.min_version]
        context.maximum_version = TLS_VERSIONS[tls.max_version]
    legacy = tls.min_version in LEGACY_VERSIONS
    suites = [CIPHER_SUITES[name] for name in tls.cipher_suites if name in CIPHER_SUITES]
    if suites or legacy:
        listed = suites or LEGACY_DEFAULT_SUITES
        try:
            context.set_ciphers(":".join([*listed, LEGACY_SECURITY_LEVEL] if legacy else listed))
        except ssl.SSLError:
            raise ConfigError("web.config.file: tls_server_config.cipher_suites: none is "
                              "available in this host's OpenSSL") from None
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    if tls.curve_preferences:
        try:
            context.set_ecdh_curve(CURVES[tls.curve_preferences[0]])
        except (ValueError, ssl.SSLError):
            raise ConfigError(f"web.config.file: tls_server_config.curve_preferences: "
                              f"{tls.curve_preferences[0]}: not available in this host's "
                              "OpenSSL") from None
    files = [("cert_file", tls.cert_file), ("key_file", tls.key_file),
             ("client_ca_file", tls.client_ca_file)]
    for key, path in files:
        if path is not None and not os.path.isfile(path):
            raise ConfigError(f"web.config.file: tls_server_config.{key}: no such file {path!r}")
    try:
        _load_cert_chain(context, tls)
        if tls.client_ca_file:
            context.load_verify_locations(cafile=tls.client_ca_file)
        elif tls.client_ca is not None:
            context.load_verify_locations(cadata=tls.client_ca)
        elif tls.verifies_clients:
            # No CA given: Go verifies client certificates against the system's roots.
            context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ConfigError(f"web.config.file: tls_server_config: cannot load the certificate, "
                          f"key or CA: {reason}") from None
    if tls.client_auth_type == "RequireAndVerifyClientCert":
        context.verify_mode = ssl.CERT_REQUIRED
    elif tls.client_auth_type == "VerifyClientCertIfGiven":
        context.verify_mode = ssl.CERT_OPTIONAL
    # NoClientCert, RequestClientCert: no certificate is checked (Go asks for one under
    # RequestClientCert, then lets every client in all the same).
    return context


def _load_cert_chain(context: ssl.SSLContext, tls: TLSServerConfig) -> None:
    """The server certificate and key from their files or inline PEM. Python's ssl reads
    only files: inline PEM goes through a private temporary directory, removed at once.
    An empty password: an encrypted key fails to load instead of prompting on a terminal."""
    if tls.cert is None and tls.key is None:
        assert tls.cert_file is not None and tls.key_file is not None
        context.load_cert_chain(tls.cert_file, tls.key_file, password="")
        return
    with tempfile.TemporaryDirectory(prefix="saasmon-tls-") as private:
        cert_file, key_file = tls.cert_file, tls.key_file
        if tls.cert is not None:
            cert_file = _write_private(private, "cert.pem", tls.cert)
        if tls.key is not None:
            key_file = _write_private(private, "key.pem", tls.key.get_secret_value())
        assert cert_file is not None and key_file is not None
        context.load_cert_chain(cert_file, key_file, password="")


def _write_private(directory: str, name: str, text: str) -> str:
    path = os.path.join(directory, name)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    return path


# Remembered good credentials; past this many the memory is cleared, never grown.
VERIFIED_CACHE_SIZE = 1024


class BasicAuth:
    """Checks credentials like the exporter-toolkit: bcrypt is slow on purpose (~60 ms), so

    - it runs in a worker thread, never on the event loop that serves scrapes;
    - at most `max_concurrent` checks run at once: a flood of bad passwords queues for a
      slot instead of taking every core;
    - successful (user, password, hash) results are cached, so an authorized scrape does
      not pay bcrypt again and does not queue behind the flood;
    - an unknown user is checked against a dummy hash of the same cost, so the answer
      time does not tell which user names exist.
    """

    def __init__(self, users: dict[str, str], max_concurrent: int | None = None) -> None:
        self.users = {user: hashed.replace("$2y$", "$2b$", 1) for user, hashed in users.items()}
        self._verified: set[bytes] = set()
        # One core stays free for the event loop.
        slots = max_concurrent or min(4, max(1, (os.cpu_count() or 2) - 1))
        self._slots = asyncio.Semaphore(slots)
        cost = max((_cost(h) for h in self.users.values()), default=10)
        import bcrypt  # only an exporter with basic auth configured loads it

        self._dummy = bcrypt.hashpw(b"saasmon-dummy", bcrypt.gensalt(rounds=cost))

    async def check(self, user: str, password: str) -> bool:
        hashed = self.users.get(user)
        token = hashlib.sha256(f"{user}\0{password}\0{hashed}".encode()).digest()
        if hashed is not None and token in self._verified:
            return True
        candidate = hashed.encode() if hashed is not None else self._dummy
        async with self._slots:
            ok = await asyncio.to_thread(self.verify, password.encode(), candidate)
        if not ok or hashed is None:
            return False
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            self._verified.clear()
        self._verified.add(token)
        return True

    def verify(self, password: bytes, hashed: bytes) -> bool:
        """One bcrypt comparison (runs in a worker thread)."""
        import bcrypt

        try:
            return bcrypt.checkpw(password, hashed)
        except ValueError:  # a malformed hash never matches
            return False


def _cost(hashed: str) -> int:
    """The work factor of a `$2b$NN$...` hash (10 when it cannot be read)."""
    parts = hashed.split("$")
    return int(parts[2]) if len(parts) > 3 and parts[2].isdigit() and 4 <= int(parts[2]) <= 31 \
        else 10
