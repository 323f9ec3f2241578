"""The borrower page's settings (OVERDUE_BORROWER_* in the environment; README "Borrower page")."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class BorrowerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OVERDUE_BORROWER_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="address the page listens on")
    port: int = Field(default=8010, ge=1, le=65535, description="port of the borrower page")
    link_secret: SecretStr | None = Field(
        default=None,
        description="key the workers derive each message's link token from (HMAC of the message key): the "
        "same message gets the same link on a retry; at least 32 characters; the page itself never needs it",
    )
    link_ttl_days: int = Field(default=30, ge=1, le=365, description="how long a message's link opens")
    code_ttl_seconds: int = Field(default=600, ge=60, le=3600, description="life of a one-time code")
    code_attempts: int = Field(default=5, ge=1, le=20, description="wrong codes allowed per code sent")
    codes_per_link_per_hour: int = Field(default=3, ge=1, le=20, description="codes one link may send")
    codes_per_address_per_hour: int = Field(
        default=5, ge=1, le=50, description="codes one phone or e-mail address may receive (all links)"
    )
    failures_per_link_per_hour: int = Field(
        default=10, ge=1, le=100, description="wrong codes per link before it rests for the hour"
    )
    session_minutes: int = Field(default=15, ge=1, le=120, description="life of a verified session")
    secure_cookies: bool = Field(default=False, description="mark the session cookie Secure (HTTPS)")
