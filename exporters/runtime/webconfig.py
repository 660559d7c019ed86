"""The exporter-toolkit web config file: TLS and bcrypt basic auth, strictly validated."""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
from typing import Literal

from pydantic import Field, ValidationError, field_validator

from exporters.runtime.config import ConfigError, StrictModel, _first_error, read_yaml

ClientAuth = Literal[
    "NoClientCert", "RequestClientCert", "RequireAnyClientCert",
    "VerifyClientCertIfGiven", "RequireAndVerifyClientCert",
]


class TLSServerConfig(StrictModel):
    cert_file: str
    key_file: str
    client_auth_type: ClientAuth = "NoClientCert"
    client_ca_file: str | None = None
    min_version: Literal["TLS12", "TLS13"] = "TLS12"


class HTTPServerConfig(StrictModel):
    headers: dict[str, str] = Field(default_factory=dict)


class WebConfig(StrictModel):
    tls_server_config: TLSServerConfig | None = None
    http_server_config: HTTPServerConfig | None = None
    basic_auth_users: dict[str, str] = Field(default_factory=dict)

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
        raise ConfigError("web.config.file: " + _first_error(exc, "")) from None
    if config.tls_server_config is not None:
        ssl_context(config.tls_server_config)  # fail at start-up, not at first connection
    return config


def ssl_context(tls: TLSServerConfig) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if tls.min_version == "TLS13" else ssl.TLSVersion.TLSv1_2
    )
    files = [("cert_file", tls.cert_file), ("key_file", tls.key_file),
             ("client_ca_file", tls.client_ca_file)]
    for key, path in files:
        if path is not None and not os.path.isfile(path):
            raise ConfigError(f"web.config.file: tls_server_config.{key}: no such file {path!r}")
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
        if tls.client_ca_file:
            context.load_verify_locations(tls.client_ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"web.config.file: tls_server_config: cannot load the certificate, "
                          f"key or CA: {exc.strerror or exc}") from None
    if tls.client_auth_type in ("RequireAnyClientCert", "RequireAndVerifyClientCert"):
        context.verify_mode = ssl.CERT_REQUIRED
    elif tls.client_auth_type != "NoClientCert":
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


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
