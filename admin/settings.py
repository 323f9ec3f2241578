"""Settings of the admin UI, from the environment (OVERDUE_ADMIN_*); Temporal and PostgreSQL come from
`stack.settings.Settings` like every other part of the product."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class AdminSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OVERDUE_ADMIN_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    secret_key: str | None = Field(
        default=None,
        repr=False,
        min_length=32,
        description="signs session cookies; unset: a random key per process (everyone logs in again after a "
        "restart, and several processes cannot share sessions). Set it in production.",
    )
    secure_cookies: bool = Field(
        default=False, description="send the session cookie only over HTTPS: set it when served behind TLS"
    )
    session_hours: float = Field(default=10, gt=0, le=24 * 7)
    max_failed_logins: int = Field(default=5, ge=1, description="failed logins in a row that lock an account")
    lockout_seconds: int = Field(default=300, ge=1, description="how long a locked account stays locked")
    temporal_ui_url: str | None = Field(
        default=None, description="the Temporal Web UI, for links to a loan's workflow page"
    )
