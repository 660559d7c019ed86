"""Config of the SMS relay: Twilio account, recipients, message template, retry policy."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, PrivateAttr, SecretStr, StringConstraints, field_validator, model_validator

from saasmon.runtime.config import StrictModel, read_secret_file
from saasmon.runtime.overrides import CollectorOverride, CollectorsConfig
from saasmon.smsrelay.message import DEFAULT_TEMPLATE, check_template

# E.164: "+", country code, subscriber number; at most 15 digits in all.
PhoneNumber = Annotated[str, StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$")]


def _http_url(value: str, key: str) -> str:
    url = urlsplit(value)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"{key} must be an http:// or https:// URL")
    return value


def _one_secret(value: SecretStr | None, path: str | None, key: str, where: str,
                required: bool) -> SecretStr | None:
    """The secret given inline or in `<key>_file`, never both; `where` prefixes the key."""
    if value is not None and path is not None:
        raise ValueError(f"set only one of {key} and {key}_file")
    if path is not None:
        return read_secret_file(path, f"{where}{key}_file")
    if value is None and required:
        raise ValueError(f"{key} is required (or {key}_file)")
    return value


class TwilioConfig(StrictModel):
    account_sid: str = Field(pattern=r"^AC[0-9a-fA-F]{32}$")
    auth_token: SecretStr | None = None
    auth_token_file: str | None = None
    from_number: PhoneNumber
    # Overridable for a regional edge or a test stand-in; the path is Twilio's own.
    api_url: str = "https://api.twilio.com"

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        return _http_url(value, "api_url").rstrip("/")

    @model_validator(mode="after")
    def _token(self) -> TwilioConfig:
        token = _one_secret(self.auth_token, self.auth_token_file, "auth_token", "twilio.",
                            required=True)
        object.__setattr__(self, "auth_token", token)
        return self

    @property
    def token(self) -> str:
        assert self.auth_token is not None
        return self.auth_token.get_secret_value()


class HeartbeatConfig(StrictModel):
    """Forward Alertmanager's Watchdog notifications to a dead man's switch.

    Ping URLs of such services carry their secret (healthchecks.io, Dead Man's Snitch), and
    Alertmanager 0.25 webhooks take no `url_file`: so Alertmanager posts to the relay on
    loopback and the relay calls the URL it read from a file.
    """

    url_file: str
    method: Literal["GET", "POST", "HEAD"] = "GET"
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)

    _url: SecretStr = PrivateAttr(default=SecretStr(""))

    @model_validator(mode="after")
    def _read_url(self) -> HeartbeatConfig:
        url = read_secret_file(self.url_file, "heartbeat.url_file")
        _http_url(url.get_secret_value(), "the URL in url_file")
        self._url = url
        return self

    @property
    def url(self) -> str:
        return self._url.get_secret_value()


# No collectors (request-fed): `collectors` is accepted like everywhere, and stays empty.
class SmsRelayConfig(CollectorsConfig[CollectorOverride]):
    twilio: TwilioConfig
    recipients: list[PhoneNumber] = Field(min_length=1, max_length=20)
    # Alertmanager sends it as `Authorization: Bearer <token>` (http_config.authorization).
    bearer_token: SecretStr | None = None
    bearer_token_file: str | None = None
    template: str = Field(default=DEFAULT_TEMPLATE, min_length=1, max_length=1000)
    # One GSM-7 SMS segment is 160 characters; longer texts are billed and delivered as
    # several parts, which arrive out of order on some phones.
    max_length: int = Field(default=160, ge=20, le=1600)
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    retries: int = Field(default=2, ge=0, le=10)
    # All of one webhook call (retries, backoff, Retry-After) ends within this: Alertmanager
    # gives up on a notification after its group_interval, never less than 10 s, and a
    # relay still retrying then only delays the next try.
    deadline_seconds: float = Field(default=9.0, gt=0, le=300)
    backoff_seconds: float = Field(default=1.0, ge=0, le=60)
    max_concurrent_requests: int = Field(default=4, ge=1, le=50)
    heartbeat: HeartbeatConfig | None = None

    @field_validator("template")
    @classmethod
    def _template(cls, value: str) -> str:
        check_template(value)
        return value

    @field_validator("recipients")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("recipients must be unique")
        return value

    @model_validator(mode="after")
    def _bearer(self) -> SmsRelayConfig:
        token = _one_secret(self.bearer_token, self.bearer_token_file, "bearer_token", "",
                            required=False)
        object.__setattr__(self, "bearer_token", token)
        return self

    @property
    def bearer_value(self) -> str | None:
        return self.bearer_token.get_secret_value() if self.bearer_token else None
