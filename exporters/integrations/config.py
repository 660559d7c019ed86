"""Config of the integrations exporter: probe modules, named targets, optional database."""

from __future__ import annotations

import ssl
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, StringConstraints, field_validator, model_validator

from saasmon.runtime.config import ConfigError, DsnConfig, StrictModel, read_secret_file
from saasmon.runtime.overrides import CollectorOverride, CollectorsConfig, Schedule

Prober = Literal["statuspage", "stripe_status", "app_health", "http"]
# The `table` of each collector in saasmon.integrations.deliveries: its collector name.
TABLES = ("payments", "message_deliveries", "webhook_events")
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]

MiB = 1024 * 1024


class TLSConfig(StrictModel):
    insecure_skip_verify: bool = False
    ca_file: str | None = None

    @field_validator("ca_file")
    @classmethod
    def _loadable(cls, path: str | None) -> str | None:
        if path is not None:
            try:
                ssl.create_default_context(cafile=path)
            except (OSError, ssl.SSLError) as exc:
                raise ValueError(f"cannot load CA file {path!r}: {exc}") from None
        return path


class ModuleConfig(StrictModel):
    prober: Prober
    # Capped further by Prometheus' scrape timeout header on every request.
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Appended to a target URL that has no path of its own (https://status.twilio.com).
    path: str = Field(default="", max_length=500)
    method: Literal["GET", "HEAD"] = "GET"
    # HTTP statuses that count as a good answer; empty means any 2xx.
    valid_status_codes: list[Annotated[int, Field(ge=100, le=599)]] = Field(
        default=[], max_length=50)
    headers: dict[str, str] = Field(default_factory=dict, max_length=20)
    # Statuspage pages list hundreds of components (Twilio: one per carrier and country):
    # only the first ones by position get their own series, the rest fold into "other".
    max_components: int = Field(default=20, ge=1, le=200)
    max_body_bytes: int = Field(default=4 * MiB, ge=1024, le=64 * MiB)
    follow_redirects: bool = True
    tls: TLSConfig = Field(default_factory=TLSConfig)

    @field_validator("path")
    @classmethod
    def _absolute(cls, path: str) -> str:
        if path and not path.startswith("/"):
            raise ValueError("must start with /")
        return path

    @model_validator(mode="after")
    def _body_needed(self) -> ModuleConfig:
        if self.method == "HEAD" and self.prober != "http":
            raise ValueError(f"method HEAD has no body for the {self.prober} prober")
        return self


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 - raises on a non-numeric or out-of-range port
    except ValueError:
        raise ValueError("has an invalid port") from None
    return url


class TargetConfig(StrictModel):
    url: str = Field(min_length=1, max_length=2000)
    module: Name
    bearer_token: SecretStr | None = None
    bearer_token_file: str | None = None
    # Keep only these components (by name, case-insensitive) instead of the first ones.
    components: list[str] = Field(default=[], max_length=200)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        return _check_url(url)

    @model_validator(mode="after")
    def _token_source(self) -> TargetConfig:
        if self.bearer_token is not None and self.bearer_token_file is not None:
            raise ValueError("set only one of bearer_token and bearer_token_file")
        if self.bearer_token_file is not None:
            object.__setattr__(self, "bearer_token",
                               read_secret_file(self.bearer_token_file, "bearer_token_file"))
        return self

    def secrets(self) -> list[str]:
        parts = urlsplit(self.url)
        found = [self.url, parts.password or ""] if parts.password or parts.username else []
        if self.bearer_token is not None:
            found.append(self.bearer_token.get_secret_value())
        return [s for s in found if s]


class TableOverride(CollectorOverride):
    """The runtime's per-collector override, plus how old a row must be to be counted."""

    # Count a row only once it is this old (default 300 for message_deliveries, else 0).
    settle_seconds: float | None = Field(default=None, ge=0, le=86400)


# Built-in modules: a config entry of the same name replaces one whole.
DEFAULT_MODULES: dict[str, ModuleConfig] = {
    "statuspage": ModuleConfig(prober="statuspage", path="/api/v2/summary.json"),
    "stripe_status": ModuleConfig(prober="stripe_status", path="/current"),
    # saas-ops-module § Health Check Endpoint: app/api/health/route.ts.
    "app_health": ModuleConfig(prober="app_health", path="/api/health"),
    "http": ModuleConfig(prober="http"),
}

# The vendors dirt-free-crm § Integration Health names, plus Sentry (saas-ops-module §
# Sentry Integration). Their public status pages need no credentials.
DEFAULT_TARGETS: dict[str, TargetConfig] = {
    "twilio": TargetConfig(url="https://status.twilio.com", module="statuspage"),
    "resend": TargetConfig(url="https://resend-status.com", module="statuspage"),
    "supabase": TargetConfig(url="https://status.supabase.com", module="statuspage"),
    "sentry": TargetConfig(url="https://status.sentry.io", module="statuspage"),
    "stripe": TargetConfig(url="https://status.stripe.com", module="stripe_status"),
}


DECLINE_REASONS = (
    "card_declined", "insufficient_funds", "expired_card", "incorrect_cvc", "incorrect_number",
    "incorrect_zip", "invalid_cvc", "invalid_expiry_month", "invalid_expiry_year",
    "invalid_number", "lost_card", "stolen_card", "do_not_honor", "generic_decline",
    "fraudulent", "pickup_card", "card_velocity_exceeded", "withdrawal_count_limit_exceeded",
    "authentication_required", "card_not_supported", "currency_not_supported",
    "transaction_not_allowed", "restricted_card", "security_violation", "not_permitted",
)


class IntegrationsConfig(DsnConfig, CollectorsConfig[TableOverride]):
    modules: dict[Name, ModuleConfig] = Field(default_factory=dict, max_length=50)
    targets: dict[Name, TargetConfig] = Field(default_factory=dict, max_length=200)
    builtin_targets: bool = True
    # Off by default: an open /probe?target=<any URL> lets whoever reaches the exporter make
    # it fetch internal addresses (SSRF).
    allow_url_targets: bool = False

    # Optional database of the app (dsn / dsn_file of DsnConfig), for payment / delivery /
    # webhook failure counters.
    interval_seconds: float = Field(default=15.0, gt=0, le=3600)
    timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    pool_max_size: int = Field(default=2, ge=1, le=10)
    top_n_reasons: int = Field(default=10, ge=1, le=100)
    # Failure reasons that are the customer's card, not an error of the provider or ours:
    # they count in integration_payment_failures_total but not in
    # integration_payment_errors_total, which PaymentFailures pages on. Stripe's decline codes.
    decline_reasons: list[str] = Field(default_factory=lambda: list(DECLINE_REASONS), max_length=200)
    top_n_providers: int = Field(default=10, ge=1, le=100)
    # Rows read per table per round: a backlog is caught up over rounds, never in one query.
    batch_size: int = Field(default=50_000, ge=100, le=1_000_000)
    # At start, label values (failure reasons, providers) seen in this recent window get a
    # 0 series at once, so the first new failure is an increase rate() can see. 0 = off.
    seed_window_seconds: float = Field(default=7 * 86400.0, ge=0, le=90 * 86400.0)

    @model_validator(mode="after")
    def _check(self) -> IntegrationsConfig:
        modules = self.all_modules()
        for name, target in self.all_targets().items():
            if target.module not in modules:
                # ConfigError passes through pydantic untouched: the line names the key.
                raise ConfigError(f"targets.{name}.module: unknown module {target.module!r} "
                                  f"(known: {', '.join(sorted(modules))})")
        return self

    def collector_defaults(self) -> dict[str, Schedule]:
        return dict.fromkeys(TABLES, Schedule(self.interval_seconds, self.timeout_seconds))

    def all_modules(self) -> dict[str, ModuleConfig]:
        return {**DEFAULT_MODULES, **self.modules}

    def all_targets(self) -> dict[str, TargetConfig]:
        return {**(DEFAULT_TARGETS if self.builtin_targets else {}), **self.targets}

    def secrets(self) -> list[str]:
        found = self.dsn_secrets()
        for target in self.all_targets().values():
            found += target.secrets()
        for module in self.modules.values():
            # Header values may carry API keys: treat them all as secret.
            found += list(module.headers.values())
        return [s for s in found if s]
