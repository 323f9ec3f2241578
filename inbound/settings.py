"""Settings of the inbound app (OVERDUE_INBOUND_*): its port and one credential per provider."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROVIDERS = ("sms", "email", "push")


class InboundSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OVERDUE_", extra="ignore")

    inbound_host: str = Field(default="127.0.0.1", description="address `python -m inbound` listens on")
    inbound_port: int = Field(default=8031, ge=0, le=65535, description="port of `python -m inbound`")
    # Per provider: an HMAC secret (X-Overdue-Timestamp + X-Overdue-Signature over the raw body) and/or an
    # API key (X-API-Key). A provider with neither has no endpoint: every call to it is refused.
    inbound_sms_secret: SecretStr | None = None
    inbound_sms_api_key: SecretStr | None = None
    inbound_email_secret: SecretStr | None = None
    inbound_email_api_key: SecretStr | None = None
    inbound_push_secret: SecretStr | None = None
    inbound_push_api_key: SecretStr | None = None
    inbound_max_skew_seconds: int = Field(
        default=300, ge=10, le=3600, description="how old (or early) a signed request's timestamp may be"
    )
    inbound_confirm_opt_out: str = Field(
        default="us",
        description="jurisdictions whose rules require one SMS confirming an opt-out (comma-separated)",
    )

    def secret(self, provider: str) -> str | None:
        value: SecretStr | None = getattr(self, f"inbound_{provider}_secret")
        return value.get_secret_value() if value is not None and value.get_secret_value() else None

    def api_key(self, provider: str) -> str | None:
        value: SecretStr | None = getattr(self, f"inbound_{provider}_api_key")
        return value.get_secret_value() if value is not None and value.get_secret_value() else None

    def confirming_jurisdictions(self) -> frozenset[str]:
        return frozenset(j.strip().lower() for j in self.inbound_confirm_opt_out.split(",") if j.strip())
