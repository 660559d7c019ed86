"""The exporter-toolkit web config file: TLS and bcrypt basic auth, strictly validated."""

from __future__ import annotations

import hashlib
import os
import ssl
from typing import Literal

import bcrypt
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


class BasicAuth:
    """Checks credentials; bcrypt is slow on purpose, so verified pairs are remembered."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self._verified: set[bytes] = set()

    def check(self, user: str, password: str) -> bool:
        hashed = self.users.get(user)
        if hashed is None:
            return False
        token = hashlib.sha256(f"{user}\0{password}\0{hashed}".encode()).digest()
        if token in self._verified:
            return True
        candidate = hashed.replace("$2y$", "$2b$", 1).encode()
        try:
            ok = bcrypt.checkpw(password.encode(), candidate)
        except ValueError:
            return False
        if ok:
            self._verified.add(token)
        return ok
